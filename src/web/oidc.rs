//! The OpenID Connect routes: leaving for the IdP, coming back, and the IdP's
//! back-channel logout.

use rocket::form::Form;
use rocket::http::{CookieJar, Header, Status};
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, uri, FromForm, Responder, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::login_context::LoginContext;
use super::{after_login, local_path, Frame, Reply};
use crate::auth::cookies::{self, Name};
use crate::auth::oidc::{
    amr_words, log_safe, Callback, OidcError, OidcProvider, Pending, LOGIN_TTL,
};
use crate::auth::session::{self, Start};
use crate::auth::{Client, Providers};
use crate::db::{now, Db};
use crate::error::{Error, Result};

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

/// Turns a failed login into a page a person can act on; the reason goes to the log.
fn error_page(frame: Frame, oidc: &OidcProvider, err: OidcError, next: &str) -> Result<Reply> {
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
        OidcError::Idp {
            code: Some("access_denied"),
            ..
        } => (
            Status::Forbidden,
            "Sign-in was not completed".to_string(),
            format!(
                "{provider} did not let you in (access denied), so you are not logged in here."
            ),
        ),
        // Only the registered code is repeated, with words of our own: the rest of the
        // callback could have been written by anyone.
        OidcError::Idp {
            code: Some(code), ..
        } => (
            Status::BadRequest,
            "Sign-in failed".to_string(),
            format!(
                "{provider} reported an error ({code}: {}), so you are not logged in.",
                idp_error_meaning(code)
            ),
        ),
        OidcError::Idp { code: None, .. } => (
            Status::BadRequest,
            "Sign-in failed".to_string(),
            format!("{provider} reported an error, so you are not logged in."),
        ),
        OidcError::Throttled => (
            Status::TooManyRequests,
            "Too many sign-in attempts".to_string(),
            "Too many sign-in attempts came from your network lately, so this one was not \
             sent to the sign-in provider. Try again in a few minutes."
                .to_string(),
        ),
        OidcError::Refused(reason) => (
            Status::Forbidden,
            "Not allowed to log in here".to_string(),
            reason.clone(),
        ),
        OidcError::Assurance { missing, admin, .. } => {
            let what: Vec<String> = missing.iter().map(|m| amr_words(m)).collect();
            let of_whom = if *admin {
                "requires of its administrators"
            } else {
                "requires"
            };
            (
                Status::Forbidden,
                "Stronger sign-in required".to_string(),
                format!(
                    "Your organisation's sign-in ({provider}) did not use {}, which this blog \
                     {of_whom}. You are not logged in. Sign in again with {provider} using it; \
                     if you are not offered it, ask your organisation's IT support to set it up.",
                    what.join(" and ")
                ),
            )
        }
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
    log::warn!("OIDC login failed: {}", log_safe(&err.to_string()));
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
    Ok(Reply::Page((
        status,
        Template::render("oidc_error.html", page),
    )))
}

/// What a registered OAuth error code means, in a few words.
fn idp_error_meaning(code: &str) -> &'static str {
    match code {
        "temporarily_unavailable" => "it is busy or down for a moment",
        "server_error" => "it had an internal problem",
        "login_required"
        | "interaction_required"
        | "account_selection_required"
        | "consent_required" => "it needs you to sign in or consent there first",
        _ => "it refused this site's request; tell this site's operator",
    }
}

/// Sends the browser to the IdP, keeping state, nonce, PKCE verifier and `next` in a
/// private cookie. SameSite=Lax, not Rocket's default Strict: the browser must send it
/// on the redirect back from the IdP, a cross-site navigation.
#[get("/login/oidc?<next>")]
async fn start_login(
    db: &Db,
    frame: Frame,
    providers: &State<Providers>,
    cookies: &CookieJar<'_>,
    client: Client,
    next: Option<String>,
) -> Result<Reply> {
    let Some(oidc) = providers.oidc() else {
        return Err(Error::NotFound);
    };
    let next = next
        .as_deref()
        .and_then(local_path)
        .unwrap_or("")
        .to_string();
    match oidc.begin(&db.0, client.ip, &next).await {
        Ok((url, pending)) => {
            let value = serde_json::to_string(&pending).map_err(Error::internal)?;
            let mut cookie = cookies::build(Name::OidcPending, value, client.https);
            cookie.set_max_age(time::Duration::seconds(LOGIN_TTL));
            cookies.add_private(cookie);
            Ok(Reply::Redirect(Redirect::to(url)))
        }
        Err(e) => error_page(frame, oidc, e, &next),
    }
}

#[get("/oidc/callback?<params..>")]
async fn callback(ctx: LoginContext<'_>, params: Callback) -> Result<Reply> {
    let LoginContext {
        db,
        cookies,
        providers,
        config,
        client,
        agent,
        frame,
        ..
    } = ctx;
    let Some(oidc) = providers.oidc() else {
        return Err(Error::NotFound);
    };
    // Single use: whatever happens next, this browser's pending login is spent.
    let pending: Option<Pending> = cookies::get(cookies, Name::OidcPending, client.https)
        .and_then(|c| serde_json::from_str(c.value()).ok());
    cookies::remove(cookies, Name::OidcPending);
    let Some(pending) = pending else {
        // Whatever the parameters say, this browser started no login (an `error` here
        // could have been written by anyone).
        let err = OidcError::Failed(
            "no login in progress in this browser (expired or already used)".into(),
        );
        return error_page(frame, oidc, err, "");
    };
    let login = match oidc.complete(&db.0, client.ip, &params, &pending).await {
        Ok(login) => login,
        Err(e) => return error_page(frame, oidc, e, &pending.next),
    };
    let session_id = session::start(
        &db.0,
        cookies,
        &config.auth,
        Start {
            user_id: login.identity.user.id,
            provider: login.identity.provider,
            method: crate::domain::AuthMethod::Oidc,
            remember: false,
            user_agent: &agent.0,
            secure: client.https,
            id_token: Some(&login.id_token),
            oidc_sid: Some(&login.sid),
            credential_version: login.identity.user.credential_version,
        },
    )
    .await?;
    oidc.keep_tokens(&db.0, session_id, &login.tokens, now())
        .await?;
    crate::db::sessions::set_amr(&db.0, session_id, &login.amr).await?;
    let greeting = format!("Welcome, {}.", login.identity.user.name);
    Ok(Reply::Flash(Flash::success(
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
            log::warn!("back-channel logout: {}", log_safe(&why));
            Ok(BackchannelAnswer {
                body: (Status::ServiceUnavailable, String::new()),
                cache,
            })
        }
        Err(e) => {
            log::warn!("back-channel logout refused: {}", log_safe(&e.to_string()));
            let body =
                serde_json::json!({"error": "invalid_request", "error_description": e.to_string()});
            Ok(BackchannelAnswer {
                body: (Status::BadRequest, body.to_string()),
                cache,
            })
        }
    }
}
