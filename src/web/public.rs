//! What readers see: the home page, posts, the feed and the health check.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use atom_syndication::{Category, Content, Entry, Feed, Link, Person, Text};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{get, routes, uri, Responder, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;
use time::OffsetDateTime;

use super::tags::TagView;
use super::{human_date, iso_time, Frame};
use crate::auth::guards::CurrentUser;
use crate::config::Config;
use crate::db::listings::{self, Scope};
use crate::db::posts::{self, Cursor, PostSummary};
use crate::db::{current_time, tags, Db};
use crate::error::{Error, Result};

pub const PAGE_SIZE: i64 = 20;
/// Beyond this the offset is meaningless; it also keeps the arithmetic far from overflow.
const MAX_PAGE: i64 = 1_000_000;

pub fn routes() -> Vec<Route> {
    routes![index, older, show_post, feed, healthz]
}

/// A post in a listing, as templates/post_list.html.tera shows it (home; tag, author and
/// search pages reuse both).
#[derive(Serialize)]
pub struct ListItem {
    pub slug: String,
    pub title: String,
    pub author_name: String,
    /// "" while the author has no handle (no link then).
    pub author_handle: String,
    pub date: String,
    pub date_iso: String,
    pub published: bool,
    /// Sanitized by `render::render_post` when the post was saved; "" when it has none
    /// or the listing did not select it.
    pub excerpt_html: String,
    /// Filled by `list_items`.
    pub tags: Vec<TagView>,
}

impl From<&PostSummary> for ListItem {
    fn from(p: &PostSummary) -> Self {
        let ts = p.shown_date();
        ListItem {
            slug: p.slug.clone(),
            title: p.title.clone(),
            author_name: p.author_name.clone(),
            author_handle: p.author_handle.clone(),
            date: human_date(ts),
            date_iso: iso_time(ts),
            published: p.published,
            excerpt_html: p.excerpt_html.clone().unwrap_or_default(),
            tags: Vec::new(),
        }
    }
}

/// A listing's rows as pages show them, each with its tags.
pub async fn list_items(db: &sqlx::AnyPool, rows: &[PostSummary]) -> Result<Vec<ListItem>> {
    let ids: Vec<_> = rows.iter().map(|p| p.id).collect();
    let mut tags = tags::of_posts(db, &ids).await?;
    Ok(rows
        .iter()
        .map(|p| ListItem {
            tags: tags
                .remove(&p.id)
                .unwrap_or_default()
                .into_iter()
                .map(TagView::from)
                .collect(),
            ..ListItem::from(p)
        })
        .collect())
}

/// `?page=N` as a page number: 1 when absent, NotFound outside 1..=MAX_PAGE.
pub fn page_number(page: Option<i64>) -> Result<i64> {
    let page = page.unwrap_or(1);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(Error::NotFound);
    }
    Ok(page)
}

/// The links under a listing: newer and older posts, as full hrefs (None: no link).
#[derive(Serialize, Default)]
pub struct Pager {
    pub newer: Option<String>,
    pub older: Option<String>,
}

/// Where a listing page starts, as its address says: `?page=N` (1 without either), or
/// `?before=<cursor>`, which wins when both are given.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    Page(i64),
    Before(Cursor),
}

impl Start {
    /// From the query: Err(NotFound) for a page number out of range, Ok(None) for a
    /// cursor quire did not make (the caller answers with [`bad_cursor`]).
    pub fn of(page: Option<i64>, before: Option<&str>) -> Result<Option<Start>> {
        match before {
            Some(b) => Ok(b.parse().ok().map(Start::Before)),
            None => page_number(page).map(|n| Some(Start::Page(n))),
        }
    }
}

/// One page of a listing, with its pager.
pub struct Listing {
    pub rows: Vec<PostSummary>,
    pub pager: Pager,
    /// The page number of a `?page=N` page; 0 on a `?before=` page.
    pub page: i64,
}

/// The page of `scope` that `start` names, its links under `path` (the listing's own
/// address): "Older posts" always by cursor, "Newer posts" by cursor from a cursor page
/// and by number from a numbered one. NotFound for a page past the last one (a cursor
/// with no posts after it, a number too high), but never for the first page: an empty
/// scope's first page is for the caller to judge.
pub async fn listing(
    db: &sqlx::AnyPool,
    scope: Scope,
    start: Start,
    path: &str,
) -> Result<Listing> {
    let now = current_time();
    let (mut rows, newer, page) = match start {
        Start::Page(page) => {
            let rows = listings::list(db, scope, now, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE, false)
                .await?;
            let newer = (page > 1).then(|| format!("{path}?page={}", page - 1));
            (rows, newer, page)
        }
        Start::Before(cursor) => {
            let rows = listings::list_before(db, scope, now, cursor, PAGE_SIZE + 1).await?;
            let newer = match listings::newer_page(db, scope, now, cursor, PAGE_SIZE).await? {
                Some(c) => format!("{path}?before={c}"),
                None => path.to_string(),
            };
            (rows, Some(newer), 0)
        }
    };
    if page != 1 && rows.is_empty() {
        return Err(Error::NotFound);
    }
    let size = PAGE_SIZE as usize;
    let older = (rows.len() > size).then(|| format!("{path}?before={}", rows[size - 1].cursor()));
    rows.truncate(size);
    Ok(Listing {
        rows,
        pager: Pager { newer, older },
        page,
    })
}

#[derive(Serialize)]
struct IndexPage {
    frame: Frame,
    posts: Vec<ListItem>,
    /// The page number of a `?page=N` page; 0 on a `?before=` page.
    page: i64,
    /// Whether this is a page of older posts (not the newest).
    older: bool,
    pager: Pager,
}

/// The home page's path, for links built outside the web layer.
pub fn home_path() -> String {
    rocket::uri!(index(page = _)).to_string()
}

/// The error page for a `?before=` that quire did not make.
#[derive(Serialize)]
struct BadCursorPage {
    frame: Frame,
    code: u16,
    title: &'static str,
    message: &'static str,
}

/// The 400 page for a `?before=` cursor that quire did not make (on any listing).
pub fn bad_cursor(frame: Frame) -> (Status, Template) {
    let page = BadCursorPage {
        frame,
        code: 400,
        title: "Bad request",
        message: "This link to older posts is not valid. Start again from the first page.",
    };
    (
        Status::BadRequest,
        Template::render("errors/error.html", page),
    )
}

/// The home page: the newest posts, or `?page=N` by number (page links kept from before
/// the cursor; deep pages cost more, as the rows before them are still walked).
#[get("/?<page>", rank = 2)]
async fn index(db: &Db, frame: Frame, page: Option<i64>) -> Result<(Status, Template)> {
    let start = Start::Page(page_number(page)?);
    home_page(db, frame, start).await
}

/// Older posts: those after the post a `?before=<cursor>` names (what "Older posts"
/// links use). Any page costs what the first does. A malformed cursor is a 400 page; one
/// with no posts after it, a 404. Tried before `index`, which gets requests without one.
#[get("/?<before>", rank = 1)]
async fn older(db: &Db, frame: Frame, before: &str) -> Result<(Status, Template)> {
    let Ok(cursor) = before.parse::<Cursor>() else {
        return Ok(bad_cursor(frame));
    };
    home_page(db, frame, Start::Before(cursor)).await
}

/// A home page, from where `start` says.
async fn home_page(db: &Db, frame: Frame, start: Start) -> Result<(Status, Template)> {
    let listing = listing(&db.0, Scope::All, start, "/").await?;
    let page = IndexPage {
        frame,
        posts: list_items(&db.0, &listing.rows).await?,
        page: listing.page,
        older: listing.page != 1,
        pager: listing.pager,
    };
    Ok((Status::Ok, Template::render("index.html", page)))
}

#[derive(Serialize)]
struct PostPage {
    frame: Frame,
    slug: String,
    title: String,
    author_name: String,
    author_handle: String,
    tags: Vec<TagView>,
    date: String,
    date_iso: String,
    /// Sanitized by `render::render_post` when the post was saved.
    html: String,
    published: bool,
    /// "3 Dec 2026, 14:30 CET" for its author while the post is not yet due.
    scheduled_for: Option<String>,
    can_manage: bool,
}

#[get("/posts/<slug>")]
async fn show_post(
    db: &Db,
    mut frame: Frame,
    config: &State<Config>,
    user: Option<CurrentUser>,
    slug: &str,
) -> Result<Template> {
    if !crate::render::is_slug(slug) {
        return Err(Error::NotFound);
    }
    let post = posts::by_slug(&db.0, slug).await?.ok_or(Error::NotFound)?;
    let is_author = user.as_ref().is_some_and(|u| u.user.id == post.author_id);
    let now = current_time();
    // A draft or a post not yet due does not exist for anyone but its author.
    if !post.is_visible(now) && !is_author {
        return Err(Error::NotFound);
    }
    frame.meta = frame.meta.for_post(db, &post).await?;
    let ts = post.shown_date();
    let scheduled_for = post
        .is_scheduled(now)
        .then(|| super::dashboard::zoned_time(ts, config.site.timezone));
    let tags = tags::of_post(&db.0, post.id).await?;
    Ok(Template::render(
        "post.html",
        PostPage {
            can_manage: user.as_ref().is_some_and(|u| u.may_manage(post.author_id)),
            frame,
            slug: post.slug,
            title: post.title,
            author_name: post.author_name,
            author_handle: post.author_handle,
            tags: tags.into_iter().map(TagView::from).collect(),
            date: human_date(ts),
            date_iso: iso_time(ts),
            html: post.body_html,
            published: post.published,
            scheduled_for,
        },
    ))
}

/// The site's absolute base URL, for the feed's links: `site.url` when configured.
/// Otherwise the request's Host, but only when a trusted proxy sent it or it names the
/// address quire listens on; any other Host could be anyone's forgery (and a cache or
/// feed reader would keep it), so the listening address stands in for it.
pub struct BaseUrl(pub String);

impl BaseUrl {
    pub fn of(req: &Request<'_>) -> BaseUrl {
        let config = req.rocket().state::<Config>();
        if let Some(url) = config.and_then(|c| c.site.url.as_ref()) {
            return BaseUrl(url.as_str().trim_end_matches('/').to_string());
        }
        let scheme = if crate::auth::Client::of(req).https {
            "https"
        } else {
            "http"
        };
        let listen = req.rocket().config();
        let from_proxy = req.remote().is_some_and(|peer| {
            let ip = match peer.ip() {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer.ip(), IpAddr::V4),
                ip => ip,
            };
            config.is_some_and(|c| c.trusted_proxies.iter().any(|n| n.contains(&ip)))
        });
        let host = req
            .host()
            .filter(|h| from_proxy || names_listener(h, listen.address, listen.port))
            .map(|h| h.to_string());
        let host = host.unwrap_or_else(|| {
            if req.host().is_some() && !FOREIGN_HOST_WARNED.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "site.url is unset and a request named a Host that is neither this \
                     server's address nor from a trusted proxy: absolute links use {} instead. \
                     Set site.url to the blog's public URL.",
                    listener_authority(listen.address, listen.port)
                );
            }
            listener_authority(listen.address, listen.port)
        });
        BaseUrl(format!("{scheme}://{host}"))
    }
}

static FOREIGN_HOST_WARNED: AtomicBool = AtomicBool::new(false);

/// Whether `host` names the address and port quire listens on (or `localhost` for a
/// loopback address); an unspecified address (0.0.0.0) is named by nothing.
fn names_listener(host: &rocket::http::uri::Host<'_>, address: IpAddr, port: u16) -> bool {
    if host.port().is_some_and(|p| p != port) || address.is_unspecified() {
        return false;
    }
    let domain = host.domain().as_str().to_ascii_lowercase();
    let bare = domain.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip == address)
        || (address.is_loopback() && domain == "localhost")
}

/// `address:port` as a URL authority ("127.0.0.1:8000", "[::1]:8000"); 0.0.0.0 as
/// localhost, since it names no host a reader could reach.
fn listener_authority(address: IpAddr, port: u16) -> String {
    let host = match address {
        a if a.is_unspecified() => "localhost".to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    format!("{host}:{port}")
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BaseUrl {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(BaseUrl::of(req))
    }
}

/// The 20 newest visible posts as an Atom feed: whole content, and the excerpt as summary.
#[get("/feed.xml")]
async fn feed(db: &Db, config: &State<Config>, base: BaseUrl) -> Result<AtomFeed> {
    let rows = listings::list(&db.0, Scope::All, current_time(), PAGE_SIZE, 0, true).await?;
    let meta = FeedMeta {
        title: config.site.title.clone(),
        page_path: home_path(),
        self_path: uri!(feed).to_string(),
    };
    atom_feed(&db.0, &base, meta, &rows).await
}

/// What tells one feed from another: its title, the page it follows and its own path.
pub struct FeedMeta {
    pub title: String,
    pub page_path: String,
    pub self_path: String,
}

/// `rows` (read with their HTML) as an Atom feed, each entry with its tags as categories
/// and its excerpt (when it has one) as summary.
pub async fn atom_feed(
    db: &sqlx::AnyPool,
    base: &BaseUrl,
    meta: FeedMeta,
    rows: &[PostSummary],
) -> Result<AtomFeed> {
    let base = &base.0;
    let ids: Vec<_> = rows.iter().map(|p| p.id).collect();
    let mut tags = tags::of_posts(db, &ids).await?;
    let updated = rows
        .iter()
        .map(|p| p.updated_at)
        .max()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let to_time = |t: OffsetDateTime| {
        chrono::DateTime::from_timestamp(t.unix_timestamp(), 0)
            .unwrap_or_default()
            .fixed_offset()
    };
    let entries: Vec<Entry> = rows
        .iter()
        .map(|p| {
            let url = format!("{base}/posts/{}", p.slug);
            let categories = tags
                .remove(&p.id)
                .unwrap_or_default()
                .into_iter()
                .map(|t| Category {
                    term: t.slug,
                    label: Some(t.name),
                    ..Default::default()
                })
                .collect();
            Entry {
                id: url.clone(),
                title: Text::plain(p.title.clone()),
                updated: to_time(p.updated_at),
                published: p.published_at.map(to_time),
                authors: vec![Person {
                    name: p.author_name.clone(),
                    uri: (!p.author_handle.is_empty())
                        .then(|| format!("{base}/authors/{}", p.author_handle)),
                    ..Default::default()
                }],
                categories,
                links: vec![Link {
                    href: url,
                    rel: "alternate".into(),
                    ..Default::default()
                }],
                content: Some(Content {
                    value: p.body_html.clone(),
                    content_type: Some("html".into()),
                    ..Default::default()
                }),
                summary: p
                    .excerpt_html
                    .clone()
                    .filter(|e| !e.is_empty())
                    .map(Text::html),
                ..Default::default()
            }
        })
        .collect();
    let page_url = format!("{base}{}", meta.page_path);
    let feed = Feed {
        id: page_url.clone(),
        title: Text::plain(meta.title),
        updated: to_time(updated),
        links: vec![
            Link {
                href: page_url,
                rel: "alternate".into(),
                ..Default::default()
            },
            Link {
                href: format!("{base}{}", meta.self_path),
                rel: "self".into(),
                ..Default::default()
            },
        ],
        entries,
        ..Default::default()
    };
    Ok(AtomFeed {
        body: (
            ContentType::new("application", "atom+xml"),
            feed.to_string(),
        ),
        cache: Header::new("Cache-Control", FEED_CACHE),
    })
}

/// Feed readers poll; five minutes in any cache is soon enough for a new post.
const FEED_CACHE: &str = "public, max-age=300";

#[derive(Responder)]
pub struct AtomFeed {
    body: (ContentType, String),
    cache: Header<'static>,
}

#[derive(Responder)]
struct Health {
    body: (Status, &'static str),
    cache: Header<'static>,
}

/// 200 when serving and the database answers, else 503; never from a cache.
#[get("/healthz")]
async fn healthz(db: &Db) -> Health {
    let body = match crate::db::ping(&db.0).await {
        Ok(_) => (Status::Ok, "ok\n"),
        Err(e) => {
            log::error!("health check: database: {e}");
            (Status::ServiceUnavailable, "database unavailable\n")
        }
    };
    Health {
        body,
        cache: Header::new("Cache-Control", "no-store"),
    }
}
