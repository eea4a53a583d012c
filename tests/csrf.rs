//! Cross-site request forgery: every state-changing form carries this browser's token, and
//! a POST without it (or with someone else's) is refused with nothing changed.

use rocket::http::Status;

use crate::common::*;

/// Who posts, where, and the form's own fields.
type Case<'a> = (&'a Browser, &'a str, Vec<(&'a str, &'a str)>);

/// The forms on the page that do not carry a CSRF token.
fn forms_without_token(page: &str) -> Vec<String> {
    post_forms(page)
        .into_iter()
        .filter(|f| !f.contains(r#"name="csrf_token""#))
        .collect()
}

#[rocket::async_test]
async fn state_changing_posts_without_the_right_token_are_refused() {
    let app = TestApp::spawn().await;
    let (ann, email) = app.author("Ann").await;
    let slug = ann.create_post("Kept", "Original body.", true).await;
    let second = app.login_as(&email).await;
    let other_session = session_ids(&app).await[1];
    let anon = app.new_browser().await;
    anon.csrf_token().await;
    let stranger = app.new_browser().await;
    let strangers_token = stranger.csrf_token().await;
    let victim_email = unique_email("victim");

    let edit = format!("/posts/{slug}/edit");
    let delete = format!("/posts/{slug}/delete");
    let end_one = format!("/account/sessions/{other_session}/end");
    let cases: Vec<Case> = vec![
        (
            &anon,
            "/login",
            vec![("email", email.as_str()), ("password", PASSWORD)],
        ),
        (
            &anon,
            "/signup",
            vec![
                ("email", &victim_email),
                ("name", "V"),
                ("password", PASSWORD),
            ],
        ),
        (&ann, "/logout", vec![]),
        (
            &ann,
            "/posts",
            vec![("title", "Forged"), ("body", "x"), ("publish", "true")],
        ),
        (&ann, &edit, vec![("title", "Defaced"), ("body", "pwned")]),
        (&ann, &delete, vec![]),
        (&ann, &end_one, vec![]),
        (&ann, "/account/sessions/others/end", vec![]),
        (
            &ann,
            "/account/password",
            vec![
                ("current_password", PASSWORD),
                ("new_password", OTHER_PASSWORD),
            ],
        ),
    ];
    let before = snapshot(&app).await;
    for (who, path, fields) in &cases {
        for (kind, token) in [
            ("no token", None),
            ("empty token", Some("")),
            (
                "wrong token",
                Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ),
            ("another browser's token", Some(strangers_token.as_str())),
        ] {
            let mut all: Vec<(&str, &str)> = Vec::new();
            if let Some(t) = token {
                all.push(("csrf_token", t));
            }
            all.extend_from_slice(fields);
            let res = who.post_raw(path, &encode(&all)).await;
            assert_eq!(res.status(), Status::Forbidden, "{kind} to {path}");
            let page = res.into_string().await.unwrap_or_default();
            assert!(
                page.contains(r#"<header class="site-header">"#) && page.contains("Not allowed"),
                "{kind} to {path}: not the themed 403 page: {page}"
            );
            assert_eq!(
                snapshot(&app).await,
                before,
                "{kind} to {path} changed data"
            );
        }
    }
    assert!(ann.is_logged_in().await);
    assert!(second.is_logged_in().await);
    assert!(!anon.is_logged_in().await);
    assert_eq!(
        ann.get(&format!("/posts/{slug}")).await.status(),
        Status::Ok
    );

    // The same forms with the right token go through (so the refusals above were
    // about the token, not the form).
    let res = ann
        .post_form(&edit, &[("title", "Kept"), ("body", "Edited.")])
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let res = anon.login(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn every_form_carries_this_browsers_token() {
    let app = TestApp::spawn().await;
    let (ann, email) = app.author("Ann").await;
    let slug = ann.create_post("A post", "Words.", true).await;
    ann.create_post("Another post", "More words.", true).await;
    // A second session, so the account page lists two.
    app.login_as(&email).await;
    let anon = app.new_browser().await;

    let pages: Vec<(&Browser, String, usize)> = vec![
        // (browser, page, at least this many forms)
        (&anon, "/signup".into(), 1),
        (&anon, "/login".into(), 1),
        (&ann, "/dashboard".into(), 4), // logout, two deletes, new post
        (&ann, format!("/posts/{slug}/edit"), 2),
        (&ann, "/account".into(), 5), // logout, two sessions, others, password
        (&ann, format!("/posts/{slug}"), 2),
        (&ann, "/".into(), 1),
        (&ann, "/posts/no-such-post".into(), 1),
    ];
    for (b, path, min_forms) in pages {
        let (_, page) = b.get_text(&path).await;
        let forms = post_forms(&page);
        assert!(
            forms.len() >= min_forms,
            "{path}: expected at least {min_forms} forms, found {}: {page}",
            forms.len()
        );
        let missing = forms_without_token(&page);
        assert!(
            missing.is_empty(),
            "{path}: forms without csrf_token: {missing:#?}"
        );
        let token = b.csrf_token().await;
        let values = csrf_tokens(&page);
        assert_eq!(values.len(), forms.len(), "{path}");
        for v in values {
            assert_eq!(
                v, token,
                "{path}: a form carries a token this browser does not hold"
            );
        }
        if std::ptr::eq(b, &ann) {
            assert!(
                forms.iter().any(|f| f.contains(r#"action="/logout""#)),
                "{path}: no logout form in the nav"
            );
        }
    }
}
