//! Second factors: authenticator apps (enrolled, or being set up), recovery codes, and
//! the logins waiting for their second step (`login_pending`).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, FromRow, Row};

use super::{flag, named};
use crate::domain::{AuthMethod, UserId};

/// An enrolled authenticator app.
#[derive(Debug, Clone)]
pub struct TotpFactor {
    pub id: i64,
    /// Sealed (`keys::SecretBox`).
    pub secret: String,
    pub created_at: i64,
    /// When a code was last accepted; 0 for never.
    pub last_used_at: i64,
}

/// The account's authenticator app, if it has one.
pub async fn totp_of(db: &AnyPool, user: UserId) -> sqlx::Result<Option<TotpFactor>> {
    let row: Option<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT id, secret, created_at, last_used_at FROM totp_factors WHERE user_id = $1",
    )
    .bind(user.0)
    .fetch_optional(db)
    .await?;
    Ok(
        row.map(|(id, secret, created_at, last_used_at)| TotpFactor {
            id,
            secret,
            created_at,
            last_used_at,
        }),
    )
}

/// Whether the account has any second factor.
pub async fn has_factor(db: &AnyPool, user: UserId) -> sqlx::Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM totp_factors WHERE user_id = $1")
        .bind(user.0)
        .fetch_optional(db)
        .await?;
    Ok(row.is_some())
}

/// Whether the account has a second factor of any kind: an authenticator app or a
/// passkey (what `auth.mfa.require` asks for, and what a password login must be
/// followed by).
pub async fn has_any_factor(db: &AnyPool, user: UserId) -> sqlx::Result<bool> {
    Ok(has_factor(db, user).await? || super::passkeys::has_passkey(db, user).await?)
}

/// Accepts a code of time step `step` for the factor: true only when no code of this
/// step or a later one was accepted before. One UPDATE decides, so of two requests with
/// one code (on any instances) one wins.
pub async fn use_step(db: &AnyPool, factor: i64, step: i64, now: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE totp_factors SET last_step = $1, last_used_at = $2 \
         WHERE id = $3 AND last_step < $1",
    )
    .bind(step)
    .bind(now)
    .bind(factor)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The sealed secret of the account's authenticator app being set up, and when that
/// began; None when none is.
pub async fn enrolment_of(db: &AnyPool, user: UserId) -> sqlx::Result<Option<(String, i64)>> {
    sqlx::query_as("SELECT secret, created_at FROM totp_enrolments WHERE user_id = $1")
        .bind(user.0)
        .fetch_optional(db)
        .await
}

/// Starts (or starts over) setting up an authenticator app with this sealed secret.
pub async fn begin_enrolment(
    db: &AnyPool,
    user: UserId,
    sealed: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO totp_enrolments (user_id, secret, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
         created_at = excluded.created_at",
    )
    .bind(user.0)
    .bind(sealed)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Why an enrolment was not completed.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// The set-up being confirmed is no longer the current one (done or restarted
    /// elsewhere).
    #[error("that set-up is no longer current")]
    Stale,
    /// The account has an authenticator app already.
    #[error("an authenticator app is already set up")]
    Exists,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Completes an enrolment, in one transaction: the set-up `sealed_pending` (as read
/// when its code was checked) ends, the factor is stored with `sealed_factor` and the
/// step of the confirming code as its last, and `code_hashes` replace every recovery
/// code of the account.
pub async fn complete_enrolment(
    db: &AnyPool,
    user: UserId,
    sealed_pending: &str,
    sealed_factor: &str,
    step: i64,
    code_hashes: &[String],
    now: i64,
) -> Result<(), EnrolError> {
    let mut tx = db.begin().await?;
    let taken = sqlx::query("DELETE FROM totp_enrolments WHERE user_id = $1 AND secret = $2")
        .bind(user.0)
        .bind(sealed_pending)
        .execute(&mut *tx)
        .await?;
    if taken.rows_affected() != 1 {
        return Err(EnrolError::Stale);
    }
    let inserted = sqlx::query(
        "INSERT INTO totp_factors (user_id, secret, created_at, last_step, last_used_at) \
         VALUES ($1, $2, $3, $4, $3)",
    )
    .bind(user.0)
    .bind(sealed_factor)
    .bind(now)
    .bind(step)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if super::is_unique_violation(&e) => return Err(EnrolError::Exists),
        Err(e) => return Err(e.into()),
    }
    replace_codes_in(&mut tx, user, code_hashes, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the account's authenticator app, its set-up and its recovery codes; returns
/// whether it had an app.
pub async fn remove_all(db: &AnyPool, user: UserId) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    for table in ["totp_enrolments", "recovery_codes"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// Replaces every recovery code of the account with `code_hashes` (one transaction).
pub async fn replace_codes(
    db: &AnyPool,
    user: UserId,
    code_hashes: &[String],
    now: i64,
) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    replace_codes_in(&mut tx, user, code_hashes, now).await?;
    tx.commit().await
}

async fn replace_codes_in(
    conn: &mut AnyConnection,
    user: UserId,
    code_hashes: &[String],
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *conn)
        .await?;
    for hash in code_hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(user.0)
        .bind(hash)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Uses up one of the account's recovery codes: true only for an unused code of this
/// account, and only once (one UPDATE decides, on any instance).
pub async fn use_code(db: &AnyPool, user: UserId, code_hash: &str, now: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 \
         WHERE user_id = $2 AND code_hash = $3 AND used_at = 0",
    )
    .bind(now)
    .bind(user.0)
    .bind(code_hash)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many unused recovery codes the account has.
pub async fn codes_left(db: &AnyPool, user: UserId) -> sqlx::Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at = 0")
            .bind(user.0)
            .fetch_one(db)
            .await?;
    Ok(n)
}

/// Which of these code hashes are unused codes of the account.
pub async fn unused_among(
    db: &AnyPool,
    user: UserId,
    code_hashes: &[String],
) -> sqlx::Result<usize> {
    let mut n = 0;
    for hash in code_hashes {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM recovery_codes WHERE user_id = $1 AND code_hash = $2 AND used_at = 0",
        )
        .bind(user.0)
        .bind(hash)
        .fetch_optional(db)
        .await?;
        n += row.is_some() as usize;
    }
    Ok(n)
}

/// Why a login waits: for a code, or for the account to set up a factor first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingPurpose {
    Verify,
    Enrol,
}

impl PendingPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingPurpose::Verify => "verify",
            PendingPurpose::Enrol => "enrol",
        }
    }
}

impl std::str::FromStr for PendingPurpose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "verify" => Ok(PendingPurpose::Verify),
            "enrol" => Ok(PendingPurpose::Enrol),
            other => Err(format!("unknown pending purpose {other:?}")),
        }
    }
}

/// A login waiting for its second step.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub id: i64,
    pub user_id: UserId,
    pub purpose: PendingPurpose,
    pub first_factor: AuthMethod,
    pub remember: bool,
    pub next: String,
    pub credential_version: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

impl<'r> FromRow<'r, AnyRow> for PendingRow {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(PendingRow {
            id: row.try_get("id")?,
            user_id: UserId(row.try_get("user_id")?),
            purpose: named(row, "purpose")?,
            first_factor: named(row, "first_factor")?,
            remember: flag(row, "remember")?,
            next: row.try_get("next")?,
            credential_version: row.try_get("credential_version")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    }
}

pub struct NewPending<'a> {
    pub token_hash: &'a str,
    pub user_id: UserId,
    pub purpose: PendingPurpose,
    pub first_factor: AuthMethod,
    pub remember: bool,
    pub next: &'a str,
    pub credential_version: i64,
    pub now: i64,
    pub expires_at: i64,
}

const PENDING_COLUMNS: &str = "p.id, p.user_id, p.purpose, p.first_factor, p.remember, \
    p.next, p.credential_version, p.created_at, p.expires_at";

/// Records a login waiting for its second step; the account's older pending logins
/// and any expired ones end.
pub async fn insert_pending(db: &AnyPool, p: NewPending<'_>) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM login_pending WHERE expires_at <= $1")
        .bind(p.now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO login_pending (token_hash, user_id, purpose, first_factor, remember, \
         next, credential_version, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.token_hash)
    .bind(p.user_id.0)
    .bind(p.purpose.as_str())
    .bind(p.first_factor.as_str())
    .bind(p.remember as i64)
    .bind(p.next)
    .bind(p.credential_version)
    .bind(p.now)
    .bind(p.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The live pending login with this token hash: not expired, and made with the
/// account's current password (its credential version).
pub async fn pending_by_token_hash(
    db: &AnyPool,
    token_hash: &str,
    now: i64,
) -> sqlx::Result<Option<PendingRow>> {
    sqlx::query_as(&format!(
        "SELECT {PENDING_COLUMNS} FROM login_pending p JOIN users u ON u.id = p.user_id \
         WHERE p.token_hash = $1 AND p.expires_at > $2 \
         AND p.credential_version = u.credential_version"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Uses up a pending login: true for exactly one caller, while it is live.
pub async fn take_pending(db: &AnyPool, id: i64, now: i64) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM login_pending WHERE id = $1 AND expires_at > $2")
        .bind(id)
        .bind(now)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends the pending login with this token hash, if any.
pub async fn delete_pending_by_token_hash(db: &AnyPool, token_hash: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM login_pending WHERE token_hash = $1")
        .bind(token_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Ends every pending login of the account.
pub async fn delete_pending_of(db: &AnyPool, user: UserId) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM login_pending WHERE user_id = $1")
        .bind(user.0)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// What `quire user reset-2fa` does, in one transaction: removes the account's
/// factors (authenticator app and passkeys), set-ups, recovery codes, pending logins
/// and sessions. Returns how many
/// sessions ended.
pub async fn reset(db: &AnyPool, user: UserId) -> sqlx::Result<u64> {
    let mut tx = db.begin().await?;
    for table in [
        "totp_factors",
        "totp_enrolments",
        "recovery_codes",
        "login_pending",
        "passkeys",
        "webauthn_challenges",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
    }
    let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ended.rows_affected())
}
