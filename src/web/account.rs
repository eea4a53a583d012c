//! The author's account: active sessions, the handle and the password.

use rocket::http::{CookieJar, Status};
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, uri, FromForm, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::{human_time, Frame, Reply};
use crate::auth::csrf::{CsrfForm, Submit};
use crate::auth::local::{FieldErrors, LocalProvider, SetPasswordError, DEVICE_COOKIE};
use crate::auth::{session, Client, CurrentUser, LoginError, Providers};
use crate::db::handles::{self, ChangeError, Handle};
use crate::db::sessions::{self, SessionInfo};
use crate::db::{current_time, Db};
use crate::domain::{AccountKind, AuthMethod, SessionId};
use crate::error::{Error, Result};

pub fn routes() -> Vec<Route> {
    routes![
        account,
        end_session,
        end_other_sessions,
        change_password,
        change_handle
    ]
}

#[derive(Serialize)]
struct SessionView {
    id: SessionId,
    browser: String,
    started: String,
    last_seen: String,
    remember: bool,
    current: bool,
    /// How its login was made ("password and authenticator app").
    how: String,
}

/// "Firefox 120 on Linux", or "Unknown browser".
pub fn describe_browser(user_agent: &str) -> String {
    match woothee::parser::Parser::new().parse(user_agent) {
        Some(r) if r.name != "UNKNOWN" => {
            let major = r.version.split('.').next().unwrap_or("");
            let os = if r.os == "UNKNOWN" {
                String::new()
            } else {
                format!(" on {}", r.os)
            };
            format!("{} {}{}", r.name, major, os).replace("  ", " ")
        }
        _ if user_agent.is_empty() => "Unknown browser".into(),
        _ => user_agent.chars().take(60).collect(),
    }
}

#[derive(Serialize)]
struct AccountPage {
    frame: Frame,
    sessions: Vec<SessionView>,
    has_password: bool,
    min_password_length: usize,
    errors: FieldErrors,
    handle: HandleView,
    email: super::verify::EmailForm,
}

/// The handle form: the account's handle and, after a refused change, what was typed.
#[derive(Serialize, Default)]
struct HandleView {
    current: String,
    value: String,
    errors: FieldErrors,
    min: usize,
    max: usize,
    hold_days: i64,
}

impl HandleView {
    fn refused(typed: &str, message: String) -> HandleView {
        HandleView {
            value: typed.to_string(),
            errors: FieldErrors::from([("handle", vec![message])]),
            ..Default::default()
        }
    }
}

async fn account_page(
    db: &Db,
    frame: Frame,
    user: &CurrentUser,
    providers: &Providers,
    errors: FieldErrors,
    handle: Option<HandleView>,
) -> Result<Template> {
    let email = super::verify::EmailForm::load(db, user, providers).await?;
    page_with(db, frame, user, providers, errors, handle, email).await
}

/// The account page after a refused email change (`verify::change_email`).
pub(crate) async fn email_refused(
    db: &Db,
    frame: Frame,
    user: &CurrentUser,
    providers: &Providers,
    email: super::verify::EmailForm,
) -> Result<Template> {
    page_with(db, frame, user, providers, FieldErrors::new(), None, email).await
}

async fn page_with(
    db: &Db,
    frame: Frame,
    user: &CurrentUser,
    providers: &Providers,
    errors: FieldErrors,
    handle: Option<HandleView>,
    email: super::verify::EmailForm,
) -> Result<Template> {
    let current = handles::ensure(&db.0, user.user.id, &user.user.name).await?;
    let mut handle = handle.unwrap_or_else(|| HandleView {
        value: current.clone(),
        ..Default::default()
    });
    handle.current = current;
    handle.min = handles::MIN_LEN;
    handle.max = handles::MAX_LEN;
    handle.hold_days = handles::HOLD_DAYS;
    let rows = sessions::list_for_user(&db.0, user.user.id, current_time()).await?;
    let sessions = rows
        .into_iter()
        .map(|s: SessionInfo| SessionView {
            id: s.id,
            browser: describe_browser(&s.user_agent),
            started: human_time(s.created_at),
            last_seen: human_time(s.last_seen_at),
            remember: s.remember,
            current: s.id == user.session_id,
            how: how_made(&s),
        })
        .collect();
    let local = providers
        .local()
        .filter(|_| user.user.kind == AccountKind::Local);
    Ok(Template::render(
        "account.html",
        AccountPage {
            frame,
            sessions,
            has_password: local.is_some(),
            min_password_length: local.map_or(0, |l| l.min_password_length()),
            errors,
            handle,
            email,
        },
    ))
}

/// How a session was made, in words: an OIDC login with the methods its provider named,
/// "OpenID Connect (mfa, otp)".
fn how_made(s: &SessionInfo) -> String {
    match s.method {
        AuthMethod::Oidc if s.amr.is_empty() => "OpenID Connect".into(),
        AuthMethod::Oidc => format!("OpenID Connect ({})", s.amr.join(", ")),
        other => other.describe().into(),
    }
}

#[get("/account")]
async fn account(
    db: &Db,
    frame: Frame,
    user: CurrentUser,
    providers: &State<Providers>,
) -> Result<Template> {
    account_page(db, frame, &user, providers, FieldErrors::new(), None).await
}

/// Ends one of the user's sessions; ending the current one logs out here, and at the
/// provider for a session made through it, as /logout does.
#[post("/account/sessions/<id>/end", data = "<_form>")]
async fn end_session(
    db: &Db,
    cookies: &CookieJar<'_>,
    providers: &State<Providers>,
    user: CurrentUser,
    id: SessionId,
    _form: CsrfForm<Submit>,
) -> Result<Flash<Redirect>> {
    if id == user.session_id {
        // As /logout: only sessions made through an IdP carry the ID token that ends
        // its session too.
        let id_token = sessions::id_token(&db.0, user.session_id).await?;
        session::end(&db.0, cookies).await?;
        let to = match providers.by_id(user.provider) {
            Some(provider) => provider.after_logout(id_token.as_deref()).await,
            None => None,
        };
        return Ok(Flash::success(
            Redirect::to(to.unwrap_or_else(|| uri!(super::public::index(_)).to_string())),
            "You are logged out.",
        ));
    }
    if !sessions::delete_for_user(&db.0, user.user.id, id).await? {
        return Err(Error::NotFound);
    }
    Ok(Flash::success(
        Redirect::to(uri!(account)),
        "That session has ended.",
    ))
}

#[post("/account/sessions/others/end", data = "<_form>")]
async fn end_other_sessions(
    db: &Db,
    user: CurrentUser,
    _form: CsrfForm<Submit>,
) -> Result<Flash<Redirect>> {
    let n = sessions::delete_others(&db.0, user.user.id, user.session_id).await?;
    let msg = match n {
        0 => "There were no other sessions.".to_string(),
        1 => "Ended 1 other session.".to_string(),
        n => format!("Ended {n} other sessions."),
    };
    Ok(Flash::success(Redirect::to(uri!(account)), msg))
}

#[derive(FromForm)]
struct PasswordForm {
    #[field(default = String::new())]
    current_password: String,
    #[field(default = String::new())]
    new_password: String,
}

/// Changes the password after checking the current one (throttled like a login), and
/// ends every other session: whoever might have known the old password is logged out
/// everywhere.
#[post("/account/password", data = "<form>")]
async fn change_password(
    db: &Db,
    cookies: &CookieJar<'_>,
    client: Client,
    frame: Frame,
    user: CurrentUser,
    providers: &State<Providers>,
    form: CsrfForm<PasswordForm>,
) -> Result<Reply> {
    let form = form.0;
    let Some(local) = providers
        .local()
        .filter(|_| user.user.kind == AccountKind::Local)
    else {
        return Err(Error::NotFound);
    };
    let mut errors = FieldErrors::new();
    let current = current_password_of(
        local,
        &db.0,
        cookies,
        &client,
        &user.user,
        &form.current_password,
    )
    .await;
    let status = current_password_checked(current, &mut errors)?;
    if errors.is_empty() {
        match local
            .change_password(&db.0, &user.user, &form.new_password, user.session_id)
            .await
        {
            Ok(()) => {}
            Err(SetPasswordError::Refused(msg)) => {
                errors.insert("new_password", vec![msg]);
            }
            Err(SetPasswordError::Internal(e)) => return Err(e),
        }
    }
    if !errors.is_empty() {
        let page = account_page(db, frame, &user, providers, errors, None).await?;
        return Ok(Reply::Page((status, page)));
    }
    Ok(Reply::Flash(Flash::success(
        Redirect::to(uri!(account)),
        "Password changed. Every other session has been logged out.",
    )))
}

#[derive(FromForm)]
struct HandleForm {
    #[field(default = String::new())]
    handle: String,
}

/// Changes the account's handle. The old one stays this account's for
/// `handles::HOLD_DAYS`, and its author page redirects to the new one meanwhile.
#[post("/account/handle", data = "<form>")]
async fn change_handle(
    db: &Db,
    frame: Frame,
    user: CurrentUser,
    providers: &State<Providers>,
    form: CsrfForm<HandleForm>,
) -> Result<Reply> {
    let typed = form.0.handle;
    let refused = match Handle::parse(&typed) {
        Ok(handle) => match handles::change(&db.0, user.user.id, &handle).await {
            Ok(None) => {
                return Ok(Reply::Flash(Flash::success(
                    Redirect::to(uri!(account)),
                    format!("Your handle already is {handle}."),
                )))
            }
            Ok(Some(old)) if old.is_empty() => {
                let msg = format!(
                    "Your handle is now {handle}: your page is {}.",
                    super::authors::author_path(handle.as_str())
                );
                return Ok(Reply::Flash(Flash::success(
                    Redirect::to(uri!(account)),
                    msg,
                )));
            }
            Ok(Some(old)) => {
                let msg = format!(
                    "Your handle is now {handle}: your page is {}. {} leads there for {} days.",
                    super::authors::author_path(handle.as_str()),
                    super::authors::author_path(&old),
                    handles::HOLD_DAYS
                );
                return Ok(Reply::Flash(Flash::success(
                    Redirect::to(uri!(account)),
                    msg,
                )));
            }
            Err(ChangeError::Taken) => "That handle is taken; choose another.".to_string(),
            Err(ChangeError::Db(e)) => return Err(e.into()),
        },
        Err(message) => message,
    };
    let view = HandleView::refused(&typed, refused);
    let page = account_page(db, frame, &user, providers, FieldErrors::new(), Some(view)).await?;
    Ok(Reply::Page((Status::UnprocessableEntity, page)))
}

/// Whether `password` is the account's, as a login would judge it from this browser: its
/// device cookie (which spares a known device the account's lockout) goes with it.
pub(super) async fn current_password_of(
    local: &LocalProvider,
    db: &crate::db::Pool,
    cookies: &CookieJar<'_>,
    client: &Client,
    user: &crate::db::users::User,
    password: &str,
) -> std::result::Result<bool, LoginError> {
    let device = cookies.get_private(DEVICE_COOKIE);
    local
        .verify_current(
            db,
            user,
            password,
            client.ip,
            device.as_ref().map(|c| c.value()),
        )
        .await
}

/// Puts what is wrong with a form's `current_password` (as `verify_current` judged it)
/// under that field, and gives the status to answer with if the form is refused: 429
/// when the account's failures are throttled, else 422.
pub(super) fn current_password_checked(
    current: std::result::Result<bool, LoginError>,
    errors: &mut FieldErrors,
) -> Result<Status> {
    match current {
        Ok(true) => {}
        Ok(false) | Err(LoginError::Invalid | LoginError::Unsupported | LoginError::Passkey(_)) => {
            errors.insert(
                "current_password",
                vec!["That is not your current password.".into()],
            );
        }
        Err(LoginError::Throttled { wait_seconds }) => {
            let msg = format!(
                "Too many failed attempts. Try again in {}.",
                super::login::wait_words(wait_seconds)
            );
            errors.insert("current_password", vec![msg]);
            return Ok(Status::TooManyRequests);
        }
        Err(LoginError::Internal(e)) => return Err(e),
    }
    Ok(Status::UnprocessableEntity)
}
