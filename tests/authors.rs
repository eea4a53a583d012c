//! Story: every author has a handle, made from their name when the account is made and
//! changeable on /account; readers find an author's published posts at
//! /authors/<handle> and in its feed, and posts link there. A handle given up stays its
//! owner's for 30 days, and its old address leads to the new one meanwhile.

use regex::Regex;
use rocket::http::{ContentType, Status};

use crate::common::oidc::*;
use crate::common::op::{OpUser, TestOp};
use crate::common::*;

/// The post titles a listing shows, in order.
fn listed_titles(page: &str) -> Vec<String> {
    let re = Regex::new(r#"<h2><a href="/posts/[^"]+">([^<]*)</a></h2>"#).unwrap();
    re.captures_iter(page).map(|c| unescape(&c[1])).collect()
}

/// The author links on a page, (handle, name) in order.
fn author_links(page: &str) -> Vec<(String, String)> {
    let re = Regex::new(r#"<a href="/authors/([^"]+)" rel="author">([^<]*)</a>"#).unwrap();
    re.captures_iter(page)
        .map(|c| (c[1].to_string(), unescape(&c[2])))
        .collect()
}

/// Signs up an author with exactly this name (which may not make an email).
async fn author_named(app: &TestApp, name: &str) -> (Browser, String) {
    let b = app.new_browser().await;
    let email = unique_email("author");
    let status = b.signup(&email, name, PASSWORD).await.status();
    assert_eq!(status, Status::SeeOther, "signup of {name:?}");
    (b, email)
}

async fn change_handle(b: &Browser, handle: &str) -> (Status, String, String) {
    let res = b.post_form("/account/handle", &[("handle", handle)]).await;
    let status = res.status();
    let to = location(&res);
    (status, to, res.into_string().await.unwrap_or_default())
}

/// Changes the handle and expects success.
async fn changed(b: &Browser, handle: &str) {
    let (status, to, page) = change_handle(b, handle).await;
    assert_eq!(
        (status, to.as_str()),
        (Status::SeeOther, "/account"),
        "{page}"
    );
}

/// Refused with this message, the typed value kept.
async fn refused(b: &Browser, handle: &str, message: &str) {
    let (status, _, page) = change_handle(b, handle).await;
    assert_eq!(status, Status::UnprocessableEntity, "{handle}: {page}");
    assert!(
        unescape(&field_errors(&page, "handle")).contains(message),
        "{handle}: {page}"
    );
    assert!(page.contains("Your handle was not changed."), "{page}");
    assert_eq!(field_value(&page, "handle").as_deref(), Some(handle));
}

#[rocket::async_test]
async fn an_author_page_lists_published_posts_and_posts_link_to_it() {
    let app = TestApp::spawn().await;
    let (ada, email) = app.author("Ada Lovelace").await;
    let (bob, _) = app.author("Bob").await;
    assert_eq!(handle_of(&app, &email).await, "ada-lovelace");
    let first = ada.create_post("Notes on the engine", "n", true).await;
    ada.create_post("Second thoughts", "s", true).await;
    ada.create_post("Ada's draft", "d", false).await;
    bob.create_post("Bob's post", "b", true).await;

    let (status, page) = app.get_text("/authors/ada-lovelace").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Posts by Ada Lovelace"), "{page}");
    assert_eq!(
        listed_titles(&page),
        ["Second thoughts", "Notes on the engine"]
    );
    assert!(
        page.contains(r#"href="/authors/ada-lovelace/feed.xml""#),
        "{page}"
    );

    let link = ("ada-lovelace".to_string(), "Ada Lovelace".to_string());
    let (_, post) = app.get_text(&format!("/posts/{first}")).await;
    assert_eq!(author_links(&post), std::slice::from_ref(&link), "{post}");
    let (_, home) = app.get_text("/").await;
    assert!(author_links(&home).contains(&link), "{home}");
    assert!(
        author_links(&home).contains(&("bob".to_string(), "Bob".to_string())),
        "{home}"
    );

    let res = app.get("/authors/ada-lovelace/feed.xml").await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(
        res.content_type(),
        Some(ContentType::new("application", "atom+xml"))
    );
    let feed = res.into_string().await.unwrap_or_default();
    assert!(feed.contains("Notes on the engine") && feed.contains("Second thoughts"));
    assert!(!feed.contains("draft") && !feed.contains("Bob's"), "{feed}");
    assert!(feed.contains("/authors/ada-lovelace</uri>"), "{feed}");

    // The account page says where it is.
    let (_, account) = ada.get_text("/account").await;
    assert_eq!(
        field_value(&account, "handle").as_deref(),
        Some("ada-lovelace")
    );
    assert!(
        account.contains(r#"href="/authors/ada-lovelace""#),
        "{account}"
    );
}

#[rocket::async_test]
async fn unknown_handles_and_authors_without_published_posts_are_404() {
    let app = TestApp::spawn().await;
    let (drafter, _) = app.author("Drafter").await;
    drafter.create_post("Only a draft", "d", false).await;
    for path in [
        "/authors/drafter",
        "/authors/drafter/feed.xml",
        "/authors/nobody",
        "/authors/nobody/feed.xml",
        "/authors/ab",
        "/authors/12345",
        "/authors/a%00b",
        "/authors/me@example.com",
    ] {
        assert_eq!(app.get(path).await.status(), Status::NotFound, "{path}");
    }
    let long = format!("/authors/{}", "a".repeat(5000));
    assert_eq!(app.get(&long).await.status(), Status::NotFound);
    // Not even its author sees an empty page.
    assert_eq!(
        drafter.get("/authors/drafter").await.status(),
        Status::NotFound
    );
    // Handles are lowercase; another case is the same address.
    let res = app.get("/authors/Drafter").await;
    assert_eq!(res.status(), Status::MovedPermanently);
    assert_eq!(location(&res), "/authors/drafter");
}

#[rocket::async_test]
async fn handles_are_unique_regardless_of_case_and_numbered_on_collision() {
    let app = TestApp::spawn().await;
    let (_first, one) = app.author("Ada Lovelace").await;
    let (second, two) = author_named(&app, "ada  LOVELACE!").await;
    assert_eq!(handle_of(&app, &one).await, "ada-lovelace");
    assert_eq!(handle_of(&app, &two).await, "ada-lovelace-2");

    refused(&second, "Ada-Lovelace", "That handle is taken").await;
    assert_eq!(handle_of(&app, &two).await, "ada-lovelace-2");
    changed(&second, "  The-Countess ").await;
    assert_eq!(handle_of(&app, &two).await, "the-countess");
    // The second's old handle is held for her: a third Ada gets the next number.
    let (_third, three) = app.author("Ada Lovelace").await;
    assert_eq!(handle_of(&app, &three).await, "ada-lovelace-3");
}

#[rocket::async_test]
async fn a_handle_must_be_3_to_30_letters_digits_or_hyphens() {
    let app = TestApp::spawn().await;
    let (ada, email) = app.author("Ada").await;
    refused(&ada, "ab", "3 to 30 characters").await;
    refused(&ada, &"a".repeat(31), "3 to 30 characters").await;
    refused(&ada, "12345", "not only digits").await;
    refused(&ada, "ada lovelace", "Use only letters a to z").await;
    refused(&ada, "ada@example.com", "Use only letters a to z").await;
    refused(&ada, "<script>", "Use only letters a to z").await;
    refused(&ada, "zoë", "Use only letters a to z").await;
    assert_eq!(handle_of(&app, &email).await, "ada");

    // Without a valid CSRF token nothing changes.
    let res = ada.post_raw("/account/handle", "handle=other-name").await;
    assert_eq!(res.status(), Status::Forbidden);
    assert_eq!(handle_of(&app, &email).await, "ada");
    // Anonymous: to login, nothing changes.
    let stranger = app.new_browser().await;
    let res = stranger
        .post_form("/account/handle", &[("handle", "stolen")])
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
    assert_eq!(handle_of(&app, &email).await, "ada");

    changed(&ada, "007-ada").await;
    assert_eq!(handle_of(&app, &email).await, "007-ada");
    // Choosing the handle one has is fine and changes nothing.
    changed(&ada, "007-ADA").await;
    assert_eq!(handle_of(&app, &email).await, "007-ada");
}

#[rocket::async_test]
async fn an_old_handle_redirects_and_is_held_for_its_owner_for_30_days() {
    let app = TestApp::spawn().await;
    let (alice, alice_email) = app.author("Alice").await;
    let (mallory, mallory_email) = app.author("Mallory").await;
    alice.create_post("Alice writes", "a", true).await;
    mallory.create_post("Mallory writes", "m", true).await;

    changed(&alice, "alice-new").await;
    let account = unescape(&alice.get_text("/account").await.1);
    assert!(
        account.contains("/authors/alice leads there for 30 days"),
        "{account}"
    );
    for (old, new) in [
        ("/authors/alice", "/authors/alice-new"),
        ("/authors/alice?page=1", "/authors/alice-new?page=1"),
        ("/authors/alice/feed.xml", "/authors/alice-new/feed.xml"),
    ] {
        let res = app.get(old).await;
        assert_eq!(res.status(), Status::MovedPermanently, "{old}");
        assert_eq!(location(&res), new, "{old}");
    }
    let (_, page) = app.get_text("/authors/alice-new").await;
    assert_eq!(listed_titles(&page), ["Alice writes"]);
    let (_, home) = app.get_text("/").await;
    assert!(home.contains(r#"href="/authors/alice-new""#), "{home}");

    // Nobody else may take it, in any case, within the 30 days.
    refused(&mallory, "alice", "That handle is taken").await;
    refused(&mallory, "ALICE", "That handle is taken").await;
    age_released_handle(&app, "alice", 29).await;
    refused(&mallory, "alice", "That handle is taken").await;
    assert_eq!(handle_of(&app, &mallory_email).await, "mallory");

    // Its owner may take it back; the new one is then held for her in turn.
    changed(&alice, "alice").await;
    assert_eq!(handle_of(&app, &alice_email).await, "alice");
    assert_eq!(app.get("/authors/alice").await.status(), Status::Ok);
    let res = app.get("/authors/alice-new").await;
    assert_eq!(res.status(), Status::MovedPermanently);
    assert_eq!(location(&res), "/authors/alice");
    refused(&mallory, "alice-new", "That handle is taken").await;

    // After 30 days it is free: no redirect, and another account may take it.
    age_released_handle(&app, "alice-new", 31).await;
    assert_eq!(
        app.get("/authors/alice-new").await.status(),
        Status::NotFound
    );
    changed(&mallory, "alice-new").await;
    let (_, page) = app.get_text("/authors/alice-new").await;
    assert_eq!(listed_titles(&page), ["Mallory writes"]);
    // Her own held handle is hers again, and nobody else's.
    changed(&alice, "alice-new-2").await;
    refused(&mallory, "alice", "That handle is taken").await;
}

#[rocket::async_test]
async fn names_that_make_no_handle_get_user_and_the_id() {
    let app = TestApp::spawn().await;
    let (_a, short) = app.author("Al").await;
    let (_b, emailish) = author_named(&app, "bob@example.com").await;
    let (_c, digits) = app.author("1984").await;
    for email in [&short, &emailish, &digits] {
        let id = app.user_id(email).await;
        assert_eq!(
            handle_of(&app, email).await,
            format!("user-{id}"),
            "{email}"
        );
    }
}

#[rocket::async_test]
async fn accounts_without_a_handle_get_one_from_their_name() {
    let app = TestApp::spawn().await;
    let (ada, email) = app.author("Ada Lovelace").await;
    ada.create_post("Before handles", "b", true).await;
    // As an account made before handles existed: the next start gives it one.
    clear_handle(&app, &email).await;
    let restarted = app.new_browser().await;
    assert_eq!(handle_of(&app, &email).await, "ada-lovelace");
    let (status, page) = restarted.get_text("/authors/ada-lovelace").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(listed_titles(&page), ["Before handles"]);

    // Or its account page, whichever comes first.
    clear_handle(&app, &email).await;
    let (_, account) = ada.get_text("/account").await;
    assert_eq!(
        field_value(&account, "handle").as_deref(),
        Some("ada-lovelace")
    );
}

#[rocket::async_test]
async fn an_oidc_account_gets_its_handle_at_first_login_and_keeps_it() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    op.set_user(OpUser::new("sub-1", "kim@example.com", "Kim Lee"));
    let b = app.new_browser().await;
    logged_in(&b, None).await;
    assert_eq!(handle_of(&app, "kim@example.com").await, "kim-lee");
    b.logout().await;

    // Renamed at the provider: the handle stays (addresses do not move by themselves).
    op.set_user(OpUser::new("sub-1", "kim@example.com", "Kim Park"));
    logged_in(&b, None).await;
    assert_eq!(handle_of(&app, "kim@example.com").await, "kim-lee");

    // A name that is an email gives no handle that shows it.
    op.set_user(OpUser::new("sub-2", "jo@example.com", "jo@example.com"));
    let other = app.new_browser().await;
    logged_in(&other, None).await;
    let handle = handle_of(&app, "jo@example.com").await;
    assert!(handle.starts_with("user-"), "{handle}");
}

#[rocket::async_test]
async fn markup_in_an_authors_name_is_text_on_their_page_and_feed() {
    let app = TestApp::spawn().await;
    let (b, email) = author_named(&app, "<script>alert(1)</script> Eve").await;
    b.create_post("Eve's post", "e", true).await;
    let handle = handle_of(&app, &email).await;
    assert_eq!(handle, "script-alert-1-script-eve");
    for path in [
        format!("/authors/{handle}"),
        format!("/authors/{handle}/feed.xml"),
        "/".to_string(),
    ] {
        let (status, page) = app.get_text(&path).await;
        assert_eq!(status, Status::Ok, "{path}");
        assert!(!page.to_lowercase().contains("<script"), "{path}: {page}");
        assert!(page.contains("&lt;script&gt;"), "{path}: {page}");
    }
}

#[rocket::async_test]
async fn author_pages_go_on_by_cursor_with_no_duplicates_or_gaps() {
    let app = TestApp::spawn().await;
    let (ada, email) = app.author("Ada").await;
    let (bob, _) = app.author("Bob").await;
    insert_posts(&app, app.user_id(&email).await, 45).await;
    // The last post of page 1 and the first of page 2 share a second.
    set_published_at(&app, "post-026", 1_700_000_000 + 25 * 3600).await;
    ada.create_post("Ada's draft", "hidden", false).await;
    bob.create_post("Bob's post", "elsewhere", true).await;

    let seen = crate::blog_posts::walk_listing(
        &bob,
        "/authors/ada",
        "/authors/ada?before=",
        listed_titles,
    )
    .await;
    let expected: Vec<String> = (1..=45).rev().map(|i| format!("Post {i:03}")).collect();
    assert_eq!(seen, expected, "every public post of hers once, in order");

    let (_, numbered) = app.get_text("/authors/ada?page=2").await;
    assert_eq!(listed_titles(&numbered)[0], "Post 025");
    let cursor = cursor_of(&app, "post-026").await;
    let res = app.get(&format!("/authors/Ada?before={cursor}")).await;
    assert_eq!(res.status(), Status::MovedPermanently);
    assert_eq!(location(&res), format!("/authors/ada?before={cursor}"));
    let (status, page) = app.get_text("/authors/ada?before=1-2-3").await;
    assert_eq!(status, Status::BadRequest);
    assert!(
        page.contains("This link to older posts is not valid"),
        "{page}"
    );
    assert_eq!(
        app.get("/authors/ada?before=0-0").await.status(),
        Status::NotFound
    );
}

#[rocket::async_test]
async fn a_deep_author_page_is_entered_at_the_cursor_by_its_index() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Ada").await;
    let (bob, _) = app.author("Bob").await;
    bob.create_post("Bob's post", "elsewhere", true).await;
    let ada = app.user_id(&email).await;
    insert_many_posts(&app, ada, 20_000).await;
    // Entered at the cursor in an index already in the listing's order (PostgreSQL may
    // prefer posts_home when nearly every post is hers), never sorted.
    let plan = query_plan(&app, &author_older_query(ada)).await;
    assert!(
        plan.contains("posts_author_public") || plan.contains("posts_home"),
        "{plan}"
    );
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    assert!(!plan.contains("Sort"), "{plan}");

    let deep = format!(
        "/authors/ada?before={}",
        cursor_of(&app, "bulk-000021").await
    );
    let (status, page) = app.get_text(&deep).await;
    assert_eq!(status, Status::Ok);
    let titles = listed_titles(&page);
    assert_eq!(titles.first().map(String::as_str), Some("Post 000020"));
    assert_eq!(titles.len(), 20);
    assert!(!page.contains("rel=\"next\""), "the last page: {page}");
}
