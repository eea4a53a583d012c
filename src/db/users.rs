//! Accounts: local ones (email and password hash) and those from an OpenID provider
//! (keyed by issuer and subject).

use sqlx::any::AnyRow;
use sqlx::{AnyPool, FromRow, Row};

use super::{flag, is_unique_violation, named, now, text_or_none};
use crate::domain::{AccountKind, SessionId, UserId};

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub kind: AccountKind,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    /// Bumped by every password change; a session is valid only at the version its login
    /// verified. For a user from a login, the version that login verified.
    pub credential_version: i64,
}

impl<'r> FromRow<'r, AnyRow> for User {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(User {
            id: UserId(row.try_get("id")?),
            kind: named(row, "kind")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            is_admin: flag(row, "is_admin")?,
            credential_version: row.try_get("credential_version")?,
        })
    }
}

/// A local account with its password hash, for verifying a login.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: UserId,
    /// None for accounts without a local password.
    pub password_hash: Option<String>,
    /// The version `password_hash` belongs to.
    pub credential_version: i64,
}

impl<'r> FromRow<'r, AnyRow> for Credentials {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(Credentials {
            id: UserId(row.try_get("id")?),
            password_hash: text_or_none(row, "password_hash")?,
            credential_version: row.try_get("credential_version")?,
        })
    }
}

pub struct NewLocalUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub is_admin: bool,
    /// False for a signup that must confirm its email first (`auth.verify_email`).
    pub email_confirmed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

const COLUMNS: &str = "id, kind, email, name, is_admin, credential_version";

pub async fn by_id(db: &AnyPool, id: UserId) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(db)
        .await
}

/// The local account with this (already normalized) email, if any.
pub async fn local_by_email(db: &AnyPool, email: &str) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE kind = 'local' AND email = $1"
    ))
    .bind(email)
    .fetch_optional(db)
    .await
}

pub async fn local_credentials(db: &AnyPool, email: &str) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as(
        "SELECT id, password_hash, credential_version FROM users \
         WHERE kind = 'local' AND email = $1",
    )
    .bind(email)
    .fetch_optional(db)
    .await
}

/// The user's credential version; None when no such user exists.
pub async fn credential_version(db: &AnyPool, id: UserId) -> sqlx::Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT credential_version FROM users WHERE id = $1")
        .bind(id.0)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|(v,)| v))
}

/// The user's password hash; None when the user has no local password.
pub async fn password_hash(db: &AnyPool, id: UserId) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT password_hash FROM users WHERE id = $1")
        .bind(id.0)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|(h,)| h).filter(|h| !h.is_empty()))
}

/// Creates a local account. The unique index on local emails decides races, so two
/// signups for one address yield one account and one `EmailTaken`.
pub async fn insert_local(db: &AnyPool, new: NewLocalUser<'_>) -> Result<User, InsertError> {
    let res: sqlx::Result<(i64,)> = super::fetch_returning(
        sqlx::query_as(
            "INSERT INTO users (kind, email, name, password_hash, is_admin, created_at, \
             email_confirmed) VALUES ('local', $1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(new.email)
        .bind(new.name)
        .bind(new.password_hash)
        .bind(new.is_admin as i64)
        .bind(now())
        .bind(new.email_confirmed as i64),
        db,
    )
    .await;
    match res {
        Ok((id,)) => {
            give_handle(db, UserId(id), new.name).await;
            Ok(User {
                id: UserId(id),
                kind: AccountKind::Local,
                email: new.email.to_string(),
                name: new.name.to_string(),
                is_admin: new.is_admin,
                credential_version: 0,
            })
        }
        Err(e) if is_unique_violation(&e) => Err(InsertError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

/// Replaces the password hash and bumps the credential version, so every session made
/// with the old password stops working; returns false when no such user exists.
pub async fn update_password(db: &AnyPool, id: UserId, hash: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE users SET password_hash = $1, credential_version = credential_version + 1 \
         WHERE id = $2",
    )
    .bind(hash)
    .bind(id.0)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Changes the password from a session that proved the old one: bumps the credential
/// version, moves `keep` (that session) to the new version and ends every other session
/// of the user, in one transaction. Returns false when no such user exists.
pub async fn change_password_keeping(
    db: &AnyPool,
    id: UserId,
    hash: &str,
    keep: SessionId,
) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE users SET password_hash = $1, credential_version = credential_version + 1 \
         WHERE id = $2",
    )
    .bind(hash)
    .bind(id.0)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE sessions SET credential_version = \
         (SELECT credential_version FROM users WHERE id = $1) WHERE id = $2 AND user_id = $1",
    )
    .bind(id.0)
    .bind(keep.0)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
        .bind(id.0)
        .bind(keep.0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Stores a stronger hash of the same password, only if the stored hash is still
/// `verified` (the one the login just checked): a password changed meanwhile is never
/// overwritten. The credential version stays, as the password did. Returns whether it
/// was stored.
pub async fn rehash_password(
    db: &AnyPool,
    id: UserId,
    verified: &str,
    fresh: &str,
) -> sqlx::Result<bool> {
    let done =
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
            .bind(fresh)
            .bind(id.0)
            .bind(verified)
            .execute(db)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Gives a new account (or one from before handles) its handle, derived from its name.
/// A failure here leaves the account usable; `handles::ensure` tries again when the
/// handle is next needed.
async fn give_handle(db: &AnyPool, id: UserId, name: &str) {
    if let Err(e) = super::handles::ensure(db, id, name).await {
        log::warn!("account {id} has no handle yet: {e}");
    }
}

/// An identity vouched for by an OpenID provider.
pub struct OidcIdentity<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub is_admin: bool,
}

/// Creates the account of (issuer, subject) at its first login, or refreshes its email,
/// name and role from the provider's claims at later ones. Never looks at local accounts:
/// an OIDC identity claiming a local account's email stays a separate account.
pub async fn upsert_oidc(db: &AnyPool, id: OidcIdentity<'_>) -> sqlx::Result<User> {
    let (user_id,): (i64,) = super::fetch_returning(
        sqlx::query_as(
            "INSERT INTO users (kind, email, name, password_hash, is_admin, created_at, \
             oidc_issuer, oidc_subject) VALUES ('oidc', $1, $2, '', $3, $4, $5, $6) \
             ON CONFLICT (oidc_issuer, oidc_subject) WHERE kind = 'oidc' DO UPDATE SET \
             email = excluded.email, name = excluded.name, is_admin = excluded.is_admin \
             RETURNING id",
        )
        .bind(id.email)
        .bind(id.name)
        .bind(id.is_admin as i64)
        .bind(now())
        .bind(id.issuer)
        .bind(id.subject),
        db,
    )
    .await?;
    give_handle(db, UserId(user_id), id.name).await;
    Ok(User {
        id: UserId(user_id),
        kind: AccountKind::Oidc,
        email: id.email.to_string(),
        name: id.name.to_string(),
        is_admin: id.is_admin,
        // OIDC accounts have no local password, so their version never moves.
        credential_version: 0,
    })
}

/// The account of (issuer, subject), if it ever logged in.
pub async fn oidc_user_id(
    db: &AnyPool,
    issuer: &str,
    subject: &str,
) -> sqlx::Result<Option<UserId>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM users WHERE kind = 'oidc' AND oidc_issuer = $1 AND oidc_subject = $2",
    )
    .bind(issuer)
    .bind(subject)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(id,)| UserId(id)))
}
