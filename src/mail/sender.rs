//! The sender task: started at launch on every instance, it claims due messages one at a
//! time (`db::outbox::claim_next`), delivers them and deletes them; a failure is tried
//! again later, the wait doubling each time up to an hour. Woken at once by a request
//! that queued mail, and every `mail.poll_seconds` for mail other instances queued.
//! On shutdown it finishes the message it is delivering and stops; `quire serve` waits
//! for that before closing the database pool.

use std::sync::Arc;
use std::time::Duration;

use rocket::tokio::{self, time::sleep};

use super::{transport, Mailer};
use crate::db::{now, outbox, Pool};

/// How long a claim holds: longer than one delivery can take (its steps time out).
const LEASE: i64 = 120;
/// The longest wait between two attempts at one message.
const MAX_WAIT: u64 = 60 * 60;
/// A message the server refused for good (say, an unknown recipient) is dropped after
/// this many attempts.
const PERMANENT_ATTEMPTS: i64 = 3;

pub async fn run(mailer: Arc<Mailer>, db: Pool, shutdown: rocket::Shutdown) {
    tokio::pin!(shutdown);
    let transport = match transport::build(&mailer.config) {
        Ok(t) => t,
        Err(e) => {
            log::error!("mail: {e}; nothing will be sent");
            return;
        }
    };
    let poll = Duration::from_secs(mailer.config.poll_seconds);
    loop {
        // Deliver everything due, then wait.
        loop {
            match deliver_one(&mailer, &db, &transport).await {
                Ok(true) => {
                    if stopping(&mut shutdown).await {
                        return;
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    log::warn!("mail: outbox unavailable: {e}");
                    break;
                }
            }
        }
        tokio::select! {
            _ = mailer.wake.notified() => {}
            _ = sleep(poll) => {}
            _ = &mut shutdown => return,
        }
    }
}

/// True once Rocket's shutdown has been requested (without waiting for it).
async fn stopping(shutdown: &mut std::pin::Pin<&mut rocket::Shutdown>) -> bool {
    tokio::select! {
        biased;
        _ = shutdown.as_mut() => true,
        _ = std::future::ready(()) => false,
    }
}

/// Delivers the next due message, if any; true when there was one.
pub async fn deliver_one(
    mailer: &Mailer,
    db: &Pool,
    transport: &transport::Transport,
) -> sqlx::Result<bool> {
    let claim = crate::token::generate();
    let Some(m) = outbox::claim_next(db, now(), LEASE, &claim).await? else {
        return Ok(false);
    };
    let label = format!("mail {} ({}) to {}", m.id, m.kind, m.recipient);
    let Some((text, html)) = mailer.open(&m) else {
        log::error!("{label}: cannot be opened (the secret key changed); dropped");
        outbox::remove(db, m.id, &claim).await?;
        return Ok(true);
    };
    let message =
        match transport::message(&mailer.config.from, &m.recipient, &m.subject, text, html) {
            Ok(message) => message,
            Err(e) => {
                log::error!("{label}: {e}; dropped");
                outbox::remove(db, m.id, &claim).await?;
                return Ok(true);
            }
        };
    match transport::send(transport, message).await {
        Ok(()) => {
            log::info!("{label}: delivered");
            outbox::remove(db, m.id, &claim).await?;
        }
        Err(e) if e.permanent && m.attempts >= PERMANENT_ATTEMPTS => {
            log::error!("{label}: refused by the server, dropped: {}", e.message);
            outbox::remove(db, m.id, &claim).await?;
        }
        Err(e) => {
            let wait = backoff(mailer.config.retry_seconds, m.attempts);
            log::warn!(
                "{label}: not delivered (attempt {}), next try in {wait} s: {}",
                m.attempts,
                e.message
            );
            outbox::retry_later(db, m.id, &claim, now() + wait as i64, &e.message).await?;
        }
    }
    Ok(true)
}

/// The wait after `attempts` failures: `first`, doubling, at most an hour.
pub fn backoff(first: u64, attempts: i64) -> u64 {
    let doublings = (attempts.max(1) - 1).min(20) as u32;
    first.saturating_mul(1 << doublings).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn waits_double_up_to_an_hour() {
        assert_eq!(super::backoff(30, 1), 30);
        assert_eq!(super::backoff(30, 2), 60);
        assert_eq!(super::backoff(30, 4), 240);
        assert_eq!(super::backoff(30, 40), 3600);
    }
}
