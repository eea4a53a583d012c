//! What an OIDC session keeps to have its claims re-checked at the provider.

use sqlx::{AnyPool, FromRow};

use crate::domain::{SessionId, UserId};

/// The tokens a login (or a refresh) left, '' and 0 where the provider gave none.
#[derive(Debug, Clone, Default, FromRow)]
pub struct Tokens {
    pub oidc_refresh_token: String,
    pub oidc_access_token: String,
    /// Unix seconds; 0 when the provider did not say.
    pub oidc_access_expires_at: i64,
}

/// An OIDC session's re-check state.
#[derive(Debug, Clone)]
pub struct RecheckState {
    pub user_id: UserId,
    pub id_token: String,
    pub oidc_checked_at: i64,
    pub oidc_refresh_token: String,
    pub oidc_access_token: String,
    pub oidc_access_expires_at: i64,
}

#[derive(FromRow)]
struct RecheckRow {
    user_id: i64,
    pub id_token: String,
    pub oidc_checked_at: i64,
    pub oidc_refresh_token: String,
    pub oidc_access_token: String,
    pub oidc_access_expires_at: i64,
}

pub async fn set_tokens(
    db: &AnyPool,
    session_id: SessionId,
    t: &Tokens,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sessions SET oidc_refresh_token = $1, oidc_access_token = $2, \
         oidc_access_expires_at = $3, oidc_checked_at = $4 WHERE id = $5",
    )
    .bind(&t.oidc_refresh_token)
    .bind(&t.oidc_access_token)
    .bind(t.oidc_access_expires_at)
    .bind(now)
    .bind(session_id.0)
    .execute(db)
    .await?;
    Ok(())
}

/// The re-check state of an OIDC session, None when there is no such session.
pub async fn recheck_state(
    db: &AnyPool,
    session_id: SessionId,
) -> sqlx::Result<Option<RecheckState>> {
    let row: Option<RecheckRow> = sqlx::query_as(
        "SELECT user_id, id_token, oidc_checked_at, oidc_refresh_token, oidc_access_token, \
         oidc_access_expires_at FROM sessions WHERE id = $1 AND provider = 'oidc'",
    )
    .bind(session_id.0)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| RecheckState {
        user_id: UserId(r.user_id),
        id_token: r.id_token,
        oidc_checked_at: r.oidc_checked_at,
        oidc_refresh_token: r.oidc_refresh_token,
        oidc_access_token: r.oidc_access_token,
        oidc_access_expires_at: r.oidc_access_expires_at,
    }))
}

/// Takes the re-check of a session for this request: true when `checked_at` was still
/// `seen`, so of several requests (on any instance) only one goes to the provider.
pub async fn claim_recheck(
    db: &AnyPool,
    session_id: SessionId,
    seen: i64,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET oidc_checked_at = $1 WHERE id = $2 AND oidc_checked_at = $3",
    )
    .bind(now)
    .bind(session_id.0)
    .bind(seen)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Re-evaluated admin rights from the provider's groups.
pub async fn set_admin(db: &AnyPool, user_id: UserId, is_admin: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET is_admin = $1 WHERE id = $2 AND kind = 'oidc'")
        .bind(is_admin as i64)
        .bind(user_id.0)
        .execute(db)
        .await?;
    Ok(())
}
