//! Author pages: each author's public posts and their feed, at `/authors/<handle>`.
//! A handle its author gave up less than `handles::HOLD_DAYS` ago redirects (301) to
//! the new one.

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, routes, uri, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::public::{atom_feed, list_items, page_number, AtomFeed, BaseUrl, FeedMeta, ListItem};
use super::public::{Paging, PAGE_SIZE};
use super::{Frame, Reply};
use crate::config::Config;
use crate::db::handles::{self, Handle, Owner};
use crate::db::listings::{self, Page};
use crate::db::{current_time, users, Db};
use crate::domain::UserId;
use crate::error::{Error, Result};

pub fn routes() -> Vec<Route> {
    routes![author_page, author_feed]
}

/// An author's page path, for links built elsewhere.
pub fn author_path(handle: &str) -> String {
    uri!(author_page(handle, _)).to_string()
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
    paging: Paging,
}

/// The author's public posts, newest first; 404 for an unknown handle or an author with
/// nothing published (their address says nothing about an account readers cannot see).
#[get("/authors/<handle>?<page>")]
async fn author_page(db: &Db, frame: Frame, handle: &str, page: Option<i64>) -> Result<Reply> {
    let (id, handle) = match find(db, handle).await? {
        Found::Author(id, handle) => (id, handle),
        Found::MovedTo(to) => {
            let to = uri!(author_page(to.as_str(), page));
            return Ok(Reply::Redirect(Redirect::moved(to)));
        }
    };
    let page = page_number(page)?;
    let at = Page {
        now: current_time(),
        limit: PAGE_SIZE + 1,
        offset: (page - 1) * PAGE_SIZE,
        with_html: false,
    };
    let mut rows = listings::by_author(&db.0, id, at).await?;
    if rows.is_empty() {
        return Err(Error::NotFound);
    }
    let name = users::by_id(&db.0, id).await?.ok_or(Error::NotFound)?.name;
    let paging = Paging::new(page, &mut rows);
    let page = AuthorPage {
        frame,
        name,
        handle,
        posts: list_items(&db.0, &rows).await?,
        paging,
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
    let at = Page {
        now: current_time(),
        limit: PAGE_SIZE,
        offset: 0,
        with_html: true,
    };
    let rows = listings::by_author(&db.0, id, at).await?;
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
