//! The number that says whether public pages may have changed (migration 0011: triggers
//! bump it in every write to what they show), read by `web::page_cache`.

use sqlx::AnyPool;

use super::Big;

/// What an instance's page cache needs to know, in one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Changes with every committed write that can change a public page.
    pub generation: i64,
    /// The earliest publication time (unix seconds) after `since` of a published post: when
    /// a page rendered since then may stop being true. None when no post is due later.
    pub next_due: Option<i64>,
}

/// The generation now, and the first publication time after `since` (unix seconds).
pub async fn read(db: &AnyPool, since: i64) -> sqlx::Result<Snapshot> {
    let (generation, Big(due)): (i64, Big) = sqlx::query_as(
        "SELECT g.generation, CAST(COALESCE((SELECT MIN(p.published_at) FROM posts p \
         WHERE p.published = 1 AND p.published_at > $1), 0) AS TEXT) FROM page_generation g \
         WHERE g.id = 1",
    )
    .bind(since)
    .fetch_one(db)
    .await?;
    Ok(Snapshot {
        generation,
        next_due: (due > 0).then_some(due),
    })
}
