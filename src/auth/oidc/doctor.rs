//! `quire doctor`: the configuration checked against the live provider before anyone
//! logs in. Returns structured results; the command line decides how to print them.

use openidconnect::AuthType;

use super::OidcProvider;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// Found and fine.
    Ok,
    /// Worth knowing; login still works.
    Warn,
    /// Login cannot work until this is fixed.
    Fail,
}

/// One finding: what was looked at, and what was found.
#[derive(Debug, Clone)]
pub struct Check {
    pub status: CheckStatus,
    pub label: &'static str,
    pub detail: String,
}

/// Everything `quire doctor` found, and the URIs to register at the provider.
#[derive(Debug, Clone)]
pub struct DoctorReport {
    pub checks: Vec<Check>,
    pub register: Vec<(&'static str, String)>,
}

impl DoctorReport {
    /// Whether login can work: no check failed.
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Fail)
    }
}

fn ok(label: &'static str, detail: impl Into<String>) -> Check {
    Check {
        status: CheckStatus::Ok,
        label,
        detail: detail.into(),
    }
}

fn fail(label: &'static str, detail: impl Into<String>) -> Check {
    Check {
        status: CheckStatus::Fail,
        label,
        detail: detail.into(),
    }
}

impl OidcProvider {
    /// Checks the configuration against the live provider, for `quire doctor`.
    pub async fn doctor(&self) -> DoctorReport {
        let mut checks = vec![
            ok("issuer (configured)", self.cfg.issuer.as_str()),
            ok("discovery", self.discovery_url()),
        ];
        let register = vec![
            ("sign-in redirect URI", self.cfg.redirect_url.to_string()),
            (
                "sign-out redirect URI",
                self.cfg.post_logout_url().to_string(),
            ),
            (
                "back-channel logout URI",
                self.cfg.backchannel_logout_url().to_string(),
            ),
        ];
        let metadata = match self.discover().await {
            Ok(m) => m,
            Err(e) => {
                checks.push(fail("discovery", e.to_string()));
                return DoctorReport {
                    checks,
                    register: Vec::new(),
                };
            }
        };
        checks.push(ok(
            "issuer (published)",
            format!("{}  (matches byte for byte)", metadata.issuer().as_str()),
        ));
        checks.push(ok(
            "authorization",
            metadata.authorization_endpoint().as_str(),
        ));
        checks.push(match metadata.token_endpoint() {
            Some(t) => ok("token", t.as_str()),
            None => fail("token", "no token endpoint"),
        });
        checks.push(ok(
            "userinfo",
            metadata
                .userinfo_endpoint()
                .map_or("(none: claims come from the ID token only)".into(), |u| {
                    u.url().to_string()
                }),
        ));
        checks.push(ok(
            "jwks",
            format!(
                "{} ({} keys)",
                metadata.jwks_uri().url(),
                metadata.jwks().keys().len()
            ),
        ));
        checks.push(ok(
            "end session",
            metadata
                .additional_metadata()
                .end_session_endpoint
                .clone()
                .unwrap_or_else(|| "(none: logout ends the quire session only)".into()),
        ));
        checks.push(match Self::auth_type(&metadata) {
            Ok(AuthType::BasicAuth) => ok("client authentication", "client_secret_basic"),
            Ok(_) => ok("client authentication", "client_secret_post"),
            Err(e) => fail("client authentication", e),
        });
        let algs = metadata.id_token_signing_alg_values_supported();
        let pinned = self.cfg.id_token_signing_alg;
        checks.push(if algs.contains(&self.alg) {
            ok("ID token algorithm", format!("{pinned} (pinned)"))
        } else {
            fail(
                "ID token algorithm",
                format!(
                    "ID tokens are pinned to {pinned} but the provider signs with {}",
                    serde_json::to_string(algs).unwrap_or_default()
                ),
            )
        });
        let methods = &metadata
            .additional_metadata()
            .code_challenge_methods_supported;
        if methods
            .as_ref()
            .is_some_and(|m| !m.iter().any(|m| m == "S256"))
        {
            checks.push(Check {
                status: CheckStatus::Warn,
                label: "PKCE",
                detail: "the provider does not list PKCE S256; quire sends it anyway".into(),
            });
        }
        if self.cfg.requires_amr() {
            checks.push(amr_check(&metadata));
        }
        if !self.cfg.acr_values.is_empty() {
            checks.push(acr_check(&metadata, &self.cfg.acr_values));
        }
        DoctorReport { checks, register }
    }
}

fn warn(label: &'static str, detail: impl Into<String>) -> Check {
    Check {
        status: CheckStatus::Warn,
        label,
        detail: detail.into(),
    }
}

/// Whether discovery lists the `amr` claim that `require_amr` checks. Not a failure when
/// it does not: claims_supported need not be complete, but the first login will tell.
fn amr_check(metadata: &super::Metadata) -> Check {
    const LABEL: &str = "amr claim";
    match metadata.claims_supported() {
        Some(claims) if claims.iter().any(|c| c.as_str() == "amr") => {
            ok(LABEL, "ok: claims_supported lists amr")
        }
        Some(_) => warn(
            LABEL,
            "missing: claims_supported does not list amr, which auth.oidc.require_amr \
             checks; unless the provider sends it anyway, every login will be refused",
        ),
        None => warn(
            LABEL,
            "not advertised: discovery has no claims_supported; make sure the provider \
             puts amr in its ID tokens, or every login will be refused",
        ),
    }
}

/// Whether discovery lists each of `acr_values` in acr_values_supported.
fn acr_check(metadata: &super::Metadata, wanted: &[String]) -> Check {
    const LABEL: &str = "acr values";
    let Some(supported) = metadata.acr_values_supported() else {
        return warn(
            LABEL,
            "not advertised: discovery has no acr_values_supported; the provider may \
             ignore auth.oidc.acr_values",
        );
    };
    let missing: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|w| !supported.iter().any(|s| s.as_str() == *w))
        .collect();
    if missing.is_empty() {
        ok(
            LABEL,
            format!("ok: acr_values_supported lists {}", wanted.join(", ")),
        )
    } else {
        warn(
            LABEL,
            format!(
                "missing: acr_values_supported does not list {}; the provider may ignore them",
                missing.join(", ")
            ),
        )
    }
}
