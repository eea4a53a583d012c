//! The login itself: `begin` sends the browser to the provider, `complete` checks what
//! comes back (state, single use, the token response, the ID token, userinfo) and maps
//! the person to a local account.

use openidconnect::core::{CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreResponseType};
use openidconnect::{
    AccessTokenHash, AuthenticationContextClass, AuthenticationFlow, AuthorizationCode,
    ClaimsVerificationError, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, Scope, SignatureVerificationError, TokenResponse,
};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::claims::Profile;
use super::{jwt_payload, Metadata, OidcClient, OidcError, OidcProvider, SKEW};
use crate::auth::local::client_key;
use crate::auth::Identity;
use crate::db::oidc_sessions::Tokens;
use crate::db::users::{self, OidcIdentity};
use crate::db::{now, rate, used_once, Pool};
use crate::domain::ProviderId;
use crate::error::chain as error_chain;
use crate::token;

/// How long a login may take between leaving for the IdP and coming back.
pub const LOGIN_TTL: i64 = 10 * 60;
/// Logins one client (an address, an IPv6 /64) may start per `RATE_WINDOW`: loose, so
/// an office behind one NAT is not held up, yet bounded.
pub const START_LIMIT: i64 = 100;
/// Codes from one client the token endpoint may refuse per `RATE_WINDOW`, so nobody can
/// make quire hammer the provider with junk; codes it accepts are not counted.
pub const CODE_LIMIT: i64 = 30;
pub const RATE_WINDOW: i64 = 15 * 60;

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

/// The callback's query parameters.
#[derive(Debug, Default, rocket::FromForm)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A completed OIDC login.
pub struct OidcLogin {
    pub identity: Identity,
    pub id_token: String,
    pub sid: String,
    /// What re-checking the session's claims later needs.
    pub tokens: Tokens,
    /// The ID token's `amr` (RFC 8176 authentication methods), as `amr_values` keeps them.
    pub amr: Vec<String>,
}

impl OidcProvider {
    /// Starts a login: the URL to send the browser to, and what to keep in the
    /// pre-login cookie. `Throttled` once `client` started `START_LIMIT` lately.
    pub async fn begin(
        &self,
        db: &Pool,
        client: IpAddr,
        next: &str,
    ) -> Result<(String, Pending), OidcError> {
        let key = format!("oidc-start:{}", client_key(client));
        if rate::hit(db, &key, now(), RATE_WINDOW).await? > START_LIMIT {
            return Err(OidcError::Throttled);
        }
        let metadata = self.metadata().await?;
        let client = self.client(&metadata);
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
        for acr in &self.cfg.acr_values {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
        }
        // Ask for amr as an essential ID token claim, where the provider takes the claims
        // parameter (elsewhere an unknown parameter may be refused outright).
        if self.cfg.requires_amr() && metadata.claims_parameter_supported() == Some(true) {
            request =
                request.add_extra_param("claims", r#"{"id_token":{"amr":{"essential":true}}}"#);
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
    /// An error in the callback counts only with this login's state: anyone can send
    /// a browser to the callback with an error of their choosing.
    pub async fn complete(
        &self,
        db: &Pool,
        client: IpAddr,
        callback: &Callback,
        pending: &Pending,
    ) -> Result<OidcLogin, OidcError> {
        let state = callback.state.as_deref().unwrap_or("");
        if !token::constant_eq(state, &pending.state) {
            return Err(OidcError::Failed(
                "state does not match the login this browser started".into(),
            ));
        }
        if let Some(error) = &callback.error {
            return Err(OidcError::idp(error, callback.error_description.as_deref()));
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

        let code_key = format!("oidc-code:{}", client_key(client));
        if rate::hit(db, &code_key, now(), RATE_WINDOW).await? > CODE_LIMIT {
            return Err(OidcError::Throttled);
        }

        let mut metadata = self.metadata().await?;
        let auth_type = Self::auth_type(&metadata).map_err(OidcError::Failed)?;
        let userinfo_url = metadata.userinfo_endpoint().map(|u| u.url().to_string());
        let client = self.client(&metadata).set_auth_type(auth_type);
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
        // The provider took the code: whatever follows, it was not junk.
        rate::refund(db, &code_key).await?;
        let tokens = Tokens {
            oidc_refresh_token: token
                .refresh_token()
                .map(|t| t.secret().clone())
                .unwrap_or_default(),
            oidc_access_token: token.access_token().secret().clone(),
            oidc_access_expires_at: token.expires_in().map_or(0, |d| now() + d.as_secs() as i64),
        };
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
            let client = self.client(&metadata);
            let verifier = self.verifier(&client);
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
        // From the ID token alone (verified above): userinfo does not speak for the login.
        let amr = super::amr_values(
            claims
                .auth_method_refs()
                .into_iter()
                .flatten()
                .map(|a| a.as_str()),
        );
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
            merge_userinfo(&mut merged, info, &subject)?;
        }

        let profile = Profile::from_claims(&merged, &self.cfg.groups_claim);
        let admission = self.policy().admit(&profile).map_err(OidcError::Refused)?;
        // After the groups said whether this is an admin, before any account is made.
        let missing = super::missing_amr(self.cfg.required_amr(admission.is_admin), &amr);
        if !missing.is_empty() {
            return Err(OidcError::Assurance {
                subject,
                amr,
                missing,
                admin: admission.is_admin,
            });
        }
        let name = profile.display_name(&subject);
        let user = users::upsert_oidc(
            db,
            OidcIdentity {
                issuer: self.cfg.issuer.as_str(),
                subject: &subject,
                email: profile.email.as_deref().unwrap_or(""),
                name: &name,
                is_admin: admission.is_admin,
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
            tokens,
            amr,
        })
    }

    pub(super) fn verifier<'a>(&self, client: &'a OidcClient) -> CoreIdTokenVerifier<'a> {
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
    ) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
        let client = self.client(metadata);
        let verifier = self.verifier(&client);
        id_token
            .claims(&verifier, &Nonce::new(nonce.to_string()))
            .cloned()
    }

    pub(super) async fn userinfo(&self, url: &str, access_token: &str) -> Result<Value, OidcError> {
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
}

/// Merges userinfo's claims over the ID token's; its `sub` must be the ID token's.
pub(super) fn merge_userinfo(
    claims: &mut Value,
    info: Value,
    subject: &str,
) -> Result<(), OidcError> {
    let info_sub = info.get("sub").and_then(Value::as_str).unwrap_or("");
    if info_sub != subject {
        return Err(OidcError::Failed(format!(
            "userinfo sub {info_sub:?} differs from the ID token's {subject:?}"
        )));
    }
    if let (Value::Object(into), Value::Object(from)) = (claims, info) {
        for (k, v) in from {
            into.insert(k, v);
        }
    }
    Ok(())
}
