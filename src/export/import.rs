//! `quire import quire DIR`: rebuilds a site from `quire export`'s folder into a database
//! without posts or uploads: the same slugs, dates, tags, authors and upload ids (so
//! `/media/<id>/<file>` links and their bytes stay the same).
//!
//! - Everything is checked before anything is written: the document against its format,
//!   every Markdown body and excerpt rendered through the sanitizer (the HTML in the file
//!   is never stored), every image file decoded within `[media]`'s limits and its SHA-256
//!   compared with the export's ETag. The first problem is one line naming its place.
//! - One transaction: all of it is stored or nothing is.
//! - Accounts are matched (local ones by email, OIDC ones by issuer and subject) or
//!   created without a password.
//! - Into a database that already holds every post and upload of the export (a second
//!   run), nothing is added and the run succeeds; into one with other posts or uploads it
//!   refuses, since merging two sites would renumber uploads and slugs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{parse_time, Document, DOCUMENT, FORMAT, VERSION};
use crate::db::export as rows;
use crate::db::media::{Sizes, Variant};
use crate::db::posts;
use crate::db::Pool;
use crate::domain::UserId;
use crate::media::Bounds;
use crate::render::RenderError;

/// Whether `name` can be one of quire's stored file names (`<hash>-<width>.<ext>`):
/// lowercase letters, digits, '-' and '.', not starting with '.', so never a path.
pub fn is_file_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// A post checked and rendered, ready to store.
struct PlannedPost {
    author: i64,
    slug: String,
    title: String,
    body_md: String,
    body_html: String,
    body_text: String,
    excerpt_md: String,
    excerpt_html: String,
    published: bool,
    published_at: i64,
    created_at: i64,
    updated_at: i64,
    tags: Vec<String>,
}

struct PlannedFile {
    path: PathBuf,
    /// The SHA-256 of the bytes checked, so a file changed since is caught when stored.
    sha256: String,
    row: rows::MediaFileRow,
}

struct PlannedMedia {
    row: rows::MediaRow,
    files: Vec<PlannedFile>,
}

struct Plan {
    authors: Vec<rows::AccountRow>,
    tags: Vec<(String, String)>,
    posts: Vec<PlannedPost>,
    media: Vec<PlannedMedia>,
}

/// Imports the export in `dir`. Ok: the line to print. Err: one line naming the problem
/// and its place; nothing was written.
pub async fn run(db: &Pool, dir: &Path, bounds: Bounds, dry_run: bool) -> Result<String, String> {
    let plan = plan(dir, bounds).await?;
    let fail = |e: sqlx::Error| format!("database: {e}");
    let mut tx = db.begin().await.map_err(fail)?;
    let (posts_here, media_here) = rows::content_counts(&mut tx).await.map_err(fail)?;
    if posts_here > 0 || media_here > 0 {
        let present = already_here(&mut tx, &plan).await.map_err(fail)?;
        tx.rollback().await.map_err(fail)?;
        return if present {
            Ok(format!(
                "nothing to import: every post and upload of {} is already here",
                dir.display()
            ))
        } else {
            Err(format!(
                "this database already has {posts_here} post(s) and {media_here} upload(s) \
                 that are not all from this export; quire import quire rebuilds a site into \
                 a database without posts or uploads (use a new database)"
            ))
        };
    }
    let mut notes = Vec::new();
    let mut ids: HashMap<i64, i64> = HashMap::new();
    let mut created = 0;
    for (i, a) in plan.authors.iter().enumerate() {
        let found =
            rows::matching_account(&mut tx, &a.kind, &a.email, &a.oidc_issuer, &a.oidc_subject)
                .await
                .map_err(fail)?;
        let id = match found {
            Some(existing) => {
                if existing.handle != a.handle {
                    notes.push(format!(
                        "authors[{i}] {}: the existing account keeps its handle {}",
                        a.email, existing.handle
                    ));
                }
                existing.id
            }
            None => {
                let mut account = a.clone();
                account.handle = free_handle(&mut tx, &a.handle).await.map_err(fail)?;
                if account.handle != a.handle {
                    notes.push(format!(
                        "authors[{i}] {}: handle {} is taken here, given {}",
                        a.email, a.handle, account.handle
                    ));
                }
                created += 1;
                rows::insert_account(&mut tx, &account)
                    .await
                    .map_err(fail)?
            }
        };
        ids.insert(a.id, id);
    }
    let mut tag_ids = HashMap::new();
    for (slug, name) in &plan.tags {
        let id = rows::ensure_tag(&mut tx, slug, name).await.map_err(fail)?;
        tag_ids.insert(slug.as_str(), id);
    }
    for p in &plan.posts {
        // Its own slug and times, as exported; the HTML is rendered here from its Markdown,
        // never taken from the export file.
        let post_id = posts::insert_row(
            &mut tx,
            &posts::StoredPost {
                author_id: UserId(ids[&p.author]),
                slug: &p.slug,
                title: &p.title,
                body_md: &p.body_md,
                body_html: &p.body_html,
                body_text: &p.body_text,
                excerpt_md: &p.excerpt_md,
                excerpt_html: &p.excerpt_html,
                published: p.published,
                published_at: p.published_at,
                created_at: p.created_at,
                updated_at: p.updated_at,
            },
        )
        .await
        .map_err(fail)?;
        for (position, slug) in p.tags.iter().enumerate() {
            rows::tag_post(&mut tx, post_id.0, tag_ids[slug.as_str()], position as i64)
                .await
                .map_err(fail)?;
        }
    }
    let mut file_count = 0;
    for m in &plan.media {
        let mut row = m.row.clone();
        row.owner_id = ids[&row.owner_id];
        rows::insert_media(&mut tx, &row).await.map_err(fail)?;
        for f in &m.files {
            // Read again rather than kept from the check: an export's images may not all
            // fit in memory at once.
            let bytes = read_file(&f.path)?;
            if hex::encode(Sha256::digest(&bytes)) != f.sha256 {
                return Err(format!(
                    "{}: changed while being imported",
                    f.path.display()
                ));
            }
            rows::insert_media_file(&mut tx, &f.row, &bytes)
                .await
                .map_err(fail)?;
            file_count += 1;
        }
    }
    rows::advance_media_ids(&mut tx, db.backend)
        .await
        .map_err(fail)?;
    let summary = format!(
        "{} post(s), {} tag(s), {} upload(s) ({file_count} file(s)) and {} author(s), \
         {created} of them new accounts without a password (local ones log in after \
         a password reset, or once the operator runs quire user set-password)",
        plan.posts.len(),
        plan.tags.len(),
        plan.media.len(),
        plan.authors.len(),
    );
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!("; {}", notes.join("; "))
    };
    if dry_run {
        tx.rollback().await.map_err(fail)?;
        Ok(format!(
            "dry run, nothing written: would import {summary}{notes}"
        ))
    } else {
        tx.commit().await.map_err(fail)?;
        Ok(format!("imported {summary} from {}{notes}", dir.display()))
    }
}

/// `handle`, or `handle-2`, `-3`, ... when another account has it or holds it back.
async fn free_handle(conn: &mut sqlx::AnyConnection, handle: &str) -> sqlx::Result<String> {
    if !rows::handle_taken(conn, handle).await? {
        return Ok(handle.to_string());
    }
    for n in 2.. {
        // Room for the number within a handle's length.
        let base = &handle[..handle.len().min(crate::db::handles::MAX_LEN - 4)];
        let candidate = format!("{}-{n}", base.trim_end_matches('-'));
        if !rows::handle_taken(conn, &candidate).await? {
            return Ok(candidate);
        }
    }
    unreachable!("some handle is free")
}

/// Whether every post (same slug, title, Markdown and author's email) and every upload
/// (same id and files) of the plan is already in the database: an earlier run's.
async fn already_here(conn: &mut sqlx::AnyConnection, plan: &Plan) -> sqlx::Result<bool> {
    let emails: HashMap<i64, &str> = plan
        .authors
        .iter()
        .map(|a| (a.id, a.email.as_str()))
        .collect();
    for p in &plan.posts {
        match rows::post_by_slug(conn, &p.slug).await? {
            Some((title, body, email))
                if title == p.title
                    && body == p.body_md
                    && Some(&email.as_str()) == emails.get(&p.author) => {}
            _ => return Ok(false),
        }
    }
    for m in &plan.media {
        let mut want: Vec<(String, String)> = m
            .files
            .iter()
            .map(|f| (f.row.name.clone(), f.row.etag.clone()))
            .collect();
        want.sort();
        if rows::media_etags(conn, m.row.id).await? != want {
            return Ok(false);
        }
    }
    Ok(true)
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads and checks the whole export; the first problem found is the error.
async fn plan(dir: &Path, bounds: Bounds) -> Result<Plan, String> {
    let doc_path = dir.join(DOCUMENT);
    let json = match std::fs::read(&doc_path) {
        Ok(json) => json,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{}: not found; name the folder quire export wrote",
                doc_path.display()
            ))
        }
        Err(e) => return Err(format!("{}: {e}", doc_path.display())),
    };
    // The format and version first, so a newer export is named as such rather than by
    // whichever field it changed.
    #[derive(serde::Deserialize)]
    struct Head {
        format: Option<String>,
        version: Option<u64>,
    }
    let place = |e: serde_json::Error| format!("{}: {e}", doc_path.display());
    let head: Head = serde_json::from_slice(&json).map_err(place)?;
    if head.format.as_deref() != Some(FORMAT) {
        return Err(format!(
            "{}: format: expected \"{FORMAT}\", this is not a quire export",
            doc_path.display()
        ));
    }
    match head.version {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) if v > u64::from(VERSION) => {
            return Err(format!(
                "{}: version {v}: made by a newer quire (this one reads version {VERSION})",
                doc_path.display()
            ))
        }
        v => {
            return Err(format!(
                "{}: version: {v:?} is not a version this quire reads ({VERSION})",
                doc_path.display()
            ))
        }
    }
    let doc: Document = serde_json::from_slice(&json).map_err(place)?;
    drop(json);
    let at = |what: String, msg: &str| format!("{}: {what}: {msg}", doc_path.display());
    let time = |what: String, s: &str| {
        parse_time(s).ok_or_else(|| at(what, &format!("{s:?} is not an RFC 3339 time")))
    };

    let mut authors = Vec::new();
    let mut author_ids = HashSet::new();
    let mut emails = HashSet::new();
    let mut identities = HashSet::new();
    let mut handles = HashSet::new();
    for (i, a) in doc.authors.iter().enumerate() {
        let place = || format!("authors[{i}]");
        if !author_ids.insert(a.id) {
            return Err(at(
                format!("authors[{i}].id"),
                "the same id as an earlier author",
            ));
        }
        let email = crate::auth::local::normalize_email(&a.email);
        if email.is_empty() || !email.contains('@') {
            return Err(at(format!("authors[{i}].email"), "not an email address"));
        }
        let name = a.name.trim();
        if name.is_empty() {
            return Err(at(format!("authors[{i}].name"), "empty"));
        }
        let handle = crate::db::handles::Handle::parse(&a.handle)
            .map_err(|e| at(format!("authors[{i}].handle"), &e))?;
        if !handles.insert(handle.to_string()) {
            return Err(at(
                format!("authors[{i}].handle"),
                "the same handle as an earlier author",
            ));
        }
        let is_admin = match a.role.as_str() {
            "admin" => true,
            "author" => false,
            _ => {
                return Err(at(
                    format!("authors[{i}].role"),
                    "expected \"author\" or \"admin\"",
                ))
            }
        };
        let (issuer, subject) = match (a.kind.as_str(), &a.oidc) {
            ("local", _) => {
                if !emails.insert(email.clone()) {
                    return Err(at(
                        format!("authors[{i}].email"),
                        "the same email as an earlier local account",
                    ));
                }
                (String::new(), String::new())
            }
            ("oidc", Some(o)) if !o.issuer.is_empty() && !o.subject.is_empty() => {
                if !identities.insert((o.issuer.clone(), o.subject.clone())) {
                    return Err(at(
                        format!("authors[{i}].oidc"),
                        "the same identity as an earlier account",
                    ));
                }
                (o.issuer.clone(), o.subject.clone())
            }
            ("oidc", _) => {
                return Err(at(
                    format!("authors[{i}].oidc"),
                    "an oidc account needs its issuer and subject",
                ))
            }
            _ => {
                return Err(at(
                    format!("{}.kind", place()),
                    "expected \"local\" or \"oidc\"",
                ))
            }
        };
        authors.push(rows::AccountRow {
            id: a.id,
            kind: a.kind.clone(),
            email,
            name: name.to_string(),
            handle: handle.to_string(),
            is_admin,
            email_confirmed: a.email_confirmed,
            oidc_issuer: issuer,
            oidc_subject: subject,
            created_at: time(format!("authors[{i}].created_at"), &a.created_at)?,
        });
    }

    let mut tags = Vec::new();
    let mut tag_slugs = HashSet::new();
    for (i, t) in doc.tags.iter().enumerate() {
        if !crate::render::is_slug(&t.slug) {
            return Err(at(
                format!("tags[{i}].slug"),
                "not a tag slug (a-z, 0-9, '-')",
            ));
        }
        if !tag_slugs.insert(t.slug.clone()) {
            return Err(at(
                format!("tags[{i}].slug"),
                "the same slug as an earlier tag",
            ));
        }
        if t.name.trim().is_empty() {
            return Err(at(format!("tags[{i}].name"), "empty"));
        }
        tags.push((t.slug.clone(), t.name.trim().to_string()));
    }

    // Uploads before posts: their sizes go into the posts' HTML as saving puts them.
    let mut media = Vec::new();
    let mut media_ids = HashSet::new();
    let mut sizes: HashMap<i64, Sizes> = HashMap::new();
    for (i, m) in doc.media.iter().enumerate() {
        let place = |field: &str| format!("media[{i}]{field}");
        if m.id <= 0 || !media_ids.insert(m.id) {
            return Err(at(
                place(".id"),
                "not a positive id, or the same as an earlier upload's",
            ));
        }
        if !author_ids.contains(&m.owner) {
            return Err(at(place(".owner"), "names no author of this export"));
        }
        if m.file_name.chars().count() > 255 {
            return Err(at(place(".file_name"), "longer than 255 characters"));
        }
        if m.files.is_empty() {
            return Err(at(place(".files"), "empty"));
        }
        let mut files = Vec::new();
        let mut names = HashSet::new();
        let mut full_bytes = None;
        for (j, f) in m.files.iter().enumerate() {
            let fplace = format!("media[{i}].files[{j}]");
            if !is_file_name(&f.name) || !names.insert(f.name.clone()) {
                return Err(at(
                    format!("{fplace}.name"),
                    "not a stored file's name (a-z, 0-9, '-', '.'), or named twice",
                ));
            }
            // The path is made here from the id and the checked name; the document's
            // own `path` is not followed.
            let path = dir.join("media").join(m.id.to_string()).join(&f.name);
            let bytes = read_image(&path, bounds)?;
            let checked = {
                let bytes = bytes.clone();
                rocket::tokio::task::spawn_blocking(move || crate::media::validate(&bytes, bounds))
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?
            };
            let (content_type, width, height) =
                checked.map_err(|e| format!("{}: {e}", path.display()))?;
            if content_type != f.content_type || (width, height) != (f.width, f.height) {
                return Err(format!(
                    "{}: a {content_type} of {width} x {height}, where {fplace} says a {} of {} x {}",
                    path.display(),
                    f.content_type,
                    f.width,
                    f.height
                ));
            }
            let sha256 = hex::encode(Sha256::digest(&bytes));
            let etag = format!("\"{sha256}\"");
            if etag != f.etag {
                return Err(format!(
                    "{}: its bytes do not match {fplace}.etag (the file was changed or damaged)",
                    path.display()
                ));
            }
            if f.name == m.name {
                full_bytes = Some(bytes.len() as i64);
            }
            files.push(PlannedFile {
                path,
                sha256,
                row: rows::MediaFileRow {
                    id: 0,
                    media_id: m.id,
                    name: f.name.clone(),
                    content_type: f.content_type.clone(),
                    width: i64::from(f.width),
                    height: i64::from(f.height),
                    etag,
                },
            });
        }
        let Some(byte_size) = full_bytes else {
            return Err(at(place(".name"), "names none of its files"));
        };
        let mut variants: Vec<Variant> = files
            .iter()
            .map(|f| Variant {
                name: f.row.name.clone(),
                width: f.row.width as u32,
                height: f.row.height as u32,
            })
            .collect();
        variants.sort_by_key(|v| std::cmp::Reverse(v.width));
        sizes.insert(m.id, Sizes { variants });
        let full = files.iter().find(|f| f.row.name == m.name).map(|f| &f.row);
        media.push(PlannedMedia {
            row: rows::MediaRow {
                id: m.id,
                owner_id: m.owner,
                file_name: m.file_name.clone(),
                name: m.name.clone(),
                content_type: full.map_or(m.content_type.clone(), |f| f.content_type.clone()),
                width: full.map_or(0, |f| f.width),
                height: full.map_or(0, |f| f.height),
                byte_size,
                animated: m.animated,
                created_at: time(place(".created_at"), &m.created_at)?,
            },
            files,
        });
    }

    let mut posts = Vec::new();
    let mut slugs = HashSet::new();
    for (i, p) in doc.posts.iter().enumerate() {
        let place = |field: &str| format!("posts[{i}]{field}");
        if !crate::render::is_slug(&p.slug) || !slugs.insert(p.slug.clone()) {
            return Err(at(
                place(".slug"),
                "not a slug (a-z, 0-9, '-'), or the same as an earlier post's",
            ));
        }
        let title = p.title.trim();
        if title.is_empty() {
            return Err(at(place(".title"), "empty"));
        }
        if !author_ids.contains(&p.author) {
            return Err(at(place(".author"), "names no author of this export"));
        }
        let mut seen = HashSet::new();
        for (j, t) in p.tags.iter().enumerate() {
            if !tag_slugs.contains(t) || !seen.insert(t) {
                return Err(at(
                    place(&format!(".tags[{j}]")),
                    "names no tag of this export, or twice",
                ));
            }
        }
        if p.excerpt.chars().count() > crate::excerpt::EXCERPT_MAX {
            return Err(at(
                place(".excerpt"),
                &format!("over {} characters", crate::excerpt::EXCERPT_MAX),
            ));
        }
        let published_at = match &p.published_at {
            Some(s) => time(place(".published_at"), s)?,
            None => 0,
        };
        let (body, excerpt_html) = render(&p.body, p.excerpt.trim())
            .await
            .map_err(|(field, e)| at(format!("posts[{i}] ({}) {field}", p.slug), &e.to_string()))?;
        posts.push(PlannedPost {
            author: p.author,
            slug: p.slug.clone(),
            title: title.to_string(),
            body_html: crate::media::html::add_sizes(&body.html, &sizes),
            body_text: body.text,
            body_md: p.body.clone(),
            excerpt_md: p.excerpt.trim().to_string(),
            excerpt_html: crate::media::html::add_sizes(&excerpt_html, &sizes),
            published: !p.draft,
            published_at,
            created_at: time(place(".created_at"), &p.created_at)?,
            updated_at: time(place(".updated_at"), &p.updated_at)?,
            tags: p.tags.clone(),
        });
    }
    Ok(Plan {
        authors,
        tags,
        posts,
        media,
    })
}

/// An image file of the export: a regular file (not a link), within `media.max_bytes`.
fn read_image(path: &Path, bounds: Bounds) -> Result<Vec<u8>, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    if meta.len() > bounds.max_bytes {
        return Err(format!(
            "{}: over media.max_bytes ({})",
            path.display(),
            crate::media::human_bytes(bounds.max_bytes)
        ));
    }
    read_file(path)
}

/// A post's body and excerpt rendered as saving renders them (`web::dashboard`): the
/// excerpt from `excerpt::excerpt_source`. Err names the field refused.
async fn render(
    body: &str,
    excerpt: &str,
) -> Result<(crate::render::Rendered, String), (&'static str, RenderError)> {
    let source = crate::excerpt::excerpt_source(body, excerpt);
    let sources: Vec<&str> = if source.is_empty() {
        vec![body]
    } else {
        vec![body, source]
    };
    let mut waited = 0;
    loop {
        match crate::render::render_all(&sources).await {
            Ok(rendered) => {
                let mut rendered = rendered.into_iter();
                let body = rendered.next().unwrap_or(crate::render::Rendered {
                    html: String::new(),
                    text: String::new(),
                });
                return Ok((body, rendered.next().map(|r| r.html).unwrap_or_default()));
            }
            // The renderer is the import's alone here, but it may still be full a moment.
            Err((_, RenderError::Busy)) if waited < 600 => {
                waited += 1;
                rocket::tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err((i, e)) => return Err((if i == 0 { "body" } else { "excerpt" }, e)),
        }
    }
}
