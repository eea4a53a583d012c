//! The guard the handlers that log people in share (local login, signup, the OIDC
//! callback). Its own module, so the login and OIDC handlers both use it without
//! importing each other.

use rocket::http::CookieJar;
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::State;

use super::Frame;
use crate::auth::passkey::Passkeys;
use crate::auth::session::{self, Start};
use crate::auth::{Client, Providers, UserAgent};
use crate::config::Config;
use crate::db::users::User;
use crate::db::Db;
use crate::domain::{AuthMethod, ProviderId, SessionId};
use crate::error::Result;

/// What logging someone in takes, gathered by one guard so that the handlers that log
/// people in take it instead of seven guards: the database, the cookie jar, the
/// configuration and providers, what the request says about the client, and the page
/// frame for answering with a page. It sets no cookie by itself: a form shown again
/// adds the CSRF token (`Frame::with_csrf`).
pub struct LoginContext<'r> {
    pub db: &'r Db,
    pub cookies: &'r CookieJar<'r>,
    pub providers: &'r Providers,
    pub config: &'r Config,
    /// The passkey relying party (or why passkeys are off).
    pub passkeys: &'r Passkeys,
    pub client: Client,
    pub agent: UserAgent,
    pub frame: Frame,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for LoginContext<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let db = try_outcome!(req.guard::<&Db>().await);
        let providers = try_outcome!(req.guard::<&State<Providers>>().await);
        let config = try_outcome!(req.guard::<&State<Config>>().await);
        let passkeys = try_outcome!(req.guard::<&State<Passkeys>>().await);
        let client = try_outcome!(req.guard::<Client>().await);
        let agent = try_outcome!(req.guard::<UserAgent>().await);
        let frame = try_outcome!(req.guard::<Frame>().await);
        Outcome::Success(LoginContext {
            db,
            cookies: req.cookies(),
            providers: providers.inner(),
            config: config.inner(),
            passkeys: passkeys.inner(),
            client,
            agent,
            frame,
        })
    }
}

impl LoginContext<'_> {
    /// Starts a session for `user` in this browser (see `session::start`), valid while
    /// the user's credential version stays the one the login verified.
    pub async fn log_in(
        &self,
        user: &User,
        provider: ProviderId,
        remember: bool,
    ) -> Result<SessionId> {
        let method = match provider {
            ProviderId::Local => AuthMethod::Password,
            ProviderId::Oidc => AuthMethod::Oidc,
            ProviderId::Passkey => AuthMethod::Passkey,
        };
        self.log_in_with(user, provider, method, remember).await
    }

    /// `log_in`, recording how the login was made (a second step's method).
    pub async fn log_in_with(
        &self,
        user: &User,
        provider: ProviderId,
        method: AuthMethod,
        remember: bool,
    ) -> Result<SessionId> {
        let start = Start {
            user_id: user.id,
            provider,
            method,
            remember,
            user_agent: &self.agent.0,
            secure: self.client.https,
            id_token: None,
            oidc_sid: None,
            credential_version: user.credential_version,
        };
        session::start(&self.db.0, self.cookies, &self.config.auth, start).await
    }
}
