//! Passkeys (WebAuthn credentials) of local accounts, and the WebAuthn ceremonies under
//! way (`webauthn_challenges`): each challenge is taken once, by one DELETE ... RETURNING,
//! so of two answers to it (on any instances) at most one is checked.

use sqlx::AnyPool;

use crate::domain::UserId;

/// A passkey as the security page lists it.
#[derive(Debug, Clone)]
pub struct PasskeyRow {
    pub id: i64,
    pub user_id: UserId,
    pub credential_id: String,
    pub user_handle: String,
    pub name: String,
    /// The credential as webauthn-rs serialises it.
    pub passkey: String,
    pub created_at: i64,
    /// When it last logged someone in; 0 for never.
    pub last_used_at: i64,
}

type Row = (i64, i64, String, String, String, String, i64, i64);

fn row(r: Row) -> PasskeyRow {
    PasskeyRow {
        id: r.0,
        user_id: UserId(r.1),
        credential_id: r.2,
        user_handle: r.3,
        name: r.4,
        passkey: r.5,
        created_at: r.6,
        last_used_at: r.7,
    }
}

const COLUMNS: &str =
    "id, user_id, credential_id, user_handle, name, passkey, created_at, last_used_at";

/// The account's passkeys, oldest first.
pub async fn list_of(db: &AnyPool, user: UserId) -> sqlx::Result<Vec<PasskeyRow>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY id"
    ))
    .bind(user.0)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// Whether the account has a passkey.
pub async fn has_passkey(db: &AnyPool, user: UserId) -> sqlx::Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM passkeys WHERE user_id = $1 LIMIT 1")
        .bind(user.0)
        .fetch_optional(db)
        .await?;
    Ok(row.is_some())
}

/// The passkey with this credential id (base64url), whoever's it is.
pub async fn by_credential_id(
    db: &AnyPool,
    credential_id: &str,
) -> sqlx::Result<Option<PasskeyRow>> {
    let found: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1"
    ))
    .bind(credential_id)
    .fetch_optional(db)
    .await?;
    Ok(found.map(row))
}

/// The user handle the account's passkeys carry; None before its first one.
pub async fn user_handle_of(db: &AnyPool, user: UserId) -> sqlx::Result<Option<String>> {
    let found: Option<(String,)> =
        sqlx::query_as("SELECT user_handle FROM passkeys WHERE user_id = $1 ORDER BY id LIMIT 1")
            .bind(user.0)
            .fetch_optional(db)
            .await?;
    Ok(found.map(|(h,)| h))
}

pub struct NewPasskey<'a> {
    pub user_id: UserId,
    pub credential_id: &'a str,
    pub user_handle: &'a str,
    pub name: &'a str,
    pub passkey: &'a str,
    pub now: i64,
}

/// Why a passkey was not stored.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// This credential is registered already (to this account or another).
    #[error("that passkey is registered already")]
    Taken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Stores a new passkey; the credential id's uniqueness decides `Taken`.
pub async fn insert(db: &AnyPool, p: NewPasskey<'_>) -> Result<i64, InsertError> {
    let query = sqlx::query_as(
        "INSERT INTO passkeys (user_id, credential_id, user_handle, name, passkey, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(p.user_id.0)
    .bind(p.credential_id)
    .bind(p.user_handle)
    .bind(p.name)
    .bind(p.passkey)
    .bind(p.now);
    match super::fetch_returning::<(i64,)>(query, db).await {
        Ok((id,)) => Ok(id),
        Err(e) if super::is_unique_violation(&e) => Err(InsertError::Taken),
        Err(e) => Err(e.into()),
    }
}

/// Records a login with the passkey: its updated credential (signature counter, backup
/// state) and when.
pub async fn record_use(db: &AnyPool, id: i64, passkey: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE id = $3")
        .bind(passkey)
        .bind(now)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Removes one of the account's passkeys; returns its name, None when it has no such one.
pub async fn delete(db: &AnyPool, user: UserId, id: i64) -> sqlx::Result<Option<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("DELETE FROM passkeys WHERE id = $1 AND user_id = $2 RETURNING name")
            .bind(id)
            .bind(user.0)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().next().map(|(n,)| n))
}

/// Marks a password-only session as made with a password and a passkey (its owner just
/// used one to register it), and counts the proof as fresh.
pub async fn upgrade_session(db: &AnyPool, session: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sessions SET method = 'password+passkey', proved_at = $1 \
         WHERE id = $2 AND method = 'password'",
    )
    .bind(now)
    .bind(session)
    .execute(db)
    .await?;
    Ok(())
}

/// What a challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceremony {
    /// Adding a passkey to the account.
    Register,
    /// A passkey after the password (/login/verify).
    SecondFactor,
    /// A passkey alone, from /login (anyone's discoverable credential).
    Login,
}

impl Ceremony {
    pub fn as_str(self) -> &'static str {
        match self {
            Ceremony::Register => "register",
            Ceremony::SecondFactor => "second-factor",
            Ceremony::Login => "login",
        }
    }
}

pub struct NewChallenge<'a> {
    pub token_hash: &'a str,
    pub ceremony: Ceremony,
    /// Who asked: "session:<id>", "pending:<id>" or "login".
    pub owner: &'a str,
    /// The account it is for; 0 for a login before anyone is known.
    pub user_id: i64,
    /// webauthn-rs's state of the ceremony (JSON).
    pub state: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// Stores a ceremony's challenge; expired ones, and the owner's earlier one of the same
/// kind, go.
pub async fn insert_challenge(db: &AnyPool, c: NewChallenge<'_>) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM webauthn_challenges WHERE expires_at <= $1")
        .bind(c.now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO webauthn_challenges (token_hash, purpose, owner, user_id, state, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(c.token_hash)
    .bind(c.ceremony.as_str())
    .bind(c.owner)
    .bind(c.user_id)
    .bind(c.state)
    .bind(c.now)
    .bind(c.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Takes (deletes) the live challenge with this token hash, kind and owner, and returns
/// its state and account; None when there is none (used, expired, another's, never
/// made). One statement, so a challenge is taken once across instances.
pub async fn take_challenge(
    db: &AnyPool,
    token_hash: &str,
    ceremony: Ceremony,
    owner: &str,
    now: i64,
) -> sqlx::Result<Option<(String, i64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "DELETE FROM webauthn_challenges \
         WHERE token_hash = $1 AND purpose = $2 AND owner = $3 AND expires_at > $4 \
         RETURNING state, user_id",
    )
    .bind(token_hash)
    .bind(ceremony.as_str())
    .bind(owner)
    .bind(now)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().next())
}
