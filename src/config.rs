//! Typed configuration read from Rocket's figment (`Rocket.toml`, `ROCKET_CONFIG`,
//! `ROCKET_*` variables), held as managed state so tests can build an app with any config.
//! Everything is parsed into its type here, once, at launch: provider names, URLs and
//! proxy networks reach the rest of quire already checked.

use std::net::IpAddr;

use ipnet::IpNet;
use rocket::figment::providers::{Env, Format, Serialized, Toml};
use rocket::figment::{Figment, Profile};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::ProviderId;

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
    /// Reverse proxies ("10.0.0.0/8", or one address) whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` headers are believed. From anyone else those headers are
    /// ignored, so nobody can dodge throttling by sending them.
    #[serde(with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SiteConfig {
    /// Shown in the header, page titles and the feed.
    pub title: String,
    /// The public base URL (e.g. "https://blog.example.com"), used for the feed's
    /// absolute links; when unset, taken from the request's Host header.
    #[serde(with = "optional_url")]
    pub url: Option<Url>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthConfig {
    /// The ways of logging in, as "local" and "oidc".
    pub providers: Vec<ProviderId>,
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

impl AuthConfig {
    /// Whether `auth.providers` names this provider.
    pub fn uses(&self, provider: ProviderId) -> bool {
        self.providers.contains(&provider)
    }

    /// The OpenID provider's settings when `auth.providers` names "oidc"; None otherwise,
    /// even when an `[auth.oidc]` table is present.
    pub fn active_oidc(&self) -> Option<&OidcConfig> {
        self.oidc.as_ref().filter(|_| self.uses(ProviderId::Oidc))
    }
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
            providers: vec![ProviderId::Local],
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
        let config: Config = figment
            .extract()
            .map_err(|e| format!("configuration: {e}"))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let a = &self.auth;
        if a.providers.is_empty() {
            return Err("auth.providers: name at least one of \"local\", \"oidc\"".into());
        }
        if a.uses(ProviderId::Oidc) {
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

/// `trusted_proxies` as written ("10.0.0.0/8", or one address as "10.0.0.1") and as held.
mod networks {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{parse_net, IpNet};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|p| {
                parse_net(p).ok_or_else(|| {
                    D::Error::custom(format!(
                        "trusted_proxies: {p:?} is not an IP address or network"
                    ))
                })
            })
            .collect()
    }

    pub fn serialize<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(nets.iter().map(|n| n.to_string()))
    }
}

/// `site.url`: unset, empty (the same) or an absolute URL.
mod optional_url {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Url;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) if !s.trim().is_empty() => Url::parse(s.trim())
                .map(Some)
                .map_err(|e| D::Error::custom(format!("site.url: not a URL ({e}): {s:?}"))),
            _ => Ok(None),
        }
    }

    pub fn serialize<S: Serializer>(url: &Option<Url>, s: S) -> Result<S::Ok, S::Error> {
        match url {
            Some(u) => s.serialize_some(u.as_str()),
            None => s.serialize_none(),
        }
    }
}

/// "10.0.0.0/8" or a single address ("10.0.0.1" as 10.0.0.1/32).
fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(key: &str, value: impl Serialize) -> Result<Config, String> {
        Config::from_figment(&defaults().merge((key, value)))
    }

    #[test]
    fn trusted_proxies_are_read_as_networks() {
        let config = parse("trusted_proxies", ["10.0.0.1", " 192.168.0.0/16 ", "::1"]).unwrap();
        let trusted = |ip: &str| {
            let ip: IpAddr = ip.parse().unwrap();
            config.trusted_proxies.iter().any(|n| n.contains(&ip))
        };
        assert!(trusted("10.0.0.1") && trusted("192.168.44.3") && trusted("::1"));
        assert!(!trusted("10.0.0.2") && !trusted("192.169.0.1"));
        for bad in ["10.0.0.0/33", "proxy.internal", ""] {
            let err = parse("trusted_proxies", [bad]).unwrap_err();
            assert!(
                err.contains("trusted_proxies") && err.contains(bad),
                "{err}"
            );
        }
    }

    #[test]
    fn providers_are_read_by_name() {
        let config = parse("auth.providers", ["oidc", "local"]);
        // "oidc" without [auth.oidc] is refused for that reason, not for its name.
        assert!(config.unwrap_err().starts_with("auth.oidc:"));
        let config = parse("auth.providers", ["local"]).unwrap();
        assert!(config.auth.uses(ProviderId::Local) && !config.auth.uses(ProviderId::Oidc));
        assert!(config.auth.active_oidc().is_none());
        let err = parse("auth.providers", ["ldap"]).unwrap_err();
        assert!(
            err.contains("auth.providers") && err.contains("\"ldap\""),
            "{err}"
        );
    }

    #[test]
    fn site_url_is_read_as_a_url() {
        let config = parse("site.url", "https://Blog.Example.com/notes/").unwrap();
        let url = config.site.url.unwrap();
        assert_eq!(url.as_str(), "https://blog.example.com/notes/");
        assert!(parse("site.url", "").unwrap().site.url.is_none());
        assert!(Config::from_figment(&defaults())
            .unwrap()
            .site
            .url
            .is_none());
        let err = parse("site.url", "blog.example.com").unwrap_err();
        assert!(err.contains("site.url"), "{err}");
    }
}
