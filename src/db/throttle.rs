//! Failed-login counters. A counter lives for `window` seconds from its first failure;
//! the caller decides from the returned count how long the key stays locked.

use sqlx::AnyPool;

/// Seconds the key must still wait before another attempt; 0 when it may try now.
pub async fn wait_seconds(db: &AnyPool, key: &str, now: i64) -> sqlx::Result<i64> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT locked_until FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(db)
            .await?;
    Ok(row.map_or(0, |(until,)| (until - now).max(0)))
}

/// Counts one failure for `key` and returns the failures counted in its current window.
/// A single upsert, so concurrent failures on several instances are all counted.
pub async fn record_failure(db: &AnyPool, key: &str, now: i64, window: i64) -> sqlx::Result<i64> {
    let (failures,): (i64,) = super::fetch_returning(
        sqlx::query_as(
            "INSERT INTO login_throttle (key, failures, window_start, locked_until, updated_at) \
         VALUES ($1, 1, $2, 0, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 \
                           ELSE login_throttle.failures + 1 END, \
           window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 \
                               ELSE login_throttle.window_start END, \
           updated_at = $2 \
         RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(now - window),
        db,
    )
    .await?;
    Ok(failures)
}

pub async fn lock_until(db: &AnyPool, key: &str, until: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE login_throttle SET locked_until = $1 WHERE key = $2")
        .bind(until)
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn clear(db: &AnyPool, key: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key)
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
