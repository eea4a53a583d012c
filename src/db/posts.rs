//! Posts: drafts and published ones, with their Markdown source and the sanitized HTML
//! rendered when they were saved.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, FromRow, Row};
use time::OffsetDateTime;

use super::{flag, is_unique_violation, time_at, time_or_never, unix};
use crate::domain::{PostId, UserId};

/// A post with its author's name, as the post page and the editor need it.
#[derive(Debug, Clone)]
pub struct Post {
    pub id: PostId,
    pub author_id: UserId,
    pub author_name: String,
    pub slug: String,
    pub title: String,
    pub body_md: String,
    pub body_html: String,
    pub published: bool,
    /// None until first published.
    pub published_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl<'r> FromRow<'r, AnyRow> for Post {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(Post {
            id: PostId(row.try_get("id")?),
            author_id: UserId(row.try_get("author_id")?),
            author_name: row.try_get("author_name")?,
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            body_md: row.try_get("body_md")?,
            body_html: row.try_get("body_html")?,
            published: flag(row, "published")?,
            published_at: time_or_never(row, "published_at")?,
            created_at: time_at(row, "created_at")?,
            updated_at: time_at(row, "updated_at")?,
        })
    }
}

impl Post {
    /// The date readers see: first publication, or the last edit of a draft.
    pub fn shown_date(&self) -> OffsetDateTime {
        self.published_at.unwrap_or(self.updated_at)
    }
}

/// A row of a listing: no Markdown source, and HTML only where the caller asked for it.
#[derive(Debug, Clone)]
pub struct PostSummary {
    pub slug: String,
    pub title: String,
    pub author_name: String,
    pub published: bool,
    /// None until first published.
    pub published_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
    /// None in listings that do not show the posts themselves.
    pub body_html: Option<String>,
}

impl<'r> FromRow<'r, AnyRow> for PostSummary {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        let body_html = match row.try_get("body_html") {
            Ok(html) => Some(html),
            Err(sqlx::Error::ColumnNotFound(_)) => None,
            Err(e) => return Err(e),
        };
        Ok(PostSummary {
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            author_name: row.try_get("author_name")?,
            published: flag(row, "published")?,
            published_at: time_or_never(row, "published_at")?,
            updated_at: time_at(row, "updated_at")?,
            body_html,
        })
    }
}

impl PostSummary {
    /// The date readers see: first publication, or the last edit of a draft.
    pub fn shown_date(&self) -> OffsetDateTime {
        self.published_at.unwrap_or(self.updated_at)
    }
}

pub struct NewPost<'a> {
    pub author_id: UserId,
    pub title: &'a str,
    pub body_md: &'a str,
    pub body_html: &'a str,
    /// `body_html` as plain text, which search indexes.
    pub body_text: &'a str,
    pub published: bool,
    pub now: OffsetDateTime,
}

pub struct PostUpdate<'a> {
    pub title: &'a str,
    pub body_md: &'a str,
    pub body_html: &'a str,
    /// `body_html` as plain text, which search indexes.
    pub body_text: &'a str,
    pub published: bool,
    pub now: OffsetDateTime,
}

const POST_COLUMNS: &str = "p.id, p.author_id, u.name AS author_name, p.slug, p.title, \
    p.body_md, p.body_html, p.published, p.published_at, p.created_at, p.updated_at";

pub async fn by_slug(db: &AnyPool, slug: &str) -> sqlx::Result<Option<Post>> {
    sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.slug = $1"
    ))
    .bind(slug)
    .fetch_optional(db)
    .await
}

/// Published posts, newest first. Served by the `posts_home` index.
pub async fn list_published(
    db: &AnyPool,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<PostSummary>> {
    sqlx::query_as(
        "SELECT p.slug, p.title, u.name AS author_name, p.published, p.published_at, \
         p.updated_at, p.body_html FROM posts p JOIN users u ON u.id = p.author_id \
         WHERE p.published = 1 ORDER BY p.published_at DESC, p.id DESC LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// The author's posts, drafts included, most recently edited first (without HTML).
pub async fn list_by_author(db: &AnyPool, author_id: UserId) -> sqlx::Result<Vec<PostSummary>> {
    sqlx::query_as(
        "SELECT p.slug, p.title, u.name AS author_name, p.published, p.published_at, \
         p.updated_at FROM posts p JOIN users u ON u.id = p.author_id \
         WHERE p.author_id = $1 ORDER BY p.updated_at DESC, p.id DESC",
    )
    .bind(author_id.0)
    .fetch_all(db)
    .await
}

/// Inserts a post under `base_slug`, or `base_slug-2`, `-3`, ... when a post its author
/// can see (a published one, or one of their own) has it. The numbering counts only those,
/// so it says nothing about other authors' drafts; when the unique index refuses the slug
/// anyway (someone else's draft has it, or a concurrent insert took it), the post gets a
/// random suffix instead. Returns the slug the post got.
pub async fn insert(db: &AnyPool, new: &NewPost<'_>, base_slug: &str) -> sqlx::Result<String> {
    let mut slug = next_visible_slug(db, base_slug, new.author_id).await?;
    for _ in 0..5 {
        let res = sqlx::query(
            "INSERT INTO posts (author_id, slug, title, body_md, body_html, published, \
             published_at, created_at, updated_at, body_text) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
        )
        .bind(new.author_id.0)
        .bind(&slug)
        .bind(new.title)
        .bind(new.body_md)
        .bind(new.body_html)
        .bind(new.published as i64)
        .bind(if new.published { unix(new.now) } else { 0 })
        .bind(unix(new.now))
        .bind(new.body_text)
        .execute(db)
        .await;
        match res {
            Ok(_) => return Ok(slug),
            Err(e) if is_unique_violation(&e) => slug = format!("{base_slug}-{}", random_suffix()),
            Err(e) => return Err(e),
        }
    }
    Err(sqlx::Error::Protocol(format!(
        "no free slug for {base_slug:?} after 5 tries"
    )))
}

/// The first of `base`, `base-2`, `base-3`, ... that no post visible to `author` holds.
async fn next_visible_slug(db: &AnyPool, base: &str, author: UserId) -> sqlx::Result<String> {
    // Slugs hold only [a-z0-9-], so the LIKE pattern has no wildcard but its own '%'.
    let taken: Vec<(String,)> = sqlx::query_as(
        "SELECT slug FROM posts WHERE (slug = $1 OR slug LIKE $2) \
         AND (published = 1 OR author_id = $3)",
    )
    .bind(base)
    .bind(format!("{base}-%"))
    .bind(author.0)
    .fetch_all(db)
    .await?;
    let taken: std::collections::HashSet<String> = taken.into_iter().map(|(s,)| s).collect();
    if !taken.contains(base) {
        return Ok(base.to_string());
    }
    let n = (2..)
        .find(|n| !taken.contains(&format!("{base}-{n}")))
        .unwrap_or(2);
    Ok(format!("{base}-{n}"))
}

/// Eight random lowercase letters and digits (about 41 bits): a slug suffix that neither
/// counts nor names the posts it avoids.
fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..8)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Saves an edit. The first publication stamps `published_at`; later edits keep it, so
/// fixing a typo does not move a post to the top of the home page.
pub async fn update(db: &AnyPool, id: PostId, up: &PostUpdate<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE posts SET title = $1, body_md = $2, body_html = $3, published = $4, \
         published_at = CASE WHEN $4 = 1 AND published_at = 0 THEN $5 ELSE published_at END, \
         updated_at = $5, body_text = $7 WHERE id = $6",
    )
    .bind(up.title)
    .bind(up.body_md)
    .bind(up.body_html)
    .bind(up.published as i64)
    .bind(unix(up.now))
    .bind(id.0)
    .bind(up.body_text)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete(db: &AnyPool, id: PostId) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM posts WHERE id = $1")
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(())
}
