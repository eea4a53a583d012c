//! Tags: one row per slug, so tags typed in different cases ("Rust", "rust") are one,
//! named as first typed on a public post; `post_tags` links posts to them in the order typed. Links go
//! with their post (ON DELETE CASCADE); a tag without public posts is listed nowhere.

use std::collections::HashMap;

use sqlx::{AnyConnection, AnyPool};

use time::OffsetDateTime;

use super::posts::visible_at;
use super::unix;
use crate::domain::PostId;

/// A tag as the post form gives it: the name as typed (trimmed) and its slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTag {
    pub name: String,
    pub slug: String,
}

/// A tag as pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRef {
    pub slug: String,
    pub name: String,
}

/// A tag in the index, with how many public posts have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCount {
    pub slug: String,
    pub name: String,
    pub posts: i64,
}

/// The tag with this slug, with its id for the listing; None when no post ever had it.
pub async fn by_slug(db: &AnyPool, slug: &str) -> sqlx::Result<Option<(i64, TagRef)>> {
    let row: Option<(i64, String, String)> =
        sqlx::query_as("SELECT id, slug, name FROM tags WHERE slug = $1")
            .bind(slug)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(id, slug, name)| (id, TagRef { slug, name })))
}

/// Replaces the post's tags with `tags` (already merged: one per slug), inside the
/// caller's transaction (the one that writes the post). A tag is named as typed on its
/// first public post: while no other post public at `now` has it, it takes the spelling
/// typed now (so a draft's or a scheduled post's spelling never shows on someone else's
/// public post).
pub async fn set_in(
    conn: &mut AnyConnection,
    post: PostId,
    tags: &[NewTag],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM post_tags WHERE post_id = $1")
        .bind(post.0)
        .execute(&mut *conn)
        .await?;
    // Upserts in slug order, so two saves sharing tags lock them in the same order.
    let mut order: Vec<(usize, &NewTag)> = tags.iter().enumerate().collect();
    order.sort_by(|a, b| a.1.slug.cmp(&b.1.slug));
    for (position, tag) in order {
        let ids: Vec<(i64,)> = sqlx::query_as(&format!(
            "INSERT INTO tags (slug, name) VALUES ($1, $2) ON CONFLICT (slug) DO UPDATE SET \
             name = CASE WHEN EXISTS (SELECT 1 FROM post_tags pt JOIN posts p \
             ON p.id = pt.post_id WHERE pt.tag_id = tags.id AND {}) \
             THEN tags.name ELSE excluded.name END RETURNING id",
            visible_at(3)
        ))
        .bind(&tag.slug)
        .bind(&tag.name)
        .bind(unix(now))
        .fetch_all(&mut *conn)
        .await?;
        let (tag_id,) = ids.into_iter().next().ok_or(sqlx::Error::RowNotFound)?;
        sqlx::query("INSERT INTO post_tags (post_id, tag_id, position) VALUES ($1, $2, $3)")
            .bind(post.0)
            .bind(tag_id)
            .bind(position as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The post's tags in the order typed.
pub async fn of_post(db: &AnyPool, post: PostId) -> sqlx::Result<Vec<TagRef>> {
    Ok(of_posts(db, &[post])
        .await?
        .remove(&post)
        .unwrap_or_default())
}

/// The tags of each of `posts` (a page of a listing), in the order typed; posts without
/// tags are absent from the map.
pub async fn of_posts(
    db: &AnyPool,
    posts: &[PostId],
) -> sqlx::Result<HashMap<PostId, Vec<TagRef>>> {
    let mut out: HashMap<PostId, Vec<TagRef>> = HashMap::new();
    if posts.is_empty() {
        return Ok(out);
    }
    let placeholders: Vec<String> = (1..=posts.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT pt.post_id, t.slug, t.name FROM post_tags pt JOIN tags t ON t.id = pt.tag_id \
         WHERE pt.post_id IN ({}) ORDER BY pt.post_id, pt.position",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, (i64, String, String)>(&sql);
    for post in posts {
        query = query.bind(post.0);
    }
    for (post, slug, name) in query.fetch_all(db).await? {
        out.entry(PostId(post))
            .or_default()
            .push(TagRef { slug, name });
    }
    Ok(out)
}
