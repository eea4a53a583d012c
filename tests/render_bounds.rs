//! Story: one author's post cannot stall the site. Bodies shaped to make the Markdown
//! renderer or the HTML sanitizer work for minutes (deep nesting) or to multiply into
//! huge HTML are refused at once with a message that says why, keeping what was typed
//! and saving nothing; big but ordinary bodies are saved with HTML in proportion; and
//! while a heavy render runs, /healthz and the home page keep answering.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::Jar;
use reqwest::StatusCode;
use rocket::http::Status;

use crate::common::*;

/// Far above what a refusal takes (milliseconds), far below what the shapes cost before
/// they were bounded (minutes for the nested quotes).
const REFUSED_WITHIN: Duration = Duration::from_secs(20);

const TOO_DEEP: &str = "may nest at most 64 levels deep";
const TOO_LARGE: &str = "would be more than 10 times its own size";

async fn post_count(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM posts")
        .fetch_one(&*app.db().await)
        .await
        .expect("count posts");
    n
}

/// (body_md, body_html) of the post with `slug`.
async fn stored(app: &TestApp, slug: &str) -> (String, String) {
    sqlx::query_as("SELECT body_md, body_html FROM posts WHERE slug = $1")
        .bind(slug)
        .fetch_one(&*app.db().await)
        .await
        .expect("the post is stored")
}

/// The shapes that cost the renderer or the sanitizer more than their size, each with
/// the refusal it gets.
fn hostile_bodies() -> Vec<(&'static str, String, &'static str)> {
    let open_formatting: String = (0..50).map(|i| format!("<b id=b{i}>")).collect();
    let mut wide_table = "|a".repeat(2000) + "|\n" + &"|-".repeat(2000) + "|\n";
    wide_table.push_str(&"x\n".repeat(20_000));
    vec![
        ("nested quotes", ">".repeat(150_000), TOO_DEEP),
        ("nested numbered lists", "1. ".repeat(50_000), TOO_DEEP),
        ("nested bullet lists", "- + * ".repeat(25_000), TOO_DEEP),
        (
            "nested emphasis",
            "*a ".repeat(20_000) + &"a* ".repeat(20_000),
            TOO_DEEP,
        ),
        ("nested HTML", "<div>".repeat(30_000), TOO_DEEP),
        ("quotes around HTML", "> <div>\n".repeat(20_000), TOO_DEEP),
        ("a wide table of empty rows", wide_table, TOO_LARGE),
        (
            "formatting left open across paragraphs",
            format!("x {open_formatting}{}", "</p><p>x".repeat(20_000)),
            TOO_LARGE,
        ),
    ]
}

#[rocket::async_test]
async fn hostile_bodies_are_refused_at_once_and_nothing_is_saved() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    for (shape, body, message) in hostile_bodies() {
        let started = Instant::now();
        let res = alice
            .post_form(
                "/posts",
                &[
                    ("title", "Stall the site"),
                    ("body", &body),
                    ("publish", "true"),
                ],
            )
            .await;
        let status = res.status();
        let page = res.into_string().await.unwrap_or_default();
        let took = started.elapsed();
        assert_eq!(status, Status::UnprocessableEntity, "{shape}");
        assert!(took < REFUSED_WITHIN, "{shape} took {took:?}");
        assert!(
            page.contains(message),
            "{shape}: {message:?} not in the page"
        );
        assert!(page.contains("The post was not saved."), "{shape}");
        assert!(
            page.contains("value=\"Stall the site\""),
            "{shape}: title kept"
        );
        let typed = rocket::http::RawStr::new(&body[..200]).html_escape();
        assert!(page.contains(&*typed), "{shape}: body kept in the form");
        assert_eq!(post_count(&app).await, 0, "{shape}: nothing saved");
    }
}

#[rocket::async_test]
async fn a_refused_edit_leaves_the_post_as_it_was() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = alice.create_post("Quotes", "> a quote\n", true).await;
    let before = stored(&app, &slug).await;

    let body = "> ".repeat(70_000);
    let res = alice
        .post_form(
            &format!("/posts/{slug}/edit"),
            &[
                ("title", "Quotes, deeper"),
                ("body", &body),
                ("publish", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap_or_default();
    assert!(page.contains(TOO_DEEP), "{page}");
    assert!(page.contains("Your changes were not saved."));
    assert!(page.contains("value=\"Quotes, deeper\""), "title kept");
    assert!(page.contains(&"&gt; ".repeat(100)), "body kept");

    assert_eq!(stored(&app, &slug).await, before);
    let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    assert!(
        page.contains("<h1>Quotes</h1>") && page.contains("a quote"),
        "{page}"
    );
}

#[rocket::async_test]
async fn big_ordinary_bodies_are_saved_with_html_in_proportion() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let mut references = String::new();
    for i in 0..4000 {
        references.push_str(&format!("[r{i}]: https://example.com/{i}\n"));
    }
    for i in 0..4000 {
        references.push_str(&format!("See [r{i}]. "));
    }
    let long_link = format!("[a]: https://example.com/{}\n\n", "x".repeat(2000));
    let bodies = [
        ("brackets", "[".repeat(150_000)),
        ("angle brackets", "<".repeat(150_000)),
        ("ampersands", "&".repeat(150_000)),
        ("alternating emphasis", "*_".repeat(75_000)),
        ("many link references", references),
        ("one long link reused", long_link + &"[a] ".repeat(35_000)),
        ("shallow quotes", "> a\n\n".repeat(30_000)),
    ];
    for (i, (shape, body)) in bodies.iter().enumerate() {
        let slug = alice.create_post(&format!("Big {i}"), body, true).await;
        let (md, html) = stored(&app, &slug).await;
        assert_eq!(&md, body, "{shape}: stored as typed");
        assert!(!html.is_empty(), "{shape}");
        assert!(
            html.len() <= 10 * body.len() + 64 * 1024,
            "{shape}: {} bytes of HTML from {}",
            html.len(),
            body.len()
        );
    }
    assert_eq!(post_count(&app).await, bodies.len() as i64);
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

fn csrf_token_in(page: &str) -> String {
    let re = regex::Regex::new(r#"name="csrf_token" value="([^"]+)""#).unwrap();
    match re.captures(page) {
        Some(c) => c[1].to_string(),
        None => panic!("no csrf_token field in the page:\n{page}"),
    }
}

#[rocket::async_test]
async fn healthz_and_pages_answer_while_a_heavy_post_renders() {
    // quire served over HTTP from this test's runtime, which has one async worker: a
    // render on that worker would hold every other request until it finished.
    let app = TestApp::spawn().await;
    let port = free_port();
    let figment = app
        .figment
        .clone()
        .merge(("address", "127.0.0.1"))
        .merge(("port", port));
    let server = quire::build(figment).ignite().await.expect("quire ignites");
    let shutdown = server.shutdown();
    rocket::tokio::spawn(server.launch());
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .cookie_provider(Arc::new(Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
        .build()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if let Ok(res) = http.get(format!("{base}/healthz")).send().await {
            up = res.status() == StatusCode::OK;
            if up {
                break;
            }
        }
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "quire never answered /healthz on {base}");

    let page = http.get(format!("{base}/signup")).send().await.unwrap();
    let token = csrf_token_in(&page.text().await.unwrap());
    let email = unique_email("Heavy Writer");
    let res = http
        .post(format!("{base}/signup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", &email),
            ("name", "Heavy Writer"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "signup");
    let dashboard = http.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK, "logged in");
    let token = csrf_token_in(&dashboard.text().await.unwrap());

    // Allowed, but slow to render: every `&` becomes an entity the sanitizer re-parses.
    let body = "&".repeat(190_000);
    let heavy = {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        rocket::tokio::spawn(async move {
            let res = http
                .post(format!("{base}/posts"))
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("title", "Ampersands"),
                    ("body", &body),
                    ("publish", "true"),
                ])
                .send()
                .await
                .unwrap();
            (res.status(), res.headers().get("location").cloned())
        })
    };
    // Ask only once a render is under way. (The count is the process's: another test's
    // render may start the asking sooner, which only makes it easier to answer first.)
    while quire::render::renders_running() == 0 {
        if heavy.is_finished() {
            let (status, _) = heavy.await.unwrap();
            panic!("the post was answered ({status}) before anything could run beside its render");
        }
        rocket::tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let home = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let finished_first = heavy.is_finished();
    let (status, location) = heavy.await.unwrap();
    assert!(
        !finished_first,
        "/healthz and / answered only after the heavy render ({status})"
    );
    assert_eq!(status, StatusCode::SEE_OTHER, "the heavy post is saved");
    let location = location.expect("a redirect to the post");
    assert_eq!(location.to_str().unwrap(), "/posts/ampersands");
    assert_eq!(post_count(&app).await, 1);
    shutdown.notify();
}
