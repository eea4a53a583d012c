//! The vocabulary every layer shares: the ids of users, posts and sessions, and the kinds
//! of account and login provider. It depends on nothing else in quire; `db` converts
//! these to and from its columns, `config` reads provider names into `ProviderId`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub(crate) i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An account: local or from an OpenID provider.
    UserId
);
id_type!(
    /// A post, drafts included.
    PostId
);
id_type!(
    /// A session row (what the account page lists and lets one end).
    SessionId
);

/// A session id as it appears in a path (`/account/sessions/<id>/end`); anything but an
/// integer names no session and the route does not match.
impl<'a> rocket::request::FromParam<'a> for SessionId {
    type Error = <i64 as rocket::request::FromParam<'a>>::Error;

    fn from_param(param: &'a str) -> Result<Self, Self::Error> {
        i64::from_param(param).map(SessionId)
    }
}

/// Where an account's identity comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// Email and password kept here.
    Local,
    /// Keyed by (issuer, subject) at an OpenID provider; no password here.
    Oidc,
}

/// A way of logging in, as `auth.providers` names it and each session records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum ProviderId {
    Local,
    Oidc,
    /// A local account's passkey alone (a discoverable WebAuthn credential). Not named
    /// in `auth.providers`: it comes with "local".
    Passkey,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Local => "local",
            AccountKind::Oidc => "oidc",
        }
    }
}

impl FromStr for AccountKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(AccountKind::Local),
            "oidc" => Ok(AccountKind::Oidc),
            other => Err(format!("unknown account kind {other:?}")),
        }
    }
}

impl ProviderId {
    pub const ALL: [ProviderId; 3] = [ProviderId::Local, ProviderId::Oidc, ProviderId::Passkey];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::Local => "local",
            ProviderId::Oidc => "oidc",
            ProviderId::Passkey => "passkey",
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ProviderId::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown provider {s:?} (known: \"local\", \"oidc\")"))
    }
}

impl TryFrom<String> for ProviderId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ProviderId> for &'static str {
    fn from(p: ProviderId) -> &'static str {
        p.as_str()
    }
}

/// How a session was made: the proofs its login took. Recorded with each session and
/// shown on the account page; later ways (passkeys) are further variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "&'static str")]
pub enum AuthMethod {
    /// A password alone.
    Password,
    /// A password, then a code from an authenticator app.
    PasswordTotp,
    /// A password, then a recovery code.
    RecoveryCode,
    /// An OpenID provider vouched.
    Oidc,
    /// A password, then a passkey.
    PasswordPasskey,
    /// A passkey alone (it verified its user: a PIN or biometric on the device).
    Passkey,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 6] = [
        AuthMethod::Password,
        AuthMethod::PasswordTotp,
        AuthMethod::RecoveryCode,
        AuthMethod::Oidc,
        AuthMethod::PasswordPasskey,
        AuthMethod::Passkey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::PasswordTotp => "password+totp",
            AuthMethod::RecoveryCode => "recovery-code",
            AuthMethod::Oidc => "oidc",
            AuthMethod::PasswordPasskey => "password+passkey",
            AuthMethod::Passkey => "passkey",
        }
    }

    /// How the account page says it.
    pub fn describe(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::PasswordTotp => "password and authenticator app",
            AuthMethod::RecoveryCode => "password and recovery code",
            AuthMethod::Oidc => "single sign-on",
            AuthMethod::PasswordPasskey => "password and passkey",
            AuthMethod::Passkey => "passkey",
        }
    }

    /// Whether the login took a second factor here.
    pub fn has_second_factor(self) -> bool {
        matches!(
            self,
            AuthMethod::PasswordTotp
                | AuthMethod::RecoveryCode
                | AuthMethod::PasswordPasskey
                | AuthMethod::Passkey
        )
    }
}

impl FromStr for AuthMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        AuthMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown login method {s:?}"))
    }
}

impl From<AuthMethod> for &'static str {
    fn from(m: AuthMethod) -> &'static str {
        m.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip_and_unknown_ones_are_refused() {
        for p in ProviderId::ALL {
            assert_eq!(p.as_str().parse::<ProviderId>(), Ok(p));
        }
        let err = "ldap".parse::<ProviderId>().unwrap_err();
        assert!(
            err.contains("\"ldap\"") && err.contains("\"oidc\""),
            "{err}"
        );
        assert!("Local".parse::<ProviderId>().is_err());
    }

    #[test]
    fn login_methods_round_trip() {
        for m in AuthMethod::ALL {
            assert_eq!(m.as_str().parse::<AuthMethod>(), Ok(m));
        }
        assert!("sms".parse::<AuthMethod>().is_err());
    }

    #[test]
    fn account_kinds_round_trip() {
        for k in [AccountKind::Local, AccountKind::Oidc] {
            assert_eq!(k.as_str().parse::<AccountKind>(), Ok(k));
        }
        assert!("".parse::<AccountKind>().is_err());
    }
}
