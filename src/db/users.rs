//! Accounts: local ones (email and password hash) and those from an OpenID provider
//! (keyed by issuer and subject).

use sqlx::any::AnyRow;
use sqlx::{AnyPool, FromRow, Row};

use super::{flag, is_unique_violation, named, now, text_or_none};
use crate::domain::{AccountKind, UserId};

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub kind: AccountKind,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
}

impl<'r> FromRow<'r, AnyRow> for User {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(User {
            id: UserId(row.try_get("id")?),
            kind: named(row, "kind")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            is_admin: flag(row, "is_admin")?,
        })
    }
}

/// A local account with its password hash, for verifying a login.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: UserId,
    /// None for accounts without a local password.
    pub password_hash: Option<String>,
}

impl<'r> FromRow<'r, AnyRow> for Credentials {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(Credentials {
            id: UserId(row.try_get("id")?),
            password_hash: text_or_none(row, "password_hash")?,
        })
    }
}

pub struct NewLocalUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub is_admin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

const COLUMNS: &str = "id, kind, email, name, is_admin";

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
    sqlx::query_as("SELECT id, password_hash FROM users WHERE kind = 'local' AND email = $1")
        .bind(email)
        .fetch_optional(db)
        .await
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
            "INSERT INTO users (kind, email, name, password_hash, is_admin, created_at) \
         VALUES ('local', $1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(new.email)
        .bind(new.name)
        .bind(new.password_hash)
        .bind(new.is_admin as i64)
        .bind(now()),
        db,
    )
    .await;
    match res {
        Ok((id,)) => Ok(User {
            id: UserId(id),
            kind: AccountKind::Local,
            email: new.email.to_string(),
            name: new.name.to_string(),
            is_admin: new.is_admin,
        }),
        Err(e) if is_unique_violation(&e) => Err(InsertError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

/// Replaces the password hash; returns false when no such user exists.
pub async fn update_password(db: &AnyPool, id: UserId, hash: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
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
    Ok(User {
        id: UserId(user_id),
        kind: AccountKind::Oidc,
        email: id.email.to_string(),
        name: id.name.to_string(),
        is_admin: id.is_admin,
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
