use sqlx::{AnyPool, FromRow};

use super::is_unique_violation;

/// A post with its author's name, as the post page and the editor need it.
#[derive(Debug, Clone, FromRow)]
pub struct Post {
    pub id: i64,
    pub author_id: i64,
    pub author_name: String,
    pub slug: String,
    pub title: String,
    pub body_md: String,
    pub body_html: String,
    pub published: i64,
    /// 0 until first published.
    pub published_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Post {
    pub fn is_published(&self) -> bool {
        self.published != 0
    }

    /// The date readers see: first publication, or the last edit of a draft.
    pub fn shown_date(&self) -> i64 {
        shown_date(self.published_at, self.updated_at)
    }
}

/// A row of a listing: no Markdown source, and HTML only where the caller asked for it.
#[derive(Debug, Clone, FromRow)]
pub struct PostSummary {
    pub slug: String,
    pub title: String,
    pub author_name: String,
    pub published: i64,
    /// 0 until first published.
    pub published_at: i64,
    pub updated_at: i64,
    pub body_html: String,
}

impl PostSummary {
    /// The date readers see: first publication, or the last edit of a draft.
    pub fn shown_date(&self) -> i64 {
        shown_date(self.published_at, self.updated_at)
    }
}

fn shown_date(published_at: i64, updated_at: i64) -> i64 {
    if published_at > 0 {
        published_at
    } else {
        updated_at
    }
}

pub struct NewPost<'a> {
    pub author_id: i64,
    pub title: &'a str,
    pub body_md: &'a str,
    pub body_html: &'a str,
    pub published: bool,
    pub now: i64,
}

pub struct PostUpdate<'a> {
    pub title: &'a str,
    pub body_md: &'a str,
    pub body_html: &'a str,
    pub published: bool,
    pub now: i64,
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

/// The author's posts, drafts included, most recently edited first (HTML left empty).
pub async fn list_by_author(db: &AnyPool, author_id: i64) -> sqlx::Result<Vec<PostSummary>> {
    sqlx::query_as(
        "SELECT p.slug, p.title, u.name AS author_name, p.published, p.published_at, \
         p.updated_at, '' AS body_html FROM posts p JOIN users u ON u.id = p.author_id \
         WHERE p.author_id = $1 ORDER BY p.updated_at DESC, p.id DESC",
    )
    .bind(author_id)
    .fetch_all(db)
    .await
}

/// Inserts a post under `base_slug`, or `base_slug-2`, `-3`, ... when taken. The unique
/// index decides: a slug taken by a concurrent insert makes us try the next one.
/// Returns the slug the post got.
pub async fn insert(db: &AnyPool, new: &NewPost<'_>, base_slug: &str) -> sqlx::Result<String> {
    for _ in 0..5 {
        let slug = next_free_slug(db, base_slug).await?;
        let res = sqlx::query(
            "INSERT INTO posts (author_id, slug, title, body_md, body_html, published, \
             published_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(new.author_id)
        .bind(&slug)
        .bind(new.title)
        .bind(new.body_md)
        .bind(new.body_html)
        .bind(new.published as i64)
        .bind(if new.published { new.now } else { 0 })
        .bind(new.now)
        .execute(db)
        .await;
        match res {
            Ok(_) => return Ok(slug),
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(sqlx::Error::Protocol(format!(
        "no free slug for {base_slug:?} after 5 tries"
    )))
}

async fn next_free_slug(db: &AnyPool, base: &str) -> sqlx::Result<String> {
    // Slugs hold only [a-z0-9-], so the LIKE pattern has no wildcard but its own '%'.
    let taken: Vec<(String,)> =
        sqlx::query_as("SELECT slug FROM posts WHERE slug = $1 OR slug LIKE $2")
            .bind(base)
            .bind(format!("{base}-%"))
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

/// Saves an edit. The first publication stamps `published_at`; later edits keep it, so
/// fixing a typo does not move a post to the top of the home page.
pub async fn update(db: &AnyPool, id: i64, up: &PostUpdate<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE posts SET title = $1, body_md = $2, body_html = $3, published = $4, \
         published_at = CASE WHEN $4 = 1 AND published_at = 0 THEN $5 ELSE published_at END, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(up.title)
    .bind(up.body_md)
    .bind(up.body_html)
    .bind(up.published as i64)
    .bind(up.now)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete(db: &AnyPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM posts WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}
