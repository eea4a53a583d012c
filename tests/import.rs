//! Story: someone moving from WordPress, Ghost, WriteFreely or a static site runs `quire
//! import` on their old export: posts arrive with their dates, states, slugs, tags and
//! images, a second run adds nothing, a dry run writes nothing, and a broken or hostile
//! export is refused (or defused) with nothing half-written. Fixtures:
//! tests/fixtures/import/ (each folder's README cites the format followed).

use std::path::{Path, PathBuf};
use std::process::Output;

use rocket::http::Status;

use crate::common::process::quire_command;
use crate::common::*;
use quire::import::{Format, Options, Report};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(rel)
}

fn options(rel: &str, author: Option<&str>) -> Options {
    let media = quire::config::MediaConfig::default();
    Options {
        path: fixture(rel),
        author: author.map(str::to_string),
        uploads: None,
        dry_run: false,
        bounds: quire::media::Bounds {
            max_bytes: media.max_bytes,
            max_pixels: media.max_pixels,
        },
    }
}

async fn import(app: &TestApp, format: Format, opts: &Options) -> Result<Report, String> {
    quire::import::run(&app.db().await.inner, format, opts).await
}

/// An account with exactly this email (the one the fixture's author has).
async fn account(app: &TestApp, email: &str, name: &str) {
    let b = app.new_browser().await;
    let status = b.signup(email, name, PASSWORD).await.status();
    assert_eq!(status, Status::SeeOther, "signup of {email}");
}

fn report_has(report: &Report, needle: &str) {
    assert!(
        report.lines.iter().any(|l| l.contains(needle)),
        "no line with {needle:?} in:\n{}",
        report.lines.join("\n")
    );
}

// What the database holds, for the stories below (the import's own tables).

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&*app.db().await)
        .await
        .expect("count")
}

/// Everything an import writes, in a comparable form.
async fn everything(app: &TestApp) -> String {
    let mut s = snapshot(app).await;
    for table in ["media", "media_files", "tags", "post_tags", "imports"] {
        s.push_str(&format!("\n{table}: {}", count(app, table).await));
    }
    s
}

async fn author_email_of(app: &TestApp, slug: &str) -> String {
    sqlx::query_scalar(
        "SELECT u.email FROM posts p JOIN users u ON u.id = p.author_id WHERE p.slug = $1",
    )
    .bind(slug)
    .fetch_one(&*app.db().await)
    .await
    .expect("author of post")
}

async fn tag_names(app: &TestApp, slug: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT t.name FROM post_tags pt JOIN tags t ON t.id = pt.tag_id \
         JOIN posts p ON p.id = pt.post_id WHERE p.slug = $1 ORDER BY pt.position",
    )
    .bind(slug)
    .fetch_all(&*app.db().await)
    .await
    .expect("tags of post")
}

async fn dates_of(app: &TestApp, slug: &str) -> (i64, i64) {
    sqlx::query_as("SELECT created_at, updated_at FROM posts WHERE slug = $1")
        .bind(slug)
        .fetch_one(&*app.db().await)
        .await
        .expect("dates of post")
}

fn post(row: Option<PostRow>, slug: &str) -> PostRow {
    row.unwrap_or_else(|| panic!("no post at /posts/{slug}"))
}

// 2021-03-04 10:00:00 UTC and 2037-01-01 09:00:00 UTC (scheduled dates stay before
// 2038: SQLite values past i32 read back wrong through sqlx's Any driver in places).
const HELLO_AT: i64 = 1_614_852_000;
const FUTURE_AT: i64 = 2_114_413_200;

#[rocket::async_test]
async fn a_wordpress_export_arrives_with_dates_states_tags_pages_and_its_image() {
    let app = TestApp::spawn().await;
    account(&app, "alice@example.com", "Alice").await;
    account(&app, "owner@example.com", "Owner").await;
    let report = import(
        &app,
        Format::WordPress,
        &options("wordpress/export.xml", Some("owner@example.com")),
    )
    .await
    .expect("import");
    assert_eq!(
        (report.posts, report.images, report.images_missing),
        (4, 1, 0),
        "{report:?}"
    );

    // Published, at its own date, by the author its email names, with its tags.
    let hello = post(post_row(&app, "hello-world").await, "hello-world");
    assert!(hello.published);
    assert_eq!(hello.published_at, Some(HELLO_AT));
    assert_eq!(
        dates_of(&app, "hello-world").await,
        (HELLO_AT, HELLO_AT + 86_400)
    );
    assert_eq!(
        author_email_of(&app, "hello-world").await,
        "alice@example.com"
    );
    assert_eq!(tag_names(&app, "hello-world").await, ["News", "Rust"]);
    let (status, page) = app.get_text("/posts/hello-world").await;
    assert_eq!(status, Status::Ok);
    assert!(
        page.contains("Welcome to the &amp; new home of this blog."),
        "{page}"
    );
    // The image came from wp-content/uploads beside the export, through the upload
    // pipeline: served from /media, with variants, and no link to the old site left.
    let media_url = regex::Regex::new(r#"src="(/media/\d+/[a-z0-9.-]+)""#)
        .unwrap()
        .captures(&page)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no /media image in {page}"));
    assert!(page.contains("srcset="), "{page}");
    assert!(!page.contains("old.example/wp-content"), "{page}");
    assert_eq!(app.get(&media_url).await.status(), Status::Ok);
    let (_, tag_page) = app.get_text("/tags/news").await;
    assert!(tag_page.contains("/posts/hello-world"), "{tag_page}");

    // The draft stays a draft: nobody else sees it.
    let draft = post(
        post_row(&app, "unfinished-thoughts").await,
        "unfinished-thoughts",
    );
    assert!(!draft.published);
    assert_eq!(
        app.get("/posts/unfinished-thoughts").await.status(),
        Status::NotFound
    );
    // The scheduled post keeps its time and is not out before it; its author (bob) has no
    // account here, so it went to --author.
    let future = post(
        post_row(&app, "letter-to-the-future").await,
        "letter-to-the-future",
    );
    assert!(future.published);
    assert_eq!(future.published_at, Some(FUTURE_AT));
    assert_eq!(
        app.get("/posts/letter-to-the-future").await.status(),
        Status::NotFound
    );
    assert!(!app.get_text("/").await.1.contains("Letter to the future"));
    assert_eq!(
        author_email_of(&app, "letter-to-the-future").await,
        "owner@example.com"
    );
    // The page became a post, as the report says; the trashed post stayed behind.
    let (status, about) = app.get_text("/posts/about").await;
    assert_eq!(status, Status::Ok);
    // WordPress's shortcodes: a caption is a figure, a gallery is left out and said, an
    // escaped one is the text itself.
    assert!(
        regex::Regex::new(
            r#"<figure><a [^>]*><img [^>]*src="/media/[^"]+"[^>]*></a><figcaption>The view from the desk</figcaption></figure>"#
        )
        .unwrap()
        .is_match(&about),
        "{about}"
    );
    assert!(
        !about.contains("[caption id") && !about.contains("[gallery"),
        "{about}"
    );
    assert!(about.contains("written like [caption]."), "{about}");
    report_has(&report, "a [gallery] shortcode was left out");
    // Its description is its first paragraph, though that is HTML.
    assert!(
        about.contains(r#"<meta name="description" content="This blog is about small things.">"#),
        "{about}"
    );
    report_has(
        &report,
        "page (as a post) \u{201c}About\u{201d} as /posts/about",
    );
    report_has(&report, "left out: 1 trash post(s)");
    assert!(post_row(&app, "thrown-away__trashed").await.is_none());
    assert_eq!(post_count(&app).await, 4);
}

#[rocket::async_test]
async fn running_an_import_again_adds_nothing() {
    let app = TestApp::spawn().await;
    account(&app, "owner@example.com", "Owner").await;
    let opts = options("wordpress/export.xml", Some("owner@example.com"));
    import(&app, Format::WordPress, &opts)
        .await
        .expect("first run");
    let before = everything(&app).await;
    let again = import(&app, Format::WordPress, &opts)
        .await
        .expect("second run");
    assert_eq!(
        (again.posts, again.images, again.already),
        (0, 0, 4),
        "{again:?}"
    );
    report_has(&again, "already imported: post \u{201c}Hello World\u{201d}");
    assert_eq!(everything(&app).await, before);
}

#[rocket::async_test]
async fn a_dry_run_says_what_it_would_do_and_writes_nothing() {
    let app = TestApp::spawn().await;
    account(&app, "owner@example.com", "Owner").await;
    let before = everything(&app).await;
    let mut opts = options("wordpress/export.xml", Some("owner@example.com"));
    opts.dry_run = true;
    let report = import(&app, Format::WordPress, &opts)
        .await
        .expect("dry run");
    report_has(&report, "would import post \u{201c}Hello World\u{201d} as /posts/hello-world (published 2021-03-04)");
    report_has(&report, "(draft)");
    report_has(&report, "scheduled for 2037-01-01 09:00 UTC");
    report_has(
        &report,
        "image 2021/03/photo.png: would be uploaded (600 x 400)",
    );
    report_has(&report, "nothing was written");
    assert_eq!(everything(&app).await, before);
    // And the real run afterwards imports what the dry run announced.
    opts.dry_run = false;
    let real = import(&app, Format::WordPress, &opts)
        .await
        .expect("import");
    assert_eq!((real.posts, real.images), (report.posts, report.images));
}

#[rocket::async_test]
async fn a_taken_slug_gets_the_usual_number_and_the_others_keep_theirs() {
    let app = TestApp::spawn().await;
    let (author, email) = app.author("Resident").await;
    assert_eq!(
        author
            .create_post("Hello World", "Already here.", true)
            .await,
        "hello-world"
    );
    let report = import(
        &app,
        Format::WordPress,
        &options("wordpress/export.xml", Some(&email)),
    )
    .await
    .expect("import");
    report_has(
        &report,
        "as /posts/hello-world-2 (published 2021-03-04, its slug hello-world being taken)",
    );
    assert_eq!(
        post(post_row(&app, "hello-world").await, "hello-world").title,
        "Hello World"
    );
    assert_eq!(
        post(post_row(&app, "hello-world").await, "hello-world").body_md,
        "Already here."
    );
    assert!(post_row(&app, "hello-world-2").await.is_some());
    assert!(post_row(&app, "letter-to-the-future").await.is_some());
}

#[rocket::async_test]
async fn hostile_wordpress_html_and_images_are_defused_and_listed() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Owner").await;
    let report = import(
        &app,
        Format::WordPress,
        &options("wordpress/hostile.xml", Some(&email)),
    )
    .await
    .expect("import");
    let row = post(post_row(&app, "nothing-to-see").await, "nothing-to-see");
    for bad in ["<script", "onclick", "onerror", "javascript:", "alert("] {
        assert!(
            !row.body_html.contains(bad),
            "{bad} kept in {}",
            row.body_html
        );
    }
    let (status, page) = app.get_text("/posts/nothing-to-see").await;
    assert_eq!(status, Status::Ok);
    assert!(!page.contains("alert("), "{page}");
    // The 40000 x 40000 PNG is refused by the upload limits, the climbs out of the
    // uploads folder are refused, the missing one is listed; the one moved to another
    // month's folder is found by its name. Only that one is stored.
    report_has(
        &report,
        "image 2021/03/huge.png: refused: This image is 40000 x 40000 pixels",
    );
    // Both climbs (plain and percent-encoded) read as the same path, refused once.
    report_has(
        &report,
        "image ../../secret.png: refused: the path leaves the uploads folder",
    );
    report_has(
        &report,
        "image 2021/03/missing.jpg: not found in the uploads folder",
    );
    report_has(&report, "image 2019/01/photo.png: uploaded as /media/");
    assert_eq!(
        report
            .lines
            .iter()
            .filter(|l| l.contains("secret.png"))
            .count(),
        1,
        "{report:?}"
    );
    assert_eq!((report.images, report.images_missing), (1, 3));
    assert_eq!(count(&app, "media").await, 1);
    // Tags: the long one cut to 50 characters, at most 20, both said.
    let tags = tag_names(&app, "nothing-to-see").await;
    assert_eq!(tags.len(), 20, "{tags:?}");
    assert_eq!(
        tags[0],
        "A tag far longer than fifty characters, which quir"
    );
    report_has(&report, "cut to 50 characters");
    report_has(
        &report,
        "at most 20 tags a post: left out tag 20, tag 21, tag 22, tag 23, tag 24",
    );
}

#[rocket::async_test]
async fn a_billion_laughs_document_is_refused_at_its_doctype() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Owner").await;
    let before = everything(&app).await;
    let started = std::time::Instant::now();
    let err = import(
        &app,
        Format::WordPress,
        &options("wordpress/billion-laughs.xml", Some(&email)),
    )
    .await
    .expect_err("refused");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        err.contains("billion-laughs.xml:2:1: DOCTYPE declarations are refused"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    assert_eq!(everything(&app).await, before);
}

#[rocket::async_test]
async fn a_malformed_export_of_each_format_is_one_line_naming_the_place_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Owner").await;
    let before = everything(&app).await;
    for (format, rel, place) in [
        (
            Format::WordPress,
            "wordpress/malformed.xml",
            "malformed.xml:49:",
        ),
        (Format::Ghost, "ghost/malformed.json", "malformed.json:68:"),
        (
            Format::WriteFreely,
            "writefreely/malformed.json",
            "malformed.json:74:",
        ),
        (Format::Markdown, "markdown/malformed", "zz-bad.md:"),
        (Format::Markdown, "markdown/alias-bomb", "bomb.md:"),
    ] {
        let err = import(&app, format, &options(rel, Some(&email)))
            .await
            .expect_err(rel);
        assert!(err.contains(place), "{rel}: {err}");
        assert_eq!(err.lines().count(), 1, "{rel}: {err}");
    }
    // good.md, beside the broken file, was not imported either.
    assert_eq!(everything(&app).await, before);
}

#[rocket::async_test]
async fn a_ghost_export_keeps_markdown_resolves_its_links_and_holds_back_members_posts() {
    let app = TestApp::spawn().await;
    account(&app, "gina@example.com", "Gina").await;
    account(&app, "owner@example.com", "Owner").await;
    let report = import(
        &app,
        Format::Ghost,
        &options("ghost/export.json", Some("owner@example.com")),
    )
    .await
    .expect("import");
    assert_eq!(
        (report.posts, report.images, report.images_missing),
        (6, 1, 0),
        "{report:?}"
    );

    // The Markdown card is kept as Markdown; __GHOST_URL__ links point here now.
    let md = post(
        post_row(&app, "markdown-in-ghost").await,
        "markdown-in-ghost",
    );
    assert!(
        md.body_md.starts_with("Written in **Markdown** in Ghost."),
        "{}",
        md.body_md
    );
    assert!(md.body_md.contains("(/posts/rich-html)"), "{}", md.body_md);
    assert!(md.body_md.contains("(/tags/news)"), "{}", md.body_md);
    assert_eq!(md.published_at, Some(1_675_252_800));
    assert_eq!(
        author_email_of(&app, "markdown-in-ghost").await,
        "gina@example.com"
    );
    // In Ghost's order, without the internal #hidden tag.
    assert_eq!(
        tag_names(&app, "markdown-in-ghost").await,
        ["News", "Ghosts"]
    );
    let (_, page) = app.get_text("/").await;
    assert!(
        page.contains("Ghost&#x27;s own summary.") || page.contains("Ghost's own summary."),
        "{page}"
    );

    // HTML bodies are sanitized; its primary author has no account here.
    let rich = post(post_row(&app, "rich-html").await, "rich-html");
    assert!(
        rich.body_html
            .contains(r#"href="/posts/markdown-in-ghost""#),
        "{}",
        rich.body_html
    );
    for bad in ["<script", "onerror", "__GHOST_URL__"] {
        assert!(!rich.body_html.contains(bad), "{bad} in {}", rich.body_html);
    }
    // Its image came from content/images beside the export (in the body as one of
    // Ghost's resized copies), through the upload pipeline.
    let media_url = regex::Regex::new(r#"src="(/media/\d+/[a-z0-9.-]+)""#)
        .unwrap()
        .captures(&rich.body_html)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no /media image in {}", rich.body_html));
    assert!(
        !rich.body_html.contains("/content/images"),
        "{}",
        rich.body_html
    );
    let res = app.get(&media_url).await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.headers().get_one("Content-Type"), Some("image/jpeg"));
    assert_eq!(
        author_email_of(&app, "rich-html").await,
        "owner@example.com"
    );

    assert!(!post(post_row(&app, "a-ghost-draft").await, "a-ghost-draft").published);
    let soon = post(post_row(&app, "coming-soon").await, "coming-soon");
    assert!(soon.published);
    assert_eq!(
        app.get("/posts/coming-soon").await.status(),
        Status::NotFound
    );
    // Paid content is not published to everyone.
    assert!(!post(post_row(&app, "for-members").await, "for-members").published);
    report_has(&report, "for paid only in Ghost: imported as a draft");
    report_has(&report, "left out: 1 internal tag(s)");
    assert_eq!(app.get("/posts/colophon").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn a_writefreely_export_publishes_blog_posts_and_keeps_drafts() {
    let app = TestApp::spawn().await;
    account(&app, "wren@example.com", "Wren").await;
    let report = import(
        &app,
        Format::WriteFreely,
        &options("writefreely/export.json", None),
    )
    .await
    .expect("import");
    assert_eq!(report.posts, 4, "{report:?}");
    let first = post(post_row(&app, "first-flight").await, "first-flight");
    assert!(first.published);
    assert_eq!(first.published_at, Some(1_588_320_000));
    assert_eq!(
        author_email_of(&app, "first-flight").await,
        "wren@example.com"
    );
    assert_eq!(
        tag_names(&app, "first-flight").await,
        ["WriteFreely", "birds"]
    );
    // An untitled post is named by its first line.
    let untitled = post(
        post_row(&app, "untitled-thoughts").await,
        "untitled-thoughts",
    );
    assert_eq!(untitled.title, "Untitled thoughts");
    assert_eq!(app.get("/posts/later-on").await.status(), Status::NotFound);
    assert!(post(post_row(&app, "later-on").await, "later-on").published);
    assert!(!post(post_row(&app, "a-loose-draft").await, "a-loose-draft").published);
}

#[rocket::async_test]
async fn a_markdown_folder_becomes_posts_and_its_html_is_sanitized() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Owner").await;
    // Markdown files name no author: without --author the import says so.
    let err = import(&app, Format::Markdown, &options("markdown/site", None))
        .await
        .expect_err("no author");
    assert!(err.contains("--author EMAIL"), "{err}");
    assert_eq!(post_count(&app).await, 0);

    let report = import(
        &app,
        Format::Markdown,
        &options("markdown/site", Some(&email)),
    )
    .await
    .expect("import");
    assert_eq!(report.posts, 3, "{report:?}");
    let hello = post(post_row(&app, "hello-markdown").await, "hello-markdown");
    assert_eq!(hello.published_at, Some(1_662_798_600));
    assert!(!hello.body_html.contains("<script"), "{}", hello.body_html);
    assert!(
        !hello.body_html.contains("onmouseover"),
        "{}",
        hello.body_html
    );
    assert_eq!(
        tag_names(&app, "hello-markdown").await,
        ["notes", "Static Sites"]
    );
    assert!(excerpt_html(&app, "hello-markdown")
        .await
        .contains("<em>all</em>"));
    let draft = post(post_row(&app, "jekyll-style").await, "jekyll-style");
    assert!(!draft.published);
    assert_eq!(tag_names(&app, "jekyll-style").await, ["drafts", "jekyll"]);
    let later = post(post_row(&app, "scheduled").await, "scheduled");
    assert!(later.published);
    assert_eq!(app.get("/posts/scheduled").await.status(), Status::NotFound);
}

// The command line: exit codes, one-line errors, output.

fn run_import(app: &TestApp, args: &[&str]) -> Output {
    quire_command(app.dir.path(), &app.database.url)
        .arg("import")
        .args(args)
        .output()
        .expect("quire runs")
}

#[rocket::async_test]
async fn the_import_command_reports_exits_zero_twice_and_refuses_a_broken_file_in_one_line() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Owner").await;
    let file = fixture("wordpress/export.xml");
    let file = file.to_str().unwrap();

    let dry = run_import(&app, &["wordpress", file, "--author", &email, "--dry-run"]);
    assert!(dry.status.success(), "{dry:?}");
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        out.contains("would import post \u{201c}Hello World\u{201d}"),
        "{out}"
    );
    assert_eq!(post_count(&app).await, 0);

    let first = run_import(&app, &["wordpress", file, "--author", &email]);
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("imported 4 post(s) and 1 image(s)"));
    let second = run_import(&app, &["wordpress", file, "--author", &email]);
    assert!(second.status.success(), "{second:?}");
    assert!(String::from_utf8_lossy(&second.stdout).contains("imported 0 post(s)"));
    assert_eq!(post_count(&app).await, 4);

    let broken = fixture("wordpress/malformed.xml");
    let out = run_import(
        &app,
        &["wordpress", broken.to_str().unwrap(), "--author", &email],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("quire: ") && err.contains("malformed.xml:49:"),
        "{err}"
    );
    assert_eq!(post_count(&app).await, 4);
}
