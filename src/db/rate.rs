//! Fixed-window request counters per key (e.g. "oidc-start:ip:10.0.0.1"), for requests
//! that cost someone else something, like a call to the OIDC provider. One statement
//! counts and returns, so parallel requests on several instances are all counted.

use sqlx::AnyPool;

/// Counters idle for longer than this are forgotten (no window may be longer).
pub const MAX_WINDOW: i64 = 60 * 60;

/// Counts one hit for `key` and returns the hits in its current window of `window`
/// seconds, this one included.
pub async fn hit(db: &AnyPool, key: &str, now: i64, window: i64) -> sqlx::Result<i64> {
    sqlx::query("DELETE FROM rate_limit WHERE window_start < $1")
        .bind(now - MAX_WINDOW)
        .execute(db)
        .await?;
    let (hits,): (i64,) = super::fetch_returning(
        sqlx::query_as(
            "INSERT INTO rate_limit (key, hits, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               hits = CASE WHEN rate_limit.window_start <= $3 THEN 1 \
                           ELSE rate_limit.hits + 1 END, \
               window_start = CASE WHEN rate_limit.window_start <= $3 THEN $2 \
                                   ELSE rate_limit.window_start END \
             RETURNING hits",
        )
        .bind(key)
        .bind(now)
        .bind(now - window),
        db,
    )
    .await?;
    Ok(hits)
}

/// Takes back one hit, for a request that turned out to be a legitimate one.
pub async fn refund(db: &AnyPool, key: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE rate_limit SET hits = hits - 1 WHERE key = $1 AND hits > 0")
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}
