//! A folder of Markdown files with YAML front matter (Jekyll's, Hugo's, Eleventy's
//! shape): every `*.md` / `*.markdown` file under the folder, in path order.
//!
//! ```text
//! ---
//! title: Hello
//! date: 2024-05-01 09:30      # or 2024-05-01, or RFC 3339
//! tags: [rust, notes]         # or "rust, notes"
//! draft: false
//! slug: hello                 # optional: else the file name, less a Jekyll date prefix
//! excerpt: A short summary.   # optional
//! publish_at: 2030-01-01T09:00:00Z   # optional: a future time schedules the post
//! ---
//! The body, in Markdown.
//! ```
//!
//! Other keys are ignored. `title` is required. A post that is not a draft is published at
//! `publish_at`, else `date`, else when imported. The YAML parser runs with a small
//! budget (events, anchors, aliases), so an alias bomb is refused, not expanded.

use std::path::Path;

use serde::Deserialize;

use super::{parse_time, read_file, Body, Export, Item, State};

/// Files read from one folder, at most.
const FILES_MAX: usize = 100_000;

#[derive(Deserialize)]
#[serde(untagged)]
enum Tags {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct FrontMatter {
    title: Option<String>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    categories: Option<Tags>,
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    excerpt: Option<String>,
    #[serde(default)]
    publish_at: Option<String>,
}

/// Reads every Markdown file under `dir`. Errors: one line naming the file (and the line
/// and column in it) of the first problem.
pub fn read_dir(dir: &Path) -> Result<Export, String> {
    read_export(dir).map_err(|e| super::one_line(&e))
}

fn read_export(dir: &Path) -> Result<Export, String> {
    let shown = dir.display();
    if !dir.is_dir() {
        return Err(format!(
            "{shown}: not a folder (quire import markdown reads a folder of .md files)"
        ));
    }
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", d.display()))?;
            let kind = entry
                .file_type()
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("md" | "markdown")
                )
            {
                files.push(path);
            }
            if files.len() > FILES_MAX {
                return Err(format!("{shown}: more than {FILES_MAX} files"));
            }
        }
    }
    files.sort();
    let mut export = Export {
        source: "markdown".into(),
        ..Export::default()
    };
    for path in files {
        let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
        export.items.push(read_one(&path, &rel)?);
    }
    Ok(export)
}

/// One file as a post; `rel` is its path under the folder (its id in `imports`).
fn read_one(path: &Path, rel: &Path) -> Result<Item, String> {
    let name = path.display().to_string();
    let text = read_file(path)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let (yaml, body) = split_front_matter(text)
        .ok_or_else(|| format!("{name}:1:1: no front matter (the file must start with a line ---, the YAML, and another ---)"))?;
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 20_000,
            max_aliases: 16,
            max_anchors: 16,
        },
        with_snippet: false,
    };
    let fm: FrontMatter = serde_saphyr::from_str_with_options(yaml, options).map_err(|e| {
        let msg = e.to_string().replace('\n', " ");
        match e.location() {
            // +1: the opening --- line.
            Some(l) => format!(
                "{name}:{}:{}: front matter: {msg}",
                l.line() + 1,
                l.column()
            ),
            None => format!("{name}: front matter: {msg}"),
        }
    })?;
    let title = fm
        .title
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| format!("{name}: front matter: no title"))?;
    let time = |field: &str, value: &Option<String>| -> Result<_, String> {
        match value {
            None => Ok(None),
            Some(s) => parse_time(s).map(Some).ok_or_else(|| {
                format!("{name}: front matter: {field}: unreadable date {s:?} (use 2024-05-01, 2024-05-01 09:30 or RFC 3339)")
            }),
        }
    };
    let date = time("date", &fm.date)?;
    let publish_at = time("publish_at", &fm.publish_at)?;
    let mut notes = Vec::new();
    let state = if fm.draft.unwrap_or(false) {
        State::Draft
    } else {
        match publish_at.or(date) {
            Some(at) => State::Published(at),
            None => {
                notes.push("no date: published as of the import".into());
                State::Published(crate::db::current_time())
            }
        }
    };
    let as_list = |t: Option<Tags>| match t {
        None => Vec::new(),
        Some(Tags::One(s)) => s.split(',').map(str::to_string).collect(),
        Some(Tags::Many(v)) => v,
    };
    let mut tags = as_list(fm.tags);
    tags.extend(as_list(fm.categories));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let slug = fm
        .slug
        .unwrap_or_else(|| strip_date_prefix(&stem).to_string());
    Ok(Item {
        source_id: format!("file:{}", rel.to_string_lossy().replace('\\', "/")),
        kind: "post",
        title,
        body: Body::Markdown(body.to_string()),
        excerpt: fm.excerpt.unwrap_or_default(),
        slug,
        state,
        created: date,
        updated: None,
        tags,
        author_email: None,
        notes,
    })
}

/// The YAML between a first line `---` and the next line `---` (or `...`), and the rest.
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" || bare == "..." {
            return Some((&rest[..at], &rest[at + line.len()..]));
        }
        at += line.len();
    }
    None
}

/// "2024-05-01-hello" -> "hello" (Jekyll's post file names).
fn strip_date_prefix(stem: &str) -> &str {
    let b = stem.as_bytes();
    let dated = b.len() > 11
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
        && b[10] == b'-';
    if dated {
        &stem[11..]
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_is_split_off() {
        assert_eq!(
            split_front_matter("---\ntitle: A\n---\nBody\n"),
            Some(("title: A\n", "Body\n"))
        );
        assert_eq!(split_front_matter("title: A\n"), None);
        assert_eq!(strip_date_prefix("2024-05-01-hello"), "hello");
        assert_eq!(strip_date_prefix("hello"), "hello");
    }
}
