//! Password reset tokens, stored as their SHA-256; valid until `expires_at`, used once.

use sqlx::{AnyConnection, AnyPool};

use crate::domain::UserId;

/// Records a new token for the user in place of any older one (one row per account,
/// replaced in one statement, so two requests racing leave one live link).
pub async fn replace(
    conn: &mut AnyConnection,
    user: UserId,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM password_resets WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO password_resets (user_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET token_hash = excluded.token_hash, \
         created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(user.0)
    .bind(token_hash)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The account a live token belongs to; None for an unknown, used or expired token.
pub async fn user_of(db: &AnyPool, token_hash: &str, now: i64) -> sqlx::Result<Option<UserId>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT user_id FROM password_resets WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(id,)| UserId(id)))
}

/// Uses a live token up: deletes it and returns its account, or None when it was not
/// live. Of two requests racing with one token, one gets the account.
pub async fn take(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> sqlx::Result<Option<UserId>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "DELETE FROM password_resets WHERE token_hash = $1 AND expires_at > $2 \
         RETURNING user_id",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().next().map(|(id,)| UserId(id)))
}

/// Sets the password of a reset: stores the hash, bumps the credential version (so no
/// session made before works), ends every session and voids every other token of the
/// account. The mailed link proved the address, so it counts as confirmed from now on
/// (someone who signed up with another's address loses the account to its owner).
/// Returns the new credential version, None when the account is gone.
pub async fn set_password(
    conn: &mut AnyConnection,
    user: UserId,
    hash: &str,
) -> sqlx::Result<Option<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "UPDATE users SET password_hash = $1, credential_version = credential_version + 1, \
         email_confirmed = 1 WHERE id = $2 AND kind = 'local' RETURNING credential_version",
    )
    .bind(hash)
    .bind(user.0)
    .fetch_all(&mut *conn)
    .await?;
    let Some((version,)) = rows.into_iter().next() else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM password_resets WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *conn)
        .await?;
    Ok(Some(version))
}

/// Whether an account from an OpenID provider has this (normalized) email: it has no
/// password here to reset.
pub async fn oidc_account_has_email(db: &AnyPool, email: &str) -> sqlx::Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM users WHERE kind = 'oidc' AND email = $1 LIMIT 1")
            .bind(email)
            .fetch_optional(db)
            .await?;
    Ok(row.is_some())
}
