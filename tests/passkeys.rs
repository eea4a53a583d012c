//! Story: an author adds passkeys on the security page, then logs in with one alone
//! (no email typed) or uses one after the password; challenges work once, for the
//! browser and account that asked; a removed passkey, or a copy of one whose counter
//! went back, no longer logs anyone in; a passkey counts for `auth.mfa.require`, and
//! `quire user reset-2fa` removes passkeys too. The authenticator is a software one
//! (passkey-rs), as a phone's platform authenticator would answer.

use rocket::figment::Figment;
use rocket::http::Status;

use crate::common::mfa::{age_proofs, session_methods};
use crate::common::passkey::*;
use crate::common::process::quire_command;
use crate::common::*;

fn with_site(f: Figment) -> Figment {
    f.merge(("site.url", PASSKEY_SITE))
}

/// Sends a passkey's answer as the second step of a login; where it leads (a redirect).
async fn second_step(b: &Browser, answer: &str) -> String {
    let res = b
        .post_form("/login/verify/passkey", &[("credential", answer)])
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    location(&res)
}

async fn spawn() -> TestApp {
    TestApp::spawn_with(with_site).await
}

/// An author with one passkey on `device`, logged out.
async fn author_with_passkey(app: &TestApp, name: &str) -> (Browser, String, SoftAuthenticator) {
    let (b, email) = app.author(name).await;
    let mut device = SoftAuthenticator::default();
    add_passkey(&b, &mut device, "Laptop").await;
    assert_eq!(b.logout().await.status(), Status::SeeOther);
    (b, email, device)
}

/// A new browser logged in as `email`: the password, then the passkey on `device`.
async fn password_then_passkey(
    app: &TestApp,
    email: &str,
    device: &mut SoftAuthenticator,
) -> Browser {
    let b = app.login_as(email).await;
    let (status, json) = options(&b, "/login/verify/passkey/options").await;
    assert_eq!(status, Status::Ok, "{json}");
    let answer = device.get(&json).await.unwrap();
    assert_eq!(second_step(&b, &answer).await, "/dashboard");
    b
}

#[rocket::async_test]
async fn an_author_adds_a_passkey_logs_out_and_logs_in_with_it_alone() {
    let app = spawn().await;
    let (b, email) = app.author("Ann").await;
    let (status, page) = b.get_text("/account/security").await;
    assert_eq!(status, Status::Ok);
    let text = visible_text(&page);
    assert!(text.contains("No passkey yet."), "{text}");
    assert!(page.contains(">Add a passkey</button>"), "{page}");
    assert!(page.contains(r#"<script src="/static/passkeys.js" defer></script>"#));
    let (status, script) = b.get_text("/static/passkeys.js").await;
    assert_eq!(status, Status::Ok);
    assert!(script.contains("navigator.credentials.create"));

    // Adding a passkey logs the account's other sessions out, as turning on the app does.
    let elsewhere = app.login_as(&email).await;
    let mut device = SoftAuthenticator::default();
    let page = add_passkey(&b, &mut device, "  Work laptop  ").await;
    let text = visible_text(&page);
    assert!(
        text.contains("Your passkey “Work laptop” is added"),
        "{text}"
    );
    assert!(text.contains("1 other session was logged out."), "{text}");
    assert!(text.contains("last used never"), "{text}");
    assert!(!elsewhere.is_logged_in().await);
    assert!(b.is_logged_in().await);
    assert_eq!(passkey_count(&app).await, 1);
    assert_eq!(
        device.credentials(),
        1,
        "a discoverable credential on the device"
    );
    let (_, account) = b.get_text("/account").await;
    assert!(
        visible_text(&account).contains("logged in with password and passkey"),
        "{}",
        visible_text(&account)
    );

    assert_eq!(b.logout().await.status(), Status::SeeOther);
    let (_, login) = b.get_text("/login").await;
    assert!(login.contains(">Log in with a passkey</button>"), "{login}");
    let (status, to) = log_in_with_passkey(&b, &mut device).await;
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/dashboard"));
    // The dashboard is the logged-in page (its flash shows once, on the first view).
    let (status, dashboard) = b.get_text("/dashboard").await;
    assert_eq!(status, Status::Ok);
    assert!(
        visible_text(&dashboard).contains("Welcome back, Ann."),
        "{}",
        visible_text(&dashboard)
    );
    let (_, account) = b.get_text("/account").await;
    assert!(
        visible_text(&account).contains("logged in with passkey"),
        "{}",
        visible_text(&account)
    );
    assert_eq!(session_methods(&app).await.last().unwrap(), "passkey");
    let (_, security) = b.get_text("/account/security").await;
    assert!(
        !visible_text(&security).contains("last used never"),
        "the login is its last use"
    );
}

#[rocket::async_test]
async fn after_the_password_a_passkey_is_the_second_factor() {
    let app = spawn().await;
    let (b, email, mut device) = author_with_passkey(&app, "Ann").await;
    let res = b.login(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/login/verify");
    drop(res);
    assert!(!b.is_logged_in().await, "the password alone opens nothing");
    let (status, page) = b.get_text("/login/verify").await;
    assert_eq!(status, Status::Ok);
    assert!(visible_text(&page).contains("Use your passkey to finish logging in."));
    assert!(page.contains(">Use your passkey</button>"), "{page}");
    assert!(
        !page.contains(r#"action="/login/verify" "#),
        "no code form without an authenticator app"
    );

    let (status, json) = options(&b, "/login/verify/passkey/options").await;
    assert_eq!(status, Status::Ok, "{json}");
    let answer = device.get(&json).await.unwrap();
    assert_eq!(second_step(&b, &answer).await, "/dashboard");
    assert!(b.is_logged_in().await);
    assert_eq!(
        session_methods(&app).await.last().unwrap(),
        "password+passkey"
    );

    // Without a password step there is no second step to take.
    let stranger = app.new_browser().await;
    let (status, _) = options(&stranger, "/login/verify/passkey/options").await;
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(second_step(&stranger, &answer).await, "/login");
    assert!(!stranger.is_logged_in().await);
}

#[rocket::async_test]
async fn a_used_replayed_or_expired_challenge_is_refused() {
    let app = spawn().await;
    let (b, _, mut device) = author_with_passkey(&app, "Ann").await;
    let answer = passkey_answer(&b, &mut device).await;
    let (status, to) = post_login_answer(&b, &answer).await;
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/dashboard"));
    assert_eq!(b.logout().await.status(), Status::SeeOther);

    // The same answer again: its challenge is used up.
    let (_, to) = post_login_answer(&b, &answer).await;
    assert_eq!(to, "/login");
    let (_, page) = b.get_text("/login").await;
    assert!(
        visible_text(&page).contains("has expired or was already used"),
        "{}",
        visible_text(&page)
    );
    assert!(!b.is_logged_in().await);

    // The old answer to a new challenge: signed for another one.
    let (status, _) = options(&b, "/login/passkey/options").await;
    assert_eq!(status, Status::Ok);
    let (_, to) = post_login_answer(&b, &answer).await;
    assert_eq!(to, "/login");
    let (_, page) = b.get_text("/login").await;
    assert!(visible_text(&page).contains("That passkey was not accepted"));
    assert!(!b.is_logged_in().await);

    // A challenge past its few minutes.
    let late = passkey_answer(&b, &mut device).await;
    expire_challenges(&app).await;
    let (_, to) = post_login_answer(&b, &late).await;
    assert_eq!(to, "/login");
    assert!(!b.is_logged_in().await);

    // Nothing posted (no JavaScript): a clear message, no session.
    let (_, to) = post_login_answer(&b, "").await;
    assert_eq!(to, "/login");
    let (_, page) = b.get_text("/login").await;
    assert!(visible_text(&page).contains("passkeys need JavaScript"));
    // Garbage is refused the same way as a bad signature, never a 500.
    options(&b, "/login/passkey/options").await;
    let (status, to) = post_login_answer(&b, "{\"id\": 5}").await;
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/login"));
}

#[rocket::async_test]
async fn a_challenge_of_another_browser_account_or_session_is_refused() {
    let app = spawn().await;
    let (ann, ann_email, mut ann_device) = author_with_passkey(&app, "Ann").await;
    let (bob, bob_email) = app.author("Bob").await;

    // Bob's browser, with a registration challenge of its own, posts a passkey made for
    // Ann's challenge.
    let ann_session = password_then_passkey(&app, &ann_email, &mut ann_device).await;
    let (_, ann_options) = options(&ann_session, "/account/security/passkeys/options").await;
    let mut other_device = SoftAuthenticator::default();
    let made_for_ann = other_device.create(&ann_options).await.unwrap();
    let (status, _) = options(&bob, "/account/security/passkeys/options").await;
    assert_eq!(status, Status::Ok);
    let res = bob
        .post_form(
            "/account/security/passkeys",
            &[("name", "Stolen"), ("credential", &made_for_ann)],
        )
        .await;
    assert_eq!(location(&res), "/account/security");
    drop(res);
    let (_, page) = bob.get_text("/account/security").await;
    assert!(visible_text(&page).contains("That passkey was not accepted"));
    assert_eq!(passkey_count(&app).await, 1, "only Ann's first passkey");

    // A challenge belongs to the session that asked: Ann logs out and in again, and the
    // new session cannot finish the old one's registration.
    let (_, fresh_options) = options(&ann_session, "/account/security/passkeys/options").await;
    let made = other_device.create(&fresh_options).await.unwrap();
    assert_eq!(ann_session.logout().await.status(), Status::SeeOther);
    assert_eq!(
        ann_session.login(&ann_email, PASSWORD).await.status(),
        Status::SeeOther
    );
    let (status, json) = options(&ann_session, "/login/verify/passkey/options").await;
    assert_eq!(status, Status::Ok);
    let answer = ann_device.get(&json).await.unwrap();
    assert_eq!(second_step(&ann_session, &answer).await, "/dashboard");
    let res = ann_session
        .post_form(
            "/account/security/passkeys",
            &[("name", "Old"), ("credential", &made)],
        )
        .await;
    assert_eq!(location(&res), "/account/security");
    drop(res);
    let (_, page) = ann_session.get_text("/account/security").await;
    assert!(
        visible_text(&page).contains("has expired or was already used"),
        "{}",
        visible_text(&page)
    );
    assert_eq!(passkey_count(&app).await, 1);

    // Bob's password step cannot be finished with Ann's passkey, even with a challenge
    // Bob's browser was given.
    assert_eq!(bob.logout().await.status(), Status::SeeOther);
    let mut bob_device = SoftAuthenticator::default();
    let bob_again = app.login_as(&bob_email).await;
    add_passkey(&bob_again, &mut bob_device, "Phone").await;
    let res = bob.login(&bob_email, PASSWORD).await;
    assert_eq!(location(&res), "/login/verify");
    drop(res);
    let (status, bob_options) = options(&bob, "/login/verify/passkey/options").await;
    assert_eq!(status, Status::Ok);
    // Ann's device is asked with Bob's challenge (it holds no allowed credential), so
    // it is Ann's discoverable login answer that Bob's browser posts.
    assert!(ann_device.get(&bob_options).await.is_err());
    let ann_answer = passkey_answer(&ann, &mut ann_device).await;
    let res = bob
        .post_form("/login/verify/passkey", &[("credential", &ann_answer)])
        .await;
    assert_eq!(location(&res), "/login/verify");
    drop(res);
    assert!(!bob.is_logged_in().await);
    // And Ann's own login answer, posted from Bob's browser, misses Bob's cookie's
    // challenge.
    let (_, to) = post_login_answer(&bob, &ann_answer).await;
    assert_eq!(to, "/login");
    assert!(!bob.is_logged_in().await);
}

#[rocket::async_test]
async fn a_removed_passkey_no_longer_logs_in() {
    let app = spawn().await;
    let (b, email, mut device) = author_with_passkey(&app, "Ann").await;
    let b2 = password_then_passkey(&app, &email, &mut device).await;

    // Removing it needs a fresh proof, like every factor change.
    let id = passkey_ids(&app).await[0];
    age_proofs(&app, 11 * 60).await;
    let path = format!("/account/security/passkeys/{id}/remove");
    let res = b2.post_form(&path, &[]).await;
    assert!(
        location(&res).starts_with("/account/confirm"),
        "{}",
        location(&res)
    );
    drop(res);
    assert_eq!(passkey_count(&app).await, 1);
    let res = b2
        .post_form(
            "/account/confirm",
            &[("password", PASSWORD), ("next", "/account/security")],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    let res = b2.post_form(&path, &[]).await;
    assert_eq!(location(&res), "/account/security");
    drop(res);
    let (_, page) = b2.get_text("/account/security").await;
    assert!(visible_text(&page).contains("Your passkey “Laptop” was removed"));
    assert_eq!(passkey_count(&app).await, 0);

    // The device still holds it, but the site no longer knows it.
    let (status, to) = log_in_with_passkey(&b, &mut device).await;
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/login"));
    assert!(!b.is_logged_in().await);
    // And the password alone is enough again.
    let res = b.login(&email, PASSWORD).await;
    assert_eq!(location(&res), "/dashboard");
}

#[rocket::async_test]
async fn a_challenge_from_one_instance_is_answered_on_another_and_only_once() {
    let app = spawn().await;
    let (b, email, mut device) = author_with_passkey(&app, "Ann").await;

    // A passkey login: the challenge comes from one instance, the answer reaches two
    // others at the same moment (a retried request behind a load balancer).
    let answer = passkey_answer(&b, &mut device).await;
    assert_eq!(challenge_count(&app).await, 1, "kept in the database");
    let (second, third) = (app.new_browser().await, app.new_browser().await);
    let fields = [("credential", answer.as_str()), ("next", "")];
    let (one, two) = rocket::tokio::join!(
        post_form_via(&second, &b, "/login/passkey", &fields),
        post_form_via(&third, &b, "/login/passkey", &fields),
    );
    let mut places = [one.1, two.1];
    places.sort();
    assert_eq!(places, ["/dashboard", "/login"], "exactly one login");
    assert_eq!(
        second.is_logged_in().await as u8 + third.is_logged_in().await as u8,
        1
    );
    assert!(!b.is_logged_in().await);
    assert_eq!(challenge_count(&app).await, 0, "used up");

    // The second step: password and challenge on one instance, the passkey's answer on
    // another.
    let res = b.login(&email, PASSWORD).await;
    assert_eq!(location(&res), "/login/verify");
    drop(res);
    let (status, json) = options(&b, "/login/verify/passkey/options").await;
    assert_eq!(status, Status::Ok, "{json}");
    let answer = device.get(&json).await.unwrap();
    let fourth = app.new_browser().await;
    let (status, to) = post_form_via(
        &fourth,
        &b,
        "/login/verify/passkey",
        &[("credential", &answer)],
    )
    .await;
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/dashboard"));
    assert!(fourth.is_logged_in().await);
    assert_eq!(
        session_methods(&app).await.last().unwrap(),
        "password+passkey"
    );
    // Back on the first instance, the same answer finds its login and challenge gone.
    assert_eq!(second_step(&b, &answer).await, "/login");
    assert!(!b.is_logged_in().await);
}

#[rocket::async_test]
async fn a_copy_of_a_passkey_whose_counter_went_back_is_refused() {
    let app = spawn().await;
    let (b, _, mut device) = author_with_passkey(&app, "Ann").await;
    let mut copy = device.clone();
    let (_, to) = log_in_with_passkey(&b, &mut device).await;
    assert_eq!(to, "/dashboard");
    assert_eq!(b.logout().await.status(), Status::SeeOther);
    // The copy signs with the counter the original had before that login.
    let (_, to) = log_in_with_passkey(&b, &mut copy).await;
    assert_eq!(to, "/login");
    assert!(!b.is_logged_in().await);
    // The original goes on working.
    let (_, to) = log_in_with_passkey(&b, &mut device).await;
    assert_eq!(to, "/dashboard");
}

#[rocket::async_test]
async fn a_passkey_is_the_second_factor_the_site_requires_and_reset_2fa_removes_it() {
    let app = TestApp::spawn_with(|f| with_site(f).merge(("auth.mfa.require", "all"))).await;
    let b = app.new_browser().await;
    let email = unique_email("Ann");
    let res = b.signup(&email, "Ann", PASSWORD).await;
    assert_eq!(location(&res), "/account/security");
    drop(res);
    assert!(!b.is_logged_in().await);
    let (_, page) = b.get_text("/account/security").await;
    assert!(
        visible_text(&page).contains("set up an authenticator app or add a passkey"),
        "{}",
        visible_text(&page)
    );
    assert!(page.contains(">Add a passkey</button>"), "{page}");
    // Adding a passkey finishes the login.
    let mut device = SoftAuthenticator::default();
    let (status, json) = options(&b, "/account/security/passkeys/options").await;
    assert_eq!(status, Status::Ok, "{json}");
    let credential = device.create(&json).await.unwrap();
    let res = b
        .post_form(
            "/account/security/passkeys",
            &[("name", "Phone"), ("credential", &credential)],
        )
        .await;
    assert_eq!(location(&res), "/dashboard");
    drop(res);
    assert!(b.is_logged_in().await);
    assert_eq!(
        session_methods(&app).await.last().unwrap(),
        "password+passkey"
    );
    // The last passkey of an account that must have a factor stays.
    let id = passkey_ids(&app).await[0];
    let res = b
        .post_form(&format!("/account/security/passkeys/{id}/remove"), &[])
        .await;
    drop(res);
    assert_eq!(passkey_count(&app).await, 1);
    let (_, page) = b.get_text("/account/security").await;
    assert!(visible_text(&page).contains("so your last passkey stays"));

    // A passkey alone counts as the required second factor.
    assert_eq!(b.logout().await.status(), Status::SeeOther);
    let (_, to) = log_in_with_passkey(&b, &mut device).await;
    assert_eq!(to, "/dashboard");
    assert!(b.is_logged_in().await);

    let out = quire_command(app.dir.path(), &app.database.url)
        .env("ROCKET_SECRET_KEY", SECRET_KEY)
        .args(["user", "reset-2fa", "--email", &email])
        .output()
        .expect("quire runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!b.is_logged_in().await);
    assert_eq!(passkey_count(&app).await, 0);
    let (_, to) = log_in_with_passkey(&b, &mut device).await;
    assert_eq!(to, "/login");
    assert!(!b.is_logged_in().await);
}

#[rocket::async_test]
async fn without_a_domain_in_site_url_passkeys_are_off_and_say_why() {
    for tweak in [(|f: Figment| f) as fn(Figment) -> Figment, |f: Figment| {
        f.merge(("site.url", "http://127.0.0.1:8000"))
    }] {
        let app = TestApp::spawn_with(tweak).await;
        let (b, _) = app.author("Ann").await;
        let (_, page) = b.get_text("/account/security").await;
        let text = visible_text(&page);
        assert!(text.contains("Passkeys are off on this site"), "{text}");
        assert!(!page.contains("Add a passkey"));
        let (status, json) = options(&b, "/account/security/passkeys/options").await;
        assert_eq!(status, Status::NotFound, "{json}");
        assert!(json.contains("site.url"), "{json}");
        assert_eq!(b.logout().await.status(), Status::SeeOther);
        let (_, login) = b.get_text("/login").await;
        assert!(!login.contains("passkey"), "{login}");
        // The password paths are as before.
        assert!(login.contains(r#"name="password""#));
    }
}
