//! Story: nothing a stranger can reach tells them more than a reader should know: other
//! authors' drafts, the Host they sent, the files quire keeps on disk.

use rocket::http::uri::Host;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;

use crate::common::*;
use crate::common::{database, process};

/// What `b` gets for GET and POST on a post's own routes: view, edit form, edit, delete.
async fn post_routes(b: &Browser, slug: &str) -> Vec<(Status, String)> {
    let mut answers = vec![
        b.get_text(&format!("/posts/{slug}")).await,
        b.get_text(&format!("/posts/{slug}/edit")).await,
    ];
    let edit = b.edit_post(slug, "Mine now", "Defaced.", true).await;
    answers.push(text_of(edit).await);
    let delete = b.post_form(&format!("/posts/{slug}/delete"), &[]).await;
    answers.push(text_of(delete).await);
    answers
}

#[rocket::async_test]
async fn another_authors_draft_answers_like_a_missing_post() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    let draft = alice.create_post("Secret plan", "Not yet.", false).await;
    let before = post_row(&app, &draft).await;
    // Bob's welcome has been shown and his forms have their token, as after any visit.
    bob.get("/dashboard").await;

    let for_draft = post_routes(&bob, &draft).await;
    let for_missing = post_routes(&bob, "no-such-post-at-all").await;
    for (i, ((status, page), (missing_status, missing_page))) in
        for_draft.iter().zip(&for_missing).enumerate()
    {
        assert_eq!(*missing_status, Status::NotFound, "route {i}");
        assert_eq!(status, missing_status, "route {i}: {page}");
        assert_eq!(page, missing_page, "route {i}: the pages differ");
        assert!(!page.contains("Secret plan"), "route {i}: {page}");
    }
    assert_eq!(
        post_row(&app, &draft).await,
        before,
        "the draft is untouched"
    );
    // Its author still reaches it.
    let (status, page) = alice.get_text(&format!("/posts/{draft}/edit")).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Not yet."), "{page}");
}

#[rocket::async_test]
async fn a_title_taken_by_another_authors_drafts_is_not_counted() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    // Alice holds "secret-plan" and "secret-plan-2" as drafts.
    let hers = [
        alice.create_post("Secret plan", "One.", false).await,
        alice.create_post("Secret plan", "Two.", false).await,
    ];
    assert_eq!(
        hers,
        ["secret-plan", "secret-plan-2"],
        "her own are numbered"
    );

    let his = bob.create_post("Secret plan", "Mine.", true).await;
    let suffix = his.strip_prefix("secret-plan-").unwrap_or("");
    assert!(
        suffix.len() == 8 && !suffix.chars().all(|c| c.is_ascii_digit()),
        "a collision with drafts Bob cannot see gets a random suffix, not a count: {his}"
    );
    let (status, page) = app.get_text(&format!("/posts/{his}")).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Mine."), "{page}");
    // A published post is visible to everyone, so it is counted as before.
    let (carol, _) = app.author("Carol").await;
    let public = carol.create_post("Open letter", "Hi.", true).await;
    let again = bob.create_post("Open letter", "Hello.", true).await;
    assert_eq!(
        [public.as_str(), again.as_str()],
        ["open-letter", "open-letter-2"]
    );
}

/// The feed as fetched from `remote` naming `host` (None: no Host at all).
async fn feed_via(app: &TestApp, remote: &str, host: Option<&str>) -> String {
    let mut req = app.client.get("/feed.xml").remote(remote.parse().unwrap());
    if let Some(host) = host {
        req.set_host(Host::parse_owned(host.to_string()).unwrap());
    }
    let res = req.dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    res.into_string().await.unwrap()
}

/// Every absolute link in a feed, without its path.
fn link_origins(feed: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"href="(https?://[^/"]*)"#).unwrap();
    re.captures_iter(feed).map(|c| c[1].to_string()).collect()
}

#[rocket::async_test]
async fn a_forged_host_never_reaches_the_feed() {
    let app = TestApp::spawn_with(|f| f.merge(("trusted_proxies", ["10.0.0.1"]))).await;
    let (alice, _) = app.author("Alice").await;
    alice.create_post("Hello", "World.", true).await;

    let forged = feed_via(&app, "198.51.100.9:5555", Some("evil.example")).await;
    assert!(!forged.contains("evil.example"), "{forged}");
    let origins = link_origins(&forged);
    assert!(!origins.is_empty(), "{forged}");
    assert!(
        origins.iter().all(|o| o == "http://127.0.0.1:8000"),
        "links name the listening address: {origins:?}"
    );
    // The address quire listens on is a Host anyone may name.
    let direct = feed_via(&app, "198.51.100.9:5555", Some("127.0.0.1:8000")).await;
    assert!(link_origins(&direct)
        .iter()
        .all(|o| o == "http://127.0.0.1:8000"));
    // The trusted proxy says which host the reader used.
    let proxied = feed_via(&app, "10.0.0.1:40000", Some("blog.example.com")).await;
    let origins = link_origins(&proxied);
    assert!(
        !origins.is_empty() && origins.iter().all(|o| o == "http://blog.example.com"),
        "{origins:?}"
    );
}

#[rocket::async_test]
async fn site_url_names_every_feed_link_whatever_the_host() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("site.url", "https://blog.example.com/"))
            .merge(("trusted_proxies", ["10.0.0.1"]))
    })
    .await;
    let (alice, _) = app.author("Alice").await;
    alice.create_post("Hello", "World.", true).await;
    for (remote, host) in [
        ("198.51.100.9:5555", "evil.example"),
        ("10.0.0.1:40000", "other.example"),
    ] {
        let feed = feed_via(&app, remote, Some(host)).await;
        let origins = link_origins(&feed);
        assert!(
            !origins.is_empty() && origins.iter().all(|o| o == "https://blog.example.com"),
            "{remote} {host}: {origins:?}"
        );
    }
}

fn cache_control(res: &LocalResponse<'_>) -> String {
    res.headers()
        .get_one("Cache-Control")
        .unwrap_or("")
        .to_string()
}

#[rocket::async_test]
async fn public_answers_say_how_long_they_keep_and_personal_ones_are_never_stored() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let slug = alice.create_post("Hello", "World.", true).await;
    let reader = app.new_browser().await;

    for path in ["/".to_string(), format!("/posts/{slug}")] {
        let res = reader.get(&path).await;
        assert_eq!(res.status(), Status::Ok);
        assert_eq!(cache_control(&res), "public, no-cache", "{path}");
        assert_eq!(
            res.headers().get_one("Vary"),
            Some("Cookie, Accept-Encoding"),
            "{path}"
        );
    }
    let feed = reader.get("/feed.xml").await;
    assert_eq!(cache_control(&feed), "public, max-age=300");
    let css = reader.get("/static/style.css").await;
    assert_eq!(cache_control(&css), "public, max-age=3600");
    assert_eq!(cache_control(&reader.get("/healthz").await), "no-store");
    let missing = reader.get("/posts/no-such-post").await;
    assert_eq!(cache_control(&missing), "no-cache");

    // A page holding this browser's CSRF token, even once its cookie is set, and every
    // page of a logged-in author.
    reader.get("/login").await;
    let again = reader.get("/login").await;
    assert!(set_cookies(&again).is_empty(), "{:?}", set_cookies(&again));
    assert_eq!(cache_control(&again), "no-store");
    for path in [
        "/".to_string(),
        format!("/posts/{slug}"),
        "/dashboard".into(),
    ] {
        let res = alice.get(&path).await;
        assert_eq!(res.status(), Status::Ok, "{path}");
        assert_eq!(cache_control(&res), "no-store", "{path}");
    }
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[rocket::async_test]
async fn the_database_its_wal_and_the_key_file_are_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let database = database::TestDatabase::sqlite(dir.path());
    let figment = quire::secret_key::with_secret_key(keyless_figment(&database)).unwrap();
    let b = Browser::launch(figment).await;
    let res = b.signup(&unique_email("owner"), "Owner", PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    for name in [
        "quire.sqlite",
        "quire.sqlite-wal",
        "quire.sqlite-shm",
        "quire.secret_key",
    ] {
        assert_eq!(mode_of(&dir.path().join(name)), 0o600, "{name}");
    }
}

#[test]
fn a_key_file_others_can_read_is_a_warning_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("quire.secret_key");
    std::fs::write(&key, SECRET_KEY).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("quire.sqlite").display()
    );
    let out = process::quire_command(dir.path(), &url)
        .arg("migrate")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains("quire.secret_key"),
        "{stderr}"
    );
    // It is the operator's file: quire keeps using it as it is.
    assert_eq!(std::fs::read_to_string(&key).unwrap(), SECRET_KEY);
}

#[test]
fn processes_starting_together_on_a_fresh_folder_agree_on_one_key() {
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let database = database::TestDatabase::sqlite(dir.path());
        let keys: Vec<Result<String, String>> = std::thread::scope(|s| {
            let starts: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        quire::secret_key::with_secret_key(keyless_figment(&database))
                            .map(|f| f.extract_inner::<String>("secret_key").unwrap())
                    })
                })
                .collect();
            starts.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let first = keys[0].clone();
        for key in &keys {
            assert!(key.is_ok(), "round {round}: {key:?}");
            assert_eq!(key, &first, "round {round}: two keys");
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["quire.secret_key"], "round {round}");
    }
}

#[rocket::async_test]
async fn each_instance_keeps_its_template_loader_in_a_private_folder() {
    use std::os::unix::fs::MetadataExt;
    let app = TestApp::spawn().await;
    let other = app.new_browser().await;
    let folder = |b: &Browser| -> std::path::PathBuf {
        b.client
            .rocket()
            .figment()
            .extract_inner("template_dir")
            .unwrap()
    };
    let (mine, theirs) = (folder(&app), folder(&other));
    assert_ne!(mine, theirs, "no path shared between instances");
    assert_eq!(mode_of(&mine), 0o700);
    let meta = std::fs::symlink_metadata(&mine).unwrap();
    assert!(meta.is_dir() && meta.uid() == std::fs::metadata(".").unwrap().uid());
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 0);
    drop(other);
    assert!(!theirs.exists(), "removed with its instance");
    assert_eq!(app.get("/").await.status(), Status::Ok);
}
