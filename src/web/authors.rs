//! Author pages: each author's public posts and their feed, at `/authors/<handle>`.
//! A handle its author gave up less than `handles::HOLD_DAYS` ago redirects (301) to
//! the new one.

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, routes, uri, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::public::{atom_feed, bad_cursor, list_items, listing, AtomFeed, BaseUrl, FeedMeta};
use super::public::{ListItem, Pager, Start, PAGE_SIZE};
use super::{Frame, Reply};
use crate::config::Config;
use crate::db::handles::{self, Handle, Owner};
use crate::db::listings::{self, Scope};
use crate::db::{current_time, users, Db};
use crate::domain::UserId;
use crate::error::{Error, Result};

pub fn routes() -> Vec<Route> {
    routes![author_page, author_feed]
}

/// An author's page path, for links built elsewhere.
pub fn author_path(handle: &str) -> String {
    uri!(author_page(handle, _, _)).to_string()
}

/// What an author address leads to: the author, or where their page is now.
enum Found {
    Author(UserId, String),
    MovedTo(String),
}

async fn find(db: &Db, handle: &str) -> Result<Found> {
    if !Handle::could_be(handle) {
        return Err(Error::NotFound);
    }
    let parsed = Handle::parse(handle).map_err(|_| Error::NotFound)?;
    if parsed.as_str() != handle {
        // Handles are stored lowercase: /authors/Ada is /authors/ada.
        return Ok(Found::MovedTo(parsed.to_string()));
    }
    match handles::owner(&db.0, &parsed).await? {
        Some(Owner::Current(id)) => Ok(Found::Author(id, parsed.to_string())),
        Some(Owner::Former(_, now)) => Ok(Found::MovedTo(now)),
        None => Err(Error::NotFound),
    }
}

#[derive(Serialize)]
struct AuthorPage {
    frame: Frame,
    name: String,
    handle: String,
    posts: Vec<ListItem>,
    /// The page number of a `?page=N` page; 0 on a `?before=` page.
    page: i64,
    pager: Pager,
}

/// The author's public posts, newest first, from `?page=N` or `?before=<cursor>`; 404
/// for an unknown handle or an author with nothing published (their address says
/// nothing about an account readers cannot see), 400 for a cursor quire did not make.
#[get("/authors/<handle>?<page>&<before>")]
async fn author_page(
    db: &Db,
    frame: Frame,
    handle: &str,
    page: Option<i64>,
    before: Option<&str>,
) -> Result<Reply> {
    let (id, handle) = match find(db, handle).await? {
        Found::Author(id, handle) => (id, handle),
        Found::MovedTo(to) => {
            let to = uri!(author_page(to.as_str(), page, before));
            return Ok(Reply::Redirect(Redirect::moved(to)));
        }
    };
    let Some(start) = Start::of(page, before)? else {
        return Ok(Reply::Page(bad_cursor(frame)));
    };
    let listing = listing(&db.0, Scope::Author(id), start, &author_path(&handle)).await?;
    if listing.rows.is_empty() {
        return Err(Error::NotFound);
    }
    let name = users::by_id(&db.0, id).await?.ok_or(Error::NotFound)?.name;
    let page = AuthorPage {
        frame,
        name,
        handle,
        posts: list_items(&db.0, &listing.rows).await?,
        page: listing.page,
        pager: listing.pager,
    };
    Ok(Reply::Page((
        Status::Ok,
        Template::render("author.html", page),
    )))
}

#[derive(rocket::Responder)]
enum FeedReply {
    Feed(AtomFeed),
    Moved(Redirect),
}

/// The author's 20 newest public posts as an Atom feed; 404 and 301 like their page.
#[get("/authors/<handle>/feed.xml")]
async fn author_feed(
    db: &Db,
    config: &State<Config>,
    base: BaseUrl,
    handle: &str,
) -> Result<FeedReply> {
    let (id, handle) = match find(db, handle).await? {
        Found::Author(id, handle) => (id, handle),
        Found::MovedTo(to) => {
            let to = uri!(author_feed(to.as_str()));
            return Ok(FeedReply::Moved(Redirect::moved(to)));
        }
    };
    let rows = listings::list(&db.0, Scope::Author(id), current_time(), PAGE_SIZE, 0, true).await?;
    let Some(first) = rows.first() else {
        return Err(Error::NotFound);
    };
    let meta = FeedMeta {
        title: format!("{} · {}", config.site.title, first.author_name),
        page_path: author_path(&handle),
        self_path: uri!(author_feed(handle.as_str())).to_string(),
    };
    atom_feed(&db.0, &base, meta, &rows)
        .await
        .map(FeedReply::Feed)
}
