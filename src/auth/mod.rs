//! Who may log in and how. Each way of proving identity is an `IdentityProvider`; the
//! set configured under `auth.providers` is built once at launch and managed, and every
//! provider ends in the same session row and cookie, so no route asks which one was used.

pub mod client;
pub mod cookies;
pub mod csrf;
pub mod guards;
pub mod local;
pub mod mfa;
pub mod oidc;
pub mod passkey;
pub mod password;
pub mod session;
pub mod totp;

use std::net::IpAddr;
use std::sync::Arc;

use crate::db::users::User;
use crate::db::Pool;
use crate::domain::ProviderId;
use crate::error::Error;

pub use client::Client;
pub use guards::{CurrentUser, UserAgent};
pub use local::LocalProvider;

/// Someone a provider vouched for, mapped to a local account.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: User,
    /// The provider that vouched, kept with the session.
    pub provider: ProviderId,
}

/// How the login page offers a provider.
#[derive(Debug, Clone)]
pub enum LoginEntry {
    /// The email-and-password form posting to /login.
    PasswordForm,
    /// A button labelled "Log in with <label>" that sends the browser to the web layer's
    /// route for this provider, which starts a redirect-based login.
    Redirect { label: String },
    /// A "Log in with a passkey" button: the browser's WebAuthn ceremony (a script), whose
    /// answer posts to the web layer's passkey login route.
    Passkey,
}

/// What the login form submitted.
pub struct PasswordAttempt<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub client: IpAddr,
    /// The browser's device cookie, if it has one (see `local::DEVICE_COOKIE`).
    pub device: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown account or wrong secret: deliberately one case, one message.
    #[error("incorrect email or password")]
    Invalid,
    /// Too many recent failures for this account or client.
    #[error("too many failed attempts; retry in {wait_seconds} s")]
    Throttled { wait_seconds: i64 },
    /// This provider does not take passwords.
    #[error("this provider does not accept passwords")]
    Unsupported,
    /// A passkey's answer was refused; the message says why, for the person.
    #[error("{0}")]
    Passkey(String),
    #[error(transparent)]
    Internal(#[from] Error),
}

impl From<sqlx::Error> for LoginError {
    fn from(e: sqlx::Error) -> Self {
        LoginError::Internal(e.into())
    }
}

#[rocket::async_trait]
pub trait IdentityProvider: Send + Sync + 'static {
    /// Which provider this is; stored with each session.
    fn id(&self) -> ProviderId;

    /// How /login offers this provider.
    fn login_entry(&self) -> LoginEntry;

    /// Checks an email and password posted to /login. Providers that log people in by
    /// redirect answer `LoginError::Unsupported`.
    async fn authenticate_password(
        &self,
        db: &Pool,
        attempt: PasswordAttempt<'_>,
    ) -> Result<Identity, LoginError> {
        let _ = (db, attempt);
        Err(LoginError::Unsupported)
    }

    /// Checks a passkey's answer to the login challenge this browser was given (a
    /// discoverable credential: it names the account). Other providers answer
    /// `LoginError::Unsupported`.
    async fn authenticate_passkey(
        &self,
        db: &Pool,
        attempt: passkey::PasskeyAttempt<'_, '_>,
    ) -> Result<Identity, LoginError> {
        let _ = (db, attempt);
        Err(LoginError::Unsupported)
    }

    /// Where the browser goes once quire's own session of this provider has ended;
    /// `None` means quire's home page.
    async fn after_logout(&self, id_token: Option<&str>) -> Option<String> {
        let _ = id_token;
        None
    }
}

/// The configured providers, in the order of `auth.providers`.
#[derive(Clone)]
pub struct Providers {
    all: Vec<Arc<dyn IdentityProvider>>,
    local: Option<Arc<LocalProvider>>,
    oidc: Option<Arc<oidc::OidcProvider>>,
    passkey: Option<Arc<passkey::PasskeyProvider>>,
}

impl Providers {
    /// The configured providers, local first (its form leads the login page).
    pub fn new(local: Option<Arc<LocalProvider>>, oidc: Option<Arc<oidc::OidcProvider>>) -> Self {
        let mut all: Vec<Arc<dyn IdentityProvider>> = Vec::new();
        if let Some(l) = &local {
            all.push(l.clone());
        }
        if let Some(o) = &oidc {
            all.push(o.clone());
        }
        Providers {
            all,
            local,
            oidc,
            passkey: None,
        }
    }

    /// Adds passkey-only logins (after the others on the login page).
    pub fn with_passkey(mut self, passkey: Arc<passkey::PasskeyProvider>) -> Self {
        self.all.push(passkey.clone());
        self.passkey = Some(passkey);
        self
    }

    /// The provider of passkey-only logins, when passkeys are on.
    pub fn passkey(&self) -> Option<&Arc<passkey::PasskeyProvider>> {
        self.passkey.as_ref()
    }

    pub fn all(&self) -> &[Arc<dyn IdentityProvider>] {
        &self.all
    }

    pub fn by_id(&self, id: ProviderId) -> Option<&Arc<dyn IdentityProvider>> {
        self.all.iter().find(|p| p.id() == id)
    }

    /// The provider behind the login form, if one takes passwords.
    pub fn password_provider(&self) -> Option<&Arc<dyn IdentityProvider>> {
        self.all
            .iter()
            .find(|p| matches!(p.login_entry(), LoginEntry::PasswordForm))
    }

    /// Local accounts, for signup, password changes and the command line.
    pub fn local(&self) -> Option<&Arc<LocalProvider>> {
        self.local.as_ref()
    }

    /// The OpenID provider, for its redirect and callback routes.
    pub fn oidc(&self) -> Option<&Arc<oidc::OidcProvider>> {
        self.oidc.as_ref()
    }
}
