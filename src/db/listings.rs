//! The public listings: the home page, tag pages, author pages and their feeds, and the
//! tag index. One set of queries serves them all, told apart by a [`Scope`], so the
//! home page's keyset cursor ([`Cursor`]) pages tag and author pages too. Every query
//! shows only what [`posts::VISIBLE`](super::posts::VISIBLE) lets readers see at the
//! time given, so a scheduled post appears in every listing at once when due.

use sqlx::any::AnyArguments;
use sqlx::query::QueryAs;
use sqlx::{Any, AnyPool};
use time::OffsetDateTime;

use super::posts::{visible_at, Cursor, PostSummary};
use super::tags::TagCount;
use super::{unix, Big};
use crate::domain::UserId;

/// What a listing shows of each post (with its excerpt); a feed adds the HTML.
const SUMMARY: &str = "p.id, p.slug, p.title, u.name AS author_name, \
    u.handle AS author_handle, p.published, CAST(p.published_at AS TEXT) AS published_at, \
    CAST(p.updated_at AS TEXT) AS updated_at, p.excerpt_html";

/// Which public posts a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every public post (the home page and the site's feed).
    All,
    /// Those with the tag (by its row id).
    Tag(i64),
    /// Those by the author.
    Author(UserId),
}

impl Scope {
    /// The tables and condition of the scope's public posts at the time bound at `$1`,
    /// the scope's id (if any) at `$2`; and the first placeholder left for the caller.
    /// Home and author pages are served by `posts_home` and `posts_author_public`
    /// (entered at the cursor); a tag page walks its tag's posts (`post_tags_tag`) and
    /// keeps the page's rows, so it costs what the tag's size costs, at any depth.
    fn tables_and_condition(self) -> (String, usize) {
        let visible = visible_at(1);
        match self {
            Scope::All => (
                format!("posts p JOIN users u ON u.id = p.author_id WHERE {visible}"),
                2,
            ),
            Scope::Tag(_) => (
                format!(
                    "post_tags pt JOIN posts p ON p.id = pt.post_id \
                     JOIN users u ON u.id = p.author_id WHERE pt.tag_id = $2 AND {visible}"
                ),
                3,
            ),
            Scope::Author(_) => (
                format!(
                    "posts p JOIN users u ON u.id = p.author_id \
                     WHERE p.author_id = $2 AND {visible}"
                ),
                3,
            ),
        }
    }

    /// `query` with the time and the scope's id bound, as [`Scope::tables_and_condition`] numbers them.
    fn bind<'q, O>(
        self,
        query: QueryAs<'q, Any, O, AnyArguments<'q>>,
        now: OffsetDateTime,
    ) -> QueryAs<'q, Any, O, AnyArguments<'q>> {
        let query = query.bind(unix(now));
        match self {
            Scope::All => query,
            Scope::Tag(id) => query.bind(id),
            Scope::Author(id) => query.bind(id.0),
        }
    }
}

fn columns(with_html: bool) -> String {
    if with_html {
        format!("{SUMMARY}, p.body_html")
    } else {
        SUMMARY.to_string()
    }
}

/// The scope's public posts at `now`, newest first, skipping `offset` (the `?page=N`
/// links, and feeds with offset 0), with each post's HTML when `with_html` (for a feed).
/// The skipped rows are still walked (in the index): deep pages go by [`list_before`].
pub async fn list(
    db: &AnyPool,
    scope: Scope,
    now: OffsetDateTime,
    limit: i64,
    offset: i64,
    with_html: bool,
) -> sqlx::Result<Vec<PostSummary>> {
    let (from, n) = scope.tables_and_condition();
    // The rows skipped are walked in the index alone (posts' visibility columns, no
    // author), and only the page's rows are read whole: reading every skipped post's
    // wide row made a deep `?page=N` take seconds at 100,000 posts (64 ms against under
    // 1 ms for page 5,000 of 100,000 on SQLite).
    let ids = from.replacen("JOIN users u ON u.id = p.author_id ", "", 1);
    let sql = format!(
        "SELECT {} FROM posts p JOIN users u ON u.id = p.author_id \
         WHERE p.id IN (SELECT p.id FROM {ids} \
         ORDER BY p.published_at DESC, p.id DESC LIMIT ${} OFFSET ${}) \
         ORDER BY p.published_at DESC, p.id DESC",
        columns(with_html),
        n,
        n + 1
    );
    scope
        .bind(sqlx::query_as(&sql), now)
        .bind(limit)
        .bind(offset)
        .fetch_all(db)
        .await
}

/// The scope's public posts at `now` that come after `cursor` in the newest-first order
/// (what "Older posts" links show). The index is entered at the cursor, so a deep page
/// costs what the first does; posts published meanwhile do not shift it.
pub async fn list_before(
    db: &AnyPool,
    scope: Scope,
    now: OffsetDateTime,
    cursor: Cursor,
    limit: i64,
) -> sqlx::Result<Vec<PostSummary>> {
    let (from, n) = scope.tables_and_condition();
    let sql = format!(
        "SELECT {SUMMARY} FROM {from} AND (p.published_at, p.id) < (${}, ${}) \
         ORDER BY p.published_at DESC, p.id DESC LIMIT ${}",
        n,
        n + 1,
        n + 2
    );
    // Visible and older than the cursor means published by the earlier of the two
    // times. Bound as the visibility time, it is where SQLite enters the index: it does
    // not for the row value, and walked every newer post (10 ms at page 5,000 of
    // 100,000 posts).
    let bound = OffsetDateTime::from_unix_timestamp(cursor.at()).map_or(now, |at| at.min(now));
    scope
        .bind(sqlx::query_as(&sql), bound)
        .bind(cursor.at())
        .bind(cursor.id())
        .bind(limit)
        .fetch_all(db)
        .await
}

/// The cursor of the page of `page_size` posts just newer than `cursor` (the "Newer
/// posts" link of a cursor page); None when that page is the scope's first one.
pub async fn newer_page(
    db: &AnyPool,
    scope: Scope,
    now: OffsetDateTime,
    cursor: Cursor,
    page_size: i64,
) -> sqlx::Result<Option<Cursor>> {
    let (from, n) = scope.tables_and_condition();
    let sql = format!(
        "SELECT CAST(p.published_at AS TEXT), p.id FROM {from} AND (p.published_at, p.id) >= (${}, ${}) \
         ORDER BY p.published_at ASC, p.id ASC LIMIT ${}",
        n,
        n + 1,
        n + 2
    );
    let rows: Vec<(Big, i64)> = scope
        .bind(sqlx::query_as(&sql), now)
        .bind(cursor.at())
        .bind(cursor.id())
        .bind(page_size + 1)
        .fetch_all(db)
        .await?;
    // The newer page holds the `page_size` posts at or just after the cursor (rows[0..]),
    // so it is entered before rows[page_size]; with no such row it is the first page.
    Ok(rows
        .get(page_size as usize)
        .map(|&(Big(at), id)| Cursor::new(at, id)))
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
