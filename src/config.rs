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
            if p != "local" {
                return Err(format!(
                    "auth.providers: unknown provider {p:?} (known: \"local\")"
                ));
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
