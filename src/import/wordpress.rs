//! WordPress's export (Tools → Export: WXR, "WordPress eXtended RSS", an RSS 2.0 file
//! with the `wp:` namespace), read with quick-xml.
//!
//! - Posts and pages are imported (quire has no pages: they become posts, and the report
//!   says so); attachments, revisions, menu items and other types are left out, counted.
//! - `wp:status`: `publish` and `future` keep their time (`wp:post_date_gmt`; a future one
//!   stays scheduled), `draft`, `pending` and `private` become drafts (a private post is
//!   never made public), `trash` and `auto-draft` are left out. Drafts carry
//!   `0000-00-00 00:00:00` as their GMT date; their `wp:post_date` is kept as created.
//! - Core shortcodes (`[caption]`, `[embed]`, ...) are expanded, see `shortcodes`.
//! - Categories and tags (`<category domain="category|post_tag">`) become tags.
//! - The author is `dc:creator`, a login, matched through the channel's `wp:author`
//!   entries to an email.
//! - A DOCTYPE is refused where it appears: WordPress never writes one, and it is where
//!   entities would be declared (the "billion laughs"). Only XML's five entities and
//!   character references are read.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::Reader;

use super::{line_col, parse_time, Body, Export, Item, State};

#[derive(Default)]
struct RawItem {
    title: String,
    creator: String,
    content: String,
    excerpt: String,
    post_id: String,
    post_date: String,
    post_date_gmt: String,
    modified_gmt: String,
    post_name: String,
    status: String,
    post_type: String,
    pub_date: String,
    tags: Vec<String>,
    /// Where the item starts, for messages.
    line: usize,
}

/// Parses a WXR document; `name` is the file's name for messages. Errors: one line
/// naming the file, line and column.
pub fn parse(name: &str, text: &str) -> Result<Export, String> {
    parse_export(name, text).map_err(|e| super::one_line(&e))
}

fn parse_export(name: &str, text: &str) -> Result<Export, String> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let at = |offset: u64| {
        let (line, col) = line_col(text, offset as usize);
        format!("{name}:{line}:{col}")
    };
    let mut stack: Vec<String> = Vec::new();
    let mut buf = String::new();
    let mut authors: HashMap<String, String> = HashMap::new();
    let mut author_login = String::new();
    let mut author_email = String::new();
    let mut site = String::new();
    let mut link = String::new();
    let mut saw_rss = false;
    let mut item: Option<RawItem> = None;
    let mut items: Vec<RawItem> = Vec::new();
    let mut category: Option<String> = None;
    loop {
        let pos = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("{}: malformed XML: {e}", at(reader.error_position())))?;
        match event {
            Event::DocType(_) => {
                return Err(format!(
                    "{}: DOCTYPE declarations are refused (a WordPress export has none, and \
                     the entities they declare can expand without end)",
                    at(pos)
                ));
            }
            Event::Start(e) => {
                let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if stack.is_empty() {
                    if tag != "rss" {
                        return Err(format!(
                            "{}: not a WordPress export (the document is <{tag}>, not <rss>)",
                            at(pos)
                        ));
                    }
                    saw_rss = true;
                }
                if tag == "item" && stack.last().map(String::as_str) == Some("channel") {
                    let (line, _) = line_col(text, pos as usize);
                    item = Some(RawItem {
                        line,
                        ..RawItem::default()
                    });
                }
                if tag == "category" && item.is_some() {
                    let domain = e
                        .try_get_attribute("domain")
                        .ok()
                        .flatten()
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                        .unwrap_or_default();
                    category = matches!(domain.as_str(), "category" | "post_tag").then(String::new);
                }
                stack.push(tag);
                buf.clear();
            }
            Event::Empty(_) => buf.clear(),
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|e| format!("{}: {e}", at(pos)))?;
                buf.push_str(&s);
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|e| format!("{}: {e}", at(pos)))?;
                buf.push_str(&s);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.decode().map_err(|e| format!("{}: {e}", at(pos)))?;
                        match quick_xml::escape::resolve_xml_entity(&name) {
                            Some(s) => s.to_string(),
                            None => {
                                return Err(format!(
                                    "{}: unknown entity &{name}; (only XML's own are read)",
                                    at(pos)
                                ))
                            }
                        }
                    }
                    Err(e) => return Err(format!("{}: {e}", at(pos))),
                };
                buf.push_str(&resolved);
            }
            Event::End(_) => {
                let tag = stack.pop().unwrap_or_default();
                let parent = stack.last().map(String::as_str).unwrap_or("");
                let value = std::mem::take(&mut buf);
                if let Some(it) = item.as_mut() {
                    match tag.as_str() {
                        "item" if parent == "channel" => {
                            items.extend(item.take());
                        }
                        "title" => it.title = value,
                        "dc:creator" => it.creator = value.trim().to_string(),
                        "content:encoded" => it.content = value,
                        "excerpt:encoded" => it.excerpt = value,
                        "wp:post_id" => it.post_id = value.trim().to_string(),
                        "wp:post_date" => it.post_date = value,
                        "wp:post_date_gmt" => it.post_date_gmt = value,
                        "wp:post_modified_gmt" => it.modified_gmt = value,
                        "wp:post_name" => it.post_name = value.trim().to_string(),
                        "wp:status" => it.status = value.trim().to_string(),
                        "wp:post_type" => it.post_type = value.trim().to_string(),
                        "pubDate" => it.pub_date = value,
                        "category" if category.take().is_some() => {
                            it.tags.push(value.trim().to_string())
                        }
                        _ => {}
                    }
                } else {
                    match (parent, tag.as_str()) {
                        ("wp:author", "wp:author_login") => author_login = value.trim().into(),
                        ("wp:author", "wp:author_email") => author_email = value.trim().into(),
                        ("channel", "wp:author") => {
                            authors.insert(
                                std::mem::take(&mut author_login),
                                std::mem::take(&mut author_email),
                            );
                        }
                        ("channel", "wp:base_site_url") => site = value.trim().into(),
                        ("channel", "link") => link = value.trim().into(),
                        _ => {}
                    }
                }
            }
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(format!(
                        "{}: the file ends inside <{open}> (cut short?)",
                        at(text.len() as u64)
                    ));
                }
                break;
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !saw_rss {
        return Err(format!(
            "{name}: not a WordPress export (no <rss> document)"
        ));
    }
    let site = if site.is_empty() { link } else { site };
    let mut export = Export {
        source: format!("wordpress:{}", site.trim_end_matches('/')),
        ..Export::default()
    };
    let mut left_out: HashMap<String, usize> = HashMap::new();
    for raw in items {
        let kind = match raw.post_type.as_str() {
            "post" | "" => "post",
            "page" => "page",
            other => {
                *left_out.entry(format!("{other} item(s)")).or_default() += 1;
                continue;
            }
        };
        if raw.post_id.is_empty() {
            return Err(format!(
                "{name}:{}: <item> \u{201c}{}\u{201d} has no wp:post_id",
                raw.line,
                raw.title.trim()
            ));
        }
        let gmt = parse_time(&raw.post_date_gmt);
        let local = parse_time(&raw.post_date);
        let mut notes = Vec::new();
        let state = match raw.status.as_str() {
            "publish" | "future" => {
                let at = gmt
                    .or_else(|| parse_time(&raw.pub_date))
                    .or(local)
                    .ok_or_else(|| {
                        format!(
                            "{name}:{}: {kind} \u{201c}{}\u{201d}: no readable wp:post_date_gmt",
                            raw.line,
                            raw.title.trim()
                        )
                    })?;
                State::Published(at)
            }
            "draft" => State::Draft,
            "pending" => {
                notes.push("pending review in WordPress: imported as a draft".into());
                State::Draft
            }
            "private" => {
                notes.push(
                    "private in WordPress: imported as a draft, seen only by its author".into(),
                );
                State::Draft
            }
            "trash" | "auto-draft" | "inherit" => {
                *left_out
                    .entry(format!("{} {kind}(s)", raw.status))
                    .or_default() += 1;
                continue;
            }
            other => {
                notes.push(format!(
                    "status \u{201c}{other}\u{201d} in WordPress: imported as a draft"
                ));
                State::Draft
            }
        };
        let created = match state {
            State::Published(at) => Some(at),
            State::Draft => gmt.or(local),
        };
        export.items.push(Item {
            source_id: format!("post:{}", raw.post_id),
            kind,
            title: raw.title,
            body: Body::Html(super::html_source(&super::shortcodes::expand(
                &raw.content,
                &mut notes,
            ))),
            excerpt: raw.excerpt,
            slug: raw.post_name,
            state,
            created,
            updated: parse_time(&raw.modified_gmt),
            tags: raw.tags,
            author_email: authors.get(&raw.creator).filter(|e| !e.is_empty()).cloned(),
            notes,
        });
    }
    let mut left: Vec<_> = left_out.into_iter().collect();
    left.sort();
    for (what, n) in left {
        export.notes.push(format!("left out: {n} {what}"));
    }
    Ok(export)
}
