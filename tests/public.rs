//! What readers see without an account: the home page and its pages, posts, the feed,
//! the error pages, the stylesheet and the health check.

use regex::Regex;
use rocket::http::{ContentType, Status};

use crate::common::*;

/// The post titles listed on a home page, in order.
fn listed_titles(page: &str) -> Vec<String> {
    let re = Regex::new(r#"<h2><a href="/posts/[^"]+">([^<]*)</a></h2>"#).unwrap();
    re.captures_iter(page).map(|c| c[1].to_string()).collect()
}

fn titles(range: impl Iterator<Item = i64>) -> Vec<String> {
    range.map(|i| format!("Post {i:03}")).collect()
}

#[rocket::async_test]
async fn home_lists_published_posts_newest_first_with_author_and_date() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice Author").await;
    let (bob, _) = app.author("Bob Blogger").await;
    // Written first but published later: the order follows publication, not creation.
    let late = alice.create_post("Written first", "a", true).await;
    let early = bob.create_post("Written second", "b", true).await;
    alice.create_post("Unfinished", "c", false).await;
    set_published_at(&app, &late, 1_710_000_000).await; // 9 Mar 2024, 16:00 UTC
    set_published_at(&app, &early, 1_700_000_000).await; // 14 Nov 2023, 22:13 UTC

    let (status, home) = app.get_text("/").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(
        listed_titles(&home),
        ["Written first", "Written second"],
        "{home}"
    );
    assert!(visible_text(&home).contains("By Alice Author"), "{home}");
    assert!(visible_text(&home).contains("By Bob Blogger"), "{home}");
    assert!(home.contains("9 Mar 2024"), "{home}");
    assert!(home.contains("14 Nov 2023"), "{home}");
    assert!(
        home.contains("datetime=\"2024-03-09T16:00:00Z\""),
        "machine-readable date: {home}"
    );
    assert!(!home.contains("Unfinished"), "{home}");
    assert!(!home.contains("rel=\"next\""), "one page only: {home}");

    let (status, page) = app.get_text(&format!("/posts/{early}")).await;
    assert_eq!(status, Status::Ok);
    assert!(visible_text(&page).contains("By Bob Blogger"), "{page}");
    assert!(page.contains("14 Nov 2023"), "{page}");
}

#[rocket::async_test]
async fn an_empty_blog_says_so() {
    let app = TestApp::spawn().await;
    let (status, home) = app.get_text("/").await;
    assert_eq!(status, Status::Ok);
    assert!(home.contains("Nothing has been published yet."), "{home}");
    let (status, _) = app.get_text("/?page=2").await;
    assert_eq!(status, Status::NotFound);
}

#[rocket::async_test]
async fn the_home_page_shows_twenty_posts_a_page() {
    let app = TestApp::spawn().await;
    let (alice, email) = app.author("Alice").await;
    insert_posts(&app, app.user_id(&email).await, 45).await;
    let draft = alice.create_post("A draft", "not listed", false).await;
    set_published_at(&app, &draft, 1_800_000_000).await;

    let (status, one) = app.get_text("/").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(listed_titles(&one), titles((26..=45).rev()), "{one}");
    // "Older posts" goes by cursor; numbered pages keep working.
    assert!(
        unescape(&one).contains("href=\"/?before=") && one.contains("rel=\"next\""),
        "{one}"
    );
    assert!(!one.contains("rel=\"prev\""), "{one}");
    let (status, same) = app.get_text("/?page=1").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(listed_titles(&same), listed_titles(&one));

    let (status, two) = app.get_text("/?page=2").await;
    let two = unescape(&two);
    assert_eq!(status, Status::Ok);
    assert_eq!(listed_titles(&two), titles((6..=25).rev()), "{two}");
    assert!(
        two.contains("href=\"/?before=") && two.contains("rel=\"next\""),
        "{two}"
    );
    assert!(two.contains("href=\"/?page=1\" rel=\"prev\""), "{two}");
    assert!(two.contains("Older posts, page 2"), "{two}");

    let (status, three) = app.get_text("/?page=3").await;
    let three = unescape(&three);
    assert_eq!(status, Status::Ok);
    assert_eq!(listed_titles(&three), titles((1..=5).rev()), "{three}");
    assert!(!three.contains("Older posts →"), "{three}");
    assert!(!three.contains("rel=\"next\""), "{three}");
    assert!(three.contains("href=\"/?page=2\" rel=\"prev\""), "{three}");

    let (status, four) = app.get_text("/?page=4").await;
    assert_eq!(status, Status::NotFound);
    assert!(four.contains("Page not found"), "{four}");
}

#[rocket::async_test]
async fn a_page_number_out_of_range_is_not_found_and_garbage_never_fails() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Alice").await;
    insert_posts(&app, app.user_id(&email).await, 3).await;
    for page in ["0", "-3", "2", "1000001", "9223372036854775807"] {
        let (status, body) = app.get_text(&format!("/?page={page}")).await;
        assert_eq!(status, Status::NotFound, "page={page}");
        assert!(body.contains("Page not found"), "page={page}: {body}");
    }
    for page in ["abc", "", "1.5", "99999999999999999999", "%00", "1e3"] {
        let (status, body) = app.get_text(&format!("/?page={page}")).await;
        assert!(
            status == Status::Ok || status == Status::NotFound,
            "page={page}: {status}"
        );
        if status == Status::Ok {
            assert_eq!(
                listed_titles(&body),
                titles((1..=3).rev()),
                "page={page} as page 1"
            );
        }
    }
}

#[rocket::async_test]
async fn an_unknown_post_gets_the_themed_not_found_page() {
    let app = TestApp::spawn().await;
    for path in ["/posts/no-such-post", "/no/such/page"] {
        let (status, page) = app.get_text(path).await;
        assert_eq!(status, Status::NotFound, "{path}");
        assert!(page.contains("Page not found"), "{path}: {page}");
        assert!(page.contains("<nav aria-label=\"Main\""), "{path}: {page}");
        assert!(
            page.contains("href=\"/static/style.css\""),
            "{path}: {page}"
        );
        assert!(page.contains("Back to the home page"), "{path}: {page}");
    }
    let (alice, _) = app.author("Alice").await;
    let (status, page) = alice.get_text("/posts/no-such-post/edit").await;
    assert_eq!(status, Status::NotFound);
    assert!(page.contains("Page not found"), "{page}");
    assert!(
        page.contains("Dashboard"),
        "the nav knows who is here: {page}"
    );
}

#[rocket::async_test]
async fn the_feed_is_atom_with_one_entry_per_published_post() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let first = alice.create_post("Feed one", "First *entry*.", true).await;
    let second = alice.create_post("Feed two & more", "Second.", true).await;
    let draft = alice.create_post("Feed draft", "Hidden.", false).await;
    set_published_at(&app, &first, 1_700_000_000).await;

    let res = app.get("/feed.xml").await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(
        res.content_type(),
        Some(ContentType::new("application", "atom+xml"))
    );
    let xml = res.into_string().await.unwrap_or_default();
    assert!(
        xml.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<entry>").count(), 2, "{xml}");
    assert!(!xml.contains("Feed draft"), "{xml}");
    assert!(!xml.contains(&format!("/posts/{draft}")), "{xml}");
    let title = |t: &str| Regex::new(&format!("<title[^>]*>{}</title>", regex::escape(t))).unwrap();
    assert!(title("Feed one").is_match(&xml), "{xml}");
    assert!(title("Feed two &amp; more").is_match(&xml), "{xml}");
    for slug in [&first, &second] {
        let link = Regex::new(&format!(
            r#"href="https?://[^"/]+/posts/{}""#,
            regex::escape(slug)
        ))
        .unwrap();
        assert!(link.is_match(&xml), "absolute link to {slug}: {xml}");
    }

    let feed: atom_syndication::Feed = xml.parse().expect("the feed parses as Atom");
    let entries: Vec<(String, String)> = feed
        .entries()
        .iter()
        .map(|e| (e.title().value.clone(), e.links()[0].href().to_string()))
        .collect();
    assert_eq!(entries.len(), 2, "{xml}");
    assert_eq!(entries[0].0, "Feed two & more", "newest first: {xml}");
    assert_eq!(entries[1].0, "Feed one", "{xml}");
    assert!(entries[1].1.ends_with(&format!("/posts/{first}")), "{xml}");
    assert!(entries[1].1.starts_with("http"), "{xml}");
    let content = feed.entries()[1]
        .content()
        .and_then(|c| c.value())
        .unwrap_or_default();
    assert!(content.contains("<em>entry</em>"), "{content}");
}

#[rocket::async_test]
async fn health_check_answers_ok() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get_text("/healthz").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(body.trim(), "ok");
}

#[rocket::async_test]
async fn the_stylesheet_is_served_and_nothing_is_loaded_from_elsewhere() {
    let app = TestApp::spawn().await;
    let res = app.get("/static/style.css").await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.content_type(), Some(ContentType::CSS));
    let css = res.into_string().await.unwrap_or_default();
    assert!(css.contains('{'), "{css}");
    let (status, _) = app.get_text("/static/no-such.css").await;
    assert_eq!(status, Status::NotFound);

    let (alice, _) = app.author("Alice").await;
    let slug = alice.create_post("Styled", "Text.", true).await;
    let tag = Regex::new(r"(?i)<(link|script|img|iframe)\b[^>]*>").unwrap();
    let url = Regex::new(r#"(?i)\b(?:href|src)\s*=\s*"([^"]*)""#).unwrap();
    for path in ["/".to_string(), format!("/posts/{slug}")] {
        let (_, page) = app.get_text(&path).await;
        assert!(
            page.contains("<link rel=\"stylesheet\" href=\"/static/style.css\">"),
            "{path}: {page}"
        );
        // A canonical link names this page's public address; the browser loads nothing.
        for t in tag
            .find_iter(&page)
            .filter(|t| !t.as_str().contains("rel=\"canonical\""))
        {
            for u in url.captures_iter(t.as_str()) {
                let u = &u[1];
                assert!(
                    u.starts_with('/') && !u.starts_with("//"),
                    "{path} loads {u} from elsewhere: {}",
                    t.as_str()
                );
            }
        }
    }
}

#[rocket::async_test]
async fn every_page_has_a_language_and_a_title() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    let slug = alice.create_post("Titled", "Body.", true).await;
    let html_lang = Regex::new(r#"<html lang="en">"#).unwrap();
    let title = Regex::new(r"<title>([^<]*)</title>").unwrap();
    let check = |what: &str, page: &str| {
        assert!(html_lang.is_match(page), "{what}: {page}");
        let t = title
            .captures(page)
            .unwrap_or_else(|| panic!("{what} has no title: {page}"));
        assert!(!t[1].trim().is_empty(), "{what} has an empty title");
    };

    let anonymous = [
        "/".to_string(),
        format!("/posts/{slug}"),
        "/login".into(),
        "/signup".into(),
        "/posts/missing".into(),
    ];
    for path in anonymous {
        let (_, page) = app.get_text(&path).await;
        check(&path, &page);
    }
    let logged_in = [
        "/dashboard".to_string(),
        "/account".into(),
        format!("/posts/{slug}/edit"),
    ];
    for path in logged_in {
        let (status, page) = alice.get_text(&path).await;
        assert_eq!(status, Status::Ok, "{path}");
        check(&path, &page);
    }
    let (status, page) = bob.get_text(&format!("/posts/{slug}/edit")).await;
    assert_eq!(status, Status::Forbidden);
    check("the 403 page", &page);
    let res = alice.post_form("/posts", &[("title", "")]).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    check(
        "a refused form",
        &res.into_string().await.unwrap_or_default(),
    );

    let (_, page) = app.get_text(&format!("/posts/{slug}")).await;
    assert!(
        page.contains("<title>Titled · "),
        "the post's title: {page}"
    );
}

#[rocket::async_test]
async fn the_home_page_query_is_served_by_its_index() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Alice").await;
    insert_posts(&app, app.user_id(&email).await, 30).await;
    let plan = home_query_plan(&app).await;
    assert!(plan.contains("posts_home"), "{plan}");
    assert!(!plan.contains("USE TEMP B-TREE FOR ORDER BY"), "{plan}");
    assert!(!plan.contains("Sort"), "{plan}");
}

#[rocket::async_test]
async fn another_authors_drafts_and_scheduled_posts_are_in_no_listing() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    let post = |title: &'static str, publish_at: Option<&'static str>| {
        let mut fields = vec![
            ("title", title),
            ("body", "Every listing zebra."),
            ("tags", "Stripes"),
        ];
        if publish_at.is_some() || title == "Out now" {
            fields.push(("publish", "true"));
        }
        if let Some(at) = publish_at {
            fields.push(("publish_at", at));
        }
        fields
    };
    let mut hidden = Vec::new();
    for (title, at) in [
        ("Out now", None),
        ("Secret draft", None),
        ("Secret scheduled", Some("2099-01-01T09:00")),
    ] {
        let res = alice.post_form("/posts", &post(title, at)).await;
        assert_eq!(res.status(), Status::SeeOther, "{title}");
        if title != "Out now" {
            hidden.push((title, location(&res)));
        }
    }

    for reader in [&bob, &*app] {
        for path in [
            "/",
            "/?page=1",
            "/tags",
            "/tags/stripes",
            "/tags/stripes/feed.xml",
            "/authors/alice",
            "/authors/alice/feed.xml",
            "/search?q=zebra",
            "/search?q=secret",
            "/feed.xml",
            "/sitemap.xml",
        ] {
            let (status, page) = reader.get_text(path).await;
            assert!(
                status == Status::Ok || status == Status::UnprocessableEntity,
                "{path}"
            );
            if path.contains("zebra") || path.starts_with("/tags/") || path.starts_with("/authors/")
            {
                assert!(page.contains("Out now"), "{path}: {page}");
            }
            for (title, url) in &hidden {
                assert!(!page.contains(title), "{title} on {path}: {page}");
                assert!(!page.contains(url.as_str()), "{url} on {path}: {page}");
            }
        }
        let (_, tags) = reader.get_text("/tags").await;
        assert!(tags.contains("Stripes"), "{tags}");
        assert!(tags.contains(">1 post</span>"), "counted once: {tags}");
    }
}
