//! Story: an author protects their account with an authenticator app and recovery
//! codes; logging in then takes a code after the password; the operator can require a
//! second factor of admins (or everyone), and can take an account's factors away.

use rocket::http::{Cookie, Status};

use crate::common::mfa::*;
use crate::common::process::quire_command;
use crate::common::smtp::SITE_URL;
use crate::common::*;

const NEW_PASSWORD: &str = "a brand new passphrase nobody guesses";

/// An author with an authenticator app, logged out: (browser, email, secret, codes).
async fn protected_author(app: &TestApp, name: &str) -> (Browser, String, String, Vec<String>) {
    let (b, email) = app.author(name).await;
    let (secret, codes) = enrol(&b).await;
    assert_eq!(b.logout().await.status(), Status::SeeOther);
    // The enrolment's own code was accepted; let the stories choose theirs freely.
    forget_used_steps(app).await;
    (b, email, secret, codes)
}

/// The password step, which must lead to /login/verify and no session.
async fn password_step(b: &Browser, email: &str) {
    let res = b.login(email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/login/verify");
}

async fn verify(b: &Browser, code: &str) -> (Status, String, String) {
    let res = b.post_form("/login/verify", &[("code", code)]).await;
    let to = location(&res);
    let (status, body) = text_of(res).await;
    (status, to, body)
}

#[rocket::async_test]
async fn enrolment_needs_a_valid_code_and_shows_the_secret_uri_and_qr_code() {
    let app = TestApp::spawn().await;
    let (b, email) = app.author("Ann").await;
    let (status, page) = b.get_text("/account/security").await;
    assert_eq!(status, Status::Ok);
    let secret = secret_in(&page).expect("the secret as text");
    let uri = otpauth_uri_in(&page).expect("the otpauth URI");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(
        uri.contains(&urlencode(&email)) || uri.contains(&email),
        "{uri}"
    );
    assert!(
        unescape(&page).contains(r#"<img class="qr" src="data:image/svg+xml;base64,"#),
        "QR code drawn by quire"
    );
    // Reloading keeps the same secret (the app may already have scanned it).
    let (_, again) = b.get_text("/account/security").await;
    assert_eq!(secret_in(&again).as_deref(), Some(secret.as_str()));

    let wrong = if code_now(&secret, 0).await == "000000" {
        "111111"
    } else {
        "000000"
    };
    let res = b
        .post_form("/account/security/totp", &[("code", wrong)])
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap();
    assert!(page.contains("not the one your app shows"), "{page}");
    assert_eq!(totp_factor_count(&app).await, 0);
    let res = b.post_form("/account/security/totp", &[("code", "")]).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    drop(res);

    // Turning the app on logs out the account's other sessions, and says so.
    let elsewhere = app.login_as(&email).await;
    let res = b
        .post_form(
            "/account/security/totp",
            &[("code", &code_now(&secret, 0).await)],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    assert!(!elsewhere.is_logged_in().await);
    let (_, page) = b.get_text("/account/security").await;
    let text = visible_text(&page);
    assert!(text.contains("1 other session was logged out."), "{text}");
    let codes = recovery_codes_in(&page);
    assert_eq!(codes.len(), 10);
    assert_eq!(totp_factor_count(&app).await, 1);
    // The secret is sealed at rest and the codes are stored hashed.
    let stored = stored_totp_secrets(&app).await.remove(0);
    assert!(
        !stored.contains(&secret) && stored.starts_with("v1."),
        "{stored}"
    );
    let hashes = stored_code_hashes(&app).await;
    assert_eq!(hashes.len(), 10);
    for c in &codes {
        assert!(hashes.iter().all(|h| !h.contains(&c.replace('-', ""))));
    }
    // Shown once: the next visit lists no codes, only how many are left.
    let (_, page) = b.get_text("/account/security").await;
    assert!(recovery_codes_in(&page).is_empty());
    assert!(visible_text(&page).contains("10 of 10 recovery codes left"));
    assert!(
        secret_in(&page).is_none(),
        "the secret is not shown once enrolled"
    );
    // The session that enrolled now counts as made with both factors.
    let (_, account) = b.get_text("/account").await;
    assert!(visible_text(&account).contains("logged in with password and authenticator app"));
}

#[rocket::async_test]
async fn login_asks_for_a_code_after_the_password_and_remember_me_carries_through() {
    let app = TestApp::spawn().await;
    let (b, email, secret, _) = protected_author(&app, "Ann").await;
    let res = b.login_remembered(&email, PASSWORD).await;
    assert_eq!(location(&res), "/login/verify");
    drop(res);
    assert_eq!(
        session_count(&app).await,
        0,
        "no session after the password alone"
    );
    assert!(!b.is_logged_in().await);
    let (status, page) = b.get_text("/login/verify").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains(r#"name="code""#));

    let res = b
        .post_form("/login/verify", &[("code", &code_now(&secret, 0).await)])
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");
    let cookie = set_cookie(&res, "quire_session").expect("a session cookie");
    assert!(cookie.contains("Expires="), "remember-me kept: {cookie}");
    drop(res);
    assert!(b.is_logged_in().await);
    assert_eq!(session_methods(&app).await, vec!["password+totp"]);
    assert_eq!(pending_count(&app).await, 0, "the pending login is used up");
    let (_, account) = b.get_text("/account").await;
    assert!(visible_text(&account).contains("logged in with password and authenticator app"));
}

#[rocket::async_test]
async fn a_replayed_code_is_refused_on_every_instance() {
    let app = TestApp::spawn().await;
    let (b, email, secret, _) = protected_author(&app, "Ann").await;
    let code = code_now(&secret, 0).await;
    password_step(&b, &email).await;
    let (status, to, _) = verify(&b, &code).await;
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/dashboard"));

    // The same code again, from another browser on another instance, within its window.
    let other = app.new_browser().await;
    password_step(&other, &email).await;
    let (status, _, page) = verify(&other, &code).await;
    assert_eq!(status, Status::Unauthorized);
    assert!(page.contains("not valid"), "{page}");
    assert!(!other.is_logged_in().await);
    // An older code (the previous step) is refused too once a later one was used.
    let (status, _, _) = verify(&other, &code_now(&secret, -1).await).await;
    assert_eq!(status, Status::Unauthorized);
}

#[rocket::async_test]
async fn the_previous_and_next_windows_work_and_two_steps_off_do_not() {
    let app = TestApp::spawn().await;
    let (b, email, secret, _) = protected_author(&app, "Ann").await;
    password_step(&b, &email).await;
    for steps in [-2, 2] {
        let (status, _, _) = verify(&b, &code_now(&secret, steps).await).await;
        assert_eq!(status, Status::Unauthorized, "{steps} steps off");
    }
    let (status, _, _) = verify(&b, &code_now(&secret, -1).await).await;
    assert_eq!(status, Status::SeeOther, "the previous window");
    b.logout().await;
    forget_used_steps(&app).await;
    password_step(&b, &email).await;
    let (status, _, _) = verify(&b, &code_now(&secret, 1).await).await;
    assert_eq!(status, Status::SeeOther, "the next window");
    assert!(b.is_logged_in().await);
}

#[rocket::async_test]
async fn a_code_for_another_account_is_refused() {
    let app = TestApp::spawn().await;
    let (a, ann, _, _) = protected_author(&app, "Ann").await;
    let (_, _, bob_secret, bob_codes) = protected_author(&app, "Bob").await;
    password_step(&a, &ann).await;
    let (status, _, _) = verify(&a, &code_now(&bob_secret, 0).await).await;
    assert_eq!(status, Status::Unauthorized);
    let (status, _, _) = verify(&a, &bob_codes[0]).await;
    assert_eq!(
        status,
        Status::Unauthorized,
        "another account's recovery code"
    );
    assert!(!a.is_logged_in().await);
}

#[rocket::async_test]
async fn a_recovery_code_works_once_and_ends_the_other_sessions() {
    let app = TestApp::spawn().await;
    let (b, email, secret, codes) = protected_author(&app, "Ann").await;
    // Another browser is logged in already.
    let elsewhere = app.new_browser().await;
    password_step(&elsewhere, &email).await;
    verify(&elsewhere, &code_now(&secret, 0).await).await;
    assert!(elsewhere.is_logged_in().await);

    password_step(&b, &email).await;
    // Typed loosely: upper case, a space for the dash.
    let typed = codes[3].to_uppercase().replace('-', " ");
    let res = b.post_form("/login/verify", &[("code", &typed)]).await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    let (_, page) = b.get_text("/dashboard").await;
    let text = visible_text(&page);
    assert!(
        text.contains("You used a recovery code; 9 are left."),
        "{text}"
    );
    assert!(text.contains("1 other session was logged out."), "{text}");
    assert!(!elsewhere.is_logged_in().await);
    assert_eq!(session_methods(&app).await, vec!["recovery-code"]);
    let (_, account) = b.get_text("/account").await;
    assert!(visible_text(&account).contains("logged in with password and recovery code"));

    b.logout().await;
    password_step(&b, &email).await;
    let (status, _, _) = verify(&b, &codes[3]).await;
    assert_eq!(status, Status::Unauthorized, "a recovery code works once");
    let (status, _, _) = verify(&b, &codes[4]).await;
    assert_eq!(status, Status::SeeOther, "another one still works");
}

#[rocket::async_test]
async fn the_page_counts_the_codes_left_and_a_new_set_voids_the_old() {
    let app = TestApp::spawn().await;
    let (b, email, secret, codes) = protected_author(&app, "Ann").await;
    password_step(&b, &email).await;
    verify(&b, &codes[0]).await;
    let (_, page) = b.get_text("/account/security").await;
    assert!(visible_text(&page).contains("9 of 10 recovery codes left"));

    let res = b.post_form("/account/security/recovery-codes", &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    let (_, page) = b.get_text("/account/security").await;
    let fresh = recovery_codes_in(&page);
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    assert!(visible_text(&page).contains("10 of 10 recovery codes left"));

    // The download is a text file of the codes just shown.
    let joined = fresh.join(" ");
    let res = b
        .post_form(
            "/account/security/recovery-codes/download",
            &[("codes", &joined)],
        )
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(
        res.content_type()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        "text/plain; charset=utf-8"
    );
    let disposition = res
        .headers()
        .get_one("Content-Disposition")
        .unwrap_or("")
        .to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let file = res.into_string().await.unwrap();
    assert!(fresh.iter().all(|c| file.contains(c.as_str())), "{file}");
    // Codes that are not the account's current ones are not written out.
    let res = b
        .post_form(
            "/account/security/recovery-codes/download",
            &[("codes", &codes[1])],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);

    b.logout().await;
    password_step(&b, &email).await;
    let (status, _, _) = verify(&b, &codes[1]).await;
    assert_eq!(status, Status::Unauthorized, "the old set is void");
    let (status, _, _) = verify(&b, &fresh[0]).await;
    assert_eq!(status, Status::SeeOther);
    let _ = secret;
}

#[rocket::async_test]
async fn the_password_steps_cookie_gives_no_access() {
    let app = TestApp::spawn().await;
    let (b, email, _, _) = protected_author(&app, "Ann").await;
    password_step(&b, &email).await;
    let res = b.get("/dashboard").await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(location(&res).starts_with("/login"));
    drop(res);
    let (status, _) = b.get_text("/account").await;
    assert_eq!(status, Status::SeeOther);
    // Its token presented as a session cookie opens nothing either.
    let token = b
        .private_cookie("quire_mfa")
        .expect("the pending login's cookie");
    let thief = app.new_browser().await;
    let res = thief
        .client
        .get("/dashboard")
        .private_cookie(Cookie::new("quire_session", token.clone()))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    let res = thief
        .client
        .get("/dashboard")
        .private_cookie(Cookie::new("quire_mfa", token))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(session_count(&app).await, 0);
}

#[rocket::async_test]
async fn the_pending_login_expires() {
    let app = TestApp::spawn().await;
    let (b, email, secret, _) = protected_author(&app, "Ann").await;
    password_step(&b, &email).await;
    expire_pending(&app).await;
    let (status, to, _) = verify(&b, &code_now(&secret, 0).await).await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(to, "/login");
    assert_eq!(session_count(&app).await, 0);
    let (_, page) = b.get_text("/login").await;
    assert!(visible_text(&page).contains("Your login has expired"));
    let res = b.get("/login/verify").await;
    assert_eq!(location(&res), "/login");
}

#[rocket::async_test]
async fn wrong_codes_are_throttled_like_passwords() {
    let app = TestApp::spawn().await;
    let (b, email, secret, _) = protected_author(&app, "Ann").await;
    password_step(&b, &email).await;
    let good = code_now(&secret, 0).await;
    let wrong = if good == "123456" { "654321" } else { "123456" };
    for i in 1..=4 {
        let (status, _, _) = verify(&b, wrong).await;
        assert_eq!(status, Status::Unauthorized, "failure {i}");
    }
    let (status, _, page) = verify(&b, wrong).await;
    assert_eq!(status, Status::TooManyRequests);
    assert!(page.contains("Too many failed attempts"), "{page}");
    // Even the right code waits now, from any browser.
    let (status, _, _) = verify(&b, &good).await;
    assert_eq!(status, Status::TooManyRequests);
    assert!(!b.is_logged_in().await);
}

#[rocket::async_test]
async fn an_admin_must_set_up_a_factor_when_admins_require_one() {
    let app = TestApp::spawn_with(|f| f.merge(("auth.mfa.require", "admins"))).await;
    let (author, author_email) = app.author("Ann").await;
    let (before, admin_email) = app.author("Ada").await;
    make_admin(&app, &admin_email).await;
    // Its password-only session no longer counts; an author's still does.
    assert!(!before.is_logged_in().await);
    assert!(author.is_logged_in().await);
    let admin = app.new_browser().await;

    let res = admin.login_remembered(&admin_email, PASSWORD).await;
    assert_eq!(location(&res), "/account/security");
    drop(res);
    assert!(!admin.is_logged_in().await, "restricted until enrolled");
    assert_eq!(admin.get("/posts/x/edit").await.status(), Status::SeeOther);
    let (status, page) = admin.get_text("/account/security").await;
    assert_eq!(status, Status::Ok);
    assert!(visible_text(&page).contains("requires a second factor"));
    let secret = secret_in(&page).expect("enrolment on offer");
    let res = admin
        .post_form(
            "/account/security/totp",
            &[("code", &code_now(&secret, 0).await)],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let cookie = set_cookie(&res, "quire_session").expect("the session starts");
    assert!(cookie.contains("Expires="), "remember-me carried: {cookie}");
    drop(res);
    assert!(admin.is_logged_in().await);
    let (_, page) = admin.get_text("/account/security").await;
    assert_eq!(recovery_codes_in(&page).len(), 10);
    // The factor cannot be removed while it is required.
    let res = admin.post_form("/account/security/totp/remove", &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    assert_eq!(totp_factor_count(&app).await, 1);

    // The author logs in with a password alone.
    author.logout().await;
    let res = author.login(&author_email, PASSWORD).await;
    assert_eq!(location(&res), "/dashboard");
}

#[rocket::async_test]
async fn a_remembered_session_from_before_the_requirement_stops_working() {
    let app = TestApp::spawn().await;
    let (b, email) = app.author("Ada").await;
    make_admin(&app, &email).await;
    b.logout().await;
    let res = b.login_remembered(&email, PASSWORD).await;
    assert_eq!(location(&res), "/dashboard");
    drop(res);
    let cookie = b.cookie("quire_session").expect("a session cookie");
    let strict = Browser::launch(app.figment.clone().merge(("auth.mfa.require", "admins"))).await;
    let res = strict.get_with_cookie("/dashboard", cookie).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(location(&res).starts_with("/login"));
}

#[rocket::async_test]
async fn sensitive_changes_need_a_recent_proof_then_come_back() {
    let app = TestApp::spawn().await;
    let (b, _) = app.author("Ann").await;
    let (secret, _) = enrol(&b).await;
    let before = stored_code_hashes(&app).await;
    age_proofs(&app, 11 * 60).await;

    let res = b.post_form("/account/security/recovery-codes", &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    let to = location(&res);
    assert!(to.starts_with("/account/confirm?next="), "{to}");
    drop(res);
    assert_eq!(stored_code_hashes(&app).await, before, "nothing changed");
    let res = b.post_form("/account/security/totp/remove", &[]).await;
    assert!(location(&res).starts_with("/account/confirm"));
    drop(res);
    assert_eq!(totp_factor_count(&app).await, 1);

    let (status, page) = b.get_text(&to).await;
    assert_eq!(status, Status::Ok);
    let next = field_value(&page, "next").unwrap();
    let res = b
        .post_form(
            "/account/confirm",
            &[("password", "wrong password here"), ("next", &next)],
        )
        .await;
    assert_eq!(res.status(), Status::Unauthorized);
    drop(res);
    let res = b
        .post_form(
            "/account/confirm",
            &[("password", PASSWORD), ("next", &next)],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/account/security");
    drop(res);
    let res = b.post_form("/account/security/recovery-codes", &[]).await;
    assert_eq!(location(&res), "/account/security");
    drop(res);
    assert_ne!(stored_code_hashes(&app).await, before);

    // A code from the app is a proof too.
    age_proofs(&app, 11 * 60).await;
    forget_used_steps(&app).await;
    let res = b.post_form("/account/security/totp/remove", &[]).await;
    assert!(location(&res).starts_with("/account/confirm"));
    drop(res);
    let code = code_now(&secret, 0).await;
    let res = b
        .post_form(
            "/account/confirm",
            &[("code", &code), ("next", "/account/security")],
        )
        .await;
    assert_eq!(location(&res), "/account/security");
    drop(res);
    let res = b.post_form("/account/security/totp/remove", &[]).await;
    assert_eq!(location(&res), "/account/security");
    drop(res);
    assert_eq!(totp_factor_count(&app).await, 0);
    assert!(stored_code_hashes(&app).await.is_empty());
    // Without a fresh proof, setting one up again waits for it too.
    age_proofs(&app, 11 * 60).await;
    let (_, page) = b.get_text("/account/security").await;
    assert!(secret_in(&page).is_none());
    assert!(
        page.contains("/account/confirm?next=/account/security")
            || unescape(&page).contains("/account/confirm?next=/account/security")
    );
}

#[rocket::async_test]
async fn the_operator_resets_an_accounts_second_factors() {
    let app = TestApp::spawn().await;
    let (b, email, secret, _) = protected_author(&app, "Ann").await;
    password_step(&b, &email).await;
    verify(&b, &code_now(&secret, 0).await).await;
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
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 session(s) ended"), "{said}");
    assert!(!b.is_logged_in().await);
    assert_eq!(totp_factor_count(&app).await, 0);
    assert!(stored_code_hashes(&app).await.is_empty());
    let res = b.login(&email, PASSWORD).await;
    assert_eq!(
        location(&res),
        "/dashboard",
        "the password alone works again"
    );

    let out = quire_command(app.dir.path(), &app.database.url)
        .args(["user", "reset-2fa", "--email", "nobody@example.com"])
        .output()
        .expect("quire runs");
    assert!(!out.status.success());
}

#[rocket::async_test]
async fn a_password_reset_still_asks_for_the_second_factor() {
    let app = TestApp::spawn().await;
    let (b, email, secret, _) = protected_author(&app, "Ann").await;
    let out = quire_command(app.dir.path(), &app.database.url)
        .env("ROCKET_SITE", format!("{{url=\"{SITE_URL}\"}}"))
        .env("ROCKET_SECRET_KEY", SECRET_KEY)
        .args(["user", "reset-link", "--email", &email])
        .output()
        .expect("quire runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let path = link.strip_prefix(SITE_URL).unwrap().to_string();
    let res = b.post_form(&path, &[("password", NEW_PASSWORD)]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/login/verify");
    drop(res);
    assert_eq!(session_count(&app).await, 0);
    assert!(!b.is_logged_in().await);
    let (status, to, _) = verify(&b, &code_now(&secret, 0).await).await;
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/dashboard"));
    assert!(b.is_logged_in().await);
}

#[rocket::async_test]
async fn auth_mfa_require_takes_only_known_values() {
    let app = TestApp::spawn().await;
    assert_launch_refused(
        app.figment.clone().merge(("auth.mfa.require", "sometimes")),
        "auth.mfa.require",
    )
    .await;
    for ok in ["none", "admins", "all"] {
        assert_launches(app.figment.clone().merge(("auth.mfa.require", ok))).await;
    }
}

#[rocket::async_test]
async fn with_everyone_required_a_new_account_sets_up_its_factor_first() {
    let app = TestApp::spawn_with(|f| f.merge(("auth.mfa.require", "all"))).await;
    let b = app.new_browser().await;
    let email = unique_email("Ann");
    let res = b.signup(&email, "Ann", PASSWORD).await;
    assert_eq!(location(&res), "/account/security");
    drop(res);
    assert!(!b.is_logged_in().await);
    assert_eq!(session_count(&app).await, 0);
    // Logout ends the restricted state.
    let res = b.post_form("/logout", &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    assert_eq!(pending_count(&app).await, 0);
    let res = b.get("/account/security").await;
    assert!(location(&res).starts_with("/login"));
}
