//! Story: an author logs in through an OpenID provider (code flow, PKCE, state, nonce),
//! and every answer from the provider that cannot be trusted ends on a friendly page with
//! a way to try again, never a 500 and never a session. The provider being down, or
//! coming back, never needs a restart of quire.

use rocket::http::{Cookie, Status};
use serde_json::json;

use crate::common::oidc::*;
use crate::common::op::{s256, Alg, AtHash, Behavior, OpUser, TestOp, CLIENT_ID};
use crate::common::*;

/// A login that `misbehave` spoils: the friendly page with `status` and `text`, not
/// logged in, nobody provisioned, no session row.
async fn refused(misbehave: impl FnOnce(&mut Behavior), status: Status, text: &str) -> OidcApp {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    op.behave(misbehave);
    let landing = oidc_login(&app, Some("/account")).await;
    landing.assert_friendly(status, text);
    assert!(
        landing
            .text()
            .contains("href=\"/login/oidc?next=%2Faccount\""),
        "the retry keeps next: {}",
        landing.page
    );
    assert_eq!(app.get("/dashboard").await.status(), Status::SeeOther);
    assert!(app.users().await.is_empty(), "provisioned anyway");
    assert!(app.sessions().await.is_empty(), "a session anyway");
    app
}

/// The page a failed check ends on.
const UNVERIFIED: &str = "could not be verified";

/// A login that `misbehave` spoils in a way quire must catch: refused as unverified.
async fn unverified(misbehave: impl FnOnce(&mut Behavior)) -> OidcApp {
    refused(misbehave, Status::BadRequest, UNVERIFIED).await
}

#[rocket::async_test]
async fn logging_in_lands_on_next_with_a_greeting_from_userinfo() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    // The ID token is thin (the default, like Okta's): the name comes from userinfo.
    op.set_user(OpUser::new("sub-ada", "Ada@Example.com", "Ada Lovelace"));

    let authorize_url = start(&app, Some("/account")).await;
    let pending = app.cookie("quire_oidc").expect("the pre-login cookie");
    assert!(pending.http_only().unwrap_or(false), "{pending:?}");
    assert_eq!(pending.same_site(), Some(rocket::http::SameSite::Lax));
    let callback = authorize(&authorize_url).await;
    let landing = finish(&app, &callback).await;
    assert_eq!(landing.status, Status::SeeOther, "{landing:?}");
    assert_eq!(landing.location, "/account");
    assert!(
        app.cookie("quire_oidc").is_none(),
        "the pre-login cookie outlives the login"
    );
    let (status, page) = app.get_text("/account").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Welcome, Ada Lovelace."), "{page}");
    assert!(app.is_logged_in().await);

    let users = app.users().await;
    assert_eq!(users.len(), 1, "{users:?}");
    let user = &users[0];
    assert_eq!(user.kind, "oidc");
    assert_eq!(
        (user.oidc_issuer.as_str(), user.oidc_subject.as_str()),
        (op.issuer().as_str(), "sub-ada")
    );
    assert_eq!(user.email, "ada@example.com");
    assert_eq!(user.name, "Ada Lovelace");

    let sessions = app.sessions().await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let session = &sessions[0];
    assert_eq!(
        (session.provider.as_str(), session.user_id),
        ("oidc", user.id)
    );
    // The raw ID token the OP issued: it verifies against the OP's key and is the one
    // of this login (its nonce is the one quire sent).
    let claims = verified_claims(&op, &session.id_token)
        .await
        .expect("the stored ID token is the OP's");
    assert_eq!(claims["sub"], "sub-ada");
    assert_eq!(
        claims["nonce"],
        op.authorize_requests()[0]["nonce"].as_str()
    );
    assert_eq!(Some(session.oidc_sid.clone()), op.last_sid());
}

#[rocket::async_test]
async fn without_next_the_login_lands_on_the_dashboard() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let page = logged_in(&app, None).await;
    assert!(page.contains("Welcome, Op User."), "{page}");
    // An offsite next is not followed.
    let b = app.new_browser().await;
    let landing = oidc_login(&b, Some("//evil.example/")).await;
    assert_eq!(
        (landing.status, landing.location.as_str()),
        (Status::SeeOther, "/dashboard")
    );
}

#[rocket::async_test]
async fn without_userinfo_the_id_tokens_claims_are_used_and_at_hash_is_optional() {
    let op = TestOp::start().await;
    op.behave(|b| {
        b.userinfo_available = false;
        b.thin_id_token = false;
        b.at_hash = AtHash::Omit;
    });
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    op.set_user(OpUser::new("sub-fat", "fat@example.com", "Fay Token"));
    let page = logged_in(&app, None).await;
    assert!(page.contains("Welcome, Fay Token."), "{page}");
    let users = app.users().await;
    assert_eq!(
        (users[0].email.as_str(), users[0].name.as_str()),
        ("fat@example.com", "Fay Token")
    );
}

#[rocket::async_test]
async fn a_login_started_on_one_instance_finishes_on_another() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let callback = callback_url(&app, Some("/account")).await;
    let sealed = app
        .cookie("quire_oidc")
        .expect("pre-login cookie")
        .value()
        .to_string();
    // The load balancer sends the way back to another instance (same secret key).
    let other = app.new_browser().await;
    let res = other
        .get_with_cookie(&callback, Cookie::new("quire_oidc", sealed))
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/account");
    assert!(other.is_logged_in().await);
}

#[rocket::async_test]
async fn the_authorization_request_carries_pkce_s256_state_nonce_and_the_scopes() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| {
        f.merge(("auth.oidc.scopes", ["openid", "email", "profile", "groups"]))
    })
    .await;
    logged_in(&app, None).await;
    let b = app.new_browser().await;
    logged_in(&b, None).await;

    let requests = op.authorize_requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r["response_type"], "code");
        assert_eq!(r["client_id"], CLIENT_ID);
        assert_eq!(r["redirect_uri"], REDIRECT_URL);
        assert_eq!(r["code_challenge_method"], "S256");
        let mut scopes: Vec<&str> = r["scope"].split(' ').collect();
        scopes.sort();
        assert_eq!(scopes, ["email", "groups", "openid", "profile"]);
        for k in ["state", "nonce", "code_challenge"] {
            assert!(r[k].len() >= 16, "{k} is weak: {r:?}");
        }
    }
    // Fresh for every login.
    for k in ["state", "nonce", "code_challenge"] {
        assert_ne!(requests[0][k], requests[1][k], "{k} reused");
    }
    // The verifier sent to /token is the one behind the challenge.
    let tokens = op.token_requests();
    for (t, a) in tokens.iter().zip(&requests) {
        let verifier = t.code_verifier.as_deref().expect("code_verifier sent");
        assert_eq!(s256(verifier), a["code_challenge"]);
        assert_eq!(t.redirect_uri.as_deref(), Some(REDIRECT_URL));
    }
}

#[rocket::async_test]
async fn the_token_endpoint_gets_exactly_one_client_authentication_method() {
    let op = TestOp::start().await;
    // Both advertised: Basic, and no secret in the body.
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    logged_in(&app, None).await;
    let t = &op.token_requests()[0];
    assert!(t.basic_auth, "{t:?}");
    assert!(!t.body_client_secret, "both methods sent: {t:?}");

    // Only client_secret_post advertised (a fresh quire, so discovery is read anew).
    let op = TestOp::start().await;
    op.behave(|b| b.auth_methods = vec!["client_secret_post".into()]);
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    logged_in(&app, None).await;
    let t = &op.token_requests()[0];
    assert!(!t.basic_auth, "both methods sent: {t:?}");
    assert!(t.body_client_id && t.body_client_secret, "{t:?}");

    // Nothing advertised: the spec's default, Basic.
    let op = TestOp::start().await;
    op.behave(|b| b.auth_methods = Vec::new());
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    logged_in(&app, None).await;
    let t = &op.token_requests()[0];
    assert!(t.basic_auth && !t.body_client_secret, "{t:?}");
}

#[rocket::async_test]
async fn an_id_token_signed_by_a_stranger_is_refused() {
    unverified(|b| b.sign_with_stranger_key = true).await;
}

#[rocket::async_test]
async fn an_unsigned_id_token_is_refused() {
    unverified(|b| b.alg = Alg::None).await;
}

#[rocket::async_test]
async fn an_hs256_id_token_is_refused_when_rs256_is_pinned() {
    // Signed with the client secret, which quire knows: only the pin refuses it.
    unverified(|b| b.alg = Alg::HS256).await;
}

#[rocket::async_test]
async fn an_id_token_from_another_issuer_is_refused() {
    unverified(|b| b.iss = Some("http://127.0.0.1:9/evil".into())).await;
}

#[rocket::async_test]
async fn an_id_token_for_another_client_is_refused() {
    unverified(|b| b.aud = Some(json!("another-client"))).await;
}

#[rocket::async_test]
async fn an_id_token_authorized_for_another_party_is_refused() {
    // Audience includes quire, but the token was issued to someone else.
    unverified(|b| {
        b.aud = Some(json!([CLIENT_ID, "another-client"]));
        b.azp = Some(Some("another-client".into()));
    })
    .await;
    // A single audience and a foreign azp.
    unverified(|b| b.azp = Some(Some("another-client".into()))).await;
}

#[rocket::async_test]
async fn an_expired_id_token_is_refused() {
    unverified(|b| b.exp_offset = -600).await;
}

#[rocket::async_test]
async fn an_id_token_without_iat_is_refused() {
    unverified(|b| b.iat_offset = None).await;
}

#[rocket::async_test]
async fn an_id_token_issued_in_the_future_is_refused() {
    unverified(|b| {
        b.iat_offset = Some(3600);
        b.exp_offset = 7200;
    })
    .await;
}

#[rocket::async_test]
async fn an_id_token_with_another_nonce_is_refused() {
    unverified(|b| b.nonce = Some("a-nonce-from-another-login".into())).await;
}

#[rocket::async_test]
async fn a_wrong_at_hash_is_refused() {
    unverified(|b| b.at_hash = AtHash::Wrong).await;
}

#[rocket::async_test]
async fn a_userinfo_subject_other_than_the_id_tokens_is_refused() {
    unverified(|b| b.userinfo_sub = Some("someone-else".into())).await;
}

#[rocket::async_test]
async fn access_denied_at_the_idp_says_so() {
    let app = refused(
        |b| b.authorize_error = Some("access_denied".into()),
        Status::Forbidden,
        "did not let you in (access denied)",
    )
    .await;
    assert!(app.op.token_requests().is_empty());
    // Any other error is named on the page too.
    app.op
        .behave(|b| b.authorize_error = Some("temporarily_unavailable".into()));
    let landing = oidc_login(&app, None).await;
    landing.assert_friendly(Status::BadRequest, "temporarily_unavailable");
    assert!(!app.is_logged_in().await);
}

#[rocket::async_test]
async fn a_failing_token_endpoint_ends_on_the_friendly_page() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    for status in [500, 400, 401] {
        op.behave(|b| b.token_status = Some(status));
        let landing = oidc_login(&app, None).await;
        assert_ne!(landing.status, Status::InternalServerError, "{landing:?}");
        assert!(
            landing.status == Status::BadRequest || landing.status == Status::ServiceUnavailable,
            "{status}: {landing:?}"
        );
        landing.assert_friendly(landing.status, "not logged in");
        assert!(!app.is_logged_in().await);
    }
    assert_eq!(op.token_requests().len(), 3);
    assert!(app.users().await.is_empty() && app.sessions().await.is_empty());
}

#[rocket::async_test]
async fn a_tampered_state_is_refused_before_the_code_is_used() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let callback = callback_url(&app, None).await;
    let state = query_of(&callback)["state"].clone();
    let tampered = with_param(&callback, "state", &format!("{state}x"));
    let landing = finish(&app, &tampered).await;
    landing.assert_friendly(Status::BadRequest, UNVERIFIED);
    assert!(op.token_requests().is_empty(), "the code was exchanged");
    assert!(!app.is_logged_in().await);
    assert!(app.sessions().await.is_empty() && app.users().await.is_empty());
    // The pending login was spent by the attempt: the genuine answer no longer works.
    let landing = finish(&app, &callback).await;
    landing.assert_friendly(Status::BadRequest, UNVERIFIED);
    assert!(!app.is_logged_in().await);
}

#[rocket::async_test]
async fn a_callback_without_a_login_in_progress_is_refused() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let callback = callback_url(&app, None).await;
    // Another browser, which never started a login, receives the answer.
    let other = app.new_browser().await;
    finish(&other, &callback)
        .await
        .assert_friendly(Status::BadRequest, UNVERIFIED);
    assert!(!other.is_logged_in().await);
    assert!(op.token_requests().is_empty());
    assert!(app.sessions().await.is_empty());
}

#[rocket::async_test]
async fn a_replayed_callback_is_refused_in_the_same_browser() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let callback = callback_url(&app, None).await;
    assert_eq!(finish(&app, &callback).await.status, Status::SeeOther);
    assert!(app.is_logged_in().await);
    let res = app.logout().await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(!app.is_logged_in().await);

    let landing = finish(&app, &callback).await;
    landing.assert_friendly(Status::BadRequest, UNVERIFIED);
    assert!(!app.is_logged_in().await);
    assert!(app.sessions().await.is_empty());
    assert_eq!(op.token_requests().len(), 1, "the code was sent again");
}

#[rocket::async_test]
async fn a_replayed_callback_with_a_copied_pre_login_cookie_is_refused_by_the_database() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let first = app.new_browser().await;
    let callback = callback_url(&first, None).await;
    let sealed = first
        .cookie("quire_oidc")
        .expect("pre-login cookie")
        .value()
        .to_string();
    assert_eq!(finish(&first, &callback).await.status, Status::SeeOther);
    assert!(first.is_logged_in().await);

    // Another browser (or instance) holding a copy of the cookie, with the same answer.
    let second = app.new_browser().await;
    let res = second
        .get_with_cookie(&callback, Cookie::new("quire_oidc", sealed))
        .await;
    let landing = Landing::read(res).await;
    landing.assert_friendly(Status::BadRequest, UNVERIFIED);
    assert!(!second.is_logged_in().await);
    assert_eq!(app.sessions().await.len(), 1, "a second session");
    // Refused by quire's single-use record, before the OP was asked about the code again.
    assert_eq!(op.token_requests().len(), 1, "the code was sent again");
    assert_eq!(used_once_count(&app).await, 1);
}

#[rocket::async_test]
async fn a_rotated_signing_key_is_fetched_and_accepted() {
    // One browser, so one quire instance and one JWKS cache throughout.
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    logged_in(&app, None).await;
    assert_eq!(op.jwks_fetches(), 1);
    logged_in(&app, None).await;
    assert_eq!(op.jwks_fetches(), 1, "the JWKS is not cached");

    // The OP rotates right after quire cached its keys: the new kid is unknown.
    op.rotate_key();
    let page = logged_in(&app, None).await;
    assert!(page.contains("Welcome, Op User."), "{page}");
    assert_eq!(op.jwks_fetches(), 2);
    let session = app.sessions().await.pop().expect("a session");
    let header = jsonwebtoken::decode_header(&session.id_token).expect("a JWT");
    assert_eq!(header.kid.as_deref(), Some("kid-2"));
    // The new keys are cached in turn.
    logged_in(&app, None).await;
    assert_eq!(op.jwks_fetches(), 2);
}

#[rocket::async_test]
async fn an_unknown_key_id_refetches_the_jwks_at_most_once_in_a_while() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    logged_in(&app, None).await;
    app.logout().await;
    let fetches = op.jwks_fetches();
    op.behave(|b| b.kid = Some("kid-nobody-has".into()));
    for _ in 0..3 {
        oidc_login(&app, None)
            .await
            .assert_friendly(Status::BadRequest, UNVERIFIED);
        assert!(!app.is_logged_in().await);
    }
    assert!(
        op.jwks_fetches() <= fetches + 1,
        "a forged kid makes quire hammer the OP: {} fetches",
        op.jwks_fetches()
    );
    assert!(app.sessions().await.is_empty());
}

#[rocket::async_test]
async fn an_idp_down_at_start_does_not_stop_the_blog_and_login_works_once_it_is_up() {
    let op = TestOp::start().await;
    let port = op.port();
    op.stop().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let (status, _) = app.get_text("/").await;
    assert_eq!(status, Status::Ok);
    let (status, page) = app.get_text("/login/oidc?next=/account").await;
    assert_eq!(status, Status::ServiceUnavailable, "{page}");
    assert!(page.contains("Sign-in provider unavailable"), "{page}");
    assert!(page.contains("Try again"), "{page}");
    assert!(app.cookie("quire_oidc").is_none());
    assert_eq!(app.get("/dashboard").await.status(), Status::SeeOther);

    // The same quire, once the OP is back and the failure is no longer remembered.
    let op = TestOp::start_on(port).await;
    rocket::tokio::time::sleep(std::time::Duration::from_millis(
        quire::auth::oidc::DISCOVERY_RETRY as u64 * 1000 + 500,
    ))
    .await;
    let page = logged_in(&app, Some("/account")).await;
    assert!(page.contains("Welcome, Op User."), "{page}");
    assert_eq!(op.discovery_fetches(), 1);
}

#[rocket::async_test]
async fn an_issuer_differing_by_a_trailing_slash_is_reported_with_both_strings() {
    let op = TestOp::start().await;
    let issuer = op.issuer();
    op.behave(|b| b.issuer_in_discovery = Some(format!("{issuer}/")));
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let (status, page) = app.get_text("/login/oidc").await;
    assert_eq!(status, Status::ServiceUnavailable, "{page}");
    assert!(page.contains("Sign-in provider unavailable"), "{page}");
    assert!(op.authorize_requests().is_empty());

    let cfg: quire::config::OidcConfig = app.figment.extract_inner("auth.oidc").unwrap();
    let err = quire::auth::oidc::OidcProvider::new(&cfg)
        .unwrap()
        .discover()
        .await
        .expect_err("a mismatched issuer is accepted");
    let err = err.to_string();
    assert!(err.contains(&format!("{issuer:?}")), "{err}");
    assert!(
        err.contains(&format!("{:?}", format!("{issuer}/"))),
        "{err}"
    );
    assert!(err.contains("trailing slash"), "{err}");
}

#[rocket::async_test]
async fn a_misconfigured_oidc_section_stops_launch_naming_the_key() {
    let op = TestOp::start().await;
    let dir = tempfile::Builder::new()
        .prefix("quire-oidc-config-")
        .tempdir()
        .unwrap();
    let base = oidc_figment(
        test_figment(&database::TestDatabase::sqlite(dir.path())),
        &op,
        &["oidc"],
    );
    let without_client_id = {
        let mut f = test_figment(&database::TestDatabase::sqlite(dir.path()))
            .merge(("auth.providers", ["oidc"]));
        for (k, v) in [
            ("issuer", op.issuer()),
            ("client_secret", "s".into()),
            ("redirect_url", REDIRECT_URL.into()),
        ] {
            f = f.merge((format!("auth.oidc.{k}"), v));
        }
        f
    };
    let bad = [
        ("client_id", without_client_id),
        (
            "auth.oidc.client_id",
            base.clone().merge(("auth.oidc.client_id", "")),
        ),
        (
            "auth.oidc.issuer",
            base.clone()
                .merge(("auth.oidc.issuer", "http://idp.example.com/oauth2/default")),
        ),
        (
            "auth.oidc.redirect_url",
            base.clone()
                .merge(("auth.oidc.redirect_url", "http://127.0.0.1:8000/callback")),
        ),
        (
            "auth.oidc",
            test_figment(&database::TestDatabase::sqlite(dir.path()))
                .merge(("auth.providers", ["oidc"])),
        ),
    ];
    for (key, figment) in bad {
        assert_launch_refused(figment, key).await;
    }
    // https anywhere, and the base itself, are fine: the refusals above are about values.
    for good in [
        base.clone()
            .merge(("auth.oidc.issuer", "https://idp.example.com/oauth2/default")),
        base,
    ] {
        quire::config::Config::from_figment(&good).expect("a good configuration");
        assert_launches(good).await;
    }
}

#[rocket::async_test]
async fn the_login_page_offers_both_ways_when_both_are_configured() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["local", "oidc"], |f| {
        f.merge(("auth.oidc.display_name", "Acme SSO"))
    })
    .await;
    let (status, page) = app.get_text("/login?next=/account").await;
    let page = unescape(&page);
    assert_eq!(status, Status::Ok);
    assert!(page.contains("name=\"password\""), "no local form: {page}");
    assert!(page.contains("Log in with Acme SSO"), "{page}");
    assert!(
        page.contains("href=\"/login/oidc?next=%2Faccount\""),
        "next is lost: {page}"
    );
    assert!(op.authorize_requests().is_empty(), "went to the OP");
    // The local form still works beside it.
    let (b, email) = app.author("Lou").await;
    b.logout().await;
    assert_eq!(b.login(&email, PASSWORD).await.status(), Status::SeeOther);
    assert!(b.is_logged_in().await);
}

#[rocket::async_test]
async fn with_oidc_alone_login_goes_straight_to_the_idp_keeping_next() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let res = app.get("/dashboard").await;
    assert_eq!(res.status(), Status::SeeOther);
    let to_login = location(&res);
    assert!(to_login.starts_with("/login?next="), "{to_login}");

    let res = app.get(&to_login).await;
    assert_eq!(res.status(), Status::SeeOther);
    let to_start = location(&res);
    assert_eq!(to_start, "/login/oidc?next=%2Fdashboard");
    let res = app.get(&to_start).await;
    assert_eq!(res.status(), Status::SeeOther);
    let authorize_url = location(&res);
    assert!(
        authorize_url.starts_with(&format!("{}/authorize?", op.issuer())),
        "{authorize_url}"
    );
    let landing = finish(&app, &authorize(&authorize_url).await).await;
    assert_eq!(
        (landing.status, landing.location.as_str()),
        (Status::SeeOther, "/dashboard")
    );
    assert!(app.is_logged_in().await);
    // No local form or signup when OIDC is the only way in.
    assert_eq!(
        app.post_form(
            "/login",
            &[("email", "a@example.com"), ("password", PASSWORD)]
        )
        .await
        .status(),
        Status::NotFound
    );
}
