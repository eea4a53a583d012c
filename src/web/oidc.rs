//! The OpenID Connect routes: leaving for the IdP, coming back, and the IdP's
//! back-channel logout.

use rocket::form::Form;
use rocket::http::{Cookie, CookieJar, Header, SameSite, Status};
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, uri, FromForm, Responder, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::login::after_login;
use super::{local_path, Frame};
use crate::auth::oidc::{Callback, OidcError, OidcProvider, Pending, LOGIN_TTL};
use crate::auth::session::{self, Start};
use crate::auth::{Client, Providers, UserAgent};
use crate::config::Config;
use crate::db::Db;
use crate::error::{Error, Result};

/// The pre-login cookie: state, nonce, PKCE verifier and `next`, encrypted.
pub const PENDING_COOKIE: &str = "quire_oidc";

pub fn routes() -> Vec<Route> {
    routes![start_login, callback, backchannel_logout]
}

/// Where a login through the provider starts (the login page's button).
pub fn login_path() -> String {
    uri!(start_login(next = _)).to_string()
}

/// The path of the callback, which `auth.oidc.redirect_url` must name.
pub fn callback_path() -> String {
    uri!(callback(params = _)).path().to_string()
}

/// The callback's parameters are the provider's to set, never ours.
impl rocket::http::uri::fmt::Ignorable<rocket::http::uri::fmt::Query> for Callback {}

/// The path the provider posts back-channel logout tokens to.
pub fn backchannel_logout_path() -> String {
    uri!(backchannel_logout).path().to_string()
}

#[derive(Serialize)]
struct ErrorPage {
    frame: Frame,
    title: String,
    message: String,
    retry_href: String,
    provider: String,
}

#[allow(clippy::large_enum_variant)]
#[derive(Responder)]
enum Outcome {
    Redirect(Redirect),
    Flash(Flash<Redirect>),
    Page((Status, Template)),
}

/// Turns a failed login into a page a person can act on; the reason goes to the log.
fn error_page(frame: Frame, oidc: &OidcProvider, err: OidcError, next: &str) -> Result<Outcome> {
    let provider = oidc.cfg.display_name.clone();
    let (status, title, message) = match &err {
        OidcError::Unavailable(_) => (
            Status::ServiceUnavailable,
            "Sign-in provider unavailable".to_string(),
            format!(
                "{provider} cannot be reached right now, so you cannot log in. The blog itself \
                 still works; try again in a few minutes."
            ),
        ),
        OidcError::Idp { error, .. } if error == "access_denied" => (
            Status::Forbidden,
            "Sign-in was not completed".to_string(),
            format!(
                "{provider} did not let you in (access denied), so you are not logged in here."
            ),
        ),
        OidcError::Idp { error, .. } => (
            Status::BadRequest,
            "Sign-in failed".to_string(),
            format!("{provider} reported an error ({error}), so you are not logged in."),
        ),
        OidcError::Refused(reason) => (
            Status::Forbidden,
            "Not allowed to log in here".to_string(),
            reason.clone(),
        ),
        OidcError::Failed(_) => (
            Status::BadRequest,
            "Sign-in failed".to_string(),
            format!(
                "The answer from {provider} could not be verified, so you are not logged in. \
                 Try again; if it keeps failing, tell this site's operator."
            ),
        ),
        OidcError::Internal(_) => {
            let OidcError::Internal(e) = err else {
                unreachable!()
            };
            return Err(e);
        }
    };
    log::warn!("OIDC login failed: {err}");
    let retry_href = match local_path(next) {
        Some(n) if !n.is_empty() => uri!(start_login(next = Some(n))).to_string(),
        _ => login_path(),
    };
    let page = ErrorPage {
        frame,
        title,
        message,
        retry_href,
        provider,
    };
    Ok(Outcome::Page((
        status,
        Template::render("oidc_error.html", page),
    )))
}

/// Sends the browser to the IdP, keeping state, nonce, PKCE verifier and `next` in a
/// private cookie. SameSite=Lax, not Rocket's default Strict: the browser must send it
/// on the redirect back from the IdP, a cross-site navigation.
#[get("/login/oidc?<next>")]
async fn start_login(
    frame: Frame,
    providers: &State<Providers>,
    cookies: &CookieJar<'_>,
    client: Client,
    next: Option<String>,
) -> Result<Outcome> {
    let Some(oidc) = providers.oidc() else {
        return Err(Error::NotFound);
    };
    let next = next
        .as_deref()
        .and_then(local_path)
        .unwrap_or("")
        .to_string();
    match oidc.begin(&next).await {
        Ok((url, pending)) => {
            let value = serde_json::to_string(&pending).map_err(Error::internal)?;
            let cookie = Cookie::build((PENDING_COOKIE, value))
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(client.https)
                .path("/")
                .max_age(time::Duration::seconds(LOGIN_TTL));
            cookies.add_private(cookie);
            Ok(Outcome::Redirect(Redirect::to(url)))
        }
        Err(e) => error_page(frame, oidc, e, &next),
    }
}

#[allow(clippy::too_many_arguments)]
#[get("/oidc/callback?<params..>")]
async fn callback(
    db: &Db,
    frame: Frame,
    providers: &State<Providers>,
    config: &State<Config>,
    cookies: &CookieJar<'_>,
    client: Client,
    agent: UserAgent,
    params: Callback,
) -> Result<Outcome> {
    let Some(oidc) = providers.oidc() else {
        return Err(Error::NotFound);
    };
    // Single use: whatever happens next, this browser's pending login is spent.
    let pending: Option<Pending> = cookies
        .get_private(PENDING_COOKIE)
        .and_then(|c| serde_json::from_str(c.value()).ok());
    cookies.remove_private(Cookie::from(PENDING_COOKIE));
    let Some(pending) = pending else {
        let err = match params.error {
            Some(error) => OidcError::Idp {
                error,
                description: params.error_description.unwrap_or_default(),
            },
            None => OidcError::Failed(
                "no login in progress in this browser (expired or already used)".into(),
            ),
        };
        return error_page(frame, oidc, err, "");
    };
    let login = match oidc.complete(&db.0, &params, &pending).await {
        Ok(login) => login,
        Err(e) => return error_page(frame, oidc, e, &pending.next),
    };
    session::start(
        &db.0,
        cookies,
        &config.auth,
        Start {
            user_id: login.identity.user.id,
            provider: "oidc",
            user_agent: &agent.0,
            secure: client.https,
            id_token: &login.id_token,
            oidc_sid: &login.sid,
            ..Default::default()
        },
    )
    .await?;
    let greeting = format!("Welcome, {}.", login.identity.user.name);
    Ok(Outcome::Flash(Flash::success(
        Redirect::to(after_login(&pending.next)),
        greeting,
    )))
}

#[derive(FromForm)]
struct LogoutTokenForm {
    logout_token: Option<String>,
}

/// The OP's answer: an empty 200, or 400 with an OAuth error body. Never cached.
#[derive(Responder)]
struct BackchannelAnswer {
    body: (Status, String),
    cache: Header<'static>,
}

/// OpenID Connect Back-Channel Logout 1.0: the OP posts a signed logout token naming a
/// subject or session; every quire session of it ends. Called server to server, so it
/// carries no CSRF token: the token's signature is its authentication.
#[post("/oidc/backchannel-logout", data = "<form>")]
async fn backchannel_logout(
    db: &Db,
    providers: &State<Providers>,
    form: Form<LogoutTokenForm>,
) -> Result<BackchannelAnswer> {
    let Some(oidc) = providers.oidc() else {
        return Err(Error::NotFound);
    };
    let cache = Header::new("Cache-Control", "no-store");
    let Some(token) = form.into_inner().logout_token.filter(|t| !t.is_empty()) else {
        let body = r#"{"error":"invalid_request","error_description":"logout_token is missing"}"#;
        return Ok(BackchannelAnswer {
            body: (Status::BadRequest, body.into()),
            cache,
        });
    };
    match oidc.backchannel_logout(&db.0, &token).await {
        Ok(ended) => {
            log::info!("back-channel logout ended {ended} session(s)");
            Ok(BackchannelAnswer {
                body: (Status::Ok, String::new()),
                cache,
            })
        }
        Err(OidcError::Internal(e)) => Err(e),
        Err(OidcError::Unavailable(why)) => {
            log::warn!("back-channel logout: {why}");
            Ok(BackchannelAnswer {
                body: (Status::ServiceUnavailable, String::new()),
                cache,
            })
        }
        Err(e) => {
            log::warn!("back-channel logout refused: {e}");
            let body =
                serde_json::json!({"error": "invalid_request", "error_description": e.to_string()});
            Ok(BackchannelAnswer {
                body: (Status::BadRequest, body.to_string()),
                cache,
            })
        }
    }
}
