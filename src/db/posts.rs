//! Posts: drafts and published ones, with their Markdown source and the sanitized HTML
//! rendered when they were saved.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, FromRow, Row};
use time::OffsetDateTime;

use super::tags::{self, NewTag};
use super::{flag, is_unique_violation, time_at, time_or_never, unix, WriteTx};
use crate::domain::{PostId, UserId};

/// A post with its author's name, as the post page and the editor need it.
#[derive(Debug, Clone)]
pub struct Post {
    pub id: PostId,
    pub author_id: UserId,
    pub author_name: String,
    /// "" while the author has no handle yet.
    pub author_handle: String,
    pub slug: String,
    pub title: String,
    pub body_md: String,
    pub body_html: String,
    /// The excerpt field as typed ("" when none).
    pub excerpt_md: String,
    /// The excerpt as listings show it, sanitized when saved ("" when the post has none).
    pub excerpt_html: String,
    pub published: bool,
    /// When it is (or was) published: first publication, or the time chosen for it, which
    /// may be in the future (scheduled). None for a draft never published nor timed.
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
            author_handle: row.try_get("author_handle")?,
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            body_md: row.try_get("body_md")?,
            body_html: row.try_get("body_html")?,
            excerpt_md: row.try_get("excerpt_md")?,
            excerpt_html: row.try_get("excerpt_html")?,
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

    /// Whether readers may see the post at `now`: [`VISIBLE`] for one post in hand.
    pub fn is_visible(&self, now: OffsetDateTime) -> bool {
        is_visible(self.published, self.published_at, now)
    }

    /// Published, but not yet due at `now`.
    pub fn is_scheduled(&self, now: OffsetDateTime) -> bool {
        self.published && !self.is_visible(now)
    }
}

/// Whether readers may see posts: published, and their time has come. Every public
/// page and listing (home, post page, feeds, tag and author pages, sitemap, search) must
/// filter with this, with the current time bound at `$now`; nothing else decides
/// visibility, so a scheduled post appears everywhere at once when due, on every
/// instance, with no background job. Usage: `VISIBLE.replace("$now", "$3")` (the
/// placeholder of the bound `unix(now)`), on posts aliased `p`. `posts_home` serves it
/// (`posts_author_public` on author pages).
pub(crate) const VISIBLE: &str = "p.published = 1 AND p.published_at <= $now";

/// [`VISIBLE`] with the current time bound at placeholder `$n`.
pub(crate) fn visible_at(n: usize) -> String {
    VISIBLE.replace("$now", &format!("${n}"))
}

/// [`VISIBLE`] evaluated in Rust, for a post already read.
fn is_visible(published: bool, at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    published && at.is_none_or(|at| at <= now)
}

/// A row of a listing: no Markdown source, and HTML only where the caller asked for it.
#[derive(Debug, Clone)]
pub struct PostSummary {
    pub id: PostId,
    pub slug: String,
    pub title: String,
    pub author_name: String,
    /// "" while the author has no handle yet.
    pub author_handle: String,
    pub published: bool,
    /// None until first published.
    pub published_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
    /// Only in feeds, which carry the whole post.
    pub body_html: Option<String>,
    /// Sanitized when saved ("" when the post has none); in public listings and feeds.
    pub excerpt_html: Option<String>,
}

/// A column the query may not have selected.
fn optional_text(row: &AnyRow, column: &str) -> sqlx::Result<Option<String>> {
    match row.try_get(column) {
        Ok(html) => Ok(Some(html)),
        Err(sqlx::Error::ColumnNotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl<'r> FromRow<'r, AnyRow> for PostSummary {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(PostSummary {
            id: PostId(row.try_get("id")?),
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            author_name: row.try_get("author_name")?,
            author_handle: row.try_get("author_handle")?,
            published: flag(row, "published")?,
            published_at: time_or_never(row, "published_at")?,
            updated_at: time_at(row, "updated_at")?,
            body_html: optional_text(row, "body_html")?,
            excerpt_html: optional_text(row, "excerpt_html")?,
        })
    }
}

impl PostSummary {
    /// The date readers see: first publication, or the last edit of a draft.
    pub fn shown_date(&self) -> OffsetDateTime {
        self.published_at.unwrap_or(self.updated_at)
    }

    /// Published, but not yet due at `now`.
    pub fn is_scheduled(&self, now: OffsetDateTime) -> bool {
        self.published && !is_visible(self.published, self.published_at, now)
    }

    /// Where a listing that ends with this post goes on: the posts after it.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            at: self.published_at.map_or(0, unix),
            id: self.id.0,
        }
    }
}

/// A place in the newest-first order of visible posts: (published_at, id) of the last
/// post shown. Written in links as `<unix seconds>-<id>`; readers should treat it as
/// opaque, but it stays valid as long as the order does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    at: i64,
    id: i64,
}

impl Cursor {
    pub(crate) fn new(at: i64, id: i64) -> Cursor {
        Cursor { at, id }
    }

    pub(crate) fn at(self) -> i64 {
        self.at
    }

    pub(crate) fn id(self) -> i64 {
        self.id
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.at, self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = ();

    /// Two non-negative decimal integers joined by '-'; anything else is refused.
    fn from_str(s: &str) -> Result<Cursor, ()> {
        let (at, id) = s.split_once('-').ok_or(())?;
        let number = |n: &str| -> Result<i64, ()> {
            if n.is_empty() || n.len() > 18 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            n.parse().map_err(|_| ())
        };
        Ok(Cursor {
            at: number(at)?,
            id: number(id)?,
        })
    }
}

pub struct NewPost<'a> {
    pub author_id: UserId,
    pub title: &'a str,
    pub body_md: &'a str,
    pub body_html: &'a str,
    pub excerpt_md: &'a str,
    pub excerpt_html: &'a str,
    /// `body_html` as plain text, which search indexes.
    pub body_text: &'a str,
    pub published: bool,
    /// The publication time chosen (future: scheduled); None: `now` once published.
    pub publish_at: Option<OffsetDateTime>,
    pub now: OffsetDateTime,
}

pub struct PostUpdate<'a> {
    pub title: &'a str,
    pub body_md: &'a str,
    pub body_html: &'a str,
    pub excerpt_md: &'a str,
    pub excerpt_html: &'a str,
    /// `body_html` as plain text, which search indexes.
    pub body_text: &'a str,
    pub published: bool,
    /// As decided by [`publication_time`].
    pub published_at: Option<OffsetDateTime>,
    pub now: OffsetDateTime,
}

/// The publication time an edit saves. A time typed in the form wins; without one, a post
/// already out keeps its date (fixing a typo does not move it to the top of the home
/// page), a post first published now gets `now`, and a scheduled post whose time was
/// cleared is published now (or, as a draft, has no time).
pub fn publication_time(
    stored: Option<OffsetDateTime>,
    typed: Option<OffsetDateTime>,
    published: bool,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    match (typed, stored) {
        (Some(t), _) => Some(t),
        (None, Some(s)) if s <= now => Some(s),
        (None, _) => published.then_some(now),
    }
}

const POST_COLUMNS: &str = "p.id, p.author_id, u.name AS author_name, \
    u.handle AS author_handle, p.slug, p.title, p.body_md, p.body_html, p.excerpt_md, p.excerpt_html, p.published, CAST(p.published_at AS TEXT) AS published_at, \
    CAST(p.created_at AS TEXT) AS created_at, CAST(p.updated_at AS TEXT) AS updated_at";

pub async fn by_slug(db: &AnyPool, slug: &str) -> sqlx::Result<Option<Post>> {
    sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.slug = $1"
    ))
    .bind(slug)
    .fetch_optional(db)
    .await
}

/// The author's posts, drafts included, most recently edited first (without HTML).
pub async fn list_by_author(db: &AnyPool, author_id: UserId) -> sqlx::Result<Vec<PostSummary>> {
    sqlx::query_as(
        "SELECT p.id, p.slug, p.title, u.name AS author_name, u.handle AS author_handle, \
         p.published, CAST(p.published_at AS TEXT) AS published_at, \
         CAST(p.updated_at AS TEXT) AS updated_at FROM posts p JOIN users u ON u.id = p.author_id \
         WHERE p.author_id = $1 ORDER BY p.updated_at DESC, p.id DESC",
    )
    .bind(author_id.0)
    .fetch_all(db)
    .await
}

/// Inserts a post with its tags under `base_slug`, or `base_slug-2`, `-3`, ... when a post
/// its author can see (a visible one, or one of their own) has it. The numbering counts
/// only those, so it says nothing about other authors' drafts and scheduled posts. When the
/// unique index refuses the slug, the numbering is looked at again: a concurrent insert
/// that took it is now counted and the next number is tried; if the number does not move,
/// the slug is held by a post the author cannot see and the post gets a random suffix
/// instead. The post and its tags are one transaction, so no reader, backup or crash ever
/// sees the post without them. Returns the slug the post got.
pub async fn insert(
    db: &AnyPool,
    new: &NewPost<'_>,
    base_slug: &str,
    tags: &[NewTag],
) -> sqlx::Result<String> {
    let published_at = match (new.publish_at, new.published) {
        (Some(at), _) => unix(at),
        (None, true) => unix(new.now),
        (None, false) => 0,
    };
    // Each refusal means another post took a slug meanwhile (PostgreSQL; SQLite's write
    // lock, held from the start, keeps the choice and the insert together), so this ends;
    // the bound is a net for a database that keeps refusing.
    let mut refused: Option<String> = None;
    for _ in 0..INSERT_TRIES {
        let mut tx = WriteTx::begin(db).await?;
        let next = next_visible_slug(&mut tx, base_slug, new.author_id, new.now).await?;
        // The number did not move since the last refusal: the slug is held by a post the
        // author cannot see.
        let chosen = if refused.as_ref() == Some(&next) {
            format!("{base_slug}-{}", random_suffix())
        } else {
            next.clone()
        };
        let res = insert_row(
            tx.conn(),
            &StoredPost {
                author_id: new.author_id,
                slug: &chosen,
                title: new.title,
                body_md: new.body_md,
                body_html: new.body_html,
                body_text: new.body_text,
                excerpt_md: new.excerpt_md,
                excerpt_html: new.excerpt_html,
                published: new.published,
                published_at,
                created_at: unix(new.now),
                updated_at: unix(new.now),
            },
        )
        .await;
        match res {
            Ok(id) => {
                tags::set_in(tx.conn(), id, tags, new.now).await?;
                tx.commit().await?;
                return Ok(chosen);
            }
            Err(e) if is_unique_violation(&e) => {
                // PostgreSQL takes nothing more in this transaction: end it, look again.
                tx.rollback().await?;
                refused = Some(next);
            }
            Err(e) => return Err(e),
        }
    }
    Err(sqlx::Error::Protocol(format!(
        "no free slug for {base_slug:?} after {INSERT_TRIES} tries"
    )))
}

const INSERT_TRIES: usize = 1000;

/// A post row as stored, for writers that have chosen its slug and times (the post form's
/// [`insert`], and the importers).
pub struct StoredPost<'a> {
    pub author_id: UserId,
    pub slug: &'a str,
    pub title: &'a str,
    pub body_md: &'a str,
    pub body_html: &'a str,
    pub body_text: &'a str,
    pub excerpt_md: &'a str,
    pub excerpt_html: &'a str,
    pub published: bool,
    /// Unix seconds; 0 when never published.
    pub published_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Inserts one post row on `conn` (the caller's transaction); returns its id. A slug
/// already held is a unique violation.
pub async fn insert_row(conn: &mut AnyConnection, p: &StoredPost<'_>) -> sqlx::Result<PostId> {
    // fetch_all: a RETURNING statement must run to its end.
    let ids: Vec<(i64,)> = sqlx::query_as(
        "INSERT INTO posts (author_id, slug, title, body_md, body_html, excerpt_md, \
         excerpt_html, published, published_at, created_at, updated_at, body_text) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(p.author_id.0)
    .bind(p.slug)
    .bind(p.title)
    .bind(p.body_md)
    .bind(p.body_html)
    .bind(p.excerpt_md)
    .bind(p.excerpt_html)
    .bind(p.published as i64)
    .bind(p.published_at)
    .bind(p.created_at)
    .bind(p.updated_at)
    .bind(p.body_text)
    .fetch_all(conn)
    .await?;
    ids.into_iter()
        .next()
        .map(|(id,)| PostId(id))
        .ok_or(sqlx::Error::RowNotFound)
}

/// Every slug that is `base` or starts with `base-`, whoever's post holds it.
pub async fn slugs_under(
    conn: &mut AnyConnection,
    base: &str,
) -> sqlx::Result<std::collections::HashSet<String>> {
    // Slugs hold only [a-z0-9-], so the pattern's only wildcard is its own '%'.
    let taken: Vec<(String,)> =
        sqlx::query_as("SELECT slug FROM posts WHERE slug = $1 OR slug LIKE $2")
            .bind(base)
            .bind(format!("{base}-%"))
            .fetch_all(conn)
            .await?;
    Ok(taken.into_iter().map(|(s,)| s).collect())
}

/// The first of `base`, `base-2`, `base-3`, ... that no post visible to `author` at `now`
/// holds (visible to all, or the author's own).
async fn next_visible_slug(
    tx: &mut WriteTx,
    base: &str,
    author: UserId,
    now: OffsetDateTime,
) -> sqlx::Result<String> {
    // Slugs hold only [a-z0-9-], so the LIKE pattern has no wildcard but its own '%'.
    // SQLite cannot use the slug index for that LIKE, and walked every visible post (3 ms
    // a post at 1,000 posts, growing with them); in its binary order the slugs starting
    // with `base` and a '-' or nothing lie between `base` and `base.` ('.' follows '-'
    // and precedes every slug character), a range the index serves. (PostgreSQL's text
    // order depends on the collation, so it keeps the plain LIKE.)
    let sqlite = tx.is_sqlite();
    // The visibility test goes inside coalesce() there, or SQLite prefers to walk the
    // visible posts by their indexes again.
    let sql = if sqlite {
        format!(
            "SELECT p.slug FROM posts p WHERE p.slug >= $1 AND p.slug < $5 \
             AND (p.slug = $1 OR p.slug LIKE $2) AND coalesce(({}) OR p.author_id = $3, 0)",
            visible_at(4)
        )
    } else {
        format!(
            "SELECT p.slug FROM posts p WHERE (p.slug = $1 OR p.slug LIKE $2) \
             AND (({}) OR p.author_id = $3)",
            visible_at(4)
        )
    };
    let q = sqlx::query_as(&sql)
        .bind(base)
        .bind(format!("{base}-%"))
        .bind(author.0)
        .bind(unix(now));
    let q = if sqlite {
        q.bind(format!("{base}."))
    } else {
        q
    };
    let taken: Vec<(String,)> = q.fetch_all(tx.conn()).await?;
    let taken: std::collections::HashSet<String> = taken.into_iter().map(|(s,)| s).collect();
    if !taken.contains(base) {
        return Ok(base.to_string());
    }
    let n = (2..)
        .find(|n| !taken.contains(&format!("{base}-{n}")))
        .unwrap_or(2);
    Ok(format!("{base}-{n}"))
}

/// A letter then seven random lowercase letters and digits (about 41 bits): a slug suffix
/// that neither counts nor names the posts it avoids, and, starting with a letter, never
/// reads as the numbering of `base-2`, `base-3`, ...
fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..8)
        .map(|i| {
            let of = if i == 0 { 26 } else { CHARS.len() };
            CHARS[rng.gen_range(0..of)] as char
        })
        .collect()
}

/// Saves an edit and the post's tags in one transaction, with the publication time
/// [`publication_time`] decided.
pub async fn update(
    db: &AnyPool,
    id: PostId,
    up: &PostUpdate<'_>,
    tags: &[NewTag],
) -> sqlx::Result<()> {
    let mut tx = WriteTx::begin(db).await?;
    sqlx::query(
        "UPDATE posts SET title = $1, body_md = $2, body_html = $3, excerpt_md = $4, \
         excerpt_html = $5, published = $6, published_at = $7, updated_at = $8, \
         body_text = $10 WHERE id = $9",
    )
    .bind(up.title)
    .bind(up.body_md)
    .bind(up.body_html)
    .bind(up.excerpt_md)
    .bind(up.excerpt_html)
    .bind(up.published as i64)
    .bind(up.published_at.map_or(0, unix))
    .bind(unix(up.now))
    .bind(id.0)
    .bind(up.body_text)
    .execute(tx.conn())
    .await?;
    tags::set_in(tx.conn(), id, tags, up.now).await?;
    tx.commit().await
}

pub async fn delete(db: &AnyPool, id: PostId) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM posts WHERE id = $1")
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(())
}

/// A post saved before excerpts existed, waiting for its excerpt (migration 0008 lists
/// them in `excerpt_backfill`).
#[derive(Debug, Clone)]
pub struct AwaitingExcerpt {
    pub id: PostId,
    pub body_md: String,
    pub excerpt_md: String,
}

/// Up to `limit` posts still waiting for their excerpt, by id.
pub async fn awaiting_excerpt(db: &AnyPool, limit: i64) -> sqlx::Result<Vec<AwaitingExcerpt>> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT p.id, p.body_md, p.excerpt_md FROM excerpt_backfill b \
         JOIN posts p ON p.id = b.post_id ORDER BY b.post_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, body_md, excerpt_md)| AwaitingExcerpt {
            id: PostId(id),
            body_md,
            excerpt_md,
        })
        .collect())
}

/// Stores the excerpt rendered for `post` and takes it off the waiting list. The excerpt
/// is stored only while the post still has none and is as it was read: an edit saved
/// meanwhile made its own. Neither `updated_at` nor anything else moves: the post did not
/// change. Safe to repeat.
pub async fn set_awaited_excerpt(
    db: &AnyPool,
    post: &AwaitingExcerpt,
    excerpt_html: &str,
) -> sqlx::Result<()> {
    if !excerpt_html.is_empty() {
        sqlx::query(
            "UPDATE posts SET excerpt_html = $1 WHERE id = $2 AND excerpt_html = '' \
             AND body_md = $3 AND excerpt_md = $4",
        )
        .bind(excerpt_html)
        .bind(post.id.0)
        .bind(&post.body_md)
        .bind(&post.excerpt_md)
        .execute(db)
        .await?;
    }
    sqlx::query("DELETE FROM excerpt_backfill WHERE post_id = $1")
        .bind(post.id.0)
        .execute(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::random_suffix;

    #[test]
    fn a_random_suffix_never_reads_as_a_number() {
        for _ in 0..2000 {
            let s = random_suffix();
            assert_eq!(s.len(), 8);
            assert!(s.starts_with(|c: char| c.is_ascii_lowercase()), "{s}");
            assert!(s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        }
    }
}
