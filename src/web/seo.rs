//! For search engines and link previews: each page's canonical link, description and
//! share-card tags (`PageMeta`, in every page's frame), /sitemap.xml and /robots.txt.

use rocket::http::uri::Origin;
use rocket::http::{ContentType, Header};
use rocket::request::Request;
use rocket::{get, routes, Responder, Route, State};
use serde::Serialize;
use time::OffsetDateTime;

use super::iso_time;
use super::public::BaseUrl;
use crate::config::Config;
use crate::db::posts::Post;
use crate::db::{current_time, search, sitemap, Db};
use crate::error::{Error, Result};

pub fn routes() -> Vec<Route> {
    routes![sitemap_xml, sitemap_part, robots]
}

/// Crawlers come back often enough; as long as feed readers may keep the feed.
const CRAWLER_CACHE: &str = "public, max-age=300";

/// Longest description, in characters (what search engines show of one).
const DESCRIPTION_MAX: usize = 160;

/// What a page's head tells crawlers and share cards. Absolute URLs come from the same
/// base as the feed's (`BaseUrl`: `site.url`, or a Host that cannot be forged).
#[derive(Debug, Clone, Serialize)]
pub struct PageMeta {
    /// This page's absolute URL without the query parameters that do not change what
    /// it shows; None on pages that have no address of their own (error pages, which
    /// must read the same whatever address was asked for).
    pub url: Option<String>,
    /// The card's title: the post's, or the site's.
    pub title: String,
    pub description: String,
    /// Pages not worth indexing (search results, a draft shown to its author, errors).
    pub noindex: bool,
    /// Set on a post's page: `og:type` article and its times and author.
    pub article: Option<ArticleMeta>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArticleMeta {
    /// RFC 3339; None for a draft.
    pub published_time: Option<String>,
    pub modified_time: String,
    pub author: String,
}

/// Query parameters that choose what a page shows; any other is left out of its
/// canonical URL.
const CANONICAL_PARAMS: &[&str] = &["q", "page", "before"];

impl PageMeta {
    /// The site-wide card for the page `req` asks for.
    pub fn of(req: &Request<'_>) -> PageMeta {
        let base = BaseUrl::of(req).0;
        let (title, description) = match req.rocket().state::<Config>() {
            Some(c) => (c.site.title.clone(), c.site.description.clone()),
            None => ("quire".to_string(), String::new()),
        };
        let description = if description.trim().is_empty() {
            format!("Latest posts from {title}.")
        } else {
            description
        };
        PageMeta {
            url: Some(canonical_url(&base, req.uri())),
            title,
            description,
            noindex: false,
            article: None,
        }
    }

    /// A card with these values, for pages rendered without a request.
    pub fn plain(url: &str, title: &str, description: &str) -> PageMeta {
        PageMeta {
            url: Some(url.to_string()),
            title: title.to_string(),
            description: description.to_string(),
            noindex: false,
            article: None,
        }
    }

    /// The card of a post's page: its title, description, times and author.
    pub async fn for_post(mut self, db: &Db, post: &Post) -> Result<PageMeta> {
        self.title = post.title.clone();
        self.description = post_description(db, post).await?;
        // A draft or a post not yet due is only ever shown to its author.
        self.noindex = !post.is_visible(current_time());
        self.article = Some(ArticleMeta {
            published_time: post.published_at.map(iso_time),
            modified_time: iso_time(post.updated_at),
            author: post.author_name.clone(),
        });
        Ok(self)
    }
}

fn canonical_url(base: &str, uri: &Origin<'_>) -> String {
    let mut url = format!("{base}{}", uri.path());
    let kept: Vec<&str> = uri
        .query()
        .map(|q| {
            q.as_str()
                .split('&')
                .filter(|pair| {
                    let key = pair.split('=').next().unwrap_or("");
                    CANONICAL_PARAMS.contains(&key)
                })
                .collect()
        })
        .unwrap_or_default();
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    url
}

/// A post's description for search engines and share cards: its excerpt's text when it
/// has one, else the start of its text; at most 160 characters, cut at a word. "" for a
/// post without text.
pub async fn post_description(db: &Db, post: &Post) -> Result<String> {
    let excerpt = crate::text::plain_text(&post.excerpt_html);
    if !excerpt.trim().is_empty() {
        return Ok(crate::text::shorten(&excerpt, DESCRIPTION_MAX));
    }
    // A few words more than fit, so the cut falls at a word boundary.
    let mut text = search::text_start(&db.0, post.id, DESCRIPTION_MAX as i64 * 2).await?;
    if text.is_empty() && !post.body_html.is_empty() {
        // Saved before plain text was stored with posts.
        text = crate::text::plain_text(&post.body_html);
    }
    Ok(crate::text::shorten(&text, DESCRIPTION_MAX))
}

/// One `<url>` of a sitemap.
struct SitemapUrl {
    loc: String,
    lastmod: Option<OffsetDateTime>,
}

/// What the sitemap lists, in this order; each source counts its URLs and lists a slice
/// of them, as public at `now`.
#[derive(Clone, Copy)]
enum Source {
    Home,
    Posts,
    Tags,
    Authors,
}

const SOURCES: &[Source] = &[Source::Home, Source::Posts, Source::Tags, Source::Authors];

impl Source {
    /// The database's listing of this source and the path its entries go under.
    fn listing(self) -> Option<(sitemap::Kind, &'static str)> {
        match self {
            Source::Home => None,
            Source::Posts => Some((sitemap::Kind::Posts, "/posts/")),
            Source::Tags => Some((sitemap::Kind::Tags, "/tags/")),
            Source::Authors => Some((sitemap::Kind::Authors, "/authors/")),
        }
    }

    async fn count(self, db: &Db, now: OffsetDateTime) -> Result<i64> {
        Ok(match self.listing() {
            None => 1,
            Some((kind, _)) => sitemap::count(&db.0, kind, now).await?,
        })
    }

    async fn list(
        self,
        db: &Db,
        base: &str,
        now: OffsetDateTime,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<SitemapUrl>> {
        Ok(match self.listing() {
            None => vec![SitemapUrl {
                loc: format!("{base}{}", super::public::home_path()),
                lastmod: sitemap::last_change(&db.0, now).await?,
            }]
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect(),
            Some((kind, prefix)) => sitemap::list(&db.0, kind, now, limit, offset)
                .await?
                .into_iter()
                .map(|e| SitemapUrl {
                    loc: format!("{base}{prefix}{}", e.slug),
                    lastmod: Some(e.updated_at),
                })
                .collect(),
        })
    }
}

/// How many public URLs each of `SOURCES` has at `now`: counted once a request, since
/// each count reads every public post.
async fn counts(db: &Db, now: OffsetDateTime) -> Result<Vec<i64>> {
    let mut out = Vec::with_capacity(SOURCES.len());
    for source in SOURCES {
        out.push(source.count(db, now).await?);
    }
    Ok(out)
}

/// The URLs from `start` (counting across every source, whose sizes are `counts`) up to
/// `limit` of them.
async fn urls(
    db: &Db,
    base: &str,
    now: OffsetDateTime,
    counts: &[i64],
    start: i64,
    limit: i64,
) -> Result<Vec<SitemapUrl>> {
    let mut out = Vec::new();
    let mut skip = start;
    for (source, &count) in SOURCES.iter().zip(counts) {
        let want = limit - out.len() as i64;
        if want <= 0 {
            break;
        }
        if skip >= count {
            skip -= count;
            continue;
        }
        out.extend(source.list(db, base, now, want, skip).await?);
        skip = 0;
    }
    Ok(out)
}

#[derive(Responder)]
struct Xml {
    body: (ContentType, String),
    cache: Header<'static>,
}

fn xml(body: String) -> Xml {
    Xml {
        body: (ContentType::XML, body),
        cache: Header::new("Cache-Control", CRAWLER_CACHE),
    }
}

/// Every public URL with its last change; once there are more than
/// `site.sitemap_max_urls`, an index of the numbered sitemaps that list them.
#[get("/sitemap.xml")]
async fn sitemap_xml(db: &Db, config: &State<Config>, base: BaseUrl) -> Result<Xml> {
    let per_file = config.site.sitemap_max_urls as i64;
    let now = current_time();
    let counts = counts(db, now).await?;
    let total: i64 = counts.iter().sum();
    if total <= per_file {
        let urls = urls(db, &base.0, now, &counts, 0, per_file).await?;
        return Ok(xml(urlset(&urls)));
    }
    let files = (total + per_file - 1) / per_file;
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for n in 1..=files {
        body.push_str(&format!(
            "<sitemap><loc>{}/sitemaps/{n}.xml</loc></sitemap>\n",
            escape_xml(&base.0)
        ));
    }
    body.push_str("</sitemapindex>\n");
    Ok(xml(body))
}

/// The numbered sitemap `<n>.xml` of the index; 404 past the last one.
#[get("/sitemaps/<name>")]
async fn sitemap_part(db: &Db, config: &State<Config>, base: BaseUrl, name: &str) -> Result<Xml> {
    let n: i64 = name
        .strip_suffix(".xml")
        .filter(|n| !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .filter(|&n| n >= 1)
        .ok_or(Error::NotFound)?;
    let per_file = config.site.sitemap_max_urls as i64;
    let now = current_time();
    let counts = counts(db, now).await?;
    let urls = urls(db, &base.0, now, &counts, (n - 1) * per_file, per_file).await?;
    if urls.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(xml(urlset(&urls)))
}

fn urlset(urls: &[SitemapUrl]) -> String {
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for u in urls {
        body.push_str("<url><loc>");
        body.push_str(&escape_xml(&u.loc));
        body.push_str("</loc>");
        if let Some(t) = u.lastmod {
            body.push_str("<lastmod>");
            body.push_str(&iso_time(t));
            body.push_str("</lastmod>");
        }
        body.push_str("</url>\n");
    }
    body.push_str("</urlset>\n");
    body
}

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[derive(Responder)]
struct Text {
    body: (ContentType, String),
    cache: Header<'static>,
}

/// Every crawler may read everything, and is told where the sitemap is.
#[get("/robots.txt")]
fn robots(base: BaseUrl) -> Text {
    Text {
        body: (
            ContentType::Plain,
            format!(
                "User-agent: *\nAllow: /\n\nSitemap: {}/sitemap.xml\n",
                base.0
            ),
        ),
        cache: Header::new("Cache-Control", CRAWLER_CACHE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_urls_keep_only_what_chooses_the_content() {
        fn uri(s: &str) -> Origin<'_> {
            Origin::parse(s).unwrap()
        }
        let base = "https://blog.example";
        assert_eq!(canonical_url(base, &uri("/")), "https://blog.example/");
        assert_eq!(
            canonical_url(base, &uri("/?utm_source=x&page=2")),
            "https://blog.example/?page=2"
        );
        assert_eq!(
            canonical_url(base, &uri("/search?q=a+b&page=3&ref=z")),
            "https://blog.example/search?q=a+b&page=3"
        );
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(escape_xml("a&b<'\">"), "a&amp;b&lt;&apos;&quot;&gt;");
    }
}
