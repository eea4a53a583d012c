//! Story: an author writing a post with code sees it highlighted once saved, and can
//! preview the body before saving, with the form's Preview button (no JavaScript) or
//! through POST /preview as the page's script does while they type. A preview is what
//! saving would store, refusals included, and it saves nothing.

use rocket::http::{ContentType, Status};

use crate::common::*;

const RUST_POST: &str = "Some code:\n\n```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n";
const TOO_DEEP: &str = "may nest at most 64 levels deep";

/// The post form's fields with the Preview button pressed.
fn preview_fields<'a>(title: &'a str, body: &'a str, publish: bool) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("title", title), ("body", body), ("action", "preview")];
    if publish {
        fields.push(("publish", "true"));
    }
    fields
}

/// The preview pane's contents on a form page ("" when it shows none).
fn preview_pane(page: &str) -> String {
    let start = page
        .find("id=\"preview-body\">")
        .expect("the form has a preview pane");
    let rest = &page[start + "id=\"preview-body\">".len()..];
    rest[..rest.find("</div>\n</section>").expect("pane ends")].to_string()
}

/// Whether the title field shows `title` and the body field `body`.
fn keeps_values(page: &str, title: &str, body: &str) -> bool {
    let input = &page[page.find("<input id=\"title\"").expect("a title field")..];
    let input = &input[..input.find('>').unwrap()];
    unescape(input).contains(&format!(" value=\"{title}\""))
        && unescape(page).contains(&format!("{body}</textarea>"))
}

#[rocket::async_test]
async fn a_rust_code_block_is_highlighted_and_the_stylesheet_linked() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let slug = ann.create_post("Code", RUST_POST, true).await;
    let stored = post_row(&app, &slug).await.expect("saved").body_html;
    assert!(stored.contains("<span class=\"hl-"), "{stored}");
    assert!(
        stored.contains("<span class=\"hl-storage hl-type hl-function hl-rust\">fn</span>"),
        "{stored}"
    );

    let (status, page) = app
        .new_browser()
        .await
        .get_text(&format!("/posts/{slug}"))
        .await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("hl-rust"), "{page}");
    assert!(page.contains("<link rel=\"stylesheet\" href=\"/static/highlight.css\">"));

    let res = app.get("/static/highlight.css").await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.content_type(), Some(ContentType::CSS));
    let cache = res.headers().get_one("Cache-Control").map(str::to_string);
    let css = res.into_string().await.unwrap();
    assert!(css.contains(".hl-keyword") && css.contains("prefers-color-scheme: dark"));
    let style_cache = app.get("/static/style.css").await;
    assert_eq!(
        cache.as_deref(),
        style_cache.headers().get_one("Cache-Control")
    );
}

#[rocket::async_test]
async fn an_unknown_language_stays_plain_and_injected_classes_are_stripped() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let body = "```nosuchlang\nfn main() {}\n```\n\n\
        <span class=\"evil\">a</span> <p class=\"flash flash-error\">b</p>";
    let slug = ann.create_post("Plain", body, true).await;
    let html = post_row(&app, &slug).await.expect("saved").body_html;
    assert!(html.contains("<pre><code>fn main() {}"), "{html}");
    assert!(!html.contains("class"), "{html}");
    assert!(
        html.contains("<span>a</span>") && html.contains("<p>b</p>"),
        "{html}"
    );
}

#[rocket::async_test]
async fn the_preview_button_shows_the_body_rendered_keeps_the_values_and_saves_nothing() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let body = format!("{RUST_POST}\n<script>alert(1)</script>\n\n*kept* & \"quoted\"");

    let (status, page) = text_of(
        ann.post_form("/posts", &preview_fields("Draft title", &body, false))
            .await,
    )
    .await;
    assert_eq!(status, Status::Ok);
    let pane = preview_pane(&page);
    assert!(pane.contains("<em>kept</em>"), "{pane}");
    assert!(pane.contains("hl-rust"), "{pane}");
    assert!(!pane.contains("<script"), "{pane}");
    assert!(keeps_values(&page, "Draft title", &body), "{page}");
    assert!(
        !page.contains("id=\"publish\" name=\"publish\" type=\"checkbox\" value=\"true\" checked")
    );
    assert!(!page.contains(
        "id=\"preview\" aria-labelledby=\"preview-heading\" aria-live=\"polite\" hidden"
    ));
    assert_eq!(post_count(&app).await, 0, "a preview saves nothing");

    // An empty title is fine for a preview; the publish box stays ticked.
    let (status, page) = text_of(
        ann.post_form("/posts", &preview_fields("", "# Hi", true))
            .await,
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert!(preview_pane(&page).contains("<h1>Hi</h1>"));
    assert!(page.contains("value=\"true\" checked"));
    assert_eq!(post_count(&app).await, 0);

    // Editing: previewing a change leaves the stored post as it was.
    let slug = ann.create_post("Saved", "Old words.", true).await;
    let (status, page) = text_of(
        ann.post_form(
            &format!("/posts/{slug}/edit"),
            &preview_fields("Saved, changed", "New **words**.", true),
        )
        .await,
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert!(preview_pane(&page).contains("New <strong>words</strong>."));
    assert!(keeps_values(&page, "Saved, changed", "New **words**."));
    let row = post_row(&app, &slug).await.unwrap();
    assert_eq!(
        (row.title.as_str(), row.body_md.as_str()),
        ("Saved", "Old words.")
    );

    // Without the button the form saves as before.
    assert_eq!(
        ann.submit_post("Saved too", "x", true).await.status(),
        Status::SeeOther
    );
    assert_eq!(post_count(&app).await, 2);
}

#[rocket::async_test]
async fn the_preview_button_refuses_what_saving_refuses_with_the_same_message() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let deep = ">".repeat(100);
    let (status, page) = text_of(
        ann.post_form("/posts", &preview_fields("Deep", &deep, true))
            .await,
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(field_errors(&page, "body").contains(TOO_DEEP), "{page}");
    assert!(keeps_values(&page, "Deep", &deep));
    assert_eq!(preview_pane(&page), "");
    let (save_status, saved) = text_of(ann.submit_post("Deep", &deep, true).await).await;
    assert_eq!(save_status, status);
    assert_eq!(field_errors(&saved, "body"), field_errors(&page, "body"));
    assert_eq!(post_count(&app).await, 0);

    // Without the CSRF token nothing is previewed.
    let body = encode(&preview_fields("T", "b", true));
    assert_eq!(
        ann.post_raw("/posts", &body).await.status(),
        Status::Forbidden
    );
}

#[rocket::async_test]
async fn post_preview_answers_the_sanitized_html_saving_would_store() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let body = format!(
        "{RUST_POST}\n<img src=x onerror=alert(1)> <script>alert(2)</script> \
         [x](javascript:alert(3)) <span class=\"evil\">s</span>"
    );
    let res = ann.post_form("/preview", &[("body", &body)]).await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.content_type(), Some(ContentType::HTML));
    assert_eq!(res.headers().get_one("Cache-Control"), Some("no-store"));
    let csp = res
        .headers()
        .get_one("Content-Security-Policy")
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = res.into_string().await.unwrap();
    for bad in ["onerror", "<script", "javascript:", "evil"] {
        assert!(!html.contains(bad), "{bad}: {html}");
    }
    assert!(
        html.contains("hl-rust") && !html.contains("<html"),
        "a fragment: {html}"
    );
    assert_eq!(post_count(&app).await, 0);

    // Exactly what saving stores.
    let slug = ann.create_post("Same", &body, true).await;
    assert_eq!(post_row(&app, &slug).await.unwrap().body_html, html);

    // Refusals: the renderer's message as text, with its status.
    let res = ann
        .post_form("/preview", &[("body", &">".repeat(100))])
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    assert_eq!(res.content_type(), Some(ContentType::Text));
    assert!(res.into_string().await.unwrap().contains(TOO_DEEP));
    let res = ann
        .post_form("/preview", &[("body", &"a".repeat(200_001))])
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    assert!(res
        .into_string()
        .await
        .unwrap()
        .contains("over 200000 characters"));
    let (status, html) = text_of(ann.post_form("/preview", &[]).await).await;
    assert_eq!((status, html.as_str()), (Status::Ok, ""));
}

#[rocket::async_test]
async fn post_preview_needs_a_login_and_the_csrf_token() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;

    let anon = app.new_browser().await;
    let res = anon.post_form("/preview", &[("body", "hi")]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(location(&res).starts_with("/login"), "{}", location(&res));

    let res = ann.post_raw("/preview", &encode(&[("body", "hi")])).await;
    assert_eq!(res.status(), Status::Forbidden);
    let res = ann
        .post_raw(
            "/preview",
            &encode(&[("csrf_token", "wrong"), ("body", "hi")]),
        )
        .await;
    assert_eq!(res.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn the_form_pages_load_the_preview_script_from_the_site() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.author("Ann").await;
    let slug = ann.create_post("Mine", "Words.", true).await;
    for path in ["/dashboard".to_string(), format!("/posts/{slug}/edit")] {
        let res = ann.get(&path).await;
        let csp = res
            .headers()
            .get_one("Content-Security-Policy")
            .unwrap()
            .to_string();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        let page = res.into_string().await.unwrap();
        assert!(
            page.contains("<script src=\"/static/preview.js\" defer></script>"),
            "{path}"
        );
        assert!(!page.contains("<script>"), "no inline script on {path}");
        assert!(page.contains("name=\"action\" value=\"preview\""), "{path}");
    }
    let res = app.get("/static/preview.js").await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.content_type(), Some(ContentType::JavaScript));
    let script = res.into_string().await.unwrap();
    assert!(script.contains("/preview") && script.contains("csrf_token"));
}
