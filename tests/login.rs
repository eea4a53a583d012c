//! Story: an author logs in with email and password; failures say nothing about which
//! part was wrong, guessing is throttled per account and per client, `next` stays
//! on-site, and remember-me decides whether the cookie outlives the browser session.

use std::time::{Duration, Instant};

use rocket::http::{Cookie, SameSite, Status};
use rocket::local::asynchronous::LocalResponse;

use crate::common::*;

/// The value of the login form's hidden `next` field, as the browser reads it.
fn hidden_next(page: &str) -> String {
    field_value(page, "next").expect("hidden next field")
}

/// Logs in from the client address `ip`, as a browser behind it would.
async fn login_from<'a>(
    b: &'a Browser,
    ip: &str,
    email: &str,
    password: &str,
) -> LocalResponse<'a> {
    b.form_request("/login", &[("email", email), ("password", password)])
        .await
        .remote(format!("{ip}:5000").parse().unwrap())
        .dispatch()
        .await
}

/// The session cookie a response sets (not a removal).
fn session_cookie(res: &LocalResponse<'_>) -> Cookie<'static> {
    set_cookie(res, "quire_session")
        .and_then(|h| Cookie::parse(h).ok())
        .unwrap_or_else(|| panic!("no session cookie in {:?}", set_cookies(res)))
}

#[rocket::async_test]
async fn logging_in_lands_on_the_dashboard_with_a_greeting() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Ada").await;
    let res = app.login(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");
    let (status, page) = app.get_text("/dashboard").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Welcome back, Ada."), "{page}");
}

#[rocket::async_test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Bea").await;
    let typo = "correct horse battery stapel";

    let res = app.login(&email, typo).await;
    let wrong_status = res.status();
    let wrong_page = res.into_string().await.unwrap();
    let unknown_email = unique_email("nobody");
    let res = app.login(&unknown_email, typo).await;
    let unknown_status = res.status();
    let unknown_page = res.into_string().await.unwrap();

    assert_eq!(wrong_status, Status::Unauthorized);
    assert_eq!(unknown_status, Status::Unauthorized);
    assert_eq!(form_error(&wrong_page), "Incorrect email or password.");
    assert_eq!(form_error(&unknown_page), form_error(&wrong_page));
    // What was typed is kept, except the password.
    assert!(
        wrong_page.contains(&format!(r#"value="{email}""#)),
        "{wrong_page}"
    );
    assert!(unknown_page.contains(&format!(r#"value="{unknown_email}""#)));
    assert!(!wrong_page.contains(typo));
    assert!(!unknown_page.contains(typo));
    assert!(!app.is_logged_in().await);
}

#[rocket::async_test]
async fn a_local_next_path_is_honoured() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Cy").await;
    let b = app.new_browser().await;
    let (_, form) = b.get_text("/login?next=/posts/x").await;
    assert_eq!(hidden_next(&form), "/posts/x");
    let res = b
        .post_form(
            "/login",
            &[
                ("email", &email),
                ("password", PASSWORD),
                ("next", "/posts/x"),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/posts/x");
}

#[rocket::async_test]
async fn an_off_site_next_is_ignored() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Dee").await;
    for next in [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "evil.example",
    ] {
        let b = app.new_browser().await;
        let (_, form) = b
            .get_text(&format!("/login?next={}", urlencode(next)))
            .await;
        assert_eq!(hidden_next(&form), "", "{next}");
        let res = b
            .post_form(
                "/login",
                &[("email", &email), ("password", PASSWORD), ("next", next)],
            )
            .await;
        assert_eq!(res.status(), Status::SeeOther, "{next}");
        assert_eq!(location(&res), "/dashboard", "{next}");
    }
}

#[rocket::async_test]
async fn a_protected_page_sends_to_login_and_back() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Eve").await;
    for page in ["/dashboard", "/account"] {
        let b = app.new_browser().await;
        let res = b.get(page).await;
        assert_eq!(res.status(), Status::SeeOther);
        let to = location(&res);
        assert_eq!(to, format!("/login?next={}", page.replace('/', "%2F")));

        let (status, form) = b.get_text(&to).await;
        assert_eq!(status, Status::Ok);
        let next = hidden_next(&form);
        assert_eq!(next, page);
        let res = b
            .post_form(
                "/login",
                &[("email", &email), ("password", PASSWORD), ("next", &next)],
            )
            .await;
        assert_eq!(location(&res), page);
        assert_eq!(b.get(page).await.status(), Status::Ok);
    }
}

#[rocket::async_test]
async fn remember_me_keeps_the_cookie_for_30_days() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Fay").await;
    let b = app.new_browser().await;
    let res = b.login_remembered(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    let cookie = session_cookie(&res);
    let expires = cookie
        .expires_datetime()
        .expect("a remembered login sets Expires");
    let days = (expires - time::OffsetDateTime::now_utc()).as_seconds_f64() / 86_400.0;
    assert!((29.9..=30.0).contains(&days), "expires in {days} days");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
}

#[rocket::async_test]
async fn without_remember_me_the_cookie_ends_with_the_browser() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Gus").await;
    let b = app.new_browser().await;
    let res = b.login(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    let cookie = session_cookie(&res);
    assert_eq!(cookie.expires(), None, "{cookie}");
    assert_eq!(cookie.max_age(), None, "{cookie}");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
}

#[rocket::async_test]
async fn five_wrong_passwords_lock_the_account_until_the_wait_passes() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Hana").await;
    let b = app.new_browser().await;
    for i in 1..=4 {
        let res = b.login(&email, "not the right one at all").await;
        assert_eq!(res.status(), Status::Unauthorized, "attempt {i}");
    }
    let res = b.login(&email, "not the right one at all").await;
    assert_eq!(res.status(), Status::TooManyRequests, "attempt 5");
    let page = res.into_string().await.unwrap();
    assert!(
        form_error(&page).starts_with("Too many failed attempts"),
        "{page}"
    );

    let res = b.login(&email, PASSWORD).await;
    assert_eq!(
        res.status(),
        Status::TooManyRequests,
        "right password while locked"
    );
    assert!(!b.is_logged_in().await);

    let_locks_pass(&app).await;
    let res = b.login(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(b.is_logged_in().await);
    assert!(
        !account_failures_counted(&app, &email).await,
        "the counter was reset"
    );
    // A fresh count: the next typo is one failure, not the sixth.
    let c = app.new_browser().await;
    let res = c.login(&email, "not the right one at all").await;
    assert_eq!(res.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn the_rightful_owner_is_never_locked_out_for_more_than_five_minutes() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Ian").await;
    let b = app.new_browser().await;
    let mut last = Status::Ok;
    for _ in 0..20 {
        let_locks_pass(&app).await;
        last = b
            .login(&email, "a wrong guess again and again")
            .await
            .status();
    }
    assert_eq!(last, Status::TooManyRequests);
    let wait = account_locked_until(&app, &email).await - unix_now();
    assert!(wait > 0, "not locked");
    assert!(wait <= 300, "locked for {wait} s");
    let res = b.login(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::TooManyRequests);
    let page = res.into_string().await.unwrap();
    assert!(form_error(&page).contains("5 minutes"), "{page}");
}

#[rocket::async_test]
async fn one_persons_typos_do_not_lock_out_colleagues_behind_the_same_address() {
    let app = TestApp::spawn().await;
    let (_, careless) = app.author("Jo").await;
    let (_, colleague) = app.author("Kai").await;
    let b = app.new_browser().await;
    let mut last = Status::Ok;
    for _ in 0..6 {
        last = login_from(&b, "10.0.0.7", &careless, "butterfingers typing")
            .await
            .status();
    }
    assert_eq!(
        last,
        Status::TooManyRequests,
        "the careless account is locked"
    );
    let c = app.new_browser().await;
    let res = login_from(&c, "10.0.0.7", &colleague, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_client_guessing_across_many_accounts_is_throttled() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Lou").await;
    let attacker = app.new_browser().await;
    for i in 1..=99 {
        let res = login_from(
            &attacker,
            "10.1.2.3",
            &format!("victim{i}@example.com"),
            "guess",
        )
        .await;
        assert_eq!(res.status(), Status::Unauthorized, "failure {i}");
    }
    let res = login_from(&attacker, "10.1.2.3", "victim100@example.com", "guess").await;
    assert_eq!(res.status(), Status::TooManyRequests, "failure 100");
    let page = res.into_string().await.unwrap();
    assert!(
        form_error(&page).starts_with("Too many failed attempts"),
        "{page}"
    );

    let same_ip = app.new_browser().await;
    let res = login_from(&same_ip, "10.1.2.3", &email, PASSWORD).await;
    assert_eq!(res.status(), Status::TooManyRequests);
    let elsewhere = app.new_browser().await;
    let res = login_from(&elsewhere, "10.9.8.7", &email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(elsewhere.is_logged_in().await);
}

/// Production parameters are OWASP's, and an unknown account costs a full verification.
#[rocket::async_test]
async fn production_hashing_is_argon2id_with_owasp_parameters_and_constant_time() {
    use argon2::password_hash::PasswordHash;

    let hasher =
        quire::auth::password::Hasher::new(quire::config::Argon2Config::default(), 2).unwrap();
    let hash = hasher.hash(PASSWORD).await.unwrap();
    let parsed = PasswordHash::new(&hash).unwrap();
    assert_eq!(parsed.algorithm.as_str(), "argon2id");
    let params = argon2::Params::try_from(&parsed).unwrap();
    assert_eq!(
        (params.m_cost(), params.t_cost(), params.p_cost()),
        (19456, 2, 1)
    );
    assert!(hasher.verify(PASSWORD, Some(&hash)).await.unwrap());

    let mut unknown = Duration::MAX;
    let mut wrong = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        assert!(!hasher.verify(PASSWORD, None).await.unwrap());
        unknown = unknown.min(t.elapsed());
        let t = Instant::now();
        assert!(!hasher.verify(OTHER_PASSWORD, Some(&hash)).await.unwrap());
        wrong = wrong.min(t.elapsed());
    }
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.25..=4.0).contains(&ratio),
        "unknown account {unknown:?}, wrong password {wrong:?}"
    );
}
