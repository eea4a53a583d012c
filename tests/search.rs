//! A reader searches the blog from the box in the header: best matches first, the words
//! they typed highlighted, only public posts, and no query that breaks the page.

use regex::Regex;
use rocket::http::Status;

use crate::common::*;

/// The result titles on a search page, best first, as text (highlighting removed).
fn result_titles(page: &str) -> Vec<String> {
    let re = Regex::new(r#"<h2><a href="/posts/[^"]+">(.*?)</a></h2>"#).unwrap();
    re.captures_iter(page)
        .map(|c| unescape(&c[1].replace("<mark>", "").replace("</mark>", "")))
        .collect()
}

/// The snippets on a search page, as HTML.
fn snippets(page: &str) -> Vec<String> {
    let re = Regex::new(r#"(?s)<p class="snippet">(.*?)</p>"#).unwrap();
    re.captures_iter(page).map(|c| c[1].to_string()).collect()
}

/// The search page for `q`.
async fn search(b: &Browser, q: &str) -> (Status, String) {
    b.get_text(&format!("/search?q={}", urlencode(q))).await
}

#[rocket::async_test]
async fn a_title_match_ranks_above_body_only_matches_and_words_are_highlighted() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    alice
        .create_post(
            "River notes",
            "An otter swam by. Then another otter, and a third otter.",
            true,
        )
        .await;
    alice
        .create_post("The otter", "A short note about a mammal.", true)
        .await;
    alice
        .create_post("Unrelated", "Nothing to see here.", true)
        .await;

    let (status, page) = search(&app, "Otter").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(result_titles(&page), ["The otter", "River notes"], "{page}");
    assert!(page.contains("<mark>otter</mark>"), "{page}");
    let snippets = snippets(&page);
    assert!(
        snippets[1].contains("An <mark>otter</mark> swam by"),
        "{snippets:?}"
    );
}

#[rocket::async_test]
async fn phrases_or_and_exclusions_work_as_on_a_search_engine() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    alice
        .create_post("Orchard", "We picked red apples today.", true)
        .await;
    alice
        .create_post("Colours", "The apples were green, the barn red.", true)
        .await;
    alice
        .create_post("Garage", "Two red cars and a bicycle.", true)
        .await;

    let mut phrase = result_titles(&search(&app, "\"red apples\"").await.1);
    phrase.sort();
    assert_eq!(phrase, ["Orchard"]);
    let mut words = result_titles(&search(&app, "red apples").await.1);
    words.sort();
    assert_eq!(words, ["Colours", "Orchard"]);
    let mut excluded = result_titles(&search(&app, "red -cars").await.1);
    excluded.sort();
    assert_eq!(excluded, ["Colours", "Orchard"]);
    let mut excluded_phrase = result_titles(&search(&app, "red -\"red apples\"").await.1);
    excluded_phrase.sort();
    assert_eq!(excluded_phrase, ["Colours", "Garage"]);
    let mut either = result_titles(&search(&app, "bicycle OR orchard").await.1);
    either.sort();
    assert_eq!(either, ["Garage", "Orchard"]);
    // Case does not matter, and a word must match whole.
    assert_eq!(result_titles(&search(&app, "BICYCLE").await.1), ["Garage"]);
    let (status, none) = search(&app, "bicycles").await;
    assert_eq!(status, Status::Ok);
    assert!(result_titles(&none).is_empty(), "{none}");
    assert!(none.contains("No results for “bicycles”."), "{none}");
}

#[rocket::async_test]
async fn quotes_operators_and_punctuation_never_break_the_page() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    alice
        .create_post("Title x", "near and or not: apples (and pears)", true)
        .await;
    for q in [
        "\"",
        "\"\"",
        "'",
        "''",
        "*",
        "-",
        "--",
        "(",
        ")",
        "()",
        "NEAR(apples pears)",
        "title:x",
        "title:",
        "apples*",
        "^apples",
        "AND",
        "OR",
        "NOT",
        "or apples or",
        "apples OR",
        "apples AND NOT",
        "-apples",
        "\"unclosed apples",
        "apples\"",
        "!!!",
        "...",
        "\\",
        "%",
        "_",
        "&",
        "|",
        "!apples",
        "apples & pears | x",
        "a:1 b<->c",
        "'; DROP TABLE posts; --",
        "\u{0}",
        "apples\u{0}pears",
        "\u{E000}apples\u{E001}",
        "🍎",
        "ß",
    ] {
        let (status, page) = search(&app, q).await;
        assert!(
            status == Status::Ok || status == Status::UnprocessableEntity,
            "{q:?} gave {status}"
        );
        assert!(
            !result_titles(&page).is_empty() || page.contains("No results"),
            "{q:?} says neither results nor no results: {page}"
        );
    }
    // Odd addresses: bytes that are not UTF-8, repeated or malformed parameters.
    for path in [
        "/search?q=%FF%FE",
        "/search?q=%",
        "/search?q=apples&page=abc",
        "/search?q=apples&page=99999999999999999999",
        "/search?q=apples&q=pears",
        "/search?q",
        "/search?page=2",
    ] {
        let status = app.get(path).await.status();
        assert!(status.code < 500, "{path} gave {status}");
    }
    // Operator words are searched as words.
    assert_eq!(result_titles(&search(&app, "NEAR").await.1), ["Title x"]);
    // Only punctuation, or only exclusions: nothing to look for, and the page says so.
    let (status, page) = search(&app, "!!! ??? \"\"").await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        page.contains("No results: search for at least one word"),
        "{page}"
    );
    assert_eq!(post_count(&app).await, 1, "the posts table is still there");
}

#[rocket::async_test]
async fn a_ten_kilobyte_query_is_refused_with_a_message_and_kept() {
    let app = TestApp::spawn().await;
    let q = "apples ".repeat(1463); // 10 241 bytes
    let (status, page) = search(&app, &q).await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        page.contains("That search is too long: use at most 200 characters"),
        "{page}"
    );
    assert_eq!(field_value(&page, "q").as_deref(), Some(q.as_str()));
    // At the limit it is searched.
    let q = "a".repeat(200);
    let (status, page) = search(&app, &q).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("No results for"), "{page}");
}

#[rocket::async_test]
async fn drafts_are_never_found_not_even_by_their_author() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    alice
        .create_post("Public walrus", "walrus facts", true)
        .await;
    alice
        .create_post("Secret walrus", "walrus plans", false)
        .await;
    bob.create_post("Bob's walrus draft", "walrus too", false)
        .await;
    for browser in [&*app, &alice, &bob] {
        let (status, page) = search(browser, "walrus").await;
        assert_eq!(status, Status::Ok);
        assert_eq!(result_titles(&page), ["Public walrus"], "{page}");
        assert!(!page.contains("plans"), "{page}");
        let (_, page) = search(browser, "secret OR draft OR plans").await;
        assert!(result_titles(&page).is_empty(), "{page}");
    }
}

#[rocket::async_test]
async fn a_scheduled_post_is_found_once_it_is_due_and_not_before() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    alice
        .create_post("Old narwhal", "narwhal notes", true)
        .await;
    let fields = [
        ("title", "Narwhal launch"),
        ("body", "narwhal news, embargoed"),
        ("publish", "true"),
        ("publish_at", "2099-01-01T09:00"),
    ];
    let res = alice.post_form("/posts", &fields).await;
    assert_eq!(res.status(), Status::SeeOther);
    let slug = location(&res).trim_start_matches("/posts/").to_string();
    for browser in [&*app, &alice] {
        let (status, page) = search(browser, "narwhal").await;
        assert_eq!(status, Status::Ok);
        assert_eq!(result_titles(&page), ["Old narwhal"], "{page}");
        assert!(result_titles(&search(browser, "embargoed").await.1).is_empty());
    }

    set_published_at(&app, &slug, unix_now() - 1).await;
    let (_, page) = search(&app, "embargoed").await;
    assert_eq!(result_titles(&page), ["Narwhal launch"], "{page}");
    assert_eq!(result_titles(&search(&app, "narwhal").await.1).len(), 2);
}

#[rocket::async_test]
async fn edits_unpublishing_and_deletion_show_in_search_at_once() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = alice
        .create_post("First title", "about pelicans", true)
        .await;
    assert_eq!(
        result_titles(&search(&app, "pelicans").await.1),
        ["First title"]
    );

    let res = alice
        .edit_post(&slug, "Second title", "about herons", true)
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(result_titles(&search(&app, "pelicans OR first").await.1).is_empty());
    assert_eq!(
        result_titles(&search(&app, "herons").await.1),
        ["Second title"]
    );

    alice
        .edit_post(&slug, "Second title", "about herons", false)
        .await;
    assert!(result_titles(&search(&app, "herons").await.1).is_empty());
    alice
        .edit_post(&slug, "Second title", "about herons", true)
        .await;
    assert_eq!(result_titles(&search(&app, "herons").await.1).len(), 1);

    let res = alice.post_form(&format!("/posts/{slug}/delete"), &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(result_titles(&search(&app, "herons OR second").await.1).is_empty());
}

#[rocket::async_test]
async fn markup_in_posts_and_queries_is_shown_as_text() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    alice
        .create_post(
            "<script>alert('title')</script> Heron",
            "A heron. <img src=x onerror=alert(1)> `<b>code heron</b>` &lt;i&gt;heron&lt;/i&gt;",
            true,
        )
        .await;
    let q = "heron OR \"><img src=x onerror=alert(2)>\" OR <script>alert(1)</script>";
    let (status, page) = search(&app, q).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(result_titles(&page).len(), 1, "{page}");
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(!page.contains("<img src=\"x\""), "{page}");
    assert!(!page.contains("<b>code"), "{page}");
    assert!(!page.contains("<i>heron"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "title escaped: {page}");
    let snippet = &snippets(&page)[0];
    assert!(snippet.contains("<mark>heron</mark>"), "{snippet}");
    assert!(
        snippet.contains("&lt;b&gt;code <mark>heron</mark>&lt;"),
        "{snippet}"
    );
    // Markup only from the highlighter: every tag in the snippet is a <mark>.
    let tags = Regex::new(r"<(/?)([a-z]+)").unwrap();
    assert!(
        tags.captures_iter(snippet).all(|c| &c[2] == "mark"),
        "{snippet}"
    );
    // The query stays in the box, as text.
    assert_eq!(field_value(&page, "q").as_deref(), Some(q));
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"),
        "{page}"
    );
}

#[rocket::async_test]
async fn results_are_paginated_and_the_query_kept_in_the_header_box() {
    let app = TestApp::spawn().await;
    let (_alice, email) = app.author("Alice").await;
    // Posts written straight to the table, as another program would: their Markdown
    // is what gets indexed.
    insert_posts(&app, app.user_id(&email).await, 23).await;

    let (status, one) = search(&app, "body").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(result_titles(&one).len(), 10, "{one}");
    assert!(
        unescape(&one).contains(r#"href="/search?q=body&page=2" rel="next""#),
        "{one}"
    );
    assert!(!one.contains("rel=\"prev\""), "{one}");
    assert!(
        one.contains(
            r#"id="site-search-q" name="q" placeholder="Search" maxlength="200" value="body""#
        ),
        "the header's box keeps the query: {one}"
    );
    let (_, two) = app.get_text("/search?q=body&page=2").await;
    let (_, three) = app.get_text("/search?q=body&page=3").await;
    assert_eq!(result_titles(&two).len(), 10);
    assert_eq!(result_titles(&three).len(), 3);
    assert!(three.contains("rel=\"prev\""), "{three}");
    assert!(!three.contains("rel=\"next\""), "{three}");
    let mut all: Vec<String> = [one, two, three]
        .iter()
        .flat_map(|p| result_titles(p))
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 23, "every post once: {all:?}");
    for page in [
        "/search?q=body&page=4",
        "/search?q=body&page=0",
        "/search?q=body&page=-1",
    ] {
        assert_eq!(app.get(page).await.status(), Status::NotFound, "{page}");
    }
    // A body word of one post finds only it, whatever the page size.
    assert_eq!(result_titles(&search(&app, "17").await.1), ["Post 017"]);
}

#[rocket::async_test]
async fn every_page_has_the_search_box_and_an_empty_search_shows_the_form() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = alice.create_post("Hello", "world", true).await;
    for path in [
        "/".to_string(),
        format!("/posts/{slug}"),
        "/login".into(),
        "/nowhere".into(),
    ] {
        let (_, page) = app.get_text(&path).await;
        assert!(
            page.contains(
                r#"<form method="get" action="/search" class="site-search" role="search">"#
            ),
            "{path}: {page}"
        );
    }
    for path in ["/search", "/search?q=", "/search?q=%20%20"] {
        let (status, page) = app.get_text(path).await;
        assert_eq!(status, Status::Ok, "{path}");
        assert!(
            page.contains("<h1 class=\"page-title\">Search</h1>"),
            "{page}"
        );
        assert!(result_titles(&page).is_empty());
    }
    // Results pages are not for search engines to index.
    let (_, page) = search(&app, "world").await;
    assert!(
        page.contains(r#"<meta name="robots" content="noindex">"#),
        "{page}"
    );
}
