//! Story: things break under quire while people use it, and nobody loses what quire told
//! them it kept. Each fault is caused for real, under a few concurrent readers and
//! writers: the SQLite disk fills up, the process is killed with SIGKILL mid-write, the
//! PostgreSQL connection goes away and comes back, the identity provider goes down.
//!
//! The SMTP server being down is `mail::mail_queued_during_an_outage_is_delivered_once_
//! the_server_is_back` (tests/mail.rs): the mail waits in the outbox, survives a restart
//! and is delivered once. A database outage without load is tests/outage.rs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rocket::http::{ContentType, Status};
use rocket::tokio::{self, task::JoinSet};

use crate::common::database::{is_postgres, postgres_admin_url, TestDatabase};
use crate::common::load::{free_port, integrity_check, Quire, Web};
use crate::common::oidc::{logged_in, OidcApp};
use crate::common::op::TestOp;
use crate::common::*;

// ---------------------------------------------------------------------------------------
// A full disk (SQLite)

/// A tmpfs of `size` mounted on a fresh directory, lazily unmounted when dropped (the
/// app's pool may still hold the files open).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None, with the reason printed, when this process may not mount (not root); as
    /// root (as in CI) failing to mount fails the test.
    fn mount(size: &str) -> Option<SmallDisk> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("faults: the full-disk story mounts a tmpfs and needs root; skipped");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("quire-small-disk-")
            .tempdir()
            .expect("temp dir");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mount -t tmpfs as root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left with a file; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0x5au8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // Whatever a partial page left.
        let _ = f.write_all(&[0u8; 512]);
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

const BOUNDARY: &str = "quire-faults-boundary";

/// A small PNG, not trivially compressible.
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("PNG");
    out
}

/// Uploads `bytes` from the library page; the status of quire's answer.
async fn upload(b: &Browser, bytes: &[u8]) -> (Status, String) {
    let token = b.csrf_token().await;
    let mut body = Vec::new();
    write!(
        body,
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .unwrap();
    body.extend_from_slice(bytes);
    write!(body, "\r\n--{BOUNDARY}--\r\n").unwrap();
    let res = b
        .client
        .post("/media")
        .header(ContentType::new("multipart", "form-data").with_params(("boundary", BOUNDARY)))
        .body(body)
        .dispatch()
        .await;
    text_of(res).await
}

fn assert_out_of_space_page(what: &str, status: Status, page: &str) {
    assert_eq!(status, Status::InsufficientStorage, "{what}: {page}");
    assert!(
        page.contains("Out of storage space") && page.contains("nothing was saved"),
        "{what}: the page says what happened: {page}"
    );
    assert!(
        page.contains(r#"<nav aria-label="Main">"#),
        "{what}: the page is in the site's layout: {page}"
    );
}

#[rocket::async_test]
async fn a_full_disk_refuses_writes_clearly_keeps_reads_and_recovers_when_freed() {
    let Some(disk) = SmallDisk::mount("8m") else {
        return;
    };
    let url = format!(
        "sqlite://{}?mode=rwc",
        disk.path().join("quire.sqlite").display()
    );
    let app = TestApp::spawn_with(|f| f.merge(("databases.quire.url", url.clone()))).await;
    let (author, email) = app.author("Ada").await;
    let slug = author
        .create_post("Before the disk filled", "Kept safe.", true)
        .await;
    // The author's next request is due to record the session's use (a write).
    idle_sessions(&app, 120).await;
    let pool = crate::common::database::connect(&url).await;
    // An empty WAL: every write from here on needs new space.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&*pool)
        .await
        .expect("checkpoint");
    drop(pool);
    let filler = disk.fill();

    // Writes are refused with a page saying why, and nothing of them is kept.
    let res = author
        .submit_post("While the disk was full", "Nowhere to put this.", true)
        .await;
    let (status, page) = text_of(res).await;
    assert_out_of_space_page("POST /posts", status, &page);
    let newcomer = unique_email("Grace");
    let b = app.new_browser().await;
    let (status, page) = text_of(b.signup(&newcomer, "Grace", PASSWORD).await).await;
    assert_out_of_space_page("POST /signup", status, &page);
    let (status, page) = upload(&author, &png()).await;
    assert_out_of_space_page("POST /media", status, &page);

    // Reading goes on, for readers and for the logged-in author.
    let reader = app.new_browser().await;
    let (status, page) = reader.get_text("/").await;
    assert_eq!(status, Status::Ok, "GET /: {page}");
    assert!(page.contains("Before the disk filled"), "{page}");
    let (status, page) = reader.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok, "the post: {page}");
    let (status, page) = author.get_text("/dashboard").await;
    assert_eq!(status, Status::Ok, "the author's dashboard: {page}");

    // Space is freed; the same writes go through, nothing restarted.
    std::fs::remove_file(&filler).expect("free the space");
    let again = author
        .create_post("While the disk was full", "Nowhere to put this.", true)
        .await;
    let (status, page) = reader.get_text(&format!("/posts/{again}")).await;
    assert_eq!(status, Status::Ok, "{page}");
    let res = b.signup(&newcomer, "Grace", PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther, "signup once space is back");
    drop(res);
    let (status, page) = upload(&author, &png()).await;
    assert_eq!(
        status,
        Status::SeeOther,
        "upload once space is back: {page}"
    );
    assert!(author.is_logged_in().await, "{email} stayed logged in");

    assert_eq!(
        post_count(&app).await,
        2,
        "the refused post was not half-written"
    );
    drop((author, b, reader, app));
    assert_eq!(integrity_check(&url).await, "ok");
}

// ---------------------------------------------------------------------------------------
// SIGKILL during writes

#[rocket::async_test]
async fn kill_9_during_writes_loses_no_acknowledged_post() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = TestDatabase::create(dir.path());
    let quire = Quire::start(dir.path(), &database.url, "quire", free_port(), &[]).await;

    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut writers = JoinSet::new();
    for w in 0..4 {
        let web = Web::new();
        web.sign_up(&quire, &format!("Writer {w}")).await;
        let token = web.token_from(&quire.url("/dashboard")).await;
        let (posts, acknowledged) = (quire.url("/posts"), acknowledged.clone());
        writers.spawn(async move {
            for n in 0.. {
                let title = format!("Writer {w} post {n}");
                // Stops at the first request the dead process cannot answer.
                let Ok(answer) = web.publish(&posts, &token, &title).await else {
                    return;
                };
                assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
                let slug = answer
                    .location
                    .strip_prefix("/posts/")
                    .expect("to the post");
                acknowledged.lock().unwrap().push((slug.to_string(), title));
            }
        });
    }
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "writes too slow:\n{}",
            quire.stderr()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    quire.signal(libc::SIGKILL);
    while let Some(joined) = writers.join_next().await {
        joined.expect("writer");
    }
    drop(quire);

    let acknowledged = acknowledged.lock().unwrap().clone();
    for (slug, title) in &acknowledged {
        let row = post_row(&database, slug).await;
        assert_eq!(
            row.map(|r| r.title).as_deref(),
            Some(title.as_str()),
            "acknowledged post {slug} lost"
        );
    }
    if !is_postgres() {
        assert_eq!(integrity_check(&database.url).await, "ok");
    }
    eprintln!("{} acknowledged posts all kept", acknowledged.len());

    // Started again on the same database, quire serves them.
    let quire = Quire::start(dir.path(), &database.url, "again", free_port(), &[]).await;
    let (slug, title) = acknowledged.last().expect("some posts");
    let page = Web::new()
        .get(&quire.url(&format!("/posts/{slug}")))
        .await
        .expect("the post");
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(title.as_str()), "{}", page.body);
}

// ---------------------------------------------------------------------------------------
// PostgreSQL goes away under load

/// What one load task saw: answers by status, and the posts acknowledged.
#[derive(Default, Debug)]
struct Seen {
    ok: usize,
    unavailable: usize,
    acknowledged: Vec<String>,
}

#[rocket::async_test]
async fn postgres_going_away_under_load_answers_503_then_recovers_by_itself() {
    use crate::outage::{split_host, Proxy};
    let Some(admin) = postgres_admin_url() else {
        eprintln!("faults: the database-outage story needs PostgreSQL (QUIRE_TEST_DATABASE)");
        return;
    };
    let (_, upstream, _) = split_host(&admin);
    let mut proxy = Proxy::start(&upstream).await;
    let port = proxy.port;
    let app = TestApp::spawn_with(|f| {
        let url: String = f.extract_inner("databases.quire.url").expect("url");
        let (prefix, _, rest) = split_host(&url);
        f.merge((
            "databases.quire.url",
            format!("{prefix}127.0.0.1:{port}{rest}"),
        ))
        .merge(("databases.quire.connect_timeout", 1))
        // Enough that the load alone never waits a whole connect_timeout for one.
        .merge(("databases.quire.max_connections", 12))
    })
    .await;
    let slug = {
        let (author, _) = app.author("Before").await;
        author.create_post("Before the outage", "Kept.", true).await
    };

    let phase = Arc::new(Mutex::new(0u8)); // 0 before, 1 outage, 2 after, 3 stop
    let mut tasks = JoinSet::new();
    for i in 0..4 {
        let writer = i == 0;
        let b = if writer {
            app.author("Writer").await.0
        } else {
            app.new_browser().await
        };
        let token = b.csrf_token().await;
        let (phase, path) = (phase.clone(), format!("/posts/{slug}"));
        tasks.spawn(async move {
            let mut seen = [Seen::default(), Seen::default(), Seen::default()];
            let mut acknowledged = Vec::new();
            let mut n = 0;
            loop {
                let now = *phase.lock().unwrap();
                if now == 3 {
                    seen[0].acknowledged = acknowledged;
                    return seen;
                }
                let started = Instant::now();
                let (status, page, slug) = if writer {
                    // With the token fetched while the database was up: the harness's
                    // own lookup of it fails during the outage.
                    let title = format!("Under load {n}");
                    let fields = [
                        ("csrf_token", token.as_str()),
                        ("title", &title),
                        ("body", "Body."),
                        ("publish", "true"),
                    ];
                    let res = b.post_raw("/posts", &encode(&fields)).await;
                    let to = location(&res);
                    let (status, page) = text_of(res).await;
                    (status, page, to.strip_prefix("/posts/").map(str::to_string))
                } else {
                    let (status, page) = b
                        .get_text(if n % 2 == 0 { "/" } else { path.as_str() })
                        .await;
                    (status, page, None)
                };
                n += 1;
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "an answer took {:?}",
                    started.elapsed()
                );
                // A request that spans a change of phase counts in neither.
                let mut spanned = Seen::default();
                let s = if *phase.lock().unwrap() == now {
                    &mut seen[now as usize]
                } else {
                    &mut spanned
                };
                match status {
                    Status::Ok | Status::SeeOther => {
                        s.ok += 1;
                        acknowledged.extend(slug);
                    }
                    Status::ServiceUnavailable => {
                        assert!(page.contains("Temporarily unavailable"), "{page}");
                        s.unavailable += 1;
                    }
                    other => panic!("answered {other} under load: {page}"),
                }
            }
        });
    }
    let set = |p: u8| *phase.lock().unwrap() = p;
    tokio::time::sleep(Duration::from_millis(500)).await;
    set(1);
    proxy.stop().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.restart().await;
    // Quire notices by itself; from then on every answer is a real one.
    let back = Instant::now();
    loop {
        let (status, _) = app.get_text("/healthz").await;
        if status == Status::Ok {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(10), "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    set(2);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    set(3);

    let mut totals = [(0, 0), (0, 0), (0, 0)];
    let mut acknowledged = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        for (i, s) in joined.expect("load task").into_iter().enumerate() {
            totals[i].0 += s.ok;
            totals[i].1 += s.unavailable;
            acknowledged.extend(s.acknowledged);
        }
    }
    eprintln!("(answered, 503) before, during, after: {totals:?}");
    assert!(totals[0].0 > 0 && totals[0].1 == 0, "before: {totals:?}");
    assert!(totals[1].1 > 0, "the outage gave no 503: {totals:?}");
    assert!(
        totals[2].0 > 0 && totals[2].1 == 0,
        "after recovery: {totals:?}"
    );
    for slug in &acknowledged {
        assert!(
            post_row(&app, slug).await.is_some(),
            "acknowledged {slug} lost"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The identity provider goes down

#[rocket::async_test]
async fn the_idp_down_leaves_the_blog_and_local_logins_alone_and_oidc_login_recovers() {
    let op = TestOp::start().await;
    let port = op.port();
    let app = OidcApp::spawn(&op, &["local", "oidc"], |f| f).await;
    let (author, email) = app.author("Local").await;
    let slug = author.create_post("Still here", "Readable.", true).await;
    // Someone logged in through the IdP while it was up (discovery now known).
    let idp_user = app.new_browser().await;
    logged_in(&idp_user, None).await;
    op.stop().await;

    let mut tasks = JoinSet::new();
    for i in 0..3 {
        let b = app.new_browser().await;
        let (email, slug) = (email.clone(), slug.clone());
        tasks.spawn(async move {
            for _ in 0..5 {
                if i == 0 {
                    let res = b.login(&email, PASSWORD).await;
                    assert_eq!(res.status(), Status::SeeOther, "local login, IdP down");
                    assert_eq!(location(&res), "/dashboard");
                    drop(res);
                    assert!(b.is_logged_in().await);
                    let res = b.logout().await;
                    assert_eq!(res.status(), Status::SeeOther);
                } else {
                    let post = format!("/posts/{slug}");
                    for path in ["/", post.as_str(), "/feed.xml", "/login"] {
                        let (status, page) = b.get_text(path).await;
                        assert_eq!(status, Status::Ok, "GET {path}, IdP down: {page}");
                    }
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("load task");
    }
    // An OIDC login meanwhile fails cleanly: sent on to the IdP (which the browser then
    // cannot reach) or told the provider is unavailable; never a 500.
    let (status, page) = app.get_text("/login/oidc").await;
    assert!(
        status == Status::SeeOther || status == Status::ServiceUnavailable,
        "GET /login/oidc, IdP down: {status} {page}"
    );
    let (status, _) = idp_user.get_text("/").await;
    assert_eq!(status, Status::Ok, "an IdP user reads the blog");

    // Back on the same address; the same quire logs people in through it again, at
    // the latest once it stops answering from its memory of the failure.
    let _op = TestOp::start_on(port).await;
    let again = app.new_browser().await;
    let back = Instant::now();
    let within = Duration::from_secs(quire::auth::oidc::DISCOVERY_RETRY as u64 + 2);
    while again.get("/login/oidc").await.status() != Status::SeeOther {
        assert!(
            back.elapsed() < within,
            "OIDC login not back {within:?} after the IdP"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = logged_in(&again, None).await;
    assert!(page.contains("Op User"), "{page}");
}
