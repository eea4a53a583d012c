//! The OIDC edges a reviewer probes: errors on the callback that nobody's login asked
//! for, a provider that is down, a client sending junk to make quire hammer the
//! provider, people whose groups change at the provider after they logged in, and
//! logging out from the account page.

use std::net::SocketAddr;

use rocket::futures::future::join_all;
use rocket::http::Status;

use crate::common::location;
use crate::common::oidc::{
    callback_url, finish, logged_in, oidc_login, query_of, start, with_param, Landing, OidcApp,
};
use crate::common::op::{OpUser, TestOp};
use crate::common::schema::{
    backdate_oidc_recheck, expire_oidc_access_tokens, oidc_tokens, set_oidc_refresh_tokens,
    OidcTokens,
};
use quire::auth::oidc::{OidcError, CODE_LIMIT, DISCOVERY_RETRY, START_LIMIT};

const UNVERIFIED: &str = "could not be verified";

/// GET `path` as a client at `ip`.
async fn get_from(app: &OidcApp, ip: &str, path: &str) -> (Status, String) {
    let addr: SocketAddr = format!("{ip}:4000").parse().unwrap();
    let res = app
        .client
        .get(path.to_string())
        .remote(addr)
        .dispatch()
        .await;
    let status = res.status();
    (status, res.into_string().await.unwrap_or_default())
}

#[rocket::async_test]
async fn an_error_on_the_callback_counts_only_with_the_state_of_this_browsers_login() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    // A login is under way; someone sends the browser an "access denied" of their own.
    let genuine = callback_url(&app, None).await;
    let forged = "/oidc/callback?error=access_denied&state=guessed";
    let landing = finish(&app, forged).await;
    landing.assert_friendly(Status::BadRequest, UNVERIFIED);
    assert!(!landing.text().contains("access denied"), "{landing:?}");
    // The forged answer spent this browser's login, like any answer.
    finish(&app, &genuine)
        .await
        .assert_friendly(Status::BadRequest, UNVERIFIED);

    // A browser with no login under way is not told the provider said anything either.
    let other = app.new_browser().await;
    let landing = finish(&other, forged).await;
    landing.assert_friendly(Status::BadRequest, UNVERIFIED);
    assert!(!landing.text().contains("access denied"), "{landing:?}");

    // With this login's state, the provider's access_denied is honoured.
    op.behave(|b| b.authorize_error = Some("access_denied".into()));
    oidc_login(&app, None)
        .await
        .assert_friendly(Status::Forbidden, "did not let you in (access denied)");
    assert!(op.token_requests().is_empty());
    assert!(!app.is_logged_in().await);
}

#[rocket::async_test]
async fn text_from_the_callbacks_query_is_never_shown_as_the_providers() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let phish = "Your account is locked. Call +1 555 0100 to unlock it";
    op.behave(|b| b.authorize_error = Some(phish.into()));
    let landing: Landing = oidc_login(&app, None).await;
    landing.assert_friendly(
        Status::BadRequest,
        "reported an error, so you are not logged in",
    );
    assert!(!landing.text().contains("555"), "{landing:?}");
    // A registered code is named, with quire's own words; the description never is.
    op.behave(|b| b.authorize_error = Some("server_error".into()));
    let landing = oidc_login(&app, None).await;
    landing.assert_friendly(
        Status::BadRequest,
        "server_error: it had an internal problem",
    );
    assert!(!landing.text().contains("told to answer"), "{landing:?}");

    // What goes to the log cannot forge a line or reorder one on screen.
    let err = OidcError::idp(
        "access_denied\r\nINFO forged",
        Some("denied\n[INFO] admin logged in\u{202e}"),
    );
    let logged = err.to_string();
    assert!(!logged.contains('\n') && !logged.contains('\r'), "{logged}");
    assert!(!logged.contains('\u{202e}'), "{logged}");
    let err = OidcError::idp("access_denied", Some("a\u{7}b"));
    assert!(!err.to_string().contains('\u{7}'), "{err}");
}

#[rocket::async_test]
async fn a_provider_that_is_down_is_asked_once_in_a_while_not_by_every_login() {
    let op = TestOp::start().await;
    op.behave(|b| b.discovery_status = Some(503));
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let pages = join_all((0..8).map(|_| app.get_text("/login/oidc"))).await;
    for (status, page) in &pages {
        assert_eq!(*status, Status::ServiceUnavailable, "{page}");
        assert!(page.contains("Sign-in provider unavailable"), "{page}");
    }
    for _ in 0..5 {
        assert_eq!(
            app.get("/login/oidc").await.status(),
            Status::ServiceUnavailable
        );
    }
    assert_eq!(
        op.discovery_fetches(),
        1,
        "every login asked the OP that is down"
    );

    // Once it is back and the failure is forgotten, logins work again.
    op.behave(|b| b.discovery_status = None);
    rocket::tokio::time::sleep(std::time::Duration::from_millis(
        DISCOVERY_RETRY as u64 * 1000 + 500,
    ))
    .await;
    logged_in(&app, None).await;
    assert_eq!(op.discovery_fetches(), 2);
}

#[rocket::async_test]
async fn logins_starting_together_fetch_discovery_once() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    // Slow enough that every login is waiting for discovery at once.
    op.behave(|b| b.discovery_delay_ms = 300);
    let statuses = join_all((0..8).map(|_| async { app.get("/login/oidc").await.status() })).await;
    assert!(
        statuses.iter().all(|s| *s == Status::SeeOther),
        "{statuses:?}"
    );
    assert_eq!(op.discovery_fetches(), 1, "a stampede on the OP");
}

#[rocket::async_test]
async fn starting_logins_is_rate_limited_per_client() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    for i in 0..START_LIMIT {
        let (status, page) = get_from(&app, "192.0.2.7", "/login/oidc").await;
        assert_eq!(status, Status::SeeOther, "start {i}: {page}");
    }
    let (status, page) = get_from(&app, "192.0.2.7", "/login/oidc").await;
    assert_eq!(status, Status::TooManyRequests, "{page}");
    assert!(page.contains("Too many sign-in attempts"), "{page}");
    assert!(page.contains("Try again"), "{page}");
    // Someone else is not held up by it.
    let (status, _) = get_from(&app, "198.51.100.9", "/login/oidc").await;
    assert_eq!(status, Status::SeeOther);
}

#[rocket::async_test]
async fn junk_codes_stop_reaching_the_token_endpoint_after_a_while() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    // A login that works costs nothing of the budget.
    logged_in(&app, None).await;
    app.logout().await;
    for i in 0..CODE_LIMIT {
        let callback = with_param(&callback_url(&app, None).await, "code", "junk");
        let landing = finish(&app, &callback).await;
        assert_eq!(
            landing.status,
            Status::BadRequest,
            "junk code {i}: {landing:?}"
        );
    }
    assert_eq!(op.token_requests().len() as i64, 1 + CODE_LIMIT);
    let callback = with_param(&callback_url(&app, None).await, "code", "junk");
    let landing = finish(&app, &callback).await;
    landing.assert_friendly(Status::TooManyRequests, "Too many sign-in attempts");
    assert_eq!(
        op.token_requests().len() as i64,
        1 + CODE_LIMIT,
        "a junk code reached the OP past the limit"
    );
}

/// A quire app with `admin_groups = ["blog-admins"]` and `allowed_groups = ["writers"]`,
/// its OP's user in both, logged in.
async fn admitted_admin(scopes: Option<&[&str]>) -> OidcApp {
    let op = TestOp::start().await;
    op.set_user(
        OpUser::new("sub-g", "g@example.com", "Gee").with_groups(&["writers", "blog-admins"]),
    );
    let app = OidcApp::spawn(&op, &["oidc"], |f| {
        let f = f
            .merge(("auth.oidc.admin_groups", ["blog-admins"]))
            .merge(("auth.oidc.allowed_groups", ["writers"]));
        match scopes {
            Some(s) => f.merge(("auth.oidc.scopes", s)),
            None => f,
        }
    })
    .await;
    logged_in(&app, None).await;
    assert!(app.users().await[0].is_admin);
    app
}

#[rocket::async_test]
async fn someone_removed_from_the_admin_groups_loses_admin_rights_within_recheck_minutes() {
    let app = admitted_admin(None).await;
    app.op
        .update_user("sub-g", |u| u.groups = vec!["writers".into()]);
    // Checked less than recheck_minutes (15) ago: nothing asked yet.
    backdate_oidc_recheck(&app, 10).await;
    assert!(app.is_logged_in().await);
    assert!(app.users().await[0].is_admin);
    backdate_oidc_recheck(&app, 16).await;
    assert!(app.is_logged_in().await, "still a writer, still logged in");
    assert!(!app.users().await[0].is_admin, "still an admin");
    let checked_at = oidc_tokens(&app).await.checked_at;
    assert!(quire::db::now() - checked_at < 5);
}

#[rocket::async_test]
async fn someone_removed_from_the_allowed_groups_is_logged_out_within_recheck_minutes() {
    let app = admitted_admin(None).await;
    app.op.update_user("sub-g", |u| u.groups.clear());
    backdate_oidc_recheck(&app, 16).await;
    let res = app.get("/dashboard").await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
    assert!(app.sessions().await.is_empty());
    assert!(!app.users().await[0].is_admin);
}

#[rocket::async_test]
async fn with_a_refresh_token_the_session_is_rechecked_and_lives_on() {
    let app = admitted_admin(Some(&["openid", "email", "profile", "offline_access"])).await;
    let scope = &app.op.authorize_requests()[0]["scope"];
    assert!(scope.contains("offline_access"), "{scope}");
    let refresh = oidc_tokens(&app).await.refresh_token;
    assert!(!refresh.is_empty(), "no refresh token kept");
    // The access token has expired too: only the refresh token can check.
    backdate_oidc_recheck(&app, 16).await;
    expire_oidc_access_tokens(&app).await;
    app.op
        .update_user("sub-g", |u| u.groups = vec!["writers".into()]);
    assert!(app.is_logged_in().await);
    let last = app.op.token_requests().last().cloned().unwrap();
    assert_eq!(last.grant_type.as_deref(), Some("refresh_token"));
    assert!(!app.users().await[0].is_admin);
    let OidcTokens {
        refresh_token: rotated,
        access_token: access,
        ..
    } = oidc_tokens(&app).await;
    assert!(!rotated.is_empty() && rotated != refresh && !access.is_empty());

    // Disabled at the provider: the refresh is refused and the session ends.
    app.op.revoke_tokens("sub-g");
    backdate_oidc_recheck(&app, 16).await;
    assert!(!app.is_logged_in().await);
    assert!(app.sessions().await.is_empty());
}

#[rocket::async_test]
async fn a_session_that_cannot_be_rechecked_ends_after_recheck_minutes() {
    // No refresh token (no offline_access) and the access token has expired.
    let app = admitted_admin(None).await;
    let refresh = oidc_tokens(&app).await.refresh_token;
    assert!(refresh.is_empty());
    backdate_oidc_recheck(&app, 16).await;
    expire_oidc_access_tokens(&app).await;
    assert!(
        !app.is_logged_in().await,
        "an unverifiable session lived on"
    );
    assert!(app.sessions().await.is_empty());
    let userinfo_calls = app.op.token_requests().len();
    assert_eq!(userinfo_calls, 1, "only the login's code exchange");

    // recheck_minutes is the operator's: at 60, a session checked 30 minutes ago stands.
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| {
        f.merge(("auth.oidc.recheck_minutes", 60))
    })
    .await;
    logged_in(&app, None).await;
    backdate_oidc_recheck(&app, 30).await;
    assert!(app.is_logged_in().await);
}

#[rocket::async_test]
async fn ending_the_current_session_on_the_account_page_logs_out_at_the_provider() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    logged_in(&app, None).await;
    let session = app.sessions().await.remove(0);
    let res = app
        .post_form(&format!("/account/sessions/{}/end", session.id), &[])
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let to = location(&res);
    assert!(
        to.starts_with(&format!("{}/end_session?", op.issuer())),
        "ended here only: {to}"
    );
    assert_eq!(query_of(&to)["id_token_hint"], session.id_token);
    assert!(app.sessions().await.is_empty());
    assert!(!app.is_logged_in().await);
    // The start helper still works afterwards (nothing left half-done).
    start(&app, None).await;
}

#[rocket::async_test]
async fn the_providers_tokens_are_stored_sealed_and_an_altered_one_ends_the_session() {
    let app = admitted_admin(Some(&["openid", "email", "profile", "offline_access"])).await;
    let stored = oidc_tokens(&app).await;
    assert!(stored.refresh_token.starts_with("v1."), "{stored:?}");
    assert!(stored.access_token.starts_with("v1."), "{stored:?}");
    // Only the refresh token can re-check; the OP takes only a token it issued.
    backdate_oidc_recheck(&app, 16).await;
    expire_oidc_access_tokens(&app).await;
    assert!(app.is_logged_in().await);
    let refresh = app.op.token_requests().last().cloned().unwrap();
    assert_eq!(refresh.grant_type.as_deref(), Some("refresh_token"));
    let issued = &refresh.params["refresh_token"];
    assert!(!issued.is_empty());
    assert!(
        !stored.refresh_token.contains(issued.as_str()),
        "the refresh token is stored as the OP issued it"
    );
    let rotated = oidc_tokens(&app).await.refresh_token;
    assert!(rotated.starts_with("v1.") && rotated != stored.refresh_token);

    // Altered in the database: no token, so the next re-check ends the session (no 500,
    // and nothing sent to the OP).
    let mut altered = rotated.into_bytes();
    altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
    set_oidc_refresh_tokens(&app, std::str::from_utf8(&altered).unwrap()).await;
    backdate_oidc_recheck(&app, 16).await;
    expire_oidc_access_tokens(&app).await;
    let asked = app.op.token_requests().len();
    let res = app.get("/dashboard").await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
    assert!(app.sessions().await.is_empty());
    assert_eq!(app.op.token_requests().len(), asked);
}
