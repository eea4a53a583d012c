use sqlx::{AnyPool, FromRow};

use super::users::User;

/// A session row joined with its user, as the request guard needs it.
#[derive(Debug, Clone, FromRow)]
pub struct SessionUser {
    pub session_id: i64,
    pub remember: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub provider: String,
    pub id: i64,
    pub kind: String,
    pub email: String,
    pub name: String,
    pub is_admin: i64,
    pub credential_version: i64,
}

impl SessionUser {
    pub fn user(&self) -> User {
        User {
            id: self.id,
            kind: self.kind.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            is_admin: self.is_admin,
            credential_version: self.credential_version,
        }
    }
}

/// A session as listed on the account page.
#[derive(Debug, Clone, FromRow)]
pub struct SessionInfo {
    pub id: i64,
    pub remember: i64,
    pub user_agent: String,
    pub provider: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

pub struct NewSession<'a> {
    /// The raw ID token and the OP's session id, for sessions made through OIDC ('' otherwise).
    pub id_token: &'a str,
    pub oidc_sid: &'a str,
    pub token_hash: &'a str,
    pub user_id: i64,
    pub provider: &'a str,
    pub remember: bool,
    pub user_agent: &'a str,
    pub now: i64,
    pub expires_at: i64,
    /// The user's credential version the login verified (0 for OIDC, whose users have
    /// no local password); the session is valid only while the user's stays the same.
    pub credential_version: i64,
}

pub async fn insert(db: &AnyPool, s: NewSession<'_>) -> sqlx::Result<i64> {
    let query = sqlx::query_as(
        "INSERT INTO sessions (token_hash, user_id, provider, remember, user_agent, \
         created_at, last_seen_at, expires_at, id_token, oidc_sid, credential_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(s.token_hash)
    .bind(s.user_id)
    .bind(s.provider)
    .bind(s.remember as i64)
    .bind(s.user_agent)
    .bind(s.now)
    .bind(s.expires_at)
    .bind(s.id_token)
    .bind(s.oidc_sid)
    .bind(s.credential_version);
    let (id,): (i64,) = super::fetch_returning(query, db).await?;
    Ok(id)
}

/// The session with this token hash and its user, unless past its absolute expiry or
/// made with a password that has changed since (its credential version is behind the
/// user's). The idle limit depends on configuration and is checked by the caller.
pub async fn by_token_hash(
    db: &AnyPool,
    token_hash: &str,
    now: i64,
) -> sqlx::Result<Option<SessionUser>> {
    sqlx::query_as(
        "SELECT s.id AS session_id, s.remember, s.last_seen_at, s.expires_at, s.provider, \
         u.id, u.kind, u.email, u.name, u.is_admin, u.credential_version \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2 \
         AND s.credential_version = u.credential_version",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await
}

pub async fn touch(db: &AnyPool, id: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn list_for_user(db: &AnyPool, user_id: i64, now: i64) -> sqlx::Result<Vec<SessionInfo>> {
    sqlx::query_as(
        "SELECT id, remember, user_agent, provider, created_at, last_seen_at FROM sessions \
         WHERE user_id = $1 AND expires_at > $2 ORDER BY last_seen_at DESC, id DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(db)
    .await
}

pub async fn delete(db: &AnyPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
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
pub async fn delete_for_user(db: &AnyPool, user_id: i64, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every session of the user except `keep` (pass -1 to end them all).
pub async fn delete_others(db: &AnyPool, user_id: i64, keep: i64) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
        .bind(user_id)
        .bind(keep)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Removes sessions past their absolute expiry.
pub async fn delete_expired(db: &AnyPool, now: i64) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// The raw ID token kept with a session ('' when it was not made through OIDC).
pub async fn id_token(db: &AnyPool, id: i64) -> sqlx::Result<String> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id_token FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|(t,)| t).unwrap_or_default())
}

/// Ends the OIDC sessions of the OP session `sid`, only those of `user_id` when given.
pub async fn delete_by_oidc_sid(
    db: &AnyPool,
    sid: &str,
    user_id: Option<i64>,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM sessions WHERE provider = 'oidc' AND oidc_sid = $1 \
         AND ($2 < 0 OR user_id = $2)",
    )
    .bind(sid)
    .bind(user_id.unwrap_or(-1))
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Ends every OIDC session of the user.
pub async fn delete_oidc_for_user(db: &AnyPool, user_id: i64) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE provider = 'oidc' AND user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
