//! Server-side sessions: one row per login, found by the hash of the cookie's token.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, FromRow, Row};
use time::OffsetDateTime;

use super::users::User;
use super::{flag, named, text_or_none, time_at, unix};
use crate::domain::{AuthMethod, ProviderId, SessionId, UserId};

/// A live session with its user, as the request guard needs it.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub session_id: SessionId,
    pub remember: bool,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub provider: ProviderId,
    /// How the login that made it was made.
    pub method: AuthMethod,
    /// For an OIDC login, the methods the provider said it used (RFC 8176 `amr`).
    pub amr: Vec<String>,
    pub user: User,
}

impl<'r> FromRow<'r, AnyRow> for SessionUser {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(SessionUser {
            session_id: SessionId(row.try_get("session_id")?),
            remember: flag(row, "remember")?,
            last_seen_at: time_at(row, "last_seen_at")?,
            expires_at: time_at(row, "expires_at")?,
            provider: named(row, "provider")?,
            method: named(row, "method")?,
            amr: amr_list(row)?,
            user: User::from_row(row)?,
        })
    }
}

/// A session as listed on the account page.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub remember: bool,
    pub user_agent: String,
    pub provider: ProviderId,
    pub method: AuthMethod,
    /// As `SessionUser::amr`.
    pub amr: Vec<String>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

impl<'r> FromRow<'r, AnyRow> for SessionInfo {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(SessionInfo {
            id: SessionId(row.try_get("id")?),
            remember: flag(row, "remember")?,
            user_agent: row.try_get("user_agent")?,
            provider: named(row, "provider")?,
            method: named(row, "method")?,
            amr: amr_list(row)?,
            created_at: time_at(row, "created_at")?,
            last_seen_at: time_at(row, "last_seen_at")?,
        })
    }
}

/// The stored space-separated `amr` column as a list.
fn amr_list(row: &AnyRow) -> sqlx::Result<Vec<String>> {
    let amr: String = row.try_get("amr")?;
    Ok(amr.split_whitespace().map(str::to_string).collect())
}

pub struct NewSession<'a> {
    /// For a session made through OIDC: the raw ID token (for logout) and the OP's
    /// session id (for back-channel logout), when the provider gave them.
    pub id_token: Option<&'a str>,
    pub oidc_sid: Option<&'a str>,
    pub token_hash: &'a str,
    pub user_id: UserId,
    pub provider: ProviderId,
    pub method: AuthMethod,
    pub remember: bool,
    pub user_agent: &'a str,
    pub now: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The user's credential version the login verified (0 for OIDC, whose users have
    /// no local password); the session is valid only while the user's stays the same.
    pub credential_version: i64,
}

pub async fn insert(db: &AnyPool, s: NewSession<'_>) -> sqlx::Result<SessionId> {
    let query = sqlx::query_as(
        "INSERT INTO sessions (token_hash, user_id, provider, remember, user_agent, \
         created_at, last_seen_at, expires_at, id_token, oidc_sid, credential_version, \
         method, proved_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, $6) RETURNING id",
    )
    .bind(s.token_hash)
    .bind(s.user_id.0)
    .bind(s.provider.as_str())
    .bind(s.remember as i64)
    .bind(s.user_agent)
    .bind(unix(s.now))
    .bind(unix(s.expires_at))
    .bind(s.id_token.unwrap_or(""))
    .bind(s.oidc_sid.unwrap_or(""))
    .bind(s.credential_version)
    .bind(s.method.as_str());
    let (id,): (i64,) = super::fetch_returning(query, db).await?;
    Ok(SessionId(id))
}

/// The session with this token hash and its user, unless past its absolute expiry or
/// made with a password that has changed since (its credential version is behind the
/// user's). The idle limit depends on configuration and is checked by the caller.
pub async fn by_token_hash(
    db: &AnyPool,
    token_hash: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Option<SessionUser>> {
    sqlx::query_as(
        "SELECT s.id AS session_id, s.remember, s.last_seen_at, s.expires_at, s.provider, s.method, s.amr, \
         u.id, u.kind, u.email, u.name, u.is_admin, u.credential_version \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2 \
         AND s.credential_version = u.credential_version",
    )
    .bind(token_hash)
    .bind(unix(now))
    .fetch_optional(db)
    .await
}

pub async fn touch(db: &AnyPool, id: SessionId, now: OffsetDateTime) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
        .bind(unix(now))
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn list_for_user(
    db: &AnyPool,
    user_id: UserId,
    now: OffsetDateTime,
) -> sqlx::Result<Vec<SessionInfo>> {
    sqlx::query_as(
        "SELECT id, remember, user_agent, provider, method, amr, created_at, last_seen_at FROM sessions \
         WHERE user_id = $1 AND expires_at > $2 ORDER BY last_seen_at DESC, id DESC",
    )
    .bind(user_id.0)
    .bind(unix(now))
    .fetch_all(db)
    .await
}

pub async fn delete(db: &AnyPool, id: SessionId) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn delete_by_token_hash(db: &AnyPool, token_hash: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes one of the user's sessions; false when it is not theirs or already gone.
pub async fn delete_for_user(db: &AnyPool, user_id: UserId, id: SessionId) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
        .bind(id.0)
        .bind(user_id.0)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every session of the user except `keep`; returns how many ended.
pub async fn delete_others(db: &AnyPool, user_id: UserId, keep: SessionId) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
        .bind(user_id.0)
        .bind(keep.0)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Ends every session of the user; returns how many ended.
pub async fn delete_all_for_user(db: &AnyPool, user_id: UserId) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id.0)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Removes sessions past their absolute expiry.
pub async fn delete_expired(db: &AnyPool, now: OffsetDateTime) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(unix(now))
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// How often a login removes expired sessions. A session past its expiry is refused
/// when it is looked up, whether or not its row is gone: removing them is only so the
/// table does not grow, and once a minute is enough for that.
const SWEEP_EVERY: i64 = 60;

/// [`delete_expired`], at most once every [`SWEEP_EVERY`] seconds per pool, so a burst
/// of logins does not make a burst of deletes. None when it was not yet due.
pub async fn sweep_expired(pool: &super::Pool, now: OffsetDateTime) -> sqlx::Result<Option<u64>> {
    use std::sync::atomic::Ordering;
    let at = unix(now);
    let last = pool.session_sweep.load(Ordering::Relaxed);
    let due = at >= last + SWEEP_EVERY || at < last;
    // One caller of those that found it due wins; the others leave the sweep to it.
    if !due
        || pool
            .session_sweep
            .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return Ok(None);
    }
    delete_expired(pool, now).await.map(Some)
}

/// The raw ID token kept with a session; None when it was not made through OIDC (or
/// the provider gave none) or the session is gone.
pub async fn id_token(db: &AnyPool, id: SessionId) -> sqlx::Result<Option<String>> {
    let row: Option<AnyRow> = sqlx::query("SELECT id_token FROM sessions WHERE id = $1")
        .bind(id.0)
        .fetch_optional(db)
        .await?;
    Ok(match row {
        Some(row) => text_or_none(&row, "id_token")?,
        None => None,
    })
}

/// Ends the OIDC sessions of the OP session `sid`: only those of `user_id` when given,
/// else whoever's they are. Returns how many ended.
pub async fn delete_by_oidc_sid(
    db: &AnyPool,
    sid: &str,
    user_id: Option<UserId>,
) -> sqlx::Result<u64> {
    let done =
        match user_id {
            Some(user_id) => sqlx::query(
                "DELETE FROM sessions WHERE provider = 'oidc' AND oidc_sid = $1 AND user_id = $2",
            )
            .bind(sid)
            .bind(user_id.0)
            .execute(db)
            .await?,
            None => {
                sqlx::query("DELETE FROM sessions WHERE provider = 'oidc' AND oidc_sid = $1")
                    .bind(sid)
                    .execute(db)
                    .await?
            }
        };
    Ok(done.rows_affected())
}

/// Ends every OIDC session of the user.
pub async fn delete_oidc_for_user(db: &AnyPool, user_id: UserId) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE provider = 'oidc' AND user_id = $1")
        .bind(user_id.0)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// When the session's user last proved who they are (its login or a later step-up), in
/// unix seconds; None when the session is gone.
pub async fn proved_at(db: &AnyPool, id: SessionId) -> sqlx::Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT proved_at FROM sessions WHERE id = $1")
        .bind(id.0)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|(t,)| t))
}

/// Records a fresh proof (a password or code given just now) for the session.
pub async fn mark_proved(db: &AnyPool, id: SessionId, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET proved_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(())
}

/// Records the authentication methods (`amr`) the OpenID provider said an OIDC login used.
pub async fn set_amr(db: &AnyPool, id: SessionId, amr: &[String]) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET amr = $1 WHERE id = $2")
        .bind(amr.join(" "))
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(())
}

/// Records that the session's user just proved a second factor in it (set one up):
/// the session now counts as made with `method`, proved now.
pub async fn upgrade_method(
    db: &AnyPool,
    id: SessionId,
    method: AuthMethod,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET method = $1, proved_at = $2 WHERE id = $3")
        .bind(method.as_str())
        .bind(now)
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(())
}
