//! Story: an organisation runs several `quire serve` processes on one database behind a
//! load balancer. To a reader or an author they behave as one site: a login made on one
//! instance holds on the others, logging out ends it everywhere, failed logins are
//! counted together, and instances starting at the same moment apply each migration once.
//!
//! These tests start real processes and talk to them over HTTP on 127.0.0.1 only.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::{CookieStore, Jar};
use reqwest::StatusCode;
use tempfile::TempDir;

use crate::common::database::{connect, TestDatabase};
use crate::common::oidc::{oidc_env, query_of};
use crate::common::op::{OpUser, TestOp};
use crate::common::process::quire_command;
use crate::common::schema::{
    applied_migrations, session_count, sessions, shipped_migrations, successful_migrations,
};
use crate::common::{csrf_token_in, unique_email, PASSWORD, SECRET_KEY, USER_AGENT};

const HEALTHY_WITHIN: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Two distinct ports nobody is listening on right now (both held until both are
/// chosen, so they differ).
fn two_free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let (a, b) = (bind(), bind());
    let port = |l: &TcpListener| l.local_addr().expect("local address").port();
    (port(&a), port(&b))
}

/// `ROCKET_AUTH` for every instance: cheap password hashing, and with `oidc` the
/// providers "local" and "oidc" with `[auth.oidc]` pointing at that OP and redirecting to
/// `redirect_url`.
fn auth_env(oidc: Option<(&TestOp, &str)>) -> String {
    const ARGON2: &str = "argon2={memory_kib=64,iterations=1}";
    match oidc {
        None => format!("{{{ARGON2}}}"),
        Some((op, redirect_url)) => format!(
            "{{providers=[\"local\",\"oidc\"],{ARGON2},{}}}",
            oidc_env(op, redirect_url)
        ),
    }
}

/// One `quire serve` process, killed (and reaped) when dropped, even by a failing test.
struct Instance {
    name: &'static str,
    child: Child,
    base: String,
    stderr: PathBuf,
}

impl Instance {
    /// Starts `quire serve` on `port` and `url` without waiting for it. It reads no
    /// Rocket.toml and none of this process's `ROCKET_*` variables; every instance gets
    /// the same secret key and `auth` (`ROCKET_AUTH`), as instances behind one load
    /// balancer must.
    fn spawn(name: &'static str, port: u16, url: &str, auth: &str, dir: &Path) -> Instance {
        let stderr = dir.join(format!("{name}.stderr"));
        let mut cmd = quire_command(dir, url);
        cmd.arg("serve")
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_SECRET_KEY", SECRET_KEY)
            .env("ROCKET_AUTH", auth)
            .env("ROCKET_LOG_LEVEL", "critical")
            .env("ROCKET_CLI_COLORS", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let child = cmd.spawn().expect("quire starts");
        Instance {
            name,
            child,
            base: format!("http://127.0.0.1:{port}"),
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until GET /healthz answers 200; fails with the process's stderr if it exits
    /// or does not get there within `HEALTHY_WITHIN`.
    async fn wait_healthy(&mut self) {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!(
                    "instance {} exited ({status}) before it was healthy; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            let last = match http.get(self.url("/healthz")).send().await {
                Ok(res) if res.status() == StatusCode::OK => return,
                Ok(res) => format!("/healthz answered {}", res.status()),
                Err(e) => format!("/healthz: {e}"),
            };
            if started.elapsed() > HEALTHY_WITHIN {
                panic!(
                    "instance {} not healthy after {HEALTHY_WITHIN:?} ({last}); stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            rocket::tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Instances over one database. Fields drop in order: the processes end before their
/// database is dropped and their directory removed.
struct Site {
    a: Instance,
    b: Instance,
    database: TestDatabase,
    _dir: TempDir,
}

impl Site {
    /// Two instances on a fresh database (one SQLite file, or one PostgreSQL database),
    /// spawned together, then waited for.
    async fn start() -> Site {
        Site::start_with(None).await
    }

    /// As `start`, with OpenID Connect login through `op` beside local accounts on both
    /// instances. The OP sends browsers back to B (`redirect_url` names B), wherever the
    /// login started.
    async fn start_with_oidc(op: &TestOp) -> Site {
        Site::start_with(Some(op)).await
    }

    async fn start_with(op: Option<&TestOp>) -> Site {
        let dir = tempfile::Builder::new()
            .prefix("quire-instances-")
            .tempdir()
            .expect("temp dir");
        let database = TestDatabase::create(dir.path());
        let (port_a, port_b) = two_free_ports();
        let redirect_url = format!("http://127.0.0.1:{port_b}/oidc/callback");
        let auth = auth_env(op.map(|op| (op, redirect_url.as_str())));
        let mut a = Instance::spawn("A", port_a, &database.url, &auth, dir.path());
        let mut b = Instance::spawn("B", port_b, &database.url, &auth, dir.path());
        a.wait_healthy().await;
        b.wait_healthy().await;
        Site {
            a,
            b,
            database,
            _dir: dir,
        }
    }

    async fn db(&self) -> quire::db::Pool {
        connect(&self.database.url).await
    }
}

/// A browser: one cookie jar for every instance. Cookies are scoped by host, not port
/// (RFC 6265), so the jar sends what A set to B too, as a browser sends one site's
/// cookies to whichever instance the load balancer picks.
struct Browser {
    http: reqwest::Client,
    jar: Arc<Jar>,
}

impl Browser {
    fn new() -> Browser {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(USER_AGENT)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Browser { http, jar }
    }

    async fn get(&self, at: &Instance, path: &str) -> (StatusCode, String, String) {
        let res = self
            .http
            .get(at.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", at.name));
        read(res).await
    }

    /// GET an absolute URL (e.g. the OP's), with this browser's cookies.
    async fn get_url(&self, url: &str) -> (StatusCode, String, String) {
        let res = self
            .http
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        read(res).await
    }

    async fn post(
        &self,
        at: &Instance,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let res = self
            .http
            .post(at.url(path))
            .form(fields)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} on {}: {e}", at.name));
        read(res).await
    }

    /// The CSRF token of the form on `path`, as a person would submit it.
    async fn token_from(&self, at: &Instance, path: &str) -> String {
        let (status, _, page) = self.get(at, path).await;
        assert_eq!(status, StatusCode::OK, "GET {path} on {}: {page}", at.name);
        csrf_token_in(&page)
    }

    /// The Cookie header this browser sends to `at`.
    fn cookie_header(&self, at: &Instance) -> String {
        let url = at.url("/").parse().unwrap();
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// (status, Location, body)
async fn read(res: reqwest::Response) -> (StatusCode, String, String) {
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, res.text().await.unwrap_or_default())
}

/// Signs up on `at` through the form and returns the email.
async fn sign_up(browser: &Browser, at: &Instance, name: &str) -> String {
    let token = browser.token_from(at, "/signup").await;
    let email = unique_email(name);
    let (status, location, page) = browser
        .post(
            at,
            "/signup",
            &[
                ("csrf_token", &token),
                ("email", &email),
                ("name", name),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "signup on {}: {page}",
        at.name
    );
    assert_eq!(location, "/dashboard");
    email
}

#[rocket::async_test]
async fn two_instances_behave_as_one() {
    let site = Site::start().await;
    let (a, b) = (&site.a, &site.b);
    let browser = Browser::new();

    // Signed up on A, the author is logged in on B.
    sign_up(&browser, a, "Grace Hopper").await;
    let (status, _, dashboard) = browser.get(b, "/dashboard").await;
    assert_eq!(status, StatusCode::OK, "dashboard on B: {dashboard}");
    assert!(dashboard.contains("Grace Hopper"), "{dashboard}");

    // A post written on B is on A's home page and at its address on A.
    let token = csrf_token_in(&dashboard);
    let (status, location, page) = browser
        .post(
            b,
            "/posts",
            &[
                ("csrf_token", &token),
                ("title", "Compilers for everyone"),
                ("body", "Written on *one* instance, read on the other."),
                ("publish", "true"),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "creating a post on B: {page}"
    );
    assert!(location.starts_with("/posts/"), "{location}");
    let reader = Browser::new();
    let (status, _, home) = reader.get(a, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Compilers for everyone"), "{home}");
    let (status, _, post) = reader.get(a, &location).await;
    assert_eq!(status, StatusCode::OK, "{location} on A");
    assert!(post.contains("<em>one</em>"), "{post}");

    // The session cookie as it stands, to show below that the session itself ended, not
    // only the browser's copy of it. Replayed now, it is accepted by B.
    let cookies = browser.cookie_header(b);
    let replay = |at: &Instance| {
        let url = at.url("/dashboard");
        let cookies = cookies.clone();
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap()
                .get(url)
                .header("Cookie", cookies)
                .send()
                .await
                .expect("replayed request")
                .status()
        }
    };
    assert_eq!(replay(b).await, StatusCode::OK, "the copied cookies work");

    // Logging out on A logs out on B.
    let token = browser.token_from(a, "/").await;
    let (status, location, page) = browser.post(a, "/logout", &[("csrf_token", &token)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "logout on A: {page}");
    assert_eq!(location, "/");
    let (status, location, _) = browser.get(b, "/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "dashboard on B after logout");
    assert!(location.starts_with("/login?next="), "{location}");
    assert_eq!(
        replay(b).await,
        StatusCode::SEE_OTHER,
        "the old session cookie still works on B after logout on A"
    );
}

#[rocket::async_test]
async fn throttling_counts_across_instances() {
    let site = Site::start().await;
    let (a, b) = (&site.a, &site.b);
    let email = sign_up(&Browser::new(), a, "Ada Lovelace").await;

    let attacker = Browser::new();
    let token = attacker.token_from(a, "/login").await;
    let wrong = [
        ("csrf_token", token.as_str()),
        ("email", email.as_str()),
        ("password", "not the right one at all"),
    ];
    // Three on A and one on B are four failures: not yet locked.
    for (i, at) in [a, a, a, b].into_iter().enumerate() {
        let (status, _, page) = attacker.post(at, "/login", &wrong).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "attempt {} on {}: {page}",
            i + 1,
            at.name
        );
    }
    // The fifth, on B, locks the account: B counted A's three.
    let (status, _, page) = attacker.post(b, "/login", &wrong).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "attempt 5 on B: {page}"
    );

    // Now even the right password is refused, on either instance.
    let owner = Browser::new();
    let token = owner.token_from(b, "/login").await;
    let right = [
        ("csrf_token", token.as_str()),
        ("email", email.as_str()),
        ("password", PASSWORD),
    ];
    for at in [a, b] {
        let (status, _, page) = owner.post(at, "/login", &right).await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "right password on {} while locked: {page}",
            at.name
        );
        assert!(page.contains("Too many failed attempts"), "{page}");
    }
    let (status, _, _) = owner.get(a, "/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "logged in despite the lock");
}

#[rocket::async_test]
async fn instances_starting_together_apply_migrations_once() {
    let versions = shipped_migrations();
    assert!(!versions.is_empty());

    // Three fresh databases, so that a race has three chances to show.
    for round in 1..=3 {
        let site = Site::start().await;
        for at in [&site.a, &site.b] {
            let (status, _, _) = Browser::new().get(at, "/").await;
            assert_eq!(
                status,
                StatusCode::OK,
                "home page on {} (round {round})",
                at.name
            );
        }
        let db = site.db().await;
        let applied = applied_migrations(&db).await;
        assert_eq!(applied, versions, "migrations recorded (round {round})");
        let succeeded = successful_migrations(&db).await;
        assert_eq!(
            succeeded,
            versions.len() as i64,
            "successful migrations (round {round})"
        );
        db.close().await;
    }
}

#[rocket::async_test]
async fn an_oidc_login_started_on_one_instance_completes_on_the_other() {
    let op = TestOp::start().await;
    op.set_user(OpUser::new(
        "sub-grace",
        "grace@example.com",
        "Grace Brewster",
    ));
    let site = Site::start_with_oidc(&op).await;
    let (a, b) = (&site.a, &site.b);
    let browser = Browser::new();

    // The login starts on A, which sets the pre-login cookie and sends the browser to the
    // OP.
    let (status, authorize, page) = browser.get(a, "/login/oidc?next=/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "/login/oidc on A: {page}");
    assert!(
        authorize.starts_with(&format!("{}/authorize?", op.issuer())),
        "A sent the browser to {authorize:?}"
    );
    assert!(
        browser.cookie_header(a).contains("quire_oidc="),
        "no pre-login cookie from A: {:?}",
        browser.cookie_header(a)
    );

    // The OP sends it back to B, the instance its redirect URL names.
    let (status, callback, page) = browser.get_url(&authorize).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the OP's /authorize: {page}");
    let callback = callback
        .strip_prefix(&b.base)
        .unwrap_or_else(|| panic!("the OP sent the browser to {callback:?}, not to B"))
        .to_string();
    assert!(callback.starts_with("/oidc/callback?"), "{callback}");

    // B completes the login A started.
    let (status, location, page) = browser.get(b, &callback).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "callback on B: {page}\nB's stderr:\n{}",
        b.stderr()
    );
    assert_eq!(location, "/dashboard", "callback on B: {page}");
    // The dashboard greets by name once (a flash, here shown by A); the account page
    // names who is logged in, on either instance.
    for (at, greeting) in [(a, true), (b, false)] {
        let (status, _, dashboard) = browser.get(at, "/dashboard").await;
        assert_eq!(
            status,
            StatusCode::OK,
            "dashboard on {}: {dashboard}",
            at.name
        );
        assert_eq!(
            dashboard.contains("Welcome, Grace Brewster."),
            greeting,
            "dashboard on {}: {dashboard}",
            at.name
        );
    }
    for at in [a, b] {
        let (status, _, account) = browser.get(at, "/account").await;
        assert_eq!(status, StatusCode::OK, "account on {}: {account}", at.name);
        assert!(
            account.contains("Logged in as <strong>Grace Brewster</strong>"),
            "account on {}: {account}",
            at.name
        );
    }
    let db = site.db().await;
    let providers: Vec<String> = sessions(&db)
        .await
        .into_iter()
        .map(|s| s.provider)
        .collect();
    assert_eq!(providers, ["oidc"], "session rows");

    // Logging out on B ends the session at the OP too, and on A.
    let token = browser.token_from(b, "/dashboard").await;
    let (status, location, page) = browser.post(b, "/logout", &[("csrf_token", &token)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "logout on B: {page}");
    assert!(
        location.starts_with(&format!("{}/end_session?", op.issuer())),
        "logout on B sent the browser to {location:?}"
    );
    let query = query_of(&location);
    assert_eq!(
        query.get("post_logout_redirect_uri"),
        Some(&format!("{}/", b.base)),
        "{location}"
    );
    let (status, location, _) = browser.get(a, "/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "dashboard on A after logout");
    assert!(location.starts_with("/login"), "{location}");
    assert_eq!(session_count(&db).await, 0, "session rows after logout");
    db.close().await;
}
