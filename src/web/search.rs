//! GET /search: full-text search of public posts, best match first, matched words
//! highlighted in the title and a snippet of the text.

use rocket::http::Status;
use rocket::{get, routes, uri, Route};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::{human_date, iso_time, Frame};
use crate::db::search::{Hit, Query};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::text::highlight;

pub const PAGE_SIZE: i64 = 10;
/// Beyond this the offset is meaningless (and stays far from overflow).
const MAX_PAGE: i64 = 10_000;
/// Longest query, in characters. Longer ones are refused with a message, not cut.
pub const QUERY_MAX: usize = 200;

pub fn routes() -> Vec<Route> {
    routes![search]
}

#[derive(Serialize)]
struct SearchPage {
    frame: Frame,
    /// What was typed, shown again in the search box.
    q: String,
    results: Vec<ResultItem>,
    /// Why there are no results, when there are none.
    message: Option<String>,
    page: i64,
    prev_url: Option<String>,
    next_url: Option<String>,
}

#[derive(Serialize)]
struct ResultItem {
    slug: String,
    /// Escaped text with `<mark>` around matched words (`text::highlight`).
    title_html: String,
    snippet_html: String,
    author_name: String,
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
            date: human_date(ts),
            date_iso: iso_time(ts),
        }
    }
}

/// The results page. No query shows the empty form; a query too long, or with no word
/// to look for, says so (422) with the query kept in the box; a page past the last
/// result is a 404, like the home page's.
#[get("/search?<q>&<page>")]
async fn search(
    db: &Db,
    mut frame: Frame,
    q: Option<String>,
    page: Option<i64>,
) -> Result<(Status, Template)> {
    frame.meta.noindex = true;
    let q = q.unwrap_or_default();
    let page = page.unwrap_or(1);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(Error::NotFound);
    }
    let render = |status, results, message: Option<String>, prev, next, frame, q| {
        (
            status,
            Template::render(
                "search.html",
                SearchPage {
                    frame,
                    q,
                    results,
                    message,
                    page,
                    prev_url: prev,
                    next_url: next,
                },
            ),
        )
    };
    if q.trim().is_empty() {
        return Ok(render(
            Status::Ok,
            vec![],
            None,
            None,
            None,
            frame,
            String::new(),
        ));
    }
    if q.chars().count() > QUERY_MAX {
        let message = format!(
            "That search is too long: use at most {QUERY_MAX} characters (it has {}).",
            q.chars().count()
        );
        return Ok(render(
            Status::UnprocessableEntity,
            vec![],
            Some(message),
            None,
            None,
            frame,
            q,
        ));
    }
    let query = Query::parse(&q);
    if query.is_empty() {
        let message = "No results: search for at least one word of letters or digits \
                       (a word after - is left out, not looked for)."
            .to_string();
        return Ok(render(
            Status::UnprocessableEntity,
            vec![],
            Some(message),
            None,
            None,
            frame,
            q,
        ));
    }
    let mut hits = crate::db::search::search(
        &db.0,
        &query,
        crate::db::current_time(),
        PAGE_SIZE + 1,
        (page - 1) * PAGE_SIZE,
    )
    .await?;
    if page > 1 && hits.is_empty() {
        return Err(Error::NotFound);
    }
    let has_next = hits.len() as i64 > PAGE_SIZE;
    hits.truncate(PAGE_SIZE as usize);
    let message = hits.is_empty().then(|| format!("No results for “{q}”."));
    let url = |n: i64| uri!(search(q = Some(q.as_str()), page = Some(n))).to_string();
    let prev = (page > 1).then(|| url(page - 1));
    let next = has_next.then(|| url(page + 1));
    let results = hits.into_iter().map(ResultItem::from).collect();
    Ok(render(Status::Ok, results, message, prev, next, frame, q))
}
