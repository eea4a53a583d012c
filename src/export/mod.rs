//! `quire export --out DIR`: the whole site, read in one snapshot, as files a person or
//! another tool can use, and that `quire import quire DIR` (`import.rs`) reads back.
//!
//! ```text
//! DIR/quire-export.json        everything: format, version, authors, tags, posts, media
//! DIR/posts/<slug>.md          each post: YAML front matter, then its Markdown
//! DIR/media/<id>/<file>        each upload's files (full size and variants), as stored
//! ```
//! The JSON document is the export; the Markdown files are a copy of its posts for
//! people and other engines. Nothing secret is written: no password hashes, second
//! factors, sessions or tokens. The format is described in README.md ("Export").

pub mod import;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::db::{export as rows, Pool};

/// The JSON document's name in an export folder.
pub const DOCUMENT: &str = "quire-export.json";
/// What `format` says in every quire export.
pub const FORMAT: &str = "quire-export";
/// The format's version; a reader refuses versions it does not know.
pub const VERSION: u32 = 1;

/// The JSON document, version 1.
#[derive(Debug, Serialize, Deserialize)]
pub struct Document {
    pub format: String,
    pub version: u32,
    pub exported_at: String,
    pub authors: Vec<Author>,
    pub tags: Vec<Tag>,
    pub posts: Vec<Post>,
    pub media: Vec<Media>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Author {
    /// This export's key for the account (posts and media name their author by it).
    pub id: i64,
    /// "local" or "oidc".
    pub kind: String,
    pub name: String,
    pub handle: String,
    pub email: String,
    /// "author" or "admin".
    pub role: String,
    pub email_confirmed: bool,
    pub created_at: String,
    /// For "oidc" accounts: the identity at the provider, so its next login lands on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcIdentity>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OidcIdentity {
    pub issuer: String,
    pub subject: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Tag {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Post {
    pub slug: String,
    pub title: String,
    /// An `authors[].id`.
    pub author: i64,
    /// True: only its author sees it. False: public once `published_at` has come (a
    /// later time means scheduled).
    pub draft: bool,
    /// RFC 3339; null for a draft never published nor timed.
    pub published_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Tag slugs (`tags[].slug`), in the order typed.
    pub tags: Vec<String>,
    /// The excerpt field as typed ("" when none).
    pub excerpt: String,
    /// Markdown, as typed.
    pub body: String,
    /// The sanitized HTML quire stored; for other readers: an import renders the
    /// Markdown again (through the same sanitizer) and does not read these.
    pub body_html: String,
    pub excerpt_html: String,
    /// The post's Markdown file in the export.
    pub file: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Media {
    /// Its id in `/media/<id>/<file>` URLs, which posts link; kept by an import.
    pub id: i64,
    /// An `authors[].id`.
    pub owner: i64,
    /// The uploader's own file name, shown in their library.
    pub file_name: String,
    /// The full-size file's name (one of `files`).
    pub name: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub animated: bool,
    pub created_at: String,
    pub url: String,
    /// The full-size file and its resized variants, widest first.
    pub files: Vec<MediaFile>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MediaFile {
    pub name: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    /// The strong ETag served: the SHA-256 of the bytes, quoted.
    pub etag: String,
    pub bytes: u64,
    /// Where the bytes are in the export: `media/<id>/<name>`.
    pub path: String,
}

/// RFC 3339 in UTC, to the second (what the columns keep).
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Unix seconds of an RFC 3339 time; None when it is not one.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

/// What an export wrote, for its line of output.
pub struct Written {
    pub dir: PathBuf,
    pub authors: usize,
    pub posts: usize,
    pub tags: usize,
    pub uploads: usize,
    pub files: usize,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exported {} post(s), {} tag(s), {} author(s) and {} upload(s) ({} file(s)) to {}",
            self.posts,
            self.tags,
            self.authors,
            self.uploads,
            self.files,
            self.dir.display()
        )
    }
}

/// Writes the export into `out`, which must not exist or be an empty folder. It is
/// written beside it under a temporary name and renamed into place when whole, so a
/// failure leaves nothing at `out` (and never mixes with files already there).
pub async fn export(db: &Pool, out: &Path) -> Result<Written, String> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "--out {}: the folder is not empty; export into a new or empty folder \
                     (an export never overwrites or mixes with other files)",
                    out.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("--out {}: {e}", out.display())),
    }
    let name = out
        .file_name()
        .ok_or_else(|| format!("--out {}: name a folder", out.display()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let temp = parent.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        crate::token::generate().get(..12).unwrap_or("x")
    ));
    create_private_dir(&temp)?;
    let written = write_into(db, &temp).await.and_then(|mut w| {
        std::fs::rename(&temp, out).map_err(|e| format!("--out {}: {e}", out.display()))?;
        w.dir = out.to_path_buf();
        Ok(w)
    });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    written
}

/// The export holds every author's email: readable by its owner only.
fn create_private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

async fn write_into(db: &Pool, dir: &Path) -> Result<Written, String> {
    let fail = |e: sqlx::Error| format!("reading the database: {e}");
    let mut tx = db.begin().await.map_err(fail)?;
    rows::begin_snapshot(&mut tx, db.backend)
        .await
        .map_err(fail)?;
    let accounts = rows::accounts(&mut tx).await.map_err(fail)?;
    let tags = rows::tags(&mut tx).await.map_err(fail)?;
    let posts = rows::posts(&mut tx).await.map_err(fail)?;
    let post_tags = rows::post_tags(&mut tx).await.map_err(fail)?;
    let media = rows::media(&mut tx).await.map_err(fail)?;
    let files = rows::media_files(&mut tx).await.map_err(fail)?;

    let handles: std::collections::HashMap<i64, &str> =
        accounts.iter().map(|a| (a.id, a.handle.as_str())).collect();
    let tag_names: std::collections::HashMap<&str, &str> = tags
        .iter()
        .map(|(slug, name)| (slug.as_str(), name.as_str()))
        .collect();

    let posts_dir = dir.join("posts");
    create_private_dir(&posts_dir)?;
    let mut doc_posts = Vec::with_capacity(posts.len());
    for p in &posts {
        let tags: Vec<String> = post_tags
            .iter()
            .filter(|(id, _)| *id == p.id)
            .map(|(_, slug)| slug.clone())
            .collect();
        let names: Vec<&str> = tags
            .iter()
            .map(|s| tag_names.get(s.as_str()).copied().unwrap_or(s.as_str()))
            .collect();
        // Slugs are [a-z0-9-] (`render::is_slug`); a damaged row is not followed out of
        // the folder.
        if !crate::render::is_slug(&p.slug) {
            return Err(format!("post {} has the slug {:?}", p.id, p.slug));
        }
        let file = format!("posts/{}.md", p.slug);
        let author = handles.get(&p.author_id).copied().unwrap_or("");
        write_file(
            &dir.join(&file),
            markdown_file(p, author, &names).as_bytes(),
        )?;
        doc_posts.push(Post {
            slug: p.slug.clone(),
            title: p.title.clone(),
            author: p.author_id,
            draft: !p.published,
            published_at: (p.published_at != 0).then(|| rfc3339(p.published_at)),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
            tags,
            excerpt: p.excerpt_md.clone(),
            body: p.body_md.clone(),
            body_html: p.body_html.clone(),
            excerpt_html: p.excerpt_html.clone(),
            file,
        });
    }

    let media_dir = dir.join("media");
    create_private_dir(&media_dir)?;
    let mut doc_media = Vec::with_capacity(media.len());
    for m in &media {
        let upload_dir = media_dir.join(m.id.to_string());
        create_private_dir(&upload_dir)?;
        let mut out_files = Vec::new();
        for f in files.iter().filter(|f| f.media_id == m.id) {
            let bytes = rows::file_bytes(&mut tx, f.id).await.map_err(fail)?;
            // Names are quire's own (a hash, a width, an extension), never a path; a
            // damaged row is not followed out of the folder.
            if !import::is_file_name(&f.name) {
                return Err(format!("upload {} has a file named {:?}", m.id, f.name));
            }
            write_file(&upload_dir.join(&f.name), &bytes)?;
            out_files.push(MediaFile {
                name: f.name.clone(),
                content_type: f.content_type.clone(),
                width: f.width as u32,
                height: f.height as u32,
                etag: f.etag.clone(),
                bytes: bytes.len() as u64,
                path: format!("media/{}/{}", m.id, f.name),
            });
        }
        doc_media.push(Media {
            id: m.id,
            owner: m.owner_id,
            file_name: m.file_name.clone(),
            name: m.name.clone(),
            content_type: m.content_type.clone(),
            width: m.width as u32,
            height: m.height as u32,
            animated: m.animated,
            created_at: rfc3339(m.created_at),
            url: format!("/media/{}/{}", m.id, m.name),
            files: out_files,
        });
    }
    tx.rollback().await.map_err(fail)?;

    let written = Written {
        dir: dir.to_path_buf(),
        authors: accounts.len(),
        posts: doc_posts.len(),
        tags: tags.len(),
        uploads: doc_media.len(),
        files: doc_media.iter().map(|m| m.files.len()).sum(),
    };
    let doc = Document {
        format: FORMAT.into(),
        version: VERSION,
        exported_at: rfc3339(crate::db::now()),
        authors: accounts.into_iter().map(author).collect(),
        tags: tags
            .into_iter()
            .map(|(slug, name)| Tag { slug, name })
            .collect(),
        posts: doc_posts,
        media: doc_media,
    };
    let json = serde_json::to_vec_pretty(&doc).map_err(|e| format!("{DOCUMENT}: {e}"))?;
    write_file(&dir.join(DOCUMENT), &json)?;
    Ok(written)
}

fn author(a: rows::AccountRow) -> Author {
    Author {
        id: a.id,
        oidc: (a.kind == "oidc").then(|| OidcIdentity {
            issuer: a.oidc_issuer.clone(),
            subject: a.oidc_subject.clone(),
        }),
        kind: a.kind,
        name: a.name,
        handle: a.handle,
        email: a.email,
        role: if a.is_admin { "admin" } else { "author" }.into(),
        email_confirmed: a.email_confirmed,
        created_at: rfc3339(a.created_at),
    }
}

/// A YAML double-quoted string: quotes and backslashes escaped, and every character YAML
/// does not allow as it is (controls, line breaks) written as an escape, so nothing a
/// title holds (quotes, colons, newlines, `---`) can break the front matter.
fn yaml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'.. => out.push(c),
            // What is left is below U+10000: controls, DEL, C1 controls, U+FFFE/U+FFFF.
            c => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A post as a Markdown file: YAML front matter (title, slug, date, updated, tags,
/// draft, excerpt, author), then the Markdown exactly as stored.
fn markdown_file(p: &rows::PostRow, author: &str, tags: &[&str]) -> String {
    let mut s = String::from("---\n");
    s.push_str(&format!("title: {}\n", yaml_str(&p.title)));
    s.push_str(&format!("slug: {}\n", yaml_str(&p.slug)));
    if p.published_at != 0 {
        s.push_str(&format!("date: {}\n", yaml_str(&rfc3339(p.published_at))));
    }
    s.push_str(&format!("updated: {}\n", yaml_str(&rfc3339(p.updated_at))));
    let tags: Vec<String> = tags.iter().map(|t| yaml_str(t)).collect();
    s.push_str(&format!("tags: [{}]\n", tags.join(", ")));
    s.push_str(&format!("draft: {}\n", !p.published));
    if !p.excerpt_md.is_empty() {
        s.push_str(&format!("excerpt: {}\n", yaml_str(&p.excerpt_md)));
    }
    s.push_str(&format!("author: {}\n", yaml_str(author)));
    s.push_str("---\n");
    s.push_str(&p.body_md);
    s
}
