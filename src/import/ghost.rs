//! Ghost's JSON export (Settings → Labs → Export content): `{"db": [{"meta": ...,
//! "data": {"posts": [...], "tags": [...], "posts_tags": [...], "users": [...],
//! "posts_authors": [...]}}]}` (the `db` wrapper is optional, as Ghost's importer allows).
//!
//! - Bodies: a post's Markdown when it has one (a Markdown card of the mobiledoc, or
//!   `markdown` in old exports), else its `html` (mobiledoc and lexical exports carry the
//!   rendered HTML beside them). `__GHOST_URL__` (Ghost's placeholder for the site's own
//!   address) is resolved to local links: a link to an imported post goes to
//!   `/posts/<slug>`, a tag page to `/tags/<slug>`, anything else to its path on this site.
//! - `status`: `published` and `scheduled` keep `published_at` (a future one stays
//!   scheduled), `draft` stays a draft. Posts for members or paid tiers only
//!   (`visibility` other than `public`) become drafts: quire has no members, and
//!   publishing them would show everyone what was paid for; the report says so.
//! - Pages (`type: page`) become posts, as the report says. Internal tags (`#name`) are
//!   left out.

use std::collections::HashMap;

use serde::Deserialize;

use super::{json_error, parse_time, Body, Export, Item, State};

#[derive(Deserialize)]
struct Db {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    posts: Vec<Post>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    posts_tags: Vec<PostTag>,
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    posts_authors: Vec<PostAuthor>,
}

#[derive(Deserialize)]
struct Post {
    id: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    mobiledoc: Option<String>,
    #[serde(default)]
    markdown: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    page: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    created_at: Option<serde_json::Value>,
    #[serde(default)]
    updated_at: Option<serde_json::Value>,
    #[serde(default)]
    published_at: Option<serde_json::Value>,
    #[serde(default)]
    custom_excerpt: Option<String>,
    #[serde(default)]
    author_id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Tag {
    id: serde_json::Value,
    name: String,
    #[serde(default)]
    visibility: Option<String>,
}

#[derive(Deserialize)]
struct PostTag {
    post_id: serde_json::Value,
    tag_id: serde_json::Value,
    #[serde(default)]
    sort_order: Option<i64>,
}

#[derive(Deserialize)]
struct User {
    id: serde_json::Value,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
struct PostAuthor {
    post_id: serde_json::Value,
    author_id: serde_json::Value,
    #[serde(default)]
    sort_order: Option<i64>,
}

/// A Ghost date: an ISO 8601 string, or epoch milliseconds in old exports.
fn time_of(v: &serde_json::Value) -> Option<time::OffsetDateTime> {
    match v {
        serde_json::Value::String(s) => parse_time(s),
        serde_json::Value::Number(n) => {
            let t = time::OffsetDateTime::from_unix_timestamp(n.as_i64()? / 1000).ok()?;
            parse_time(&format!(
                "{}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ))
        }
        _ => None,
    }
}

/// Ghost ids are strings (24 hex digits) or, in old exports, numbers.
fn id(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The Markdown of a mobiledoc whose only content is one Markdown card (what Ghost's
/// Markdown editor and old imports make).
fn mobiledoc_markdown(doc: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(doc).ok()?;
    let cards = v.get("cards")?.as_array()?;
    let mut texts = cards.iter().filter_map(|c| {
        let c = c.as_array()?;
        (c.first()?.as_str()? == "markdown" || c.first()?.as_str()? == "card-markdown")
            .then(|| c.get(1)?.get("markdown")?.as_str().map(str::to_string))?
    });
    let first = texts.next()?;
    let sections = v
        .get("sections")
        .and_then(|s| s.as_array())
        .map_or(0, Vec::len);
    (texts.next().is_none() && cards.len() == 1 && sections <= 1).then_some(first)
}

/// Parses a Ghost export; `name` is the file's name for messages. Errors: one line with
/// the file and the line and column, or the JSON path of what is missing.
pub fn parse(name: &str, text: &str) -> Result<Export, String> {
    parse_export(name, text).map_err(|e| super::one_line(&e))
}

fn parse_export(name: &str, text: &str) -> Result<Export, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| json_error(name, &e))?;
    // Ghost's format may be wrapped in {"db": [...]} or not; both are valid.
    let (value, path) = match value.get("db") {
        Some(serde_json::Value::Array(dbs)) => match dbs.first() {
            Some(first) => (first.clone(), "db[0]"),
            None => return Err(format!("{name}: db: empty, expected db[0].data.posts")),
        },
        Some(_) => return Err(format!("{name}: db: not a list")),
        None => (value, "(top)"),
    };
    let db: Db = serde_json::from_value(value).map_err(|e| format!("{name}: {path}: {e}"))?;
    let data = db.data;
    let tags: HashMap<String, &Tag> = data.tags.iter().map(|t| (id(&t.id), t)).collect();
    let emails: HashMap<String, String> = data
        .users
        .iter()
        .filter_map(|u| Some((id(&u.id), u.email.clone()?)))
        .collect();
    let mut post_tags: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for (i, pt) in data.posts_tags.iter().enumerate() {
        post_tags
            .entry(id(&pt.post_id))
            .or_default()
            .push((pt.sort_order.unwrap_or(i as i64), id(&pt.tag_id)));
    }
    let mut authors: HashMap<String, (i64, String)> = HashMap::new();
    for pa in &data.posts_authors {
        let order = pa.sort_order.unwrap_or(0);
        let entry = authors
            .entry(id(&pa.post_id))
            .or_insert((i64::MAX, String::new()));
        if order < entry.0 {
            *entry = (order, id(&pa.author_id));
        }
    }
    // Slugs of the export's posts and tags, for resolving links between them.
    let post_slugs: Vec<String> = data.posts.iter().filter_map(|p| p.slug.clone()).collect();
    let mut export = Export {
        source: "ghost".into(),
        ..Export::default()
    };
    let mut internal_tags = 0;
    for (i, p) in data.posts.iter().enumerate() {
        let pid = id(&p.id);
        let place = |field: &str| format!("{name}: db[0].data.posts[{i}].{field}");
        let is_page = p.kind.as_deref() == Some("page")
            || matches!(&p.page, Some(serde_json::Value::Bool(true)))
            || matches!(&p.page, Some(serde_json::Value::Number(n)) if n.as_i64() == Some(1));
        let kind = if is_page { "page" } else { "post" };
        let title = p.title.clone().unwrap_or_default();
        let markdown = p
            .mobiledoc
            .as_deref()
            .and_then(mobiledoc_markdown)
            .or_else(|| p.markdown.clone().filter(|m| !m.trim().is_empty()));
        let body = match (markdown, &p.html) {
            (Some(md), _) => Body::Markdown(resolve_urls(&md, &post_slugs)),
            (None, Some(html)) => Body::Html(super::html_source(&resolve_urls(html, &post_slugs))),
            (None, None) => Body::Markdown(String::new()),
        };
        let mut notes = Vec::new();
        let published_at = match &p.published_at {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                time_of(v)
                    .ok_or_else(|| format!("{}: unreadable date {v}", place("published_at")))?,
            ),
        };
        let status = p.status.as_deref().unwrap_or("draft");
        let mut state = match status {
            "published" | "scheduled" => State::Published(published_at.ok_or_else(|| {
                format!("{}: missing for a {status} {kind}", place("published_at"))
            })?),
            "draft" => State::Draft,
            other => {
                notes.push(format!(
                    "status \u{201c}{other}\u{201d} in Ghost: imported as a draft"
                ));
                State::Draft
            }
        };
        let visibility = p.visibility.as_deref().unwrap_or("public");
        if visibility != "public" && state != State::Draft {
            notes.push(format!(
                "for {visibility} only in Ghost: imported as a draft (quire has no members; \
                 publish it yourself if it may be public)"
            ));
            state = State::Draft;
        }
        let mut ordered = post_tags.remove(&pid).unwrap_or_default();
        ordered.sort();
        let mut names = Vec::new();
        for (_, tid) in ordered {
            let Some(tag) = tags.get(&tid) else { continue };
            if tag.visibility.as_deref() == Some("internal") || tag.name.starts_with('#') {
                internal_tags += 1;
                continue;
            }
            names.push(tag.name.clone());
        }
        let author = authors
            .get(&pid)
            .map(|(_, a)| a.clone())
            .or_else(|| p.author_id.as_ref().map(id));
        export.items.push(Item {
            source_id: format!("post:{pid}"),
            kind,
            title,
            body,
            excerpt: p.custom_excerpt.clone().unwrap_or_default(),
            slug: p.slug.clone().unwrap_or_default(),
            state,
            created: p.created_at.as_ref().and_then(time_of),
            updated: p.updated_at.as_ref().and_then(time_of),
            tags: names,
            author_email: author.and_then(|a| emails.get(&a).cloned()),
            notes,
        });
    }
    if internal_tags > 0 {
        export
            .notes
            .push(format!("left out: {internal_tags} internal tag(s) (#name)"));
    }
    Ok(export)
}

/// Where Ghost serves its images; the path after it is the file's under content/images.
pub const IMAGES: &str = "/content/images/";

/// `text` with `__GHOST_URL__` links made local: a post of the export to
/// `/posts/<slug>`, a tag to `/tags/<slug>`, an image to its original under
/// [`IMAGES`] (its resized copies, `size/w600/...`, named the same file), anything else
/// to its path here.
fn resolve_urls(text: &str, post_slugs: &[String]) -> String {
    const PLACEHOLDER: &str = "__GHOST_URL__";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(PLACEHOLDER) {
        out.push_str(&rest[..at]);
        rest = &rest[at + PLACEHOLDER.len()..];
        let end = rest
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | '#' | '?')
            })
            .unwrap_or(rest.len());
        let path = &rest[..end];
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let local = match parts.as_slice() {
            [slug] if post_slugs.iter().any(|s| s == slug) => format!("/posts/{slug}"),
            ["tag", slug] => format!("/tags/{slug}"),
            ["content", "images", rest @ ..] => format!("{IMAGES}{}", original(rest).join("/")),
            [] => "/".to_string(),
            _ => path.to_string(),
        };
        out.push_str(&local);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// An image path under content/images without Ghost's resizing prefixes
/// (`size/w600/`, `size/w600h400/`, `format/webp/`), which name copies of the same file.
fn original<'a>(mut parts: &'a [&'a str]) -> &'a [&'a str] {
    loop {
        match parts {
            ["size", dims, rest @ ..]
                if dims.starts_with('w')
                    && dims[1..]
                        .split('h')
                        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
            {
                parts = rest
            }
            ["format", kind, rest @ ..] if kind.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                parts = rest
            }
            _ => return parts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghost_urls_become_local_links() {
        let slugs = vec!["hello".to_string()];
        assert_eq!(
            resolve_urls(
                r#"<a href="__GHOST_URL__/hello/">x</a> <a href="__GHOST_URL__/tag/news/">"#,
                &slugs
            ),
            r#"<a href="/posts/hello">x</a> <a href="/tags/news">"#
        );
        assert_eq!(resolve_urls("__GHOST_URL__/about/", &slugs), "/about/");
        assert_eq!(
            resolve_urls(
                "__GHOST_URL__/content/images/size/w600/format/webp/2023/03/a.jpg 600w",
                &slugs
            ),
            "/content/images/2023/03/a.jpg 600w"
        );
        assert_eq!(resolve_urls("[home](__GHOST_URL__)", &slugs), "[home](/)");
    }
}
