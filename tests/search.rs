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
async fn a_ten_kilobyte_query_is_searched_by_its_start_and_kept() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    alice
        .create_post("Apple harvest", "apples and pears", true)
        .await;
    let q = "apples ".repeat(1463); // 10 241 bytes
    let (status, page) = search(&app, &q).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(result_titles(&page), ["Apple harvest"], "{page}");
    assert!(
        page.contains("Only the first 200 characters were searched (the search has 10241)."),
        "{page}"
    );
    assert_eq!(field_value(&page, "q").as_deref(), Some(q.as_str()));
    // Past the cut the words are not looked for: a long query that finds nothing says so.
    let q = format!("{} apples", "zebra ".repeat(40));
    let (status, page) = search(&app, &q).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("No results for"), "{page}");
    assert!(page.contains("Only the first 200 characters"), "{page}");
    // At the limit it is searched whole, with no note.
    let q = "a".repeat(200);
    let (status, page) = search(&app, &q).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("No results for"), "{page}");
    assert!(!page.contains("Only the first"), "{page}");
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
async fn results_kept_from_an_earlier_search_follow_other_writers_and_the_clock() {
    let app = TestApp::spawn().await;
    let (_alice, email) = app.author("Alice").await;
    insert_posts(&app, app.user_id(&email).await, 3).await;
    let (_, page) = search(&app, "body").await;
    assert!(page.contains("3 results for “body”"), "{page}");

    // Written straight to the database, as another instance or program would.
    sqlx::query("DELETE FROM posts WHERE slug = 'post-001'")
        .execute(&*app.db().await)
        .await
        .expect("delete");
    let (_, page) = search(&app, "body").await;
    assert!(page.contains("2 results for “body”"), "{page}");
    assert_eq!(result_titles(&page), ["Post 003", "Post 002"]);

    // Due in two seconds, and nothing written after: it appears when its time comes.
    set_published_at(&app, "post-002", unix_now() + 2).await;
    let (_, page) = search(&app, "body").await;
    assert_eq!(result_titles(&page), ["Post 003"], "{page}");
    rocket::tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (_, page) = search(&app, "body").await;
    assert_eq!(result_titles(&page), ["Post 002", "Post 003"], "{page}");
    assert!(page.contains("2 results for “body”"), "{page}");
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
    // Older results by cursor; page numbers keep working too.
    assert!(
        unescape(&one).contains(r#"href="/search?q=body&before="#),
        "{one}"
    );
    assert!(one.contains("23 results for “body”"), "{one}");
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
    assert!(three.contains("23 results for “body”"), "{three}");
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

#[rocket::async_test]
async fn results_go_on_by_cursor_exactly_whatever_is_saved_meanwhile() {
    let app = TestApp::spawn().await;
    let (alice, email) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    insert_posts(&app, app.user_id(&email).await, 23).await;
    // The last hit of page 1 and the first of page 2 share a second (and a rank).
    set_published_at(&app, "post-015", 1_700_000_000 + 14 * 3600).await;
    alice
        .create_post("Body body", "A body about the body.", true)
        .await;

    let seen = crate::blog_posts::walk_listing(
        &bob,
        "/search?q=body",
        "/search?q=body&before=",
        result_titles,
    )
    .await;
    let mut expected = vec!["Body body".to_string()];
    expected.extend((1..=23).rev().map(|i| format!("Post {i:03}")));
    assert_eq!(
        seen, expected,
        "best match first, then newest; every hit once"
    );

    // Posts saved between two pages (a new hit, drafts full of the word) move nothing:
    // page 2 starts right after page 1's last hit.
    let (_, one) = search(&app, "body").await;
    let next = Regex::new(r#"<a href="([^"]*)" rel="next">"#).unwrap();
    let next = unescape(&next.captures(&one).expect("more results link")[1]);
    alice.create_post("Newer body", "body", true).await;
    bob.create_post("Draft", &"body ".repeat(50), false).await;
    bob.create_post("Other", "no match here", true).await;
    let (status, two) = app.get_text(&next).await;
    assert_eq!(status, Status::Ok);
    let titles = result_titles(&two);
    assert_eq!(titles[0], "Post 014", "{two}");
    assert_eq!(titles.len(), 10);
    assert!(two.contains("25 results for “body”"), "{two}");

    for (path, status) in [
        ("/search?q=body&before=x-1-2", Status::BadRequest),
        ("/search?q=body&before=1e5-1-2", Status::BadRequest),
        ("/search?q=body&before=-1-1-2", Status::BadRequest),
        ("/search?q=body&before=inf-1-2", Status::BadRequest),
        ("/search?q=body&before=%3Cscript%3E", Status::BadRequest),
        ("/search?q=body&before=0-0-0", Status::NotFound),
    ] {
        let (got, page) = app.get_text(path).await;
        assert_eq!(got, status, "{path}");
        assert!(!page.contains("<script>"), "{path}: {page}");
    }
    let long = format!("/search?q=body&before={}-1-1", "9".repeat(5000));
    assert!(app.get(&long).await.status().code < 500);
}

#[rocket::async_test]
async fn results_show_their_author_and_tags_and_how_many_there_are() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice Smith").await;
    let res = alice
        .post_form(
            "/posts",
            &[
                ("title", "Puffins"),
                ("body", "A puffin colony."),
                ("tags", "Birds, <script>alert(1)</script>x"),
                ("publish", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    alice
        .create_post("More puffins", "Puffin again.", true)
        .await;

    let (status, page) = search(&app, "puffin").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("2 results for “puffin”"), "{page}");
    assert!(
        page.contains(r#"<a href="/authors/alice-smith" rel="author">Alice Smith</a>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<a href="/tags/birds" rel="tag">Birds</a>"#),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;x"),
        "{page}"
    );

    let (_, one) = search(&app, "\"puffin colony\"").await;
    assert!(
        one.contains("1 result for “&quot;puffin colony&quot;”"),
        "{one}"
    );
    let (_, none) = search(&app, "penguin").await;
    assert!(none.contains("No results for “penguin”."), "{none}");
    assert!(!none.contains("search-count"), "{none}");
}
