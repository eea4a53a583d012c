//! Story: people who log in through the OpenID provider get accounts keyed by (issuer,
//! subject), kept up to date from the provider, never merged with local accounts by
//! email, limited by the allow-lists, made admins by group; their logout reaches the
//! provider, and the provider can end their quire sessions (back-channel logout).
//! `quire doctor` checks all this before anyone logs in.

use std::process::{Output, Stdio};

use rocket::http::{ContentType, Status};

use crate::common::oidc::*;
use crate::common::op::{Alg, OpUser, TestOp, CLIENT_ID};
use crate::common::process::quire_command;
use crate::common::*;

async fn spawn(op: &TestOp, providers: &[&str]) -> OidcApp {
    OidcApp::spawn(op, providers, |f| f).await
}

/// Logs `user` in through the OP in a new browser.
async fn login_as(app: &OidcApp, user: OpUser) -> Browser {
    app.op.set_user(user);
    let b = app.new_browser().await;
    logged_in(&b, None).await;
    b
}

/// A refused person: the page says why, they are not logged in, no account, no session.
async fn assert_refused(app: &OidcApp, user: OpUser, why: &str) {
    app.op.set_user(user.clone());
    let b = app.new_browser().await;
    let landing = oidc_login(&b, None).await;
    landing.assert_friendly(Status::Forbidden, "Not allowed to log in here");
    assert!(
        landing.page.contains(why),
        "{user:?}: {why:?} not said: {}",
        landing.page
    );
    assert!(!b.is_logged_in().await);
    let users = app.users().await;
    assert!(
        users.iter().all(|u| u.oidc_subject != user.sub),
        "{user:?} provisioned: {users:?}"
    );
}

#[rocket::async_test]
async fn the_first_login_creates_the_account_and_later_ones_refresh_it() {
    let op = TestOp::start().await;
    let app = spawn(&op, &["oidc"]).await;
    let b = login_as(&app, OpUser::new("sub-1", "kim@example.com", "Kim")).await;
    let users = app.users().await;
    assert_eq!(users.len(), 1);
    assert_eq!(
        (
            users[0].kind.as_str(),
            users[0].email.as_str(),
            users[0].name.as_str()
        ),
        ("oidc", "kim@example.com", "Kim")
    );
    let id = users[0].id;
    b.logout().await;

    // Renamed and moved at the IdP: the same account, refreshed.
    op.set_user(OpUser::new("sub-1", "kim.lee@example.org", "Kim Lee"));
    let page = logged_in(&b, None).await;
    assert!(page.contains("Welcome, Kim Lee."), "{page}");
    let users = app.users().await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].id, id);
    assert_eq!(
        (users[0].email.as_str(), users[0].name.as_str()),
        ("kim.lee@example.org", "Kim Lee")
    );

    // Another subject with the same email is another person.
    login_as(&app, OpUser::new("sub-2", "kim.lee@example.org", "Kim Two")).await;
    assert_eq!(app.users().await.len(), 2);
}

#[rocket::async_test]
async fn an_oidc_identity_claiming_a_local_email_is_a_separate_account() {
    let op = TestOp::start().await;
    let app = spawn(&op, &["local", "oidc"]).await;
    let local = app.new_browser().await;
    let res = local
        .signup("alice@example.com", "Alice Local", PASSWORD)
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let slug = local
        .create_post("Alice's draft", "Only mine.", false)
        .await;

    let impostor = login_as(
        &app,
        OpUser::new("alice-at-idp", "alice@example.com", "Alice IdP"),
    )
    .await;
    let users = app.users().await;
    assert_eq!(users.len(), 2, "{users:?}");
    assert!(users.iter().all(|u| u.email == "alice@example.com"));
    let kinds: Vec<&str> = users.iter().map(|u| u.kind.as_str()).collect();
    assert_eq!(kinds, ["local", "oidc"]);

    let edit = format!("/posts/{slug}/edit");
    // Someone else's draft does not exist for the impostor.
    assert_eq!(impostor.get(&edit).await.status(), Status::NotFound);
    let res = impostor
        .post_form(&edit, &[("title", "Taken over"), ("body", "Mine now.")])
        .await;
    assert_eq!(res.status(), Status::NotFound);
    let res = impostor
        .post_form(&format!("/posts/{slug}/delete"), &[])
        .await;
    assert_eq!(res.status(), Status::NotFound);
    let (_, dashboard) = impostor.get_text("/dashboard").await;
    assert!(!dashboard.contains(&slug), "{dashboard}");
    assert_eq!(
        impostor.get(&format!("/posts/{slug}")).await.status(),
        Status::NotFound
    );
    // The local account's post is untouched, and she can still log in with her password.
    let (status, page) = local.get_text(&edit).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Only mine."), "{page}");
    let b = app.new_browser().await;
    assert_eq!(
        b.login("alice@example.com", PASSWORD).await.status(),
        Status::SeeOther
    );
}

#[rocket::async_test]
async fn allowed_email_domains_admit_only_verified_addresses_in_them() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| {
        f.merge(("auth.oidc.allowed_email_domains", ["example.com"]))
    })
    .await;
    let mut unknown = OpUser::new("sub-unknown", "una@example.com", "Una");
    unknown.email_verified = None;
    assert_refused(&app, unknown, "has not verified your email address").await;
    let mut unverified = OpUser::new("sub-unverified", "uli@example.com", "Uli");
    unverified.email_verified = Some(false);
    assert_refused(&app, unverified, "has not verified your email address").await;
    // A verified address at another domain.
    assert_refused(
        &app,
        OpUser::new("sub-elsewhere", "eve@example.org", "Eve"),
        "example.org are not allowed",
    )
    .await;
    // Nor a domain that merely ends like it.
    assert_refused(
        &app,
        OpUser::new("sub-suffix", "mal@notexample.com", "Mal"),
        "notexample.com are not allowed",
    )
    .await;
    let mut no_email = OpUser::new("sub-none", "x@example.com", "Nemo");
    no_email.email = None;
    assert_refused(&app, no_email, "did not share an email address").await;
    assert!(app.users().await.is_empty());
    assert!(app.sessions().await.is_empty());

    login_as(&app, OpUser::new("sub-ok", "Ola@Example.COM", "Ola")).await;
    let users = app.users().await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].oidc_subject, "sub-ok");
}

#[rocket::async_test]
async fn allowed_groups_admit_only_their_members() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| {
        f.merge(("auth.oidc.allowed_groups", ["bloggers", "editors"]))
    })
    .await;
    assert_refused(
        &app,
        OpUser::new("sub-out", "out@example.com", "Out").with_groups(&["staff"]),
        "not in a group that is allowed",
    )
    .await;
    assert_refused(
        &app,
        OpUser::new("sub-none", "none@example.com", "None"),
        "not in a group that is allowed",
    )
    .await;
    assert!(app.users().await.is_empty());
    login_as(
        &app,
        OpUser::new("sub-in", "in@example.com", "In").with_groups(&["staff", "editors"]),
    )
    .await;
    assert_eq!(app.users().await.len(), 1);
}

#[rocket::async_test]
async fn admin_groups_make_admins_and_removal_demotes_at_the_next_login() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["local", "oidc"], |f| {
        f.merge(("auth.oidc.admin_groups", ["blog-admins"]))
    })
    .await;
    let (author, _) = app.author("Writer").await;
    let slug = author.create_post("Writer's post", "Original.", true).await;
    let edit = format!("/posts/{slug}/edit");

    let admin = OpUser::new("sub-admin", "root@example.com", "Root").with_groups(&["blog-admins"]);
    let b = login_as(&app, admin.clone()).await;
    assert!(app.users().await[1].is_admin);
    assert_eq!(b.get(&edit).await.status(), Status::Ok);
    let res = b
        .post_form(
            &edit,
            &[
                ("title", "Writer's post"),
                ("body", "Fixed by an admin."),
                ("publish", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let (_, page) = author.get_text(&format!("/posts/{slug}")).await;
    assert!(page.contains("Fixed by an admin."), "{page}");

    // Removed from the group at the IdP: the next login demotes.
    let b = login_as(&app, admin.with_groups(&["staff"])).await;
    assert!(!app.users().await[1].is_admin);
    assert_eq!(b.get(&edit).await.status(), Status::Forbidden);
    let res = b
        .post_form(&edit, &[("title", "Writer's post"), ("body", "Again.")])
        .await;
    assert_eq!(res.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn logging_out_of_an_oidc_session_logs_out_at_the_idp_too() {
    let op = TestOp::start().await;
    let app = spawn(&op, &["oidc"]).await;
    let b = login_as(&app, OpUser::new("sub-out", "out@example.com", "Out")).await;
    let sessions = app.sessions().await;
    assert_eq!(sessions.len(), 1);
    let id_token = sessions[0].id_token.clone();
    assert!(!id_token.is_empty());

    let res = b.logout().await;
    assert_eq!(res.status(), Status::SeeOther);
    let to = location(&res);
    assert!(
        to.starts_with(&format!("{}/end_session?", op.issuer())),
        "{to}"
    );
    let q = query_of(&to);
    assert_eq!(q.get("id_token_hint"), Some(&id_token));
    assert_eq!(q.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(
        q.get("post_logout_redirect_uri").map(String::as_str),
        Some("http://127.0.0.1:8000/")
    );
    assert!(q.get("state").is_some_and(|s| s.len() >= 16), "{q:?}");
    assert!(app.sessions().await.is_empty());
    assert!(!b.is_logged_in().await);

    // The OP sends the browser back to quire's home page, which does not start a new
    // login (with OIDC alone, /login would).
    let res = http().get(&to).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let back = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(op.end_session_requests().len(), 1);
    let back = back
        .strip_prefix(ORIGIN)
        .expect("back to quire")
        .to_string();
    let res = b.get(&back).await;
    assert_eq!(res.status(), Status::Ok, "bounced to {}", location(&res));
    assert!(op.authorize_requests().len() == 1, "a new login started");
    assert!(!b.is_logged_in().await);
}

#[rocket::async_test]
async fn a_configured_post_logout_redirect_is_sent_to_the_idp() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| {
        f.merge((
            "auth.oidc.post_logout_redirect_url",
            "http://127.0.0.1:8000/posts/goodbye",
        ))
    })
    .await;
    let b = login_as(&app, OpUser::new("sub-1", "a@example.com", "A")).await;
    let to = location(&b.logout().await);
    assert_eq!(
        query_of(&to)["post_logout_redirect_uri"],
        "http://127.0.0.1:8000/posts/goodbye"
    );
}

#[rocket::async_test]
async fn logging_out_of_a_local_session_does_not_go_to_the_idp() {
    let op = TestOp::start().await;
    let app = spawn(&op, &["local", "oidc"]).await;
    let (b, _) = app.author("Lena").await;
    let res = b.logout().await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/");
    assert!(!b.is_logged_in().await);
    assert!(app.sessions().await.is_empty());
    assert_eq!(
        op.discovery_fetches(),
        0,
        "asked the OP about a local logout"
    );
    assert_eq!(b.get("/").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn without_an_end_session_endpoint_logout_stays_on_the_site() {
    let op = TestOp::start().await;
    op.behave(|b| b.end_session = false);
    let app = spawn(&op, &["oidc"]).await;
    let b = login_as(&app, OpUser::new("sub-1", "a@example.com", "A")).await;
    let res = b.logout().await;
    assert_eq!(
        (res.status(), location(&res)),
        (Status::SeeOther, "/".into())
    );
    assert!(app.sessions().await.is_empty());
}

/// POSTs a logout token as the OP would (no cookies, no CSRF token).
async fn backchannel(app: &OidcApp, token: &str) -> (Status, String, Option<String>) {
    let res = app
        .client
        .post("/oidc/backchannel-logout")
        .header(ContentType::Form)
        .body(encode(&[("logout_token", token)]))
        .dispatch()
        .await;
    let status = res.status();
    let cache = res.headers().get_one("Cache-Control").map(str::to_string);
    (status, res.into_string().await.unwrap_or_default(), cache)
}

#[rocket::async_test]
async fn a_logout_token_naming_a_sid_ends_that_session() {
    let op = TestOp::start().await;
    let app = spawn(&op, &["oidc"]).await;
    let user = OpUser::new("sub-bc", "bc@example.com", "Bc");
    let first = login_as(&app, user.clone()).await;
    let sid = op.last_sid().expect("a sid");
    let second = login_as(&app, user).await;
    assert_ne!(op.last_sid(), Some(sid.clone()));

    let token = op.logout_token(None, Some(&sid), |_| {});
    let (status, body, cache) = backchannel(&app, &token).await;
    assert_eq!(status, Status::Ok, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert!(!first.is_logged_in().await, "the named session survived");
    assert!(second.is_logged_in().await, "another OP session ended too");
    let sessions = app.sessions().await;
    assert_eq!(sessions.len(), 1);
    assert_ne!(sessions[0].oidc_sid, sid);
}

#[rocket::async_test]
async fn a_logout_token_naming_only_a_sub_ends_all_that_persons_oidc_sessions() {
    let op = TestOp::start().await;
    let app = spawn(&op, &["local", "oidc"]).await;
    let user = OpUser::new("sub-gone", "gone@example.com", "Gone");
    let a = login_as(&app, user.clone()).await;
    let b = login_as(&app, user).await;
    let bystander = login_as(&app, OpUser::new("sub-stays", "stays@example.com", "Stays")).await;
    let (local, _) = app.author("Local").await;

    let token = op.logout_token(Some("sub-gone"), None, |_| {});
    let (status, body, cache) = backchannel(&app, &token).await;
    assert_eq!(status, Status::Ok, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert!(!a.is_logged_in().await && !b.is_logged_in().await);
    assert!(
        bystander.is_logged_in().await,
        "someone else was logged out"
    );
    assert!(local.is_logged_in().await, "a local session was logged out");
    assert_eq!(app.sessions().await.len(), 2);
}

#[rocket::async_test]
async fn bad_logout_tokens_are_refused_and_the_session_survives() {
    let op = TestOp::start().await;
    let app = spawn(&op, &["oidc"]).await;
    let b = login_as(&app, OpUser::new("sub-bc", "bc@example.com", "Bc")).await;
    let sid = op.last_sid().unwrap();
    let sub = Some("sub-bc");

    let mut bad: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            op.logout_token(sub, Some(&sid), |c| c["aud"] = "another-client".into()),
        ),
        (
            "wrong iss",
            op.logout_token(sub, Some(&sid), |c| c["iss"] = "http://127.0.0.1:9".into()),
        ),
        (
            "missing events",
            op.logout_token(sub, Some(&sid), |c| {
                c.as_object_mut().unwrap().remove("events");
            }),
        ),
        (
            "carrying a nonce",
            op.logout_token(sub, Some(&sid), |c| c["nonce"] = "n-1".into()),
        ),
        (
            "no jti",
            op.logout_token(sub, Some(&sid), |c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        (
            "no exp",
            op.logout_token(sub, Some(&sid), |c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("neither sub nor sid", op.logout_token(None, None, |_| {})),
        ("not a JWT", "not-a-token".into()),
    ];
    op.behave(|b| b.sign_with_stranger_key = true);
    bad.push(("forged", op.logout_token(sub, Some(&sid), |_| {})));
    op.behave(|b| {
        b.sign_with_stranger_key = false;
        b.alg = Alg::None;
    });
    bad.push(("alg none", op.logout_token(sub, Some(&sid), |_| {})));
    op.behave(|b| b.alg = Alg::HS256);
    bad.push(("HS256", op.logout_token(sub, Some(&sid), |_| {})));
    op.behave(|b| b.alg = Alg::RS256);

    for (what, token) in &bad {
        let (status, body, cache) = backchannel(&app, token).await;
        assert_eq!(status, Status::BadRequest, "{what}: {body}");
        assert_eq!(cache.as_deref(), Some("no-store"), "{what}");
        assert!(b.is_logged_in().await, "{what} ended the session");
    }
    let (status, _, _) = backchannel(&app, "").await;
    assert_eq!(status, Status::BadRequest);
    assert_eq!(app.sessions().await.len(), 1);

    // A sub that never logged in here ends nothing, even beside this session's sid.
    let stranger = op.logout_token(Some("someone-else"), Some(&sid), |_| {});
    assert_eq!(backchannel(&app, &stranger).await.0, Status::Ok);
    assert!(
        b.is_logged_in().await,
        "a stranger's logout ended this session"
    );

    // A genuine token works once; its replay is refused.
    let token = op.logout_token(sub, Some(&sid), |_| {});
    assert_eq!(backchannel(&app, &token).await.0, Status::Ok);
    assert!(!b.is_logged_in().await);
    let again = login_as(&app, OpUser::new("sub-bc", "bc@example.com", "Bc")).await;
    let (status, body, cache) = backchannel(&app, &token).await;
    assert_eq!(status, Status::BadRequest, "replay accepted: {body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert!(again.is_logged_in().await);
}

/// Runs `quire doctor` with `[auth.oidc]` pointing at `op` from the environment alone.
async fn doctor(op: &TestOp) -> Output {
    let auth = format!("{{providers=[\"oidc\"],{}}}", oidc_env(op, REDIRECT_URL));
    rocket::tokio::task::spawn_blocking(move || {
        let dir = tempfile::Builder::new()
            .prefix("quire-doctor-")
            .tempdir()
            .unwrap();
        let database = database::TestDatabase::sqlite(dir.path());
        quire_command(dir.path(), &database.url)
            .arg("doctor")
            .env("ROCKET_AUTH", auth)
            .stdin(Stdio::null())
            .output()
            .expect("quire runs")
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[rocket::async_test]
async fn doctor_prints_what_to_register_and_the_client_authentication() {
    let op = TestOp::start().await;
    let out = doctor(&op).await;
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    for expected in [
        REDIRECT_URL,
        "http://127.0.0.1:8000/",
        "http://127.0.0.1:8000/oidc/backchannel-logout",
        "client_secret_basic",
        &format!("{}/end_session", op.issuer()),
    ] {
        assert!(text.contains(expected), "{expected:?} missing: {text}");
    }
    assert_eq!(op.discovery_fetches(), 1);

    op.behave(|b| b.auth_methods = vec!["client_secret_post".into()]);
    let text = self::text(&doctor(&op).await);
    assert!(text.contains("client_secret_post"), "{text}");
    assert!(!text.contains("client_secret_basic"), "{text}");
}

#[rocket::async_test]
async fn doctor_fails_on_a_trailing_slash_issuer_showing_both_strings() {
    let op = TestOp::start().await;
    let issuer = op.issuer();
    let published = format!("{issuer}/");
    op.behave(|b| b.issuer_in_discovery = Some(published.clone()));
    let out = doctor(&op).await;
    let text = text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&format!("{issuer:?}")), "{text}");
    assert!(text.contains(&format!("{published:?}")), "{text}");

    // An OP that is down is a failure too.
    op.stop().await;
    let out = doctor(&op).await;
    assert!(!out.status.success(), "{}", self::text(&out));
}
