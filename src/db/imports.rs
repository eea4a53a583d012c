//! What `quire import <engine>` keeps of its runs (migration 0017: `imports`), so that a
//! second run of the same export adds nothing, and the lookups it makes.

use std::collections::HashMap;

use sqlx::{AnyConnection, AnyPool};
use time::OffsetDateTime;

use super::unix;
use crate::domain::UserId;

/// Records that `source_id` of `source` became `target` (a post or upload id).
pub async fn record(
    conn: &mut AnyConnection,
    source: &str,
    source_id: &str,
    kind: &str,
    target: i64,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO imports (source, source_id, kind, target_id, imported_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(source)
    .bind(source_id)
    .bind(kind)
    .bind(target)
    .bind(unix(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// What was imported from `source` before: source id to target id.
pub async fn recorded(db: &AnyPool, source: &str) -> sqlx::Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT source_id, target_id FROM imports WHERE source = $1")
            .bind(source)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

/// The account with this (normalized) email: a local one first, else the oldest other.
pub async fn account_by_email(db: &AnyPool, email: &str) -> sqlx::Result<Option<UserId>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM users WHERE email = $1 \
         ORDER BY CASE WHEN kind = 'local' THEN 0 ELSE 1 END, id LIMIT 1",
    )
    .bind(email)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(id,)| UserId(id)))
}
