//! What the sitemap lists: every public post's address and last change.

use sqlx::AnyPool;
use time::OffsetDateTime;

use super::from_unix;
use super::search::VISIBLE;

/// A public post's slug and when it last changed.
#[derive(Debug, Clone)]
pub struct Entry {
    pub slug: String,
    pub updated_at: OffsetDateTime,
}

/// How many posts are public.
pub async fn count_visible(db: &AnyPool) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM posts p WHERE {VISIBLE}"))
        .fetch_one(db)
        .await?;
    Ok(n)
}

/// When a public post last changed; None when there is none.
pub async fn last_change(db: &AnyPool) -> sqlx::Result<Option<OffsetDateTime>> {
    let (t,): (i64,) = sqlx::query_as(&format!(
        "SELECT COALESCE(MAX(p.updated_at), 0) FROM posts p WHERE {VISIBLE}"
    ))
    .fetch_one(db)
    .await?;
    match t {
        0 => Ok(None),
        t => from_unix(t, "updated_at").map(Some),
    }
}

/// Public posts in a stable order (oldest first), `limit` from `offset`.
pub async fn list_visible(db: &AnyPool, limit: i64, offset: i64) -> sqlx::Result<Vec<Entry>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT p.slug, p.updated_at FROM posts p WHERE {VISIBLE} ORDER BY p.id LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(slug, t)| {
            Ok(Entry {
                slug,
                updated_at: from_unix(t, "updated_at")?,
            })
        })
        .collect()
}
