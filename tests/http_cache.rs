//! Story: feed readers, browsers and reverse proxies ask again for what they already hold
//! and get 304 Not Modified until it changes; they get it gzip- or brotli-compressed when
//! they say they accept that; and nobody's personal page is ever stored or confirmed to
//! someone else.

use std::io::Read;

use rocket::http::{Header, Method, Status};
use rocket::local::asynchronous::LocalResponse;

use crate::common::*;

/// GET (or another method) `path` with these request headers.
async fn fetch<'b>(
    b: &'b Browser,
    method: Method,
    path: &str,
    headers: &[(&'static str, &str)],
) -> LocalResponse<'b> {
    let mut req = b.client.req(method, path.to_string());
    for (name, value) in headers {
        req.add_header(Header::new(*name, value.to_string()));
    }
    req.dispatch().await
}

fn header(res: &LocalResponse<'_>, name: &str) -> Option<String> {
    res.headers().get_one(name).map(str::to_string)
}

async fn bytes(res: LocalResponse<'_>) -> Vec<u8> {
    res.into_bytes().await.unwrap_or_default()
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

fn varies_on_encoding(res: &LocalResponse<'_>) -> bool {
    res.headers()
        .get("Vary")
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding"))
}

/// An author "Ada Lovelace" (handle ada-lovelace) with one published post tagged Rust;
/// returns her browser and the post's slug.
async fn blog_with_a_post(app: &TestApp) -> (Browser, String) {
    let (ada, _) = app.author("Ada Lovelace").await;
    let res = ada
        .post_form(
            "/posts",
            &[
                ("title", "Notes on the engine"),
                ("body", &"The engine weaves algebraic patterns. ".repeat(40)),
                ("tags", "Rust"),
                ("publish", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let slug = location(&res)
        .strip_prefix("/posts/")
        .expect("redirected to the post")
        .to_string();
    drop(res);
    (ada, slug)
}

fn public_paths(slug: &str) -> Vec<String> {
    [
        "/",
        &format!("/posts/{slug}"),
        "/tags/rust",
        "/authors/ada-lovelace",
        "/feed.xml",
        "/tags/rust/feed.xml",
        "/authors/ada-lovelace/feed.xml",
        "/sitemap.xml",
        "/static/style.css",
    ]
    .map(str::to_string)
    .to_vec()
}

#[rocket::async_test]
async fn public_pages_feeds_and_static_files_answer_304_to_their_etag() {
    let app = TestApp::spawn().await;
    let (_ada, slug) = blog_with_a_post(&app).await;
    let reader = app.new_browser().await;

    for path in public_paths(&slug) {
        let res = fetch(&reader, Method::Get, &path, &[]).await;
        assert_eq!(res.status(), Status::Ok, "{path}");
        let etag = header(&res, "ETag").unwrap_or_else(|| panic!("{path}: no ETag"));
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
            "{path}: {etag}"
        );
        assert!(varies_on_encoding(&res), "{path}");
        let lm = header(&res, "Last-Modified").unwrap_or_else(|| panic!("{path}: no date"));
        assert!(lm.ends_with(" GMT"), "{path}: {lm}");
        let cache = header(&res, "Cache-Control").unwrap_or_default();
        assert!(cache.starts_with("public"), "{path}: {cache}");
        if !path.contains(".xml") && !path.starts_with("/static/") {
            assert_eq!(cache, "public, no-cache", "{path}");
        }
        assert!(!bytes(res).await.is_empty(), "{path}");

        let again = fetch(&reader, Method::Get, &path, &[("If-None-Match", &etag)]).await;
        assert_eq!(again.status(), Status::NotModified, "{path}");
        assert_eq!(header(&again, "ETag").as_ref(), Some(&etag), "{path}");
        assert!(header(&again, "Cache-Control").is_some(), "{path}");
        assert!(bytes(again).await.is_empty(), "{path}");

        // One of several tags, or a weak copy of it, matches too; another tag does not.
        let list = format!("\"something-else\", W/{etag}");
        let listed = fetch(&reader, Method::Get, &path, &[("If-None-Match", &list)]).await;
        assert_eq!(listed.status(), Status::NotModified, "{path}");
        let other = fetch(&reader, Method::Get, &path, &[("If-None-Match", "\"x\"")]).await;
        assert_eq!(other.status(), Status::Ok, "{path}");

        // HEAD: the same validators, no body.
        let head = fetch(&reader, Method::Head, &path, &[]).await;
        assert_eq!(head.status(), Status::Ok, "{path}");
        assert_eq!(header(&head, "ETag").as_ref(), Some(&etag), "{path}");
        assert!(bytes(head).await.is_empty(), "{path}");
    }

    // The icon is not text: never compressed, but revalidated like the rest.
    let icon = fetch(
        &reader,
        Method::Get,
        "/static/favicon.svg",
        &[("Accept-Encoding", "br")],
    )
    .await;
    assert_eq!(header(&icon, "Content-Encoding"), None);
    let etag = header(&icon, "ETag").expect("ETag");
    let again = fetch(
        &reader,
        Method::Get,
        "/static/favicon.svg",
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(again.status(), Status::NotModified);
}

#[rocket::async_test]
async fn if_modified_since_gives_304_until_a_new_post_changes_the_page() {
    let app = TestApp::spawn().await;
    let (ada, _) = blog_with_a_post(&app).await;
    let reader = app.new_browser().await;

    let first = fetch(&reader, Method::Get, "/", &[]).await;
    let etag = header(&first, "ETag").expect("ETag");
    let lm = header(&first, "Last-Modified").expect("Last-Modified");
    let res = fetch(&reader, Method::Get, "/", &[("If-Modified-Since", &lm)]).await;
    assert_eq!(res.status(), Status::NotModified);
    assert_eq!(header(&res, "Last-Modified").as_ref(), Some(&lm));
    let feed = fetch(&reader, Method::Get, "/feed.xml", &[]).await;
    let feed_lm = header(&feed, "Last-Modified").expect("Last-Modified");
    let res = fetch(
        &reader,
        Method::Get,
        "/feed.xml",
        &[("If-Modified-Since", &feed_lm)],
    )
    .await;
    assert_eq!(res.status(), Status::NotModified);
    // If-None-Match wins over If-Modified-Since.
    let res = fetch(
        &reader,
        Method::Get,
        "/",
        &[("If-None-Match", "\"stale\""), ("If-Modified-Since", &lm)],
    )
    .await;
    assert_eq!(res.status(), Status::Ok);
    // A date that is not an HTTP date is ignored.
    let res = fetch(
        &reader,
        Method::Get,
        "/",
        &[("If-Modified-Since", "yesterday")],
    )
    .await;
    assert_eq!(res.status(), Status::Ok);

    // Dates have one-second precision: let the new post fall in a later second.
    rocket::tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = ada.create_post("A second note", "More.", true).await;
    for path in ["/", "/feed.xml"] {
        let res = fetch(&reader, Method::Get, path, &[("If-None-Match", &etag)]).await;
        assert_eq!(res.status(), Status::Ok, "{path}");
        assert_ne!(header(&res, "ETag").as_ref(), Some(&etag), "{path}");
        let (_, body) = text_of(res).await;
        assert!(body.contains("A second note"), "{path}: {body}");
    }
    let res = fetch(&reader, Method::Get, "/", &[("If-Modified-Since", &lm)]).await;
    assert_eq!(res.status(), Status::Ok);
    assert_ne!(header(&res, "Last-Modified").as_ref(), Some(&lm));
    let res = fetch(
        &reader,
        Method::Get,
        "/feed.xml",
        &[("If-Modified-Since", &feed_lm)],
    )
    .await;
    assert_eq!(res.status(), Status::Ok);

    // Deleting the newest post leaves only older ones, and still moves the date on.
    let before = fetch(&reader, Method::Get, "/", &[]).await;
    let lm = header(&before, "Last-Modified").expect("Last-Modified");
    rocket::tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = ada.post_form(&format!("/posts/{second}/delete"), &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    let res = fetch(&reader, Method::Get, "/", &[("If-Modified-Since", &lm)]).await;
    assert_eq!(res.status(), Status::Ok);
    let (_, body) = text_of(res).await;
    assert!(!body.contains("A second note"), "{body}");
    assert!(body.contains("Notes on the engine"), "{body}");
}

#[rocket::async_test]
async fn personal_pages_are_never_stored_nor_confirmed_to_someone_else() {
    let app = TestApp::spawn().await;
    let (ada, slug) = blog_with_a_post(&app).await;
    let (bob, _) = app.author("Bob").await;
    let reader = app.new_browser().await;
    let public = fetch(&reader, Method::Get, "/", &[]).await;
    let public_etag = header(&public, "ETag").expect("ETag");
    // Each person's pages carry the CSRF token of their own session.
    let (ada_token, bob_token) = (ada.csrf_token().await, bob.csrf_token().await);

    for path in ["/dashboard", "/account", "/", &format!("/posts/{slug}")] {
        let ada_page = fetch(&ada, Method::Get, path, &[("Accept-Encoding", "gzip, br")]).await;
        assert_eq!(ada_page.status(), Status::Ok, "{path}");
        assert_eq!(
            header(&ada_page, "Cache-Control").as_deref(),
            Some("no-store")
        );
        assert_eq!(header(&ada_page, "ETag"), None, "{path}");
        // A page with a CSRF token beside text others choose is never compressed.
        assert_eq!(header(&ada_page, "Content-Encoding"), None, "{path}");
        let (_, ada_text) = text_of(ada_page).await;
        assert!(ada_text.contains(&ada_token), "{path}");

        // Whatever validator Bob (or a proxy on his behalf) sends, he gets his own page.
        for tag in ["*", public_etag.as_str()] {
            let res = fetch(&bob, Method::Get, path, &[("If-None-Match", tag)]).await;
            assert_eq!(res.status(), Status::Ok, "{path} {tag}");
            assert_eq!(header(&res, "Cache-Control").as_deref(), Some("no-store"));
            let (_, text) = text_of(res).await;
            assert!(text.contains(&bob_token), "{path}");
        }
        let res = fetch(
            &bob,
            Method::Get,
            path,
            &[("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT")],
        )
        .await;
        assert_eq!(res.status(), Status::Ok, "{path}");
    }
    // A page that hands out a CSRF token to an anonymous visitor is personal too.
    let login = fetch(&reader, Method::Get, "/login", &[("If-None-Match", "*")]).await;
    assert_eq!(login.status(), Status::Ok);
    assert_eq!(header(&login, "Cache-Control").as_deref(), Some("no-store"));
    assert_eq!(header(&login, "ETag"), None);
}

#[rocket::async_test]
async fn gzip_and_brotli_bodies_decompress_to_exactly_the_identity_bytes() {
    let app = TestApp::spawn().await;
    let (_ada, slug) = blog_with_a_post(&app).await;
    let reader = app.new_browser().await;

    for path in [
        "/".to_string(),
        format!("/posts/{slug}"),
        "/tags/rust".into(),
        "/feed.xml".into(),
        "/static/style.css".into(),
        "/static/preview.js".into(),
    ] {
        let plain = fetch(&reader, Method::Get, &path, &[]).await;
        assert_eq!(header(&plain, "Content-Encoding"), None, "{path}");
        assert!(varies_on_encoding(&plain), "{path}");
        let plain_tag = header(&plain, "ETag").expect("ETag");
        let identity = bytes(plain).await;

        let gz = fetch(&reader, Method::Get, &path, &[("Accept-Encoding", "gzip")]).await;
        assert_eq!(gz.status(), Status::Ok, "{path}");
        assert_eq!(header(&gz, "Content-Encoding").as_deref(), Some("gzip"));
        assert!(varies_on_encoding(&gz), "{path}");
        let gz_tag = header(&gz, "ETag").expect("ETag");
        let gz_body = bytes(gz).await;
        assert!(gz_body.len() < identity.len(), "{path}");
        assert_eq!(gunzip(&gz_body), identity, "{path}");

        let br = fetch(
            &reader,
            Method::Get,
            &path,
            &[("Accept-Encoding", "gzip, deflate, br")],
        )
        .await;
        assert_eq!(header(&br, "Content-Encoding").as_deref(), Some("br"));
        let br_tag = header(&br, "ETag").expect("ETag");
        assert_eq!(unbrotli(&bytes(br).await), identity, "{path}");

        // Each coding is a representation of its own, with its own tag.
        assert!(
            plain_tag != gz_tag && gz_tag != br_tag && plain_tag != br_tag,
            "{path}: {plain_tag} {gz_tag} {br_tag}"
        );
        let res = fetch(
            &reader,
            Method::Get,
            &path,
            &[("Accept-Encoding", "gzip"), ("If-None-Match", &gz_tag)],
        )
        .await;
        assert_eq!(res.status(), Status::NotModified, "{path}");
        assert_eq!(header(&res, "ETag").as_ref(), Some(&gz_tag));
        let res = fetch(
            &reader,
            Method::Get,
            &path,
            &[("Accept-Encoding", "br"), ("If-None-Match", &gz_tag)],
        )
        .await;
        assert_eq!(res.status(), Status::Ok, "{path}");

        for refused in ["gzip;q=0", "br;q=0, gzip;q=0", "identity", "*;q=0"] {
            let res = fetch(&reader, Method::Get, &path, &[("Accept-Encoding", refused)]).await;
            assert_eq!(header(&res, "Content-Encoding"), None, "{path} {refused}");
            assert_eq!(header(&res, "ETag").as_ref(), Some(&plain_tag));
            assert_eq!(bytes(res).await, identity, "{path} {refused}");
        }
        let res = fetch(
            &reader,
            Method::Get,
            &path,
            &[("Accept-Encoding", "br;q=0, gzip;q=0.5")],
        )
        .await;
        assert_eq!(header(&res, "Content-Encoding").as_deref(), Some("gzip"));
    }
}
