//! Writing, editing and deleting posts: who may do what, what readers then see, and
//! what the database holds.

use rocket::http::Status;

use crate::common::*;

/// The dashboard table row that links to `slug`, or "" when there is none.
fn dashboard_row<'a>(page: &'a str, slug: &str) -> &'a str {
    let link = format!("href=\"/posts/{slug}\"");
    page.split("<tr>")
        .find(|row| row.contains(&link))
        .map_or("", |row| row.split("</tr>").next().unwrap_or(""))
}

fn assert_forbidden_page(status: Status, page: &str) {
    assert_eq!(status, Status::Forbidden, "{page}");
    assert!(page.contains("Not allowed"), "{page}");
    assert!(page.contains("<nav aria-label=\"Main\""), "themed: {page}");
}

#[rocket::async_test]
async fn a_published_post_shows_rendered_markdown_and_its_author() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice Writer").await;
    let body =
        "# A heading\n\nRead [the docs](https://example.com/docs).\n\n```\nfn main() {}\n```\n";
    let res = alice
        .post_form(
            "/posts",
            &[
                ("title", "My first post"),
                ("body", body),
                ("publish", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/posts/my-first-post");

    let (status, page) = alice.get_text("/posts/my-first-post").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Published."), "flash: {page}");
    let (status, page) = app.get_text("/posts/my-first-post").await;
    assert_eq!(status, Status::Ok, "readers see it");
    assert!(page.contains("<h1>My first post</h1>"), "{page}");
    assert!(page.contains("<h1>A heading</h1>"), "{page}");
    assert!(page.contains("href=\"https://example.com/docs\""), "{page}");
    assert!(page.contains(">the docs</a>"), "{page}");
    assert!(page.contains("<pre><code>fn main() {}"), "{page}");
    assert!(visible_text(&page).contains("By Alice Writer"), "{page}");
    assert!(!page.contains("Draft"), "{page}");
}

#[rocket::async_test]
async fn a_draft_is_seen_only_by_its_author() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    let draft = alice
        .create_post("Secret plans", "Not ready yet.", false)
        .await;
    let public = alice.create_post("Open letter", "Ready.", true).await;

    let (status, page) = alice.get_text(&format!("/posts/{draft}")).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Secret plans"), "{page}");
    assert!(page.contains("Not ready yet."), "{page}");
    assert!(page.contains("Draft"), "{page}");

    let (status, page) = app.get_text(&format!("/posts/{draft}")).await;
    assert_eq!(status, Status::NotFound, "anonymous");
    assert!(!page.contains("Not ready yet."), "{page}");
    let (status, page) = bob.get_text(&format!("/posts/{draft}")).await;
    assert_eq!(status, Status::NotFound, "another author");
    assert!(!page.contains("Not ready yet."), "{page}");

    let (_, home) = app.get_text("/").await;
    assert!(home.contains("Open letter"), "{home}");
    assert!(!home.contains("Secret plans"), "{home}");
    let (_, home) = alice.get_text("/").await;
    assert!(
        !home.contains("Secret plans"),
        "not even for its author: {home}"
    );
    let (_, feed) = app.get_text("/feed.xml").await;
    assert!(feed.contains("Open letter"), "{feed}");
    assert!(!feed.contains("Secret plans"), "{feed}");
    assert!(!feed.contains(&draft), "{feed}");

    let (status, dash) = alice.get_text("/dashboard").await;
    assert_eq!(status, Status::Ok);
    let row = dashboard_row(&dash, &draft);
    assert!(row.contains("Secret plans"), "{dash}");
    assert!(row.contains("Draft"), "{row}");
    let row = dashboard_row(&dash, &public);
    assert!(row.contains("Published"), "{row}");
    assert!(!row.contains("Draft"), "{row}");
}

#[rocket::async_test]
async fn publishing_a_draft_later_puts_it_on_the_home_page() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = alice.create_post("Slow cooking", "Patience.", false).await;
    let (_, home) = app.get_text("/").await;
    assert!(!home.contains("Slow cooking"), "{home}");
    assert_eq!(post_row(&app, &slug).await.unwrap().published_at, None);

    let res = alice
        .edit_post(&slug, "Slow cooking", "Patience.", true)
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), format!("/posts/{slug}"));

    let (_, home) = app.get_text("/").await;
    assert!(home.contains("Slow cooking"), "{home}");
    assert!(home.contains(&format!("href=\"/posts/{slug}\"")), "{home}");
    let (status, _) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    let row = post_row(&app, &slug).await.unwrap();
    assert!(row.published);
    assert!(row.published_at.is_some(), "publication is stamped");
}

#[rocket::async_test]
async fn editing_own_post_changes_title_and_body_but_keeps_the_address() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = alice
        .create_post("Original title", "Original body.", true)
        .await;

    let (status, form) = alice.get_text(&format!("/posts/{slug}/edit")).await;
    assert_eq!(status, Status::Ok);
    assert!(form.contains("value=\"Original title\""), "{form}");
    assert!(form.contains("Original body."), "{form}");

    let res = alice
        .edit_post(&slug, "Better title", "A **much** better body.", true)
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), format!("/posts/{slug}"));
    assert_eq!(slug, "original-title");

    let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("<h1>Better title</h1>"), "{page}");
    assert!(
        page.contains("A <strong>much</strong> better body."),
        "{page}"
    );
    assert!(!page.contains("Original body."), "{page}");
    let (status, _) = app.get_text("/posts/better-title").await;
    assert_eq!(
        status,
        Status::NotFound,
        "the slug does not follow the title"
    );
    assert_eq!(post_count(&app).await, 1);
    let (_, home) = app.get_text("/").await;
    assert!(home.contains("Better title"), "{home}");
    assert!(!home.contains("Original title"), "{home}");
}

#[rocket::async_test]
async fn another_authors_post_cannot_be_edited_or_deleted() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    let slug = alice.create_post("Alice's post", "Her words.", true).await;
    let before = post_row(&app, &slug).await.unwrap();

    let (status, page) = bob.get_text(&format!("/posts/{slug}/edit")).await;
    assert_forbidden_page(status, &page);
    assert!(!page.contains("Her words."), "{page}");

    let res = bob.edit_post(&slug, "Bob was here", "Defaced.", true).await;
    let (status, page) = text_of(res).await;
    assert_forbidden_page(status, &page);

    let res = bob.post_form(&format!("/posts/{slug}/delete"), &[]).await;
    let (status, page) = text_of(res).await;
    assert_forbidden_page(status, &page);

    assert_eq!(post_row(&app, &slug).await, Some(before));
    let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Her words."), "{page}");
    assert!(!page.contains("Bob was here"), "{page}");
    let (_, page) = bob.get_text(&format!("/posts/{slug}")).await;
    assert!(
        !page.contains(&format!("/posts/{slug}/edit")),
        "no edit link for Bob: {page}"
    );
}

#[rocket::async_test]
async fn an_admin_may_edit_and_delete_anyones_post() {
    let app = TestApp::spawn().await;
    let (alice, alice_email) = app.author("Alice").await;
    let (admin, admin_email) = app.author("Ada Admin").await;
    make_admin(&app, &admin_email).await;
    let slug = alice.create_post("Needs fixing", "Teh typo.", true).await;

    let (status, page) = admin.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains(&format!("/posts/{slug}/edit")), "{page}");
    let (status, form) = admin.get_text(&format!("/posts/{slug}/edit")).await;
    assert_eq!(status, Status::Ok);
    assert!(form.contains("Teh typo."), "{form}");

    let res = admin.edit_post(&slug, "Fixed", "The typo.", true).await;
    assert_eq!(res.status(), Status::SeeOther);
    let (_, page) = app.get_text(&format!("/posts/{slug}")).await;
    assert!(page.contains("<h1>Fixed</h1>"), "{page}");
    assert!(page.contains("The typo."), "{page}");
    assert!(
        visible_text(&page).contains("By Alice"),
        "still Alice's post: {page}"
    );
    let row = post_row(&app, &slug).await.unwrap();
    assert_eq!(row.author_id, app.user_id(&alice_email).await);

    let res = admin.post_form(&format!("/posts/{slug}/delete"), &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");
    let (status, _) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::NotFound);
    assert_eq!(post_count(&app).await, 0);
}

#[rocket::async_test]
async fn deleting_own_post_removes_it_and_says_so() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = alice.create_post("Regrettable", "Oops.", true).await;
    let keep = alice.create_post("Keeper", "Fine.", true).await;

    let res = alice.post_form(&format!("/posts/{slug}/delete"), &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");
    let (status, dash) = alice.get_text("/dashboard").await;
    assert_eq!(status, Status::Ok);
    assert!(dash.contains("Deleted “Regrettable”."), "{dash}");
    assert!(dashboard_row(&dash, &slug).is_empty(), "{dash}");
    assert!(!dashboard_row(&dash, &keep).is_empty(), "{dash}");

    let (status, _) = alice.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::NotFound);
    let (_, home) = app.get_text("/").await;
    assert!(!home.contains("Regrettable"), "{home}");
    assert!(home.contains("Keeper"), "{home}");
    assert_eq!(post_row(&app, &slug).await, None);
    assert_eq!(post_count(&app).await, 1);
}

#[rocket::async_test]
async fn anonymous_writes_are_sent_to_login_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = alice.create_post("Standing", "Untouched.", true).await;
    let before = post_row(&app, &slug).await.unwrap();
    let edit = format!("/posts/{slug}/edit");
    let delete = format!("/posts/{slug}/delete");
    let fields = [
        ("title", "Anonymous"),
        ("body", "Vandalism."),
        ("publish", "true"),
    ];

    // With a valid CSRF token (the visitor has loaded a form) and without one at all.
    let anon = app.new_browser().await;
    for path in ["/posts", edit.as_str(), delete.as_str()] {
        let res = anon.post_form(path, &fields).await;
        assert_eq!(res.status(), Status::SeeOther, "{path}");
        assert_eq!(location(&res), "/login", "{path}");
    }
    let bare = app.new_browser().await;
    for path in ["/posts", edit.as_str(), delete.as_str()] {
        let res = bare.post_raw(path, &encode(&fields)).await;
        assert_eq!(res.status(), Status::SeeOther, "{path} without a token");
        assert_eq!(location(&res), "/login", "{path} without a token");
    }

    assert_eq!(post_count(&app).await, 1);
    assert_eq!(post_row(&app, &slug).await, Some(before));
    let (_, home) = app.get_text("/").await;
    assert!(!home.contains("Anonymous"), "{home}");
}

#[rocket::async_test]
async fn anonymous_edit_form_sends_to_login_and_back() {
    let app = TestApp::spawn().await;
    let (alice, alice_email) = app.author("Alice").await;
    let slug = alice.create_post("Later", "Edit me.", true).await;
    let edit = format!("/posts/{slug}/edit");

    let reader = app.new_browser().await;
    let res = reader.get(&edit).await;
    assert_eq!(res.status(), Status::SeeOther);
    let to = location(&res);
    let next = to
        .strip_prefix("/login?next=")
        .unwrap_or_else(|| panic!("redirect to login with next: {to}"));
    assert_eq!(
        rocket::http::RawStr::new(next).percent_decode_lossy(),
        edit.as_str()
    );

    let (status, login_page) = reader.get_text(&to).await;
    assert_eq!(status, Status::Ok);
    // Tera escapes '/' in attribute values.
    let login_page = unescape(&login_page);
    assert!(
        login_page.contains(&format!("name=\"next\" value=\"{edit}\"")),
        "{login_page}"
    );
    let res = reader
        .post_form(
            "/login",
            &[
                ("email", alice_email.as_str()),
                ("password", PASSWORD),
                ("next", edit.as_str()),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), edit);
    let (status, form) = reader.get_text(&edit).await;
    assert_eq!(status, Status::Ok);
    assert!(form.contains("Edit me."), "{form}");
}

#[rocket::async_test]
async fn extra_form_fields_cannot_change_owner_or_identity() {
    let app = TestApp::spawn().await;
    let (bob, bob_email) = app.author("Bob").await;
    let (alice, alice_email) = app.author("Alice").await;
    let bobs = bob.create_post("Bob's own", "Mine.", true).await;
    let bobs_before = post_row(&app, &bobs).await.unwrap();
    let bob_id = app.user_id(&bob_email).await.to_string();
    let alice_id = app.user_id(&alice_email).await;

    let res = alice
        .post_form(
            "/posts",
            &[
                ("title", "Sneaky"),
                ("body", "Who wrote this?"),
                ("publish", "true"),
                ("author_id", &bob_id),
                ("id", "1"),
                ("slug", "x"),
                ("published_at", "0"),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/posts/sneaky");
    let row = post_row(&app, "sneaky")
        .await
        .expect("stored under its title");
    assert_eq!(row.author_id, alice_id, "belongs to the poster");
    assert!(
        row.published_at.is_some_and(|t| t > 0),
        "published now, not at 0"
    );
    assert_eq!(post_row(&app, "x").await, None);
    assert_eq!(post_row(&app, &bobs).await, Some(bobs_before));
    let (_, page) = app.get_text("/posts/sneaky").await;
    assert!(visible_text(&page).contains("By Alice"), "{page}");

    let res = alice
        .post_form(
            "/posts/sneaky/edit",
            &[
                ("title", "Sneaky still"),
                ("body", "Edited."),
                ("publish", "true"),
                ("author_id", &bob_id),
                ("slug", "y"),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let row = post_row(&app, "sneaky").await.expect("slug kept");
    assert_eq!(row.author_id, alice_id);
    assert_eq!(row.title, "Sneaky still");
    assert_eq!(post_row(&app, "y").await, None);
    assert_eq!(post_count(&app).await, 2);
}

#[rocket::async_test]
async fn an_empty_title_is_refused_with_what_was_typed_kept() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let res = alice.submit_post("", "Fish & chips, *twice*.", true).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap_or_default();
    assert!(page.contains("Give the post a title."), "{page}");
    assert!(page.contains("The post was not saved"), "{page}");
    assert!(
        page.contains("Fish &amp; chips, *twice*.</textarea>"),
        "{page}"
    );
    assert!(
        page.contains("<form method=\"post\" action=\"/posts\""),
        "{page}"
    );
    assert_eq!(post_count(&app).await, 0);
}

#[rocket::async_test]
async fn a_blank_title_is_refused() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let res = alice.submit_post("  \t  ", "Body.", true).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap_or_default();
    assert!(page.contains("Give the post a title."), "{page}");
    assert_eq!(post_count(&app).await, 0);
}

#[rocket::async_test]
async fn a_title_over_200_characters_is_refused() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let long = "é".repeat(201);
    let res = alice.submit_post(&long, "Body.", true).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap_or_default();
    assert!(
        page.contains("Keep the title under 200 characters."),
        "{page}"
    );
    assert_eq!(post_count(&app).await, 0);

    // 200 characters (400 bytes) is the limit, not over it.
    let slug = alice.create_post(&"é".repeat(200), "Body.", true).await;
    assert_eq!(post_row(&app, &slug).await.unwrap().title, "é".repeat(200));
}

#[rocket::async_test]
async fn an_invalid_edit_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = alice.create_post("Stable", "Old body.", true).await;
    let before = post_row(&app, &slug).await.unwrap();
    let res = alice.edit_post(&slug, " ", "New body.", true).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap_or_default();
    assert!(page.contains("Give the post a title."), "{page}");
    assert!(page.contains("Your changes were not saved"), "{page}");
    assert!(page.contains("New body.</textarea>"), "{page}");
    assert!(
        page.contains(&format!("action=\"/posts/{slug}/edit\"")),
        "{page}"
    );
    assert_eq!(post_row(&app, &slug).await, Some(before));
}

#[rocket::async_test]
async fn an_overlong_body_is_refused() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let body = "a".repeat(200_001);
    let res = alice.submit_post("Epic", &body, true).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap_or_default();
    assert!(
        page.contains("The body is over 200000 characters."),
        "{page}"
    );
    assert!(page.contains("value=\"Epic\""), "title kept: {page}");
    assert_eq!(post_count(&app).await, 0);
}

#[rocket::async_test]
async fn a_script_title_is_shown_as_text_everywhere() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let title = "<script>alert(1)</script>";
    let slug = alice.create_post(title, "Harmless body.", true).await;

    let pages = [
        ("post", format!("/posts/{slug}")),
        ("home", "/".to_string()),
        ("dashboard", "/dashboard".to_string()),
        ("edit", format!("/posts/{slug}/edit")),
        ("feed", "/feed.xml".to_string()),
    ];
    for (what, path) in pages {
        let (status, page) = alice.get_text(&path).await;
        assert_eq!(status, Status::Ok, "{what}");
        assert!(
            page.contains("&lt;script&gt;alert(1)"),
            "{what} shows the title escaped: {page}"
        );
        // The form pages load the site's own preview script; nothing else is a script.
        let others = page.replace(r#"<script src="/static/preview.js" defer></script>"#, "");
        assert!(
            !others.to_lowercase().contains("<script"),
            "{what} has no script element: {page}"
        );
    }
}

#[rocket::async_test]
async fn dangerous_html_in_a_body_is_removed() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let body = "Intro paragraph.\n\n\
        <script>alert(1)</script>\n\n\
        <img src=x onerror=alert(1)>\n\n\
        [click](javascript:alert(1))\n\n\
        <a href=\"javascript:alert(1)\">x</a>\n\n\
        <a href=\"JaVaScRiPt:alert(1)\">y</a>\n\n\
        <iframe src=\"https://evil.example/\"></iframe>\n\n\
        <p onclick=\"alert(1)\" style=\"color:red\">Styled</p>\n\n\
        Outro paragraph.";
    let slug = alice.create_post("Attack", body, true).await;

    let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Intro paragraph."), "{page}");
    assert!(page.contains("Outro paragraph."), "{page}");
    assert!(page.contains("click"), "the link text stays: {page}");
    let lower = page.to_lowercase();
    for bad in [
        "<script",
        "onerror",
        "onclick",
        "javascript:",
        "<iframe",
        "evil.example",
    ] {
        assert!(!lower.contains(bad), "{bad} in the post page: {page}");
    }

    let stored = post_row(&app, &slug)
        .await
        .unwrap()
        .body_html
        .to_lowercase();
    for bad in ["<script", "onerror", "javascript:", "<iframe"] {
        assert!(!stored.contains(bad), "{bad} stored: {stored}");
    }
    let (_, feed) = app.get_text("/feed.xml").await;
    let feed = feed.to_lowercase();
    assert!(feed.contains("intro paragraph."), "{feed}");
    for bad in ["script", "onerror", "javascript:", "iframe"] {
        assert!(!feed.contains(bad), "{bad} in the feed: {feed}");
    }
}

#[rocket::async_test]
async fn duplicate_titles_get_numbered_addresses() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    let first = alice.create_post("Same title", "First.", true).await;
    let second = bob.create_post("Same title", "Second.", true).await;
    let third = alice.create_post("Same title", "Third.", true).await;
    assert_eq!(
        [first.as_str(), second.as_str(), third.as_str()],
        ["same-title", "same-title-2", "same-title-3"]
    );
    for (slug, body) in [(first, "First."), (second, "Second."), (third, "Third.")] {
        let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
        assert_eq!(status, Status::Ok, "{slug}");
        assert!(page.contains(body), "{slug}: {page}");
    }
    assert_eq!(post_count(&app).await, 3);
}

#[rocket::async_test]
async fn a_title_of_only_punctuation_gets_a_usable_address() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let one = alice.create_post("!!! ???", "Loud.", true).await;
    let two = alice.create_post("¿¡ … !?", "Louder.", true).await;
    assert_ne!(one, two);
    for (slug, title) in [(&one, "!!! ???"), (&two, "¿¡ … !?")] {
        assert!(
            !slug.is_empty()
                && slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{slug:?}"
        );
        let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
        assert_eq!(status, Status::Ok, "{slug}");
        assert!(page.contains(&format!("<h1>{title}</h1>")), "{page}");
    }
}

#[rocket::async_test]
async fn titles_that_look_like_routes_stay_under_posts() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let dashboard = alice
        .create_post("dashboard", "About dashboards.", true)
        .await;
    let edit = alice.create_post("edit", "About editing.", true).await;
    let delete = alice.create_post("delete", "About deleting.", true).await;
    assert_eq!(
        [&*dashboard, &*edit, &*delete],
        ["dashboard", "edit", "delete"]
    );

    for (slug, body) in [
        (&dashboard, "About dashboards."),
        (&edit, "About editing."),
        (&delete, "About deleting."),
    ] {
        let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
        assert_eq!(status, Status::Ok, "{slug}");
        assert!(page.contains(body), "{page}");
    }
    let (status, form) = alice.get_text("/posts/edit/edit").await;
    assert_eq!(status, Status::Ok);
    assert!(form.contains("About editing."), "{form}");

    let (status, dash) = alice.get_text("/dashboard").await;
    assert_eq!(status, Status::Ok);
    assert!(dash.contains("Your posts"), "{dash}");
    assert!(!dash.contains("About dashboards."), "{dash}");

    let res = alice.post_form("/posts/delete/delete", &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(post_row(&app, "delete").await, None);
    assert!(post_row(&app, "edit").await.is_some());
}

#[rocket::async_test]
async fn the_sanitized_html_is_stored_beside_the_markdown() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let md = "## Section\n\n*em* and <script>bad()</script> [ok](https://example.com)\n";
    let slug = alice.create_post("Stored", md, true).await;
    let PostRow {
        body_md, body_html, ..
    } = post_row(&app, &slug).await.unwrap();
    assert_eq!(body_md, md, "the Markdown is kept as typed");
    assert!(body_html.contains("<h2>Section</h2>"), "{body_html}");
    assert!(body_html.contains("<em>em</em>"), "{body_html}");
    assert!(
        body_html.contains("href=\"https://example.com\""),
        "{body_html}"
    );
    assert!(!body_html.contains("<script"), "{body_html}");

    let res = alice.edit_post(&slug, "Stored", "New **text**", true).await;
    assert_eq!(res.status(), Status::SeeOther);
    let PostRow {
        body_md, body_html, ..
    } = post_row(&app, &slug).await.unwrap();
    assert_eq!(body_md, "New **text**");
    assert!(body_html.contains("<strong>text</strong>"), "{body_html}");
    assert!(
        !body_html.contains("Section"),
        "re-rendered at save: {body_html}"
    );
}
