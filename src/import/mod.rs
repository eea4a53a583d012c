//! `quire import`: posts from another engine's export (WordPress WXR, Ghost JSON,
//! WriteFreely JSON, a folder of Markdown files), brought in as quire posts.
//!
//! Each format's module only reads its file into [`Export`]: posts in the shape quire
//! keeps them, with what the source said about each (state, dates, slug, tags, author).
//! Everything else is decided here, once for all formats:
//! - nothing is written until the whole export has been read, every author found, every
//!   body rendered and every image processed; then one transaction writes it all, so a
//!   failure leaves the database as it was;
//! - `imports` (migration 0017) records each post and upload by source and source id, and
//!   a second run skips what is recorded, so it adds nothing;
//! - bodies go through `render::render_all` like the post form's (HTML from other engines
//!   is Markdown's raw HTML, so the same sanitizer removes scripts and event handlers),
//!   and excerpts follow `excerpt::excerpt_source`;
//! - images referenced under the export's uploads folder are read from a local folder
//!   only (never fetched), go through `media::process` with the site's limits, and the
//!   body's URLs are rewritten to `/media/<id>/<file>`; those missing or refused are
//!   listed, not fatal;
//! - a dry run does all the reading and checking and writes nothing.

pub mod ghost;
pub mod markdown;
mod shortcodes;
pub mod wordpress;
pub mod writefreely;

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use sqlx::{AnyConnection, AnyPool};
use time::OffsetDateTime;

use crate::db::current_time;
use crate::db::posts::{self, StoredPost};
use crate::db::tags::{self, NewTag};
use crate::db::{imports, media};
use crate::domain::{PostId, UserId};
use crate::excerpt::{excerpt_source, EXCERPT_MAX};
use crate::media::{Bounds, Processed};
use crate::render::{render_all, slug_for, Rendered};
use crate::web::dashboard::TITLE_MAX;
use crate::web::tags::{MAX_TAGS, TAG_MAX};

/// Largest export file read, in bytes: far more than any blog's text (bodies are at most
/// `render::BODY_MAX` characters each), and a bound on what one file can make us hold.
pub const FILE_MAX: u64 = 512 << 20;

/// Which engine's export a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    WordPress,
    Ghost,
    WriteFreely,
    Markdown,
}

/// What `quire import` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The export file (a folder for Markdown).
    pub path: PathBuf,
    /// The account that gets posts whose author the export does not name or names by an
    /// email no account here has.
    pub author: Option<String>,
    /// Where uploaded images are (default: WordPress's `wp-content/uploads`, Ghost's
    /// `content/images`, beside the file).
    pub uploads: Option<PathBuf>,
    pub dry_run: bool,
    /// The site's upload limits (`media.max_bytes`, `media.max_pixels`).
    pub bounds: Bounds,
}

/// A body as the other engine stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Markdown(String),
    /// Kept as is: quire's Markdown passes HTML through to the sanitizer.
    Html(String),
}

impl Body {
    pub fn text(&self) -> &str {
        match self {
            Body::Markdown(s) | Body::Html(s) => s,
        }
    }
}

/// Another engine's HTML as a post's source. quire's renderer reads it as Markdown with
/// raw HTML, where a line indented four spaces after a blank line is a code block (so a
/// hand-indented `<li>` would show as code): lines are unindented, except inside `<pre>`,
/// where spaces are the content. Nothing else changes.
pub fn html_source(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_pre = false;
    for line in html.split_inclusive('\n') {
        let lower = line.to_ascii_lowercase();
        out.push_str(if in_pre {
            line
        } else {
            line.trim_start_matches([' ', '\t'])
        });
        let opens = lower.matches("<pre").count();
        let closes = lower.matches("</pre").count();
        if opens > closes {
            in_pre = true;
        } else if closes > opens {
            in_pre = false;
        }
    }
    out
}

/// A message for the terminal on one line: the parsers quote what they found, which in a
/// damaged file can hold line breaks and other control characters; those are escaped.
pub fn one_line(msg: &str) -> String {
    msg.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Whether readers may see a post, and from when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Draft,
    /// Published at this time; a time still in the future means scheduled.
    Published(OffsetDateTime),
}

/// One post of an export, read but not yet checked.
#[derive(Debug, Clone)]
pub struct Item {
    /// Unique within the export's source, e.g. "post:42".
    pub source_id: String,
    /// "post" or "page", as the report names it.
    pub kind: &'static str,
    pub title: String,
    pub body: Body,
    /// Markdown or plain text ("" when the source has none).
    pub excerpt: String,
    /// The slug the source used ("" when none): kept when no post here has it.
    pub slug: String,
    pub state: State,
    pub created: Option<OffsetDateTime>,
    pub updated: Option<OffsetDateTime>,
    /// As the source named them, in its order; cleaned by [`clean_tags`].
    pub tags: Vec<String>,
    /// The author's email as the export gives it, matched to an account here.
    pub author_email: Option<String>,
    /// What the format module decided about this post, for the report.
    pub notes: Vec<String>,
}

/// A whole export as a format module read it.
#[derive(Debug, Clone, Default)]
pub struct Export {
    /// Names the export in `imports`: the engine, and the site or user where the export
    /// says which (so two blogs' post 1 are two posts).
    pub source: String,
    pub items: Vec<Item>,
    /// Things left out, for the report (revisions, menu items, trashed posts).
    pub notes: Vec<String>,
    /// Where images referenced by the bodies are looked for, if this format has them.
    pub uploads: Option<Uploads>,
}

/// A local copy of an engine's uploads folder, and how its URLs appear in bodies.
#[derive(Debug, Clone)]
pub struct Uploads {
    pub root: PathBuf,
    /// The part of a URL after which the path under `root` starts ("/wp-content/uploads/").
    pub marker: String,
}

/// What an import did or, in a dry run, would do: one line each, for the terminal.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lines: Vec<String>,
    /// Posts made (or that would be).
    pub posts: usize,
    /// Posts skipped as imported before.
    pub already: usize,
    /// Uploads made (or that would be).
    pub images: usize,
    /// Images referenced but missing or refused.
    pub images_missing: usize,
}

/// Reads the export at `opts.path` in `format` and imports it into `db` (or, with
/// `dry_run`, reports what it would import and writes nothing). Errors are one line for
/// the terminal naming the file and the place in it (line and column, a JSON path, a
/// post); nothing is written then.
pub async fn run(db: &AnyPool, format: Format, opts: &Options) -> Result<Report, String> {
    let export = read(format, opts)?;
    import(db, export, opts).await
}

/// `export` with its images looked for in `--uploads`, else in `beside_file` next to the file,
/// under URLs that name them after `marker`.
fn with_uploads(mut export: Export, opts: &Options, beside_file: &str, marker: &str) -> Export {
    let root = match &opts.uploads {
        Some(dir) => dir.clone(),
        None => beside(&opts.path).join(beside_file),
    };
    export.uploads = Some(Uploads {
        root,
        marker: marker.into(),
    });
    export
}

/// Reads and parses the export, without touching the database.
pub fn read(format: Format, opts: &Options) -> Result<Export, String> {
    match format {
        Format::Markdown => markdown::read_dir(&opts.path),
        _ => {
            let text = read_file(&opts.path)?;
            let name = opts.path.display().to_string();
            match format {
                // Neither export holds image bytes: they are in a copy of the engine's
                // uploads folder, beside the file unless --uploads names it.
                Format::WordPress => Ok(with_uploads(
                    wordpress::parse(&name, &text)?,
                    opts,
                    "wp-content/uploads",
                    "/wp-content/uploads/",
                )),
                Format::Ghost => Ok(with_uploads(
                    ghost::parse(&name, &text)?,
                    opts,
                    "content/images",
                    ghost::IMAGES,
                )),
                Format::WriteFreely => writefreely::parse(&name, &text),
                Format::Markdown => unreachable!("read as a folder above"),
            }
        }
    }
}

/// The folder holding `file` ("." for a bare file name).
fn beside(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A file's text, refused past [`FILE_MAX`] or when it is not UTF-8.
pub fn read_file(path: &Path) -> Result<String, String> {
    let name = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{name}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{name}: not a file"));
    }
    if meta.len() > FILE_MAX {
        return Err(format!(
            "{name}: over {} MiB, larger than quire reads",
            FILE_MAX >> 20
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        let (line, col) = line_col(
            &String::from_utf8_lossy(e.as_bytes()),
            e.utf8_error().valid_up_to(),
        );
        format!("{name}:{line}:{col}: not UTF-8 text")
    })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A serde_json error as "file:line:column: message".
pub fn json_error(name: &str, e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(at) => msg[..at].to_string(),
        None => msg,
    };
    format!("{name}:{}:{}: {msg}", e.line(), e.column())
}

/// Reads a date as exports write them: RFC 3339 (`2024-05-01T09:30:00Z`, fractions and
/// offsets allowed), `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` (taken as UTC), a bare
/// `YYYY-MM-DD` (midnight UTC), RFC 2822. None for anything else or a year outside 1971 to
/// 9999 (quire keeps times as unix seconds, 0 meaning none).
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    let secs = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        t.timestamp()
    } else if let Some(t) = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
    {
        t.and_utc().timestamp()
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)?.and_utc().timestamp()
    } else if let Ok(t) = chrono::DateTime::parse_from_rfc2822(s) {
        t.timestamp()
    } else {
        return None;
    };
    // 1971-01-01 to 9999-12-31.
    if !(31_536_000..=253_402_300_799).contains(&secs) {
        return None;
    }
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// Tags as quire accepts them from the post form (`web::tags`): trimmed, control
/// characters made spaces, one per slug, at most [`TAG_MAX`] characters (longer ones are
/// cut there) and [`MAX_TAGS`] a post (the rest are dropped). Rather than refusing a
/// whole import for one long tag, each change is said in the returned notes.
pub fn clean_tags(names: &[String]) -> (Vec<NewTag>, Vec<String>) {
    let mut notes = Vec::new();
    let mut seen = HashSet::new();
    let mut tags = Vec::new();
    let mut dropped = Vec::new();
    for raw in names {
        let spaced: String = raw
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut name = spaced.trim().to_string();
        if name.is_empty() {
            continue;
        }
        if name.chars().count() > TAG_MAX {
            let cut: String = name.chars().take(TAG_MAX).collect();
            notes.push(format!(
                "tag \u{201c}{}\u{2026}\u{201d} cut to {TAG_MAX} characters",
                cut.chars().take(20).collect::<String>()
            ));
            name = cut.trim_end().to_string();
        }
        let slug = slug::slugify(&name);
        if slug.is_empty() {
            notes.push(format!(
                "tag \u{201c}{name}\u{201d} left out (no letter or digit to make its address of)"
            ));
            continue;
        }
        if !seen.insert(slug.clone()) {
            continue;
        }
        if tags.len() == MAX_TAGS {
            dropped.push(name);
            continue;
        }
        tags.push(NewTag { name, slug });
    }
    if !dropped.is_empty() {
        notes.push(format!(
            "at most {MAX_TAGS} tags a post: left out {}",
            dropped.join(", ")
        ));
    }
    (tags, notes)
}

/// A post ready to store: rendered, its author and tags decided.
#[derive(Debug, Clone)]
pub struct NewImportedPost<'a> {
    pub author_id: UserId,
    pub title: &'a str,
    /// The source (Markdown, or another engine's HTML) that the editor will show.
    pub body_md: &'a str,
    pub body: &'a Rendered,
    pub excerpt_md: &'a str,
    pub excerpt_html: &'a str,
    pub state: State,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The slug wanted: kept when free, else numbered (`-2`, `-3`, ...).
    pub slug: &'a str,
    pub tags: &'a [NewTag],
}

/// Inserts one post and its tags on `conn` (the caller's transaction), under `slug` when
/// no post has it, else the first free `slug-2`, `slug-3`, ... Returns the post's id and
/// the slug it got. A tag takes the spelling given here only while no public post has it
/// (as `db::tags::set_for_post` does). Errors: the database's; a slug taken meanwhile by
/// another writer is a unique violation, for the caller to report.
pub async fn insert_post(
    conn: &mut AnyConnection,
    post: &NewImportedPost<'_>,
    now: OffsetDateTime,
) -> sqlx::Result<(PostId, String)> {
    let slug = free_slug(conn, post.slug, &HashSet::new()).await?;
    let (published, published_at) = match post.state {
        State::Draft => (false, 0),
        State::Published(at) => (true, at.unix_timestamp()),
    };
    let id = posts::insert_row(
        conn,
        &StoredPost {
            author_id: post.author_id,
            slug: &slug,
            title: post.title,
            body_md: post.body_md,
            body_html: &post.body.html,
            body_text: &post.body.text,
            excerpt_md: post.excerpt_md,
            excerpt_html: post.excerpt_html,
            published,
            published_at,
            created_at: post.created_at.unix_timestamp(),
            updated_at: post.updated_at.unix_timestamp(),
        },
    )
    .await?;
    tags::set_in(conn, id, post.tags, now).await?;
    Ok((id, slug))
}

/// The first of `base`, `base-2`, `base-3`, ... that no post holds and `also` does not
/// name (slugs planned by a dry run).
pub async fn free_slug(
    conn: &mut AnyConnection,
    base: &str,
    also: &HashSet<String>,
) -> sqlx::Result<String> {
    let mut taken = posts::slugs_under(conn, base).await?;
    taken.extend(also.iter().cloned());
    if !taken.contains(base) {
        return Ok(base.to_string());
    }
    let n = (2..)
        .find(|n| !taken.contains(&format!("{base}-{n}")))
        .unwrap_or(2);
    Ok(format!("{base}-{n}"))
}

/// An image a body references, found (or not) in the uploads folder.
struct Image {
    /// The path under the uploads folder, as the URL gives it.
    rel: String,
    /// Where it stands: an upload from an earlier run, one to make, or a problem.
    found: Found,
}

enum Found {
    Before {
        id: i64,
        name: String,
    },
    New {
        file_name: String,
        processed: Box<Processed>,
    },
    Missing(String),
}

/// One post, checked and ready for the transaction.
struct Planned {
    item: Item,
    author: UserId,
    tags: Vec<NewTag>,
    slug: String,
    excerpt: String,
    /// URLs in the body and the image path each refers to.
    urls: Vec<(String, String)>,
}

/// Imports an export already read (see [`run`]); errors as `run`'s.
pub async fn import(db: &AnyPool, export: Export, opts: &Options) -> Result<Report, String> {
    let name = opts.path.display().to_string();
    let db_err = |e: sqlx::Error| format!("database: {e}");
    let fallback = match &opts.author {
        Some(email) => Some(imports::account_by_email(db, &crate::auth::local::normalize_email(email))
            .await.map_err(db_err)?.ok_or_else(
            || format!("--author {email}: no account has this email; create it first (quire user add)"),
        )?),
        None => None,
    };
    let before = imports::recorded(db, &export.source)
        .await
        .map_err(db_err)?;
    let mut report = Report::default();
    report.lines.extend(export.notes.iter().cloned());
    let now = current_time();

    let mut planned = Vec::new();
    let mut seen_ids = HashSet::new();
    let mut authors: HashMap<String, Option<UserId>> = HashMap::new();
    for mut item in export.items {
        if !seen_ids.insert(item.source_id.clone()) {
            return Err(format!(
                "{name}: {} \u{201c}{}\u{201d}: its id ({}) appears twice in the export",
                item.kind, item.title, item.source_id
            ));
        }
        if before.contains_key(&item.source_id) {
            report.already += 1;
            report.lines.push(format!(
                "already imported: {} \u{201c}{}\u{201d}",
                item.kind, item.title
            ));
            continue;
        }
        let matched = match &item.author_email {
            Some(email) => match authors.get(email) {
                Some(found) => *found,
                None => {
                    let found =
                        imports::account_by_email(db, &crate::auth::local::normalize_email(email))
                            .await
                            .map_err(db_err)?;
                    authors.insert(email.clone(), found);
                    found
                }
            },
            None => None,
        };
        let author = matched
            .or(fallback)
            .ok_or_else(|| match &item.author_email {
                Some(email) => format!(
                    "{name}: {} \u{201c}{}\u{201d}: no account here has its author's email \
                 ({email}); name one with --author EMAIL",
                    item.kind, item.title
                ),
                None => format!(
                    "{name}: the export does not say who wrote its posts; name the account \
                 with --author EMAIL"
                ),
            })?;
        let title = item.title.trim();
        item.title = if title.is_empty() {
            "Untitled".to_string()
        } else if title.chars().count() > TITLE_MAX {
            item.notes
                .push(format!("title cut to {TITLE_MAX} characters"));
            title
                .chars()
                .take(TITLE_MAX)
                .collect::<String>()
                .trim_end()
                .to_string()
        } else {
            title.to_string()
        };
        let (tags, tag_notes) = clean_tags(&item.tags);
        item.notes.extend(tag_notes);
        let mut excerpt = item.excerpt.trim().to_string();
        if excerpt.chars().count() > EXCERPT_MAX {
            item.notes
                .push(format!("excerpt cut to {EXCERPT_MAX} characters"));
            excerpt = excerpt.chars().take(EXCERPT_MAX).collect();
        }
        let wanted = if item.slug.trim().is_empty() {
            slug_for(&item.title)
        } else {
            slug_for(&item.slug)
        };
        let urls = match &export.uploads {
            Some(up) => upload_urls(item.body.text(), &up.marker),
            None => Vec::new(),
        };
        planned.push(Planned {
            item,
            author,
            tags,
            slug: wanted,
            excerpt,
            urls,
        });
    }

    // Images: each path once, whichever posts use it.
    let mut images: Vec<Image> = Vec::new();
    let mut by_rel: HashMap<String, usize> = HashMap::new();
    if let Some(up) = &export.uploads {
        let index = FileIndex::new(&up.root);
        for p in &planned {
            for (_, rel) in &p.urls {
                if by_rel.contains_key(rel) {
                    continue;
                }
                let found = if let Some(&id) = before.get(&format!("upload:{rel}")) {
                    match media::by_id(db, id).await.map_err(db_err)?.map(|u| u.name) {
                        Some(name) => Found::Before { id, name },
                        None => Found::Missing("imported before, since deleted".into()),
                    }
                } else {
                    match index.locate(rel) {
                        Err(why) => Found::Missing(why),
                        Ok(path) => match load_image(&path, opts.bounds).await {
                            Ok(processed) => Found::New {
                                file_name: path
                                    .file_name()
                                    .map(|n| n.to_string_lossy().into_owned())
                                    .unwrap_or_default(),
                                processed: Box::new(processed),
                            },
                            Err(why) => Found::Missing(why),
                        },
                    }
                };
                by_rel.insert(rel.clone(), images.len());
                images.push(Image {
                    rel: rel.clone(),
                    found,
                });
            }
        }
    }

    // Every body and excerpt renders before anything is written (a dry run included),
    // with image URLs as they will be (the id is not known yet: 0 stands in for it).
    for p in &planned {
        let body = rewrite(p, &images, &by_rel, &HashMap::new());
        render_item(&name, p, &body).await?;
    }

    if opts.dry_run {
        let mut conn = db.acquire().await.map_err(db_err)?;
        let mut slugs = HashSet::new();
        for p in &planned {
            let slug = free_slug(&mut conn, &p.slug, &slugs)
                .await
                .map_err(db_err)?;
            slugs.insert(slug.clone());
            report.lines.push(post_line(p, &slug, now, true));
            report
                .lines
                .extend(p.item.notes.iter().map(|n| format!("  {n}")));
            report.posts += 1;
        }
        for img in &images {
            report.lines.push(image_line(img, None, true));
            match img.found {
                Found::New { .. } => report.images += 1,
                Found::Missing(_) => report.images_missing += 1,
                Found::Before { .. } => {}
            }
        }
        report.lines.push(summary(&report, true));
        return Ok(report);
    }

    // SQLite's write lock from the start: a blog serving meanwhile waits its turn rather
    // than failing the import with "database is locked" (see `WriteTx`).
    let mut tx = crate::db::WriteTx::begin(db).await.map_err(db_err)?;
    // Uploads first, so the bodies can name them; each belongs to the author of the
    // first post that uses it.
    let mut media_ids: HashMap<String, (i64, String)> = HashMap::new();
    let mut image_lines = Vec::new();
    for (i, img) in images.iter().enumerate() {
        match &img.found {
            Found::Before { id, name } => {
                media_ids.insert(img.rel.clone(), (*id, name.clone()));
                image_lines.push(image_line(img, Some(*id), false));
            }
            Found::New {
                file_name,
                processed,
            } => {
                let owner = planned
                    .iter()
                    .find(|p| p.urls.iter().any(|(_, r)| by_rel.get(r) == Some(&i)))
                    .map(|p| p.author)
                    .or(fallback)
                    .ok_or_else(|| format!("{name}: no owner for {}", img.rel))?;
                let id = media::insert_on(tx.conn(), owner, file_name, processed, now)
                    .await
                    .map_err(db_err)?;
                imports::record(
                    tx.conn(),
                    &export.source,
                    &format!("upload:{}", img.rel),
                    "upload",
                    id,
                    now,
                )
                .await
                .map_err(db_err)?;
                media_ids.insert(img.rel.clone(), (id, processed.full().name.clone()));
                image_lines.push(image_line(img, Some(id), false));
                report.images += 1;
            }
            Found::Missing(_) => {
                image_lines.push(image_line(img, None, false));
                report.images_missing += 1;
            }
        }
    }
    let ids: Vec<i64> = media_ids.values().map(|(id, _)| *id).collect();
    let sizes = media::sizes_on(tx.conn(), &ids).await.map_err(db_err)?;
    for p in &planned {
        let body = rewrite(p, &images, &by_rel, &media_ids);
        let (rendered, excerpt_html) = render_item(&name, p, &body).await?;
        let rendered = Rendered {
            html: crate::media::html::add_sizes(&rendered.html, &sizes),
            text: rendered.text,
        };
        let excerpt_html = crate::media::html::add_sizes(&excerpt_html, &sizes);
        let created = p
            .item
            .created
            .or(match p.item.state {
                State::Published(at) => Some(at),
                State::Draft => None,
            })
            .unwrap_or(now);
        let new = NewImportedPost {
            author_id: p.author,
            title: &p.item.title,
            body_md: &body,
            body: &rendered,
            excerpt_md: &p.excerpt,
            excerpt_html: &excerpt_html,
            state: p.item.state,
            created_at: created,
            updated_at: p.item.updated.unwrap_or(created).max(created),
            slug: &p.slug,
            tags: &p.tags,
        };
        let (id, slug) = insert_post(tx.conn(), &new, now).await.map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                "another post took a slug during the import; nothing was imported, run it again"
                    .to_string()
            } else {
                db_err(e)
            }
        })?;
        imports::record(
            tx.conn(),
            &export.source,
            &p.item.source_id,
            "post",
            id.0,
            now,
        )
        .await
        .map_err(db_err)?;
        report.lines.push(post_line(p, &slug, now, false));
        report
            .lines
            .extend(p.item.notes.iter().map(|n| format!("  {n}")));
        report.posts += 1;
    }
    tx.commit().await.map_err(db_err)?;
    report.lines.extend(image_lines);
    report.lines.push(summary(&report, false));
    Ok(report)
}

/// Renders an item's body (`body`, its URLs rewritten) and excerpt as the post form
/// would; a refusal names the post.
async fn render_item(name: &str, p: &Planned, body: &str) -> Result<(Rendered, String), String> {
    let source = excerpt_source(body, &p.excerpt);
    let sources: Vec<&str> = if source.is_empty() {
        vec![body]
    } else {
        vec![body, source]
    };
    let mut rendered = render_all(&sources)
        .await
        .map_err(|(i, e)| {
            let what = if i == 0 { "body" } else { "excerpt" };
            format!(
                "{name}: {} \u{201c}{}\u{201d} ({}): its {what} was refused: {e}",
                p.item.kind, p.item.title, p.item.source_id
            )
        })?
        .into_iter();
    let body = rendered.next().unwrap_or(Rendered {
        html: String::new(),
        text: String::new(),
    });
    Ok((body, rendered.next().map(|r| r.html).unwrap_or_default()))
}

/// The body with each URL of a found image replaced by its `/media/<id>/<file>` (id 0
/// while not yet known); URLs of missing images stay as they were.
fn rewrite(
    p: &Planned,
    images: &[Image],
    by_rel: &HashMap<String, usize>,
    ids: &HashMap<String, (i64, String)>,
) -> String {
    let mut body = p.item.body.text().to_string();
    // Longest first, so a URL that contains another is replaced whole.
    let mut urls: Vec<&(String, String)> = p.urls.iter().collect();
    urls.sort_by_key(|(u, _)| std::cmp::Reverse(u.len()));
    for (url, rel) in urls {
        let Some(img) = by_rel.get(rel).map(|&i| &images[i]) else {
            continue;
        };
        let to = match (&img.found, ids.get(rel)) {
            (_, Some((id, name))) => format!("/media/{id}/{name}"),
            (Found::New { processed, .. }, None) => format!("/media/0/{}", processed.full().name),
            (Found::Before { id, name }, None) => format!("/media/{id}/{name}"),
            (Found::Missing(_), _) => continue,
        };
        body = body.replace(url.as_str(), &to);
    }
    body
}

/// The URLs in `body` that point into an uploads folder (`marker` inside them), each with
/// its path under that folder, percent-decoded, query and fragment dropped.
pub fn upload_urls(body: &str, marker: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let ends = |c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '(' | ')' | ',' | '[' | ']')
    };
    for (at, _) in body.match_indices(marker) {
        let start = body[..at].rfind(ends).map_or(0, |i| {
            i + body[i..].chars().next().map_or(1, char::len_utf8)
        });
        let after = at + marker.len();
        let end = body[after..].find(ends).map_or(body.len(), |i| after + i);
        let url = &body[start..end];
        let rel = &body[after..end];
        let rel = rel.split(['?', '#']).next().unwrap_or("");
        let rel = percent_decode(&rel.replace("&amp;", "&"));
        if rel.is_empty() || out.iter().any(|(u, _)| u == url) {
            continue;
        }
        out.push((url.to_string(), rel));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The files of an uploads folder, found by their path under it or, failing that, by
/// their name alone (exports often link a resized copy, or a path from an older layout).
struct FileIndex {
    root: Option<PathBuf>,
    by_name: HashMap<String, Vec<PathBuf>>,
}

/// Files and folders looked at in an uploads folder, at most: a bound on a folder that is
/// not what it seems (the whole disk named by mistake).
const INDEX_MAX: usize = 200_000;

impl FileIndex {
    fn new(root: &Path) -> FileIndex {
        let root = std::fs::canonicalize(root).ok().filter(|r| r.is_dir());
        let mut by_name: HashMap<String, Vec<PathBuf>> = HashMap::new();
        if let Some(root) = &root {
            let mut stack = vec![(root.clone(), 0usize)];
            let mut seen = 0;
            while let Some((dir, depth)) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    seen += 1;
                    if seen > INDEX_MAX {
                        break;
                    }
                    // Symbolic links are not followed: they could lead out of the folder.
                    let Ok(kind) = entry.file_type() else {
                        continue;
                    };
                    if kind.is_dir() && depth < 16 {
                        stack.push((entry.path(), depth + 1));
                    } else if kind.is_file() {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        by_name.entry(name).or_default().push(entry.path());
                    }
                }
            }
            for paths in by_name.values_mut() {
                paths.sort();
            }
        }
        FileIndex { root, by_name }
    }

    /// The file for `rel` (a path under the uploads folder from a URL): that path when it
    /// stays inside the folder and is a regular file there, else the one file of that name
    /// anywhere in the folder (the first by path when several are). A path that would leave
    /// the folder (`..`, an absolute path, a link out of it) is refused outright.
    fn locate(&self, rel: &str) -> Result<PathBuf, String> {
        let Some(root) = &self.root else {
            return Err("not found (no uploads folder)".into());
        };
        let mut path = root.clone();
        for part in rel.split('/') {
            let bad = part.is_empty()
                || part.contains('\\')
                || part.contains('\0')
                || !matches!(
                    Path::new(part).components().next(),
                    Some(Component::Normal(_))
                )
                || Path::new(part).components().count() != 1;
            if bad {
                return Err("refused: the path leaves the uploads folder".into());
            }
            path.push(part);
        }
        if let Ok(real) = std::fs::canonicalize(&path) {
            if real.starts_with(root) && real.is_file() {
                return Ok(real);
            }
            if !real.starts_with(root) {
                return Err("refused: the path leaves the uploads folder".into());
            }
        }
        let file_name = rel.rsplit('/').next().unwrap_or(rel);
        match self.by_name.get(file_name).and_then(|p| p.first()) {
            Some(p) => Ok(p.clone()),
            None => Err("not found in the uploads folder".into()),
        }
    }
}

/// Reads an image file (refusing one over the limit before reading it) and processes it
/// as an upload is; the reason as the report words it otherwise.
async fn load_image(path: &Path, bounds: Bounds) -> Result<Processed, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("unreadable: {e}"))?
        .len();
    if len > bounds.max_bytes {
        return Err(format!(
            "refused: over the upload limit of {}",
            crate::media::human_bytes(bounds.max_bytes)
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    crate::media::process(bytes, bounds)
        .await
        .map_err(|e| format!("refused: {e}"))
}

fn day(t: OffsetDateTime) -> String {
    format!("{}-{:02}-{:02}", t.year(), t.month() as u8, t.day())
}

fn minute(t: OffsetDateTime) -> String {
    format!("{} {:02}:{:02} UTC", day(t), t.hour(), t.minute())
}

fn post_line(p: &Planned, slug: &str, now: OffsetDateTime, dry: bool) -> String {
    let state = match p.item.state {
        State::Draft => "draft".to_string(),
        State::Published(at) if at > now => format!("scheduled for {}", minute(at)),
        State::Published(at) => format!("published {}", day(at)),
    };
    let verb = if dry { "would import" } else { "imported" };
    let kind = if p.item.kind == "page" {
        "page (as a post)"
    } else {
        "post"
    };
    let moved = if slug != p.slug {
        format!(", its slug {} being taken", p.slug)
    } else {
        String::new()
    };
    format!(
        "{verb} {kind} \u{201c}{}\u{201d} as /posts/{slug} ({state}{moved})",
        p.item.title
    )
}

fn image_line(img: &Image, id: Option<i64>, dry: bool) -> String {
    match (&img.found, id) {
        (Found::Missing(why), _) => format!("image {}: {why}; its URL is left as it was", img.rel),
        (Found::Before { id, name }, _) => {
            format!("image {}: imported before, as /media/{id}/{name}", img.rel)
        }
        (Found::New { processed, .. }, Some(id)) => format!(
            "image {}: uploaded as /media/{id}/{}",
            img.rel,
            processed.full().name
        ),
        (Found::New { processed, .. }, None) => {
            let full = processed.full();
            let verb = if dry { "would be uploaded" } else { "uploaded" };
            format!(
                "image {}: {verb} ({} x {})",
                img.rel, full.width, full.height
            )
        }
    }
}

fn summary(r: &Report, dry: bool) -> String {
    let mut s = if dry {
        format!(
            "dry run: would import {} post(s) and {} image(s); nothing was written",
            r.posts, r.images
        )
    } else {
        format!("imported {} post(s) and {} image(s)", r.posts, r.images)
    };
    if r.already > 0 {
        s.push_str(&format!("; {} imported before, skipped", r.already));
    }
    if r.images_missing > 0 {
        s.push_str(&format!(
            "; {} image(s) missing or refused (listed above)",
            r.images_missing
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_urls_are_found_in_html_and_markdown() {
        let body = r#"<img src="https://old.example/wp-content/uploads/2020/05/a%20b.png?w=300" alt=""> and ![x](/wp-content/uploads/c.jpg)"#;
        let urls = upload_urls(body, "/wp-content/uploads/");
        assert_eq!(
            urls,
            vec![
                (
                    "https://old.example/wp-content/uploads/2020/05/a%20b.png?w=300".to_string(),
                    "2020/05/a b.png".to_string()
                ),
                ("/wp-content/uploads/c.jpg".to_string(), "c.jpg".to_string()),
            ]
        );
    }

    #[test]
    fn html_is_unindented_outside_pre() {
        assert_eq!(
            html_source("<ul>\n\n    <li>a</li>\n</ul>\n<pre>\n    code\n</pre>\n  <p>x</p>"),
            "<ul>\n\n<li>a</li>\n</ul>\n<pre>\n    code\n</pre>\n<p>x</p>"
        );
    }

    #[test]
    fn dates_in_export_formats() {
        assert_eq!(
            parse_time("2020-05-01 10:00:00").map(|t| t.unix_timestamp()),
            Some(1_588_327_200)
        );
        assert_eq!(
            parse_time("2020-05-01T12:00:00+02:00").map(|t| t.unix_timestamp()),
            Some(1_588_327_200)
        );
        assert!(parse_time("0000-00-00 00:00:00").is_none());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn long_and_many_tags_are_cut_and_said() {
        let mut names: Vec<String> = (0..25).map(|i| format!("t{i}")).collect();
        names.insert(0, "x".repeat(60));
        names.push("T1".into());
        let (tags, notes) = clean_tags(&names);
        assert_eq!(tags.len(), MAX_TAGS);
        assert_eq!(tags[0].name.chars().count(), TAG_MAX);
        assert_eq!(notes.len(), 2, "{notes:?}");
    }
}
