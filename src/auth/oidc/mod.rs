//! Login through an OpenID Connect provider: authorization code flow with PKCE (S256),
//! state and nonce, ID token verified by the openidconnect crate plus what it leaves to
//! the relying party (azp, iat bounds, at_hash, the pinned algorithm), userinfo merged,
//! RP-initiated and back-channel logout. Nothing is fetched at launch: an IdP that is
//! down never keeps the blog from starting, and login works once it is back.
//!
//! One concern a file, the protocol adapter apart from the application's rules:
//! `discovery` (the provider's metadata and keys, cached), `flow` (begin, callback, token
//! and userinfo checks), `claims` (what the claims say and who is admitted: pure
//! functions), `logout` (RP-initiated and back-channel), `at_rest` (the tokens kept with a session,
//! sealed) and `doctor` (`quire doctor`).

mod at_rest;
mod claims;
mod discovery;
mod doctor;
mod flow;
mod logout;
mod recheck;

use std::time::Duration;

use base64::Engine as _;
use openidconnect::core::{CoreClient, CoreJwsSigningAlgorithm};
use openidconnect::{ClientId, EndpointMaybeSet, EndpointNotSet, EndpointSet, RedirectUrl};
use serde_json::Value;

pub use claims::{amr_values, amr_words, missing_amr, Admission, Policy, Profile};
pub use discovery::{ExtraMetadata, Metadata, DISCOVERY_RETRY};
pub use doctor::{Check, CheckStatus, DoctorReport};
pub use flow::{Callback, OidcLogin, Pending, CODE_LIMIT, LOGIN_TTL, RATE_WINDOW, START_LIMIT};
pub use logout::{check_logout_claims, LogoutTarget};
pub use recheck::Recheck;

use super::{IdentityProvider, LoginEntry};
use crate::config::OidcConfig;
use crate::domain::ProviderId;
use crate::keys::{Purpose, SecretBox};

/// Allowed clock difference with the IdP.
const SKEW: i64 = 60;

/// The client as built from discovery: authorization endpoint set, token and userinfo
/// endpoints as the provider published them (or not).
type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a login through the IdP did not complete. `message` is for the person; the
/// reason for the log comes with it.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The IdP could not be reached or answered nonsense at discovery.
    #[error("sign-in provider unavailable: {0}")]
    Unavailable(String),
    /// The callback of this browser's login carried an error (access_denied, ...):
    /// `code` when it is one of the registered codes, which alone may be shown; the
    /// description, escaped for the log, is never shown.
    #[error("the sign-in provider answered {}: {description}", code.unwrap_or("an unregistered error code"))]
    Idp {
        code: Option<&'static str>,
        description: String,
    },
    /// Too many logins started, or codes refused, for this client lately.
    #[error("too many sign-in attempts from this client")]
    Throttled,
    /// The person proved who they are but may not log in here.
    #[error("refused: {0}")]
    Refused(String),
    /// The ID token's `amr` lacks values this site requires (of admins when `admin`):
    /// the person signed in at the provider, but not strongly enough for here.
    #[error("ID token of subject {subject:?} has amr {amr:?}, lacking {missing:?} required{}", if *admin { " of admins" } else { "" })]
    Assurance {
        subject: String,
        amr: Vec<String>,
        missing: Vec<String>,
        admin: bool,
    },
    /// A check failed; the reason is logged, not shown.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Internal(#[from] crate::error::Error),
}

/// The error codes of OAuth 2.0 (RFC 6749 4.1.2.1) and OpenID Connect Core (3.1.2.6)
/// an authorization response may carry. Anything else is someone's free text.
const IDP_ERROR_CODES: &[&str] = &[
    "access_denied",
    "invalid_request",
    "unauthorized_client",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
];

impl OidcError {
    /// The error of an authorization response, from its `error` and
    /// `error_description` parameters: the code kept only when it is a registered one,
    /// the rest escaped for the log.
    pub fn idp(error: &str, description: Option<&str>) -> OidcError {
        let code = IDP_ERROR_CODES.iter().copied().find(|c| *c == error);
        let mut description = description.unwrap_or("").to_string();
        if code.is_none() {
            description = format!("error={error:?} {description}");
        }
        OidcError::Idp {
            code,
            description: log_safe(&description),
        }
    }
}

/// `s` fit for one log line: control and bidirectional-override characters escaped (so
/// nobody can forge log lines or reorder them on screen), at most 500 characters.
pub fn log_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(500));
    for c in s.chars().take(500) {
        let sneaky = c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if sneaky {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

impl From<sqlx::Error> for OidcError {
    fn from(e: sqlx::Error) -> Self {
        OidcError::Internal(e.into())
    }
}

pub struct OidcProvider {
    pub cfg: OidcConfig,
    http: reqwest::Client,
    alg: CoreJwsSigningAlgorithm,
    discovery: discovery::Cache,
    /// Seals the tokens kept with sessions (`at_rest`).
    tokens: SecretBox,
}

impl OidcProvider {
    pub fn new(cfg: &OidcConfig) -> Result<OidcProvider, String> {
        // Following redirects would let a compromised or misconfigured endpoint send
        // our client secret or codes elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("auth.oidc: HTTP client: {e}"))?;
        let alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(Value::String(cfg.id_token_signing_alg.as_str().into()))
                .map_err(|e| format!("auth.oidc.id_token_signing_alg: {e}"))?;
        Ok(OidcProvider {
            cfg: cfg.clone(),
            http,
            alg,
            discovery: discovery::Cache::default(),
            tokens: SecretBox::random(Purpose::OidcTokens),
        })
    }

    /// The client for `metadata`, with this site's redirect URI.
    fn client(&self, metadata: &Metadata) -> OidcClient {
        CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.cfg.client_id.clone()),
            Some(openidconnect::ClientSecret::new(
                self.cfg.client_secret.expose().to_string(),
            )),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.cfg.redirect_url.clone()))
    }

    /// What the admission rules are, from the configuration.
    fn policy(&self) -> Policy<'_> {
        Policy {
            allowed_email_domains: &self.cfg.allowed_email_domains,
            allowed_groups: &self.cfg.allowed_groups,
            admin_groups: &self.cfg.admin_groups,
        }
    }
}

/// The JSON payload of a JWT, unverified: only call on a token already verified.
fn jwt_payload(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.is_object().then_some(value)
}

#[rocket::async_trait]
impl IdentityProvider for OidcProvider {
    fn id(&self) -> ProviderId {
        ProviderId::Oidc
    }

    fn login_entry(&self) -> LoginEntry {
        LoginEntry::Redirect {
            label: self.cfg.display_name.clone(),
        }
    }

    async fn after_logout(&self, id_token: Option<&str>) -> Option<String> {
        self.end_session_url(id_token.unwrap_or("")).await
    }
}
