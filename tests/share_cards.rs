//! A link to the blog shared on a social site shows a card (title, description, site,
//! author, dates), and search engines find every public page through the sitemap that
//! robots.txt names, and nothing else.

use regex::Regex;
use rocket::http::{ContentType, Header, Status};

use crate::common::*;

const SITE: &str = "https://blog.example";

/// The `content` of `<meta name|property="key">`, as a reader of the card sees it.
fn meta(page: &str, key: &str) -> Option<String> {
    let re = Regex::new(&format!(
        r#"<meta (?:name|property)="{}" content="([^"]*)">"#,
        regex::escape(key)
    ))
    .unwrap();
    re.captures(page).map(|c| unescape(&c[1]))
}

fn canonical(page: &str) -> Option<String> {
    let re = Regex::new(r#"<link rel="canonical" href="([^"]*)">"#).unwrap();
    re.captures(page).map(|c| unescape(&c[1]))
}

/// The `<loc>`s of a sitemap or sitemap index, in order.
fn locs(xml: &str) -> Vec<String> {
    let re = Regex::new(r"<loc>([^<]*)</loc>").unwrap();
    re.captures_iter(xml).map(|c| c[1].to_string()).collect()
}

async fn with_site_url() -> TestApp {
    TestApp::spawn_with(|f| f.merge(("site.url", SITE))).await
}

#[rocket::async_test]
async fn a_post_page_has_a_canonical_link_and_an_article_card() {
    let app = with_site_url().await;
    let (alice, _) = app.author("Alice Author").await;
    // The description is the excerpt's text: here the first paragraph, a long one.
    let body = format!(
        "**Otters** hold hands while they sleep, so that they do not drift apart. {}\n\n\
         - one\n- two\n",
        "More words follow here. ".repeat(20)
    );
    let slug = alice.create_post("Sleeping otters", &body, true).await;
    set_published_at(&app, &slug, 1_710_000_000).await;

    let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    let url = format!("{SITE}/posts/{slug}");
    assert_eq!(canonical(&page), Some(url.clone()));
    assert_eq!(meta(&page, "og:url"), Some(url));
    assert_eq!(meta(&page, "og:title").as_deref(), Some("Sleeping otters"));
    assert_eq!(
        meta(&page, "twitter:title").as_deref(),
        Some("Sleeping otters")
    );
    assert_eq!(meta(&page, "og:site_name").as_deref(), Some("quire"));
    assert_eq!(meta(&page, "og:type").as_deref(), Some("article"));
    assert_eq!(meta(&page, "twitter:card").as_deref(), Some("summary"));
    assert_eq!(
        meta(&page, "article:published_time").as_deref(),
        Some("2024-03-09T16:00:00Z")
    );
    assert!(meta(&page, "article:modified_time").is_some(), "{page}");
    assert_eq!(
        meta(&page, "article:author").as_deref(),
        Some("Alice Author")
    );

    let description = meta(&page, "description").expect("description");
    assert!(
        description.starts_with(
            "Otters hold hands while they sleep, so that they do not drift apart. More words"
        ),
        "the text, without Markdown or HTML: {description:?}"
    );
    assert!(description.chars().count() <= 161, "{description:?}");
    assert!(description.ends_with('…'), "{description:?}");
    assert_eq!(meta(&page, "og:description"), Some(description.clone()));
    assert_eq!(meta(&page, "twitter:description"), Some(description));
    assert!(
        !page.contains("name=\"robots\""),
        "a public post is indexed: {page}"
    );
}

#[rocket::async_test]
async fn card_values_are_escaped() {
    let app = with_site_url().await;
    let alice = app.new_browser().await;
    let name = "Eve \"><script>alert(1)</script>";
    let res = alice.signup(&unique_email("eve"), name, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    let slug = alice
        .create_post(
            "\"><script>alert(2)</script>",
            "<script>alert(3)</script>\n\n\"quoted\" <b onclick=x>text</b> & more",
            true,
        )
        .await;
    let (_, page) = app.get_text(&format!("/posts/{slug}")).await;
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("\"><script"), "{page}");
    assert_eq!(
        meta(&page, "og:title").as_deref(),
        Some("\"><script>alert(2)</script>")
    );
    assert_eq!(
        meta(&page, "article:author").as_deref(),
        Some("Eve \"><script>alert(1)</script>")
    );
    assert_eq!(
        meta(&page, "description").as_deref(),
        Some("\"quoted\" text & more")
    );
}

#[rocket::async_test]
async fn other_pages_have_a_website_card_and_a_canonical_link() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("site.url", SITE))
            .merge(("site.title", "Field notes"))
            .merge(("site.description", "Notes <from> the field"))
    })
    .await;
    let (_, home) = app.get_text("/?utm_source=feed").await;
    assert_eq!(canonical(&home).as_deref(), Some("https://blog.example/"));
    assert_eq!(meta(&home, "og:type").as_deref(), Some("website"));
    assert_eq!(meta(&home, "og:title").as_deref(), Some("Field notes"));
    assert_eq!(meta(&home, "og:site_name").as_deref(), Some("Field notes"));
    assert_eq!(
        meta(&home, "description").as_deref(),
        Some("Notes <from> the field")
    );
    assert!(
        home.contains("content=\"Notes &lt;from&gt; the field\""),
        "{home}"
    );
    assert!(meta(&home, "article:published_time").is_none(), "{home}");

    let (_, alice_email) = app.author("Alice").await;
    insert_posts(&app, app.user_id(&alice_email).await, 21).await;
    let (_, two) = app.get_text("/?page=2&ref=x").await;
    assert_eq!(
        canonical(&two).as_deref(),
        Some("https://blog.example/?page=2")
    );

    // An error page names no address of its own: it reads the same whatever was asked.
    let (status, missing) = app.get_text("/posts/no-such-post").await;
    assert_eq!(status, Status::NotFound);
    assert_eq!(canonical(&missing), None, "{missing}");
    assert_eq!(meta(&missing, "og:url"), None, "{missing}");
    assert!(missing.contains(r#"<meta name="robots" content="noindex">"#));

    // Without site.url: a description from the title, and links never from a forged Host.
    let plain = TestApp::spawn().await;
    let res = plain
        .client
        .get("/")
        .header(Header::new("Host", "evil.example"))
        .dispatch()
        .await;
    let page = res.into_string().await.unwrap();
    let url = canonical(&page).unwrap();
    assert!(!url.contains("evil"), "{url}");
    assert!(url.starts_with("http://") && url.ends_with('/'), "{url}");
    assert_eq!(
        meta(&page, "description").as_deref(),
        Some("Latest posts from quire.")
    );
}

#[rocket::async_test]
async fn the_sitemap_lists_exactly_the_public_posts() {
    let app = with_site_url().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    let one = alice.create_post("One", "public", true).await;
    let two = bob.create_post("Two", "public", true).await;
    let draft = alice.create_post("Draft", "not yet", false).await;
    let bobs_draft = bob.create_post("Bob's draft", "not yet", false).await;
    let unpublished = alice.create_post("Withdrawn", "was public", true).await;
    alice
        .edit_post(&unpublished, "Withdrawn", "was public", false)
        .await;
    let gone = bob.create_post("Gone", "deleted", true).await;
    bob.post_form(&format!("/posts/{gone}/delete"), &[]).await;
    set_published_at(&app, &one, 1_700_000_000).await;

    let lastmods = Regex::new(r"<lastmod>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</lastmod>").unwrap();
    // Whoever asks, crawlers get the same public list.
    for browser in [&*app, &alice] {
        let res = browser.get("/sitemap.xml").await;
        assert_eq!(res.status(), Status::Ok);
        assert_eq!(res.content_type(), Some(ContentType::XML));
        let xml = res.into_string().await.unwrap();
        assert!(
            xml.contains("<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">"),
            "{xml}"
        );
        assert_eq!(
            locs(&xml),
            [
                format!("{SITE}/"),
                format!("{SITE}/posts/{one}"),
                format!("{SITE}/posts/{two}"),
                format!("{SITE}/authors/alice"),
                format!("{SITE}/authors/bob"),
            ],
            "{xml}"
        );
        for hidden in [&draft, &bobs_draft, &unpublished, &gone] {
            assert!(!xml.contains(hidden.as_str()), "{hidden}: {xml}");
        }
        assert_eq!(lastmods.find_iter(&xml).count(), 5, "{xml}");
    }
    let res = app.get("/sitemap.xml").await;
    assert_eq!(
        res.headers().get_one("Cache-Control"),
        Some("public, max-age=300")
    );
}

#[rocket::async_test]
async fn a_large_sitemap_becomes_an_index_of_numbered_sitemaps() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("site.url", SITE))
            .merge(("site.sitemap_max_urls", 3))
    })
    .await;
    let (alice, email) = app.author("Alice").await;
    insert_posts(&app, app.user_id(&email).await, 7).await;
    alice.create_post("A draft", "hidden", false).await;

    let (status, index) = app.get_text("/sitemap.xml").await;
    assert_eq!(status, Status::Ok);
    assert!(index.contains("<sitemapindex"), "{index}");
    assert_eq!(
        locs(&index),
        (1..=3)
            .map(|n| format!("{SITE}/sitemaps/{n}.xml"))
            .collect::<Vec<_>>()
    );
    let mut all = Vec::new();
    for n in 1..=3 {
        let (status, part) = app.get_text(&format!("/sitemaps/{n}.xml")).await;
        assert_eq!(status, Status::Ok);
        assert!(part.contains("<urlset"), "{part}");
        let urls = locs(&part);
        assert!(urls.len() <= 3, "{part}");
        all.extend(urls);
    }
    let mut expected = vec![format!("{SITE}/")];
    expected.extend((1..=7).map(|i| format!("{SITE}/posts/post-{i:03}")));
    expected.push(format!("{SITE}/authors/alice"));
    assert_eq!(all, expected);
    for missing in [
        "/sitemaps/4.xml",
        "/sitemaps/0.xml",
        "/sitemaps/x.xml",
        "/sitemaps/1",
    ] {
        assert_eq!(
            app.get(missing).await.status(),
            Status::NotFound,
            "{missing}"
        );
    }
}

#[rocket::async_test]
async fn sitemap_size_outside_the_protocol_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let database = database::TestDatabase::sqlite(dir.path());
    for bad in [0, 50_001] {
        let figment = test_figment(&database).merge(("site.sitemap_max_urls", bad));
        assert_launch_refused(figment, "site.sitemap_max_urls").await;
    }
}

#[rocket::async_test]
async fn robots_txt_allows_everything_and_names_the_sitemap() {
    let app = with_site_url().await;
    let res = app.get("/robots.txt").await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.content_type(), Some(ContentType::Plain));
    assert_eq!(
        res.headers().get_one("Cache-Control"),
        Some("public, max-age=300")
    );
    let body = res.into_string().await.unwrap();
    assert!(body.contains("User-agent: *\nAllow: /\n"), "{body}");
    assert!(
        body.contains("Sitemap: https://blog.example/sitemap.xml\n"),
        "{body}"
    );
}

#[rocket::async_test]
async fn the_sitemap_lists_tag_and_author_pages_with_public_posts_and_scheduled_ones_when_due() {
    let app = with_site_url().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    let tagged =
        |title: &'static str, tags: &'static str, extra: Option<(&'static str, &'static str)>| {
            let mut fields = vec![
                ("title", title),
                ("body", "Words."),
                ("tags", tags),
                ("publish", "true"),
            ];
            fields.extend(extra);
            fields
        };
    let res = alice
        .post_form("/posts", &tagged("Out", "Rust", None))
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let out = location(&res).trim_start_matches("/posts/").to_string();
    set_published_at(&app, &out, 1_700_000_000).await;
    // Bob's only post is scheduled, with a tag nobody else has.
    let later = tagged(
        "Later",
        "Rust, launch",
        Some(("publish_at", "2099-01-01T09:00")),
    );
    let res = bob.post_form("/posts", &later).await;
    assert_eq!(res.status(), Status::SeeOther);
    let scheduled = location(&res).trim_start_matches("/posts/").to_string();
    let draft = [("title", "Draft"), ("body", "Words."), ("tags", "secret")];
    let res = alice.post_form("/posts", &draft).await;
    assert_eq!(res.status(), Status::SeeOther);

    let (status, xml) = app.get_text("/sitemap.xml").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(
        locs(&xml),
        [
            format!("{SITE}/"),
            format!("{SITE}/posts/{out}"),
            format!("{SITE}/tags/rust"),
            format!("{SITE}/authors/alice"),
        ],
        "{xml}"
    );
    assert!(xml.contains("<lastmod>"), "{xml}");

    set_published_at(&app, &scheduled, unix_now() - 1).await;
    let (_, xml) = app.get_text("/sitemap.xml").await;
    assert_eq!(
        locs(&xml),
        [
            format!("{SITE}/"),
            format!("{SITE}/posts/{out}"),
            format!("{SITE}/posts/{scheduled}"),
            format!("{SITE}/tags/rust"),
            format!("{SITE}/tags/launch"),
            format!("{SITE}/authors/alice"),
            format!("{SITE}/authors/bob"),
        ],
        "{xml}"
    );
}

#[rocket::async_test]
async fn a_post_with_an_excerpt_is_described_by_the_excerpt() {
    let app = with_site_url().await;
    let (alice, _) = app.author("Alice").await;
    let fields = [
        ("title", "Long read"),
        ("body", "The opening words of the body.\n\nMore."),
        ("excerpt", "A *short* summary, chosen by hand."),
        ("publish", "true"),
    ];
    let res = alice.post_form("/posts", &fields).await;
    assert_eq!(res.status(), Status::SeeOther);
    let (_, page) = app.get_text(&location(&res)).await;
    let expected = Some("A short summary, chosen by hand.".to_string());
    assert_eq!(meta(&page, "description"), expected, "{page}");
    assert_eq!(meta(&page, "og:description"), expected, "{page}");

    let plain = alice
        .create_post("Plain", "Just the body here.", true)
        .await;
    let (_, page) = app.get_text(&format!("/posts/{plain}")).await;
    assert_eq!(
        meta(&page, "description").as_deref(),
        Some("Just the body here."),
        "{page}"
    );
}
