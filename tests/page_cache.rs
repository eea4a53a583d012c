//! Story: a blog under load serves its public pages from memory, yet no reader ever sees
//! one outlive a change: a new, edited or deleted post, new tags, an author's new name or
//! handle, a scheduled post falling due, on the instance that made the change at once and
//! on any other within a second. Compressed forms are the same page, a reader's validator
//! gets a 304 from the cache, and nobody logged in gets, or leaves behind, a page of the
//! cache's.
//!
//! An instance here is a Rocket of its own over the test's database, with a cache of its
//! own. `Instance` sends no cookies but those a request is given, so one instance can
//! serve both an author (their session cookie attached) and anonymous readers.

use std::io::Read;
use std::time::{Duration, Instant};

use rocket::error::ErrorKind;
use rocket::http::{ContentType, Cookie, Header, Method, Status};
use rocket::local::asynchronous::{Client, LocalResponse};

use crate::common::process::Served;
use crate::common::*;

/// How soon another instance must show a write (the documented bound).
const ACROSS_INSTANCES: Duration = Duration::from_secs(1);

/// A quire instance on the app's database whose requests carry no cookie unless given
/// one; its cache checks the database every `check_ms` (and after its own form posts).
struct Instance {
    client: Client,
}

/// What a reader got: status, whether it came from the cache, the body as sent.
struct Got {
    status: Status,
    hit: bool,
    etag: Option<String>,
    encoding: Option<String>,
    body: Vec<u8>,
}

impl Got {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn got(res: LocalResponse<'_>) -> Got {
    let header = |name: &str| res.headers().get_one(name).map(str::to_string);
    let (status, hit, etag, encoding) = (
        res.status(),
        header("X-Cache").as_deref() == Some("hit"),
        header("ETag"),
        header("Content-Encoding"),
    );
    Got {
        status,
        hit,
        etag,
        encoding,
        body: res.into_bytes().await.unwrap_or_default(),
    }
}

impl Instance {
    async fn start(app: &TestApp, check_ms: u64) -> Instance {
        let figment = app.figment.clone().merge(("page_cache.check_ms", check_ms));
        let client = Client::untracked(quire::build(figment))
            .await
            .expect("quire launches");
        Instance { client }
    }

    /// An anonymous GET with these headers.
    async fn get_with(&self, path: &str, headers: &[(&'static str, &str)]) -> Got {
        let mut req = self.client.req(Method::Get, path.to_string());
        for (name, value) in headers {
            req.add_header(Header::new(*name, value.to_string()));
        }
        got(req.dispatch().await).await
    }

    async fn get(&self, path: &str) -> Got {
        self.get_with(path, &[]).await
    }

    /// GET `path` until the page holds `text` (or, with `present` false, no longer
    /// holds it); how long that took. Fails after `limit`.
    async fn wait_for(&self, path: &str, text: &str, present: bool, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let page = self.get(path).await;
            if page.status == Status::Ok && page.text().contains(text) == present {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "{path} still {} {text:?} after {limit:?}",
                if present { "without" } else { "with" }
            );
            rocket::tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// GET `path` as `author` (their session cookie attached).
    async fn get_as(&self, author: &Browser, path: &str) -> Got {
        let res = self
            .client
            .get(path.to_string())
            .cookie(session_of(author))
            .dispatch()
            .await;
        got(res).await
    }

    /// Posts the form at `path` on this instance as `author`, with their CSRF token.
    async fn post_as(&self, author: &Browser, path: &str, fields: &[(&str, &str)]) -> Got {
        let token = author.csrf_token().await;
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &token)];
        all.extend_from_slice(fields);
        let res = self
            .client
            .post(path.to_string())
            .header(ContentType::Form)
            .header(Header::new("User-Agent", USER_AGENT))
            .cookie(session_of(author))
            .body(encode(&all))
            .dispatch()
            .await;
        let location = res.headers().get_one("Location").map(str::to_string);
        let mut g = got(res).await;
        if let Some(to) = location {
            g.body = to.into_bytes();
        }
        g
    }

    /// Creates a published post as `author` on this instance; its slug.
    async fn create_as(&self, author: &Browser, title: &str, extra: &[(&str, &str)]) -> String {
        let mut fields = vec![
            ("title", title),
            ("body", "A paragraph long enough to be worth compressing. "),
            ("publish", "true"),
        ];
        fields.extend_from_slice(extra);
        let res = self.post_as(author, "/posts", &fields).await;
        assert_eq!(res.status, Status::SeeOther, "creating {title:?}");
        res.text()
            .strip_prefix("/posts/")
            .expect("redirected to the post")
            .to_string()
    }
}

fn session_of(author: &Browser) -> Cookie<'static> {
    author
        .cookie("quire_session")
        .expect("the author is logged in")
}

/// A post's body text, long enough that its pages are compressed.
fn long_body() -> String {
    "The engine weaves algebraic patterns as the loom weaves flowers. ".repeat(30)
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

fn unbrotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut std::io::Cursor::new(body), &mut out).expect("a brotli body");
    out
}

/// An author "Ada Lovelace" (handle ada-lovelace) with one published post tagged Rust,
/// written through `site`; her browser and the post's slug.
async fn blog(app: &TestApp, site: &Instance) -> (Browser, String) {
    let (ada, _) = app.author("Ada Lovelace").await;
    let body = long_body();
    let slug = site
        .create_as(
            &ada,
            "Notes on the engine",
            &[("body", &body), ("tags", "Rust")],
        )
        .await;
    (ada, slug)
}

/// Every kind of public page the cache keeps, for a blog made by `blog`.
fn cached_paths(slug: &str, cursor: &str) -> Vec<String> {
    [
        "/",
        "/?page=1",
        &format!("/?before={cursor}"),
        &format!("/posts/{slug}"),
        "/tags",
        "/tags/rust",
        "/authors/ada-lovelace",
        "/feed.xml",
        "/tags/rust/feed.xml",
        "/authors/ada-lovelace/feed.xml",
        "/sitemap.xml",
        "/robots.txt",
    ]
    .map(str::to_string)
    .to_vec()
}

/// GETs `path` until a hit (the first GET renders and stores it); fails if the second
/// is not one.
async fn warm(site: &Instance, path: &str) -> Got {
    let first = site.get(path).await;
    assert_eq!(first.status, Status::Ok, "{path}: {}", first.text());
    let again = site.get(path).await;
    assert!(again.hit, "{path} was not kept");
    assert_eq!(again.body, first.body, "{path}: the kept page differs");
    again
}

#[rocket::async_test]
async fn every_public_page_is_kept_and_its_compressed_forms_are_the_same_page() {
    let app = TestApp::spawn().await;
    let site = Instance::start(&app, 60_000).await;
    let (ada, slug) = blog(&app, &site).await;
    // A second post, so that the first is on a page of older posts.
    let second = site.create_as(&ada, "Second note", &[]).await;
    let cursor = cursor_of(&app, &second).await;

    for path in cached_paths(&slug, &cursor) {
        let identity = warm(&site, &path).await;
        assert_eq!(identity.encoding, None, "{path}");
        let etag = identity.etag.clone().expect("an ETag");

        // A 304 from the cache to the reader who holds it.
        let revalidated = site.get_with(&path, &[("If-None-Match", &etag)]).await;
        assert_eq!(revalidated.status, Status::NotModified, "{path}");
        assert!(revalidated.hit, "{path}");
        assert!(revalidated.body.is_empty(), "{path}");

        if path == "/robots.txt" {
            continue; // plain text: sent as it is
        }
        let gz = site.get_with(&path, &[("Accept-Encoding", "gzip")]).await;
        assert!(gz.hit, "{path}");
        assert_eq!(gz.encoding.as_deref(), Some("gzip"), "{path}");
        assert_eq!(gunzip(&gz.body), identity.body, "{path}: gzip");
        let br = site
            .get_with(&path, &[("Accept-Encoding", "gzip, deflate, br")])
            .await;
        assert!(br.hit, "{path}");
        assert_eq!(br.encoding.as_deref(), Some("br"), "{path}");
        assert_eq!(unbrotli(&br.body), identity.body, "{path}: brotli");
        // Each form has a tag of its own, and its own 304.
        let br_tag = br.etag.clone().expect("an ETag");
        assert_ne!(br_tag, etag, "{path}");
        let again = site
            .get_with(
                &path,
                &[("Accept-Encoding", "br"), ("If-None-Match", &br_tag)],
            )
            .await;
        assert_eq!(again.status, Status::NotModified, "{path}");
    }

    // What the reader got from the cache is what rendering it again gives.
    let uncached = Instance::start(&app, 60_000).await;
    for path in ["/", &format!("/posts/{slug}"), "/feed.xml"] {
        assert_eq!(
            site.get(path).await.body,
            uncached.get(path).await.body,
            "{path}"
        );
    }
}

#[rocket::async_test]
async fn made_up_query_parameters_and_unknown_addresses_are_not_kept() {
    let app = TestApp::spawn().await;
    let site = Instance::start(&app, 60_000).await;
    let (_ada, slug) = blog(&app, &site).await;
    for path in [
        "/?utm_source=feed".to_string(),
        "/?page=1&page=2".to_string(),
        format!("/posts/{slug}?page=2"),
        "/posts/no-such-post".to_string(),
        "/search?q=engine&utm_source=feed".to_string(),
        "/search?q=engine&q=loom".to_string(),
        "/healthz".to_string(),
    ] {
        site.get(&path).await;
        let again = site.get(&path).await;
        assert!(!again.hit, "{path} was kept");
    }
}

#[rocket::async_test]
async fn a_logged_in_reader_never_gets_the_kept_page_nor_leaves_theirs() {
    let app = TestApp::spawn().await;
    let site = Instance::start(&app, 60_000).await;
    let (ada, slug) = blog(&app, &site).await;
    let post = format!("/posts/{slug}");

    // Logged in first, on an empty cache: her page is hers (her name, her forms) ...
    let hers = site.get_as(&ada, &post).await;
    assert_eq!(hers.status, Status::Ok);
    assert!(!hers.hit);
    assert!(hers.text().contains("csrf_token"), "{}", hers.text());
    // ... and none of it reaches the next reader, who gets the page rendered for them.
    let anonymous = site.get(&post).await;
    assert!(!anonymous.hit);
    assert!(!anonymous.text().contains("csrf_token"));
    assert!(!anonymous.text().contains("Log out"));

    // Kept for anonymous readers, it is still not what she gets.
    warm(&site, &post).await;
    let hers = site.get_as(&ada, &post).await;
    assert!(!hers.hit);
    assert!(hers.text().contains("csrf_token"));
    warm(&site, "/").await;
    let home = site.get_as(&ada, "/").await;
    assert!(!home.hit);
    assert!(home.text().contains("csrf_token"));
}

#[rocket::async_test]
async fn no_page_is_kept_when_the_cache_is_off() {
    let app = TestApp::spawn_with(|f| f.merge(("page_cache.enabled", false))).await;
    let (ada, _) = app.author("Ada").await;
    ada.create_post("Hello", "World.", true).await;
    for _ in 0..3 {
        let res = app.get("/").await;
        assert_eq!(res.status(), Status::Ok);
        assert!(res.headers().get_one("X-Cache").is_none());
    }
}

#[rocket::async_test]
async fn a_bad_page_cache_setting_stops_launch_with_its_name() {
    let app = TestApp::spawn().await;
    let figment = app
        .figment
        .clone()
        .merge(("page_cache.max_entries", "many"));
    let Err(err) = Client::untracked(quire::build(figment)).await else {
        panic!("launched with a bad page_cache.max_entries");
    };
    assert!(
        matches!(err.kind(), ErrorKind::FailedFairings(f) if f.iter().any(|f| f.name == "Page cache")),
        "{err:?}"
    );
}

// Each change below is made through the instance readers use; its cache checks the
// database only after its own form posts (`check_ms` is a minute), so what these show
// is the write reaching the cache at once.

#[rocket::async_test]
async fn a_new_post_shows_at_once_on_every_kept_listing() {
    let app = TestApp::spawn().await;
    let site = Instance::start(&app, 60_000).await;
    let (ada, _) = blog(&app, &site).await;
    let paths = [
        "/",
        "/tags/rust",
        "/authors/ada-lovelace",
        "/feed.xml",
        "/tags/rust/feed.xml",
        "/sitemap.xml",
        "/tags",
        "/search?q=mill",
    ];
    for path in paths {
        warm(&site, path).await;
    }
    let slug = site
        .create_as(&ada, "Fresh from the mill", &[("tags", "Rust, Looms")])
        .await;
    for path in paths {
        let page = site.get(path).await;
        assert!(!page.hit, "{path}");
        let text = page.text();
        assert!(
            text.contains("Fresh from the mill") || text.contains(&slug) || text.contains("Looms"),
            "{path} does not show the new post: {text}"
        );
    }
}

#[rocket::async_test]
async fn an_edited_post_shows_at_once() {
    let app = TestApp::spawn().await;
    let site = Instance::start(&app, 60_000).await;
    let (ada, slug) = blog(&app, &site).await;
    let post = format!("/posts/{slug}");
    warm(&site, &post).await;
    warm(&site, "/").await;
    let res = site
        .post_as(
            &ada,
            &format!("{post}/edit"),
            &[
                ("title", "Notes on the analytical engine"),
                ("body", "Rewritten entirely."),
                ("tags", "Rust"),
                ("publish", "true"),
            ],
        )
        .await;
    assert_eq!(res.status, Status::SeeOther);
    let page = site.get(&post).await;
    assert!(
        page.text().contains("Rewritten entirely."),
        "{}",
        page.text()
    );
    assert!(site
        .get("/")
        .await
        .text()
        .contains("Notes on the analytical engine"));
}

#[rocket::async_test]
async fn a_deleted_post_is_gone_at_once() {
    let app = TestApp::spawn().await;
    let site = Instance::start(&app, 60_000).await;
    let (ada, slug) = blog(&app, &site).await;
    let post = format!("/posts/{slug}");
    for path in [post.as_str(), "/", "/feed.xml", "/tags/rust"] {
        warm(&site, path).await;
    }
    let res = site.post_as(&ada, &format!("{post}/delete"), &[]).await;
    assert_eq!(res.status, Status::SeeOther);
    assert_eq!(site.get(&post).await.status, Status::NotFound);
    assert!(!site.get("/").await.text().contains("Notes on the engine"));
    assert!(!site.get("/feed.xml").await.text().contains(&slug));
    // Its tag has no public post left.
    assert_eq!(site.get("/tags/rust").await.status, Status::NotFound);
}

#[rocket::async_test]
async fn a_change_of_tags_shows_at_once() {
    let app = TestApp::spawn().await;
    let site = Instance::start(&app, 60_000).await;
    let (ada, slug) = blog(&app, &site).await;
    let post = format!("/posts/{slug}");
    for path in [post.as_str(), "/tags", "/tags/rust"] {
        warm(&site, path).await;
    }
    let body = long_body();
    let res = site
        .post_as(
            &ada,
            &format!("{post}/edit"),
            &[
                ("title", "Notes on the engine"),
                ("body", &body),
                ("tags", "Looms"),
                ("publish", "true"),
            ],
        )
        .await;
    assert_eq!(res.status, Status::SeeOther);
    assert!(site.get(&post).await.text().contains("/tags/looms"));
    let index = site.get("/tags").await.text();
    assert!(
        index.contains("/tags/looms") && !index.contains("/tags/rust"),
        "{index}"
    );
    assert_eq!(site.get("/tags/rust").await.status, Status::NotFound);
}

#[rocket::async_test]
async fn an_author_who_changes_handle_moves_at_once() {
    let app = TestApp::spawn().await;
    let site = Instance::start(&app, 60_000).await;
    let (ada, slug) = blog(&app, &site).await;
    let post = format!("/posts/{slug}");
    for path in [
        post.as_str(),
        "/",
        "/authors/ada-lovelace",
        "/authors/ada-lovelace/feed.xml",
    ] {
        warm(&site, path).await;
    }
    let res = site
        .post_as(&ada, "/account/handle", &[("handle", "countess")])
        .await;
    assert_eq!(res.status, Status::SeeOther);
    assert!(site.get(&post).await.text().contains("/authors/countess"));
    assert!(site.get("/").await.text().contains("/authors/countess"));
    // The old address now leads to the new one.
    assert_eq!(
        site.get("/authors/ada-lovelace").await.status,
        Status::MovedPermanently
    );
    assert_eq!(site.get("/authors/countess").await.status, Status::Ok);
}

#[rocket::async_test]
async fn a_scheduled_post_appears_when_due_though_nothing_was_written() {
    let app = TestApp::spawn().await;
    let site = Instance::start(&app, 60_000).await;
    let (ada, _) = blog(&app, &site).await;
    let due = unix_now() + 3;
    let at = time::OffsetDateTime::from_unix_timestamp(due)
        .unwrap()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap();
    let slug = site
        .create_as(&ada, "Launch day", &[("publish_at", &at), ("tags", "Rust")])
        .await;
    let paths = ["/", "/feed.xml", "/tags/rust", "/sitemap.xml"];
    for path in paths {
        let page = warm(&site, path).await;
        assert!(!page.text().contains(&slug), "{path} shows it early");
    }
    // No write, no check (the next is a minute away): only its due time can do this.
    while unix_now() < due {
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for path in paths {
        let page = site.get(path).await;
        assert!(page.text().contains(&slug), "{path} once it was due");
    }
    assert_eq!(site.get(&format!("/posts/{slug}")).await.status, Status::Ok);
}

// Across instances: the write is made on one, read on the other, whose cache checks the
// database as it does by default.

#[rocket::async_test]
async fn a_post_written_on_another_instance_shows_within_a_second() {
    let app = TestApp::spawn().await;
    let writer = Instance::start(&app, 250).await;
    let reader = Instance::start(&app, 250).await;
    let (ada, slug) = blog(&app, &writer).await;
    warm(&reader, "/").await;
    warm(&reader, &format!("/posts/{slug}")).await;

    writer.create_as(&ada, "Written elsewhere", &[]).await;
    reader
        .wait_for("/", "Written elsewhere", true, ACROSS_INSTANCES)
        .await;

    let res = writer
        .post_as(&ada, &format!("/posts/{slug}/delete"), &[])
        .await;
    assert_eq!(res.status, Status::SeeOther);
    let start = Instant::now();
    loop {
        let page = reader.get(&format!("/posts/{slug}")).await;
        if page.status == Status::NotFound {
            break;
        }
        assert!(
            start.elapsed() < ACROSS_INSTANCES,
            "deleted post still served"
        );
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[rocket::async_test]
async fn an_author_renamed_outside_quire_pages_shows_the_new_name_within_a_second() {
    let app = TestApp::spawn().await;
    let reader = Instance::start(&app, 250).await;
    let (_ada, slug) = blog(&app, &reader).await;
    let email = users(&app).await[0].email.clone();
    let post = format!("/posts/{slug}");
    for path in [post.as_str(), "/", "/authors/ada-lovelace", "/feed.xml"] {
        warm(&reader, path).await;
    }
    // As an identity provider's new claims or an operator's fix would: no quire request.
    rename_user(&app, &email, "Augusta Ada King").await;
    for path in [post.as_str(), "/", "/authors/ada-lovelace", "/feed.xml"] {
        reader
            .wait_for(path, "Augusta Ada King", true, ACROSS_INSTANCES)
            .await;
    }
}

/// An anonymous GET on `served`: whether it came from the cache, and the page.
async fn get_from(served: &Served, path: &str) -> (bool, String) {
    let res = http().get(served.url(path)).send().await.expect("GET");
    assert_eq!(res.status(), reqwest::StatusCode::OK, "{path}");
    let hit = res.headers().get("X-Cache").is_some_and(|v| v == "hit");
    (hit, res.text().await.expect("body"))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

#[rocket::async_test]
async fn two_serving_processes_on_one_database_agree_within_a_second() {
    let app = TestApp::spawn().await;
    let (ada, _) = app.author("Ada Lovelace").await;
    ada.create_post("Written before", &long_body(), true).await;
    let a = Served::start(app.dir.path(), &app.database.url, "a").await;
    let b = Served::start(app.dir.path(), &app.database.url, "b").await;
    for path in ["/", "/feed.xml"] {
        get_from(&b, path).await;
        assert!(get_from(&b, path).await.0, "{path} was not kept on B");
    }

    // Written on A (her session holds on any instance), read on B.
    let token = ada.csrf_token().await;
    let session = session_of(&ada);
    let res = http()
        .post(a.url("/posts"))
        .header("Cookie", format!("{}={}", session.name(), session.value()))
        .header("User-Agent", USER_AGENT)
        .form(&[
            ("csrf_token", token.as_str()),
            ("title", "Written on A"),
            ("body", "Read on B."),
            ("publish", "true"),
        ])
        .send()
        .await
        .expect("POST /posts on A");
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    let start = Instant::now();
    for path in ["/", "/feed.xml"] {
        loop {
            let (_, page) = get_from(&b, path).await;
            if page.contains("Written on A") {
                break;
            }
            assert!(
                start.elapsed() < ACROSS_INSTANCES,
                "{path} on B still without the post after {ACROSS_INSTANCES:?}"
            );
            rocket::tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // And kept again on B once rendered.
    assert!(get_from(&b, "/").await.0);
}
