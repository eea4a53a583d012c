//! Story: someone creates an account at /signup; bad input comes back on the same form
//! with what they typed (never the password), and an operator can close signup.

use rocket::http::Status;

use crate::common::*;

/// Signs up with bad input and checks the form came back with 422, a message on
/// `field`, the email and name as typed, the password nowhere, and no account made.
async fn refused_on(app: &TestApp, email: &str, name: &str, password: &str, field: &str) -> String {
    let res = app.signup(email, name, password).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap();
    let msgs = field_errors(&page, field);
    assert!(!msgs.trim().is_empty(), "no message on {field}: {page}");
    assert!(page.contains("Please correct the marked fields."), "{page}");
    assert!(
        page.contains(&format!(r#"value="{}""#, email.trim())),
        "typed email not kept: {page}"
    );
    assert!(
        page.contains(&format!(r#"value="{}""#, name.trim())),
        "typed name not kept: {page}"
    );
    let password_input = regex::Regex::new(r#"<input id="password"[^>]*>"#).unwrap();
    let input = password_input.find(&page).expect("password field").as_str();
    assert!(!input.contains("value="), "password echoed back: {input}");
    if !email.contains(password) && !name.contains(password) {
        assert!(!page.contains(password), "password echoed back: {page}");
    }
    assert!(emails(app).await.is_empty(), "an account was created");
    msgs
}

#[rocket::async_test]
async fn signing_up_logs_the_new_author_in() {
    let app = TestApp::spawn().await;
    let res = app.signup("  Alice@Example.COM ", "Alice", PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");
    let (status, page) = app.get_text("/dashboard").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Welcome to quire, Alice"), "{page}");
    assert_eq!(emails(&app).await, vec!["alice@example.com".to_string()]);
}

#[rocket::async_test]
async fn an_email_already_taken_in_another_case_is_refused_on_the_email_field() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.signup("bob@example.com", "Bob", PASSWORD)
            .await
            .status(),
        Status::SeeOther
    );
    let other = app.new_browser().await;
    let res = other
        .signup(" BOB@Example.com", "Another Bob", OTHER_PASSWORD)
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap();
    assert!(
        field_errors(&page, "email").contains("An account with this email already exists"),
        "{page}"
    );
    assert!(page.contains(r#"value="BOB@Example.com""#), "{page}");
    assert!(page.contains(r#"value="Another Bob""#), "{page}");
    assert!(!page.contains(OTHER_PASSWORD));
    assert_eq!(emails(&app).await, vec!["bob@example.com".to_string()]);
    assert!(!other.is_logged_in().await);
}

#[rocket::async_test]
async fn an_invalid_email_is_refused() {
    let app = TestApp::spawn().await;
    let msgs = refused_on(&app, "carol-at-example.com", "Carol", PASSWORD, "email").await;
    assert!(msgs.contains("Enter an email address"), "{msgs}");
}

#[rocket::async_test]
async fn an_empty_name_is_refused() {
    let app = TestApp::spawn().await;
    let email = unique_email("dave");
    let msgs = refused_on(&app, &email, "   ", PASSWORD, "name").await;
    assert!(
        msgs.contains("Enter a name of 1 to 100 characters."),
        "{msgs}"
    );
}

#[rocket::async_test]
async fn a_name_of_101_characters_is_refused_and_100_is_fine() {
    let app = TestApp::spawn().await;
    let long = "n".repeat(101);
    let msgs = refused_on(&app, &unique_email("erin"), &long, PASSWORD, "name").await;
    assert!(msgs.contains("1 to 100 characters"), "{msgs}");

    let res = app
        .signup(&unique_email("erin"), &"n".repeat(100), PASSWORD)
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(emails(&app).await.len(), 1);
}

#[rocket::async_test]
async fn a_password_of_14_characters_is_refused_and_15_is_fine() {
    let app = TestApp::spawn().await;
    let short = "quartz vellum9";
    assert_eq!(short.chars().count(), 14);
    let msgs = refused_on(&app, &unique_email("frank"), "Frank", short, "password").await;
    assert!(msgs.contains("Use at least 15 characters"), "{msgs}");

    let enough = "quartz vellum97";
    assert_eq!(enough.chars().count(), 15);
    let res = app.signup(&unique_email("frank"), "Frank", enough).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(emails(&app).await.len(), 1);
}

#[rocket::async_test]
async fn common_passwords_are_refused() {
    for common in ["password1234567", "aaaaaaaaaaaaaaaa", "123456789012345678"] {
        let app = TestApp::spawn().await;
        let msgs = refused_on(&app, &unique_email("gina"), "Gina", common, "password").await;
        assert!(
            msgs.contains("too common or easy to guess"),
            "{common}: {msgs}"
        );
    }
}

#[rocket::async_test]
async fn a_password_built_from_ones_own_email_or_name_is_refused() {
    let app = TestApp::spawn().await;
    // Strong for anyone else, guessable for the person it names.
    let email = "kwyjibo.flurbvex@example.com";
    let msgs = refused_on(&app, email, "Hal", "kwyjibo.flurbvex", "password").await;
    assert!(msgs.contains("too common or easy to guess"), "{msgs}");
    let name = "Zorbulon Quixmadrel";
    let msgs = refused_on(
        &app,
        &unique_email("hal"),
        name,
        "zorbulon quixmadrel",
        "password",
    )
    .await;
    assert!(msgs.contains("too common or easy to guess"), "{msgs}");

    let other = app.new_browser().await;
    let res = other
        .signup(&unique_email("ivy"), "Ivy", "kwyjibo.flurbvex")
        .await;
    assert_eq!(res.status(), Status::SeeOther, "strong for someone else");
    let res = app
        .signup(&unique_email("jon"), "Jon", "zorbulon quixmadrel")
        .await;
    assert_eq!(res.status(), Status::SeeOther, "strong for someone else");
}

#[rocket::async_test]
async fn long_passwords_and_any_characters_are_accepted_and_work_at_login() {
    let long: String = "Ostrich lantern gravel nebula 17; "
        .chars()
        .cycle()
        .take(128)
        .collect();
    assert_eq!(long.chars().count(), 128);
    let fancy = "🦀 crab rave under the Brücke 🌉 at noon";
    for password in [long.as_str(), fancy] {
        let app = TestApp::spawn().await;
        let email = unique_email("kim");
        let res = app.signup(&email, "Kim", password).await;
        assert_eq!(res.status(), Status::SeeOther, "{password:?} refused");
        assert_eq!(app.logout().await.status(), Status::SeeOther);
        assert!(!app.is_logged_in().await);
        let res = app.login(&email, password).await;
        assert_eq!(res.status(), Status::SeeOther, "{password:?} cannot log in");
        assert!(app.is_logged_in().await);
    }
}

#[rocket::async_test]
async fn a_form_with_no_fields_is_refused_with_messages_not_an_error_page() {
    let app = TestApp::spawn().await;
    let res = app.post_form("/signup", &[]).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap();
    for field in ["email", "name", "password"] {
        assert!(
            !field_errors(&page, field).trim().is_empty(),
            "no message on {field}: {page}"
        );
    }
    assert!(emails(&app).await.is_empty());
}

#[rocket::async_test]
async fn closed_signup_says_so_and_creates_nothing() {
    let app = TestApp::spawn_with(|f| f.merge(("auth.signup", false))).await;
    let (status, page) = app.get_text("/signup").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Signup is closed on this site."), "{page}");
    assert!(!page.contains(r#"action="/signup""#), "{page}");

    let res = app.signup(&unique_email("lee"), "Lee", PASSWORD).await;
    assert_eq!(res.status(), Status::Forbidden);
    let page = res.into_string().await.unwrap();
    assert!(page.contains("Signup is closed on this site."), "{page}");
    assert!(emails(&app).await.is_empty());
    assert!(!app.is_logged_in().await);

    for path in ["/", "/login"] {
        let (_, page) = app.get_text(path).await;
        assert!(!page.contains(r#"href="/signup""#), "{path}: {page}");
    }
    // The link is there when signup is open, so the check above can fail.
    let open = TestApp::spawn().await;
    let (_, page) = open.get_text("/").await;
    assert!(page.contains(r#"href="/signup""#), "{page}");
}

#[rocket::async_test]
async fn the_minimum_password_length_is_configurable() {
    let strong = "quartz-vellum-84";
    assert_eq!(strong.chars().count(), 16);
    let app = TestApp::spawn_with(|f| f.merge(("auth.password_min_length", 20))).await;
    let (_, form) = app.get_text("/signup").await;
    assert!(form.contains("At least 20 characters"), "{form}");
    let msgs = refused_on(&app, &unique_email("max"), "Max", strong, "password").await;
    assert!(msgs.contains("Use at least 20 characters"), "{msgs}");

    let default = TestApp::spawn().await;
    let res = default.signup(&unique_email("max"), "Max", strong).await;
    assert_eq!(
        res.status(),
        Status::SeeOther,
        "strong at the default length"
    );
}
