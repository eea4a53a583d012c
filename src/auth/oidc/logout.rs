//! Logging out at the provider: RP-initiated logout (the URL the browser goes to after
//! quire's own session ended) and back-channel logout (the provider posts a signed
//! logout token; the sessions it names end). The claim checks are a pure function of the
//! claims and the time, apart from the signature and the replay record.

use base64::Engine as _;
use openidconnect::CsrfToken;
use serde_json::{Map, Value};

use super::{OidcError, OidcProvider, LOGIN_TTL, SKEW};
use crate::db::{now, sessions, used_once, users, Pool};
use crate::token;

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Whom a valid logout token names: a subject, a provider session, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutTarget {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
}

/// Checks a logout token's claims (OpenID Connect Back-Channel Logout 1.0, section 2.6)
/// at time `now`: issuer (exactly), audience, iat within bounds, exp, the logout event,
/// no nonce, a sub or sid, a jti. The reason comes back on refusal.
pub fn check_logout_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    now: i64,
) -> Result<LogoutTarget, &'static str> {
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err("wrong issuer");
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err("not for this client");
    }
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or("no iat")?;
    if iat > now + SKEW || iat < now - LOGIN_TTL {
        return Err("iat out of bounds");
    }
    // Required by Back-Channel Logout 1.0 (final).
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or("no exp")?;
    if exp + SKEW < now {
        return Err("expired");
    }
    let event_ok = claims
        .get("events")
        .and_then(|e| e.get(BACKCHANNEL_EVENT))
        .is_some_and(Value::is_object);
    if !event_ok {
        return Err("no back-channel logout event");
    }
    if claims.contains_key("nonce") {
        return Err("carries a nonce");
    }
    let non_empty = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (sub, sid) = (non_empty("sub"), non_empty("sid"));
    if sub.is_none() && sid.is_none() {
        return Err("names neither sub nor sid");
    }
    let jti = non_empty("jti").ok_or("no jti")?;
    Ok(LogoutTarget { sub, sid, jti })
}

impl OidcProvider {
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
            q.append_pair(
                "post_logout_redirect_uri",
                self.cfg.post_logout_url().as_str(),
            );
            q.append_pair("state", CsrfToken::new_random().secret());
        }
        Some(url.to_string())
    }

    /// Verifies a back-channel logout token and ends the quire sessions it names.
    /// Returns how many ended.
    pub async fn backchannel_logout(&self, db: &Pool, token: &str) -> Result<u64, OidcError> {
        let target = self.verify_logout_token(db, token).await?;
        let user_id = match &target.sub {
            Some(sub) => users::oidc_user_id(db, self.cfg.issuer.as_str(), sub).await?,
            None => None,
        };
        let ended = match (target.sid.as_deref(), target.sub.as_deref(), user_id) {
            // A subject who never logged in here has no sessions to end, whatever sid
            // the token names alongside it.
            (_, Some(_), None) => 0,
            (Some(sid), _, user) => sessions::delete_by_oidc_sid(db, sid, user).await?,
            (None, Some(_), Some(user)) => sessions::delete_oidc_for_user(db, user).await?,
            (None, None, _) => 0,
        };
        Ok(ended)
    }

    async fn verify_logout_token(&self, db: &Pool, token: &str) -> Result<LogoutTarget, OidcError> {
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
        let pinned = self.cfg.id_token_signing_alg;
        if alg_name != pinned.as_str() {
            return Err(fail(&format!("signed with {alg_name:?}, not {pinned}")));
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

        let claims: Map<String, Value> = b64
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| fail("claims are not a JSON object"))?;
        let now = now();
        let target =
            check_logout_claims(&claims, self.cfg.issuer.as_str(), &self.cfg.client_id, now)
                .map_err(fail)?;
        let key = format!(
            "logout-jti:{}",
            token::hash(&format!("{}\n{}", self.cfg.issuer, target.jti))
        );
        if !used_once::claim(db, &key, now + 2 * LOGIN_TTL, now).await? {
            return Err(fail("replayed"));
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ISS: &str = "https://idp.example.com/";
    const NOW: i64 = 1_700_000_000;

    fn token() -> Map<String, Value> {
        let v = json!({
            "iss": ISS, "aud": "quire", "iat": NOW, "exp": NOW + 120, "jti": "j1",
            "sub": "s1", "events": { BACKCHANNEL_EVENT: {} },
        });
        v.as_object().unwrap().clone()
    }

    type Edit = Box<dyn FnOnce(&mut Map<String, Value>)>;

    fn check(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<LogoutTarget, &'static str> {
        let mut claims = token();
        edit(&mut claims);
        check_logout_claims(&claims, ISS, "quire", NOW)
    }

    #[test]
    fn a_genuine_token_names_its_subject_and_session() {
        let target = check(|c| {
            c.insert("sid".into(), json!("op-session"));
            c.insert("aud".into(), json!(["other", "quire"]));
        })
        .unwrap();
        assert_eq!(
            target,
            LogoutTarget {
                sub: Some("s1".into()),
                sid: Some("op-session".into()),
                jti: "j1".into()
            }
        );
        let sid_only = check(|c| {
            c.remove("sub");
            c.insert("sid".into(), json!("x"));
        })
        .unwrap();
        assert_eq!((sid_only.sub, sid_only.sid.as_deref()), (None, Some("x")));
    }

    #[test]
    fn each_missing_or_wrong_claim_is_refused_with_its_reason() {
        let cases: [(&str, Edit); 11] = [
            (
                "wrong issuer",
                Box::new(|c| {
                    c.insert("iss".into(), json!("https://idp.example.com"));
                }),
            ),
            (
                "not for this client",
                Box::new(|c| {
                    c.insert("aud".into(), json!("someone-else"));
                }),
            ),
            (
                "no iat",
                Box::new(|c| {
                    c.remove("iat");
                }),
            ),
            (
                "iat out of bounds",
                Box::new(|c| {
                    c.insert("iat".into(), json!(NOW + SKEW + 1));
                }),
            ),
            (
                "iat out of bounds",
                Box::new(|c| {
                    c.insert("iat".into(), json!(NOW - LOGIN_TTL - 1));
                }),
            ),
            (
                "no exp",
                Box::new(|c| {
                    c.remove("exp");
                }),
            ),
            (
                "expired",
                Box::new(|c| {
                    c.insert("exp".into(), json!(NOW - SKEW - 1));
                }),
            ),
            (
                "no back-channel logout event",
                Box::new(|c| {
                    c.insert("events".into(), json!({ BACKCHANNEL_EVENT: "yes" }));
                }),
            ),
            (
                "carries a nonce",
                Box::new(|c| {
                    c.insert("nonce".into(), json!("n"));
                }),
            ),
            (
                "names neither sub nor sid",
                Box::new(|c| {
                    c.insert("sub".into(), json!(""));
                }),
            ),
            (
                "no jti",
                Box::new(|c| {
                    c.remove("jti");
                }),
            ),
        ];
        for (reason, edit) in cases {
            assert_eq!(check(edit), Err(reason));
        }
    }

    #[test]
    fn clock_skew_is_tolerated_at_both_ends() {
        assert!(check(|c| {
            c.insert("iat".into(), json!(NOW + SKEW));
            c.insert("exp".into(), json!(NOW - SKEW));
        })
        .is_ok());
    }
}
