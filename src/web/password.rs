//! Password reset by mail: /password/forgot takes an email and always answers the same
//! way, in about the same time, whether or not an account has it; the mailed link leads
//! to /password/reset/<token>, where a new password (the signup policy) ends every
//! session of the account and logs the person in afresh.

use std::time::{Duration, Instant};

use rocket::http::{Header, Status};
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, uri, FromForm, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::login::wait_words;
use super::login_context::LoginContext;
use super::{Frame, Reply};
use crate::auth::csrf::{CsrfForm, CsrfToken};
use crate::auth::local::{client_key, normalize_email, ThrottleKeys, EMAIL_MAX};
use crate::auth::password::too_long;
use crate::config::{Config, PASSWORD_MAX};
use crate::db::throttle::{self, Reservation};
use crate::db::{now, resets, users};
use crate::domain::{AccountKind, ProviderId};
use crate::error::{Error, Result};
use crate::mail::reset::RESET_MINUTES;
use crate::mail::Outgoing;

pub fn routes() -> Vec<Route> {
    routes![forgot_form, forgot, reset_form, reset]
}

/// Requests one client address may make per `CLIENT_WINDOW`...
const CLIENT_MAX_REQUESTS: i64 = 20;
const CLIENT_WINDOW: i64 = 60 * 60;
/// ...and mails one address may be sent per `ADDRESS_WINDOW`, whoever asks.
const ADDRESS_MAX_MAILS: i64 = 3;
const ADDRESS_WINDOW: i64 = 60 * 60;
/// Every answer to the forgot form takes at least this long, so that the work done for
/// a known address (a token, a queued mail) does not show in the time.
const ANSWER_FLOOR: Duration = Duration::from_millis(250);

pub fn forgot_path() -> String {
    uri!(forgot_form).to_string()
}

pub fn reset_path(token: &str) -> String {
    uri!(reset_form(token)).to_string()
}

#[derive(Serialize)]
struct ForgotPage {
    frame: Frame,
    mail: bool,
    sent: bool,
    email: String,
    error: Option<String>,
    minutes: i64,
}

fn forgot_page(
    frame: Frame,
    mail: bool,
    sent: bool,
    email: String,
    error: Option<String>,
) -> Template {
    Template::render(
        "password_forgot.html",
        ForgotPage {
            frame,
            mail,
            sent,
            email,
            error,
            minutes: RESET_MINUTES,
        },
    )
}

#[get("/password/forgot")]
fn forgot_form(frame: Frame, csrf: CsrfToken, outgoing: &State<Outgoing>) -> Template {
    let mail = outgoing.mailer().is_some();
    forgot_page(frame.with_csrf(csrf), mail, false, String::new(), None)
}

#[derive(FromForm)]
struct ForgotForm {
    #[field(default = String::new())]
    email: String,
}

#[post("/password/forgot", data = "<form>")]
async fn forgot(
    ctx: LoginContext<'_>,
    csrf: CsrfToken,
    outgoing: &State<Outgoing>,
    keys: &State<ResetKeys>,
    form: CsrfForm<ForgotForm>,
) -> Result<Reply> {
    let started = Instant::now();
    let frame = ctx.frame.clone().with_csrf(csrf);
    let typed = form.0.email.trim().to_string();
    let Some(mailer) = outgoing.mailer() else {
        // Nothing is sent, and the page does not pretend otherwise.
        let page = forgot_page(frame, false, false, typed, None);
        return Ok(Reply::Page((Status::ServiceUnavailable, page)));
    };
    let refuse = |status: Status, msg: String, typed: String| {
        let page = forgot_page(frame.clone(), true, false, typed, Some(msg));
        Ok(Reply::Page((status, page)))
    };
    if typed.is_empty() {
        return refuse(
            Status::UnprocessableEntity,
            "Enter the email address of your account.".into(),
            typed,
        );
    }
    if typed.chars().count() > EMAIL_MAX
        || !typed.contains('@')
        || typed.chars().any(char::is_control)
    {
        return refuse(
            Status::UnprocessableEntity,
            "Enter an email address like name@example.com.".into(),
            typed,
        );
    }
    let db = &ctx.db.0;
    let now = now();
    let client = format!("reset:{}", client_key(ctx.client.ip));
    if let Reservation::Refused { wait_seconds } =
        throttle::reserve_in_window(db, &client, now, CLIENT_WINDOW, CLIENT_MAX_REQUESTS).await?
    {
        let msg = format!(
            "Too many reset requests from your network. Try again in {}.",
            wait_words(wait_seconds)
        );
        return refuse(Status::TooManyRequests, msg, typed);
    }
    let email = normalize_email(&typed);
    // Counted per typed address, known or not, so the limit reveals nothing either.
    let address = format!("reset-{}", keys.0.account(&email));
    let allowed = matches!(
        throttle::reserve_in_window(db, &address, now, ADDRESS_WINDOW, ADDRESS_MAX_MAILS).await?,
        Reservation::Granted { .. }
    );
    if allowed {
        let mut tx = db.begin().await?;
        if let Some(user) = users::local_by_email(db, &email).await? {
            mailer.queue_reset(&mut tx, &user).await?;
        } else if resets::oidc_account_has_email(db, &email).await? {
            let provider = ctx
                .config
                .auth
                .oidc
                .as_ref()
                .map_or("your sign-in provider", |o| o.display_name.as_str());
            mailer.queue_use_provider(&mut tx, &email, provider).await?;
        }
        tx.commit().await?;
        mailer.wake();
    }
    if let Some(rest) = ANSWER_FLOOR.checked_sub(started.elapsed()) {
        rocket::tokio::time::sleep(rest).await;
    }
    let page = forgot_page(frame, true, true, typed, None);
    Ok(Reply::Page((Status::Ok, page)))
}

#[derive(Serialize)]
struct ResetPage {
    frame: Frame,
    /// None: the link is unknown, used or expired.
    email: Option<String>,
    token: String,
    min_password_length: usize,
    error: Option<String>,
}

fn reset_page(
    frame: Frame,
    config: &Config,
    token: &str,
    email: Option<String>,
    error: Option<String>,
) -> Template {
    Template::render(
        "password_reset.html",
        ResetPage {
            frame,
            token: token.to_string(),
            email,
            min_password_length: config.auth.password_min_length,
            error,
        },
    )
}

/// The local account a live token belongs to.
async fn account_of(db: &crate::db::Pool, token: &str) -> Result<Option<users::User>> {
    if token.len() > 100 {
        return Ok(None);
    }
    let Some(id) = resets::user_of(db, &crate::token::hash(token), now()).await? else {
        return Ok(None);
    };
    Ok(users::by_id(db, id)
        .await?
        .filter(|u| u.kind == AccountKind::Local))
}

/// A response that no cache may keep: the reset pages are reached through a link that
/// works as a password.
#[derive(rocket::Responder)]
pub(crate) struct NoStore<R> {
    inner: R,
    cache: Header<'static>,
}

pub(crate) fn no_store<R>(inner: R) -> NoStore<R> {
    NoStore {
        inner,
        cache: Header::new("Cache-Control", "no-store"),
    }
}

#[get("/password/reset/<token>")]
async fn reset_form(
    frame: Frame,
    csrf: CsrfToken,
    db: &crate::db::Db,
    config: &State<Config>,
    token: &str,
) -> Result<NoStore<(Status, Template)>> {
    let frame = frame.with_csrf(csrf);
    Ok(no_store(match account_of(&db.0, token).await? {
        Some(user) => (
            Status::Ok,
            reset_page(frame, config, token, Some(user.email), None),
        ),
        None => (
            Status::NotFound,
            reset_page(frame, config, token, None, None),
        ),
    }))
}

#[derive(FromForm)]
struct ResetForm {
    #[field(default = String::new())]
    password: String,
}

#[post("/password/reset/<token>", data = "<form>")]
async fn reset(
    ctx: LoginContext<'_>,
    csrf: CsrfToken,
    outgoing: &State<Outgoing>,
    token: &str,
    form: CsrfForm<ResetForm>,
) -> Result<NoStore<Reply>> {
    set_password(ctx, csrf, outgoing, token, form)
        .await
        .map(no_store)
}

async fn set_password(
    ctx: LoginContext<'_>,
    csrf: CsrfToken,
    outgoing: &State<Outgoing>,
    token: &str,
    form: CsrfForm<ResetForm>,
) -> Result<Reply> {
    let frame = ctx.frame.clone().with_csrf(csrf);
    let db = &ctx.db.0;
    let Some(user) = account_of(db, token).await? else {
        let page = reset_page(frame, ctx.config, token, None, None);
        return Ok(Reply::Page((Status::NotFound, page)));
    };
    let Some(local) = ctx.providers.local() else {
        return Err(Error::NotFound);
    };
    let password = &form.0.password;
    let problem = if password.is_empty() {
        Some("Enter a new password.".to_string())
    } else if too_long(password) {
        Some(format!("Use at most {PASSWORD_MAX} characters."))
    } else {
        local.password_problem(password, &user.email, &user.name)
    };
    if let Some(problem) = problem {
        let page = reset_page(frame, ctx.config, token, Some(user.email), Some(problem));
        return Ok(Reply::Page((Status::UnprocessableEntity, page)));
    }
    let hash = local.hasher.hash(password).await?;
    let mut tx = db.begin().await?;
    // Used up here: of two requests with one link, one sets the password.
    let taken = resets::take(&mut tx, &crate::token::hash(token), now()).await?;
    let version = match taken {
        Some(id) if id == user.id => resets::set_password(&mut tx, user.id, &hash).await?,
        _ => None,
    };
    let Some(version) = version else {
        drop(tx);
        let page = reset_page(frame, ctx.config, token, None, None);
        return Ok(Reply::Page((Status::NotFound, page)));
    };
    if let Some(mailer) = outgoing.mailer() {
        mailer.queue_changed(&mut tx, &user).await?;
    }
    tx.commit().await?;
    if let Some(mailer) = outgoing.mailer() {
        mailer.wake();
    }
    let user = users::User {
        credential_version: version,
        ..user
    };
    // The new password is one factor: an account with a second one logs in with it.
    if let Some(step) = super::login_verify::second_step(&ctx, &user, false, "").await? {
        let note = "Your password was changed, and every session of your account was ended.";
        return Ok(super::login_verify::step_reply(step, note));
    }
    ctx.log_in(&user, ProviderId::Local, false).await?;
    ctx.cookies
        .add_private(local.device_cookie(&user.email, ctx.client.https));
    Ok(Reply::Flash(Flash::success(
        Redirect::to(uri!(super::dashboard::dashboard)),
        "Your password was changed, and every other session of your account was ended.",
    )))
}

/// Names the per-address counters of reset requests like the login throttle's account
/// rows (a keyed hash of the email), held as managed state.
pub struct ResetKeys(pub ThrottleKeys);
