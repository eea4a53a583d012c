//! Story: authors tag their posts (comma-separated, any case); readers see the tags on
//! posts and listings, follow them to a page and a feed of that tag's published posts,
//! and find every tag in the index. Drafts show up in none of it.

use regex::Regex;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::LocalResponse;

use crate::common::*;

/// Submits the new-post form with a `tags` field.
async fn submit_tagged<'b>(
    b: &'b Browser,
    title: &str,
    tags: &str,
    publish: bool,
) -> LocalResponse<'b> {
    let mut fields = vec![("title", title), ("body", "Some words."), ("tags", tags)];
    if publish {
        fields.push(("publish", "true"));
    }
    b.post_form("/posts", &fields).await
}

/// Creates a post with these tags and returns its slug.
async fn tagged_post(b: &Browser, title: &str, tags: &str, publish: bool) -> String {
    let res = submit_tagged(b, title, tags, publish).await;
    assert_eq!(res.status(), Status::SeeOther, "creating {title:?}");
    location(&res)
        .strip_prefix("/posts/")
        .expect("redirected to the post")
        .to_string()
}

/// The tags a page links, (slug, name) in order.
fn tag_links(page: &str) -> Vec<(String, String)> {
    let re = Regex::new(r#"<a href="/tags/([^"]+)" rel="tag">([^<]*)</a>"#).unwrap();
    re.captures_iter(page)
        .map(|c| (c[1].to_string(), unescape(&c[2])))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The post titles a listing shows, in order.
fn listed_titles(page: &str) -> Vec<String> {
    let re = Regex::new(r#"<h2><a href="/posts/[^"]+">([^<]*)</a></h2>"#).unwrap();
    re.captures_iter(page).map(|c| unescape(&c[1])).collect()
}

#[rocket::async_test]
async fn tags_show_on_the_post_and_in_listings_and_lead_to_their_pages() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = tagged_post(&alice, "Ownership", " Rust , web dev,, ", true).await;
    let expected = pairs(&[("rust", "Rust"), ("web-dev", "web dev")]);

    let (status, post) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(tag_links(&post), expected, "{post}");
    let (_, home) = app.get_text("/").await;
    assert_eq!(tag_links(&home), expected, "{home}");

    let (status, page) = app.get_text("/tags/rust").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Posts tagged “Rust”"), "{page}");
    assert_eq!(listed_titles(&page), ["Ownership"]);
    assert_eq!(tag_links(&page), expected, "the listing shows tags too");
    assert!(page.contains(r#"href="/tags/rust/feed.xml""#), "{page}");

    // The index is linked from every page and counts public posts.
    assert!(home.contains(r#"<a href="/tags">Tags</a>"#), "{home}");
    tagged_post(&alice, "Borrowing", "rust", true).await;
    let (status, index) = app.get_text("/tags").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(tag_links(&index), expected, "{index}");
    assert!(index.contains("2 posts"), "{index}");
    assert!(index.contains("1 post<"), "{index}");

    // The editor shows them as typed.
    let (_, edit) = alice.get_text(&format!("/posts/{slug}/edit")).await;
    assert_eq!(field_value(&edit, "tags").as_deref(), Some("Rust, web dev"));
}

#[rocket::async_test]
async fn tags_in_any_case_are_one_tag_named_as_first_typed() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    let first = tagged_post(&alice, "First", "Rust, rust, RUST", true).await;
    let second = tagged_post(&bob, "Second", "rUST", true).await;

    assert_eq!(tag_rows(&app).await, pairs(&[("rust", "Rust")]));
    for slug in [&first, &second] {
        let (_, post) = app.get_text(&format!("/posts/{slug}")).await;
        assert_eq!(tag_links(&post), pairs(&[("rust", "Rust")]), "{post}");
    }
    let (_, page) = app.get_text("/tags/rust").await;
    assert_eq!(listed_titles(&page), ["Second", "First"]);
    // An address in capitals is the same tag's.
    let res = app.get("/tags/RUST").await;
    assert_eq!(res.status(), Status::MovedPermanently);
    assert_eq!(location(&res), "/tags/rust");
}

#[rocket::async_test]
async fn too_many_too_long_or_unaddressable_tags_are_refused_with_the_field_kept() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let twenty_one: Vec<String> = (1..=21).map(|i| format!("tag{i}")).collect();
    let long = "x".repeat(51);
    let cases = [
        (
            twenty_one.join(", "),
            "At most 20 tags a post; this has 21.",
        ),
        (format!("fine, {long}"), "is over 50 characters"),
        (
            "rust, !!!".to_string(),
            "The tag “!!!” needs a letter or digit",
        ),
        ("rust, a\tb".to_string(), "cannot hold control characters"),
    ];
    for (typed, message) in &cases {
        let res = submit_tagged(&alice, "Tagged", typed, true).await;
        assert_eq!(res.status(), Status::UnprocessableEntity, "{typed}");
        let page = res.into_string().await.unwrap_or_default();
        assert!(
            unescape(&field_errors(&page, "tags")).contains(message),
            "{typed}: {page}"
        );
        assert!(page.contains("The post was not saved"), "{page}");
        assert_eq!(field_value(&page, "tags").as_deref(), Some(typed.as_str()));
        assert!(
            page.contains(r#"value="Tagged""#),
            "the title is kept: {page}"
        );
    }
    assert_eq!(post_count(&app).await, 0);
    assert!(tag_rows(&app).await.is_empty());

    // Twenty, or fifty characters, are fine; repeats count once.
    let twenty = format!("{}, TAG1, Tag2", twenty_one[..20].join(", "));
    tagged_post(&alice, "Twenty", &twenty, true).await;
    tagged_post(&alice, "Long", &"y".repeat(50), true).await;
    assert_eq!(post_tag_count(&app).await, 21);

    // An edit with bad tags changes nothing.
    let slug = tagged_post(&alice, "Kept", "keep", true).await;
    let res = alice
        .post_form(
            &format!("/posts/{slug}/edit"),
            &[("title", "Changed"), ("body", "b"), ("tags", "!!!, ok")],
        )
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap_or_default();
    assert_eq!(field_value(&page, "tags").as_deref(), Some("!!!, ok"));
    let row = post_row(&app, &slug).await.expect("post");
    assert_eq!(row.title, "Kept");
    let (_, post) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(tag_links(&post), pairs(&[("keep", "keep")]));
}

#[rocket::async_test]
async fn drafts_appear_on_no_tag_page_feed_or_index() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    // The draft comes first, but its spelling of the tag shows nowhere either.
    tagged_post(&bob, "Bob's secret draft", "RUST, hidden plans", false).await;
    tagged_post(&alice, "Public words", "rust", true).await;

    let (_, page) = app.get_text("/tags/rust").await;
    assert_eq!(listed_titles(&page), ["Public words"], "{page}");
    assert_eq!(tag_links(&page), pairs(&[("rust", "rust")]), "{page}");
    let (_, feed) = app.get_text("/tags/rust/feed.xml").await;
    assert!(feed.contains("Public words"), "{feed}");
    assert!(!feed.contains("secret"), "{feed}");
    let (_, index) = app.get_text("/tags").await;
    assert_eq!(tag_links(&index), pairs(&[("rust", "rust")]), "{index}");
    assert!(index.contains("1 post<"), "{index}");
    assert!(
        !index.contains("hidden plans") && !index.contains("hidden-plans"),
        "{index}"
    );
    for path in ["/tags/hidden-plans", "/tags/hidden-plans/feed.xml"] {
        assert_eq!(app.get(path).await.status(), Status::NotFound, "{path}");
    }
    // Not even for their own author: tag pages are what readers see.
    assert_eq!(
        bob.get("/tags/hidden-plans").await.status(),
        Status::NotFound
    );
    let (_, home) = app.get_text("/").await;
    assert!(
        !home.contains("hidden-plans") && !home.contains("hidden plans"),
        "{home}"
    );
    assert!(
        !tag_links(&home)
            .iter()
            .any(|(slug, _)| slug == "hidden-plans"),
        "{home}"
    );
}

#[rocket::async_test]
async fn editing_replaces_tags_and_deleting_removes_them() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = tagged_post(&alice, "Changing", "alpha, beta", true).await;
    let res = alice
        .post_form(
            &format!("/posts/{slug}/edit"),
            &[
                ("title", "Changing"),
                ("body", "b"),
                ("tags", "Beta, gamma"),
                ("publish", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let (_, post) = app.get_text(&format!("/posts/{slug}")).await;
    // "Beta" is the same tag as "beta"; with no other post it takes the new spelling.
    assert_eq!(
        tag_links(&post),
        pairs(&[("beta", "Beta"), ("gamma", "gamma")])
    );
    assert_eq!(app.get("/tags/alpha").await.status(), Status::NotFound);
    assert_eq!(app.get("/tags/gamma").await.status(), Status::Ok);
    let (_, index) = app.get_text("/tags").await;
    assert_eq!(
        tag_links(&index),
        pairs(&[("beta", "Beta"), ("gamma", "gamma")])
    );

    // Unpublishing takes it off the tag pages; deleting removes the links.
    let res = alice
        .post_form(
            &format!("/posts/{slug}/edit"),
            &[("title", "Changing"), ("body", "b"), ("tags", "gamma")],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(app.get("/tags/gamma").await.status(), Status::NotFound);
    let res = alice.post_form(&format!("/posts/{slug}/delete"), &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(post_tag_count(&app).await, 0);
    let (_, index) = app.get_text("/tags").await;
    assert!(tag_links(&index).is_empty(), "{index}");
    assert!(
        index.contains("No published post has a tag yet."),
        "{index}"
    );
}

#[rocket::async_test]
async fn a_tag_page_has_twenty_posts_a_page_and_unknown_pages_are_404() {
    let app = TestApp::spawn().await;
    let (_alice, email) = app.author("Alice").await;
    insert_posts(&app, app.user_id(&email).await, 25).await;
    tag_every_post(&app, "archive", "Archive").await;

    let (status, one) = app.get_text("/tags/archive").await;
    assert_eq!(status, Status::Ok);
    let expected: Vec<String> = (6..=25).rev().map(|i| format!("Post {i:03}")).collect();
    assert_eq!(listed_titles(&one), expected);
    let older = format!("/tags/archive?before={}", cursor_of(&app, "post-006").await);
    assert!(
        unescape(&one).contains(&format!(r#"href="{older}" rel="next""#)),
        "{one}"
    );
    let (status, two) = app.get_text("/tags/archive?page=2").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(listed_titles(&two).len(), 5);
    assert!(
        unescape(&two).contains(r#"href="/tags/archive?page=1" rel="prev""#),
        "{two}"
    );
    for path in [
        "/tags/archive?page=3",
        "/tags/archive?page=0",
        "/tags/archive?page=-1",
        "/tags/nothing",
        "/tags/nothing/feed.xml",
        "/tags/a%20b",
        "/tags/a%00b",
        "/tags/%E2%9C%93",
    ] {
        let status = app.get(path).await.status();
        assert!(
            status == Status::NotFound || status == Status::UnprocessableEntity,
            "{path}: {status}"
        );
    }
    let long = format!("/tags/{}", "a".repeat(5000));
    assert_eq!(app.get(&long).await.status(), Status::NotFound);
}

#[rocket::async_test]
async fn a_tag_feed_is_atom_with_the_tags_as_categories() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    tagged_post(&alice, "In the feed", "Rust, Notes", true).await;
    tagged_post(&alice, "Not in it", "notes", true).await;
    let res = app.get("/tags/rust/feed.xml").await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(
        res.content_type(),
        Some(ContentType::new("application", "atom+xml"))
    );
    let feed = res.into_string().await.unwrap_or_default();
    assert!(feed.contains("In the feed"), "{feed}");
    assert!(!feed.contains("Not in it"), "{feed}");
    assert!(
        feed.contains(r#"<category term="rust" label="Rust"/>"#),
        "{feed}"
    );
    assert!(
        feed.contains(r#"/tags/rust/feed.xml" rel="self""#),
        "{feed}"
    );
    assert!(feed.contains("<content type=\"html\">"), "{feed}");
}

#[rocket::async_test]
async fn markup_in_tag_names_is_shown_as_text_everywhere() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let tags = r#"<script>alert(1)</script>x, "><img src=y onerror=alert(2)>"#;
    let slug = tagged_post(&alice, "Hostile tags", tags, true).await;
    let links = tag_links(&app.get_text(&format!("/posts/{slug}")).await.1);
    assert_eq!(links.len(), 2, "{links:?}");
    let tag_page = format!("/tags/{}", links[0].0);
    let tag_feed = format!("{tag_page}/feed.xml");
    let edit = format!("/posts/{slug}/edit");
    for path in [
        format!("/posts/{slug}"),
        "/".into(),
        "/tags".into(),
        tag_page,
        tag_feed,
        "/feed.xml".into(),
        edit,
    ] {
        let (status, page) = alice.get_text(&path).await;
        assert_eq!(status, Status::Ok, "{path}");
        // The edit page loads the site's own preview script; nothing else is a script.
        let lower = page
            .replace(r#"<script src="/static/preview.js" defer></script>"#, "")
            .to_lowercase();
        assert!(!lower.contains("<script"), "{path}: {page}");
        assert!(!lower.contains("<img src=y"), "{path}: {page}");
        assert!(
            page.contains("&lt;script&gt;"),
            "{path} shows it as text: {page}"
        );
    }
}

#[rocket::async_test]
async fn a_scheduled_tagged_post_is_on_no_tag_or_author_page_until_it_is_due() {
    let app = TestApp::spawn().await;
    let (alice, email) = app.author("Alice").await;
    let handle = handle_of(&app, &email).await;
    let out = tagged_post(&alice, "Already out", "rust", true).await;
    set_published_at(&app, &out, unix_now() - 3600).await;
    let fields = [
        ("title", "Launch day"),
        ("body", "Big news.\n\n<!--more-->\n\nThe rest."),
        ("tags", "Rust, launch"),
        ("publish", "true"),
        ("publish_at", "2099-01-01T09:00"),
    ];
    let res = alice.post_form("/posts", &fields).await;
    assert_eq!(res.status(), Status::SeeOther);
    let slug = location(&res)
        .strip_prefix("/posts/")
        .expect("redirected to the post")
        .to_string();

    let pages = [
        "/tags/rust".to_string(),
        "/tags/rust/feed.xml".to_string(),
        format!("/authors/{handle}"),
        format!("/authors/{handle}/feed.xml"),
    ];
    for path in &pages {
        let (status, page) = app.get_text(path).await;
        assert_eq!(status, Status::Ok, "{path}");
        assert!(!page.contains("Launch day"), "{path}: {page}");
        assert!(!page.contains(&format!("/posts/{slug}")), "{path}: {page}");
    }
    // A tag only the scheduled post has is on no page yet.
    let (status, _) = app.get_text("/tags/launch").await;
    assert_eq!(status, Status::NotFound);
    let (status, _) = app.get_text("/tags/launch/feed.xml").await;
    assert_eq!(status, Status::NotFound);
    let (_, index) = app.get_text("/tags").await;
    assert_eq!(tag_links(&index), pairs(&[("rust", "rust")]), "{index}");
    assert!(index.contains("1 post<"), "{index}");

    // Due: everywhere at once, with its excerpt and a Read more link in the listings.
    set_published_at(&app, &slug, unix_now() - 1).await;
    for path in &pages {
        let (status, page) = app.get_text(path).await;
        assert_eq!(status, Status::Ok, "{path}");
        assert!(page.contains(&format!("/posts/{slug}")), "{path}: {page}");
    }
    for path in ["/tags/rust".to_string(), format!("/authors/{handle}")] {
        let page = app.get_text(&path).await.1;
        assert_eq!(
            listed_titles(&page),
            ["Launch day", "Already out"],
            "{path}"
        );
        assert!(page.contains("Big news."), "{path}: {page}");
        assert!(!page.contains("The rest."), "{path}: {page}");
        assert!(page.contains("Read more"), "{path}: {page}");
    }
    let (status, page) = app.get_text("/tags/launch").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(listed_titles(&page), ["Launch day"]);
    let (_, index) = app.get_text("/tags").await;
    assert!(index.contains("2 posts<"), "{index}");
    assert_eq!(tag_links(&index).len(), 2, "{index}");
}

#[rocket::async_test]
async fn tag_pages_go_on_by_cursor_with_no_duplicates_or_gaps() {
    let app = TestApp::spawn().await;
    let (alice, email) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    insert_posts(&app, app.user_id(&email).await, 45).await;
    // The last post of page 1 and the first of page 2 share a second.
    set_published_at(&app, "post-026", 1_700_000_000 + 25 * 3600).await;
    alice.create_post("Alice's draft", "hidden", false).await;
    bob.create_post("Bob's draft", "hidden", false).await;
    tag_every_post(&app, "archive", "Archive").await;

    let seen = crate::blog_posts::walk_listing(
        &app,
        "/tags/archive",
        "/tags/archive?before=",
        listed_titles,
    )
    .await;
    let expected: Vec<String> = (1..=45).rev().map(|i| format!("Post {i:03}")).collect();
    assert_eq!(seen, expected, "every public post once, in order");

    // A post published meanwhile does not shift the next page.
    let (_, one) = app.get_text("/tags/archive").await;
    tagged_post(&alice, "Newest", "archive", true).await;
    let next = Regex::new(r#"<a href="([^"]*)" rel="next">"#).unwrap();
    let next = unescape(&next.captures(&one).expect("older link")[1]);
    let (_, two) = app.get_text(&next).await;
    assert_eq!(listed_titles(&two)[0], "Post 025", "{two}");

    // Numbered pages still work; another case keeps the cursor; a foreign cursor is 400.
    let (_, numbered) = app.get_text("/tags/archive?page=2").await;
    assert_eq!(listed_titles(&numbered)[0], "Post 026");
    let res = app.get(&next.replace("/archive", "/Archive")).await;
    assert_eq!(res.status(), Status::MovedPermanently);
    assert_eq!(location(&res), next);
    for (path, status) in [
        ("/tags/archive?before=nonsense", Status::BadRequest),
        ("/tags/archive?before=%3Cscript%3E", Status::BadRequest),
        ("/tags/archive?before=0-0", Status::NotFound),
    ] {
        let (got, page) = app.get_text(path).await;
        assert_eq!(got, status, "{path}");
        assert!(!page.contains("<script>"), "{path}: {page}");
    }
}
