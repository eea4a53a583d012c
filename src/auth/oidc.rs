//! Login through an OpenID Connect provider: authorization code flow with PKCE (S256),
//! state and nonce, ID token verified by the openidconnect crate plus what it leaves to
//! the relying party (azp, iat bounds, at_hash, the pinned algorithm), userinfo merged,
//! RP-initiated and back-channel logout. Nothing is fetched at launch: an IdP that is
//! down never keeps the blog from starting, and login works once it is back.

use std::time::Duration;

use base64::Engine as _;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreIdToken, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AuthType, AuthenticationFlow, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, JsonWebKey, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope,
    SignatureVerificationError, TokenResponse,
};
use rocket::tokio::sync::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Identity, IdentityProvider, LoginEntry};
use crate::config::OidcConfig;
use crate::db::users::{self, OidcIdentity};
use crate::db::{now, sessions, used_once, Pool};
use crate::domain::ProviderId;
use crate::error::chain as error_chain;
use crate::token;

/// How long a login may take between leaving for the IdP and coming back.
pub const LOGIN_TTL: i64 = 10 * 60;
/// Allowed clock difference with the IdP.
const SKEW: i64 = 60;
/// Discovery is refreshed after this long.
const DISCOVERY_TTL: i64 = 60 * 60;
/// An unknown key id refetches the JWKS at most this often (a forged kid must not let
/// anyone make us hammer the IdP).
const JWKS_REFETCH_EVERY: i64 = 30;
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExtraMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_supported: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Why a login through the IdP did not complete. `message` is for the person; the
/// reason for the log comes with it.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The IdP could not be reached or answered nonsense at discovery.
    #[error("sign-in provider unavailable: {0}")]
    Unavailable(String),
    /// The IdP reported an error on the callback (access_denied, ...).
    #[error("the sign-in provider answered {error}: {description}")]
    Idp { error: String, description: String },
    /// The person proved who they are but may not log in here.
    #[error("refused: {0}")]
    Refused(String),
    /// A check failed; the reason is logged, not shown.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Internal(#[from] crate::error::Error),
}

impl From<sqlx::Error> for OidcError {
    fn from(e: sqlx::Error) -> Self {
        OidcError::Internal(e.into())
    }
}

/// What travels in the short-lived pre-login cookie: everything needed to finish the
/// login, so any instance can finish a login another one started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub next: String,
    pub created_at: i64,
}

/// A completed OIDC login.
pub struct OidcLogin {
    pub identity: Identity,
    pub id_token: String,
    pub sid: String,
}

struct Discovered {
    metadata: Metadata,
    fetched_at: i64,
}

pub struct OidcProvider {
    pub cfg: OidcConfig,
    http: reqwest::Client,
    alg: CoreJwsSigningAlgorithm,
    cache: RwLock<Option<Discovered>>,
    last_jwks_fetch: Mutex<i64>,
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
            serde_json::from_value(Value::String(cfg.id_token_signing_alg.clone()))
                .map_err(|e| format!("auth.oidc.id_token_signing_alg: {e}"))?;
        Ok(OidcProvider {
            cfg: cfg.clone(),
            http,
            alg,
            cache: RwLock::new(None),
            last_jwks_fetch: Mutex::new(0),
        })
    }

    /// The discovery document's URL for the configured issuer.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.cfg.issuer.trim_end_matches('/')
        )
    }

    /// Fetches discovery and the JWKS. The published issuer must equal the configured
    /// one byte for byte; a mismatch is reported with both strings.
    pub async fn discover(&self) -> Result<Metadata, OidcError> {
        let url = self.discovery_url();
        let doc: Value = self.get_json(&url).await?;
        let published = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if published != self.cfg.issuer {
            return Err(OidcError::Unavailable(format!(
                "issuer mismatch: auth.oidc.issuer is {:?} but {url} publishes {:?}{}",
                self.cfg.issuer,
                published,
                if published.trim_end_matches('/') == self.cfg.issuer.trim_end_matches('/') {
                    " (they differ only in a trailing slash: copy the published one exactly)"
                } else {
                    ""
                }
            )));
        }
        let metadata: Metadata = serde_json::from_value(doc)
            .map_err(|e| OidcError::Unavailable(format!("discovery document of {url}: {e}")))?;
        let jwks = self.fetch_jwks(&metadata).await?;
        // Not counted against the unknown-kid refetch limit: an OP that rotates its key
        // right after quire cached the old one must be followed at once, not after
        // JWKS_REFETCH_EVERY of refused logins.
        Ok(metadata.set_jwks(jwks))
    }

    async fn fetch_jwks(&self, metadata: &Metadata) -> Result<CoreJsonWebKeySet, OidcError> {
        let url = metadata.jwks_uri().url().to_string();
        let value: Value = self.get_json(&url).await?;
        serde_json::from_value(value)
            .map_err(|e| OidcError::Unavailable(format!("JWKS at {url}: {e}")))
    }

    async fn get_json(&self, url: &str) -> Result<Value, OidcError> {
        let res = self
            .http
            .get(url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("GET {url}: {e}")))?;
        if !res.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "GET {url}: HTTP {}",
                res.status()
            )));
        }
        res.json()
            .await
            .map_err(|e| OidcError::Unavailable(format!("GET {url}: not JSON: {e}")))
    }

    /// The provider's metadata, from the cache while fresh.
    pub async fn metadata(&self) -> Result<Metadata, OidcError> {
        if let Some(d) = self.cache.read().await.as_ref() {
            if now() - d.fetched_at < DISCOVERY_TTL {
                return Ok(d.metadata.clone());
            }
        }
        match self.discover().await {
            Ok(metadata) => {
                *self.cache.write().await = Some(Discovered {
                    metadata: metadata.clone(),
                    fetched_at: now(),
                });
                Ok(metadata)
            }
            Err(e) => {
                // A stale document beats none while the IdP is briefly unreachable.
                if let Some(d) = self.cache.read().await.as_ref() {
                    log::warn!("OIDC discovery refresh failed, using the cached document: {e}");
                    return Ok(d.metadata.clone());
                }
                Err(e)
            }
        }
    }

    /// Refetches the JWKS after an unknown key id, at most every `JWKS_REFETCH_EVERY`
    /// seconds. Returns the refreshed metadata, or None when rate-limited.
    async fn refresh_jwks(&self) -> Result<Option<Metadata>, OidcError> {
        {
            let mut last = self.last_jwks_fetch.lock().await;
            if now() - *last < JWKS_REFETCH_EVERY {
                return Ok(None);
            }
            *last = now();
        }
        let metadata = self.metadata().await?;
        let jwks = self.fetch_jwks(&metadata).await?;
        let metadata = metadata.set_jwks(jwks);
        *self.cache.write().await = Some(Discovered {
            metadata: metadata.clone(),
            fetched_at: now(),
        });
        Ok(Some(metadata))
    }

    /// The token endpoint authentication method: exactly one, as discovery advertises;
    /// client_secret_basic preferred (and the default when nothing is advertised).
    pub fn auth_type(metadata: &Metadata) -> Result<AuthType, String> {
        let Some(methods) = metadata.token_endpoint_auth_methods_supported() else {
            return Ok(AuthType::BasicAuth);
        };
        if methods.contains(&CoreClientAuthMethod::ClientSecretBasic) {
            Ok(AuthType::BasicAuth)
        } else if methods.contains(&CoreClientAuthMethod::ClientSecretPost) {
            Ok(AuthType::RequestBody)
        } else {
            Err(format!(
                "the provider supports neither client_secret_basic nor client_secret_post (it lists {})",
                serde_json::to_string(methods).unwrap_or_default()
            ))
        }
    }

    fn redirect_url(&self) -> Result<RedirectUrl, OidcError> {
        RedirectUrl::new(self.cfg.redirect_url.clone())
            .map_err(|e| OidcError::Failed(format!("redirect_url: {e}")))
    }

    /// Starts a login: the URL to send the browser to, and what to keep in the
    /// pre-login cookie.
    pub async fn begin(&self, next: &str) -> Result<(String, Pending), OidcError> {
        let metadata = self.metadata().await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.cfg.client_id.clone()),
            Some(ClientSecret::new(self.cfg.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect_url()?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.cfg.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next: next.to_string(),
            created_at: now(),
        };
        Ok((url.to_string(), pending))
    }

    /// Finishes a login from the callback's parameters and the pre-login cookie.
    pub async fn complete(
        &self,
        db: &Pool,
        callback: &Callback,
        pending: &Pending,
    ) -> Result<OidcLogin, OidcError> {
        if let Some(error) = &callback.error {
            return Err(OidcError::Idp {
                error: error.clone(),
                description: callback.error_description.clone().unwrap_or_default(),
            });
        }
        let state = callback.state.as_deref().unwrap_or("");
        if !token::constant_eq(state, &pending.state) {
            return Err(OidcError::Failed(
                "state does not match the login this browser started".into(),
            ));
        }
        if now() - pending.created_at > LOGIN_TTL {
            return Err(OidcError::Failed("the login took too long".into()));
        }
        let code = callback
            .code
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OidcError::Failed("no code".into()))?;
        // Single use across instances: the cookie is removed too, but a copy must not work.
        let key = format!("oidc-state:{}", token::hash(&pending.state));
        if !used_once::claim(db, &key, pending.created_at + LOGIN_TTL, now()).await? {
            return Err(OidcError::Failed(
                "this login response was already used".into(),
            ));
        }

        let mut metadata = self.metadata().await?;
        let auth_type = Self::auth_type(&metadata).map_err(OidcError::Failed)?;
        let userinfo_url = metadata.userinfo_endpoint().map(|u| u.url().to_string());
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.cfg.client_id.clone()),
            Some(ClientSecret::new(self.cfg.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect_url()?)
        .set_auth_type(auth_type);
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Failed(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::Request(e) => {
                    OidcError::Unavailable(format!("token endpoint: {e}"))
                }
                e => OidcError::Failed(format!("token endpoint: {}", error_chain(&e))),
            })?;
        let id_token: CoreIdToken = token
            .id_token()
            .cloned()
            .ok_or_else(|| OidcError::Failed("the token response has no id_token".into()))?;

        // Verify; on an unknown key id, refetch the JWKS once (key rotation) and retry.
        let claims = match self.verify_id_token(&metadata, &id_token, &pending.nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => match self.refresh_jwks().await? {
                Some(fresh) => {
                    metadata = fresh;
                    self.verify_id_token(&metadata, &id_token, &pending.nonce)
                }
                None => Err(ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                )),
            },
            other => other,
        }
        .map_err(|e| OidcError::Failed(format!("ID token: {}", error_chain(&e))))?;

        // What the crate leaves to the relying party.
        let audiences: Vec<&str> = claims.audiences().iter().map(|a| a.as_str()).collect();
        let azp = claims.authorized_party().map(|a| a.as_str());
        if audiences.len() > 1 && azp.is_none() {
            return Err(OidcError::Failed(
                "ID token has several audiences and no azp".into(),
            ));
        }
        if let Some(azp) = azp {
            if azp != self.cfg.client_id {
                return Err(OidcError::Failed(format!(
                    "ID token azp is {azp:?}, not this client"
                )));
            }
        }
        if let Some(expected) = claims.access_token_hash() {
            let client_for_keys = self.id_token_verifier_client(&metadata);
            let verifier = self.verifier(&client_for_keys);
            let alg = id_token
                .signing_alg()
                .map_err(|e| OidcError::Failed(format!("at_hash: {e}")))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| OidcError::Failed(format!("at_hash: {e}")))?;
            let actual = AccessTokenHash::from_token(token.access_token(), alg, key)
                .map_err(|e| OidcError::Failed(format!("at_hash: {e}")))?;
            if actual != *expected {
                return Err(OidcError::Failed(
                    "ID token at_hash does not match the access token".into(),
                ));
            }
        }
        let subject = claims.subject().as_str().to_string();
        let raw_id_token = id_token.to_string();
        let mut merged = jwt_payload(&raw_id_token)
            .ok_or_else(|| OidcError::Failed("ID token payload is not JSON".into()))?;
        // The OP session the ID token names is the one back-channel logout will name.
        let sid = merged
            .get("sid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();

        // Okta and PlusAuth send thin ID tokens: names, email_verified and groups come
        // from userinfo, whose subject must be the ID token's.
        if let Some(url) = userinfo_url {
            let info = self.userinfo(&url, token.access_token().secret()).await?;
            let info_sub = info.get("sub").and_then(Value::as_str).unwrap_or("");
            if info_sub != subject {
                return Err(OidcError::Failed(format!(
                    "userinfo sub {info_sub:?} differs from the ID token's {subject:?}"
                )));
            }
            if let (Value::Object(into), Value::Object(from)) = (&mut merged, info) {
                for (k, v) in from {
                    into.insert(k, v);
                }
            }
        }

        let profile = Profile::from_claims(&merged, &self.cfg.groups_claim);
        self.admit(&profile)?;
        let is_admin = profile
            .groups
            .iter()
            .any(|g| self.cfg.admin_groups.contains(g));
        let name = profile.display_name(&subject);
        let user = users::upsert_oidc(
            db,
            OidcIdentity {
                issuer: &self.cfg.issuer,
                subject: &subject,
                email: profile.email.as_deref().unwrap_or(""),
                name: &name,
                is_admin,
            },
        )
        .await?;
        Ok(OidcLogin {
            identity: Identity {
                user,
                provider: ProviderId::Oidc,
            },
            id_token: raw_id_token,
            sid,
        })
    }

    fn id_token_verifier_client(
        &self,
        metadata: &Metadata,
    ) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.cfg.client_id.clone()),
            Some(ClientSecret::new(self.cfg.client_secret.clone())),
        )
    }

    fn verifier<'a>(
        &self,
        client: &'a openidconnect::core::CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
    ) -> openidconnect::core::CoreIdTokenVerifier<'a> {
        client
            .id_token_verifier()
            // The client's own algorithm, not whatever the provider's metadata lists.
            .set_allowed_algs([self.alg.clone()])
            .set_issue_time_verifier_fn(|iat| {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let iat = iat.timestamp();
                if iat > now + SKEW {
                    Err(format!("issued {} s in the future", iat - now))
                } else {
                    Ok(())
                }
            })
    }

    fn verify_id_token(
        &self,
        metadata: &Metadata,
        id_token: &CoreIdToken,
        nonce: &str,
    ) -> Result<openidconnect::core::CoreIdTokenClaims, ClaimsVerificationError> {
        let client = self.id_token_verifier_client(metadata);
        let verifier = self.verifier(&client);
        id_token
            .claims(&verifier, &Nonce::new(nonce.to_string()))
            .cloned()
    }

    async fn userinfo(&self, url: &str, access_token: &str) -> Result<Value, OidcError> {
        let res = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("userinfo: {e}")))?;
        if !res.status().is_success() {
            return Err(OidcError::Failed(format!(
                "userinfo: HTTP {}",
                res.status()
            )));
        }
        let is_json = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(OidcError::Failed(
                "userinfo: not a JSON response (signed userinfo is not supported)".into(),
            ));
        }
        let value: Value = res
            .json()
            .await
            .map_err(|e| OidcError::Failed(format!("userinfo: {e}")))?;
        if !value.is_object() {
            return Err(OidcError::Failed("userinfo: not a JSON object".into()));
        }
        Ok(value)
    }

    /// Enforces the allow-lists; the refusal says why, in words for the person.
    fn admit(&self, p: &Profile) -> Result<(), OidcError> {
        let domains = &self.cfg.allowed_email_domains;
        if !domains.is_empty() {
            let Some(email) = &p.email else {
                return Err(OidcError::Refused(
                    "This site admits people by email domain, and your sign-in provider did not share an email address.".into(),
                ));
            };
            // Absent means unknown, not verified.
            if p.email_verified != Some(true) {
                return Err(OidcError::Refused(format!(
                    "Your sign-in provider has not verified your email address {email}."
                )));
            }
            let domain = email
                .rsplit_once('@')
                .map(|(_, d)| d.to_lowercase())
                .unwrap_or_default();
            if !domains
                .iter()
                .any(|d| d.trim_start_matches('@').eq_ignore_ascii_case(&domain))
            {
                return Err(OidcError::Refused(format!(
                    "Accounts from {domain} are not allowed to log in to this site."
                )));
            }
        }
        let groups = &self.cfg.allowed_groups;
        if !groups.is_empty() && !p.groups.iter().any(|g| groups.contains(g)) {
            return Err(OidcError::Refused(
                "You are not in a group that is allowed to log in to this site.".into(),
            ));
        }
        Ok(())
    }

    /// The provider's logout URL for a session made through it, or None when it
    /// offers none (or cannot be reached: quire's own session is over regardless).
    pub async fn end_session_url(&self, id_token: &str) -> Option<String> {
        let metadata = self.metadata().await.ok()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut url = url::Url::parse(&endpoint).ok()?;
        {
            let mut q = url.query_pairs_mut();
            if !id_token.is_empty() {
                q.append_pair("id_token_hint", id_token);
            }
            q.append_pair("client_id", &self.cfg.client_id);
            q.append_pair("post_logout_redirect_uri", &self.cfg.post_logout_url());
            q.append_pair("state", CsrfToken::new_random().secret());
        }
        Some(url.to_string())
    }

    /// Verifies a back-channel logout token (OpenID Connect Back-Channel Logout 1.0,
    /// section 2.6) and ends the quire sessions it names. Returns how many ended.
    pub async fn backchannel_logout(&self, db: &Pool, token: &str) -> Result<u64, OidcError> {
        let claims = self.verify_logout_token(db, token).await?;
        let sub = claims.get("sub").and_then(Value::as_str);
        let sid = claims.get("sid").and_then(Value::as_str);
        let user_id = match sub {
            Some(sub) => users::oidc_user_id(db, &self.cfg.issuer, sub).await?,
            None => None,
        };
        let ended = match (sid, sub, user_id) {
            // A subject who never logged in here has no sessions to end, whatever sid
            // the token names alongside it.
            (_, Some(_), None) => 0,
            (Some(sid), _, user) => sessions::delete_by_oidc_sid(db, sid, user).await?,
            (None, Some(_), Some(user)) => sessions::delete_oidc_for_user(db, user).await?,
            (None, None, _) => 0,
        };
        Ok(ended)
    }

    async fn verify_logout_token(
        &self,
        db: &Pool,
        token: &str,
    ) -> Result<serde_json::Map<String, Value>, OidcError> {
        let fail = |why: &str| OidcError::Failed(format!("logout token: {why}"));
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(fail("not a signed JWT"));
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: Value = b64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| fail("header is not JSON"))?;
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg_name != self.cfg.id_token_signing_alg {
            return Err(fail(&format!(
                "signed with {alg_name:?}, not {}",
                self.cfg.id_token_signing_alg
            )));
        }
        let signature = b64
            .decode(sig)
            .map_err(|_| fail("signature is not base64url"))?;
        if signature.is_empty() {
            return Err(fail("unsigned"));
        }
        let kid = header.get("kid").and_then(Value::as_str);
        let message = format!("{h}.{p}");
        let mut metadata = self.metadata().await?;
        let mut verified = self.check_signature(&metadata, kid, message.as_bytes(), &signature);
        if verified.is_err() {
            if let Some(fresh) = self.refresh_jwks().await? {
                metadata = fresh;
                verified = self.check_signature(&metadata, kid, message.as_bytes(), &signature);
            }
        }
        verified.map_err(|e| fail(&e))?;

        let claims: serde_json::Map<String, Value> = b64
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| fail("claims are not a JSON object"))?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.cfg.issuer.as_str()) {
            return Err(fail("wrong issuer"));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.cfg.client_id,
            Some(Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str() == Some(self.cfg.client_id.as_str())),
            _ => false,
        };
        if !aud_ok {
            return Err(fail("not for this client"));
        }
        let now = now();
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| fail("no iat"))?;
        if iat > now + SKEW || iat < now - LOGIN_TTL {
            return Err(fail("iat out of bounds"));
        }
        // Required by Back-Channel Logout 1.0 (final).
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| fail("no exp"))?;
        if exp + SKEW < now {
            return Err(fail("expired"));
        }
        let event_ok = claims
            .get("events")
            .and_then(|e| e.get(BACKCHANNEL_EVENT))
            .is_some_and(Value::is_object);
        if !event_ok {
            return Err(fail("no back-channel logout event"));
        }
        if claims.contains_key("nonce") {
            return Err(fail("carries a nonce"));
        }
        let has_sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        let has_sid = claims
            .get("sid")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !has_sub && !has_sid {
            return Err(fail("names neither sub nor sid"));
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty())
            .ok_or_else(|| fail("no jti"))?;
        let key = format!(
            "logout-jti:{}",
            token::hash(&format!("{}\n{jti}", self.cfg.issuer))
        );
        if !used_once::claim(db, &key, now + 2 * LOGIN_TTL, now).await? {
            return Err(fail("replayed"));
        }
        Ok(claims)
    }

    fn check_signature(
        &self,
        metadata: &Metadata,
        kid: Option<&str>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), String> {
        let keys = metadata.jwks().keys();
        let candidates: Vec<&CoreJsonWebKey> = keys
            .iter()
            .filter(|k| match (kid, k.key_id()) {
                (Some(kid), Some(id)) => id.as_str() == kid,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err("no key with that id".into());
        }
        if candidates
            .iter()
            .any(|k| k.verify_signature(&self.alg, message, signature).is_ok())
        {
            Ok(())
        } else {
            Err("bad signature".into())
        }
    }
}

/// The callback's query parameters.
#[derive(Debug, Default, rocket::FromForm)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The parts of the claims quire uses.
#[derive(Debug, Default)]
struct Profile {
    email: Option<String>,
    email_verified: Option<bool>,
    name: Option<String>,
    preferred_username: Option<String>,
    groups: Vec<String>,
}

impl Profile {
    fn from_claims(claims: &Value, groups_claim: &str) -> Profile {
        let string = |k: &str| {
            claims
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let email_verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s == "true" => Some(true),
            Some(Value::String(s)) if s == "false" => Some(false),
            _ => None,
        };
        let groups = match claims.get(groups_claim) {
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        Profile {
            email: string("email").map(|e| e.to_lowercase()),
            email_verified,
            name: string("name"),
            preferred_username: string("preferred_username"),
            groups,
        }
    }

    fn display_name(&self, subject: &str) -> String {
        let name = self
            .name
            .clone()
            .or_else(|| self.preferred_username.clone())
            .or_else(|| self.email.clone())
            .unwrap_or_else(|| subject.to_string());
        name.chars().take(100).collect()
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

/// What `quire doctor` found, line by line, and whether login can work.
pub struct DoctorReport {
    pub lines: Vec<String>,
    pub ready: bool,
}

impl OidcProvider {
    /// Checks the configuration against the live provider, for `quire doctor`.
    pub async fn doctor(&self) -> DoctorReport {
        let mut lines = vec![
            format!("issuer (configured):   {}", self.cfg.issuer),
            format!("discovery:             {}", self.discovery_url()),
        ];
        let metadata = match self.discover().await {
            Ok(m) => m,
            Err(e) => {
                lines.push(format!("FAIL  {e}"));
                return DoctorReport {
                    lines,
                    ready: false,
                };
            }
        };
        let mut ready = true;
        lines.push(format!(
            "issuer (published):    {}  (matches byte for byte)",
            metadata.issuer().as_str()
        ));
        lines.push(format!(
            "authorization:         {}",
            metadata.authorization_endpoint().as_str()
        ));
        match metadata.token_endpoint() {
            Some(t) => lines.push(format!("token:                 {}", t.as_str())),
            None => {
                lines.push("FAIL  no token endpoint".into());
                ready = false;
            }
        }
        lines.push(format!(
            "userinfo:              {}",
            metadata
                .userinfo_endpoint()
                .map_or("(none: claims come from the ID token only)".into(), |u| u
                    .url()
                    .to_string())
        ));
        lines.push(format!(
            "jwks:                  {} ({} keys)",
            metadata.jwks_uri().url(),
            metadata.jwks().keys().len()
        ));
        lines.push(format!(
            "end session:           {}",
            metadata
                .additional_metadata()
                .end_session_endpoint
                .clone()
                .unwrap_or_else(|| "(none: logout ends the quire session only)".into())
        ));
        match Self::auth_type(&metadata) {
            Ok(AuthType::BasicAuth) => {
                lines.push("client authentication: client_secret_basic".into())
            }
            Ok(_) => lines.push("client authentication: client_secret_post".into()),
            Err(e) => {
                lines.push(format!("FAIL  client authentication: {e}"));
                ready = false;
            }
        }
        let algs = metadata.id_token_signing_alg_values_supported();
        if !algs.contains(&self.alg) {
            lines.push(format!(
                "FAIL  ID tokens are pinned to {} but the provider signs with {}",
                self.cfg.id_token_signing_alg,
                serde_json::to_string(algs).unwrap_or_default()
            ));
            ready = false;
        } else {
            lines.push(format!(
                "ID token algorithm:    {} (pinned)",
                self.cfg.id_token_signing_alg
            ));
        }
        let methods = &metadata
            .additional_metadata()
            .code_challenge_methods_supported;
        if methods
            .as_ref()
            .is_some_and(|m| !m.iter().any(|m| m == "S256"))
        {
            lines.push("WARN  the provider does not list PKCE S256; quire sends it anyway".into());
        }
        lines.push(String::new());
        lines.push("Register at the provider:".into());
        lines.push(format!(
            "  sign-in redirect URI:      {}",
            self.cfg.redirect_url
        ));
        lines.push(format!(
            "  sign-out redirect URI:     {}",
            self.cfg.post_logout_url()
        ));
        lines.push(format!(
            "  back-channel logout URI:   {}",
            self.cfg.backchannel_logout_url()
        ));
        DoctorReport { lines, ready }
    }
}
