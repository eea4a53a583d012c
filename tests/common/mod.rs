//! The test harness: `TestApp` owns a temporary directory and its own database (SQLite,
//! or PostgreSQL with `QUIRE_TEST_DATABASE`, see `database.rs`) and builds quire from a
//! figment, as `quire serve` does. Each `Browser` is a separate
//! Rocket instance with its own cookie jar over the same database, so tests can act as
//! two people (or two instances behind a load balancer).
//!
//! The rest of the toolkit: `schema` (every SQL statement the stories run), `html`
//! (reading pages and forms), `process` (running the `quire` binary), `oidc` and `op`
//! (an OpenID provider and logins through it).

#![allow(dead_code)]

pub mod database;
pub mod html;
pub mod load;
pub mod mfa;
pub mod oidc;
pub mod op;
pub mod passkey;
pub mod process;
pub mod schema;
pub mod smtp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rocket::error::ErrorKind;
use rocket::figment::Figment;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalRequest, LocalResponse};
use tempfile::TempDir;

use database::TestDatabase;

pub use html::*;
pub use schema::*;

pub const PASSWORD: &str = "correct horse battery staple";
pub const OTHER_PASSWORD: &str = "plankton umbrella xylophone quarry";
pub const SECRET_KEY: &str =
    "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk+Ee4YTyKSx1i9lHd5u8FVvg5JTGnVbrHsgYhwpC0BNg==";
/// What the test browsers say they are (the account page names the browser of a session).
pub const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct TestApp {
    pub browser: Browser,
    pub figment: Figment,
    pub database: TestDatabase,
    pub dir: TempDir,
}

impl std::ops::Deref for TestApp {
    type Target = Browser;
    fn deref(&self) -> &Browser {
        &self.browser
    }
}

pub struct Browser {
    pub client: Client,
}

/// The figment a test app starts from: quire's defaults, the test's database, a fixed
/// secret key, and argon2 lowered so the suite stays fast (one test pins production).
pub fn test_figment(database: &TestDatabase) -> Figment {
    keyless_figment(database).merge(("secret_key", SECRET_KEY))
}

/// `test_figment` without a secret key, as a first start with nothing configured.
pub fn keyless_figment(database: &TestDatabase) -> Figment {
    quire::config::defaults()
        .merge((
            "log_level",
            std::env::var("QUIRE_TEST_LOG").unwrap_or_else(|_| "off".into()),
        ))
        .merge(("databases.quire.url", database.url.clone()))
        .merge(("databases.quire.max_connections", 4))
        .merge(("auth.argon2.memory_kib", 64))
        .merge(("auth.argon2.iterations", 1))
        // Each test browser is an instance of its own: they check for changes on every
        // request, so a story reads what another browser just wrote (tests/page_cache.rs
        // covers the default).
        .merge(("page_cache.check_ms", 0))
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|f| f).await
    }

    /// Spawns with the test figment adjusted by `tweak` (e.g. `.merge(("auth.signup", false))`).
    pub async fn spawn_with(tweak: impl FnOnce(Figment) -> Figment) -> TestApp {
        let dir = tempfile::Builder::new()
            .prefix("quire-test-")
            .tempdir()
            .expect("temp dir");
        let database = TestDatabase::create(dir.path());
        let figment = tweak(test_figment(&database));
        let browser = Browser::launch(figment.clone()).await;
        TestApp {
            browser,
            figment,
            database,
            dir,
        }
    }

    /// Another browser (its own cookies) on the same site and database.
    pub async fn new_browser(&self) -> Browser {
        Browser::launch(self.figment.clone()).await
    }

    /// A direct connection to the app's database, for arranging and asserting.
    pub async fn db(&self) -> quire::db::Pool {
        let config: rocket_db_pools::Config = self
            .figment
            .extract_inner("databases.quire")
            .expect("database config");
        quire::db::Pool::connect(&config).await.expect("database")
    }

    /// The id of the account with this (stored, lowercased) email.
    pub async fn user_id(&self, email: &str) -> i64 {
        schema::user_id(self, email).await
    }

    /// Signs up a fresh author in a new browser and returns that browser, logged in.
    pub async fn author(&self, name: &str) -> (Browser, String) {
        let b = self.new_browser().await;
        let email = unique_email(name);
        let status = b.signup(&email, name, PASSWORD).await.status();
        assert_eq!(status, Status::SeeOther, "signup of {email} failed");
        (b, email)
    }

    /// Another browser, logged in as `email` (with `PASSWORD`).
    pub async fn login_as(&self, email: &str) -> Browser {
        let b = self.new_browser().await;
        let status = b.login(email, PASSWORD).await.status();
        assert_eq!(status, Status::SeeOther, "login of {email} failed");
        b
    }
}

/// The reverse proxy the proxy stories configure in `trusted_proxies` ("127.0.0.1").
pub const TLS_PROXY: &str = "127.0.0.1:40000";

/// `req` as a trusted TLS-terminating proxy at `TLS_PROXY` forwards a request that
/// reached it over HTTPS.
pub fn via_tls_proxy(req: LocalRequest<'_>) -> LocalRequest<'_> {
    req.remote(TLS_PROXY.parse().unwrap())
        .header(Header::new("X-Forwarded-Proto", "https"))
}

/// An email no other test uses.
pub fn unique_email(name: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}.{n}@example.com", name.to_lowercase().replace(' ', "."))
}

impl Browser {
    pub async fn launch(figment: Figment) -> Browser {
        let client = Client::tracked(quire::build(figment))
            .await
            .expect("quire launches");
        Browser { client }
    }

    pub async fn get(&self, path: &str) -> LocalResponse<'_> {
        self.client.get(path.to_string()).dispatch().await
    }

    pub async fn get_text(&self, path: &str) -> (Status, String) {
        text_of(self.get(path).await).await
    }

    /// GET `path` with `cookie` added to what this browser sends (e.g. a cookie copied
    /// from another browser or instance).
    pub async fn get_with_cookie(&self, path: &str, cookie: Cookie<'static>) -> LocalResponse<'_> {
        self.client
            .get(path.to_string())
            .cookie(cookie)
            .dispatch()
            .await
    }

    /// The cookie `name` as this browser holds it (sealed, for a private cookie).
    pub fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.client.cookies().get(name).cloned()
    }

    /// The value inside this browser's private (encrypted) cookie `name`.
    pub fn private_cookie(&self, name: &str) -> Option<String> {
        self.client
            .cookies()
            .get_private(name)
            .map(|c| c.value().to_string())
    }

    /// This browser's CSRF token, fetching a page that sets one if needed. While its
    /// session cookie names a live session, the token bound to that session.
    pub async fn csrf_token(&self) -> String {
        if let Some(session) = self.private_cookie("quire_session") {
            if self.session_is_live(&session).await {
                return quire::auth::csrf::for_session(&session);
            }
        }
        if let Some(token) = self.private_cookie("quire_csrf") {
            return token;
        }
        self.get("/signup").await;
        self.private_cookie("quire_csrf")
            .expect("a page with a form sets the CSRF cookie")
    }

    /// Whether the session this token names is live, as quire would judge it.
    async fn session_is_live(&self, session_token: &str) -> bool {
        use rocket_db_pools::Database;
        let db = quire::db::Db::fetch(self.client.rocket()).expect("the app's database");
        let hash = quire::token::hash(session_token);
        let now = quire::db::current_time();
        quire::db::sessions::by_token_hash(&db.0, &hash, now)
            .await
            .is_ok_and(|s| s.is_some())
    }

    /// Posts a urlencoded form with this browser's CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> LocalResponse<'_> {
        self.form_request(path, fields).await.dispatch().await
    }

    /// `post_form`'s request, not yet dispatched, for a request that needs more (a
    /// client address, forwarded headers, a planted cookie).
    pub async fn form_request(&self, path: &str, fields: &[(&str, &str)]) -> LocalRequest<'_> {
        let token = self.csrf_token().await;
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &token)];
        all.extend_from_slice(fields);
        self.raw_request(path, &encode(&all))
    }

    /// Posts a urlencoded body exactly as given (no CSRF token added).
    pub async fn post_raw(&self, path: &str, body: &str) -> LocalResponse<'_> {
        self.raw_request(path, body).dispatch().await
    }

    fn raw_request(&self, path: &str, body: &str) -> LocalRequest<'_> {
        self.client
            .post(path.to_string())
            .header(ContentType::Form)
            .header(Header::new("User-Agent", USER_AGENT))
            .body(body)
    }

    pub async fn signup(&self, email: &str, name: &str, password: &str) -> LocalResponse<'_> {
        self.post_form(
            "/signup",
            &[("email", email), ("name", name), ("password", password)],
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> LocalResponse<'_> {
        self.post_form("/login", &[("email", email), ("password", password)])
            .await
    }

    pub async fn login_remembered(&self, email: &str, password: &str) -> LocalResponse<'_> {
        self.post_form(
            "/login",
            &[
                ("email", email),
                ("password", password),
                ("remember", "true"),
            ],
        )
        .await
    }

    pub async fn logout(&self) -> LocalResponse<'_> {
        self.post_form("/logout", &[]).await
    }

    /// Submits the new-post form (`publish` ticks its checkbox).
    pub async fn submit_post(&self, title: &str, body: &str, publish: bool) -> LocalResponse<'_> {
        self.post_form("/posts", &post_fields(title, body, publish))
            .await
    }

    /// Submits the edit form of the post at `slug`.
    pub async fn edit_post(
        &self,
        slug: &str,
        title: &str,
        body: &str,
        publish: bool,
    ) -> LocalResponse<'_> {
        self.post_form(
            &format!("/posts/{slug}/edit"),
            &post_fields(title, body, publish),
        )
        .await
    }

    /// Creates a post and returns its slug (from the redirect to it).
    pub async fn create_post(&self, title: &str, body: &str, publish: bool) -> String {
        let res = self.submit_post(title, body, publish).await;
        assert_eq!(res.status(), Status::SeeOther, "creating {title:?}");
        let to = location(&res);
        match to.strip_prefix("/posts/") {
            Some(slug) => slug.to_string(),
            None => panic!("creating {title:?} redirected to {to:?}, not to the post"),
        }
    }

    /// True when this browser is logged in (the dashboard answers instead of redirecting).
    pub async fn is_logged_in(&self) -> bool {
        self.get("/dashboard").await.status() == Status::Ok
    }
}

/// A response's status and body (the body "" when it has none).
pub async fn text_of(res: LocalResponse<'_>) -> (Status, String) {
    let status = res.status();
    (status, res.into_string().await.unwrap_or_default())
}

/// A post form's fields; an unticked checkbox sends nothing.
fn post_fields<'a>(title: &'a str, body: &'a str, publish: bool) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("title", title), ("body", body)];
    if publish {
        fields.push(("publish", "true"));
    }
    fields
}

pub fn location(res: &LocalResponse<'_>) -> String {
    res.headers().get_one("Location").unwrap_or("").to_string()
}

pub fn encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Every `Set-Cookie` header of a response, for asserting cookie attributes.
pub fn set_cookies(res: &LocalResponse<'_>) -> Vec<String> {
    res.headers()
        .get("Set-Cookie")
        .map(str::to_string)
        .collect()
}

/// The `Set-Cookie` header that sets the cookie `name` (a removal does not count).
pub fn set_cookie(res: &LocalResponse<'_>, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    set_cookies(res)
        .into_iter()
        .find(|c| c.starts_with(&prefix) && !c[prefix.len()..].starts_with(';'))
}

/// Now, in unix seconds (how quire stores time).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A configuration quire cannot honour: refused by `Config::from_figment` with a message
/// naming `key`, and launch stops in the configuration fairing.
pub async fn assert_launch_refused(figment: Figment, key: &str) {
    let err = quire::config::Config::from_figment(&figment).expect_err(key);
    assert!(err.contains(key), "{key}: {err}");
    let launched = Client::tracked(quire::build(figment)).await;
    let err = launched
        .err()
        .unwrap_or_else(|| panic!("launched with a bad {key}"));
    assert!(
        matches!(err.kind(), ErrorKind::FailedFairings(f) if f.iter().any(|f| f.name == "quire configuration")),
        "{key}: {err:?}"
    );
}

/// quire launches with this figment.
pub async fn assert_launches(figment: Figment) {
    let launched = Client::tracked(quire::build(figment)).await;
    assert!(launched.is_ok());
}
