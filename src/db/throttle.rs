//! Attempt counters for login, password checks and signup. An attempt is *reserved*
//! before the costly work (an argon2 verification, a signup's hash) by one upsert that
//! counts and decides at once, so parallel requests, on one instance or several, cannot
//! all pass a check made before any of them was counted. A reservation counts as a
//! failure until the caller releases it.
//!
//! Two kinds of counter share the table:
//! - windowed (clients, signups): at most `limit` reservations per `window` seconds;
//! - consecutive (accounts, devices): every reservation moves `locked_until` forward by
//!   the caller's wait for that many failures, and none is granted while it lies ahead.
//!   `in_flight` counts reservations not yet settled, so that a success can tell whether
//!   it was alone (and may clear the counter) or inside a burst (and may only release
//!   its own reservation).

use sqlx::AnyPool;

/// After this long an unsettled reservation no longer counts as in flight (its request
/// died); its failure stays counted.
const IN_FLIGHT_STALE: i64 = 60;

/// The outcome of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Granted; `count` is the key's count including this reservation.
    Granted { count: i64 },
    /// Refused without counting; retry after `wait_seconds` (at least 1).
    Refused { wait_seconds: i64 },
}

/// Reserves one attempt on a windowed counter: granted while fewer than `limit` were
/// counted in the current window (which starts at its first attempt and lasts `window`
/// seconds).
pub async fn reserve_in_window(
    db: &AnyPool,
    key: &str,
    now: i64,
    window: i64,
    limit: i64,
) -> sqlx::Result<Reservation> {
    let granted: Vec<(i64,)> = sqlx::query_as(
        "INSERT INTO login_throttle \
           (key, failures, window_start, locked_until, updated_at, in_flight, in_flight_at) \
         VALUES ($1, 1, $2, 0, $2, 0, 0) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 \
                           ELSE login_throttle.failures + 1 END, \
           window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 \
                               ELSE login_throttle.window_start END, \
           updated_at = $2 \
         WHERE login_throttle.window_start <= $3 OR login_throttle.failures < $4 \
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(now - window)
    .bind(limit)
    .fetch_all(db)
    .await?;
    if let Some((count,)) = granted.into_iter().next() {
        return Ok(Reservation::Granted { count });
    }
    let start: Option<(i64,)> =
        sqlx::query_as("SELECT window_start FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(db)
            .await?;
    let wait = start.map_or(1, |(s,)| s + window - now);
    Ok(Reservation::Refused {
        wait_seconds: wait.max(1),
    })
}

/// Reserves one attempt on a consecutive counter. `waits[n - 1]` is the wait after `n`
/// failures (the last entry for any more); failures older than `window` seconds are
/// forgotten.
pub async fn reserve_consecutive(
    db: &AnyPool,
    key: &str,
    now: i64,
    window: i64,
    waits: &[i64],
) -> sqlx::Result<Reservation> {
    let count = "(CASE WHEN login_throttle.window_start <= $3 THEN 1 \
                 ELSE login_throttle.failures + 1 END)";
    let in_flight = "(CASE WHEN login_throttle.in_flight_at <= $4 THEN 0 \
                     ELSE login_throttle.in_flight END)";
    // The waits are the caller's constants, not input: safe to write into the SQL.
    let mut wait_of_count = format!("(CASE {count}");
    for (i, w) in waits.iter().enumerate() {
        wait_of_count.push_str(&format!(" WHEN {} THEN {w}", i + 1));
    }
    wait_of_count.push_str(&format!(
        " ELSE {} END)",
        waits.last().copied().unwrap_or(0)
    ));
    let first_wait = waits.first().copied().unwrap_or(0);
    let sql = format!(
        "INSERT INTO login_throttle \
           (key, failures, window_start, locked_until, updated_at, in_flight, in_flight_at) \
         VALUES ($1, 1, $2, $2 + {first_wait}, $2, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = {count}, \
           window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 \
                               ELSE login_throttle.window_start END, \
           locked_until = $2 + {wait_of_count}, \
           in_flight = {in_flight} + 1, \
           in_flight_at = $2, \
           updated_at = $2 \
         WHERE login_throttle.locked_until <= $2 \
         RETURNING failures"
    );
    let granted: Vec<(i64,)> = sqlx::query_as(&sql)
        .bind(key)
        .bind(now)
        .bind(now - window)
        .bind(now - IN_FLIGHT_STALE)
        .fetch_all(db)
        .await?;
    if let Some((count,)) = granted.into_iter().next() {
        return Ok(Reservation::Granted { count });
    }
    let until: Option<(i64,)> =
        sqlx::query_as("SELECT locked_until FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(db)
            .await?;
    let wait = until.map_or(1, |(u,)| u - now);
    Ok(Reservation::Refused {
        wait_seconds: wait.max(1),
    })
}

/// Settles a reservation that turned out to be a failure: it stays counted, and is no
/// longer in flight.
pub async fn settle_failure(db: &AnyPool, key: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE login_throttle SET \
         in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END \
         WHERE key = $1",
    )
    .bind(key)
    .execute(db)
    .await?;
    Ok(())
}

/// Takes a reservation back, as if the attempt had never been made (it was refused
/// elsewhere, succeeded on a windowed counter, or could not be checked).
pub async fn release(db: &AnyPool, key: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE login_throttle SET \
         failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END, \
         in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END \
         WHERE key = $1",
    )
    .bind(key)
    .execute(db)
    .await?;
    Ok(())
}

/// Settles a successful reservation on a consecutive counter. Alone in flight, the
/// success ends the run of failures and the counter is forgotten; inside a burst it only
/// releases its own reservation, so the burst's failures and lock stand.
pub async fn settle_success(db: &AnyPool, key: &str, now: i64) -> sqlx::Result<()> {
    // One key named twice is one row, released once.
    succeeded(db, key, key, now).await
}

/// A success on both of an attempt's counters, in two statements rather than one per
/// counter: the windowed one (`released`) takes its reservation back, and the
/// consecutive one (`settled`) is settled as [`settle_success`] does. Both release
/// first; the consecutive counter is then forgotten if no other reservation is in
/// flight on it (one that came in meanwhile keeps it, as in a burst).
pub async fn succeeded(db: &AnyPool, released: &str, settled: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE login_throttle SET \
         failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END, \
         in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END \
         WHERE key IN ($1, $2)",
    )
    .bind(released)
    .bind(settled)
    .execute(db)
    .await?;
    sqlx::query(
        "DELETE FROM login_throttle WHERE key = $1 AND (in_flight <= 0 OR in_flight_at <= $2)",
    )
    .bind(settled)
    .bind(now - IN_FLIGHT_STALE)
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets counters untouched since `before`, so the table does not grow without bound.
pub async fn prune(db: &AnyPool, before: i64) -> sqlx::Result<u64> {
    let done =
        sqlx::query("DELETE FROM login_throttle WHERE updated_at < $1 AND locked_until < $1")
            .bind(before)
            .execute(db)
            .await?;
    Ok(done.rows_affected())
}
