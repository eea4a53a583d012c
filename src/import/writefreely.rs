//! WriteFreely's JSON export (Customize → Export → JSON, `/me/export.json`): the user
//! (`username`, `email`), `collections` (blogs) each with its `posts`, and `posts`: the
//! user's posts in no blog, which WriteFreely lists as drafts.
//!
//! - Blog posts are published at their `created` time (a future one is scheduled, as
//!   WriteFreely shows it only from then); posts outside a blog stay drafts.
//! - Bodies are Markdown; a post without a title (common there) gets its first line.
//! - Tags are WriteFreely's hashtags (`tags`). The author is `--author` or the account
//!   with the export's `email`.

use serde::Deserialize;

use super::{json_error, parse_time, Body, Export, Item, State};

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    collections: Option<Vec<Collection>>,
    #[serde(default)]
    posts: Option<Vec<Post>>,
}

#[derive(Deserialize)]
struct Collection {
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    posts: Option<Vec<Post>>,
}

#[derive(Deserialize)]
struct Post {
    id: String,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    updated: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// A title for an untitled post: its first line of text, without Markdown's heading
/// marks, at most 80 characters.
fn first_line(body: &str) -> String {
    let line = body
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(80).collect()
}

/// Parses a WriteFreely export; `name` is the file's name for messages.
pub fn parse(name: &str, text: &str) -> Result<Export, String> {
    parse_export(name, text).map_err(|e| super::one_line(&e))
}

fn parse_export(name: &str, text: &str) -> Result<Export, String> {
    let file: File = serde_json::from_str(text).map_err(|e| json_error(name, &e))?;
    if file.collections.is_none() && file.posts.is_none() {
        return Err(format!(
            "{name}: not a WriteFreely export (neither \"collections\" nor \"posts\")"
        ));
    }
    let mut export = Export {
        source: format!("writefreely:{}", file.username.unwrap_or_default()),
        ..Export::default()
    };
    let email = file.email.filter(|e| !e.trim().is_empty());
    let mut add = |p: Post, blog: Option<&str>, at: String| -> Result<(), String> {
        let created = match &p.created {
            Some(s) => Some(
                parse_time(s)
                    .ok_or_else(|| format!("{name}: {at}.created: unreadable date {s:?}"))?,
            ),
            None => None,
        };
        let state = match (blog, created) {
            (Some(_), Some(t)) => State::Published(t),
            (Some(_), None) => {
                return Err(format!(
                    "{name}: {at}.created: missing for a published post"
                ))
            }
            (None, _) => State::Draft,
        };
        let title = match p.title.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => first_line(&p.body),
        };
        export.items.push(Item {
            source_id: format!("post:{}", p.id),
            kind: "post",
            title,
            body: Body::Markdown(p.body),
            excerpt: String::new(),
            slug: p.slug.unwrap_or_default(),
            state,
            created,
            updated: p.updated.as_deref().and_then(parse_time),
            tags: p.tags.unwrap_or_default(),
            author_email: email.clone(),
            notes: Vec::new(),
        });
        Ok(())
    };
    for (c, coll) in file.collections.unwrap_or_default().into_iter().enumerate() {
        let alias = coll.alias.unwrap_or_default();
        for (i, p) in coll.posts.unwrap_or_default().into_iter().enumerate() {
            add(p, Some(&alias), format!("collections[{c}].posts[{i}]"))?;
        }
    }
    for (i, p) in file.posts.unwrap_or_default().into_iter().enumerate() {
        add(p, None, format!("posts[{i}]"))?;
    }
    Ok(export)
}
