//! What the provider's claims say about a person, and whether this site admits them:
//! pure functions of the claims and the configured allow-lists, so every rule is unit
//! tested without a provider.

use serde_json::Value;

/// The parts of the claims quire uses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    pub email: Option<String>,
    /// `None` when the provider did not say: unknown, never taken as verified.
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    pub groups: Vec<String>,
}

impl Profile {
    /// Reads the merged ID token and userinfo claims; `groups_claim` names the claim
    /// holding group names (a list, or one string).
    pub fn from_claims(claims: &Value, groups_claim: &str) -> Profile {
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

    /// The name shown on the site: name, else username, else email, else the subject;
    /// at most 100 characters.
    pub fn display_name(&self, subject: &str) -> String {
        let name = self
            .name
            .clone()
            .or_else(|| self.preferred_username.clone())
            .or_else(|| self.email.clone())
            .unwrap_or_else(|| subject.to_string());
        name.chars().take(100).collect()
    }
}

/// The admission rules of `[auth.oidc]`. Empty lists admit everyone.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub allowed_email_domains: &'a [String],
    pub allowed_groups: &'a [String],
    pub admin_groups: &'a [String],
}

/// Someone the policy admits, and with which rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub is_admin: bool,
}

impl Policy<'_> {
    /// Admits or refuses; a refusal says why, in words for the person.
    pub fn admit(&self, p: &Profile) -> Result<Admission, String> {
        let domains = self.allowed_email_domains;
        if !domains.is_empty() {
            let Some(email) = &p.email else {
                return Err(
                    "This site admits people by email domain, and your sign-in provider did not share an email address.".into(),
                );
            };
            // Absent means unknown, not verified.
            if p.email_verified != Some(true) {
                return Err(format!(
                    "Your sign-in provider has not verified your email address {email}."
                ));
            }
            let domain = email
                .rsplit_once('@')
                .map(|(_, d)| d.to_lowercase())
                .unwrap_or_default();
            if !domains
                .iter()
                .any(|d| d.trim_start_matches('@').eq_ignore_ascii_case(&domain))
            {
                return Err(format!(
                    "Accounts from {domain} are not allowed to log in to this site."
                ));
            }
        }
        let groups = self.allowed_groups;
        if !groups.is_empty() && !p.groups.iter().any(|g| groups.contains(g)) {
            return Err("You are not in a group that is allowed to log in to this site.".into());
        }
        Ok(Admission {
            is_admin: p.groups.iter().any(|g| self.admin_groups.contains(g)),
        })
    }
}

/// The `amr` values of an ID token as kept with the session: printable ASCII tokens
/// only (they are stored space-separated and shown), at most 16 of 64 characters,
/// duplicates dropped.
pub fn amr_values<'a>(raw: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in raw {
        let token = !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic());
        if token && !out.iter().any(|o| o == v) && out.len() < 16 {
            out.push(v.to_string());
        }
    }
    out
}

/// The required values `amr` lacks: every listed value must be present (the order and
/// any further values do not matter). Empty: the requirement is met.
pub fn missing_amr(required: &[String], amr: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|r| !amr.contains(r))
        .cloned()
        .collect()
}

/// An RFC 8176 value in words, for the page that says what was missing.
pub fn amr_words(value: &str) -> String {
    let words = match value {
        "mfa" => "a second factor",
        "hwk" => "a hardware security key",
        "swk" => "a software key",
        "otp" => "a one-time code",
        "sms" => "a code sent by text message",
        "tel" => "a phone call",
        "pwd" => "a password",
        "pin" => "a PIN",
        "sc" => "a smart card",
        "fpt" => "a fingerprint",
        "face" => "face recognition",
        "iris" | "retina" => "an eye scan",
        "vbm" => "voice recognition",
        "kba" => "security questions",
        "mca" => "confirmation on a second channel",
        "user" => "a presence check",
        "geo" => "your location",
        "rba" => "a risk check",
        "wia" => "Windows sign-in",
        other => return format!("the method {other:?}"),
    };
    words.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn profile(email: Option<&str>, verified: Option<bool>, groups: &[&str]) -> Profile {
        Profile {
            email: email.map(str::to_string),
            email_verified: verified,
            groups: strings(groups),
            ..Profile::default()
        }
    }

    #[test]
    fn claims_are_read_leniently_and_absent_verification_stays_unknown() {
        let p = Profile::from_claims(
            &json!({"email": " Alice@Example.COM ", "email_verified": "true",
                    "name": "  ", "preferred_username": "alice", "roles": "writers"}),
            "roles",
        );
        assert_eq!(p.email.as_deref(), Some("alice@example.com"));
        assert_eq!(p.email_verified, Some(true));
        assert_eq!(p.name, None);
        assert_eq!(p.groups, strings(&["writers"]));
        assert_eq!(p.display_name("sub-1"), "alice");
        let bare = Profile::from_claims(&json!({"groups": ["a", 3, "b"]}), "groups");
        assert_eq!(bare.email_verified, None);
        assert_eq!(bare.groups, strings(&["a", "b"]));
        assert_eq!(bare.display_name("sub-1"), "sub-1");
        let long = Profile::from_claims(&json!({"name": "x".repeat(300)}), "groups");
        assert_eq!(long.display_name("s").chars().count(), 100);
    }

    #[test]
    fn empty_lists_admit_everyone_and_admin_groups_make_admins() {
        let admins = strings(&["blog-admins"]);
        let policy = Policy {
            allowed_email_domains: &[],
            allowed_groups: &[],
            admin_groups: &admins,
        };
        assert_eq!(
            policy.admit(&profile(None, None, &[])),
            Ok(Admission { is_admin: false })
        );
        assert_eq!(
            policy.admit(&profile(None, None, &["staff", "blog-admins"])),
            Ok(Admission { is_admin: true })
        );
    }

    #[test]
    fn email_domains_need_a_verified_email_of_a_listed_domain() {
        let domains = strings(&["@example.com", "Example.org"]);
        let policy = Policy {
            allowed_email_domains: &domains,
            allowed_groups: &[],
            admin_groups: &[],
        };
        let ok = |e: &str| policy.admit(&profile(Some(e), Some(true), &[])).is_ok();
        assert!(ok("a@example.com") && ok("b@example.org"));
        assert!(!ok("c@evil.com") && !ok("d@sub.example.com") && !ok("no-at-sign"));
        let err = policy
            .admit(&profile(Some("a@example.com"), None, &[]))
            .unwrap_err();
        assert!(err.contains("has not verified"), "{err}");
        assert!(policy
            .admit(&profile(Some("a@example.com"), Some(false), &[]))
            .is_err());
        let err = policy.admit(&profile(None, None, &[])).unwrap_err();
        assert!(err.contains("did not share an email"), "{err}");
    }

    #[test]
    fn every_required_amr_value_must_be_present() {
        let got = strings(&["pwd", "otp", "mfa"]);
        assert!(missing_amr(&[], &got).is_empty());
        assert!(missing_amr(&strings(&["mfa", "otp"]), &got).is_empty());
        assert_eq!(
            missing_amr(&strings(&["mfa", "hwk"]), &got),
            strings(&["hwk"])
        );
        assert_eq!(missing_amr(&strings(&["mfa"]), &[]), strings(&["mfa"]));
        // Values are compared exactly, as RFC 8176 registers them.
        assert_eq!(
            missing_amr(&strings(&["mfa"]), &strings(&["MFA"])),
            strings(&["mfa"])
        );
        let kept = amr_values(["mfa", "mfa", "two words", "", "otp"]);
        assert_eq!(kept, strings(&["mfa", "otp"]));
        assert_eq!(amr_words("mfa"), "a second factor");
    }

    #[test]
    fn allowed_groups_need_one_membership() {
        let allowed = strings(&["writers", "editors"]);
        let policy = Policy {
            allowed_email_domains: &[],
            allowed_groups: &allowed,
            admin_groups: &[],
        };
        assert!(policy.admit(&profile(None, None, &["editors"])).is_ok());
        let err = policy
            .admit(&profile(None, None, &["readers"]))
            .unwrap_err();
        assert!(err.contains("not in a group"), "{err}");
        assert!(policy.admit(&profile(None, None, &[])).is_err());
    }
}
