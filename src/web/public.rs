//! What readers see: the home page, posts, the feed and the health check.

use atom_syndication::{Content, Entry, Feed, Link, Person, Text};
use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{get, routes, Route, State};
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
    frame: Frame,
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

/// The site's absolute base URL: `site.url` when configured, else from the Host header.
pub struct BaseUrl(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BaseUrl {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let configured = req
            .rocket()
            .state::<Config>()
            .and_then(|c| c.site.url.as_ref())
            .map(|u| u.as_str().to_string());
        let base = configured.unwrap_or_else(|| {
            let scheme = if crate::auth::Client::of(req).https {
                "https"
            } else {
                "http"
            };
            let host = req
                .host()
                .map_or_else(|| "localhost".to_string(), |h| h.to_string());
            format!("{scheme}://{host}")
        });
        Outcome::Success(BaseUrl(base.trim_end_matches('/').to_string()))
    }
}

/// The 20 newest published posts as an Atom feed.
#[get("/feed.xml")]
async fn feed(db: &Db, config: &State<Config>, base: BaseUrl) -> Result<(ContentType, String)> {
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
    Ok((
        ContentType::new("application", "atom+xml"),
        feed.to_string(),
    ))
}

/// 200 when serving and the database answers, else 503.
#[get("/healthz")]
async fn healthz(db: &Db) -> (Status, &'static str) {
    match crate::db::ping(&db.0).await {
        Ok(_) => (Status::Ok, "ok\n"),
        Err(e) => {
            log::error!("health check: database: {e}");
            (Status::ServiceUnavailable, "database unavailable\n")
        }
    }
}
