//! `quire export` and `quire import quire`: the whole site read in one snapshot, and
//! written back in one transaction. Rows here are plain columns; `crate::export` turns
//! them into the export format and back.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use super::Backend;

/// A BIGINT column selected as `CAST(col AS TEXT)` (see [`super::Big`]).
fn big(row: &AnyRow, column: &str) -> sqlx::Result<i64> {
    Ok(row.try_get::<super::Big, _>(column)?.0)
}

/// An account, without anything secret (no password hash, factors or sessions).
#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: i64,
    pub kind: String,
    pub email: String,
    pub name: String,
    pub handle: String,
    pub is_admin: bool,
    pub email_confirmed: bool,
    pub oidc_issuer: String,
    pub oidc_subject: String,
    pub created_at: i64,
}

impl<'r> FromRow<'r, AnyRow> for AccountRow {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(AccountRow {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            handle: row.try_get("handle")?,
            is_admin: super::flag(row, "is_admin")?,
            email_confirmed: super::flag(row, "email_confirmed")?,
            oidc_issuer: row.try_get("oidc_issuer")?,
            oidc_subject: row.try_get("oidc_subject")?,
            created_at: big(row, "created_at")?,
        })
    }
}

/// A post as stored; times in unix seconds, `published_at` 0 for none.
#[derive(Debug, Clone)]
pub struct PostRow {
    pub id: i64,
    pub author_id: i64,
    pub slug: String,
    pub title: String,
    pub body_md: String,
    pub body_html: String,
    pub excerpt_md: String,
    pub excerpt_html: String,
    pub published: bool,
    pub published_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl<'r> FromRow<'r, AnyRow> for PostRow {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(PostRow {
            id: row.try_get("id")?,
            author_id: row.try_get("author_id")?,
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            body_md: row.try_get("body_md")?,
            body_html: row.try_get("body_html")?,
            excerpt_md: row.try_get("excerpt_md")?,
            excerpt_html: row.try_get("excerpt_html")?,
            published: super::flag(row, "published")?,
            published_at: big(row, "published_at")?,
            created_at: big(row, "created_at")?,
            updated_at: big(row, "updated_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct MediaRow {
    pub id: i64,
    pub owner_id: i64,
    pub file_name: String,
    pub name: String,
    pub content_type: String,
    pub width: i64,
    pub height: i64,
    pub byte_size: i64,
    pub animated: bool,
    pub created_at: i64,
}

impl<'r> FromRow<'r, AnyRow> for MediaRow {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(MediaRow {
            id: row.try_get("id")?,
            owner_id: row.try_get("owner_id")?,
            file_name: row.try_get("file_name")?,
            name: row.try_get("name")?,
            content_type: row.try_get("content_type")?,
            width: row.try_get("width")?,
            height: row.try_get("height")?,
            byte_size: row.try_get("byte_size")?,
            animated: super::flag(row, "animated")?,
            created_at: big(row, "created_at")?,
        })
    }
}

/// One stored file of an upload, without its bytes (`file_bytes` reads them one at a
/// time, so an export never holds every image in memory at once).
#[derive(Debug, Clone)]
pub struct MediaFileRow {
    pub id: i64,
    pub media_id: i64,
    pub name: String,
    pub content_type: String,
    pub width: i64,
    pub height: i64,
    pub etag: String,
}

/// Starts the read of a consistent snapshot on `conn` (inside a transaction): on
/// PostgreSQL every statement of the transaction then sees the same data; SQLite's
/// read transaction (WAL) already does.
pub async fn begin_snapshot(conn: &mut AnyConnection, backend: Backend) -> sqlx::Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

const ACCOUNT_COLUMNS: &str = "id, kind, email, name, handle, is_admin, email_confirmed, \
    oidc_issuer, oidc_subject, CAST(created_at AS TEXT) AS created_at";

pub async fn accounts(conn: &mut AnyConnection) -> sqlx::Result<Vec<AccountRow>> {
    sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM users ORDER BY id"))
        .fetch_all(conn)
        .await
}

/// Every tag (slug, name), oldest first: an import creates them in this order, so
/// listings that break ties by tag id (the sitemap) keep their order.
pub async fn tags(conn: &mut AnyConnection) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT slug, name FROM tags ORDER BY id")
        .fetch_all(conn)
        .await
}

pub async fn posts(conn: &mut AnyConnection) -> sqlx::Result<Vec<PostRow>> {
    sqlx::query_as(
        "SELECT id, author_id, slug, title, body_md, body_html, excerpt_md, excerpt_html, \
         published, CAST(published_at AS TEXT) AS published_at, \
         CAST(created_at AS TEXT) AS created_at, CAST(updated_at AS TEXT) AS updated_at \
         FROM posts ORDER BY id",
    )
    .fetch_all(conn)
    .await
}

/// Every (post id, tag slug), each post's in the order typed.
pub async fn post_tags(conn: &mut AnyConnection) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "SELECT pt.post_id, t.slug FROM post_tags pt JOIN tags t ON t.id = pt.tag_id \
         ORDER BY pt.post_id, pt.position",
    )
    .fetch_all(conn)
    .await
}

pub async fn media(conn: &mut AnyConnection) -> sqlx::Result<Vec<MediaRow>> {
    sqlx::query_as(
        "SELECT id, owner_id, file_name, name, content_type, width, height, byte_size, \
         animated, CAST(created_at AS TEXT) AS created_at FROM media ORDER BY id",
    )
    .fetch_all(conn)
    .await
}

/// Every upload's files, each upload's widest first.
pub async fn media_files(conn: &mut AnyConnection) -> sqlx::Result<Vec<MediaFileRow>> {
    let rows: Vec<(i64, i64, String, String, i64, i64, String)> = sqlx::query_as(
        "SELECT id, media_id, name, content_type, width, height, etag FROM media_files \
         ORDER BY media_id, width DESC, id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, media_id, name, content_type, width, height, etag)| MediaFileRow {
                id,
                media_id,
                name,
                content_type,
                width,
                height,
                etag,
            },
        )
        .collect())
}

pub async fn file_bytes(conn: &mut AnyConnection, file_id: i64) -> sqlx::Result<Vec<u8>> {
    let (bytes,): (Vec<u8>,) = sqlx::query_as("SELECT bytes FROM media_files WHERE id = $1")
        .bind(file_id)
        .fetch_one(conn)
        .await?;
    Ok(bytes)
}

/// How many posts and uploads the database holds: an import rebuilds a site only into a
/// database with neither.
pub async fn content_counts(conn: &mut AnyConnection) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as("SELECT (SELECT COUNT(*) FROM posts), (SELECT COUNT(*) FROM media)")
        .fetch_one(conn)
        .await
}

/// A stored post as an import compares it: title, Markdown and its author's email.
pub async fn post_by_slug(
    conn: &mut AnyConnection,
    slug: &str,
) -> sqlx::Result<Option<(String, String, String)>> {
    sqlx::query_as(
        "SELECT p.title, p.body_md, u.email FROM posts p JOIN users u ON u.id = p.author_id \
         WHERE p.slug = $1",
    )
    .bind(slug)
    .fetch_optional(conn)
    .await
}

/// The (name, etag) of upload `id`'s files, by name; empty when there is no such upload.
pub async fn media_etags(conn: &mut AnyConnection, id: i64) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT name, etag FROM media_files WHERE media_id = $1 ORDER BY name")
        .bind(id)
        .fetch_all(conn)
        .await
}

/// The local account with this email, or the OIDC one of (issuer, subject).
pub async fn matching_account(
    conn: &mut AnyConnection,
    kind: &str,
    email: &str,
    issuer: &str,
    subject: &str,
) -> sqlx::Result<Option<AccountRow>> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM users WHERE kind = $1 AND \
         ((kind = 'local' AND email = $2) OR (kind = 'oidc' AND oidc_issuer = $3 \
         AND oidc_subject = $4))"
    );
    sqlx::query_as(&sql)
        .bind(kind)
        .bind(email)
        .bind(issuer)
        .bind(subject)
        .fetch_optional(conn)
        .await
}

/// Whether an account other than those matched holds this handle (or holds it back).
pub async fn handle_taken(conn: &mut AnyConnection, handle: &str) -> sqlx::Result<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM users WHERE handle = $1) + \
         (SELECT COUNT(*) FROM handle_history WHERE handle = $1)",
    )
    .bind(handle)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Creates an account with no password (a local one logs in after a reset, or once the
/// operator sets one); returns its id.
pub async fn insert_account(conn: &mut AnyConnection, a: &AccountRow) -> sqlx::Result<i64> {
    let ids: Vec<(i64,)> = sqlx::query_as(
        "INSERT INTO users (kind, email, name, password_hash, is_admin, created_at, \
         oidc_issuer, oidc_subject, handle, email_confirmed) \
         VALUES ($1, $2, $3, '', $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(&a.kind)
    .bind(&a.email)
    .bind(&a.name)
    .bind(a.is_admin as i64)
    .bind(a.created_at)
    .bind(&a.oidc_issuer)
    .bind(&a.oidc_subject)
    .bind(&a.handle)
    .bind(a.email_confirmed as i64)
    .fetch_all(conn)
    .await?;
    ids.into_iter()
        .next()
        .map(|(id,)| id)
        .ok_or(sqlx::Error::RowNotFound)
}

/// Creates the tag if no tag has its slug; returns the tag's id.
pub async fn ensure_tag(conn: &mut AnyConnection, slug: &str, name: &str) -> sqlx::Result<i64> {
    sqlx::query("INSERT INTO tags (slug, name) VALUES ($1, $2) ON CONFLICT (slug) DO NOTHING")
        .bind(slug)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM tags WHERE slug = $1")
        .bind(slug)
        .fetch_one(conn)
        .await?;
    Ok(id)
}

pub async fn tag_post(
    conn: &mut AnyConnection,
    post_id: i64,
    tag_id: i64,
    position: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO post_tags (post_id, tag_id, position) VALUES ($1, $2, $3)")
        .bind(post_id)
        .bind(tag_id)
        .bind(position)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores an upload under its exported id, so `/media/<id>/<file>` links keep working.
pub async fn insert_media(conn: &mut AnyConnection, m: &MediaRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO media (id, owner_id, file_name, name, content_type, width, height, \
         byte_size, animated, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(m.id)
    .bind(m.owner_id)
    .bind(&m.file_name)
    .bind(&m.name)
    .bind(&m.content_type)
    .bind(m.width)
    .bind(m.height)
    .bind(m.byte_size)
    .bind(m.animated as i64)
    .bind(m.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_media_file(
    conn: &mut AnyConnection,
    f: &MediaFileRow,
    bytes: &[u8],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO media_files (media_id, name, content_type, width, height, etag, bytes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(f.media_id)
    .bind(&f.name)
    .bind(&f.content_type)
    .bind(f.width)
    .bind(f.height)
    .bind(&f.etag)
    .bind(bytes)
    .execute(conn)
    .await?;
    Ok(())
}

/// After uploads were stored under their own ids: PostgreSQL's identity sequence does
/// not move for explicit ids, so the next upload would collide; move it past them.
/// (SQLite's AUTOINCREMENT follows the largest id by itself.)
pub async fn advance_media_ids(conn: &mut AnyConnection, backend: Backend) -> sqlx::Result<()> {
    if backend == Backend::Postgres {
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('media', 'id'), \
             (SELECT MAX(id) FROM media)) FROM media LIMIT 1",
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}
