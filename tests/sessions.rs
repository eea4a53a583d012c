//! Sessions as an author lives them: logging in and out, tokens that cannot be replayed
//! or planted, idle and absolute expiry, remember-me, and several instances as one.

use rocket::http::{Cookie, Status};

use crate::common::*;

/// The raw (encrypted) session cookie as the browser holds it.
fn raw_session_cookie(b: &Browser) -> Option<Cookie<'static>> {
    b.cookie("quire_session")
}

/// The session token inside this browser's cookie.
fn session_token(b: &Browser) -> Option<String> {
    b.private_cookie("quire_session")
}

/// GET /dashboard carrying exactly `cookie` (from a browser with an empty jar).
async fn dashboard_with(b: &Browser, cookie: Cookie<'static>) -> (Status, String) {
    let res = b.get_with_cookie("/dashboard", cookie).await;
    (res.status(), location(&res))
}

#[rocket::async_test]
async fn logging_in_stores_only_a_hash_of_the_token() {
    let app = TestApp::spawn().await;
    let (b, email) = app.author("Ann").await;
    assert_eq!(b.logout().await.status(), Status::SeeOther);
    assert_eq!(session_count(&app).await, 0);

    let res = b.login(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");
    assert_eq!(session_count(&app).await, 1);

    let token = session_token(&b).expect("a session cookie after login");
    // 256 random bits, base64: at least 43 characters.
    assert!(token.len() >= 43, "token too short: {token:?}");
    let stored = token_hashes(&app).await.remove(0);
    assert_ne!(stored, token, "the token is stored in the clear");
    assert_eq!(stored, token_hash(&token));
    assert!(b.is_logged_in().await);
}

#[rocket::async_test]
async fn logging_out_ends_the_session_and_the_old_cookie_cannot_be_replayed() {
    let app = TestApp::spawn().await;
    let (b, _) = app.author("Ann").await;
    let stolen = raw_session_cookie(&b).expect("a session cookie");
    let token = session_token(&b).unwrap();
    assert_eq!(sessions_with_hash(&app, &token_hash(&token)).await, 1);

    let res = b.logout().await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/");
    assert!(
        raw_session_cookie(&b).is_none(),
        "the session cookie is still in the browser"
    );
    assert_eq!(sessions_with_hash(&app, &token_hash(&token)).await, 0);
    assert_eq!(session_count(&app).await, 0);
    assert!(!b.is_logged_in().await);

    let fresh = app.new_browser().await;
    let (status, to) = dashboard_with(&fresh, stolen).await;
    assert_eq!(status, Status::SeeOther);
    assert!(to.starts_with("/login"), "{to}");
}

#[rocket::async_test]
async fn a_token_planted_before_login_is_replaced_and_never_authenticated() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Ann").await;
    let victim = app.new_browser().await;
    let planted = "attacker-knows-this-token-value-0123456789abc";
    let res = victim
        .form_request("/login", &[("email", &email), ("password", PASSWORD)])
        .await
        .private_cookie(Cookie::new("quire_session", planted))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");

    let issued = session_token(&victim).expect("login sets a session cookie");
    assert_ne!(issued, planted, "the planted token was kept");
    assert!(victim.is_logged_in().await);
    assert_eq!(sessions_with_hash(&app, &token_hash(planted)).await, 0);

    // The attacker, holding the planted value, is not logged in.
    let attacker = app.new_browser().await;
    let res = attacker
        .client
        .get("/dashboard")
        .private_cookie(Cookie::new("quire_session", planted))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(location(&res).starts_with("/login"));
}

#[rocket::async_test]
async fn logging_in_again_rotates_the_token() {
    let app = TestApp::spawn().await;
    let (b, email) = app.author("Ann").await;
    let old = session_token(&b).unwrap();
    let old_cookie = raw_session_cookie(&b).unwrap();

    let res = b.login(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    let new = session_token(&b).unwrap();
    assert_ne!(new, old);
    assert_eq!(sessions_with_hash(&app, &token_hash(&old)).await, 0);
    assert_eq!(sessions_with_hash(&app, &token_hash(&new)).await, 1);
    assert_eq!(session_count(&app).await, 1);
    assert!(b.is_logged_in().await);

    let other = app.new_browser().await;
    let (status, _) = dashboard_with(&other, old_cookie).await;
    assert_eq!(status, Status::SeeOther, "the old token still works");
}

#[rocket::async_test]
async fn an_idle_browser_session_expires() {
    let app = TestApp::spawn_with(|f| f.merge(("auth.session_idle_minutes", 30))).await;
    let (b, _) = app.author("Ann").await;

    // Just under the limit: still logged in.
    idle_sessions(&app, 29 * 60).await;
    assert!(b.is_logged_in().await);

    // The request above counted as activity; now stay away past the limit.
    idle_sessions(&app, 31 * 60).await;
    let res = b.get("/dashboard").await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/login?next=%2Fdashboard");
    assert_eq!(session_count(&app).await, 0);
}

#[rocket::async_test]
async fn a_session_past_its_absolute_expiry_is_over_even_if_active() {
    let app = TestApp::spawn().await;
    let (b, _) = app.author("Ann").await;
    assert!(b.is_logged_in().await);
    expire_sessions(&app).await;
    let res = b.get("/dashboard").await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(location(&res).starts_with("/login"));
    assert_eq!(b.get("/account").await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn remember_me_outlasts_the_browser_idle_limit_but_not_its_own() {
    let app = TestApp::spawn().await;
    let (b, email) = app.author("Ann").await;
    b.logout().await;
    let res = b.login_remembered(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    let cookie = set_cookie(&res, "quire_session").expect("a session cookie");
    assert!(
        cookie.contains("Expires=") || cookie.contains("Max-Age="),
        "remember-me should be a persistent cookie: {cookie}"
    );

    // Two days away: far past the 8-hour browser-session idle limit.
    idle_sessions(&app, 2 * 86400).await;
    assert!(b.is_logged_in().await, "remember-me lost after two days");
    assert_eq!(session_count(&app).await, 1);

    // Fifteen days away: past remember_idle_days (14).
    idle_sessions(&app, 15 * 86400).await;
    assert!(
        !b.is_logged_in().await,
        "remember-me survived its idle limit"
    );
    assert_eq!(session_count(&app).await, 0);
}

#[rocket::async_test]
async fn a_browser_session_cookie_is_not_persistent() {
    let app = TestApp::spawn().await;
    let (b, email) = app.author("Ann").await;
    b.logout().await;
    let res = b.login(&email, PASSWORD).await;
    let cookie = set_cookie(&res, "quire_session").expect("a session cookie");
    assert!(
        !cookie.contains("Expires=") && !cookie.contains("Max-Age="),
        "without remember-me the cookie should end with the browser: {cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
}

#[rocket::async_test]
async fn personal_pages_are_not_cached() {
    let app = TestApp::spawn().await;
    let (b, _) = app.author("Ann").await;
    for path in ["/dashboard", "/account"] {
        let res = b.get(path).await;
        assert_eq!(res.status(), Status::Ok, "{path}");
        assert_eq!(
            res.headers().get_one("Cache-Control"),
            Some("no-store"),
            "{path}"
        );
    }
    // Anonymous public pages still answer (their caching is not prescribed).
    let slug = b.create_post("Hello", "Some words.", true).await;
    let reader = app.new_browser().await;
    for path in ["/".to_string(), format!("/posts/{slug}")] {
        assert_eq!(reader.get(&path).await.status(), Status::Ok, "{path}");
    }
}

#[rocket::async_test]
async fn a_session_made_on_one_instance_works_on_another() {
    let app = TestApp::spawn().await;
    let (b, _) = app.author("Ann Lee").await;
    let cookie = raw_session_cookie(&b).unwrap();

    let other = app.new_browser().await;
    let res = other.get_with_cookie("/account", cookie.clone()).await;
    assert_eq!(res.status(), Status::Ok);
    let page = res.into_string().await.unwrap();
    assert!(
        page.contains("Logged in as <strong>Ann Lee</strong>"),
        "{page}"
    );

    // Logging out on the first instance ends it on the second too.
    b.logout().await;
    let (status, _) = dashboard_with(&other, cookie).await;
    assert_eq!(status, Status::SeeOther);
}

#[rocket::async_test]
async fn expired_sessions_are_swept_at_most_once_a_minute() {
    use quire::db::sessions::sweep_expired;
    let app = TestApp::spawn().await;
    let (b, email) = app.author("Ann").await;
    let pool = app.db().await;
    let now = time::OffsetDateTime::now_utc();

    expire_sessions(&app).await;
    assert_eq!(sweep_expired(&pool, now).await.unwrap(), Some(1));
    assert_eq!(session_count(&app).await, 0);

    // A burst of logins within the minute leaves the sweep alone.
    assert_eq!(b.login(&email, PASSWORD).await.status(), Status::SeeOther);
    expire_sessions(&app).await;
    let later = now + time::Duration::seconds(59);
    assert_eq!(sweep_expired(&pool, later).await.unwrap(), None);
    assert_eq!(session_count(&app).await, 1);

    // A minute on, the expired row goes; a live one stays.
    let (_, _) = app.author("Bob").await;
    let due = now + time::Duration::seconds(60);
    assert_eq!(sweep_expired(&pool, due).await.unwrap(), Some(1));
    assert_eq!(session_count(&app).await, 1);
    assert!(!b.is_logged_in().await);
}
