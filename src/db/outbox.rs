//! The mail outbox: messages queued in the transaction of the change that causes them,
//! claimed by one sender at a time and deleted once the server accepted them.

use sqlx::{AnyConnection, Row};

use super::{Backend, Pool};

/// A message to queue; bodies already sealed (`mail::Mailer::queue`).
pub struct NewMail<'a> {
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
    /// Which mail this is ("password-reset"), for log lines that must not hold the body.
    pub kind: &'a str,
}

/// A message a sender claimed: it alone may deliver it until `lease` runs out.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub kind: String,
    /// Delivery attempts so far, this one included.
    pub attempts: i64,
}

/// Queues a message on `conn` (a transaction, so the message exists exactly when the
/// change that caused it does), due at once.
pub async fn enqueue(conn: &mut AnyConnection, mail: &NewMail<'_>, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (recipient, subject, body_text, body_html, kind, created_at, \
         attempts, next_attempt_at, claimed_until, claim, last_error) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $6, 0, '', '')",
    )
    .bind(mail.recipient)
    .bind(mail.subject)
    .bind(mail.body_text)
    .bind(mail.body_html)
    .bind(mail.kind)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims the oldest due message that nobody holds, for `lease` seconds, under the
/// random `claim`. None when nothing is due. On PostgreSQL the candidate row is locked
/// with SKIP LOCKED, so parallel senders take different rows; on either backend the
/// update re-checks that the row is still unclaimed, so one row goes to one sender.
pub async fn claim_next(
    db: &Pool,
    now: i64,
    lease: i64,
    claim: &str,
) -> sqlx::Result<Option<Claimed>> {
    let lock = match db.backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE outbox SET claimed_until = $1, claim = $2, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM outbox WHERE next_attempt_at <= $3 AND claimed_until <= $3 \
                     ORDER BY next_attempt_at, id LIMIT 1{lock}) \
           AND claimed_until <= $3 \
         RETURNING id, recipient, subject, body_text, body_html, kind, attempts"
    );
    let rows = sqlx::query(&sql)
        .bind(now + lease)
        .bind(claim)
        .bind(now)
        .fetch_all(&db.inner)
        .await?;
    rows.into_iter()
        .next()
        .map(|row| {
            Ok(Claimed {
                id: row.try_get("id")?,
                recipient: row.try_get("recipient")?,
                subject: row.try_get("subject")?,
                body_text: row.try_get("body_text")?,
                body_html: row.try_get("body_html")?,
                kind: row.try_get("kind")?,
                attempts: row.try_get("attempts")?,
            })
        })
        .transpose()
}

/// Forgets a message the server accepted (or one given up on), if `claim` still holds it.
pub async fn remove(db: &Pool, id: i64, claim: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM outbox WHERE id = $1 AND claim = $2")
        .bind(id)
        .bind(claim)
        .execute(&db.inner)
        .await?;
    Ok(())
}

/// Releases a message whose delivery failed, to be tried again at `next_attempt_at`;
/// `error` is what the server said (never the body).
pub async fn retry_later(
    db: &Pool,
    id: i64,
    claim: &str,
    next_attempt_at: i64,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET claimed_until = 0, claim = '', next_attempt_at = $1, last_error = $2 \
         WHERE id = $3 AND claim = $4",
    )
    .bind(next_attempt_at)
    .bind(error)
    .bind(id)
    .bind(claim)
    .execute(&db.inner)
    .await?;
    Ok(())
}

/// Messages waiting to be delivered, and the last error of the oldest that failed.
pub async fn pending(db: &Pool) -> sqlx::Result<(i64, Option<String>)> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
        .fetch_one(&db.inner)
        .await?;
    let last: Option<(String,)> =
        sqlx::query_as("SELECT last_error FROM outbox WHERE last_error <> '' ORDER BY id LIMIT 1")
            .fetch_optional(&db.inner)
            .await?;
    Ok((n, last.map(|(e,)| e)))
}
