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
        DoctorReport { checks, register }
    }
}
