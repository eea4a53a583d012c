//! The account page: seeing where you are logged in, ending sessions, and changing the
//! password.

use rocket::http::Status;

use crate::common::*;

/// The `<li>` blocks of the session list.
fn session_items(page: &str) -> Vec<String> {
    let re = regex::Regex::new(r"(?s)<li>\s*<div>.*?</li>").unwrap();
    re.find_iter(page).map(|m| m.as_str().to_string()).collect()
}

fn end_action(item: &str) -> i64 {
    let re = regex::Regex::new(r#"action="/account/sessions/(\d+)/end""#).unwrap();
    re.captures(item).expect("an end-session form")[1]
        .parse()
        .unwrap()
}

#[rocket::async_test]
async fn the_account_page_lists_this_browser() {
    let app = TestApp::spawn().await;
    let (b, email) = app.author("Ann").await;
    let (status, page) = b.get_text("/account").await;
    assert_eq!(status, Status::Ok);
    let items = session_items(&page);
    assert_eq!(items.len(), 1, "{page}");
    assert!(items[0].contains("This browser"), "{}", items[0]);
    assert!(items[0].contains("Firefox"), "{}", items[0]);
    assert_eq!(end_action(&items[0]), session_ids_of(&app, &email).await[0]);
}

#[rocket::async_test]
async fn ending_another_session_logs_that_browser_out() {
    let app = TestApp::spawn().await;
    let (first, email) = app.author("Ann").await;
    let second = app.login_as(&email).await;
    let ids = session_ids_of(&app, &email).await;
    assert_eq!(ids.len(), 2);

    let (_, page) = first.get_text("/account").await;
    let items = session_items(&page);
    assert_eq!(items.len(), 2, "{page}");
    let other = items
        .iter()
        .find(|i| !i.contains("This browser"))
        .expect("the other session is listed");
    let other_id = end_action(other);
    assert_eq!(other_id, ids[1]);

    let res = first
        .post_form(&format!("/account/sessions/{other_id}/end"), &[])
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/account");
    let (_, page) = first.get_text("/account").await;
    assert!(page.contains("That session has ended."), "{page}");
    assert_eq!(session_items(&page).len(), 1);

    assert!(!second.is_logged_in().await);
    assert!(first.is_logged_in().await);
    assert_eq!(session_ids_of(&app, &email).await, vec![ids[0]]);
}

#[rocket::async_test]
async fn someone_elses_session_cannot_be_ended() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let (bob, bob_email) = app.author("Bob").await;
    let bobs = session_ids_of(&app, &bob_email).await[0];

    let res = ann
        .post_form(&format!("/account/sessions/{bobs}/end"), &[])
        .await;
    assert_eq!(res.status(), Status::NotFound);
    assert!(bob.is_logged_in().await);
    assert_eq!(session_ids_of(&app, &bob_email).await, vec![bobs]);

    // Nor can a session that does not exist.
    let res = ann.post_form("/account/sessions/999999/end", &[]).await;
    assert_eq!(res.status(), Status::NotFound);
    assert!(ann.is_logged_in().await);
}

#[rocket::async_test]
async fn logging_out_everywhere_else_keeps_this_browser() {
    let app = TestApp::spawn().await;
    let (first, email) = app.author("Ann").await;
    let second = app.login_as(&email).await;
    let third = app.login_as(&email).await;
    let (bob, _) = app.author("Bob").await;
    let mine = session_ids_of(&app, &email).await[0];

    let res = first.post_form("/account/sessions/others/end", &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/account");
    let (_, page) = first.get_text("/account").await;
    assert!(page.contains("Ended 2 other sessions."), "{page}");

    assert!(first.is_logged_in().await);
    assert!(!second.is_logged_in().await);
    assert!(!third.is_logged_in().await);
    assert!(bob.is_logged_in().await, "another user's session was ended");
    assert_eq!(session_ids_of(&app, &email).await, vec![mine]);
}

#[rocket::async_test]
async fn a_wrong_current_password_changes_nothing() {
    let app = TestApp::spawn().await;
    let (first, email) = app.author("Ann").await;
    let second = app.login_as(&email).await;
    let before = password_hash(&app, &email).await;

    let res = first
        .post_form(
            "/account/password",
            &[
                ("current_password", "not my password at all"),
                ("new_password", OTHER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap();
    assert!(
        page.contains("That is not your current password."),
        "{page}"
    );
    assert!(page.contains("Your password was not changed."), "{page}");
    assert!(!page.contains("not my password at all"));

    assert_eq!(password_hash(&app, &email).await, before);
    assert!(first.is_logged_in().await);
    assert!(second.is_logged_in().await);
    let third = app.new_browser().await;
    assert_eq!(
        third.login(&email, PASSWORD).await.status(),
        Status::SeeOther
    );
}

#[rocket::async_test]
async fn a_weak_new_password_is_refused() {
    let app = TestApp::spawn().await;
    let (first, email) = app.author("Ann").await;
    let second = app.login_as(&email).await;
    let before = password_hash(&app, &email).await;

    for (weak, message) in [
        ("short", "Use at least 15 characters"),
        ("passwordpassword1", "too common or easy to guess"),
    ] {
        let res = first
            .post_form(
                "/account/password",
                &[("current_password", PASSWORD), ("new_password", weak)],
            )
            .await;
        assert_eq!(res.status(), Status::UnprocessableEntity, "{weak}");
        let page = res.into_string().await.unwrap();
        assert!(page.contains(message), "{weak}: {page}");
        assert_eq!(password_hash(&app, &email).await, before, "{weak}");
    }
    assert!(second.is_logged_in().await);
    assert_eq!(session_ids_of(&app, &email).await.len(), 2);
}

#[rocket::async_test]
async fn changing_the_password_logs_out_every_other_session() {
    let app = TestApp::spawn().await;
    let (first, email) = app.author("Ann").await;
    let second = app.login_as(&email).await;

    let res = first
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", OTHER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/account");
    let (status, page) = first.get_text("/account").await;
    assert_eq!(status, Status::Ok, "this browser was logged out");
    assert!(page.contains("Password changed."), "{page}");

    assert!(!second.is_logged_in().await);
    assert_eq!(session_ids_of(&app, &email).await.len(), 1);

    let third = app.new_browser().await;
    assert_eq!(
        third.login(&email, PASSWORD).await.status(),
        Status::Unauthorized,
        "the old password still logs in"
    );
    assert!(!third.is_logged_in().await);
    assert_eq!(
        third.login(&email, OTHER_PASSWORD).await.status(),
        Status::SeeOther
    );
    assert!(third.is_logged_in().await);
}

#[rocket::async_test]
async fn the_account_page_needs_a_login() {
    let app = TestApp::spawn().await;
    let res = app.get("/account").await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/login?next=%2Faccount");
}
