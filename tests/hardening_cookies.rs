//! Story: over HTTPS quire's cookies carry the `__Host-` prefix, so a sibling subdomain
//! (or a plain-http page on the same host) cannot plant a session, a CSRF token or a
//! pending OIDC login in a reader's browser; and once a browser is logged in, its forms
//! must carry the token bound to that session, not whatever CSRF cookie it holds.

use rocket::http::{ContentType, Cookie, Status};
use rocket::local::asynchronous::LocalResponse;

use crate::common::oidc::OidcApp;
use crate::common::op::TestOp;
use crate::common::*;

fn trusting_the_proxy(f: rocket::figment::Figment) -> rocket::figment::Figment {
    f.merge(("trusted_proxies", ["127.0.0.1"]))
}

/// A form POST over HTTPS with exactly these fields (the CSRF token included by the caller).
async fn post_https<'c>(b: &'c Browser, path: &str, fields: &[(&str, &str)]) -> LocalResponse<'c> {
    via_tls_proxy(
        b.client
            .post(path.to_string())
            .header(ContentType::Form)
            .body(encode(fields)),
    )
    .dispatch()
    .await
}

async fn get_https<'c>(b: &'c Browser, path: &str) -> LocalResponse<'c> {
    via_tls_proxy(b.client.get(path.to_string()))
        .dispatch()
        .await
}

/// The Set-Cookie header for `name`, which must be Secure, for Path=/ and without a
/// Domain (what browsers demand of a `__Host-` cookie before they keep it).
fn host_only_cookie(res: &LocalResponse<'_>, name: &str) -> String {
    let header = set_cookie(res, name).unwrap_or_else(|| {
        panic!("no {name} cookie among {:?}", set_cookies(res));
    });
    let parsed = Cookie::parse(header.clone()).expect("a well-formed cookie");
    assert_eq!(parsed.secure(), Some(true), "{header}");
    assert_eq!(parsed.path(), Some("/"), "{header}");
    assert_eq!(parsed.domain(), None, "{header}");
    assert_eq!(parsed.http_only(), Some(true), "{header}");
    header
}

/// Nothing set under the plain (unprefixed) name.
fn no_plain_cookie(res: &LocalResponse<'_>, name: &str) {
    assert!(
        set_cookie(res, name).is_none(),
        "{name} set without the prefix: {:?}",
        set_cookies(res)
    );
}

#[rocket::async_test]
async fn over_https_the_csrf_and_session_cookies_are_host_only() {
    let app = TestApp::spawn_with(trusting_the_proxy).await;
    let form = get_https(&app, "/signup").await;
    host_only_cookie(&form, "__Host-quire_csrf");
    no_plain_cookie(&form, "quire_csrf");
    let token = csrf_token_in(&form.into_string().await.unwrap());

    let email = unique_email("hosted");
    let res = post_https(
        &app,
        "/signup",
        &[
            ("csrf_token", &token),
            ("email", &email),
            ("name", "Hosted"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), Status::SeeOther);
    host_only_cookie(&res, "__Host-quire_session");
    no_plain_cookie(&res, "quire_session");
    assert_eq!(
        get_https(&app, "/dashboard").await.status(),
        Status::Ok,
        "the __Host- session logs the browser in"
    );

    // Logging out over HTTPS removes the prefixed cookie (a removal browsers accept:
    // Secure, Path=/), and the session is gone.
    let page = get_https(&app, "/dashboard")
        .await
        .into_string()
        .await
        .unwrap();
    let res = post_https(&app, "/logout", &[("csrf_token", &csrf_token_in(&page))]).await;
    assert_eq!(res.status(), Status::SeeOther);
    let removal = set_cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("__Host-quire_session=;"))
        .unwrap_or_else(|| panic!("the session cookie not removed: {:?}", set_cookies(&res)));
    assert!(removal.contains("Secure"), "{removal}");
    assert!(removal.contains("Path=/"), "{removal}");
    assert_eq!(
        get_https(&app, "/dashboard").await.status(),
        Status::SeeOther
    );
}

#[rocket::async_test]
async fn over_https_the_pending_oidc_login_cookie_is_host_only() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], trusting_the_proxy).await;
    let res = get_https(&app, "/login/oidc?next=%2Faccount").await;
    assert_eq!(res.status(), Status::SeeOther, "off to the provider");
    host_only_cookie(&res, "__Host-quire_oidc");
    no_plain_cookie(&res, "quire_oidc");
}

#[rocket::async_test]
async fn over_https_a_session_cookie_without_the_prefix_counts_for_nothing() {
    let app = TestApp::spawn_with(trusting_the_proxy).await;
    // A real session, set over plain HTTP: what a page on a sibling subdomain (or an
    // http:// page) could plant under the unprefixed name.
    let (owner, _) = app.author("Owner").await;
    let planted = owner.cookie("quire_session").expect("a session cookie");
    assert!(owner.is_logged_in().await);

    let victim = app.new_browser().await;
    let res = via_tls_proxy(victim.client.get("/dashboard").cookie(planted.clone()))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther, "the plain cookie logged in");
    assert!(location(&res).starts_with("/login"), "{}", location(&res));

    // Over plain HTTP the same cookie still works: the prefix is only for HTTPS.
    let res = victim.get_with_cookie("/dashboard", planted).await;
    assert_eq!(res.status(), Status::Ok);
}

#[rocket::async_test]
async fn over_https_a_csrf_cookie_without_the_prefix_counts_for_nothing() {
    let app = TestApp::spawn_with(trusting_the_proxy).await;
    // A pre-login token and its cookie as plain HTTP issues them.
    let attacker = app.new_browser().await;
    let token = attacker.csrf_token().await;
    let planted = attacker.cookie("quire_csrf").expect("a CSRF cookie");

    let victim = app.new_browser().await;
    let email = unique_email("planted");
    let res = via_tls_proxy(
        victim
            .client
            .post("/signup")
            .header(ContentType::Form)
            .cookie(planted)
            .body(encode(&[
                ("csrf_token", token.as_str()),
                ("email", &email),
                ("name", "Planted"),
                ("password", PASSWORD),
            ])),
    )
    .dispatch()
    .await;
    assert_eq!(res.status(), Status::Forbidden);
    assert_eq!(user_count(&app).await, 0, "an account made anyway");
}

#[rocket::async_test]
async fn a_planted_pre_login_csrf_cookie_is_no_use_against_a_session() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ann").await;
    let session = author.cookie("quire_session").expect("a session cookie");

    // The attacker's own pre-login token and cookie, planted next to the author's
    // session (a cookie's value can be copied from any browser; quire seals, not binds).
    let attacker = app.new_browser().await;
    let token = attacker.csrf_token().await;
    let planted = attacker.cookie("quire_csrf").expect("a CSRF cookie");

    let victim = app.new_browser().await;
    let res = victim
        .client
        .post("/posts")
        .header(ContentType::Form)
        .cookie(session.clone())
        .cookie(planted)
        .body(encode(&[
            ("csrf_token", token.as_str()),
            ("title", "Forged"),
            ("body", "Posted by someone else."),
            ("publish", "true"),
        ]))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Forbidden);
    assert_eq!(post_count(&app).await, 0, "the forged post was saved");

    // The author's own form, as the page gave it, still works.
    let page = author.get_text("/dashboard").await.1;
    let res = author
        .post_raw(
            "/posts",
            &encode(&[
                ("csrf_token", csrf_token_in(&page).as_str()),
                ("title", "Mine"),
                ("body", "Posted by me."),
                ("publish", "true"),
            ]),
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(post_count(&app).await, 1);
}

#[rocket::async_test]
async fn every_login_changes_the_token_and_an_old_sessions_forms_stop_working() {
    let app = TestApp::spawn().await;
    let (email, b) = {
        let (b, email) = app.author("Turner").await;
        (email, b)
    };
    let first = csrf_token_in(&b.get_text("/dashboard").await.1);
    assert_eq!(b.logout().await.status(), Status::SeeOther);

    let login_page = b.get_text("/login").await.1;
    let before_login = csrf_token_in(&login_page);
    assert_ne!(before_login, first, "logging out kept the session's token");
    let res = b
        .post_raw(
            "/login",
            &encode(&[
                ("csrf_token", before_login.as_str()),
                ("email", &email),
                ("password", PASSWORD),
            ]),
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let second = csrf_token_in(&b.get_text("/dashboard").await.1);
    assert_ne!(
        second, before_login,
        "the pre-login token survived the login"
    );
    assert_ne!(second, first, "a new session kept the old session's token");

    for stale in [&first, &before_login] {
        let res = b
            .post_raw(
                "/posts",
                &encode(&[
                    ("csrf_token", stale.as_str()),
                    ("title", "Stale"),
                    ("body", "From an old form."),
                ]),
            )
            .await;
        assert_eq!(
            res.status(),
            Status::Forbidden,
            "token {stale} still accepted"
        );
    }
    assert_eq!(post_count(&app).await, 0);
}
