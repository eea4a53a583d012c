//! Keeping an OIDC session honest after login: every `auth.oidc.recheck_minutes` its
//! claims are fetched again (with the refresh token when the provider gave one, else
//! with the access token while it lasts) and the admission policy applied anew, so
//! someone removed from `allowed_groups` or `admin_groups` at the provider loses those
//! rights in time. A session that cannot be re-checked ends.

use openidconnect::core::CoreIdToken;
use openidconnect::{Nonce, OAuth2TokenResponse, RefreshToken, TokenResponse};
use serde_json::Value;

use super::claims::Profile;
use super::flow::merge_userinfo;
use super::{jwt_payload, log_safe, Metadata, OidcError, OidcProvider};
use crate::db::oidc_sessions::{self, RecheckState, Tokens};
use crate::db::{now, sessions, Pool};
use crate::domain::SessionId;
use crate::error::chain as describe_error;
use crate::error::Result;

/// What a re-check did to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// Not due, or another request is doing it: the session stands as it was read.
    NotDue,
    /// Checked: the session stands, with rights that may have changed.
    Checked,
    /// The session ended.
    Ended,
}

impl OidcProvider {
    /// Re-checks an OIDC session at the provider when it is due. Fails only when the
    /// database does; a provider that refuses, or cannot be reached, ends the session.
    pub async fn recheck(&self, db: &Pool, session_id: SessionId) -> Result<Recheck> {
        let Some(state) = self.recheck_state(db, session_id).await? else {
            return Ok(Recheck::NotDue);
        };
        let now = now();
        if now - state.oidc_checked_at < self.cfg.recheck_minutes * 60 {
            return Ok(Recheck::NotDue);
        }
        if !oidc_sessions::claim_recheck(db, session_id, state.oidc_checked_at, now).await? {
            return Ok(Recheck::NotDue);
        }
        match self.fresh_profile(&state).await {
            Ok((profile, tokens)) => match self.policy().admit(&profile) {
                Ok(admission) => {
                    oidc_sessions::set_admin(db, state.user_id, admission.is_admin).await?;
                    if let Some(tokens) = tokens {
                        self.keep_tokens(db, session_id, &tokens, now).await?;
                    }
                    Ok(Recheck::Checked)
                }
                Err(refusal) => {
                    // No longer admitted: none of this person's OIDC sessions stands.
                    log::info!(
                        "OIDC re-check: user {} no longer admitted ({}); their sessions end",
                        state.user_id,
                        log_safe(&refusal)
                    );
                    oidc_sessions::set_admin(db, state.user_id, false).await?;
                    sessions::delete_oidc_for_user(db, state.user_id).await?;
                    Ok(Recheck::Ended)
                }
            },
            Err(OidcError::Internal(e)) => Err(e),
            Err(e) => {
                log::info!(
                    "OIDC re-check of session {session_id} impossible, so it ends: {}",
                    log_safe(&e.to_string())
                );
                sessions::delete(db, session_id).await?;
                Ok(Recheck::Ended)
            }
        }
    }

    /// The person's claims now, and the tokens to keep when a refresh replaced them.
    async fn fresh_profile(
        &self,
        state: &RecheckState,
    ) -> Result<(Profile, Option<Tokens>), OidcError> {
        let mut claims = jwt_payload(&state.id_token)
            .ok_or_else(|| OidcError::Failed("no ID token kept with the session".into()))?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let metadata = self.metadata().await?;
        let (access_token, refreshed) = if !state.oidc_refresh_token.is_empty() {
            let (access_token, tokens, id_token) = self.refresh(&metadata, state).await?;
            if let Some(id_token) = id_token {
                let fresh = self.verify_refreshed_id_token(&metadata, &id_token, &subject)?;
                claims = fresh;
            }
            (access_token, Some(tokens))
        } else {
            let expires = state.oidc_access_expires_at;
            if state.oidc_access_token.is_empty() || (expires != 0 && expires <= now()) {
                return Err(OidcError::Failed(
                    "no refresh token, and the access token has expired".into(),
                ));
            }
            (state.oidc_access_token.clone(), None)
        };
        match metadata.userinfo_endpoint() {
            Some(url) => {
                let info = self.userinfo(url.url().as_str(), &access_token).await?;
                merge_userinfo(&mut claims, info, &subject)?;
            }
            // Without userinfo only a fresh ID token says anything new.
            None if refreshed.is_none() => {
                return Err(OidcError::Failed(
                    "the provider has no userinfo endpoint and gave no refresh token".into(),
                ));
            }
            None => {}
        }
        Ok((
            Profile::from_claims(&claims, &self.cfg.groups_claim),
            refreshed,
        ))
    }

    /// Uses the refresh token: the new access token, the tokens to keep (a rotated
    /// refresh token replaces the old one), and the new ID token if one came.
    async fn refresh(
        &self,
        metadata: &Metadata,
        state: &RecheckState,
    ) -> Result<(String, Tokens, Option<CoreIdToken>), OidcError> {
        let auth_type = Self::auth_type(metadata).map_err(OidcError::Failed)?;
        let refresh_token = RefreshToken::new(state.oidc_refresh_token.clone());
        let token = self
            .client(metadata)
            .set_auth_type(auth_type)
            .exchange_refresh_token(&refresh_token)
            .map_err(|e| OidcError::Failed(format!("token endpoint: {e}")))?
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Failed(format!("refresh: {}", describe_error(&e))))?;
        let access_token = token.access_token().secret().clone();
        let tokens = Tokens {
            oidc_refresh_token: token
                .refresh_token()
                .map_or_else(|| state.oidc_refresh_token.clone(), |t| t.secret().clone()),
            oidc_access_token: access_token.clone(),
            oidc_access_expires_at: token.expires_in().map_or(0, |d| now() + d.as_secs() as i64),
        };
        Ok((access_token, tokens, token.id_token().cloned()))
    }

    /// An ID token from a refresh: verified like the login's (signature with the pinned
    /// algorithm, issuer, audience, expiry, iat), without a nonce (OpenID Connect Core
    /// 12.2), and about the same person.
    fn verify_refreshed_id_token(
        &self,
        metadata: &Metadata,
        id_token: &CoreIdToken,
        subject: &str,
    ) -> Result<Value, OidcError> {
        let client = self.client(metadata);
        let verifier = self.verifier(&client);
        let claims = id_token
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .map_err(|e| {
                OidcError::Failed(format!("refreshed ID token: {}", describe_error(&e)))
            })?;
        if claims.subject().as_str() != subject {
            return Err(OidcError::Failed(
                "the refreshed ID token is about someone else".into(),
            ));
        }
        jwt_payload(&id_token.to_string())
            .ok_or_else(|| OidcError::Failed("refreshed ID token payload is not JSON".into()))
    }
}
