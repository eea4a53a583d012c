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

/// The most URLs one sitemap file may list (sitemaps.org).
pub const SITEMAP_MAX_URLS: usize = 50_000;

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
    /// `[mail]`: how quire sends mail (password reset, notices). None: no mail, and the
    /// pages that would send some say to contact the administrator instead.
    pub mail: Option<MailConfig>,
    /// `[media]`: limits on uploaded images.
    pub media: MediaConfig,
}

/// `[media]`: what an upload may be. Both bounds are checked before any pixel is decoded.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(default)]
pub struct MediaConfig {
    /// Largest file accepted, in bytes (default 20 MiB); the upload form's request limits
    /// follow it.
    pub max_bytes: u64,
    /// Most pixels (width x height) an image may declare (default 50 million).
    pub max_pixels: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_bytes: 20 << 20,
            max_pixels: 50_000_000,
        }
    }
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
    /// The IANA time zone (e.g. "Europe/Berlin") in which authors type a post's
    /// `publish_at` and the dashboard shows scheduled times. Default "UTC".
    #[serde(with = "timezone")]
    pub timezone: chrono_tz::Tz,
    /// The site's description for search engines and share cards on pages other than
    /// posts; "" for "Latest posts from <title>.".
    pub description: String,
    /// URLs per sitemap file; past this /sitemap.xml becomes an index of numbered
    /// sitemaps. 50 000 is the sitemaps.org limit.
    pub sitemap_max_urls: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthConfig {
    /// The ways of logging in, as "local" and "oidc".
    pub providers: Vec<ProviderId>,
    /// Whether anyone may create a local account at /signup.
    pub signup: bool,
    /// Whether a new local account (and a changed email) must be confirmed by a mailed
    /// link before it counts; needs `[mail]`.
    pub verify_email: bool,
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
    /// `[auth.mfa]`: second factors.
    pub mfa: MfaConfig,
}

/// `[auth.mfa]`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MfaConfig {
    /// Which local accounts must have a second factor before they get a session.
    pub require: MfaRequire,
}

/// `auth.mfa.require`: "none" (the default), "admins" or "all".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaRequire {
    #[default]
    None,
    Admins,
    All,
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

/// `[auth.oidc]`: one OpenID Connect provider (Okta, PlusAuth, Keycloak, ...), parsed
/// once at launch: URLs as `Url`, the algorithm as an enum, the secret unprintable. A
/// value that does not parse refuses the configuration with a message naming its key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "RawOidcConfig", into = "RawOidcConfig")]
pub struct OidcConfig {
    pub issuer: Issuer,
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// This site's callback, `https://<host>/oidc/callback`, registered at the provider.
    pub redirect_url: Url,
    pub scopes: Vec<String>,
    /// The login button reads "Log in with <display_name>".
    pub display_name: String,
    /// When set, only people whose verified email is in one of these domains may log in.
    pub allowed_email_domains: Vec<String>,
    /// When set, only members of one of these groups may log in.
    pub allowed_groups: Vec<String>,
    /// Members of any of these groups are admins; re-evaluated at every login.
    pub admin_groups: Vec<String>,
    pub groups_claim: String,
    /// Where the provider sends the browser after logging out there (registered at the
    /// provider); `None`: this site's home page.
    pub post_logout_redirect_url: Option<Url>,
    /// The one algorithm ID tokens must be signed with (the client's registered one).
    pub id_token_signing_alg: IdTokenAlg,
    /// How often an OIDC session's claims are checked again at the provider; a session
    /// that cannot be checked ends after this long.
    pub recheck_minutes: i64,
    /// RFC 8176 values the ID token's `amr` must all carry (e.g. ["mfa"]); empty: none.
    pub require_amr: Vec<String>,
    /// The same for accounts that are admins after this login's group evaluation; in
    /// place of `require_amr` for them (defaults to it).
    pub admin_require_amr: Vec<String>,
    /// Sent as `acr_values` in the authorization request (in order of preference).
    pub acr_values: Vec<String>,
}

/// `[auth.oidc]` as written, before parsing.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct RawOidcConfig {
    /// Exactly as the provider's discovery document publishes it (trailing slash included).
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_url: String,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    #[serde(default = "default_display_name")]
    display_name: String,
    #[serde(default)]
    allowed_email_domains: Vec<String>,
    #[serde(default)]
    allowed_groups: Vec<String>,
    #[serde(default)]
    admin_groups: Vec<String>,
    #[serde(default = "default_groups_claim")]
    groups_claim: String,
    #[serde(default)]
    post_logout_redirect_url: Option<String>,
    #[serde(default = "default_alg")]
    id_token_signing_alg: String,
    #[serde(default = "default_recheck_minutes")]
    recheck_minutes: i64,
    #[serde(default)]
    require_amr: Vec<String>,
    #[serde(default)]
    admin_require_amr: Option<Vec<String>>,
    #[serde(default)]
    acr_values: Vec<String>,
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
    IdTokenAlg::RS256.as_str().into()
}
fn default_recheck_minutes() -> i64 {
    15
}

/// The configured issuer: parsed, and kept exactly as written, because discovery's
/// `issuer` must equal it byte for byte (a parsed URL would add or keep a trailing slash
/// on its own terms).
#[derive(Clone, PartialEq, Eq)]
pub struct Issuer {
    url: Url,
    exact: String,
}

impl Issuer {
    /// The string as configured, for the byte-for-byte comparison and messages.
    pub fn as_str(&self) -> &str {
        &self.exact
    }

    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl std::fmt::Display for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.exact)
    }
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.exact, f)
    }
}

/// The client secret. Neither Debug nor Display prints it, so no log line or error
/// message can carry it; `expose` is for the token endpoint alone.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> ClientSecret {
        ClientSecret(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

impl std::fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Signature algorithms an ID token may be pinned to: there is deliberately no "none".
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenAlg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    HS256,
    HS384,
    HS512,
}

impl IdTokenAlg {
    pub const ALL: [IdTokenAlg; 11] = [
        IdTokenAlg::RS256,
        IdTokenAlg::RS384,
        IdTokenAlg::RS512,
        IdTokenAlg::PS256,
        IdTokenAlg::PS384,
        IdTokenAlg::PS512,
        IdTokenAlg::ES256,
        IdTokenAlg::ES384,
        IdTokenAlg::HS256,
        IdTokenAlg::HS384,
        IdTokenAlg::HS512,
    ];

    /// The JOSE name ("RS256"), as JWT headers carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            IdTokenAlg::RS256 => "RS256",
            IdTokenAlg::RS384 => "RS384",
            IdTokenAlg::RS512 => "RS512",
            IdTokenAlg::PS256 => "PS256",
            IdTokenAlg::PS384 => "PS384",
            IdTokenAlg::PS512 => "PS512",
            IdTokenAlg::ES256 => "ES256",
            IdTokenAlg::ES384 => "ES384",
            IdTokenAlg::HS256 => "HS256",
            IdTokenAlg::HS384 => "HS384",
            IdTokenAlg::HS512 => "HS512",
        }
    }
}

impl std::str::FromStr for IdTokenAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<IdTokenAlg, String> {
        IdTokenAlg::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = IdTokenAlg::ALL.iter().map(|a| a.as_str()).collect();
                format!("{s:?} is not one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for IdTokenAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<RawOidcConfig> for OidcConfig {
    type Error = String;

    fn try_from(raw: RawOidcConfig) -> Result<OidcConfig, String> {
        for (key, v) in [
            ("issuer", &raw.issuer),
            ("client_id", &raw.client_id),
            ("client_secret", &raw.client_secret),
            ("redirect_url", &raw.redirect_url),
        ] {
            if v.trim().is_empty() {
                return Err(format!("auth.oidc.{key}: must be set"));
            }
        }
        let issuer = Url::parse(&raw.issuer)
            .map_err(|e| format!("auth.oidc.issuer: not a URL ({e}): {:?}", raw.issuer))?;
        if issuer.scheme() != "https" && !is_loopback(&issuer) {
            return Err(format!(
                "auth.oidc.issuer: must be https (http only on loopback), got {:?}",
                raw.issuer
            ));
        }
        let redirect_url = Url::parse(&raw.redirect_url).map_err(|e| {
            format!(
                "auth.oidc.redirect_url: not a URL ({e}): {:?}",
                raw.redirect_url
            )
        })?;
        let callback = crate::web::paths::OIDC_CALLBACK;
        if redirect_url.path() != callback || redirect_url.query().is_some() {
            return Err(format!(
                "auth.oidc.redirect_url: must end in {callback} (quire's callback route), got {:?}",
                raw.redirect_url
            ));
        }
        let post_logout_redirect_url = raw
            .post_logout_redirect_url
            .as_deref()
            .map(|p| {
                Url::parse(p).map_err(|e| {
                    format!("auth.oidc.post_logout_redirect_url: not a URL ({e}): {p:?}")
                })
            })
            .transpose()?;
        if !raw.scopes.iter().any(|s| s == "openid") {
            return Err("auth.oidc.scopes: must include \"openid\"".into());
        }
        let id_token_signing_alg = raw
            .id_token_signing_alg
            .parse()
            .map_err(|e| format!("auth.oidc.id_token_signing_alg: {e}"))?;
        if raw.groups_claim.trim().is_empty() {
            return Err("auth.oidc.groups_claim: must not be empty".into());
        }
        if raw.recheck_minutes <= 0 {
            return Err("auth.oidc.recheck_minutes: must be positive".into());
        }
        let admin_require_amr = raw
            .admin_require_amr
            .unwrap_or_else(|| raw.require_amr.clone());
        for (key, list) in [
            ("require_amr", &raw.require_amr),
            ("admin_require_amr", &admin_require_amr),
            ("acr_values", &raw.acr_values),
        ] {
            // Both travel as space-separated lists (acr_values, the stored amr).
            if let Some(bad) = list
                .iter()
                .find(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(format!(
                    "auth.oidc.{key}: {bad:?} is not a value (no spaces, printable ASCII)"
                ));
            }
        }
        if admin_require_amr.is_empty() && !raw.require_amr.is_empty() {
            return Err(
                "auth.oidc.admin_require_amr: empty while require_amr is set, which would ask \
                 less of admins than of authors; leave it out to use require_amr"
                    .into(),
            );
        }
        Ok(OidcConfig {
            issuer: Issuer {
                url: issuer,
                exact: raw.issuer,
            },
            client_id: raw.client_id,
            client_secret: ClientSecret(raw.client_secret),
            redirect_url,
            scopes: raw.scopes,
            display_name: raw.display_name,
            allowed_email_domains: raw.allowed_email_domains,
            allowed_groups: raw.allowed_groups,
            admin_groups: raw.admin_groups,
            groups_claim: raw.groups_claim,
            post_logout_redirect_url,
            id_token_signing_alg,
            recheck_minutes: raw.recheck_minutes,
            require_amr: raw.require_amr,
            admin_require_amr,
            acr_values: raw.acr_values,
        })
    }
}

impl From<OidcConfig> for RawOidcConfig {
    fn from(c: OidcConfig) -> RawOidcConfig {
        RawOidcConfig {
            issuer: c.issuer.exact,
            client_id: c.client_id,
            client_secret: c.client_secret.0,
            redirect_url: c.redirect_url.into(),
            scopes: c.scopes,
            display_name: c.display_name,
            allowed_email_domains: c.allowed_email_domains,
            allowed_groups: c.allowed_groups,
            admin_groups: c.admin_groups,
            groups_claim: c.groups_claim,
            post_logout_redirect_url: c.post_logout_redirect_url.map(Into::into),
            id_token_signing_alg: c.id_token_signing_alg.as_str().into(),
            recheck_minutes: c.recheck_minutes,
            require_amr: c.require_amr,
            admin_require_amr: Some(c.admin_require_amr),
            acr_values: c.acr_values,
        }
    }
}

impl OidcConfig {
    /// This site's URL for a path of its own (from the web layer's routes), on the
    /// origin of `redirect_url`, the one public origin the provider knows.
    fn site_url(&self, path: &str) -> Url {
        let mut url = self.redirect_url.clone();
        url.set_path(path);
        url.set_query(None);
        url.set_fragment(None);
        url
    }

    /// Where the provider should send the browser after logout.
    pub fn post_logout_url(&self) -> Url {
        self.post_logout_redirect_url
            .clone()
            .unwrap_or_else(|| self.site_url(crate::web::paths::HOME))
    }

    /// The `amr` values an ID token must all carry: `admin_require_amr` for someone who
    /// is an admin after this login, `require_amr` otherwise. Empty: no requirement.
    pub fn required_amr(&self, is_admin: bool) -> &[String] {
        if is_admin {
            &self.admin_require_amr
        } else {
            &self.require_amr
        }
    }

    /// Whether a login must carry some `amr` (for anyone).
    pub fn requires_amr(&self) -> bool {
        !self.require_amr.is_empty() || !self.admin_require_amr.is_empty()
    }

    /// The back-channel logout URI to register at the provider.
    pub fn backchannel_logout_url(&self) -> Url {
        self.site_url(crate::web::paths::OIDC_BACKCHANNEL_LOGOUT)
    }
}

/// The authentication method reference values RFC 8176 registers.
pub const RFC8176_AMR: [&str; 20] = [
    "face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pwd", "rba", "retina",
    "sc", "sms", "swk", "tel", "user", "vbm", "wia",
];

impl AuthConfig {
    /// What is allowed but probably not meant, one sentence each, for the launch log
    /// and `quire doctor`.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(oidc) = self.active_oidc() else {
            return out;
        };
        for (key, list) in [
            ("require_amr", &oidc.require_amr),
            ("admin_require_amr", &oidc.admin_require_amr),
        ] {
            for v in list.iter().filter(|v| !RFC8176_AMR.contains(&v.as_str())) {
                out.push(format!(
                    "auth.oidc.{key}: {v:?} is not an RFC 8176 value; it is required as \
                     written (providers may use their own), but if it is a typo no login \
                     through the provider will succeed"
                ));
            }
        }
        if self.mfa.require != MfaRequire::None && !oidc.requires_amr() {
            out.push(
                "auth.mfa.require does not apply to logins through the OpenID provider: \
                 set auth.oidc.require_amr (e.g. [\"mfa\"]) to require its second factor"
                    .into(),
            );
        }
        out
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `[mail]`, parsed once at launch: the server as a typed endpoint, the sender as a
/// mailbox, the password unprintable. A value that does not parse refuses the
/// configuration with a message naming its key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "RawMailConfig", into = "RawMailConfig")]
pub struct MailConfig {
    pub server: SmtpServer,
    /// The sender of every mail ("Blog <blog@example.com>").
    pub from: lettre::message::Mailbox,
    /// Login at the server, when it asks for one.
    pub credentials: Option<SmtpCredentials>,
    /// PEM file of extra certificate authorities trusted for the server's certificate
    /// (beside Mozilla's roots), for a relay with a private or self-signed certificate.
    pub ca_file: Option<std::path::PathBuf>,
    /// The first wait before a failed delivery is tried again; it doubles with each
    /// further failure, up to an hour.
    pub retry_seconds: u64,
    /// How often each instance looks for queued mail that another instance queued.
    pub poll_seconds: u64,
}

/// Where mail goes and how the connection is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: no encryption; only to a relay on this machine.
    Plain,
    /// `smtp://...?tls=starttls`: upgraded with STARTTLS, certificate checked.
    StartTls,
    /// `smtps://`: TLS from the first byte, certificate checked.
    Tls,
}

/// The SMTP login. Debug prints the user but never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    pub user: String,
    password: ClientSecret,
}

impl SmtpCredentials {
    pub fn password(&self) -> &str {
        self.password.expose()
    }
}

impl std::fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `[mail]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct RawMailConfig {
    smtp_url: String,
    from: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default = "default_retry_seconds")]
    retry_seconds: u64,
    #[serde(default = "default_poll_seconds")]
    poll_seconds: u64,
}

fn default_retry_seconds() -> u64 {
    30
}
fn default_poll_seconds() -> u64 {
    10
}

impl TryFrom<RawMailConfig> for MailConfig {
    type Error = String;

    fn try_from(raw: RawMailConfig) -> Result<MailConfig, String> {
        let url = Url::parse(raw.smtp_url.trim()).map_err(|e| {
            format!(
                "mail.smtp_url: not a URL ({e}): {:?} (write smtp://host:port, \
                 smtp://host:port?tls=starttls or smtps://host:port)",
                raw.smtp_url
            )
        })?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.to_string());
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => SmtpSecurity::Plain,
            ("smtp", Some("starttls")) => SmtpSecurity::StartTls,
            ("smtps", None | Some("tls")) => SmtpSecurity::Tls,
            (scheme, tls) => {
                return Err(format!(
                    "mail.smtp_url: {scheme}:// with tls={tls:?} is not one of smtp://, \
                     smtp://...?tls=starttls, smtps://"
                ))
            }
        };
        // smtp:// is not a scheme the URL standard knows, so its host stays text.
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']'),
            _ => return Err("mail.smtp_url: names no host".into()),
        }
        .to_ascii_lowercase();
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if security == SmtpSecurity::Plain && !loopback {
            return Err(format!(
                "mail.smtp_url: plain smtp:// only to a relay on this machine (localhost); \
                 for {host} use smtp://{host}?tls=starttls or smtps://{host}"
            ));
        }
        let port = url.port().unwrap_or(match security {
            SmtpSecurity::Plain => 25,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
        });
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        let user = raw
            .user
            .filter(|u| !u.is_empty())
            .or_else(|| (!url.username().is_empty()).then(|| decode(url.username())));
        let password = raw
            .password
            .filter(|p| !p.is_empty())
            .or_else(|| url.password().map(decode));
        let credentials = match (user, password) {
            (Some(user), Some(password)) => Some(SmtpCredentials {
                user,
                password: ClientSecret::new(password),
            }),
            (None, None) => None,
            _ => return Err("mail.user and mail.password: set both or neither".into()),
        };
        let from: lettre::message::Mailbox = raw.from.trim().parse().map_err(|e| {
            format!(
                "mail.from: not a mail address ({e}): {:?} (write \"Blog <blog@example.com>\")",
                raw.from
            )
        })?;
        let ca_file = raw
            .ca_file
            .filter(|p| !p.trim().is_empty())
            .map(std::path::PathBuf::from);
        if raw.retry_seconds == 0 || raw.poll_seconds == 0 {
            return Err("mail.retry_seconds and mail.poll_seconds: must be positive".into());
        }
        Ok(MailConfig {
            server: SmtpServer {
                host,
                port,
                security,
            },
            from,
            credentials,
            ca_file,
            retry_seconds: raw.retry_seconds,
            poll_seconds: raw.poll_seconds,
        })
    }
}

impl From<MailConfig> for RawMailConfig {
    fn from(c: MailConfig) -> RawMailConfig {
        let s = &c.server;
        let smtp_url = match s.security {
            SmtpSecurity::Plain => format!("smtp://{}:{}", s.host, s.port),
            SmtpSecurity::StartTls => format!("smtp://{}:{}?tls=starttls", s.host, s.port),
            SmtpSecurity::Tls => format!("smtps://{}:{}", s.host, s.port),
        };
        RawMailConfig {
            smtp_url,
            from: c.from.to_string(),
            user: c.credentials.as_ref().map(|c| c.user.clone()),
            password: c.credentials.as_ref().map(|c| c.password().to_string()),
            ca_file: c.ca_file.map(|p| p.display().to_string()),
            retry_seconds: c.retry_seconds,
            poll_seconds: c.poll_seconds,
        }
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
            timezone: chrono_tz::Tz::UTC,
            description: String::new(),
            sitemap_max_urls: SITEMAP_MAX_URLS,
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
            verify_email: false,
            password_min_length: 15,
            argon2: Argon2Config::default(),
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            session_idle_minutes: 8 * 60,
            session_max_hours: 24,
            remember_idle_days: 14,
            remember_days: 30,
            oidc: None,
            mfa: MfaConfig::default(),
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
        if self.mail.is_some() && self.site.url.is_none() {
            return Err("site.url: required when [mail] is set: mailed links are absolute".into());
        }
        if self.media.max_bytes == 0 || self.media.max_bytes > 1 << 30 {
            return Err("media.max_bytes: must be from 1 to 1073741824 (1 GiB)".into());
        }
        if self.media.max_pixels == 0 || self.media.max_pixels > 268_435_456 {
            return Err("media.max_pixels: must be from 1 to 268435456 (16384 x 16384)".into());
        }
        if !(1..=SITEMAP_MAX_URLS).contains(&self.site.sitemap_max_urls) {
            return Err(format!(
                "site.sitemap_max_urls: must be from 1 to {SITEMAP_MAX_URLS}, got {}",
                self.site.sitemap_max_urls
            ));
        }
        let a = &self.auth;
        if a.verify_email && self.mail.is_none() {
            return Err(
                "auth.verify_email: needs [mail] (mail.smtp_url and mail.from) to send \
                 the confirmation links; configure mail or set verify_email = false"
                    .into(),
            );
        }
        if a.providers.is_empty() {
            return Err("auth.providers: name at least one of \"local\", \"oidc\"".into());
        }
        if a.uses(ProviderId::Passkey) {
            return Err(
                "auth.providers: \"passkey\" is not listed: passkeys come with \"local\" \
                 (any local account may add them on /account/security)"
                    .into(),
            );
        }
        if a.uses(ProviderId::Oidc) && a.oidc.is_none() {
            return Err("auth.oidc: required when auth.providers names \"oidc\"".into());
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

/// `site.timezone`: an IANA zone name ("Europe/Berlin"), held as the zone itself.
mod timezone {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.trim().parse().map_err(|_| {
            D::Error::custom(format!(
                "site.timezone: {name:?} is not an IANA time zone name (such as \"UTC\" or \"Europe/Berlin\")"
            ))
        })
    }

    pub fn serialize<S: Serializer>(tz: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
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

    fn mail(url: &str) -> Result<MailConfig, String> {
        Config::from_figment(
            &defaults()
                .merge(("site.url", "https://blog.example.com"))
                .merge(("mail.smtp_url", url))
                .merge(("mail.from", "Blog <blog@example.com>")),
        )
        .map(|c| c.mail.expect("[mail] is set"))
    }

    #[test]
    fn smtp_urls_name_the_connection_security_and_default_ports() {
        let m = mail("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(m.server.security, SmtpSecurity::Plain);
        assert_eq!((m.server.host.as_str(), m.server.port), ("127.0.0.1", 2525));
        let m = mail("smtp://mail.example.com?tls=starttls").unwrap();
        assert_eq!(m.server.security, SmtpSecurity::StartTls);
        assert_eq!(m.server.port, 587);
        let m = mail("smtps://u%40x:p%2Bq+r@mail.example.com").unwrap();
        assert_eq!((m.server.security, m.server.port), (SmtpSecurity::Tls, 465));
        let creds = m.credentials.unwrap();
        assert_eq!((creds.user.as_str(), creds.password()), ("u@x", "p+q+r"));
        assert!(!format!("{creds:?}").contains("p+q"));
        assert!(mail("smtp://localhost").is_ok());
        for bad in [
            "smtp://mail.example.com",
            "http://x",
            "smtp://x?tls=maybe",
            "nope",
        ] {
            let err = mail(bad).unwrap_err();
            assert!(err.contains("mail.smtp_url"), "{bad}: {err}");
        }
        assert!(Config::from_figment(&defaults()).unwrap().mail.is_none());
    }

    fn oidc(extra: &[(&str, Vec<&str>)]) -> Result<Config, String> {
        let mut f = defaults()
            .merge(("auth.providers", ["oidc"]))
            .merge(("auth.oidc.issuer", "https://idp.example.com"))
            .merge(("auth.oidc.client_id", "c"))
            .merge(("auth.oidc.client_secret", "s"))
            .merge((
                "auth.oidc.redirect_url",
                "https://blog.example.com/oidc/callback",
            ));
        for (k, v) in extra {
            f = f.merge((*k, v.clone()));
        }
        Config::from_figment(&f)
    }

    #[test]
    fn admins_default_to_require_amr_and_unregistered_values_are_warned_of() {
        let c = oidc(&[("auth.oidc.require_amr", vec!["mfa"])]).unwrap();
        let o = c.auth.active_oidc().unwrap();
        assert_eq!(o.required_amr(true), ["mfa".to_string()]);
        assert!(c.auth.warnings().is_empty(), "{:?}", c.auth.warnings());
        let c = oidc(&[
            ("auth.oidc.require_amr", vec!["mfa"]),
            ("auth.oidc.admin_require_amr", vec!["hwk", "ngcmfa"]),
        ])
        .unwrap();
        let o = c.auth.active_oidc().unwrap();
        assert_eq!(o.required_amr(false), ["mfa".to_string()]);
        assert_eq!(o.required_amr(true).len(), 2);
        let warnings = c.auth.warnings();
        assert!(
            warnings.len() == 1 && warnings[0].contains("\"ngcmfa\""),
            "{warnings:?}"
        );
        let none = oidc(&[]).unwrap();
        assert!(!none.auth.active_oidc().unwrap().requires_amr());
        let err = oidc(&[("auth.oidc.acr_values", vec!["a b"])]).unwrap_err();
        assert!(err.contains("auth.oidc.acr_values"), "{err}");
    }

    #[test]
    fn media_limits_have_safe_defaults_and_bounds() {
        let config = Config::from_figment(&defaults()).unwrap();
        assert_eq!(config.media.max_bytes, 20 << 20);
        assert_eq!(config.media.max_pixels, 50_000_000);
        assert_eq!(
            parse("media.max_bytes", 1024).unwrap().media.max_bytes,
            1024
        );
        for (key, bad) in [("media.max_bytes", 0u64), ("media.max_pixels", 1 << 40)] {
            let err = parse(key, bad).unwrap_err();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn site_timezone_is_read_as_an_iana_zone() {
        let config = Config::from_figment(&defaults()).unwrap();
        assert_eq!(config.site.timezone, chrono_tz::Tz::UTC);
        let config = parse("site.timezone", "Europe/Berlin").unwrap();
        assert_eq!(config.site.timezone, chrono_tz::Tz::Europe__Berlin);
        for bad in ["Mars/Olympus", "", "CEST+1"] {
            let err = parse("site.timezone", bad).unwrap_err();
            assert!(err.contains("site.timezone"), "{err}");
        }
    }
}
