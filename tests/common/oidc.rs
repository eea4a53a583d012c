//! The OIDC stories' harness: a quire app pointed at a `TestOp`, and a login that walks a
//! browser through the OP as a real one would: quire's /login/oidc → the OP's /authorize
//! (over real HTTP) → back to quire's /oidc/callback (dispatched on the browser's client,
//! so its cookies go along).

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::Value;

use super::op::{TestOp, CLIENT_ID, CLIENT_SECRET};
use super::schema::{self, Db};
use super::{location, Browser, TestApp};

// Kept here too, where the OIDC stories have always found them.
pub use super::html::unescape;
pub use super::schema::{SessionRow, UserRow};

/// quire's public origin in these tests (what the OP redirects back to; never dialled).
pub const ORIGIN: &str = "http://127.0.0.1:8000";
pub const REDIRECT_URL: &str = "http://127.0.0.1:8000/oidc/callback";

/// A quire app configured for `op`, and the OP itself.
pub struct OidcApp {
    pub app: TestApp,
    pub op: TestOp,
}

impl std::ops::Deref for OidcApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// The test figment with `auth.providers` and `[auth.oidc]` pointing at `op`.
pub fn oidc_figment(figment: Figment, op: &TestOp, providers: &[&str]) -> Figment {
    figment
        .merge(("auth.providers", providers))
        .merge(("auth.oidc.issuer", op.issuer()))
        .merge(("auth.oidc.client_id", CLIENT_ID))
        .merge(("auth.oidc.client_secret", CLIENT_SECRET))
        .merge(("auth.oidc.redirect_url", REDIRECT_URL))
}

/// `[auth.oidc]` pointing at `op`, as the inline table a `ROCKET_AUTH` variable holds
/// (`oidc={...}`), for `quire` processes configured from the environment.
pub fn oidc_env(op: &TestOp, redirect_url: &str) -> String {
    format!(
        "oidc={{issuer=\"{}\",client_id=\"{CLIENT_ID}\",client_secret=\"{CLIENT_SECRET}\",\
         redirect_url=\"{redirect_url}\"}}",
        op.issuer()
    )
}

impl OidcApp {
    /// Spawns quire with `providers` (e.g. `&["oidc"]`, `&["local", "oidc"]`) against
    /// `op`; `tweak` adjusts the figment afterwards (e.g. `auth.oidc.allowed_groups`).
    pub async fn spawn(
        op: &TestOp,
        providers: &[&str],
        tweak: impl FnOnce(Figment) -> Figment,
    ) -> OidcApp {
        let app = TestApp::spawn_with(|f| tweak(oidc_figment(f, op, providers))).await;
        OidcApp {
            app,
            op: op.clone(),
        }
    }

    /// Every session row, oldest first.
    pub async fn sessions(&self) -> Vec<SessionRow> {
        schema::sessions(self).await
    }

    /// Every user row, oldest first.
    pub async fn users(&self) -> Vec<UserRow> {
        schema::users(self).await
    }
}

impl Db for OidcApp {
    async fn pool(&self) -> quire::db::Pool {
        self.app.db().await
    }
}

/// Where a login ended: quire's answer to the callback.
#[derive(Debug)]
pub struct Landing {
    pub status: Status,
    pub location: String,
    pub page: String,
}

impl Landing {
    /// Reads quire's answer.
    pub async fn read(res: LocalResponse<'_>) -> Landing {
        let status = res.status();
        let location = location(&res);
        let page = res.into_string().await.unwrap_or_default();
        Landing {
            status,
            location,
            page,
        }
    }

    /// A refusal on the friendly page: this status, never a 500, a way to try again,
    /// and `text` somewhere on it.
    pub fn assert_friendly(&self, status: Status, text: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let page = self.text();
        assert!(page.contains(text), "{text:?} not on the page: {page}");
        assert!(
            page.contains("Try again") && page.contains("href=\"/login/oidc"),
            "no way to try again: {page}"
        );
    }

    /// The page with the HTML escapes the templates use undone.
    pub fn text(&self) -> String {
        unescape(&self.page)
    }
}

/// An HTTP client for talking to the OP as the browser would (redirects are looked at,
/// not followed).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// `url` with query parameter `key` set to `value` (the others kept in order).
pub fn with_param(url: &str, key: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        ser.append_pair(&k, if k == key { value } else { &v });
    }
    format!("{base}?{}", ser.finish())
}

/// GET /login/oidc(?next=) on quire: the URL quire sends the browser to (the OP's
/// /authorize), asserting it is a 303 there.
pub async fn start(b: &Browser, next: Option<&str>) -> String {
    let path = match next {
        Some(n) => format!("/login/oidc?next={}", super::urlencode(n)),
        None => "/login/oidc".to_string(),
    };
    let landing = Landing::read(b.get(&path).await).await;
    let to = landing.location;
    assert_eq!(
        landing.status,
        Status::SeeOther,
        "GET {path}: {}",
        landing.page
    );
    assert!(to.contains("/authorize?"), "GET {path} sent to {to:?}");
    to
}

/// Follows quire's redirect to the OP: the OP's redirect back, as quire's local path and
/// query (`/oidc/callback?code=..&state=..`).
pub async fn authorize(authorize_url: &str) -> String {
    let res = http()
        .get(authorize_url)
        .send()
        .await
        .expect("the OP answers /authorize");
    assert_eq!(res.status(), 303, "{authorize_url}: {:?}", res.text().await);
    let back = res.headers()["location"]
        .to_str()
        .expect("ASCII location")
        .to_string();
    back.strip_prefix(ORIGIN)
        .unwrap_or_else(|| panic!("the OP sent the browser to {back:?}, not to quire"))
        .to_string()
}

/// A login up to the OP's redirect back, not yet dispatched: the callback's local path
/// and query, for replays and tampering.
pub async fn callback_url(b: &Browser, next: Option<&str>) -> String {
    authorize(&start(b, next).await).await
}

/// Dispatches a callback (path and query) on the browser, with its cookies.
pub async fn finish(b: &Browser, callback: &str) -> Landing {
    Landing::read(b.get(callback).await).await
}

/// A whole login through the OP: where quire's callback sent the browser.
pub async fn oidc_login(b: &Browser, next: Option<&str>) -> Landing {
    let callback = callback_url(b, next).await;
    finish(b, &callback).await
}

/// A login that must succeed: asserts the 303 to `to` (or /dashboard) and returns the
/// page there, with its greeting.
pub async fn logged_in(b: &Browser, next: Option<&str>) -> String {
    let landing = oidc_login(b, next).await;
    assert_eq!(landing.status, Status::SeeOther, "{landing:?}");
    assert_eq!(
        landing.location,
        next.unwrap_or("/dashboard"),
        "{landing:?}"
    );
    let (status, page) = b.get_text(&landing.location).await;
    assert_eq!(status, Status::Ok, "{page}");
    page
}

/// The claims of a JWT, unverified (for asserting what was stored or sent).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The OP's published signing key with this kid (its first key when `None`).
pub async fn published_key(op: &TestOp, kid: Option<&str>) -> DecodingKey {
    let jwks: Value = http()
        .get(format!("{}/jwks", op.issuer()))
        .send()
        .await
        .expect("the OP answers /jwks")
        .json()
        .await
        .expect("a JWKS");
    let keys = jwks["keys"].as_array().expect("keys");
    let jwk = match kid {
        None => keys.first(),
        Some(kid) => keys.iter().find(|k| k["kid"].as_str() == Some(kid)),
    }
    .unwrap_or_else(|| panic!("no key {kid:?} in the JWKS: {jwks}"));
    DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
        .expect("an RSA key")
}

/// What a relying party checks of a token `op` issued to quire: RS256, audience and issuer.
pub fn validation(op: &TestOp) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[op.issuer()]);
    validation
}

/// The claims of a JWT from `op`, verified as a relying party would: against the key its
/// kid names in the OP's JWKS, with `validation(op)`.
pub async fn verified_claims(op: &TestOp, token: &str) -> jsonwebtoken::errors::Result<Value> {
    let header = jsonwebtoken::decode_header(token)?;
    let key = published_key(op, Some(header.kid.as_deref().unwrap_or_default())).await;
    Ok(jsonwebtoken::decode::<Value>(token, &key, &validation(op))?.claims)
}
