//! The public listings of tag and author pages and the tag index. Every query here
//! shows only what [`posts::VISIBLE`](super::posts::VISIBLE) lets readers see at the
//! time given, the home page's condition, so a scheduled post appears here when due.

use sqlx::AnyPool;
use time::OffsetDateTime;

use super::posts::{visible_at, PostSummary};
use super::tags::TagCount;
use super::unix;
use crate::domain::UserId;

/// What a listing shows of each post (with its excerpt); a feed adds the HTML.
const SUMMARY: &str = "p.id, p.slug, p.title, u.name AS author_name, \
    u.handle AS author_handle, p.published, p.published_at, p.updated_at, p.excerpt_html";

fn columns(with_html: bool) -> String {
    if with_html {
        format!("{SUMMARY}, p.body_html")
    } else {
        SUMMARY.to_string()
    }
}

/// Which rows of a listing to read, and whether with each post's HTML (for a feed).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// The current time: what is due by then is public.
    pub now: OffsetDateTime,
    pub limit: i64,
    pub offset: i64,
    pub with_html: bool,
}

/// Public posts with the tag, newest first.
pub async fn by_tag(db: &AnyPool, tag_id: i64, page: Page) -> sqlx::Result<Vec<PostSummary>> {
    sqlx::query_as(&format!(
        "SELECT {} FROM post_tags pt JOIN posts p ON p.id = pt.post_id \
         JOIN users u ON u.id = p.author_id WHERE pt.tag_id = $1 AND {} \
         ORDER BY p.published_at DESC, p.id DESC LIMIT $2 OFFSET $3",
        columns(page.with_html),
        visible_at(4)
    ))
    .bind(tag_id)
    .bind(page.limit)
    .bind(page.offset)
    .bind(unix(page.now))
    .fetch_all(db)
    .await
}

/// The author's public posts, newest first.
pub async fn by_author(db: &AnyPool, author: UserId, page: Page) -> sqlx::Result<Vec<PostSummary>> {
    sqlx::query_as(&format!(
        "SELECT {} FROM posts p JOIN users u ON u.id = p.author_id \
         WHERE p.author_id = $1 AND {} \
         ORDER BY p.published_at DESC, p.id DESC LIMIT $2 OFFSET $3",
        columns(page.with_html),
        visible_at(4)
    ))
    .bind(author.0)
    .bind(page.limit)
    .bind(page.offset)
    .bind(unix(page.now))
    .fetch_all(db)
    .await
}

/// Every tag that some post public at `now` has, with how many, by slug.
pub async fn tag_index(db: &AnyPool, now: OffsetDateTime) -> sqlx::Result<Vec<TagCount>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(&format!(
        "SELECT t.slug, t.name, COUNT(*) AS posts FROM tags t \
         JOIN post_tags pt ON pt.tag_id = t.id JOIN posts p ON p.id = pt.post_id \
         WHERE {} GROUP BY t.id, t.slug, t.name ORDER BY t.slug",
        visible_at(1)
    ))
    .bind(unix(now))
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(slug, name, posts)| TagCount { slug, name, posts })
        .collect())
}
