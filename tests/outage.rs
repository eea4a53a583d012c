//! The database goes away and comes back: while it is gone pages answer 503 with the
//! themed page and /healthz fails, quickly; when it returns quire recovers by itself,
//! with everything acknowledged before the outage still there.
//!
//! The outage is a TCP proxy between quire and PostgreSQL that the test stops (refusing
//! new connections and cutting live ones) and starts again on the same port. SQLite
//! cannot go away like this, so the story runs only with QUIRE_TEST_DATABASE set.

use std::future::Future;
use std::time::{Duration, Instant};

use rocket::http::Status;
use rocket::tokio::net::{TcpListener, TcpStream};
use rocket::tokio::sync::watch;
use rocket::tokio::task::{JoinHandle, JoinSet};
use rocket::tokio::{self, time};

use crate::common::database;
use crate::common::*;

/// Longest a request may take while the database is gone (the pool gives up after
/// `connect_timeout` = 1 s, and a page may wait on it twice: session, then content).
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Longest quire may take to notice the database is back.
const RECOVER_WITHIN: Duration = Duration::from_secs(10);

/// Forwards 127.0.0.1:`port` to `upstream` while running (also used by tests/faults.rs).
pub(crate) struct Proxy {
    pub(crate) port: u16,
    upstream: String,
    running: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Proxy {
    /// A proxy on a free port, already accepting.
    pub(crate) async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let port = listener.local_addr().expect("proxy address").port();
        let mut proxy = Proxy {
            port,
            upstream: upstream.to_string(),
            running: None,
        };
        proxy.serve(listener);
        proxy
    }

    /// Accepts again on the same port.
    pub(crate) async fn restart(&mut self) {
        assert!(self.running.is_none(), "proxy already running");
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("proxy binds its port again");
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, mut stopped) = watch::channel(false);
        let upstream = self.upstream.clone();
        let task = tokio::spawn(async move {
            let mut links = JoinSet::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { continue };
                        let upstream = upstream.clone();
                        links.spawn(async move {
                            if let Ok(mut server) = TcpStream::connect(&upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                }
                while links.try_join_next().is_some() {}
            }
            // Cut every live connection (each side sees its socket closed), and stop
            // listening (new connections are refused) as the listener drops.
            links.shutdown().await;
        });
        self.running = Some((stop, task));
    }

    /// Stops accepting and cuts every forwarded connection; returns once both are done.
    pub(crate) async fn stop(&mut self) {
        let (stop, task) = self.running.take().expect("proxy running");
        let _ = stop.send(true);
        time::timeout(Duration::from_secs(5), task)
            .await
            .expect("proxy stops within 5 s")
            .expect("proxy task");
    }
}

/// `url` split around its host and port: (`scheme://user@`, `host:port`, `/db?query`).
/// The port defaults to PostgreSQL's.
pub(crate) fn split_host(url: &str) -> (String, String, String) {
    let start = url.find("://").expect("URL has a scheme") + 3;
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let host_start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    let mut host = url[host_start..end].to_string();
    if !host.contains(':') {
        host.push_str(":5432");
    }
    (url[..host_start].to_string(), host, url[end..].to_string())
}

/// Awaits `what`, failing the test if it takes longer than `ANSWER_WITHIN`.
async fn promptly<T>(label: &str, what: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = time::timeout(ANSWER_WITHIN, what)
        .await
        .unwrap_or_else(|_| panic!("{label}: no answer within {ANSWER_WITHIN:?}"));
    eprintln!("{label}: answered in {:?}", started.elapsed());
    out
}

/// Status and body of a GET, failing the test if it hangs.
async fn get_promptly(b: &Browser, path: &str) -> (Status, String) {
    promptly(&format!("GET {path}"), b.get_text(path)).await
}

fn assert_unavailable_page(what: &str, status: Status, body: &str) {
    assert_eq!(status, Status::ServiceUnavailable, "{what}: {body}");
    assert!(
        body.contains("Temporarily unavailable"),
        "{what}: the 503 page says so: {body}"
    );
    assert!(
        body.contains(r#"<nav aria-label="Main">"#),
        "{what}: the 503 page is in the site's layout: {body}"
    );
}

#[rocket::async_test]
async fn quire_recovers_when_the_database_returns() {
    let Some(admin) = database::postgres_admin_url() else {
        eprintln!(
            "outage: this story needs PostgreSQL; it runs with {} set (as in CI)",
            database::ENV
        );
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
    })
    .await;

    // Acknowledged before the outage: an account, its session, a published post.
    let email = unique_email("Ada");
    let res = app.signup(&email, "Ada", PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther, "signup");
    let slug = app
        .create_post("Before the outage", "Written while all was well.", true)
        .await;
    let reader = app.new_browser().await;
    assert_eq!(app.get("/healthz").await.status(), Status::Ok);

    proxy.stop().await;

    let (status, body) = get_promptly(&app, "/").await;
    assert_unavailable_page("GET / (author)", status, &body);
    let (status, body) = get_promptly(&reader, "/").await;
    assert_unavailable_page("GET / (reader)", status, &body);
    let (status, body) = get_promptly(&reader, &format!("/posts/{slug}")).await;
    assert_unavailable_page("GET the post", status, &body);
    let (status, _) = get_promptly(&reader, "/feed.xml").await;
    assert_eq!(status, Status::ServiceUnavailable, "GET /feed.xml");
    let (status, body) = get_promptly(&reader, "/healthz").await;
    assert_eq!(status, Status::ServiceUnavailable, "GET /healthz: {body}");

    // A logged-in author is not sent to the login page: the session is not in doubt.
    let (status, body) = get_promptly(&app, "/dashboard").await;
    assert_unavailable_page("GET /dashboard (author)", status, &body);

    let res = promptly(
        "POST /posts",
        app.submit_post("During the outage", "Nowhere to write this.", true),
    )
    .await;
    let (status, body) = text_of(res).await;
    assert_unavailable_page("POST /posts", status, &body);

    let res = promptly("POST /login", reader.login(&email, PASSWORD)).await;
    let (status, body) = text_of(res).await;
    assert_unavailable_page("POST /login", status, &body);

    let newcomer = unique_email("Grace");
    let res = promptly("POST /signup", reader.signup(&newcomer, "Grace", PASSWORD)).await;
    let (status, body) = text_of(res).await;
    assert_unavailable_page("POST /signup", status, &body);

    // The database returns; nothing is restarted.
    proxy.restart().await;
    let back = Instant::now();
    loop {
        let (status, _) = get_promptly(&reader, "/healthz").await;
        if status == Status::Ok {
            break;
        }
        assert!(
            back.elapsed() < RECOVER_WITHIN,
            "/healthz still {status} {:?} after the database returned",
            back.elapsed()
        );
        time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("recovered in {:?}", back.elapsed());

    let (status, body) = get_promptly(&reader, "/").await;
    assert_eq!(status, Status::Ok, "GET / after recovery: {body}");
    assert!(
        body.contains("Before the outage"),
        "the post acknowledged before the outage is listed: {body}"
    );
    let (status, body) = get_promptly(&reader, &format!("/posts/{slug}")).await;
    assert_eq!(status, Status::Ok, "the post after recovery: {body}");
    assert!(body.contains("Written while all was well."), "{body}");
    let (status, _) = get_promptly(&app, "/dashboard").await;
    assert_eq!(status, Status::Ok, "the author is still logged in");

    let after = app
        .create_post("After the outage", "Back in business.", true)
        .await;
    let (status, body) = get_promptly(&reader, "/").await;
    assert_eq!(status, Status::Ok);
    assert!(body.contains("After the outage"), "{body}");
    assert!(body.contains("Before the outage"), "{body}");
    let (status, _) = get_promptly(&reader, &format!("/posts/{after}")).await;
    assert_eq!(status, Status::Ok);

    // Someone turned away during the outage can do it now.
    let res = reader.login(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther, "login after recovery");
    drop(res);
    assert!(reader.is_logged_in().await);
    let grace = app.new_browser().await;
    let res = grace.signup(&newcomer, "Grace", PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther, "signup after recovery");
}

#[test]
fn split_host_finds_the_server() {
    assert_eq!(
        split_host("postgres://postgres@127.0.0.1:5432/quire_test_1?sslmode=disable"),
        (
            "postgres://postgres@".into(),
            "127.0.0.1:5432".into(),
            "/quire_test_1?sslmode=disable".into()
        )
    );
    assert_eq!(
        split_host("postgresql://localhost/db"),
        (
            "postgresql://".into(),
            "localhost:5432".into(),
            "/db".into()
        )
    );
}
