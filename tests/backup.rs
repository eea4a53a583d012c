//! Story: an operator backs up a live blog with `quire backup --out FILE` while authors
//! keep writing, and restores it by the README's steps; on PostgreSQL quire names the
//! pg_dump command instead.

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, Row};

use crate::common::database::{is_postgres, TestDatabase};
use crate::common::process::{quire_command, Served};
use crate::common::*;

/// One person's browser on a served quire: a cookie jar, redirects not followed.
struct Site {
    http: reqwest::Client,
    base: String,
}

impl Site {
    fn on(served: &Served) -> Site {
        let http = reqwest::Client::builder()
            .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Site {
            http,
            base: served.base.clone(),
        }
    }

    async fn page(&self, path: &str) -> (reqwest::StatusCode, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }

    /// Posts the form on `form_page` to `to`, with that page's CSRF token; the answer's
    /// status and Location.
    async fn submit(
        &self,
        form_page: &str,
        to: &str,
        fields: &[(&str, &str)],
    ) -> (reqwest::StatusCode, String) {
        let token = csrf_token_in(&self.page(form_page).await.1);
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        let res = self
            .http
            .post(format!("{}{to}", self.base))
            .form(&all)
            .send()
            .await
            .unwrap();
        let to = res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("")
            .to_string();
        (res.status(), to)
    }
}

fn run_backup(dir: &Path, url: &str, args: &[&str]) -> Output {
    quire_command(dir, url)
        .arg("backup")
        .args(args)
        .output()
        .expect("quire runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failure: non-zero exit and one line on stderr, "quire: ...", returned.
fn one_line_failure(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded: {out:?}");
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("quire: "), "stderr: {err}");
    err.trim_end().to_string()
}

/// The names in `dir` (to show nothing partial was left behind).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn open_sqlite(path: &Path) -> sqlx::SqliteConnection {
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[rocket::async_test]
async fn a_backup_taken_while_authors_write_holds_every_acknowledged_post_and_restores() {
    if is_postgres() {
        return; // PostgreSQL: pg_dump (below).
    }
    let live = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(live.path());
    let served = Served::start(live.path(), &database.url, "live").await;
    let ada = Site::on(&served);
    let email = unique_email("Ada");
    let (status, _) = ada
        .submit(
            "/signup",
            "/signup",
            &[("email", &email), ("name", "Ada"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "signup");

    // Ada keeps publishing, one tagged post per request, until told to stop; each post
    // is noted once quire has acknowledged it (303 to the post).
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Default::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        rocket::tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let title = format!("Field note {n}");
                let tag = format!("note{n}");
                let (status, to) = ada
                    .submit(
                        "/dashboard",
                        "/posts",
                        &[
                            ("title", &title),
                            ("body", "Written while the backup ran."),
                            ("tags", &tag),
                            ("publish", "true"),
                        ],
                    )
                    .await;
                assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{title}: {to}");
                let slug = to.strip_prefix("/posts/").expect("to the post").to_string();
                acknowledged.lock().unwrap().push((title, slug));
            }
        })
    };
    while acknowledged.lock().unwrap().len() < 5 {
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let before: Vec<(String, String)> = acknowledged.lock().unwrap().clone();
    let store = tempfile::tempdir().unwrap();
    let copy = store.path().join("blog-backup.sqlite");
    let out = {
        let (dir, url, copy) = (
            live.path().to_path_buf(),
            database.url.clone(),
            copy.clone(),
        );
        rocket::tokio::task::spawn_blocking(move || {
            run_backup(&dir, &url, &["--out", copy.to_str().unwrap()])
        })
        .await
        .unwrap()
    };
    let during = acknowledged.lock().unwrap().len() - before.len();
    rocket::tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.expect("the writer never failed");
    assert!(out.status.success(), "backup failed: {}", stderr(&out));
    assert!(during > 0, "no post was written while the backup ran");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains(copy.to_str().unwrap()), "{said}");
    assert!(said.contains("1 account(s)"), "{said}");
    assert_eq!(
        names_in(store.path()),
        ["blog-backup.sqlite"],
        "no temp files"
    );

    // A valid database holding every post acknowledged before the backup began, none of
    // them without its tag (each post and its tags were one transaction).
    let mut conn = open_sqlite(&copy).await;
    let verdict: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(verdict, "ok");
    let titles: Vec<String> = sqlx::query("SELECT title FROM posts")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (title, _) in &before {
        assert!(titles.contains(title), "{title} missing from the backup");
    }
    let untagged: i64 = sqlx::query(
        "SELECT count(*) FROM posts p \
         WHERE NOT EXISTS (SELECT 1 FROM post_tags t WHERE t.post_id = p.id)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
    .get(0);
    assert_eq!(untagged, 0, "a post in the copy lacks its tag");
    // Posts written while the backup ran may be in it too, so the home page opens with
    // the newest post the copy holds (not necessarily one noted before).
    let newest: String = sqlx::query("SELECT title FROM posts ORDER BY id DESC LIMIT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    conn.close().await.unwrap();

    // The README's restore: quire stopped, the copy in place of the database file, the
    // stale -wal and -shm beside it removed (here: the live ones, copied over as an old
    // install would have left them), quire started.
    let live_db = live.path().join("quire.sqlite");
    drop(served);
    let restored = tempfile::tempdir().unwrap();
    let target = restored.path().join("quire.sqlite");
    std::fs::write(&target, b"the old database").unwrap();
    for suffix in ["-wal", "-shm"] {
        let stale = format!("{}{suffix}", live_db.display());
        let _ = std::fs::copy(&stale, format!("{}{suffix}", target.display()));
    }
    std::fs::copy(&copy, &target).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    let url = format!("sqlite://{}?mode=rwc", target.display());
    let served = Served::start(restored.path(), &url, "restored").await;
    let reader = Site::on(&served);
    for (title, slug) in &before {
        let (status, page) = reader.page(&format!("/posts/{slug}")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "/posts/{slug}");
        assert!(
            page.contains(title.as_str()),
            "/posts/{slug} without {title}"
        );
    }
    let (_, home) = reader.page("/").await;
    assert!(home.contains(&newest), "home page without {newest}: {home}");
    // Ada logs in on the restored site and finds her posts.
    let (status, to) = reader
        .submit(
            "/login",
            "/login",
            &[("email", &email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "login: {to}");
    let (status, dashboard) = reader.page("/dashboard").await;
    assert_eq!(status, reqwest::StatusCode::OK, "logged in");
    assert!(dashboard.contains(&before[0].0), "dashboard: {dashboard}");
}

#[rocket::async_test]
async fn an_existing_file_is_kept_unless_forced() {
    if is_postgres() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(dir.path());
    let migrated = quire_command(dir.path(), &database.url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let out = dir.path().join("backup.sqlite");
    std::fs::write(&out, b"last week's backup").unwrap();
    let arg = out.to_str().unwrap();

    let err = one_line_failure(&run_backup(dir.path(), &database.url, &["--out", arg]));
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"last week's backup");

    let forced = run_backup(dir.path(), &database.url, &["--out", arg, "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(std::fs::read(&out)
        .unwrap()
        .starts_with(b"SQLite format 3\0"));

    // Not even --force replaces the live database itself.
    let live = dir.path().join("quire.sqlite");
    let before = std::fs::read(&live).unwrap();
    let err = one_line_failure(&run_backup(
        dir.path(),
        &database.url,
        &["--out", live.to_str().unwrap(), "--force"],
    ));
    assert!(err.contains("live database"), "{err}");
    assert_eq!(std::fs::read(&live).unwrap(), before);
}

#[rocket::async_test]
async fn failures_are_one_line_and_leave_no_file() {
    if is_postgres() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(dir.path());
    let migrated = quire_command(dir.path(), &database.url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let store = tempfile::tempdir().unwrap();
    let out = store.path().join("b.sqlite");
    let arg = out.to_str().unwrap();

    // A folder that is not there.
    let missing = store.path().join("nowhere/b.sqlite");
    let err = one_line_failure(&run_backup(
        dir.path(),
        &database.url,
        &["--out", missing.to_str().unwrap()],
    ));
    assert!(err.contains("no folder"), "{err}");

    // The disk fills up halfway through the copy (a file size limit stands in for it).
    let mut cmd = quire_command(dir.path(), &database.url);
    cmd.args(["backup", "--out", arg]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 32 * 1024,
                rlim_max: 32 * 1024,
            };
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let err = one_line_failure(&cmd.output().unwrap());
    assert!(err.contains(arg), "{err}");
    assert!(
        names_in(store.path()).is_empty(),
        "{:?}",
        names_in(store.path())
    );

    // A database file that is not SQLite.
    let other = tempfile::tempdir().unwrap();
    let bogus = other.path().join("quire.sqlite");
    std::fs::write(&bogus, vec![b'x'; 8192]).unwrap();
    let url = format!("sqlite://{}", bogus.display());
    let err = one_line_failure(&run_backup(other.path(), &url, &["--out", arg]));
    assert!(err.contains("not a SQLite database"), "{err}");
    assert!(
        names_in(store.path()).is_empty(),
        "{:?}",
        names_in(store.path())
    );

    // And with none of that, it works into the same folder.
    let fine = run_backup(dir.path(), &database.url, &["--out", arg]);
    assert!(fine.status.success(), "{}", stderr(&fine));
    assert_eq!(names_in(store.path()), ["b.sqlite"]);
}

#[rocket::async_test]
async fn on_postgresql_it_gives_the_pg_dump_command() {
    if !is_postgres() {
        return; // SQLite: the stories above.
    }
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(dir.path());
    let migrated = quire_command(dir.path(), &database.url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", stderr(&migrated));

    // The configured URL with a password: the commands carry the URL without it.
    let with_password = database
        .url
        .replacen("://postgres@", "://postgres:hunter2@", 1);
    assert_ne!(with_password, database.url, "the test URL has a user");
    let out = run_backup(dir.path(), &with_password, &["--out", "blog.dump"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(!err.contains("hunter2"), "{err}");
    let dump = format!(
        "pg_dump --format=custom --no-owner --file blog.dump {}",
        database.url
    );
    assert!(err.contains(&dump), "{err}");
    assert!(
        err.contains(&format!(
            "pg_restore --clean --if-exists --no-owner --dbname {} blog.dump",
            database.url
        )),
        "{err}"
    );
    assert!(!dir.path().join("blog.dump").exists());

    // The printed command works as printed (where PostgreSQL's client tools are installed).
    if std::process::Command::new("pg_dump")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("pg_dump not installed: the printed command was not run");
        return;
    }
    let ran = std::process::Command::new("sh")
        .arg("-c")
        .arg(&dump)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert!(std::fs::read(dir.path().join("blog.dump"))
        .unwrap()
        .starts_with(b"PGDMP"));
}
