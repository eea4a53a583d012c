//! The provider's discovery document and its signing keys: fetched on first use, cached,
//! refreshed hourly, and the keys refetched when a token names a key id we do not know.
//! One request at a time goes to the provider for them, and a failure is remembered for
//! a few seconds, so a provider that is down or slow is not stampeded by every login.

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, AuthType, JsonWebKey, ProviderMetadata};
use rocket::tokio::sync::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{OidcError, OidcProvider};
use crate::db::now;

/// Discovery is refreshed after this long.
const DISCOVERY_TTL: i64 = 60 * 60;
/// A failed discovery is answered from memory for this long before it is tried again.
pub const DISCOVERY_RETRY: i64 = 5;
/// An unknown key id refetches the JWKS at most this often (a forged kid must not let
/// anyone make us hammer the IdP).
const JWKS_REFETCH_EVERY: i64 = 30;

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

struct Discovered {
    metadata: Metadata,
    fetched_at: i64,
}

/// What this process remembers of the provider (each instance keeps its own: it is a
/// cache of public documents, never state a request depends on).
#[derive(Default)]
pub(super) struct Cache {
    current: RwLock<Option<Discovered>>,
    /// Held by the one request that is fetching discovery.
    refresh: Mutex<()>,
    /// When discovery last failed, and why.
    failure: std::sync::Mutex<Option<(i64, String)>>,
    last_jwks_fetch: Mutex<i64>,
}

impl Cache {
    async fn cached(&self) -> Option<(Metadata, bool)> {
        let current = self.current.read().await;
        let d = current.as_ref()?;
        Some((d.metadata.clone(), now() - d.fetched_at < DISCOVERY_TTL))
    }

    fn recent_failure(&self) -> Option<String> {
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure
            .as_ref()
            .filter(|(at, _)| now() - at < DISCOVERY_RETRY)
            .map(|(_, why)| why.clone())
    }

    fn set_failure(&self, failure: Option<String>) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = failure.map(|f| (now(), f));
    }
}

impl OidcProvider {
    /// The discovery document's URL for the configured issuer.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.cfg.issuer.as_str().trim_end_matches('/')
        )
    }

    /// Fetches discovery and the JWKS. The published issuer must equal the configured
    /// one byte for byte; a mismatch is reported with both strings.
    pub async fn discover(&self) -> Result<Metadata, OidcError> {
        let url = self.discovery_url();
        let doc: Value = self.get_json(&url).await?;
        let configured = self.cfg.issuer.as_str();
        let published = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if published != configured {
            return Err(OidcError::Unavailable(format!(
                "issuer mismatch: auth.oidc.issuer is {configured:?} but {url} publishes {published:?}{}",
                if published.trim_end_matches('/') == configured.trim_end_matches('/') {
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

    /// The provider's metadata, from the cache while fresh. When it is not, one request
    /// fetches it while the others wait for that result (or, holding a stale copy, use
    /// it meanwhile); a failure is answered from memory for `DISCOVERY_RETRY` seconds.
    pub async fn metadata(&self) -> Result<Metadata, OidcError> {
        let cache = &self.discovery;
        let stale = match cache.cached().await {
            Some((metadata, true)) => return Ok(metadata),
            Some((metadata, false)) => Some(metadata),
            None => None,
        };
        let _refreshing = match (cache.refresh.try_lock(), &stale) {
            (Ok(guard), _) => guard,
            (Err(_), Some(stale)) => return Ok(stale.clone()),
            (Err(_), None) => cache.refresh.lock().await,
        };
        // Another request may have fetched, or failed, while this one waited.
        if let Some((metadata, true)) = cache.cached().await {
            return Ok(metadata);
        }
        let result = match cache.recent_failure() {
            Some(why) => Err(OidcError::Unavailable(why)),
            None => {
                let fetched = self.discover().await;
                match &fetched {
                    Ok(metadata) => {
                        *cache.current.write().await = Some(Discovered {
                            metadata: metadata.clone(),
                            fetched_at: now(),
                        });
                        cache.set_failure(None);
                    }
                    Err(e) => cache.set_failure(Some(unavailable_reason(e))),
                }
                fetched
            }
        };
        match (result, stale) {
            (Ok(metadata), _) => Ok(metadata),
            // A stale document beats none while the IdP is briefly unreachable.
            (Err(e), Some(stale)) => {
                log::warn!("OIDC discovery refresh failed, using the cached document: {e}");
                Ok(stale)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// Refetches the JWKS after an unknown key id, at most every `JWKS_REFETCH_EVERY`
    /// seconds. Returns the refreshed metadata, or None when rate-limited.
    pub(super) async fn refresh_jwks(&self) -> Result<Option<Metadata>, OidcError> {
        {
            let mut last = self.discovery.last_jwks_fetch.lock().await;
            if now() - *last < JWKS_REFETCH_EVERY {
                return Ok(None);
            }
            *last = now();
        }
        let metadata = self.metadata().await?;
        let jwks = self.fetch_jwks(&metadata).await?;
        let metadata = metadata.set_jwks(jwks);
        *self.discovery.current.write().await = Some(Discovered {
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

    /// Checks a JWS signature against the cached keys: those with the token's key id, or
    /// every key when it names none.
    pub(super) fn check_signature(
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

/// What a failed discovery said, to repeat while it is remembered.
fn unavailable_reason(e: &OidcError) -> String {
    match e {
        OidcError::Unavailable(why) => why.clone(),
        other => other.to_string(),
    }
}
