//! Server-side sessions: a random 256-bit token in a private cookie, its SHA-256 in the
//! `sessions` table. A new token is made at every login, so a value planted in the
//! browser before login never becomes authenticated.

use rocket::http::CookieJar;
use time::{Duration, OffsetDateTime};

use super::cookies::{self, Name};
use crate::config::AuthConfig;
use crate::db::sessions::{self, NewSession, SessionUser};
use crate::db::{current_time, Pool};
use crate::domain::{AuthMethod, ProviderId, SessionId, UserId};
use crate::error::{Error, Result};
use crate::token;

/// How often `last_seen_at` is written: a session read many times a minute costs one write.
const TOUCH_EVERY: Duration = Duration::seconds(60);

pub struct Start<'a> {
    pub user_id: UserId,
    pub provider: ProviderId,
    /// How the login was made (recorded with the session, shown on /account).
    pub method: AuthMethod,
    pub remember: bool,
    pub user_agent: &'a str,
    /// Served over HTTPS, directly or behind a trusted proxy: the cookie gets Secure.
    pub secure: bool,
    /// For a login through OIDC: the raw ID token (for logout) and the OP's session id.
    pub id_token: Option<&'a str>,
    pub oidc_sid: Option<&'a str>,
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
) -> Result<SessionId> {
    end(db, cookies).await?;
    let secret = token::generate();
    let now = current_time();
    let lifetime = if s.remember {
        Duration::days(cfg.remember_days)
    } else {
        Duration::hours(cfg.session_max_hours)
    };
    let user_agent: String = s.user_agent.chars().take(512).collect();
    let id = sessions::insert(
        db,
        NewSession {
            token_hash: &token::hash(&secret),
            user_id: s.user_id,
            provider: s.provider,
            method: s.method,
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
    let expires = s.remember.then(|| OffsetDateTime::now_utc() + lifetime);
    let mut cookie = cookies::build(Name::Session, secret, s.secure);
    cookie.set_expires(expires);
    cookies.add_private(cookie);
    Ok(id)
}

/// The live session named by the cookie (the `__Host-` one when `https`), with its user.
/// Sessions past their idle or absolute limit are deleted and count as absent.
pub async fn current(
    db: &Pool,
    cookies: &CookieJar<'_>,
    cfg: &AuthConfig,
    https: bool,
) -> Result<Option<SessionUser>> {
    let Some(cookie) = cookies::get(cookies, Name::Session, https) else {
        return Ok(None);
    };
    let now = current_time();
    // A cookie naming no live session is dropped, so the browser's forms go back to its
    // pre-login CSRF token (see `csrf`) instead of one bound to a session that is gone.
    let Some(found) = sessions::by_token_hash(db, &token::hash(cookie.value()), now).await? else {
        cookies::remove(cookies, Name::Session);
        return Ok(None);
    };
    let idle = if found.remember {
        Duration::days(cfg.remember_idle_days)
    } else {
        Duration::minutes(cfg.session_idle_minutes)
    };
    if now - found.last_seen_at > idle {
        sessions::delete(db, found.session_id).await?;
        cookies::remove(cookies, Name::Session);
        return Ok(None);
    }
    if now - found.last_seen_at >= TOUCH_EVERY {
        match sessions::touch(db, found.session_id, now)
            .await
            .map_err(Error::from)
        {
            // A full disk must not stop a logged-in person from reading; a later
            // request records the use.
            Err(Error::StorageFull(e)) => log::warn!("session use not recorded: {e}"),
            other => other?,
        }
    }
    Ok(Some(found))
}

/// Whether the request carries a session cookie under either name (valid or not).
pub fn has_cookie(req: &rocket::Request<'_>) -> bool {
    let jar = req.cookies();
    jar.get(Name::Session.plain()).is_some() || jar.get(Name::Session.host_only()).is_some()
}

/// Deletes the session rows of the cookie (under either name), the cookie, and the
/// pre-login CSRF token.
pub async fn end(db: &Pool, cookies: &CookieJar<'_>) -> Result<()> {
    for https in [false, true] {
        if let Some(cookie) = cookies::get(cookies, Name::Session, https) {
            sessions::delete_by_token_hash(db, &token::hash(cookie.value())).await?;
        }
    }
    cookies::remove(cookies, Name::Session);
    cookies::remove(cookies, Name::Csrf);
    Ok(())
}
