//! Writing a blog people read: posts scheduled for later, excerpts in listings and
//! feeds, older posts by cursor at any depth, and many posts with one title at once.

use std::time::{Duration, Instant};

use regex::Regex;
use rocket::futures::future::join_all;
use rocket::http::Status;

use crate::common::*;

/// The post titles listed on a page, in order.
fn listed_titles(page: &str) -> Vec<String> {
    let re = Regex::new(r#"<h2><a href="/posts/[^"]+">([^<]*)</a></h2>"#).unwrap();
    re.captures_iter(page).map(|c| c[1].to_string()).collect()
}

/// The href of the pager link with this `rel` ("next": older posts, "prev": newer).
fn pager_link(page: &str, rel: &str) -> Option<String> {
    let re = Regex::new(&format!(r#"<a href="([^"]*)" rel="{rel}">"#)).unwrap();
    re.captures(page).map(|c| unescape(&c[1]))
}

/// Follows a listing's "next" links from `first` to its last page, each of which must
/// start with `cursor_link` (a `?before=` link), then its "prev" links back, which must
/// retrace the same pages. Returns every title shown (as `titles` reads them), in order.
pub(crate) async fn walk_listing(
    b: &Browser,
    first: &str,
    cursor_link: &str,
    titles: fn(&str) -> Vec<String>,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut pages = vec![first.to_string()];
    let mut path = first.to_string();
    loop {
        let (status, page) = b.get_text(&path).await;
        assert_eq!(status, Status::Ok, "{path}");
        seen.extend(titles(&page));
        match pager_link(&page, "next") {
            Some(next) => {
                assert!(next.starts_with(cursor_link), "{next}");
                assert!(pages.len() < 100, "no end to {first}");
                pages.push(next.clone());
                path = next;
            }
            None => break,
        }
    }
    let mut back = vec![path.clone()];
    loop {
        let (_, page) = b.get_text(&path).await;
        match pager_link(&page, "prev") {
            Some(prev) => {
                assert!(back.len() <= pages.len(), "{prev} leads past {first}");
                back.push(prev.clone());
                path = prev;
            }
            None => break,
        }
    }
    back.reverse();
    assert_eq!(back, pages, "newer links retrace the pages");
    seen
}

/// A unix time as a `datetime-local` value in UTC, with seconds.
fn utc_input(ts: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ts).unwrap();
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]"
    ))
    .unwrap()
}

/// Submits the new-post form with these fields besides title and body (`publish` ticked).
async fn submit<'a>(
    b: &'a Browser,
    title: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> rocket::local::asynchronous::LocalResponse<'a> {
    let mut fields = vec![("title", title), ("body", body), ("publish", "true")];
    fields.extend_from_slice(extra);
    b.post_form("/posts", &fields).await
}

/// Creates a published post with extra fields and returns its slug.
async fn create(b: &Browser, title: &str, body: &str, extra: &[(&str, &str)]) -> String {
    let res = submit(b, title, body, extra).await;
    assert_eq!(res.status(), Status::SeeOther, "creating {title:?}");
    location(&res)
        .strip_prefix("/posts/")
        .expect("redirect to the post")
        .to_string()
}

/// Whether a reader without an account finds the post anywhere public.
async fn publicly_visible(app: &TestApp, slug: &str, title: &str) -> (bool, bool, bool) {
    let (_, home) = app.get_text("/").await;
    let (status, _) = app.get_text(&format!("/posts/{slug}")).await;
    let (_, feed) = app.get_text("/feed.xml").await;
    (
        listed_titles(&home).iter().any(|t| t == title),
        status == Status::Ok,
        feed.contains(&format!("/posts/{slug}")),
    )
}

#[rocket::async_test]
async fn a_scheduled_post_appears_nowhere_until_it_is_due_then_everywhere() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    alice.create_post("Already out", "Old news.", true).await;
    let soon = utc_input(unix_now() + 3);
    let slug = create(&alice, "Launch day", "Big news.", &[("publish_at", &soon)]).await;

    assert_eq!(
        publicly_visible(&app, &slug, "Launch day").await,
        (false, false, false)
    );
    // The post's address answers like one that names no post, for anyone but its author.
    let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
    let (_, missing) = app.get_text("/posts/no-such-post").await;
    assert_eq!(status, Status::NotFound);
    assert_eq!(page, missing);
    for path in [format!("/posts/{slug}"), format!("/posts/{slug}/edit")] {
        let (status, page) = bob.get_text(&path).await;
        assert_eq!(status, Status::NotFound, "{path}");
        assert!(!page.contains("Launch day"), "{path}: {page}");
    }
    let res = bob
        .post_form(&format!("/posts/{slug}/delete"), &[])
        .await
        .status();
    assert_eq!(res, Status::NotFound);
    let (_, home) = bob.get_text("/").await;
    assert!(!home.contains("Launch day"), "{home}");
    // Its author sees it, marked as scheduled.
    let (status, own) = alice.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    assert!(own.contains("Scheduled for"), "{own}");

    // Due: there at once, with no restart and nothing run in between.
    rocket::tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        publicly_visible(&app, &slug, "Launch day").await,
        (true, true, true)
    );
    let (_, home) = app.get_text("/").await;
    assert_eq!(
        listed_titles(&home),
        ["Launch day", "Already out"],
        "{home}"
    );
}

#[rocket::async_test]
async fn a_post_scheduled_far_ahead_stays_hidden_and_a_second_instance_agrees_once_due() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let later = utc_input(unix_now() + 86_400);
    let slug = create(&alice, "Tomorrow", "Soon.", &[("publish_at", &later)]).await;
    let other_instance = app.new_browser().await;
    assert_eq!(
        publicly_visible(&app, &slug, "Tomorrow").await,
        (false, false, false)
    );
    let (status, _) = other_instance.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::NotFound);

    set_published_at(&app, &slug, unix_now() - 1).await;
    let (status, _) = other_instance.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(
        publicly_visible(&app, &slug, "Tomorrow").await,
        (true, true, true)
    );
}

#[rocket::async_test]
async fn a_post_scheduled_past_2038_is_on_no_public_page_and_keeps_its_time() {
    // Unix seconds pass 32 bits on 2038-01-19; a time after it must come back whole.
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice Far").await;
    alice.create_post("Already out", "Old news.", true).await;
    let slug = create(
        &alice,
        "Centennial",
        "Plans for the next century.",
        &[("publish_at", "2099-06-01T12:00"), ("tags", "plans")],
    )
    .await;
    assert_eq!(
        post_row(&app, &slug).await.unwrap().published_at,
        Some(4_083_998_400)
    );
    assert_eq!(
        publicly_visible(&app, &slug, "Centennial").await,
        (false, false, false)
    );
    for path in [
        "/tags",
        "/tags/plans",
        "/tags/plans/feed.xml",
        "/authors/alice-far",
        "/authors/alice-far/feed.xml",
        "/sitemap.xml",
        "/search?q=century",
    ] {
        let (_, page) = app.get_text(path).await;
        assert!(
            !page.contains("Centennial") && !page.contains(&slug),
            "{path}: {page}"
        );
    }
    let (_, author_page) = app.get_text("/authors/alice-far").await;
    assert!(author_page.contains("Already out"), "{author_page}");

    let (_, dashboard) = alice.get_text("/dashboard").await;
    assert!(
        dashboard.contains("Scheduled for 1 Jun 2099, 12:00 UTC"),
        "{dashboard}"
    );
    let (_, edit) = alice.get_text(&format!("/posts/{slug}/edit")).await;
    assert_eq!(
        field_value(&edit, "publish_at").as_deref(),
        Some("2099-06-01T12:00")
    );
    let (status, own) = alice.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    assert!(own.contains("Scheduled for"), "{own}");
}

#[rocket::async_test]
async fn the_dashboard_shows_a_scheduled_post_in_the_sites_time_zone_and_editing_keeps_it() {
    let app = TestApp::spawn_with(|f| f.merge(("site.timezone", "Europe/Berlin"))).await;
    let (alice, _) = app.author("Alice").await;
    let res = submit(
        &alice,
        "Summer",
        "Sun.",
        &[("publish_at", "2030-07-01T09:30")],
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    let slug = location(&res).trim_start_matches("/posts/").to_string();
    // 09:30 in Berlin in July is 07:30 UTC.
    let row = post_row(&app, &slug).await.unwrap();
    assert_eq!(row.published_at, Some(1_909_121_400));
    assert!(row.published);

    let (_, dashboard) = alice.get_text("/dashboard").await;
    assert!(
        dashboard.contains("Scheduled for 1 Jul 2030, 09:30 CEST"),
        "{dashboard}"
    );
    assert!(
        dashboard.contains("Europe&#x2F;Berlin"),
        "the form names the zone"
    );
    let (_, edit) = alice.get_text(&format!("/posts/{slug}/edit")).await;
    assert_eq!(
        field_value(&edit, "publish_at").as_deref(),
        Some("2030-07-01T09:30")
    );

    // Saving the form as shown keeps the time; a new time moves it.
    let path = format!("/posts/{slug}/edit");
    let fields = [
        ("title", "Summer!"),
        ("body", "Sun."),
        ("publish", "true"),
        ("publish_at", "2030-07-01T09:30"),
    ];
    assert_eq!(
        alice.post_form(&path, &fields).await.status(),
        Status::SeeOther
    );
    let row = post_row(&app, &slug).await.unwrap();
    assert_eq!(
        (row.title.as_str(), row.published_at),
        ("Summer!", Some(1_909_121_400))
    );
    let fields = [
        ("title", "Summer!"),
        ("body", "Sun."),
        ("publish", "true"),
        ("publish_at", "2030-12-01T09:30"),
    ];
    assert_eq!(
        alice.post_form(&path, &fields).await.status(),
        Status::SeeOther
    );
    let (_, dashboard) = alice.get_text("/dashboard").await;
    assert!(
        dashboard.contains("Scheduled for 1 Dec 2030, 09:30 CET"),
        "{dashboard}"
    );
    let (status, _) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::NotFound);
}

#[rocket::async_test]
async fn editing_a_published_post_keeps_its_date_to_the_second() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = alice.create_post("Dated", "Text.", true).await;
    set_published_at(&app, &slug, 1_700_000_007).await;
    let (_, edit) = alice.get_text(&format!("/posts/{slug}/edit")).await;
    let shown = field_value(&edit, "publish_at").unwrap();
    assert_eq!(shown, "2023-11-14T22:13");
    let fields = [
        ("title", "Dated"),
        ("body", "Fixed a typo."),
        ("publish", "true"),
        ("publish_at", shown.as_str()),
    ];
    let res = alice
        .post_form(&format!("/posts/{slug}/edit"), &fields)
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(
        post_row(&app, &slug).await.unwrap().published_at,
        Some(1_700_000_007)
    );
}

#[rocket::async_test]
async fn a_bad_publish_time_is_refused_on_the_form_with_what_was_typed_kept() {
    let app = TestApp::spawn_with(|f| f.merge(("site.timezone", "Europe/Berlin"))).await;
    let (alice, _) = app.author("Alice").await;
    for (typed, expect) in [
        ("next tuesday", "YYYY-MM-DDTHH:MM"),
        ("2026-13-40T25:00", "YYYY-MM-DDTHH:MM"),
        ("1969-07-20T20:17", "between 1971 and 9999"),
        // Berlin's clocks jump from 02:00 to 03:00 that night.
        ("2027-03-28T02:30", "does not exist in Europe/Berlin"),
    ] {
        let res = submit(
            &alice,
            "Kept title",
            "Kept <body>",
            &[("publish_at", typed), ("excerpt", "Kept excerpt")],
        )
        .await;
        let (status, page) = text_of(res).await;
        assert_eq!(status, Status::UnprocessableEntity, "{typed}");
        assert!(
            unescape(&field_errors(&page, "publish_at")).contains(expect),
            "{typed}: {page}"
        );
        assert!(page.contains("value=\"Kept title\""), "{page}");
        assert_eq!(field_value(&page, "publish_at").as_deref(), Some(typed));
        assert!(page.contains("Kept &lt;body&gt;"), "{page}");
        assert!(page.contains(">Kept excerpt</textarea>"), "{page}");
    }
    assert_eq!(post_count(&app).await, 0);
}

#[rocket::async_test]
async fn excerpts_come_from_the_more_line_else_the_field_else_the_first_paragraph() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let more = create(
        &alice,
        "With more",
        "Teaser *words*.\n\n<!--more-->\n\nThe hidden rest.",
        &[("excerpt", "Field loses")],
    )
    .await;
    let field = create(
        &alice,
        "With field",
        "Body first paragraph.\n\nSecond.",
        &[("excerpt", "A **typed** summary.")],
    )
    .await;
    let first = create(
        &alice,
        "With nothing",
        "# Heading\n\nOpening paragraph here.\n\nNot this one.",
        &[],
    )
    .await;

    assert_eq!(
        excerpt_html(&app, &more).await,
        "<p>Teaser <em>words</em>.</p>\n"
    );
    assert_eq!(
        excerpt_html(&app, &field).await,
        "<p>A <strong>typed</strong> summary.</p>\n"
    );
    assert_eq!(
        excerpt_html(&app, &first).await,
        "<p>Opening paragraph here.</p>\n"
    );

    let (_, home) = app.get_text("/").await;
    assert!(home.contains("<p>Teaser <em>words</em>.</p>"), "{home}");
    assert!(!home.contains("The hidden rest"), "{home}");
    assert!(!home.contains("Field loses"), "{home}");
    assert!(
        home.contains("<p>A <strong>typed</strong> summary.</p>"),
        "{home}"
    );
    assert!(!home.contains("Body first paragraph"), "{home}");
    assert!(home.contains("<p>Opening paragraph here.</p>"), "{home}");
    assert!(!home.contains("Not this one"), "{home}");
    for slug in [&more, &field, &first] {
        assert!(
            home.contains(&format!("<a href=\"/posts/{slug}\">Read more")),
            "{slug}: {home}"
        );
    }
    // The marker never reaches a page; the post shows the whole body.
    let (_, page) = app.get_text(&format!("/posts/{more}")).await;
    assert!(page.contains("The hidden rest"), "{page}");
    assert!(!page.contains("more--"), "{page}");
    assert!(!home.contains("more--"), "{home}");

    // The edit form gives the typed excerpt back; clearing it falls back to the body.
    let (_, edit) = alice.get_text(&format!("/posts/{field}/edit")).await;
    assert!(edit.contains(">A **typed** summary.</textarea>"), "{edit}");
    alice
        .edit_post(
            &field,
            "With field",
            "Now the first paragraph.\n\nMore.",
            true,
        )
        .await;
    assert_eq!(
        excerpt_html(&app, &field).await,
        "<p>Now the first paragraph.</p>\n"
    );
}

#[rocket::async_test]
async fn posts_from_before_excerpts_get_theirs_at_the_next_start_once() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let plain = create(
        &alice,
        "Old plain",
        "# Heading\n\nOld *opening* <script>alert(1)</script><img src=x onerror=alert(2)>.\n\nRest.",
        &[],
    )
    .await;
    let more = create(&alice, "Old more", "Teaser.\n\n<!--more-->\n\nRest.", &[]).await;
    let none = create(&alice, "Old code", "```\ncode only\n```", &[]).await;
    let saved = [
        excerpt_html(&app, &plain).await,
        excerpt_html(&app, &more).await,
    ];
    assert!(!saved[0].contains("<script") && !saved[0].contains("onerror"));
    let edited = updated_at(&app, &plain).await;
    // As posts saved before excerpts existed: no excerpt in listings.
    for slug in [&plain, &more, &none] {
        forget_excerpt(&app, slug).await;
    }
    let (_, home) = app.get_text("/").await;
    assert!(!home.contains("opening"), "{home}");
    assert_eq!(awaiting_excerpts(&app).await, 3);

    // The next start gives each the excerpt saving gives, sanitized the same way.
    let restarted = app.new_browser().await;
    assert_eq!(excerpt_html(&app, &plain).await, saved[0]);
    assert_eq!(excerpt_html(&app, &more).await, saved[1]);
    assert_eq!(excerpt_html(&app, &none).await, "");
    assert_eq!(awaiting_excerpts(&app).await, 0);
    assert_eq!(updated_at(&app, &plain).await, edited, "not an edit");
    let (_, home) = restarted.get_text("/").await;
    assert!(home.contains("Old <em>opening</em>"), "{home}");
    assert!(home.contains("<p>Teaser.</p>"), "{home}");
    assert!(!home.to_lowercase().contains("<script>alert"), "{home}");

    // Done once: a later start finds nothing to do and changes nothing.
    alice
        .edit_post(&plain, "Old plain", "New opening.\n\nRest.", true)
        .await;
    app.new_browser().await;
    assert_eq!(excerpt_html(&app, &plain).await, "<p>New opening.</p>\n");
    assert_eq!(excerpt_html(&app, &more).await, saved[1]);
}

#[rocket::async_test]
async fn script_in_an_excerpt_is_removed_and_a_long_excerpt_is_refused() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let hostile = "Hi <script>alert(1)</script><img src=x onerror=\"alert(2)\"> \
                   [click](javascript:alert(3)) <a href=\"javascript:alert(4)\">x</a>";
    let typed = create(&alice, "Typed XSS", "Body.", &[("excerpt", hostile)]).await;
    let marker = create(
        &alice,
        "Marker XSS",
        &format!("{hostile}\n\n<!--more-->\n\nRest."),
        &[],
    )
    .await;
    let (_, home) = app.get_text("/").await;
    let (_, feed) = app.get_text("/feed.xml").await;
    for slug in [&typed, &marker] {
        let html = excerpt_html(&app, slug).await;
        assert!(html.contains("Hi "), "{html}");
        for bad in ["<script", "onerror", "javascript:", "alert(1)"] {
            assert!(!html.contains(bad), "{slug} {bad}: {html}");
        }
    }
    for bad in ["<script>alert", "onerror", "javascript:"] {
        assert!(!home.contains(bad), "{bad}: {home}");
        assert!(!unescape(&feed).contains(bad), "{bad}: {feed}");
    }

    let res = submit(&alice, "Wordy", "Body.", &[("excerpt", &"x".repeat(1001))]).await;
    let (status, page) = text_of(res).await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        field_errors(&page, "excerpt").contains("1000 characters"),
        "{page}"
    );
    assert!(page.contains("value=\"Wordy\""), "{page}");
    let ok = submit(&alice, "Enough", "Body.", &[("excerpt", &"x".repeat(1000))]).await;
    assert_eq!(ok.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn the_feed_carries_the_whole_post_and_the_excerpt_as_summary() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    create(
        &alice,
        "Feed post",
        "Short *intro*.\n\n<!--more-->\n\nLong conclusion.",
        &[],
    )
    .await;
    let later = utc_input(unix_now() + 3600);
    create(&alice, "Not yet", "Wait.", &[("publish_at", &later)]).await;
    let (status, feed) = app.get_text("/feed.xml").await;
    assert_eq!(status, Status::Ok);
    let summary = Regex::new(r#"(?s)<summary type="html">(.*?)</summary>"#).unwrap();
    let summaries: Vec<String> = summary
        .captures_iter(&feed)
        .map(|c| unescape(&c[1]))
        .collect();
    assert_eq!(summaries, ["<p>Short <em>intro</em>.</p>\n"], "{feed}");
    let content = Regex::new(r#"(?s)<content type="html">(.*?)</content>"#).unwrap();
    let content = unescape(&content.captures(&feed).expect("content")[1]);
    assert!(
        content.contains("<em>intro</em>") && content.contains("Long conclusion"),
        "{content}"
    );
    assert!(!feed.contains("Not yet"), "{feed}");
}

#[rocket::async_test]
async fn older_posts_links_walk_every_post_once_and_newer_links_walk_back() {
    let app = TestApp::spawn().await;
    let (alice, email) = app.author("Alice").await;
    insert_posts(&app, app.user_id(&email).await, 65).await;
    // Two posts at the same second, the last of page 1 and the first of page 2: the
    // cursor's id keeps them apart.
    set_published_at(&app, "post-046", 1_700_000_000 + 45 * 3600).await;
    alice.create_post("A draft", "hidden", false).await;
    let later = utc_input(unix_now() + 3600);
    create(&alice, "Scheduled", "hidden", &[("publish_at", &later)]).await;

    let mut seen = Vec::new();
    let mut pages = vec!["/".to_string()];
    let mut path = "/".to_string();
    loop {
        let (status, page) = app.get_text(&path).await;
        assert_eq!(status, Status::Ok, "{path}");
        let titles = listed_titles(&page);
        assert!(titles.len() <= 20, "{path}");
        seen.extend(titles);
        match pager_link(&page, "next") {
            Some(next) => {
                assert!(next.starts_with("/?before="), "{next}");
                pages.push(next.clone());
                path = next;
            }
            None => break,
        }
    }
    assert_eq!(pages.len(), 4, "{pages:?}");
    // Post 046 shares Post 045's second and has the higher id: it still comes first.
    let expected: Vec<String> = (1..=65).rev().map(|i| format!("Post {i:03}")).collect();
    assert_eq!(seen, expected, "no duplicates or gaps");

    // Back from the last page by "Newer posts": the same pages, in reverse.
    let mut back = vec![path.clone()];
    loop {
        let (_, page) = app.get_text(&path).await;
        match pager_link(&page, "prev") {
            Some(prev) => {
                back.push(prev.clone());
                path = prev;
            }
            None => break,
        }
    }
    back.reverse();
    assert_eq!(back, pages);
}

#[rocket::async_test]
async fn a_malformed_cursor_gets_a_clear_bad_request_page() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Alice").await;
    insert_posts(&app, app.user_id(&email).await, 3).await;
    for cursor in [
        "abc",
        "",
        "1700003600",
        "-1-2",
        "1.5-2",
        "99999999999999999999-1",
        "1700003600-2-3",
        "%00",
        "%3Cscript%3E",
    ] {
        let (status, page) = app.get_text(&format!("/?before={cursor}")).await;
        assert_eq!(status, Status::BadRequest, "before={cursor}");
        assert!(
            page.contains("This link to older posts is not valid"),
            "before={cursor}: {page}"
        );
    }
    // Well-formed but with nothing older: like a page number past the end.
    let (status, _) = app.get_text("/?before=0-0").await;
    assert_eq!(status, Status::NotFound);
    let long = format!("/?before={}", "9".repeat(10_000));
    assert!(app.get(&long).await.status().code < 500);
}

#[rocket::async_test]
async fn a_deep_page_costs_about_what_the_first_page_costs() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Alice").await;
    insert_many_posts(&app, app.user_id(&email).await, 100_000).await;
    for (name, query) in [("home", HOME_QUERY), ("older", OLDER_QUERY)] {
        let plan = query_plan(&app, query).await;
        assert!(plan.contains("posts_home"), "{name}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{name}: {plan}");
        assert!(!plan.contains("Sort"), "{name}: {plan}");
    }

    // Page 5,000 (posts 1 to 20 when the newest 99,980 come before): its link is the
    // cursor of post 21.
    let deep = format!("/?before={}", cursor_of(&app, "bulk-000021").await);
    let (status, page) = app.get_text(&deep).await;
    assert_eq!(status, Status::Ok);
    let titles = listed_titles(&page);
    assert_eq!(titles.first().map(String::as_str), Some("Post 000020"));
    assert_eq!(titles.len(), 20);
    assert!(pager_link(&page, "next").is_none(), "the last page");

    let time = |path: String| {
        let app = &app;
        async move {
            let mut best = Duration::MAX;
            for _ in 0..5 {
                let start = Instant::now();
                let (status, _) = app.get_text(&path).await;
                assert_eq!(status, Status::Ok);
                best = best.min(start.elapsed());
            }
            best
        }
    };
    let first = time("/".to_string()).await;
    let deep = time(deep).await;
    assert!(
        deep < first * 4 + Duration::from_millis(50),
        "page 5,000 took {deep:?}, page 1 {first:?}"
    );
}

#[rocket::async_test]
async fn a_hundred_posts_with_one_title_at_once_all_get_their_own_address() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    // One CSRF token fetched first, so the requests race only in creating posts.
    alice.csrf_token().await;
    let responses =
        join_all((0..100).map(|_| alice.submit_post("Same title", "Text.", true))).await;
    let mut slugs = Vec::new();
    let mut refused = Vec::new();
    for res in responses {
        if res.status() != Status::SeeOther {
            refused.push(text_of(res).await);
            continue;
        }
        slugs.push(location(&res).trim_start_matches("/posts/").to_string());
    }
    assert!(
        refused.is_empty(),
        "{} refused, first: {:?}",
        refused.len(),
        refused.first()
    );
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), 100, "distinct slugs");
    assert_eq!(post_count(&app).await, 100);
    assert!(slugs.contains(&"same-title".to_string()));
    let numbered = Regex::new(r"^same-title-(\d+)$").unwrap();
    let mut numbers: Vec<u32> = slugs
        .iter()
        .filter_map(|s| numbered.captures(s).map(|c| c[1].parse().unwrap()))
        .collect();
    numbers.sort();
    assert_eq!(numbers, (2..=100).collect::<Vec<_>>(), "{slugs:?}");
}

#[rocket::async_test]
async fn racing_posts_are_not_numbered_after_anothers_unseen_posts() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    bob.create_post("Secret plan", "Draft.", false).await;
    let later = utc_input(unix_now() + 86_400);
    create(&bob, "Hidden launch", "Later.", &[("publish_at", &later)]).await;
    alice.csrf_token().await;
    let titles = ["Secret plan", "Hidden launch"];
    let responses =
        join_all((0..20).map(|i| alice.submit_post(titles[i % 2], "Mine.", true))).await;
    let numbered = Regex::new(r"^/posts/(secret-plan|hidden-launch)(-\d+)?$").unwrap();
    let mut slugs = Vec::new();
    for res in &responses {
        assert_eq!(res.status(), Status::SeeOther);
        let to = location(res);
        assert!(!numbered.is_match(&to), "{to} tells of Bob's unseen post");
        slugs.push(to);
    }
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), 20);
}
