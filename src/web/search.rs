//! GET /search: full-text search of public posts, best match first, matched words
//! highlighted in the title and a snippet of the text.

use rocket::http::Status;
use rocket::{get, routes, uri, Route};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::public::bad_cursor;
use super::tags::TagView;
use super::{human_date, iso_time, Frame};
use crate::db::search::{self as index, Hit, PageStart, Query, SearchCursor};
use crate::db::{tags, Db};
use crate::error::{Error, Result};
use crate::text::highlight;

pub const PAGE_SIZE: i64 = 10;
/// Beyond this the offset is meaningless (and stays far from overflow).
const MAX_PAGE: i64 = 10_000;
/// Longest query searched, in characters: a longer one is searched by its start, and the
/// page says so.
pub const QUERY_MAX: usize = 200;

pub fn routes() -> Vec<Route> {
    routes![search]
}

#[derive(Serialize)]
struct SearchPage {
    frame: Frame,
    /// What was typed, shown again in the search box.
    typed: String,
    /// What was searched: `typed`, or its first `QUERY_MAX` characters.
    q: String,
    /// Says when only the start of a long query was searched.
    note: Option<String>,
    results: Vec<ResultItem>,
    /// How many public posts match, on every page of them ("3 results for ...").
    total: i64,
    /// Why there are no results, when there are none.
    message: Option<String>,
    /// The page number of a `&page=N` page; 0 on a `&before=` page.
    page: i64,
    prev_url: Option<String>,
    next_url: Option<String>,
}

impl SearchPage {
    /// A page without results.
    fn empty(frame: Frame, q: String, message: Option<String>, page: i64) -> SearchPage {
        SearchPage {
            frame,
            typed: q.clone(),
            q,
            note: None,
            results: Vec::new(),
            total: 0,
            message,
            page,
            prev_url: None,
            next_url: None,
        }
    }
}

#[derive(Serialize)]
struct ResultItem {
    slug: String,
    /// Escaped text with `<mark>` around matched words (`text::highlight`).
    title_html: String,
    snippet_html: String,
    author_name: String,
    /// "" while the author has no handle (no link then).
    author_handle: String,
    tags: Vec<TagView>,
    date: String,
    date_iso: String,
}

impl From<Hit> for ResultItem {
    fn from(hit: Hit) -> Self {
        let ts = hit.published_at.unwrap_or(hit.updated_at);
        let title_html = if hit.title_marked.is_empty() {
            highlight(&hit.title)
        } else {
            highlight(&hit.title_marked)
        };
        ResultItem {
            slug: hit.slug,
            title_html,
            snippet_html: highlight(&hit.snippet_marked),
            author_name: hit.author_name,
            author_handle: hit.author_handle,
            tags: Vec::new(),
            date: human_date(ts),
            date_iso: iso_time(ts),
        }
    }
}

/// The results page, from `&page=N` or from `&before=<cursor>` (what its "More results"
/// links use; a cursor wins when both are given). No query shows the empty form; a query
/// with no word to look for says so (422) with the query kept in the box;
/// a page past the last result is a 404, like the home page's; a cursor quire did not
/// make is a 400.
#[get("/search?<q>&<page>&<before>")]
async fn search(
    db: &Db,
    mut frame: Frame,
    q: Option<String>,
    page: Option<i64>,
    before: Option<&str>,
) -> Result<(Status, Template)> {
    frame.meta.noindex = true;
    let q = q.unwrap_or_default();
    let start = match before {
        Some(b) => match b.parse::<SearchCursor>() {
            Ok(c) => PageStart::After(c),
            Err(()) => return Ok(bad_cursor(frame)),
        },
        None => {
            let page = page.unwrap_or(1);
            if !(1..=MAX_PAGE).contains(&page) {
                return Err(Error::NotFound);
            }
            PageStart::Offset((page - 1) * PAGE_SIZE)
        }
    };
    let page = match start {
        PageStart::Offset(skip) => skip / PAGE_SIZE + 1,
        PageStart::After(_) => 0,
    };
    let refused = |message: String, frame, q| {
        let page = SearchPage::empty(frame, q, Some(message), page);
        Ok((
            Status::UnprocessableEntity,
            Template::render("search.html", page),
        ))
    };
    if q.trim().is_empty() {
        let page = SearchPage::empty(frame, String::new(), None, page);
        return Ok((Status::Ok, Template::render("search.html", page)));
    }
    // A longer query is searched by its first words, and the page says so; the box keeps
    // all of it.
    let typed = q.clone();
    let (q, note) = match crate::text::head_at_word(&q, QUERY_MAX) {
        Some(cut) => (
            cut.to_string(),
            Some(format!(
                "Only the first {QUERY_MAX} characters were searched (the search has {}).",
                typed.chars().count()
            )),
        ),
        None => (q, None),
    };
    let query = Query::parse(&q);
    if query.is_empty() {
        let message = "No results: search for at least one word of letters or digits \
                       (a word after - is left out, not looked for)."
            .to_string();
        return refused(message, frame, typed);
    }
    let now = crate::db::current_time();
    let mut hits = index::search(&db.0, &query, now, start, PAGE_SIZE + 1).await?;
    if page != 1 && hits.is_empty() {
        return Err(Error::NotFound);
    }
    let has_next = hits.len() as i64 > PAGE_SIZE;
    hits.truncate(PAGE_SIZE as usize);
    let total = if hits.is_empty() {
        0
    } else {
        index::count(&db.0, &query, now).await?
    };
    let message = hits.is_empty().then(|| format!("No results for “{q}”."));
    let numbered = |n: i64| uri!(search(q = Some(q.as_str()), page = Some(n), before = _));
    let after = |c: SearchCursor| {
        let c = c.to_string();
        uri!(search(
            q = Some(q.as_str()),
            page = _,
            before = Some(c.as_str())
        ))
        .to_string()
    };
    let prev = match start {
        PageStart::Offset(_) => (page > 1).then(|| numbered(page - 1).to_string()),
        PageStart::After(c) => Some(
            match index::better_page(&db.0, &query, now, c, PAGE_SIZE).await? {
                Some(c) => after(c),
                None => uri!(search(q = Some(q.as_str()), page = _, before = _)).to_string(),
            },
        ),
    };
    let next = has_next
        .then(|| hits.last().map(|h| after(h.cursor())))
        .flatten();
    let ids: Vec<_> = hits.iter().map(|h| h.id).collect();
    let mut tags = tags::of_posts(&db.0, &ids).await?;
    let results = hits
        .into_iter()
        .map(|hit| {
            let tags = tags.remove(&hit.id).unwrap_or_default();
            ResultItem {
                tags: tags.into_iter().map(TagView::from).collect(),
                ..ResultItem::from(hit)
            }
        })
        .collect();
    let page = SearchPage {
        frame,
        typed,
        q,
        note,
        results,
        total,
        message,
        page,
        prev_url: prev,
        next_url: next,
    };
    Ok((Status::Ok, Template::render("search.html", page)))
}
