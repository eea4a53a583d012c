//! The security baseline a visitor's browser sees: headers on every response, bodies that
//! are too large, odd content types and hostile URLs, none of which take the site down.

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::LocalResponse;

use crate::common::*;

fn assert_security_headers(res: &LocalResponse<'_>, what: &str) {
    let csp = res
        .headers()
        .get_one("Content-Security-Policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    assert_eq!(
        res.headers().get_one("X-Content-Type-Options"),
        Some("nosniff"),
        "{what}"
    );
}

#[rocket::async_test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let slug = ann.create_post("Hello", "Words.", true).await;
    let anon = app.new_browser().await;

    let gets: Vec<(&Browser, String)> = vec![
        (&anon, "/".into()),
        (&anon, format!("/posts/{slug}")),
        (&anon, "/posts/nothing-here".into()),
        (&anon, "/login".into()),
        (&anon, "/signup".into()),
        (&anon, "/dashboard".into()),
        (&anon, "/feed.xml".into()),
        (&anon, "/healthz".into()),
        (&anon, "/static/style.css".into()),
        (&ann, "/dashboard".into()),
        (&ann, "/account".into()),
        (&ann, format!("/posts/{slug}/edit")),
    ];
    for (b, path) in gets {
        let res = b.get(&path).await;
        assert_security_headers(&res, &format!("GET {path} ({})", res.status()));
    }
    let res = anon.post_raw("/login", "email=a&password=b").await;
    assert_eq!(res.status(), Status::Forbidden);
    assert_security_headers(&res, "POST /login without a token");
    let res = ann.submit_post("", "", false).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    assert_security_headers(&res, "POST /posts with errors");
    let res = ann.submit_post("Second", "b", false).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_security_headers(&res, "POST /posts redirect");
}

#[rocket::async_test]
async fn a_huge_post_is_refused_and_the_site_keeps_serving() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let token = ann.csrf_token().await;
    let huge = "a".repeat(10 * 1024 * 1024);
    let body = format!(
        "{}&body={huge}",
        encode(&[("csrf_token", &token), ("title", "Huge")])
    );
    let res = ann.post_raw("/posts", &body).await;
    assert_eq!(res.status(), Status::PayloadTooLarge);
    let page = res.into_string().await.unwrap_or_default();
    assert!(page.contains(r#"<header class="site-header">"#), "{page}");
    assert!(page.contains("larger than this site accepts"), "{page}");
    assert_eq!(post_count(&app).await, 0);

    assert_eq!(app.get("/").await.status(), Status::Ok);
    assert!(ann.is_logged_in().await);
}

#[rocket::async_test]
async fn a_huge_signup_is_refused_and_the_site_keeps_serving() {
    let app = TestApp::spawn().await;
    let token = app.csrf_token().await;
    let huge = "a".repeat(10 * 1024 * 1024);
    let body = format!(
        "{}&name={huge}",
        encode(&[
            ("csrf_token", &token),
            ("email", "big@example.com"),
            ("password", PASSWORD)
        ])
    );
    let res = app.post_raw("/signup", &body).await;
    assert_eq!(res.status(), Status::PayloadTooLarge);
    let page = res.into_string().await.unwrap_or_default();
    assert!(page.contains(r#"<header class="site-header">"#), "{page}");
    assert!(page.contains("Too large"), "{page}");
    assert_eq!(user_count(&app).await, 0);
    assert_eq!(app.get("/").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn a_body_over_the_post_limit_is_sent_back_with_the_title_kept() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let long = "a".repeat(200_001);
    let res = ann.submit_post("My long essay", &long, true).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap();
    assert!(
        page.contains("The body is over 200000 characters."),
        "message missing"
    );
    assert!(page.contains(r#"value="My long essay""#), "title not kept");
    assert_eq!(post_count(&app).await, 0);

    // Exactly at the limit is fine.
    let at_limit = "a".repeat(200_000);
    let res = ann.submit_post("At the limit", &at_limit, false).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(post_count(&app).await, 1);
}

#[rocket::async_test]
async fn a_login_in_another_format_does_not_break_the_server() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Ann").await;
    let b = app.new_browser().await;
    let token = b.csrf_token().await;
    let json = format!(r#"{{"csrf_token":"{token}","email":"{email}","password":"{PASSWORD}"}}"#);
    for (ct, body) in [
        (Some(ContentType::JSON), json.clone()),
        (Some(ContentType::Plain), json.clone()),
        (
            Some(ContentType::FormData),
            "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--\r\n".into(),
        ),
        (None, json.clone()),
        (Some(ContentType::Form), "%%%&&&==&csrf_token".into()),
        (Some(ContentType::Form), String::new()),
    ] {
        let mut req = b.client.post("/login").body(body);
        if let Some(ct) = ct.clone() {
            req = req.header(ct);
        }
        let res = req.dispatch().await;
        assert!(
            res.status().code < 500,
            "{ct:?} to /login gave {}",
            res.status()
        );
        assert!(!b.is_logged_in().await);
    }
    assert_eq!(app.get("/").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn hostile_urls_never_cause_a_server_error() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    ann.create_post("Hello", "Words.", true).await;
    let urls = [
        "/posts/%00",
        "/posts/%00/edit",
        "/posts/../../etc/passwd",
        "/posts/..%2F..%2Fetc%2Fpasswd",
        "/posts/%FF%FE",
        "/posts/%",
        "/posts/<script>",
        "/posts/a'%20OR%20'1'='1",
        "/?page=-1",
        "/?page=0",
        "/?page=abc",
        "/?page=99999999999999999999",
        "/?page=9223372036854775807",
        "/?page=1000000",
        "/?page=2",
        "/login?next=%00",
        "/login?next=//evil.example",
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/account/sessions/abc/end",
        "/%",
        "/\u{0}",
    ];
    let long = format!("/posts/{}", "a".repeat(10_000));
    for b in [&app.browser, &ann] {
        for url in urls.iter().copied().chain([long.as_str()]) {
            let res = b.get(url).await;
            assert!(res.status().code < 500, "GET {url:?} gave {}", res.status());
        }
    }
    let res = app.get("/static/../Cargo.toml").await;
    let body = res.into_string().await.unwrap_or_default();
    assert!(
        !body.contains("[package]"),
        "a file outside static/ was served"
    );
    assert_eq!(app.get("/").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn an_author_with_a_draft_gets_no_server_error() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let slug = ann.create_post("Not yet", "Still thinking.", false).await;
    for path in [
        "/dashboard".to_string(),
        format!("/posts/{slug}"),
        format!("/posts/{slug}/edit"),
    ] {
        let (status, page) = ann.get_text(&path).await;
        assert_eq!(status, Status::Ok, "GET {path}");
        assert!(page.contains("Not yet"), "GET {path}: {page}");
    }
    assert_eq!(
        app.get(&format!("/posts/{slug}")).await.status(),
        Status::NotFound
    );
}

#[rocket::async_test]
async fn the_stylesheet_is_served_as_css() {
    let app = TestApp::spawn().await;
    let res = app.get("/static/style.css").await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.content_type(), Some(ContentType::CSS));
    let css = res.into_string().await.unwrap();
    assert!(css.contains(":root"), "{css}");
}

#[rocket::async_test]
async fn head_of_the_home_page_works() {
    let app = TestApp::spawn().await;
    let res = app.client.head("/").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.content_type(), Some(ContentType::HTML));
    assert_security_headers(&res, "HEAD /");
    let body = res.into_string().await.unwrap_or_default();
    assert!(body.is_empty(), "HEAD returned a body");
}

#[rocket::async_test]
async fn a_nul_character_in_a_form_is_refused_without_a_server_error() {
    let app = TestApp::spawn().await;
    let (alice, email) = app.author("Alice").await;
    let res = alice.submit_post("bad\0title", "x", false).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let res = app.login(&format!("{email}\0"), PASSWORD).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    assert_eq!(post_count(&app).await, 0, "nothing was saved");
    assert_eq!(alice.get("/dashboard").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn flash_messages_survive_a_return_from_another_site() {
    let app = TestApp::spawn().await;
    let res = app.signup(&unique_email("flash"), "Flo", PASSWORD).await;
    let flash = set_cookie(&res, "_flash").expect("a welcome message");
    // Strict would be dropped when the redirect chain began at the IdP.
    assert!(flash.contains("SameSite=Lax"), "{flash}");
    assert!(set_cookie(&res, "quire_session").is_some());
}
