//! Story: the operator stops or restarts quire (systemd, a container runtime, a rolling
//! deploy sends SIGTERM). Everyone whose request was already in flight gets their real
//! answer, new connections go elsewhere at once, the process exits 0 within
//! `shutdown.grace`, and with two instances on one database the other keeps serving
//! throughout.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rocket::tokio::{self, task::JoinSet};

use crate::common::database::{connect, is_postgres, TestDatabase};
use crate::common::load::{free_port, Quire, Web};
use crate::common::{session_count, test_figment, unique_email, PASSWORD};

/// `shutdown.grace` in these stories, seconds.
const GRACE: u64 = 30;
/// `ROCKET_SHUTDOWN` for the instances: the grace, and a short mercy after it.
const SHUTDOWN: &str = "{grace=30,mercy=2}";
/// Logins in flight at the signal.
const LOGINS: usize = 50;
/// The drain story's password hashing: real work, lighter than OWASP's.
const ARGON2_KIB: u32 = 8192;
const ARGON2_PASSES: u32 = 1;

#[rocket::async_test]
async fn sigterm_lets_every_login_in_flight_finish_then_exits_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = TestDatabase::create(dir.path());
    // Real (if lighter than OWASP's) hashing on one worker, so that the logins queue up
    // and most are still being worked on when the signal arrives.
    let auth = format!(
        "{{argon2={{memory_kib={ARGON2_KIB},iterations={ARGON2_PASSES}}},hash_concurrency=1}}"
    );
    let port = free_port();
    let quire = Quire::start(
        dir.path(),
        &database.url,
        "quire",
        port,
        &[("ROCKET_AUTH", &auth), ("ROCKET_SHUTDOWN", SHUTDOWN)],
    )
    .await;
    // One account per login: concurrent logins to one account are throttled.
    let emails = accounts(&database).await;

    let login_url = quire.url("/login");
    let mut browsers = Vec::new();
    for email in emails {
        let web = Web::new();
        let token = web.token_from(&login_url).await;
        browsers.push((web, token, email));
    }

    let (sent, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let quire = Arc::new(quire);
    let mut logins = JoinSet::new();
    for (web, token, email) in browsers {
        let (quire, sent, answered) = (quire.clone(), sent.clone(), answered.clone());
        logins.spawn(async move {
            let fields = [
                ("csrf_token", token.as_str()),
                ("email", &email),
                ("password", PASSWORD),
            ];
            let request = web.send_form(&quire, "/login", &fields).await;
            sent.fetch_add(1, Ordering::SeqCst);
            let answer = match request {
                Ok(request) => request.answer().await,
                Err(e) => Err(e),
            };
            answered.fetch_add(1, Ordering::SeqCst);
            (answer.map_err(|e| e.to_string()), Instant::now())
        });
    }
    // Every login is with the server, which is demonstrably at work on them (one has
    // been answered and the others had time to be read).
    let waiting = Instant::now();
    while sent.load(Ordering::SeqCst) < LOGINS || answered.load(Ordering::SeqCst) == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "no login answered:\n{}",
            quire.stderr()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Quire has read every one of them: the kernel holds no connection it has not accepted
    // and no request bytes it has not read.
    if let Some((queued, unread)) = quire.wait_until_read(Duration::from_secs(30)).await {
        panic!(
            "30 s on, {queued} connections still wait to be accepted and {unread} to be read:\n{}",
            quire.stderr()
        );
    }
    quire.signal(libc::SIGTERM);
    let signalled = Instant::now();

    // New connections are refused while those logins are still being answered.
    let refused_at = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break Instant::now(),
            _ => {}
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "still accepting connections 2 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    let mut after_signal = 0;
    let mut last_answer = signalled;
    while let Some(joined) = logins.join_next().await {
        let (answer, at) = joined.expect("login task");
        let (status, location) = answer.unwrap_or_else(|e| {
            panic!(
                "a login in flight at SIGTERM failed: {e}\n{}",
                quire.stderr()
            )
        });
        assert_eq!(
            (status, location.as_str()),
            (303, "/dashboard"),
            "a login in flight at SIGTERM was not logged in"
        );
        if at > signalled {
            after_signal += 1;
            last_answer = last_answer.max(at);
        }
    }
    assert!(
        after_signal >= LOGINS / 4,
        "only {after_signal} of {LOGINS} logins were still in flight at the signal: \
         the story did not test a drain"
    );
    assert!(
        refused_at < last_answer,
        "new connections were refused only after the drain ended"
    );
    eprintln!(
        "{after_signal} logins answered after SIGTERM, the last {:?} after it; \
         new connections refused after {:?}",
        last_answer - signalled,
        refused_at - signalled
    );

    let mut quire = Arc::into_inner(quire).expect("the logins are done");
    let status = quire
        .wait_exit(Duration::from_secs(GRACE + 2))
        .await
        .unwrap_or_else(|| panic!("still running {GRACE} s after SIGTERM"));
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        quire.stderr()
    );
    let took = signalled.elapsed();
    assert!(
        took <= Duration::from_secs(GRACE) + Duration::from_millis(1500),
        "exited {took:?} after SIGTERM, grace is {GRACE} s"
    );

    // Every session those answers handed out is there.
    assert_eq!(session_count(&database).await, LOGINS as i64);
    if !is_postgres() {
        // The pool closed cleanly: the last connection folded the WAL into the file.
        let wal = dir.path().join("quire.sqlite-wal");
        let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert_eq!(wal_len, 0, "{} left behind", wal.display());
    }
}

/// `LOGINS` local accounts made directly (signup over HTTP is limited per client
/// address), their passwords hashed as the drain story's logins verify them; their emails.
async fn accounts(database: &TestDatabase) -> Vec<String> {
    let figment = test_figment(database)
        .merge(("auth.argon2.memory_kib", ARGON2_KIB))
        .merge(("auth.argon2.iterations", ARGON2_PASSES));
    let config = quire::config::Config::from_figment(&figment).expect("config");
    let local = quire::auth::LocalProvider::new(&config.auth).expect("local accounts");
    let db = connect(&database.url).await;
    let mut emails = Vec::new();
    for i in 0..LOGINS {
        let email = unique_email(&format!("Reader {i}"));
        let account = quire::auth::local::NewAccount::new(&email, "Reader", PASSWORD);
        local
            .create_account(&db, &account, false)
            .await
            .unwrap_or_else(|e| panic!("account {email}: {e:?}"));
        emails.push(email);
    }
    emails
}

/// Readers and an author on B, counted: every request must be answered 200 or 303.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<Result<usize, String>>,
}

impl Load {
    /// `readers` browsers reading `/` and `author` publishing posts, all on `quire`.
    async fn start(quire: &Quire, readers: usize, author: Web) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        for _ in 0..readers {
            let (stop, home) = (stop.clone(), quire.url("/"));
            tasks.spawn(async move {
                let web = Web::new();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let a = web.get(&home).await.map_err(|e| format!("GET /: {e}"))?;
                    if a.status != StatusCode::OK {
                        return Err(format!("GET / answered {}: {}", a.status, a.body));
                    }
                    n += 1;
                }
                Ok(n)
            });
        }
        let (stop_w, dashboard, posts) =
            (stop.clone(), quire.url("/dashboard"), quire.url("/posts"));
        tasks.spawn(async move {
            let token = author.token_from(&dashboard).await;
            let mut n = 0;
            while !stop_w.load(Ordering::SeqCst) {
                let title = format!("Rolling {n}");
                let a = author
                    .publish(&posts, &token, &title)
                    .await
                    .map_err(|e| format!("POST /posts: {e}"))?;
                if a.status != StatusCode::SEE_OTHER {
                    return Err(format!("POST /posts answered {}: {}", a.status, a.body));
                }
                n += 1;
            }
            Ok(n)
        });
        Load { stop, tasks }
    }

    /// Stops the load; how many requests were answered, or the first failure.
    async fn finish(mut self) -> Result<usize, String> {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = 0;
        while let Some(joined) = self.tasks.join_next().await {
            total += joined.expect("load task")?;
        }
        Ok(total)
    }
}

#[rocket::async_test]
async fn one_instance_restarts_while_the_other_keeps_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = TestDatabase::create(dir.path());
    let env = [("ROCKET_SHUTDOWN", SHUTDOWN)];
    let port_a = free_port();
    let mut a = Quire::start(dir.path(), &database.url, "A", port_a, &env).await;
    let b = Quire::start(dir.path(), &database.url, "B", free_port(), &env).await;
    let author = Web::new();
    author.sign_up(&b, "Grace").await;

    let load = Load::start(&b, 4, author.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A is restarted, as a deploy does one instance at a time.
    a.signal(libc::SIGTERM);
    let stopped = a
        .wait_exit(Duration::from_secs(GRACE + 2))
        .await
        .unwrap_or_else(|| panic!("A still running {GRACE} s after SIGTERM"));
    assert!(stopped.success(), "A exited {stopped}:\n{}", a.stderr());
    drop(a);
    let reader = Web::new();
    assert!(
        reader
            .get(&format!("http://127.0.0.1:{port_a}/"))
            .await
            .is_err(),
        "A still answers after it exited"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = Quire::start(dir.path(), &database.url, "A2", port_a, &env).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let answered = load
        .finish()
        .await
        .unwrap_or_else(|e| panic!("B failed a request while A restarted: {e}\n{}", b.stderr()));
    assert!(answered > 20, "only {answered} requests reached B");
    eprintln!("B answered {answered} requests while A restarted");

    // The restarted A serves what was written on B meanwhile, to the same author.
    let home = reader.get(&a.url("/")).await.expect("GET / on A");
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("Rolling "), "{}", home.body);
    let dashboard = author
        .get(&a.url("/dashboard"))
        .await
        .expect("dashboard on A");
    assert_eq!(dashboard.status, StatusCode::OK, "the session holds on A");
}
