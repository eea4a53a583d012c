//! Request guards: handlers learn who is calling only through these.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket_db_pools::Database;

use super::oidc::Recheck;
use super::{session, Providers};
use crate::config::Config;
use crate::db::users::User;
use crate::db::Db;
use crate::domain::{ProviderId, SessionId, UserId};

/// The logged-in user. Forwards (401) when nobody is logged in, so protected routes
/// fall through to the catcher that redirects to /login; errors with 503 only when the
/// database cannot answer.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub session_id: SessionId,
    /// The provider that made this session.
    pub provider: ProviderId,
}

impl CurrentUser {
    /// Whether this user may edit or delete a post written by `author_id`.
    pub fn may_manage(&self, author_id: UserId) -> bool {
        self.user.id == author_id || self.user.is_admin
    }
}

/// The session lookup, done once per request however many guards ask.
async fn lookup(req: &Request<'_>) -> Result<Option<CurrentUser>, ()> {
    let cached: &Result<Option<CurrentUser>, ()> = req
        .local_cache_async(async {
            let db = Db::fetch(req.rocket()).ok_or(())?;
            let config = req.rocket().state::<Config>().ok_or(())?;
            let https = super::Client::of(req).https;
            let found = session::current(db, req.cookies(), &config.auth, https).await;
            // OIDC sessions are re-checked at the provider every `recheck_minutes`;
            // when that changed something, read the session again.
            let found = match (
                found,
                req.rocket().state::<Providers>().and_then(|p| p.oidc()),
            ) {
                (Ok(Some(s)), Some(oidc)) if s.provider == ProviderId::Oidc => {
                    match oidc.recheck(db, s.session_id).await {
                        Ok(Recheck::NotDue) => Ok(Some(s)),
                        Ok(_) => session::current(db, req.cookies(), &config.auth, https).await,
                        Err(e) => Err(e),
                    }
                }
                (found, _) => found,
            };
            match found {
                // A password-only session of an account that must have a second
                // factor is not logged in (its owner logs in again and sets one up).
                Ok(found) => Ok(found
                    .filter(|s| !super::mfa::held_back(&config.auth, s))
                    .map(|s| CurrentUser {
                        user: s.user,
                        session_id: s.session_id,
                        provider: s.provider,
                    })),
                Err(e) => {
                    log::error!("session lookup failed: {e}");
                    Err(())
                }
            }
        })
        .await;
    cached.clone()
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentUser {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match lookup(req).await {
            Ok(Some(user)) => Outcome::Success(user),
            Ok(None) => Outcome::Forward(Status::Unauthorized),
            Err(()) => Outcome::Error((Status::ServiceUnavailable, ())),
        }
    }
}

/// The User-Agent header, empty when absent.
pub struct UserAgent(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for UserAgent {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(UserAgent(
            req.headers()
                .get_one("User-Agent")
                .unwrap_or("")
                .to_string(),
        ))
    }
}
