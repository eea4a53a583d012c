//! Uploaded images and their files' bytes (BLOB on SQLite, BYTEA on PostgreSQL).

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, FromRow, Row};
use time::OffsetDateTime;

use super::{flag, time_at, unix};
use crate::domain::UserId;
use crate::media::Processed;

/// One upload as its library lists it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub id: i64,
    pub owner_id: UserId,
    pub file_name: String,
    /// The full-size file's name in its URL.
    pub name: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    /// Bytes of the full-size file as stored.
    pub byte_size: u64,
    pub animated: bool,
    pub created_at: OffsetDateTime,
}

impl<'r> FromRow<'r, AnyRow> for Upload {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(Upload {
            id: row.try_get("id")?,
            owner_id: UserId(row.try_get("owner_id")?),
            file_name: row.try_get("file_name")?,
            name: row.try_get("name")?,
            content_type: row.try_get("content_type")?,
            width: row.try_get::<i64, _>("width")? as u32,
            height: row.try_get::<i64, _>("height")? as u32,
            byte_size: row.try_get::<i64, _>("byte_size")? as u64,
            animated: flag(row, "animated")?,
            created_at: time_at(row, "created_at")?,
        })
    }
}

const UPLOAD_COLUMNS: &str =
    "id, owner_id, file_name, name, content_type, width, height, byte_size, animated, created_at";

/// A file's size and name, as `srcset` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    pub width: u32,
    pub height: u32,
}

/// What `srcset` needs of one upload: its files, widest first.
#[derive(Debug, Clone, Default)]
pub struct Sizes {
    pub variants: Vec<Variant>,
}

/// A stored file's validator; its bytes are read only when the client lacks them.
#[derive(Debug, Clone)]
pub struct FileHead {
    pub id: i64,
    pub content_type: String,
    pub etag: String,
}

/// Stores an upload and all its files in one transaction; returns the new id.
pub async fn insert(
    db: &AnyPool,
    owner: UserId,
    file_name: &str,
    processed: &Processed,
    now: OffsetDateTime,
) -> sqlx::Result<i64> {
    let mut tx = db.begin().await?;
    let id = insert_on(&mut tx, owner, file_name, processed, now).await?;
    tx.commit().await?;
    Ok(id)
}

/// Stores an upload and all its files on `tx` (the caller's transaction); returns its id.
pub async fn insert_on(
    tx: &mut AnyConnection,
    owner: UserId,
    file_name: &str,
    processed: &Processed,
    now: OffsetDateTime,
) -> sqlx::Result<i64> {
    let full = processed.full();
    // fetch_all: the RETURNING statement must run to its end (see `fetch_returning`).
    let ids: Vec<(i64,)> = sqlx::query_as(
        "INSERT INTO media (owner_id, file_name, name, content_type, width, height, \
         byte_size, animated, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         RETURNING id",
    )
    .bind(owner.0)
    .bind(file_name)
    .bind(&full.name)
    .bind(full.content_type)
    .bind(i64::from(full.width))
    .bind(i64::from(full.height))
    .bind(full.bytes.len() as i64)
    .bind(processed.animated as i64)
    .bind(unix(now))
    .fetch_all(&mut *tx)
    .await?;
    let id = ids.into_iter().next().ok_or(sqlx::Error::RowNotFound)?;
    for f in &processed.files {
        sqlx::query(
            "INSERT INTO media_files (media_id, name, content_type, width, height, etag, bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.0)
        .bind(&f.name)
        .bind(f.content_type)
        .bind(i64::from(f.width))
        .bind(i64::from(f.height))
        .bind(&f.etag)
        .bind(&f.bytes)
        .execute(&mut *tx)
        .await?;
    }
    Ok(id.0)
}

/// The uploads of `owner`, newest first.
pub async fn list_by_owner(db: &AnyPool, owner: UserId) -> sqlx::Result<Vec<Upload>> {
    sqlx::query_as(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM media WHERE owner_id = $1 ORDER BY id DESC"
    ))
    .bind(owner.0)
    .fetch_all(db)
    .await
}

/// The upload with this id; None when there is none.
pub async fn by_id(db: &AnyPool, id: i64) -> sqlx::Result<Option<Upload>> {
    sqlx::query_as(&format!("SELECT {UPLOAD_COLUMNS} FROM media WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The validator and type of upload `id`'s file `name`; None when there is no such file.
pub async fn file_head(db: &AnyPool, id: i64, name: &str) -> sqlx::Result<Option<FileHead>> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT id, content_type, etag FROM media_files WHERE media_id = $1 AND name = $2",
    )
    .bind(id)
    .bind(name)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(id, content_type, etag)| FileHead {
        id,
        content_type,
        etag,
    }))
}

/// A file's bytes by its row id; None when it was deleted meanwhile.
pub async fn file_bytes(db: &AnyPool, file_id: i64) -> sqlx::Result<Option<Vec<u8>>> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT bytes FROM media_files WHERE id = $1")
        .bind(file_id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| r.0))
}

/// The files of these uploads (ids that name none are left out), for `srcset`.
pub async fn sizes_of(db: &AnyPool, ids: &[i64]) -> sqlx::Result<HashMap<i64, Sizes>> {
    sizes_on(&mut *db.acquire().await?, ids).await
}

/// [`sizes_of`] on `conn` (a transaction sees its own uploads before they are committed).
pub async fn sizes_on(conn: &mut AnyConnection, ids: &[i64]) -> sqlx::Result<HashMap<i64, Sizes>> {
    let mut out: HashMap<i64, Sizes> = HashMap::new();
    // Few images a post: one query each keeps the SQL the same on both databases.
    for &id in ids {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT name, width, height FROM media_files WHERE media_id = $1 ORDER BY width DESC",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            continue;
        }
        out.entry(id).or_default().variants = rows
            .into_iter()
            .map(|(name, w, h)| Variant {
                name,
                width: w as u32,
                height: h as u32,
            })
            .collect();
    }
    Ok(out)
}

/// A post whose Markdown uses an upload.
#[derive(Debug, Clone)]
pub struct UsingPost {
    pub slug: String,
    pub title: String,
    pub author_id: UserId,
    pub published: bool,
}

/// The posts whose body or excerpt links `/media/<id>/`, by title.
pub async fn posts_using(db: &AnyPool, id: i64) -> sqlx::Result<Vec<UsingPost>> {
    // The id is an integer, so the pattern holds no LIKE wildcard of its own.
    let pattern = format!("%/media/{id}/%");
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT slug, title, author_id, published FROM posts \
         WHERE body_md LIKE $1 OR excerpt_md LIKE $1 ORDER BY title, id",
    )
    .bind(pattern)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(slug, title, author, published)| UsingPost {
            slug,
            title,
            author_id: UserId(author),
            published: published != 0,
        })
        .collect())
}

/// Deletes an upload and its files; false when it was already gone.
pub async fn delete(db: &AnyPool, id: i64) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM media_files WHERE media_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let gone = sqlx::query("DELETE FROM media WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(gone > 0)
}

/// How many uploads and files are stored: what the tests check for "nothing stored".
pub async fn counts(db: &AnyPool) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as("SELECT (SELECT COUNT(*) FROM media), (SELECT COUNT(*) FROM media_files)")
        .fetch_one(db)
        .await
}
