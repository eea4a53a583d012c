//! An in-process OpenID Provider for the OIDC tests: a real HTTP server (Rocket) on
//! 127.0.0.1 that follows OpenID Connect Core, Discovery, RFC 6749/7636 and Back-Channel
//! Logout by default, with knobs (`Behavior`) to misbehave in the ways relying parties
//! must survive. There is no login page: `/authorize` logs in whoever `set_user` named
//! and redirects straight back with a code.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Cursor;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use rocket::data::{Data, ToByteUnit};
use rocket::fairing::AdHoc;
use rocket::http::uri::Origin;
use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{Responder, Response};
use rocket::tokio::sync::oneshot;
use rocket::tokio::task::JoinHandle;
use rocket::State;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "quire-test";
pub const CLIENT_SECRET: &str = "quire-test-secret-0123456789abcdef";
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

const KEY_1: &str = include_str!("../fixtures/op-key-1.pem");
const KEY_2: &str = include_str!("../fixtures/op-key-2.pem");
const STRANGER_KEY: &str = include_str!("../fixtures/stranger-key.pem");

/// The person the next authorization logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpUser {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

impl OpUser {
    /// A user with a verified email and no groups.
    pub fn new(sub: &str, email: &str, name: &str) -> OpUser {
        OpUser {
            sub: sub.into(),
            email: Some(email.into()),
            email_verified: Some(true),
            name: Some(name.into()),
            groups: Vec::new(),
        }
    }

    pub fn with_groups(mut self, groups: &[&str]) -> OpUser {
        self.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }

    /// The profile claims (email, email_verified, name, groups), `None`s omitted.
    fn profile_claims(&self, claims: &mut Map<String, Value>) {
        if let Some(email) = &self.email {
            claims.insert("email".into(), json!(email));
        }
        if let Some(verified) = self.email_verified {
            claims.insert("email_verified".into(), json!(verified));
        }
        if let Some(name) = &self.name {
            claims.insert("name".into(), json!(name));
        }
        claims.insert("groups".into(), json!(self.groups));
    }
}

#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with the current key (what OpenID Connect defaults to).
    RS256,
    /// HMAC with the client secret as the key.
    HS256,
    /// `"alg":"none"` and an empty signature.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtHash {
    Correct,
    Wrong,
    Omit,
}

/// Misbehaviour knobs; `Default` is a correct OP. They persist until changed.
#[derive(Clone, Debug)]
pub struct Behavior {
    /// Like Okta and PlusAuth: the ID token carries only sub and the protocol claims;
    /// email, email_verified, name and groups come from userinfo only.
    pub thin_id_token: bool,
    /// How ID tokens (and logout tokens) are signed.
    pub alg: Alg,
    /// Sign RS256 tokens with a key that is not in the JWKS, under the current kid.
    pub sign_with_stranger_key: bool,
    /// Overrides the `kid` header of signed tokens (e.g. a kid the JWKS never had).
    pub kid: Option<String>,
    pub iss: Option<String>,
    pub aud: Option<Value>,
    /// `Some(None)` omits azp; `Some(Some(x))` sets it to x; `None` = the client id.
    pub azp: Option<Option<String>>,
    /// exp = now + this many seconds; negative means already expired.
    pub exp_offset: i64,
    /// iat = now + offset; `None` omits iat.
    pub iat_offset: Option<i64>,
    /// Echo this nonce instead of the one from the authorization request.
    pub nonce: Option<String>,
    pub at_hash: AtHash,
    /// The sub userinfo answers with, instead of the user's.
    pub userinfo_sub: Option<String>,
    /// false: discovery has no userinfo_endpoint and /userinfo answers 404.
    pub userinfo_available: bool,
    /// /token answers this status with an OAuth error JSON, whatever it was sent.
    pub token_status: Option<u16>,
    /// /authorize redirects back with this error (and error_description, state).
    pub authorize_error: Option<String>,
    /// token_endpoint_auth_methods_supported, and the methods /token accepts. Empty:
    /// the field is omitted from discovery and only client_secret_basic (the spec's
    /// default) is accepted.
    pub auth_methods: Vec<String>,
    /// false: discovery has no end_session_endpoint and /end_session answers 404.
    pub end_session: bool,
    /// The issuer string discovery publishes (endpoints and tokens keep the real one).
    pub issuer_in_discovery: Option<String>,
    /// Discovery answers this status (and no document), as an OP that is down would.
    pub discovery_status: Option<u16>,
    /// Discovery answers after this many milliseconds, as a slow OP would.
    pub discovery_delay_ms: u64,
    /// The `amr` of ID tokens from authorizations; `None` omits the claim.
    pub amr: Option<Vec<String>>,
    /// The `acr` of ID tokens from authorizations; `None` omits the claim.
    pub acr: Option<String>,
    /// Discovery lists amr and acr in claims_supported.
    pub advertise_amr: bool,
    /// Discovery's acr_values_supported (omitted when `None`).
    pub acr_values_supported: Option<Vec<String>>,
    /// Discovery says claims_parameter_supported.
    pub claims_parameter: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            thin_id_token: true,
            alg: Alg::RS256,
            sign_with_stranger_key: false,
            kid: None,
            iss: None,
            aud: None,
            azp: None,
            exp_offset: 300,
            iat_offset: Some(0),
            nonce: None,
            at_hash: AtHash::Correct,
            userinfo_sub: None,
            userinfo_available: true,
            token_status: None,
            authorize_error: None,
            auth_methods: vec!["client_secret_basic".into(), "client_secret_post".into()],
            end_session: true,
            issuer_in_discovery: None,
            discovery_status: None,
            discovery_delay_ms: 0,
            amr: None,
            acr: None,
            advertise_amr: false,
            acr_values_supported: None,
            claims_parameter: false,
        }
    }
}

/// What one request to /token carried.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// An `Authorization: Basic` header was sent.
    pub basic_auth: bool,
    pub body_client_id: bool,
    pub body_client_secret: bool,
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub code_verifier: Option<String>,
    pub redirect_uri: Option<String>,
    /// Every body parameter.
    pub params: BTreeMap<String, String>,
}

struct Grant {
    redirect_uri: String,
    scope: String,
    code_challenge: String,
    nonce: Option<String>,
    user: OpUser,
    auth_time: i64,
}

struct OpState {
    user: OpUser,
    behavior: Behavior,
    key: u8,
    codes: HashMap<String, Grant>,
    used_codes: HashSet<String>,
    access_tokens: HashMap<String, OpUser>,
    /// Refresh token -> the person it stands for (issued for the offline_access scope).
    refresh_tokens: HashMap<String, OpUser>,
    token_requests: Vec<TokenRequest>,
    authorize_requests: Vec<BTreeMap<String, String>>,
    end_session_requests: Vec<BTreeMap<String, String>>,
    jwks_fetches: usize,
    discovery_fetches: usize,
    last_sid: Option<String>,
}

struct Shared {
    issuer: OnceLock<String>,
    state: Mutex<OpState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, OpState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn issuer(&self) -> String {
        self.issuer
            .get()
            .cloned()
            .expect("the test OP has lifted off")
    }
}

struct Running {
    shared: Arc<Shared>,
    port: u16,
    shutdown: rocket::Shutdown,
    task: Mutex<Option<JoinHandle<Result<(), String>>>>,
}

/// A running test OP. Clones share the same server and state.
#[derive(Clone)]
pub struct TestOp {
    inner: Arc<Running>,
}

impl TestOp {
    /// Starts on a free port of 127.0.0.1; the issuer is `http://127.0.0.1:<port>`.
    pub async fn start() -> TestOp {
        Self::start_on(0).await
    }

    /// Starts on a fixed port (fresh state), e.g. to bring an OP up after quire started.
    pub async fn start_on(port: u16) -> TestOp {
        let shared = Arc::new(Shared {
            issuer: OnceLock::new(),
            state: Mutex::new(OpState {
                user: OpUser::new("op-user-1", "op.user@example.com", "Op User"),
                behavior: Behavior::default(),
                key: 1,
                codes: HashMap::new(),
                used_codes: HashSet::new(),
                access_tokens: HashMap::new(),
                refresh_tokens: HashMap::new(),
                token_requests: Vec::new(),
                authorize_requests: Vec::new(),
                end_session_requests: Vec::new(),
                jwks_fetches: 0,
                discovery_fetches: 0,
                last_sid: None,
            }),
        });
        let config = rocket::Config {
            address: Ipv4Addr::LOCALHOST.into(),
            port,
            log_level: rocket::config::LogLevel::Off,
            cli_colors: false,
            secret_key: rocket::config::SecretKey::generate().expect("secret key"),
            shutdown: rocket::config::Shutdown {
                ctrlc: false,
                #[cfg(unix)]
                signals: HashSet::new(),
                grace: 0,
                mercy: 0,
                ..Default::default()
            },
            ..rocket::Config::default()
        };
        let (tx, rx) = oneshot::channel::<u16>();
        let tx = Mutex::new(Some(tx));
        let lifted = shared.clone();
        let rocket = rocket::custom(config)
            .manage(shared.clone())
            .mount(
                "/",
                rocket::routes![
                    discovery,
                    authorize_get,
                    authorize_post,
                    token,
                    userinfo_get,
                    userinfo_post,
                    jwks,
                    end_session_get,
                    end_session_post,
                ],
            )
            .attach(AdHoc::on_liftoff("test OP port", move |rocket| {
                let port = rocket.config().port;
                let _ = lifted.issuer.set(format!("http://127.0.0.1:{port}"));
                if let Some(tx) = tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = tx.send(port);
                }
                Box::pin(async {})
            }));
        let rocket = match rocket.ignite().await {
            Ok(r) => r,
            Err(e) => panic!("test OP does not ignite: {e}"),
        };
        let shutdown = rocket.shutdown();
        let task = rocket::tokio::spawn(async move {
            rocket.launch().await.map(|_| ()).map_err(|e| e.to_string())
        });
        let port = match rx.await {
            Ok(port) => port,
            Err(_) => match task.await {
                Ok(Err(e)) => panic!("test OP on port {port} does not launch: {e}"),
                other => panic!("test OP on port {port} does not launch: {other:?}"),
            },
        };
        TestOp {
            inner: Arc::new(Running {
                shared,
                port,
                shutdown,
                task: Mutex::new(Some(task)),
            }),
        }
    }

    pub fn issuer(&self) -> String {
        self.inner.shared.issuer()
    }

    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// Shuts the server down; connections are refused once this returns.
    pub async fn stop(&self) {
        self.inner.shutdown.clone().notify();
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, OpState> {
        self.inner.shared.lock()
    }

    /// Who the next authorization logs in.
    pub fn set_user(&self, user: OpUser) {
        self.lock().user = user;
    }

    pub fn behave(&self, f: impl FnOnce(&mut Behavior)) {
        f(&mut self.lock().behavior);
    }

    /// Changes the person `sub` at the OP from now on: what userinfo and refreshes say
    /// for tokens already issued, and who the next authorization logs in, if it is them.
    pub fn update_user(&self, sub: &str, f: impl Fn(&mut OpUser)) {
        let mut st = self.lock();
        let OpState {
            user,
            access_tokens,
            refresh_tokens,
            ..
        } = &mut *st;
        for u in access_tokens
            .values_mut()
            .chain(refresh_tokens.values_mut())
            .chain(std::iter::once(user))
        {
            if u.sub == sub {
                f(u);
            }
        }
    }

    /// Forgets every token issued to `sub`, as an OP does for a disabled account.
    pub fn revoke_tokens(&self, sub: &str) {
        let mut st = self.lock();
        st.access_tokens.retain(|_, u| u.sub != sub);
        st.refresh_tokens.retain(|_, u| u.sub != sub);
    }

    /// Signs with key 2 ("kid-2") from now on; the JWKS then publishes key 2 only.
    pub fn rotate_key(&self) {
        self.lock().key = 2;
    }

    /// A back-channel logout token (typ `logout+jwt`) signed like ID tokens are (current
    /// key; the alg, stranger-key and kid knobs apply). `tweak` edits the claims first.
    pub fn logout_token(
        &self,
        sub: Option<&str>,
        sid: Option<&str>,
        tweak: impl FnOnce(&mut Value),
    ) -> String {
        let now = now();
        let mut claims = json!({
            "iss": self.issuer(),
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 120,
            "jti": random_token(),
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        });
        if let Some(sub) = sub {
            claims["sub"] = json!(sub);
        }
        if let Some(sid) = sid {
            claims["sid"] = json!(sid);
        }
        tweak(&mut claims);
        let st = self.lock();
        sign(&claims, "logout+jwt", &st.behavior, st.key)
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.lock().token_requests.clone()
    }

    pub fn authorize_requests(&self) -> Vec<BTreeMap<String, String>> {
        self.lock().authorize_requests.clone()
    }

    pub fn end_session_requests(&self) -> Vec<BTreeMap<String, String>> {
        self.lock().end_session_requests.clone()
    }

    pub fn jwks_fetches(&self) -> usize {
        self.lock().jwks_fetches
    }

    pub fn discovery_fetches(&self) -> usize {
        self.lock().discovery_fetches
    }

    /// The sid of the last ID token issued.
    pub fn last_sid(&self) -> Option<String> {
        self.lock().last_sid.clone()
    }
}

// ---------------------------------------------------------------------------------------
// Tokens and keys

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// OIDC Core 3.3.2.11: the left half of SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// BASE64URL(SHA256(verifier)), RFC 7636 4.2.
pub fn s256(code_verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()))
}

fn key_pem(key: u8) -> &'static str {
    if key == 2 {
        KEY_2
    } else {
        KEY_1
    }
}

fn sign(claims: &Value, typ: &str, behavior: &Behavior, key: u8) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    match behavior.alg {
        Alg::None => {
            let header = json!({ "alg": "none", "typ": typ });
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            )
        }
        Alg::HS256 => {
            let mut header = Header::new(Algorithm::HS256);
            header.typ = Some(typ.into());
            header.kid = behavior.kid.clone();
            let key = EncodingKey::from_secret(CLIENT_SECRET.as_bytes());
            jsonwebtoken::encode(&header, claims, &key).expect("HS256 signing")
        }
        Alg::RS256 => {
            let mut header = Header::new(Algorithm::RS256);
            header.typ = Some(typ.into());
            header.kid = Some(behavior.kid.clone().unwrap_or(format!("kid-{key}")));
            let pem = if behavior.sign_with_stranger_key {
                STRANGER_KEY
            } else {
                key_pem(key)
            };
            let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA key");
            jsonwebtoken::encode(&header, claims, &key).expect("RS256 signing")
        }
    }
}

/// The public JWK of key 1 or 2.
fn public_jwk(key: u8) -> Value {
    static JWKS: OnceLock<[Value; 2]> = OnceLock::new();
    let jwk = |pem: &str, kid: &str| {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem).expect("PKCS#1 RSA key");
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        })
    };
    let keys = JWKS.get_or_init(|| [jwk(KEY_1, "kid-1"), jwk(KEY_2, "kid-2")]);
    keys[if key == 2 { 1 } else { 0 }].clone()
}

// ---------------------------------------------------------------------------------------
// HTTP plumbing

enum Reply {
    Json(Status, Value),
    Text(Status, String),
    Redirect(String),
    /// 401 with a `WWW-Authenticate` challenge.
    Challenge(Value, String),
}

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::Json(
        Status::new(status),
        json!({ "error": error, "error_description": description }),
    )
}

impl<'r> Responder<'r, 'static> for Reply {
    fn respond_to(self, _: &'r Request<'_>) -> rocket::response::Result<'static> {
        let mut res = Response::build();
        res.raw_header("Cache-Control", "no-store");
        let body = match self {
            Reply::Json(status, value) => {
                res.status(status).header(ContentType::JSON);
                value.to_string()
            }
            Reply::Text(status, text) => {
                res.status(status).header(ContentType::Plain);
                text
            }
            Reply::Redirect(to) => {
                res.status(Status::SeeOther).raw_header("Location", to);
                String::new()
            }
            Reply::Challenge(value, challenge) => {
                res.status(Status::Unauthorized)
                    .header(ContentType::JSON)
                    .raw_header("WWW-Authenticate", challenge);
                value.to_string()
            }
        };
        res.sized_body(body.len(), Cursor::new(body)).ok()
    }
}

struct Meta {
    authorization: Option<String>,
    form: bool,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Meta {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Meta {
            authorization: req.headers().get_one("Authorization").map(str::to_string),
            form: req.content_type().is_some_and(|c| c.is_form()),
        })
    }
}

/// Parses urlencoded parameters; the second value is the first repeated name (RFC 6749
/// 3.1: parameters must not be repeated).
fn parse_form(s: &str) -> (BTreeMap<String, String>, Option<String>) {
    let mut map = BTreeMap::new();
    let mut repeated = None;
    for (k, v) in url::form_urlencoded::parse(s.as_bytes()) {
        if map.insert(k.to_string(), v.to_string()).is_some() && repeated.is_none() {
            repeated = Some(k.to_string());
        }
    }
    (map, repeated)
}

async fn read_body(body: Data<'_>) -> String {
    body.open(64.kibibytes())
        .into_string()
        .await
        .map(|s| s.into_inner())
        .unwrap_or_default()
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", ser.finish())
}

/// application/x-www-form-urlencoded decoding of one component (RFC 6749 2.3.1).
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (id, secret) = raw.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

fn bearer(meta: &Meta) -> Option<&str> {
    let (scheme, token) = meta.authorization.as_deref()?.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

// ---------------------------------------------------------------------------------------
// Endpoints

#[rocket::get("/.well-known/openid-configuration")]
async fn discovery(op: &State<Arc<Shared>>) -> Reply {
    let issuer = op.issuer();
    let delay = {
        let mut st = op.lock();
        st.discovery_fetches += 1;
        st.behavior.discovery_delay_ms
    };
    if delay > 0 {
        rocket::tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let st = op.lock();
    if let Some(status) = st.behavior.discovery_status {
        return Reply::Text(Status::new(status), "discovery is down".into());
    }
    let b = &st.behavior;
    let mut doc = json!({
        "issuer": b.issuer_in_discovery.clone().unwrap_or(issuer.clone()),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
        "scopes_supported": ["openid", "email", "profile", "groups"],
        "claims_supported": [
            "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "sid", "at_hash",
            "email", "email_verified", "name", "groups"
        ],
        "code_challenge_methods_supported": ["S256"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    });
    if !b.auth_methods.is_empty() {
        doc["token_endpoint_auth_methods_supported"] = json!(b.auth_methods);
    }
    if b.userinfo_available {
        doc["userinfo_endpoint"] = json!(format!("{issuer}/userinfo"));
    }
    if b.end_session {
        doc["end_session_endpoint"] = json!(format!("{issuer}/end_session"));
    }
    if b.advertise_amr {
        let claims = doc["claims_supported"].as_array_mut().expect("a list");
        claims.extend([json!("amr"), json!("acr")]);
    }
    if b.claims_parameter {
        doc["claims_parameter_supported"] = json!(true);
    }
    if let Some(acr) = &b.acr_values_supported {
        doc["acr_values_supported"] = json!(acr);
    }
    Reply::Json(Status::Ok, doc)
}

#[rocket::get("/authorize")]
fn authorize_get(op: &State<Arc<Shared>>, uri: &Origin<'_>) -> Reply {
    authorize(op, uri.query().map(|q| q.as_str()).unwrap_or(""))
}

#[rocket::post("/authorize", data = "<body>")]
async fn authorize_post(op: &State<Arc<Shared>>, body: Data<'_>) -> Reply {
    let body = read_body(body).await;
    authorize(op, &body)
}

fn authorize(op: &Shared, query: &str) -> Reply {
    let (p, repeated) = parse_form(query);
    let mut st = op.lock();
    st.authorize_requests.push(p.clone());
    let bad = |why: String| Reply::Text(Status::BadRequest, format!("invalid request: {why}"));
    if let Some(name) = repeated {
        return bad(format!("{name} repeated"));
    }
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("client_id") != Some(CLIENT_ID) {
        return bad(format!("unknown client_id {:?}", get("client_id")));
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return bad("redirect_uri missing".into());
    };
    if get("response_type") != Some("code") {
        return bad(format!("response_type {:?}", get("response_type")));
    }
    if !get("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid")) {
        return bad(format!("scope {:?} lacks openid", get("scope")));
    }
    let Some(code_challenge) = get("code_challenge") else {
        return bad("code_challenge missing".into());
    };
    if get("code_challenge_method") != Some("S256") {
        return bad(format!(
            "code_challenge_method {:?}",
            get("code_challenge_method")
        ));
    }
    let Some(state) = get("state") else {
        return bad("state missing".into());
    };
    let Some(nonce) = get("nonce") else {
        return bad("nonce missing".into());
    };
    if let Some(error) = st.behavior.authorize_error.clone() {
        let description = format!("the test OP was told to answer {error}");
        return Reply::Redirect(with_query(
            redirect_uri,
            &[
                ("error", &error),
                ("error_description", &description),
                ("state", state),
            ],
        ));
    }
    let code = random_token();
    let grant = Grant {
        redirect_uri: redirect_uri.into(),
        scope: get("scope").unwrap_or("").into(),
        code_challenge: code_challenge.into(),
        nonce: Some(nonce.into()),
        user: st.user.clone(),
        auth_time: now(),
    };
    st.codes.insert(code.clone(), grant);
    Reply::Redirect(with_query(
        redirect_uri,
        &[("code", &code), ("state", state)],
    ))
}

#[rocket::post("/token", data = "<body>")]
async fn token(op: &State<Arc<Shared>>, meta: Meta, body: Data<'_>) -> Reply {
    let body = read_body(body).await;
    let issuer = op.issuer();
    let (p, repeated) = parse_form(&body);
    let mut st = op.lock();
    let basic = meta
        .authorization
        .as_deref()
        .is_some_and(|h| h.len() > 6 && h[..6].eq_ignore_ascii_case("basic "));
    st.token_requests.push(TokenRequest {
        basic_auth: basic,
        body_client_id: p.contains_key("client_id"),
        body_client_secret: p.contains_key("client_secret"),
        grant_type: p.get("grant_type").cloned(),
        code: p.get("code").cloned(),
        code_verifier: p.get("code_verifier").cloned(),
        redirect_uri: p.get("redirect_uri").cloned(),
        params: p.clone(),
    });
    if let Some(status) = st.behavior.token_status {
        let error = match status {
            400 => "invalid_grant",
            401 => "invalid_client",
            _ => "server_error",
        };
        return oauth_error(status, error, "the test OP was told to fail");
    }
    if !meta.form {
        return oauth_error(400, "invalid_request", "body is not a form");
    }
    if let Some(name) = repeated {
        return oauth_error(400, "invalid_request", &format!("{name} repeated"));
    }

    // Client authentication: exactly one method (RFC 6749 2.3).
    let invalid_client = |why: &str| {
        Reply::Challenge(
            json!({ "error": "invalid_client", "error_description": why }),
            "Basic realm=\"test-op\"".into(),
        )
    };
    if meta.authorization.is_some() && p.contains_key("client_secret") {
        return oauth_error(
            400,
            "invalid_request",
            "more than one client authentication method",
        );
    }
    let (method, id, secret) = match (
        &meta.authorization,
        p.get("client_id"),
        p.get("client_secret"),
    ) {
        (Some(h), _, _) => match parse_basic(h) {
            Some((id, secret)) => ("client_secret_basic", id, secret),
            None => return invalid_client("malformed Authorization header"),
        },
        (None, Some(id), Some(secret)) => ("client_secret_post", id.clone(), secret.clone()),
        _ => return invalid_client("no client authentication"),
    };
    let methods = &st.behavior.auth_methods;
    let allowed = if methods.is_empty() {
        method == "client_secret_basic"
    } else {
        methods.iter().any(|m| m == method)
    };
    if !allowed {
        return invalid_client(&format!("{method} is not allowed for this client"));
    }
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return invalid_client("unknown client or wrong secret");
    }
    if p.get("client_id").is_some_and(|body_id| *body_id != id) {
        return oauth_error(400, "invalid_request", "client_id differs from Basic auth");
    }

    if p.get("grant_type").map(String::as_str) == Some("refresh_token") {
        return refresh(&mut st, &issuer, &p);
    }
    if p.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(400, "unsupported_grant_type", "only authorization_code");
    }
    let Some(code) = p.get("code") else {
        return oauth_error(400, "invalid_request", "code missing");
    };
    if st.used_codes.contains(code) {
        return oauth_error(400, "invalid_grant", "code already used");
    }
    let Some(grant) = st.codes.remove(code) else {
        return oauth_error(400, "invalid_grant", "unknown code");
    };
    st.used_codes.insert(code.clone());
    if p.get("redirect_uri") != Some(&grant.redirect_uri) {
        return oauth_error(400, "invalid_grant", "redirect_uri differs");
    }
    let Some(verifier) = p.get("code_verifier") else {
        return oauth_error(400, "invalid_grant", "code_verifier missing");
    };
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed || s256(verifier) != grant.code_challenge {
        return oauth_error(400, "invalid_grant", "PKCE verification failed");
    }

    let access_token = random_token();
    let sid = random_token();
    let b = &st.behavior;
    let now = now();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(b.iss.clone().unwrap_or(issuer)));
    claims.insert("sub".into(), json!(grant.user.sub));
    claims.insert("aud".into(), b.aud.clone().unwrap_or(json!(CLIENT_ID)));
    match &b.azp {
        None => {
            claims.insert("azp".into(), json!(CLIENT_ID));
        }
        Some(Some(azp)) => {
            claims.insert("azp".into(), json!(azp));
        }
        Some(None) => {}
    }
    claims.insert("exp".into(), json!(now + b.exp_offset));
    if let Some(offset) = b.iat_offset {
        claims.insert("iat".into(), json!(now + offset));
    }
    claims.insert("auth_time".into(), json!(grant.auth_time));
    if let Some(nonce) = b.nonce.clone().or(grant.nonce) {
        claims.insert("nonce".into(), json!(nonce));
    }
    claims.insert("sid".into(), json!(sid));
    if let Some(amr) = &b.amr {
        claims.insert("amr".into(), json!(amr));
    }
    if let Some(acr) = &b.acr {
        claims.insert("acr".into(), json!(acr));
    }
    match b.at_hash {
        AtHash::Correct => {
            claims.insert("at_hash".into(), json!(at_hash(&access_token)));
        }
        AtHash::Wrong => {
            claims.insert("at_hash".into(), json!(at_hash("not the access token")));
        }
        AtHash::Omit => {}
    }
    if !b.thin_id_token {
        grant.user.profile_claims(&mut claims);
    }
    let id_token = sign(&Value::Object(claims), "JWT", b, st.key);
    st.last_sid = Some(sid);
    let mut answer = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid email profile",
        "id_token": id_token,
    });
    if grant.scope.split(' ').any(|s| s == "offline_access") {
        let refresh_token = random_token();
        st.refresh_tokens
            .insert(refresh_token.clone(), grant.user.clone());
        answer["refresh_token"] = json!(refresh_token);
    }
    st.access_tokens.insert(access_token.clone(), grant.user);
    Reply::Json(Status::Ok, answer)
}

/// The refresh_token grant (RFC 6749 6): the refresh token rotates, and a new access
/// token and ID token (without nonce, OIDC Core 12.2) say who the person is now.
fn refresh(st: &mut OpState, issuer: &str, p: &BTreeMap<String, String>) -> Reply {
    let Some(user) = p
        .get("refresh_token")
        .and_then(|t| st.refresh_tokens.remove(t))
    else {
        return oauth_error(400, "invalid_grant", "unknown refresh token");
    };
    let access_token = random_token();
    let refresh_token = random_token();
    let now = now();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer));
    claims.insert("sub".into(), json!(user.sub));
    claims.insert("aud".into(), json!(CLIENT_ID));
    claims.insert("azp".into(), json!(CLIENT_ID));
    claims.insert("exp".into(), json!(now + 300));
    claims.insert("iat".into(), json!(now));
    claims.insert("at_hash".into(), json!(at_hash(&access_token)));
    if !st.behavior.thin_id_token {
        user.profile_claims(&mut claims);
    }
    let id_token = sign(&Value::Object(claims), "JWT", &st.behavior, st.key);
    st.access_tokens.insert(access_token.clone(), user.clone());
    st.refresh_tokens.insert(refresh_token.clone(), user);
    Reply::Json(
        Status::Ok,
        json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": refresh_token,
            "id_token": id_token,
        }),
    )
}

#[rocket::get("/userinfo")]
fn userinfo_get(op: &State<Arc<Shared>>, meta: Meta) -> Reply {
    userinfo(op, &meta)
}

#[rocket::post("/userinfo")]
fn userinfo_post(op: &State<Arc<Shared>>, meta: Meta) -> Reply {
    userinfo(op, &meta)
}

fn userinfo(op: &Shared, meta: &Meta) -> Reply {
    let st = op.lock();
    if !st.behavior.userinfo_available {
        return Reply::Text(Status::NotFound, "no userinfo here".into());
    }
    let Some(user) = bearer(meta).and_then(|t| st.access_tokens.get(t)) else {
        return Reply::Challenge(
            json!({ "error": "invalid_token" }),
            "Bearer error=\"invalid_token\"".into(),
        );
    };
    let mut claims = Map::new();
    let sub = st.behavior.userinfo_sub.clone();
    claims.insert("sub".into(), json!(sub.unwrap_or(user.sub.clone())));
    user.profile_claims(&mut claims);
    Reply::Json(Status::Ok, Value::Object(claims))
}

#[rocket::get("/jwks")]
fn jwks(op: &State<Arc<Shared>>) -> Reply {
    let mut st = op.lock();
    st.jwks_fetches += 1;
    Reply::Json(Status::Ok, json!({ "keys": [public_jwk(st.key)] }))
}

#[rocket::get("/end_session")]
fn end_session_get(op: &State<Arc<Shared>>, uri: &Origin<'_>) -> Reply {
    end_session(op, uri.query().map(|q| q.as_str()).unwrap_or(""))
}

#[rocket::post("/end_session", data = "<body>")]
async fn end_session_post(op: &State<Arc<Shared>>, body: Data<'_>) -> Reply {
    let body = read_body(body).await;
    end_session(op, &body)
}

fn end_session(op: &Shared, query: &str) -> Reply {
    let (p, _) = parse_form(query);
    let mut st = op.lock();
    st.end_session_requests.push(p.clone());
    if !st.behavior.end_session {
        return Reply::Text(Status::NotFound, "no end_session here".into());
    }
    match p.get("post_logout_redirect_uri") {
        Some(to) => {
            let state: Vec<(&str, &str)> = p
                .get("state")
                .map(|s| ("state", s.as_str()))
                .into_iter()
                .collect();
            if state.is_empty() {
                Reply::Redirect(to.clone())
            } else {
                Reply::Redirect(with_query(to, &state))
            }
        }
        None => Reply::Text(Status::Ok, "signed out".into()),
    }
}
