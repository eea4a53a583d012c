//! What readers see: the home page, posts, the feed and the health check.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use atom_syndication::{Content, Entry, Feed, Link, Person, Text};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{get, routes, Responder, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;
use time::OffsetDateTime;

use super::{human_date, iso_time, Frame};
use crate::auth::guards::CurrentUser;
use crate::config::Config;
use crate::db::posts::{self, PostSummary};
use crate::db::Db;
use crate::error::{Error, Result};

pub const PAGE_SIZE: i64 = 20;
/// Beyond this the offset is meaningless; it also keeps the arithmetic far from overflow.
const MAX_PAGE: i64 = 1_000_000;

pub fn routes() -> Vec<Route> {
    routes![index, show_post, feed, healthz]
}

#[derive(Serialize)]
pub struct ListItem {
    pub slug: String,
    pub title: String,
    pub author_name: String,
    pub date: String,
    pub date_iso: String,
    pub published: bool,
}

impl From<&PostSummary> for ListItem {
    fn from(p: &PostSummary) -> Self {
        let ts = p.shown_date();
        ListItem {
            slug: p.slug.clone(),
            title: p.title.clone(),
            author_name: p.author_name.clone(),
            date: human_date(ts),
            date_iso: iso_time(ts),
            published: p.published,
        }
    }
}

#[derive(Serialize)]
struct IndexPage {
    frame: Frame,
    posts: Vec<ListItem>,
    page: i64,
    prev_page: Option<i64>,
    next_page: Option<i64>,
}

/// The home page's path, for links built outside the web layer.
pub fn home_path() -> String {
    rocket::uri!(index(page = _)).to_string()
}

#[get("/?<page>")]
async fn index(db: &Db, frame: Frame, page: Option<i64>) -> Result<Template> {
    let page = page.unwrap_or(1);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(Error::NotFound);
    }
    let mut rows = posts::list_published(&db.0, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE).await?;
    if page > 1 && rows.is_empty() {
        return Err(Error::NotFound);
    }
    let has_next = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    Ok(Template::render(
        "index.html",
        IndexPage {
            frame,
            posts: rows.iter().map(ListItem::from).collect(),
            page,
            prev_page: (page > 1).then_some(page - 1),
            next_page: has_next.then_some(page + 1),
        },
    ))
}

#[derive(Serialize)]
struct PostPage {
    frame: Frame,
    slug: String,
    title: String,
    author_name: String,
    date: String,
    date_iso: String,
    /// Sanitized by `render::render_post` when the post was saved.
    html: String,
    published: bool,
    can_manage: bool,
}

#[get("/posts/<slug>")]
async fn show_post(
    db: &Db,
    mut frame: Frame,
    user: Option<CurrentUser>,
    slug: &str,
) -> Result<Template> {
    if !crate::render::is_slug(slug) {
        return Err(Error::NotFound);
    }
    let post = posts::by_slug(&db.0, slug).await?.ok_or(Error::NotFound)?;
    let is_author = user.as_ref().is_some_and(|u| u.user.id == post.author_id);
    // A draft does not exist for anyone but its author.
    if !post.published && !is_author {
        return Err(Error::NotFound);
    }
    frame.meta = frame.meta.for_post(db, &post).await?;
    let ts = post.shown_date();
    Ok(Template::render(
        "post.html",
        PostPage {
            can_manage: user.as_ref().is_some_and(|u| u.may_manage(post.author_id)),
            frame,
            slug: post.slug,
            title: post.title,
            author_name: post.author_name,
            date: human_date(ts),
            date_iso: iso_time(ts),
            html: post.body_html,
            published: post.published,
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

/// The 20 newest published posts as an Atom feed.
#[get("/feed.xml")]
async fn feed(db: &Db, config: &State<Config>, base: BaseUrl) -> Result<AtomFeed> {
    let rows = posts::list_published(&db.0, PAGE_SIZE, 0).await?;
    let base = base.0;
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
            Entry {
                id: url.clone(),
                title: Text::plain(p.title.clone()),
                updated: to_time(p.updated_at),
                published: p.published_at.map(to_time),
                authors: vec![Person {
                    name: p.author_name.clone(),
                    ..Default::default()
                }],
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
                ..Default::default()
            }
        })
        .collect();
    let feed = Feed {
        id: format!("{base}/"),
        title: Text::plain(config.site.title.clone()),
        updated: to_time(updated),
        links: vec![
            Link {
                href: format!("{base}/"),
                rel: "alternate".into(),
                ..Default::default()
            },
            Link {
                href: format!("{base}/feed.xml"),
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
struct AtomFeed {
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
