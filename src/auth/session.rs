//! Server-side sessions: a random 256-bit token in a private cookie, its SHA-256 in the
//! `sessions` table. A new token is made at every login, so a value planted in the
//! browser before login never becomes authenticated.

use base64::Engine as _;
use rocket::http::{Cookie, CookieJar, SameSite};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::csrf;
use crate::config::AuthConfig;
use crate::db::sessions::{self, NewSession, SessionUser};
use crate::db::{now, Pool};
use crate::error::Result;

pub const COOKIE: &str = "quire_session";
/// How often `last_seen_at` is written: a session read many times a minute costs one write.
const TOUCH_EVERY: i64 = 60;

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Default)]
pub struct Start<'a> {
    pub user_id: i64,
    pub provider: &'a str,
    pub remember: bool,
    pub user_agent: &'a str,
    /// Served over HTTPS, directly or behind a trusted proxy: the cookie gets Secure.
    pub secure: bool,
    /// For a login through OIDC: the raw ID token (for logout) and the OP's session id.
    pub id_token: &'a str,
    pub oidc_sid: &'a str,
    /// The credential version the login verified (`User::credential_version`).
    pub credential_version: i64,
}

/// Starts a session and sets its cookie: persistent for `remember_days` with remember-me,
/// otherwise a browser-session cookie. Whatever session and CSRF token this browser had
/// before are ended first, so nothing from before login carries over. Returns the
/// session's id.
pub async fn start(
    db: &Pool,
    cookies: &CookieJar<'_>,
    cfg: &AuthConfig,
    s: Start<'_>,
) -> Result<i64> {
    end(db, cookies).await?;
    let token = new_token();
    let now = now();
    let lifetime = if s.remember {
        cfg.remember_days * 86_400
    } else {
        cfg.session_max_hours * 3_600
    };
    let user_agent: String = s.user_agent.chars().take(512).collect();
    let id = sessions::insert(
        db,
        NewSession {
            token_hash: &hash_token(&token),
            user_id: s.user_id,
            provider: s.provider,
            remember: s.remember,
            user_agent: &user_agent,
            now,
            expires_at: now + lifetime,
            id_token: s.id_token,
            oidc_sid: s.oidc_sid,
            credential_version: s.credential_version,
        },
    )
    .await?;
    // No expiry makes a browser-session cookie (Rocket would otherwise default to a week).
    let expires = s
        .remember
        .then(|| OffsetDateTime::now_utc() + time::Duration::seconds(lifetime));
    let cookie = Cookie::build((COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(s.secure)
        .expires(expires);
    cookies.add_private(cookie);
    Ok(id)
}

/// The live session named by the cookie, with its user. Sessions past their idle or
/// absolute limit are deleted and count as absent.
pub async fn current(
    db: &Pool,
    cookies: &CookieJar<'_>,
    cfg: &AuthConfig,
) -> Result<Option<SessionUser>> {
    let Some(cookie) = cookies.get_private(COOKIE) else {
        return Ok(None);
    };
    let now = now();
    let Some(found) = sessions::by_token_hash(db, &hash_token(cookie.value()), now).await? else {
        return Ok(None);
    };
    let idle = if found.remember != 0 {
        cfg.remember_idle_days * 86_400
    } else {
        cfg.session_idle_minutes * 60
    };
    if now - found.last_seen_at > idle {
        sessions::delete(db, found.session_id).await?;
        return Ok(None);
    }
    if now - found.last_seen_at >= TOUCH_EVERY {
        sessions::touch(db, found.session_id, now).await?;
    }
    Ok(Some(found))
}

/// Deletes the cookie's session row, if any, the cookie, and the CSRF token.
pub async fn end(db: &Pool, cookies: &CookieJar<'_>) -> Result<()> {
    if let Some(cookie) = cookies.get_private(COOKIE) {
        sessions::delete_by_token_hash(db, &hash_token(cookie.value())).await?;
    }
    cookies.remove_private(Cookie::from(COOKIE));
    cookies.remove_private(Cookie::from(csrf::COOKIE));
    Ok(())
}
