//! Rendered public pages, kept: what an anonymous reader gets at the home page (with
//! `?page` or `?before`), a post, a tag and the tag index, an author, every feed, the
//! sitemaps, robots.txt and search results is stored once rendered, with its gzip and brotli forms, so a
//! hit costs no render, no compression and, in the common case, no database query; a
//! hit whose `If-None-Match` matches is a 304 at once.
//!
//! Only requests that cannot be personal are looked up or stored: GET or HEAD, no
//! session or flash cookie, a known public address, and no query parameter other than
//! `page` and `before` (and `q` for search), so made-up parameters neither multiply
//! entries nor get stored.
//! Answers that set a cookie or say `no-store`/`private` are never stored (`http_cache`
//! hands over only the others). Entries are bounded in count and in bytes, the least
//! recently used going first.
//!
//! Invalidation is coarse: any change empties the whole cache. The database keeps a
//! generation number that triggers bump in every write to what public pages show
//! (migration 0011), committed with the write. Each instance reads it (with the next
//! publication time of a scheduled post) at most every `check_ms` on the request path, and
//! at once after any form post it answered itself; a changed number empties the cache. So
//! a write on another instance, or by the CLI, shows within `check_ms` (and a query), one
//! here at once, and a scheduled post when it falls due: no entry is served past the
//! earliest publication time after its epoch began.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Header, Method, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::tokio::sync::futures::OwnedNotified;
use rocket::tokio::sync::Notify;
use rocket::{get, routes, Build, Rocket};
use rocket_db_pools::Database;
use serde::Deserialize;
use time::OffsetDateTime;

use super::http_cache::{self, Coding};
use crate::db::{current_time, page_generation, Db};

/// `[page_cache]`. Each instance keeps its own cache; the bounds are per instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PageCacheConfig {
    /// Off: every page is rendered for every request.
    pub enabled: bool,
    /// The most pages kept.
    pub max_entries: usize,
    /// The most bytes kept, all forms (identity, gzip, brotli) and keys counted.
    pub max_bytes: usize,
    /// How often, in milliseconds, an instance asks the database whether a public page may
    /// have changed: how long a write on another instance takes to show. 0: on every
    /// request (a small query, no render).
    pub check_ms: u64,
}

impl Default for PageCacheConfig {
    fn default() -> Self {
        PageCacheConfig {
            enabled: true,
            max_entries: 1000,
            max_bytes: 32 << 20,
            check_ms: 250,
        }
    }
}

/// Brotli quality for stored pages: compressed once per change, so better than the
/// per-request quality, and still quick enough that emptying the cache costs little.
/// Quality 7 made pages 1% smaller than 6 but held 9 MiB of tables for each compression
/// instead of 3 (every page render after a write).
pub(crate) const BROTLI_STORED: u32 = 6;
/// What an entry costs beyond its bytes (map slot, headers, hash).
const ENTRY_OVERHEAD: usize = 256;
/// Longer addresses are not public pages worth keeping.
const MAX_KEY_PATH: usize = 512;
/// How many times a check reads again when the number moved meanwhile.
const CHECK_TRIES: usize = 3;
/// After a check could not read the database, how long until the next one tries.
const FAILURE_PAUSE: Duration = Duration::from_secs(1);

/// A stored answer: its headers and each form of its body.
pub struct Entry {
    content_type: ContentType,
    cache_control: Option<String>,
    vary: Option<String>,
    hash: String,
    last_modified: OffsetDateTime,
    identity: Arc<[u8]>,
    /// None when the body is not compressible (or too short to gain from it).
    gzip: Option<Arc<[u8]>>,
    brotli: Option<Arc<[u8]>>,
}

impl Entry {
    fn size(&self, key: &str) -> usize {
        key.len()
            + self.identity.len()
            + self.gzip.as_ref().map_or(0, |b| b.len())
            + self.brotli.as_ref().map_or(0, |b| b.len())
            + ENTRY_OVERHEAD
    }
}

struct Slot {
    entry: Arc<Entry>,
    size: usize,
    used: u64,
}

struct State {
    entries: HashMap<String, Slot>,
    bytes: usize,
    tick: u64,
    /// Moves on each emptying; an answer rendered in an earlier epoch is not stored.
    epoch: u64,
    /// When this epoch began (unix seconds): every entry was rendered since.
    epoch_start: i64,
    /// The database's number when last read; None before the first check.
    generation: Option<i64>,
    /// The first publication time after `epoch_start`, once a check in this epoch read it
    /// (`Some(None)`: nothing is scheduled).
    due: Option<Option<i64>>,
    /// When the last check that found everything current began.
    checked: Option<Instant>,
    /// Checks attempted, so that requests waiting on one do not repeat it.
    attempts: u64,
    /// When a check last failed to read the database.
    failed: Option<Instant>,
    /// This instance answered a form post since the last check began.
    dirty: bool,
}

impl State {
    fn clear(&mut self, now: i64) {
        self.entries.clear();
        self.bytes = 0;
        self.epoch += 1;
        self.epoch_start = now;
        self.due = None;
    }

    /// Whether entries may be served without asking the database first.
    fn current(&self, at: Instant, every: Duration, now: i64) -> bool {
        !self.dirty
            && self.checked.is_some_and(|c| at.duration_since(c) < every)
            && self.servable(now)
    }

    /// Whether the last check still holds at `now`: it read the due time of this epoch,
    /// and that has not come.
    fn servable(&self, now: i64) -> bool {
        matches!(self.due, Some(due) if due.is_none_or(|d| now < d))
    }
}

/// One instance's cache, managed state.
pub struct PageCache {
    config: PageCacheConfig,
    state: Mutex<State>,
    /// Held while a check runs, so that concurrent requests share one query.
    checking: rocket::tokio::sync::Mutex<()>,
    /// The pages being rendered after a miss, by key: requests that miss the same page
    /// meanwhile wait for that render (up to `RENDER_WAIT`) instead of all rendering it.
    /// After a write empties the cache, a busy page otherwise had every request in
    /// flight render it at once (the sitemap of a few thousand posts, dozens of times).
    rendering: Rendering,
}

type Rendering = Arc<Mutex<HashMap<String, Arc<Notify>>>>;

/// The longest a request waits for another's render of the same page before rendering
/// it itself.
const RENDER_WAIT: Duration = Duration::from_secs(2);

/// What a request that missed may store: its key and the epoch it was looked up in, and
/// while it renders the page for others too, their wake-up.
struct Ticket {
    page: Option<(String, u64)>,
    /// Only held: its drop is what matters.
    _renderer: Option<Renderer>,
}

/// Held by the one request rendering a page others wait for; dropped with the request,
/// whatever it answered, which wakes them (they find the page stored, or render it).
struct Renderer {
    key: String,
    done: Arc<Notify>,
    rendering: Rendering,
}

impl Drop for Renderer {
    fn drop(&mut self) {
        let mut map = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(&self.key)
            .is_some_and(|d| Arc::ptr_eq(d, &self.done))
        {
            map.remove(&self.key);
        }
        drop(map);
        self.done.notify_waiters();
    }
}

impl PageCache {
    pub fn new(config: PageCacheConfig) -> PageCache {
        PageCache {
            config,
            state: Mutex::new(State {
                entries: HashMap::new(),
                bytes: 0,
                tick: 0,
                epoch: 0,
                epoch_start: current_time().unix_timestamp(),
                generation: None,
                due: None,
                checked: None,
                attempts: 0,
                failed: None,
                dirty: false,
            }),
            checking: rocket::tokio::sync::Mutex::new(()),
            rendering: Rendering::default(),
        }
    }

    /// After a miss on `key`: the Renderer this request keeps when it is to render the
    /// page for everyone, or the wait for the request already rendering it.
    fn render_or_wait(&self, key: &str) -> Result<Renderer, OwnedNotified> {
        let mut map = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = map.get(key) {
            // Made under the lock, before the renderer can finish: it cannot be missed.
            return Err(done.clone().notified_owned());
        }
        let done = Arc::new(Notify::new());
        map.insert(key.to_string(), done.clone());
        Ok(Renderer {
            key: key.to_string(),
            done,
            rendering: self.rendering.clone(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves nothing half-done that matters here.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The page stored under `key` if it is still current, checking with the database
    /// first when the last check is older than `check_ms` (or a local write came since).
    /// Else None, and the epoch an answer rendered now would be stored in.
    async fn lookup(&self, db: &sqlx::AnyPool, key: &str) -> Result<Arc<Entry>, u64> {
        let every = Duration::from_millis(self.config.check_ms);
        let now = current_time().unix_timestamp();
        let (current, failing) = {
            let state = self.state();
            let at = Instant::now();
            let failing = state
                .failed
                .is_some_and(|f| at.duration_since(f) < FAILURE_PAUSE);
            (state.current(at, every, now), failing)
        };
        // While the database does not answer, pages are rendered (and fail) as they would
        // without a cache, instead of every request waiting on a check of its own.
        if !current && !failing {
            self.check(db).await;
        }
        let mut state = self.state();
        let usable = !state.dirty && state.servable(now);
        state.tick += 1;
        let tick = state.tick;
        match state.entries.get_mut(key) {
            Some(slot) if usable => {
                slot.used = tick;
                Ok(slot.entry.clone())
            }
            _ => Err(state.epoch),
        }
    }

    /// Reads the generation and the next due time; empties the cache when the number
    /// moved or a scheduled post fell due. One check at a time; requests that waited for
    /// one take its result (even a failure: the database is not asked again at once).
    async fn check(&self, db: &sqlx::AnyPool) {
        let seen = self.state().attempts;
        let _one = self.checking.lock().await;
        if self.state().attempts != seen {
            return;
        }
        self.try_check(db).await;
        self.state().attempts += 1;
    }

    async fn try_check(&self, db: &sqlx::AnyPool) {
        for _ in 0..CHECK_TRIES {
            let (since, started) = {
                let mut state = self.state();
                // A form post answered from now on marks the cache again.
                state.dirty = false;
                (state.epoch_start, Instant::now())
            };
            let snapshot = match page_generation::read(db, since).await {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("page cache: cannot read the page generation: {e}");
                    let mut state = self.state();
                    state.dirty = true;
                    state.failed = Some(Instant::now());
                    return;
                }
            };
            let now = current_time().unix_timestamp();
            let mut state = self.state();
            if state.generation != Some(snapshot.generation) {
                state.generation = Some(snapshot.generation);
                state.clear(now);
                continue;
            }
            if snapshot.next_due.is_some_and(|d| d <= now) {
                state.clear(now);
                continue;
            }
            state.due = Some(snapshot.next_due);
            state.checked = Some(started);
            state.failed = None;
            return;
        }
        // Writes kept coming: nothing is served until a later check finds it still.
        self.state().dirty = true;
    }

    /// Keeps `entry` under `key` if nothing changed since the request looked it up,
    /// making room by dropping the least recently used.
    fn store(&self, key: String, epoch: u64, entry: Arc<Entry>) {
        let size = entry.size(&key);
        // One page may not push out most of the others.
        if size > self.config.max_bytes / 4 {
            return;
        }
        let mut state = self.state();
        if state.epoch != epoch {
            return;
        }
        if let Some(old) = state.entries.remove(&key) {
            state.bytes -= old.size;
        }
        while !state.entries.is_empty()
            && (state.entries.len() >= self.config.max_entries
                || state.bytes + size > self.config.max_bytes)
        {
            let oldest = state
                .entries
                .iter()
                .min_by_key(|(_, slot)| slot.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                if let Some(slot) = state.entries.remove(&k) {
                    state.bytes -= slot.size;
                }
            }
        }
        if state.entries.len() >= self.config.max_entries {
            return;
        }
        state.tick += 1;
        let used = state.tick;
        state.bytes += size;
        state.entries.insert(key, Slot { entry, size, used });
    }

    /// A form post was answered here: the next lookup checks the database first, so the
    /// writer (and anyone else) sees the change on the next page.
    fn mark_dirty(&self) {
        self.state().dirty = true;
    }

    /// How many pages are kept, and their bytes.
    pub fn usage(&self) -> (usize, usize) {
        let state = self.state();
        (state.entries.len(), state.bytes)
    }
}

/// Query parameters of a listing (the home, tag and author pages).
const LISTING: &[&str] = &["page", "before"];
/// Of search results: a query seen again (a popular word, a link to the results) is
/// answered without ranking or rendering, and a new one ranks as it would uncached.
const SEARCH: &[&str] = &["q", "page", "before"];

/// Whether `path` is one of the public pages kept, and the query parameters it takes.
fn public_path(path: &str) -> Option<&'static [&'static str]> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let params: &[&str] = match segments.as_slice() {
        [""] => LISTING,
        ["search"] => SEARCH,
        ["feed.xml"] | ["sitemap.xml"] | ["robots.txt"] | ["tags"] => &[],
        ["posts", slug] | ["sitemaps", slug] if !slug.is_empty() => &[],
        ["tags", t] | ["authors", t] if !t.is_empty() => LISTING,
        ["tags", t, "feed.xml"] | ["authors", t, "feed.xml"] if !t.is_empty() => &[],
        _ => return None,
    };
    Some(params)
}

/// The cache key of a request that cannot be personal: the site's base URL (feeds and
/// share cards hold it), the path and the query. None for anything else.
fn key_of(req: &Request<'_>) -> Option<String> {
    if !matches!(req.method(), Method::Get | Method::Head) {
        return None;
    }
    let uri = req.uri();
    let path = uri.path().as_str();
    if path.len() > MAX_KEY_PATH {
        return None;
    }
    let params = public_path(path)?;
    let jar = req.cookies();
    if crate::auth::session::has_cookie(req) || jar.get("_flash").is_some() {
        return None;
    }
    let query = uri.query().map_or("", |q| q.as_str());
    if !query.is_empty() {
        if query.len() > MAX_KEY_PATH {
            return None;
        }
        let mut seen = Vec::with_capacity(3);
        for pair in query.split('&') {
            let name = pair.split('=').next().unwrap_or("");
            if !params.contains(&name) || seen.contains(&name) {
                return None;
            }
            seen.push(name);
        }
    }
    let base = super::public::BaseUrl::of(req).0;
    Some(format!("{base}{path}?{query}"))
}

/// A page answered from the cache.
pub struct Hit(Arc<Entry>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Hit {
    type Error = ();

    /// Forwards (to the page's own route) on a miss, leaving the request a ticket to
    /// store what that route answers.
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let Some(cache) = req.rocket().state::<PageCache>() else {
            return Outcome::Forward(Status::NotFound);
        };
        let Some(key) = key_of(req) else {
            return Outcome::Forward(Status::NotFound);
        };
        let Some(db) = Db::fetch(req.rocket()) else {
            return Outcome::Forward(Status::NotFound);
        };
        let deadline = rocket::tokio::time::Instant::now() + RENDER_WAIT;
        loop {
            let epoch = match cache.lookup(&db.0, &key).await {
                Ok(entry) => return Outcome::Success(Hit(entry)),
                Err(epoch) => epoch,
            };
            let renderer = match cache.render_or_wait(&key) {
                Ok(renderer) => Some(renderer),
                Err(done) if rocket::tokio::time::Instant::now() < deadline => {
                    let _ = rocket::tokio::time::timeout_at(deadline, done).await;
                    continue;
                }
                // Waited long enough: render alongside rather than wait on.
                Err(_) => None,
            };
            req.local_cache(|| Ticket {
                page: Some((key, epoch)),
                _renderer: renderer,
            });
            return Outcome::Forward(Status::NotFound);
        }
    }
}

impl<'r> Responder<'r, 'static> for Hit {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build().status(Status::Ok).finalize();
        res.set_header(Header::new("X-Cache", "hit"));
        answer(req, &mut res, &self.0);
        Ok(res)
    }
}

/// Tried before every other route (see `Stage`); forwards to them unless the cache has
/// the page.
#[get("/<_..>")]
fn cached(hit: Hit) -> Hit {
    hit
}

/// Sets `res` to `entry` in the coding the request accepts, or to a 304 when the
/// request's validators match that representation.
fn answer(req: &Request<'_>, res: &mut Response<'_>, entry: &Entry) {
    res.set_header(entry.content_type.clone());
    if let Some(cc) = &entry.cache_control {
        res.set_header(Header::new("Cache-Control", cc.clone()));
    }
    if let Some(vary) = &entry.vary {
        res.set_header(Header::new("Vary", vary.clone()));
    }
    let coding = http_cache::negotiate(
        req.headers().get_one("Accept-Encoding"),
        entry.gzip.is_some(),
        entry.brotli.is_some(),
    );
    let etag = coding.etag(&entry.hash);
    res.set_header(Header::new("ETag", etag.clone()));
    res.set_header(Header::new(
        "Last-Modified",
        http_cache::http_date(entry.last_modified),
    ));
    if http_cache::not_modified(req, &etag, Some(entry.last_modified)) {
        http_cache::make_not_modified(res);
        return;
    }
    let body = match coding {
        Coding::Gzip => entry.gzip.clone(),
        Coding::Brotli => entry.brotli.clone(),
        Coding::Identity => None,
    }
    .unwrap_or_else(|| entry.identity.clone());
    res.remove_header("Content-Encoding");
    coding.set_on(res);
    let len = body.len();
    res.set_sized_body(len, Cursor::new(body));
    // In one piece: Rocket would otherwise copy it out in 4 KiB chunks, each written on
    // its own, which made a large page (the home page, a feed) cost several times a
    // small one.
    res.set_max_chunk_size(len.max(rocket::response::Body::DEFAULT_MAX_CHUNK));
}

/// For `http_cache`, with a public 200 answer in hand (no cookie set, not `no-store`
/// nor `private`): when the request missed the cache, stores the answer with its
/// compressed forms and sends the form the request accepts. False when this request is
/// not one to keep (the caller goes on as usual).
pub async fn fill(req: &Request<'_>, res: &mut Response<'_>) -> bool {
    let Some(cache) = req.rocket().state::<PageCache>() else {
        return false;
    };
    let Ticket {
        page: Some((key, epoch)),
        ..
    } = req.local_cache(|| Ticket {
        page: None,
        _renderer: None,
    })
    else {
        return false;
    };
    if res.headers().contains("Content-Encoding") {
        return false;
    }
    match res.body().preset_size() {
        Some(n) if n <= http_cache::MAX_BODY => {}
        _ => return false,
    }
    let Ok(body) = res.body_mut().to_bytes().await else {
        return false;
    };
    let content_type = res.content_type().unwrap_or(ContentType::Binary);
    let compressible = http_cache::compressible(&content_type);
    if compressible {
        http_cache::vary_on_encoding(res);
    }
    let packed = compressible && body.len() >= http_cache::MIN_COMPRESS;
    let hash = http_cache::hash(&body);
    let pack = |coding, quality| {
        packed
            .then(|| http_cache::compress(&body, coding, quality))
            .flatten()
            .map(Arc::<[u8]>::from)
    };
    let entry = Arc::new(Entry {
        gzip: pack(Coding::Gzip, 0),
        brotli: pack(Coding::Brotli, BROTLI_STORED),
        last_modified: http_cache::page_last_modified(&req.uri().to_string(), &hash),
        content_type,
        cache_control: res.headers().get_one("Cache-Control").map(str::to_string),
        vary: res.headers().get_one("Vary").map(str::to_string),
        hash,
        identity: Arc::from(body),
    });
    cache.store(key.clone(), *epoch, entry.clone());
    answer(req, res, &entry);
    true
}

/// Reads `[page_cache]`, manages the cache and mounts its route; marks the cache after
/// every form post this instance answers.
pub struct Stage;

#[rocket::async_trait]
impl Fairing for Stage {
    fn info(&self) -> Info {
        Info {
            name: "Page cache",
            kind: Kind::Ignite | Kind::Response,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> rocket::fairing::Result {
        let config: PageCacheConfig = match rocket.figment().extract_inner("page_cache") {
            Ok(c) => c,
            Err(e) if e.missing() => PageCacheConfig::default(),
            Err(e) => {
                log::error!("page_cache: {e}");
                return Err(rocket);
            }
        };
        if !config.enabled || config.max_entries == 0 || config.max_bytes == 0 {
            return Ok(rocket);
        }
        let mut route = routes![cached];
        // Below every rank Rocket gives or the routes name (the attribute takes no
        // negative number).
        for r in &mut route {
            r.rank = -100;
        }
        Ok(rocket.manage(PageCache::new(config)).mount("/", route))
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, _res: &mut Response<'r>) {
        if !matches!(req.method(), Method::Get | Method::Head) {
            if let Some(cache) = req.rocket().state::<PageCache>() {
                cache.mark_dirty();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_pages_are_kept_and_only_listings_and_search_take_a_query() {
        for (path, params) in [
            ("/", LISTING),
            ("/tags/rust", LISTING),
            ("/authors/ada", LISTING),
            ("/search", SEARCH),
            ("/posts/hello", &[]),
            ("/feed.xml", &[]),
            ("/tags", &[]),
            ("/tags/rust/feed.xml", &[]),
            ("/authors/ada/feed.xml", &[]),
            ("/sitemap.xml", &[]),
            ("/sitemaps/2.xml", &[]),
            ("/robots.txt", &[]),
        ] {
            assert_eq!(public_path(path), Some(params), "{path}");
        }
        for path in [
            "/dashboard",
            "/search/x",
            "/posts/a/edit",
            "/posts/",
            "/static/quire.css",
            "/healthz",
            "/login",
            "/account",
            "/media/1/a.png",
            "/tags/",
        ] {
            assert_eq!(public_path(path), None, "{path}");
        }
    }

    fn entry(bytes: usize) -> Arc<Entry> {
        Arc::new(Entry {
            content_type: ContentType::HTML,
            cache_control: None,
            vary: None,
            hash: String::new(),
            last_modified: OffsetDateTime::UNIX_EPOCH,
            identity: vec![0; bytes].into(),
            gzip: None,
            brotli: None,
        })
    }

    fn cache(max_entries: usize, max_bytes: usize) -> PageCache {
        PageCache::new(PageCacheConfig {
            max_entries,
            max_bytes,
            ..Default::default()
        })
    }

    #[test]
    fn entries_are_bounded_in_count_and_bytes_least_recently_used_first() {
        let c = cache(3, 1 << 20);
        for k in ["a", "b", "c", "d"] {
            c.store(k.into(), 0, entry(10));
        }
        assert_eq!(c.usage().0, 3);
        assert!(!c.state().entries.contains_key("a"));

        let c = cache(100, 4 * (1000 + ENTRY_OVERHEAD + 1));
        for k in ["a", "b", "c", "d", "e", "f"] {
            c.store(k.into(), 0, entry(1000));
        }
        let (n, bytes) = c.usage();
        assert!(
            n <= 4 && bytes <= 4 * (1000 + ENTRY_OVERHEAD + 1),
            "{n} {bytes}"
        );
        // Too large for the cache: not kept at all.
        c.store("big".into(), 0, entry(4000));
        assert!(!c.state().entries.contains_key("big"));
    }

    #[test]
    fn an_answer_rendered_before_the_cache_was_emptied_is_not_kept() {
        let c = cache(10, 1 << 20);
        let epoch = c.state().epoch;
        c.state().clear(0);
        c.store("a".into(), epoch, entry(10));
        assert_eq!(c.usage().0, 0);
        c.store("a".into(), epoch + 1, entry(10));
        assert_eq!(c.usage().0, 1);
    }

    #[test]
    fn nothing_is_served_once_a_scheduled_post_is_due() {
        let c = cache(10, 1 << 20);
        let mut s = c.state();
        s.due = Some(Some(100));
        assert!(s.servable(99));
        assert!(!s.servable(100));
        s.due = Some(None);
        assert!(s.servable(i64::MAX));
        s.due = None;
        assert!(!s.servable(0));
    }
}
