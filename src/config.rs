//! Typed configuration read from Rocket's figment (`Rocket.toml`, `ROCKET_CONFIG`,
//! `ROCKET_*` variables), held as managed state so tests can build an app with any config.

use std::io::Write;
use std::path::{Path, PathBuf};

use rocket::figment::providers::{Env, Format, Serialized, Toml};
use rocket::figment::{Figment, Profile};
use serde::{Deserialize, Serialize};

/// Minimum password length NIST SP 800-63B rev. 4 allows when a password is not the
/// only factor; lower settings are refused at launch.
pub const PASSWORD_MIN_FLOOR: usize = 8;
/// Longest password accepted (in characters): generous for passphrases, bounded for cost.
pub const PASSWORD_MAX: usize = 1024;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    pub auth: AuthConfig,
    pub site: SiteConfig,
    /// Addresses or networks ("10.0.0.0/8") of reverse proxies whose `X-Forwarded-For`
    /// and `X-Forwarded-Proto` headers are believed. From anyone else those headers are
    /// ignored, so nobody can dodge throttling by sending them.
    pub trusted_proxies: Vec<String>,
    #[serde(skip)]
    pub proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SiteConfig {
    /// Shown in the header, page titles and the feed.
    pub title: String,
    /// The public base URL (e.g. "https://blog.example.com"), used for the feed's
    /// absolute links; when unset, taken from the request's Host header.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Any of "local" and "oidc".
    pub providers: Vec<String>,
    /// Whether anyone may create a local account at /signup.
    pub signup: bool,
    pub password_min_length: usize,
    pub argon2: Argon2Config,
    /// How many password hashes may run at once (each takes `memory_kib` of memory).
    pub hash_concurrency: usize,
    /// A browser-session login ends after this long without a request...
    pub session_idle_minutes: i64,
    /// ...and after this long in any case.
    pub session_max_hours: i64,
    /// A remember-me login ends after this long without a request...
    pub remember_idle_days: i64,
    /// ...and after this long in any case (also the cookie's lifetime).
    pub remember_days: i64,
    /// The OpenID provider, required when `providers` names "oidc".
    pub oidc: Option<OidcConfig>,
}

/// `[auth.oidc]`: one OpenID Connect provider (Okta, PlusAuth, Keycloak, ...).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OidcConfig {
    /// Exactly as the provider's discovery document publishes it (trailing slash included).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// This site's callback, `https://<host>/oidc/callback`, registered at the provider.
    pub redirect_url: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The login button reads "Log in with <display_name>".
    #[serde(default = "default_display_name")]
    pub display_name: String,
    /// When set, only people whose verified email is in one of these domains may log in.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// When set, only members of one of these groups may log in.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Members of any of these groups are admins; re-evaluated at every login.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Where the provider sends the browser after logging out there (registered at the
    /// provider); defaults to this site's home page.
    #[serde(default)]
    pub post_logout_redirect_url: Option<String>,
    /// The one algorithm ID tokens must be signed with (the client's registered one).
    #[serde(default = "default_alg")]
    pub id_token_signing_alg: String,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}
fn default_display_name() -> String {
    "single sign-on".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_alg() -> String {
    "RS256".into()
}

/// Signature algorithms an ID token may be pinned to: never "none".
pub const OIDC_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "HS256", "HS384",
    "HS512",
];

impl OidcConfig {
    fn check(&self) -> Result<(), String> {
        for (key, v) in [
            ("issuer", &self.issuer),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("redirect_url", &self.redirect_url),
        ] {
            if v.trim().is_empty() {
                return Err(format!("auth.oidc.{key}: must be set"));
            }
        }
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| format!("auth.oidc.issuer: not a URL ({e}): {:?}", self.issuer))?;
        if issuer.scheme() != "https" && !is_loopback(&issuer) {
            return Err(format!(
                "auth.oidc.issuer: must be https (http only on loopback), got {:?}",
                self.issuer
            ));
        }
        let redirect = url::Url::parse(&self.redirect_url).map_err(|e| {
            format!(
                "auth.oidc.redirect_url: not a URL ({e}): {:?}",
                self.redirect_url
            )
        })?;
        if redirect.path() != "/oidc/callback" || redirect.query().is_some() {
            return Err(format!(
                "auth.oidc.redirect_url: must end in /oidc/callback (quire's callback route), got {:?}",
                self.redirect_url
            ));
        }
        if let Some(p) = &self.post_logout_redirect_url {
            url::Url::parse(p).map_err(|e| {
                format!("auth.oidc.post_logout_redirect_url: not a URL ({e}): {p:?}")
            })?;
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err("auth.oidc.scopes: must include \"openid\"".into());
        }
        if !OIDC_ALGS.contains(&self.id_token_signing_alg.as_str()) {
            return Err(format!(
                "auth.oidc.id_token_signing_alg: {:?} is not one of {}",
                self.id_token_signing_alg,
                OIDC_ALGS.join(", ")
            ));
        }
        if self.groups_claim.trim().is_empty() {
            return Err("auth.oidc.groups_claim: must not be empty".into());
        }
        Ok(())
    }

    /// Where the provider should send the browser after logout.
    pub fn post_logout_url(&self) -> String {
        self.post_logout_redirect_url.clone().unwrap_or_else(|| {
            url::Url::parse(&self.redirect_url)
                .map(|u| u.origin().ascii_serialization() + "/")
                .unwrap_or_default()
        })
    }

    /// The back-channel logout URI to register at the provider.
    pub fn backchannel_logout_url(&self) -> String {
        url::Url::parse(&self.redirect_url)
            .map(|u| u.origin().ascii_serialization() + "/oidc/backchannel-logout")
            .unwrap_or_default()
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            title: "quire".into(),
            url: None,
        }
    }
}

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            providers: vec!["local".into()],
            signup: true,
            password_min_length: 15,
            argon2: Argon2Config::default(),
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            session_idle_minutes: 8 * 60,
            session_max_hours: 24,
            remember_idle_days: 14,
            remember_days: 30,
            oidc: None,
        }
    }
}

impl Config {
    /// Reads and checks the configuration; the error names the offending key.
    pub fn from_figment(figment: &Figment) -> Result<Config, String> {
        let mut config: Config = figment
            .extract()
            .map_err(|e| format!("configuration: {e}"))?;
        config.check()?;
        config.proxies = config
            .trusted_proxies
            .iter()
            .map(|p| {
                parse_net(p).ok_or_else(|| {
                    format!("trusted_proxies: {p:?} is not an IP address or network")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let a = &self.auth;
        if a.providers.is_empty() {
            return Err("auth.providers: name at least one of \"local\", \"oidc\"".into());
        }
        for p in &a.providers {
            if p != "local" && p != "oidc" {
                return Err(format!(
                    "auth.providers: unknown provider {p:?} (known: \"local\", \"oidc\")"
                ));
            }
        }
        if a.providers.iter().any(|p| p == "oidc") {
            match &a.oidc {
                Some(oidc) => oidc.check()?,
                None => return Err("auth.oidc: required when auth.providers names \"oidc\"".into()),
            }
        }
        if a.password_min_length < PASSWORD_MIN_FLOOR {
            return Err(format!(
                "auth.password_min_length: must be at least {PASSWORD_MIN_FLOOR}, got {}",
                a.password_min_length
            ));
        }
        if a.password_min_length > 128 {
            return Err("auth.password_min_length: must be at most 128".into());
        }
        if a.hash_concurrency == 0 {
            return Err("auth.hash_concurrency: must be at least 1".into());
        }
        argon2::Params::new(
            a.argon2.memory_kib,
            a.argon2.iterations,
            a.argon2.parallelism,
            None,
        )
        .map_err(|e| format!("auth.argon2: {e}"))?;
        for (key, v) in [
            ("auth.session_idle_minutes", a.session_idle_minutes),
            ("auth.session_max_hours", a.session_max_hours),
            ("auth.remember_idle_days", a.remember_idle_days),
            ("auth.remember_days", a.remember_days),
        ] {
            if v <= 0 {
                return Err(format!("{key}: must be positive"));
            }
        }
        Ok(())
    }
}

/// "10.0.0.0/8" or a single address ("10.0.0.1" as 10.0.0.1/32).
fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// Rocket's figment with quire's defaults beneath it: `Rocket.toml` (or `ROCKET_CONFIG`),
/// then `ROCKET_*` variables, over a SQLite file in the working directory.
pub fn figment() -> Figment {
    defaults()
        .merge(Toml::file(Env::var_or("ROCKET_CONFIG", "Rocket.toml")).nested())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(Profile::from_env_or(
            "ROCKET_PROFILE",
            rocket::Config::DEFAULT_PROFILE,
        ))
}

/// quire's defaults alone, read from no file or environment (tests start from these).
pub fn defaults() -> Figment {
    Figment::from(rocket::Config::default())
        .merge(Serialized::defaults(Config::default()))
        .merge(Serialized::default(
            "databases.quire.url",
            "sqlite://quire.sqlite?mode=rwc",
        ))
        .merge(Serialized::default("databases.quire.max_connections", 16))
        .merge(Serialized::default("databases.quire.connect_timeout", 5))
        .merge(Serialized::default("limits.form", "2 MiB"))
}

/// When no `secret_key` is configured, uses the one kept beside the SQLite database,
/// generating it (mode 0600) on first start, so sessions survive restarts.
/// A configured key always wins. With PostgreSQL, or an in-memory SQLite database,
/// there is nowhere to keep one: release then needs `secret_key` configured (instances
/// behind one load balancer must share it anyway).
pub fn with_secret_key(figment: Figment) -> Result<Figment, String> {
    // The base figment always holds Rocket's all-zero placeholder key.
    let configured = figment
        .extract_inner::<rocket::config::SecretKey>("secret_key")
        .is_ok_and(|k| !k.is_zero());
    if configured {
        return Ok(figment);
    }
    let url: String = figment
        .extract_inner("databases.quire.url")
        .unwrap_or_default();
    let Some(db_path) = sqlite_file(&url) else {
        return Ok(figment);
    };
    let key_path = secret_key_path(&db_path);
    let key = load_or_create_key(&key_path)
        .map_err(|e| format!("secret key file {}: {e}", key_path.display()))?;
    Ok(figment.merge(("secret_key", key)))
}

/// The file a `sqlite:` URL names, or None for other backends and in-memory databases.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    Some(PathBuf::from(path))
}

pub fn secret_key_path(db_path: &Path) -> PathBuf {
    let dir = db_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join("quire.secret_key")
}

fn load_or_create_key(path: &Path) -> std::io::Result<String> {
    use base64::Engine as _;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = [0u8; 64];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
    let fresh = base64::engine::general_purpose::STANDARD.encode(bytes);
    // create_new: when two processes start at once, one writes and both read its key.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(fresh.as_bytes())?;
            file.sync_all()?;
            Ok(fresh)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = std::fs::read_to_string(path)?;
            let existing = existing.trim();
            let valid = base64::engine::general_purpose::STANDARD
                .decode(existing)
                .is_ok_and(|k| k.len() == 64 || k.len() == 32);
            if !valid {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "does not hold a base64 key of 256 or 512 bits; remove it to generate a new one",
                ));
            }
            Ok(existing.to_string())
        }
        Err(e) => Err(e),
    }
}
