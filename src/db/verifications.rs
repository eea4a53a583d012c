//! Email confirmation links (`auth.verify_email`), stored as their SHA-256; valid until
//! `expires_at`, used once, one per account. A link confirms one address for one account:
//! the account's own after signup, or the new address of an email change, which replaces
//! the account's email only when the link is used.

use sqlx::{AnyConnection, AnyPool};

use super::is_unique_violation;
use crate::domain::UserId;

/// Records a new link for `user` confirming `email`, in place of any older one (one row
/// per account, replaced in one statement, so of two requests racing one link lives).
pub async fn replace(
    conn: &mut AnyConnection,
    user: UserId,
    email: &str,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM email_verifications WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO email_verifications (user_id, email, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, \
         token_hash = excluded.token_hash, created_at = excluded.created_at, \
         expires_at = excluded.expires_at",
    )
    .bind(user.0)
    .bind(email)
    .bind(token_hash)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Uses a live link up: deletes it and returns its account and the address it confirms;
/// None for an unknown, used, replaced or expired link. Of two requests racing with one
/// link, one gets it.
pub async fn take(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> sqlx::Result<Option<(UserId, String)>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "DELETE FROM email_verifications WHERE token_hash = $1 AND expires_at > $2 \
         RETURNING user_id, email",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().next().map(|(id, e)| (UserId(id), e)))
}

/// What confirming an address did.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The account now has this confirmed address; `previous` is the one it replaced
    /// (the same address after signup).
    Done { previous: String },
    /// Another local account has the address meanwhile: nothing changed.
    Taken,
    /// No such local account.
    Gone,
}

/// Makes `email` the confirmed address of the local account `user`. The unique index on
/// local emails decides a race with another account taking the address.
pub async fn confirm(
    conn: &mut AnyConnection,
    user: UserId,
    email: &str,
) -> sqlx::Result<Confirmed> {
    let previous: Option<(String,)> =
        sqlx::query_as("SELECT email FROM users WHERE id = $1 AND kind = 'local'")
            .bind(user.0)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((previous,)) = previous else {
        return Ok(Confirmed::Gone);
    };
    let done = sqlx::query(
        "UPDATE users SET email = $1, email_confirmed = 1 WHERE id = $2 AND kind = 'local'",
    )
    .bind(email)
    .bind(user.0)
    .execute(&mut *conn)
    .await;
    match done {
        Ok(_) => Ok(Confirmed::Done { previous }),
        Err(e) if is_unique_violation(&e) => Ok(Confirmed::Taken),
        Err(e) => Err(e),
    }
}

/// Whether the account's email is confirmed: always for an account from an OpenID
/// provider (its provider vouches for it) and for one that does not exist.
pub async fn is_confirmed(db: &AnyPool, user: UserId) -> sqlx::Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT email_confirmed FROM users WHERE id = $1 AND kind = 'local'")
            .bind(user.0)
            .fetch_optional(db)
            .await?;
    Ok(row.is_none_or(|(c,)| c != 0))
}

/// The new address a live link of `user` would give the account, when that is not its
/// current one (an email change waiting for confirmation), and when the link expires.
pub async fn pending_change(
    db: &AnyPool,
    user: UserId,
    now: i64,
) -> sqlx::Result<Option<(String, i64)>> {
    sqlx::query_as(
        "SELECT v.email, v.expires_at FROM email_verifications v JOIN users u ON u.id = v.user_id \
         WHERE v.user_id = $1 AND v.expires_at > $2 AND v.email <> u.email",
    )
    .bind(user.0)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Whether a local account other than `user` has this (normalized) email.
pub async fn email_taken(db: &AnyPool, email: &str, user: UserId) -> sqlx::Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM users WHERE kind = 'local' AND email = $1 AND id <> $2")
            .bind(email)
            .bind(user.0)
            .fetch_optional(db)
            .await?;
    Ok(row.is_some())
}
