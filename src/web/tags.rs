//! Tags: what the post form's `tags` field accepts, the tag index, each tag's page of
//! public posts and its feed.

use std::collections::HashSet;

use rocket::response::Redirect;
use rocket::{get, routes, uri, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::public::{atom_feed, bad_cursor, list_items, listing, AtomFeed, BaseUrl, FeedMeta};
use super::public::{ListItem, Pager, Start, PAGE_SIZE};
use super::{Frame, Reply};
use crate::config::Config;
use crate::db::listings::{self, Scope};
use crate::db::tags::{self, NewTag, TagRef};
use crate::db::{current_time, Db};
use crate::error::{Error, Result};

/// At most this many tags a post.
pub const MAX_TAGS: usize = 20;
/// At most this many characters a tag.
pub const TAG_MAX: usize = 50;
/// Longer than any slug a `TAG_MAX`-character name gives (each character transliterates
/// to a few letters at most); a longer address names no tag.
const TAG_SLUG_MAX: usize = TAG_MAX * 12;

pub fn routes() -> Vec<Route> {
    routes![tag_index, tag_page, tag_feed]
}

/// A tag as templates link it: `/tags/<slug>`, showing `name`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TagView {
    pub slug: String,
    pub name: String,
}

impl From<TagRef> for TagView {
    fn from(t: TagRef) -> Self {
        TagView {
            slug: t.slug,
            name: t.name,
        }
    }
}

/// The post form's `tags` field: comma-separated, each trimmed, empty items ignored,
/// those with the same slug (so differing only in case, or in punctuation) merged into
/// the first typed. Errors, one per problem, say which tag and why.
pub fn parse_tags(field: &str) -> std::result::Result<Vec<NewTag>, Vec<String>> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut tags = Vec::new();
    for name in field.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if name.chars().count() > TAG_MAX {
            let start: String = name.chars().take(20).collect();
            errors.push(format!(
                "The tag “{start}…” is over {TAG_MAX} characters; shorten it."
            ));
            continue;
        }
        if name.chars().any(char::is_control) {
            errors.push("A tag cannot hold control characters (tabs, line breaks).".into());
            continue;
        }
        let slug = slug::slugify(name);
        if slug.is_empty() {
            errors.push(format!(
                "The tag “{name}” needs a letter or digit (it has nothing to make an address of)."
            ));
            continue;
        }
        if seen.insert(slug.clone()) {
            tags.push(NewTag {
                name: name.to_string(),
                slug,
            });
        }
    }
    if tags.len() > MAX_TAGS {
        errors.push(format!(
            "At most {MAX_TAGS} tags a post; this has {}.",
            tags.len()
        ));
    }
    if errors.is_empty() {
        Ok(tags)
    } else {
        Err(errors)
    }
}

/// The post form's field as the editor shows a post's tags.
pub fn tags_field(tags: &[TagRef]) -> String {
    tags.iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a tag address names: the slug as given, one to redirect to (the address in
/// lowercase), or nothing.
enum TagPath {
    Slug(String),
    Lowercase(String),
}

fn tag_path(tag: &str) -> Option<TagPath> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= TAG_SLUG_MAX
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if ok(tag) {
        return Some(TagPath::Slug(tag.to_string()));
    }
    let lower = tag.to_ascii_lowercase();
    ok(&lower).then_some(TagPath::Lowercase(lower))
}

#[derive(Serialize)]
struct TagCountView {
    slug: String,
    name: String,
    posts: i64,
}

#[derive(Serialize)]
struct TagIndexPage {
    frame: Frame,
    tags: Vec<TagCountView>,
}

/// Every tag with public posts, with their counts.
#[get("/tags")]
async fn tag_index(db: &Db, frame: Frame) -> Result<Template> {
    let tags = listings::tag_index(&db.0, current_time())
        .await?
        .into_iter()
        .map(|t| TagCountView {
            slug: t.slug,
            name: t.name,
            posts: t.posts,
        })
        .collect();
    Ok(Template::render("tags.html", TagIndexPage { frame, tags }))
}

#[derive(Serialize)]
struct TagPage {
    frame: Frame,
    tag: TagView,
    posts: Vec<ListItem>,
    /// The page number of a `?page=N` page; 0 on a `?before=` page.
    page: i64,
    pager: Pager,
}

/// The public posts with the tag, newest first, from `?page=N` or `?before=<cursor>`
/// (what its "Older posts" links use); 404 when it has none (or nothing there), 400 for
/// a cursor quire did not make.
#[get("/tags/<tag>?<page>&<before>")]
async fn tag_page(
    db: &Db,
    frame: Frame,
    tag: &str,
    page: Option<i64>,
    before: Option<&str>,
) -> Result<Reply> {
    let slug = match tag_path(tag) {
        Some(TagPath::Slug(slug)) => slug,
        Some(TagPath::Lowercase(slug)) => {
            let to = uri!(tag_page(slug.as_str(), page, before));
            return Ok(Reply::Redirect(Redirect::moved(to)));
        }
        None => return Err(Error::NotFound),
    };
    let Some(start) = Start::of(page, before)? else {
        return Ok(Reply::Page(bad_cursor(frame)));
    };
    let (tag_id, tag) = tags::by_slug(&db.0, &slug).await?.ok_or(Error::NotFound)?;
    let path = uri!(tag_page(slug.as_str(), _, _)).to_string();
    let listing = listing(&db.0, Scope::Tag(tag_id), start, &path).await?;
    if listing.rows.is_empty() {
        return Err(Error::NotFound);
    }
    let page = TagPage {
        frame,
        posts: list_items(&db.0, &listing.rows).await?,
        tag: tag.into(),
        page: listing.page,
        pager: listing.pager,
    };
    Ok(Reply::Page((
        rocket::http::Status::Ok,
        Template::render("tag.html", page),
    )))
}

/// The tag's 20 newest public posts as an Atom feed; 404 like its page.
#[get("/tags/<tag>/feed.xml")]
async fn tag_feed(db: &Db, config: &State<Config>, base: BaseUrl, tag: &str) -> Result<AtomFeed> {
    let Some(TagPath::Slug(slug)) = tag_path(tag) else {
        return Err(Error::NotFound);
    };
    let (tag_id, tag) = tags::by_slug(&db.0, &slug).await?.ok_or(Error::NotFound)?;
    let rows = listings::list(
        &db.0,
        Scope::Tag(tag_id),
        current_time(),
        PAGE_SIZE,
        0,
        true,
    )
    .await?;
    if rows.is_empty() {
        return Err(Error::NotFound);
    }
    let meta = FeedMeta {
        title: format!("{} · {}", config.site.title, tag.name),
        page_path: uri!(tag_page(slug.as_str(), _, _)).to_string(),
        self_path: uri!(tag_feed(slug.as_str())).to_string(),
    };
    atom_feed(&db.0, &base, meta, &rows).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(field: &str) -> Vec<(String, String)> {
        parse_tags(field)
            .expect("valid")
            .into_iter()
            .map(|t| (t.name, t.slug))
            .collect()
    }

    #[test]
    fn tags_are_trimmed_merged_by_slug_and_keep_the_first_spelling() {
        assert_eq!(
            names(" Rust ,web dev,, rust, RUST ,Web-Dev , "),
            [("Rust", "rust"), ("web dev", "web-dev")].map(|(n, s)| (n.to_string(), s.to_string()))
        );
        assert_eq!(names(""), vec![]);
        assert_eq!(names(" , ,"), vec![]);
        assert_eq!(names("Zoë's café")[0].1, "zoe-s-cafe");
    }

    #[test]
    fn too_many_too_long_and_punctuation_only_tags_are_refused_with_reasons() {
        let twenty: Vec<String> = (1..=20).map(|i| format!("t{i}")).collect();
        assert_eq!(parse_tags(&twenty.join(",")).unwrap().len(), 20);
        let errors = parse_tags(&format!("{},t21", twenty.join(","))).unwrap_err();
        assert!(
            errors[0].contains("At most 20") && errors[0].contains("21"),
            "{errors:?}"
        );
        // Repeats count once.
        assert!(parse_tags(&format!("{},T1,t2", twenty.join(","))).is_ok());

        assert!(parse_tags(&"x".repeat(50)).is_ok());
        let errors = parse_tags(&format!("ok, {}", "x".repeat(51))).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("over 50"), "{errors:?}");

        assert!(parse_tags("a\u{0}b").unwrap_err()[0].contains("control"));
        assert!(parse_tags("a\tb").is_err());

        let errors = parse_tags("rust, !!!, ...").unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].contains("“!!!”"), "{errors:?}");
    }

    #[test]
    fn tag_addresses_are_slugs_or_redirect_to_their_lowercase() {
        assert!(matches!(tag_path("rust-2"), Some(TagPath::Slug(s)) if s == "rust-2"));
        assert!(matches!(tag_path("Rust"), Some(TagPath::Lowercase(s)) if s == "rust"));
        for bad in ["", "a b", "a_b", "ru\0st", "é"] {
            assert!(tag_path(bad).is_none(), "{bad:?}");
        }
        assert!(tag_path(&"a".repeat(TAG_SLUG_MAX + 1)).is_none());
    }

    #[test]
    fn the_editor_shows_tags_as_typed_comma_separated() {
        let tags = [("Rust", "rust"), ("web dev", "web-dev")].map(|(n, s)| TagRef {
            name: n.into(),
            slug: s.into(),
        });
        assert_eq!(tags_field(&tags), "Rust, web dev");
        assert_eq!(names(&tags_field(&tags)).len(), 2);
    }
}
