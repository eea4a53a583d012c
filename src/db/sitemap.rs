//! What the sitemap lists: every public post's, tag page's and author page's address and
//! last change. Public means [`posts::VISIBLE`](super::posts::VISIBLE) at the time given,
//! so a scheduled post (and a tag or author page only it would open) joins when due.

use time::OffsetDateTime;

use super::posts::visible_at;
use super::{from_unix, unix, Backend, Pool};

/// A public page's path segment (a post's slug, a tag's slug, an author's handle) and
/// when it last changed: its newest public post's last edit for tag and author pages.
#[derive(Debug, Clone)]
pub struct Entry {
    pub slug: String,
    pub updated_at: OffsetDateTime,
}

/// Which pages a sitemap source lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Posts,
    Tags,
    Authors,
}

impl Kind {
    /// The rows (path segment, last change) of this kind's pages, from `posts p` where
    /// `VISIBLE` is `$1`, grouped per page.
    fn select(self, db: &Pool) -> String {
        let visible = visible_at(1);
        let posts = narrow_posts(db, "posts_visible");
        match self {
            Kind::Posts => format!(
                "SELECT p.slug AS seg, p.updated_at AS changed, p.id AS ord FROM {posts} \
                 WHERE {visible}"
            ),
            Kind::Tags => format!(
                "SELECT t.slug AS seg, MAX(p.updated_at) AS changed, t.id AS ord FROM tags t \
                 JOIN post_tags pt ON pt.tag_id = t.id JOIN {posts} ON p.id = pt.post_id \
                 WHERE {visible} GROUP BY t.id, t.slug"
            ),
            Kind::Authors => format!(
                "SELECT u.handle AS seg, MAX(p.updated_at) AS changed, u.id AS ord FROM users u \
                 JOIN {} ON p.author_id = u.id WHERE {visible} AND u.handle <> '' \
                 GROUP BY u.id, u.handle",
                narrow_posts(db, "posts_author_public")
            ),
        }
    }
}

/// `posts p`, read on SQLite through `index`, a narrow one (migration 0018 adds
/// `updated_at` to `posts_visible` and `posts_author_public`): the sitemap needs a few
/// columns of every public post, and SQLite's planner would otherwise take `posts_home`
/// and read every wide row (its Markdown and HTML) from the file, 150 ms a sitemap at
/// 3,000 posts. PostgreSQL keeps those columns apart (TOAST) and plans from statistics.
fn narrow_posts(db: &Pool, index: &str) -> String {
    match db.backend {
        Backend::Sqlite => format!("posts p INDEXED BY {index}"),
        Backend::Postgres => "posts p".to_string(),
    }
}

/// How many pages of this kind are public at `now`.
pub async fn count(db: &Pool, kind: Kind, now: OffsetDateTime) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM ({}) s", kind.select(db)))
        .bind(unix(now))
        .fetch_one(&**db)
        .await?;
    Ok(n)
}

/// When a post public at `now` last changed; None when there is none.
pub async fn last_change(db: &Pool, now: OffsetDateTime) -> sqlx::Result<Option<OffsetDateTime>> {
    let (t,): (i64,) = sqlx::query_as(&format!(
        "SELECT COALESCE(MAX(p.updated_at), 0) FROM {} WHERE {}",
        narrow_posts(db, "posts_visible"),
        visible_at(1)
    ))
    .bind(unix(now))
    .fetch_one(&**db)
    .await?;
    match t {
        0 => Ok(None),
        t => from_unix(t, "updated_at").map(Some),
    }
}

/// Public pages of this kind in a stable order (oldest first), `limit` from `offset`.
pub async fn list(
    db: &Pool,
    kind: Kind,
    now: OffsetDateTime,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Entry>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT s.seg, s.changed FROM ({}) s ORDER BY s.ord LIMIT $2 OFFSET $3",
        kind.select(db)
    ))
    .bind(unix(now))
    .bind(limit)
    .bind(offset)
    .fetch_all(&**db)
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
