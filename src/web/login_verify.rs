//! The second step of a login: /login/verify takes a `code` (from an authenticator app,
//! or a recovery code) from a browser whose password step left it a pending login, and
//! only then starts a session. Also what every password step calls to find out whether
//! a second step is due (`second_step`).

use rocket::http::Status;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, uri, FromForm, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::login::wait_words;
use super::login_context::LoginContext;
use super::{after_login, Frame, Reply};
use crate::auth::csrf::{CsrfForm, CsrfToken};
use crate::auth::mfa::{self, Against, CodeCheck, FirstStep, Mfa, Pending};
use crate::auth::passkey::Passkeys;
use crate::db::factors::{self, PendingPurpose};
use crate::db::users::User;
use crate::db::{now, passkeys, sessions, Db};
use crate::domain::{AuthMethod, ProviderId};
use crate::error::Result;

pub fn routes() -> Vec<Route> {
    routes![verify_form, verify, verify_without_login]
}

pub fn verify_path() -> String {
    uri!(verify_form).to_string()
}

/// What a password step leads to when the account has (or must set up) a second factor.
pub enum Step {
    /// A code or a passkey is due at /login/verify (`passkey`: the account has one,
    /// `app`: it has an authenticator app).
    Verify { app: bool, passkey: bool },
    /// The account must set up a factor at /account/security first (`passkey`: a
    /// passkey is one it may choose, passkeys being on).
    Enrol { passkey: bool },
}

/// Called once a password was verified for `user`: when the account has a second
/// factor, or must have one, begins the wait for it (no session) and says which;
/// None when a session may start now.
pub async fn second_step(
    ctx: &LoginContext<'_>,
    user: &User,
    remember: bool,
    next: &str,
) -> Result<Option<Step>> {
    let db = &ctx.db.0;
    let app = factors::has_factor(db, user.id).await?;
    let passkey = ctx.passkeys.on() && passkeys::has_passkey(db, user.id).await?;
    let (purpose, step) = if app || passkey {
        (PendingPurpose::Verify, Step::Verify { app, passkey })
    } else if mfa::required_for(&ctx.config.auth, user) {
        let passkey = ctx.passkeys.on();
        (PendingPurpose::Enrol, Step::Enrol { passkey })
    } else {
        return Ok(None);
    };
    let next = super::local_path(next).unwrap_or("");
    let first = FirstStep {
        user,
        purpose,
        remember,
        next,
        https: ctx.client.https,
    };
    mfa::begin(db, ctx.cookies, first).await?;
    Ok(Some(step))
}

/// The answer to a password step that `second_step` held back, `note` first.
pub fn step_reply(step: Step, note: &str) -> Reply {
    let space = if note.is_empty() { "" } else { " " };
    match step {
        Step::Verify { app, passkey } => {
            let how = match (app, passkey) {
                (true, true) => "Use your passkey or enter a code from your authenticator app",
                (false, true) => "Use your passkey",
                _ => "Enter a code from your authenticator app",
            };
            Reply::Flash(Flash::success(
                Redirect::to(verify_path()),
                format!("{note}{space}{how} to finish logging in."),
            ))
        }
        Step::Enrol { passkey } => Reply::Flash(Flash::success(
            Redirect::to(super::security::security_path()),
            format!(
                "{note}{space}Your account must have a second factor: set up an authenticator \
                 app{} to finish logging in.",
                if passkey { " or add a passkey" } else { "" }
            ),
        )),
    }
}

#[derive(Serialize)]
struct VerifyPage {
    frame: Frame,
    error: Option<String>,
    minutes: i64,
    /// The account has an authenticator app (the code form), a passkey (its button).
    app: bool,
    passkey: bool,
}

/// Which second factors the pending login's account can use here: (app, passkey).
async fn factors_of(ctx_db: &Db, passkeys: &Passkeys, user: &User) -> Result<(bool, bool)> {
    let app = factors::has_factor(&ctx_db.0, user.id).await?;
    let passkey = passkeys.on() && passkeys::has_passkey(&ctx_db.0, user.id).await?;
    Ok((app, passkey))
}

fn verify_page(frame: Frame, error: Option<String>, (app, passkey): (bool, bool)) -> Template {
    Template::render(
        "login_verify.html",
        VerifyPage {
            frame,
            error,
            minutes: mfa::VERIFY_MINUTES,
            app,
            passkey,
        },
    )
}

/// Where a browser with no live pending login goes: back to the password step.
fn start_over() -> Reply {
    Reply::Flash(Flash::error(
        Redirect::to(uri!(super::login::login_form(_))),
        "Your login has expired or was not started. Log in again.",
    ))
}

#[get("/login/verify")]
async fn verify_form(
    db: &Db,
    passkeys: &State<Passkeys>,
    frame: Frame,
    csrf: CsrfToken,
    pending: Option<Pending>,
) -> Result<Reply> {
    Ok(match pending {
        Some(p) if p.purpose() == PendingPurpose::Verify => {
            let factors = factors_of(db, passkeys, &p.user).await?;
            Reply::Page((
                Status::Ok,
                verify_page(frame.with_csrf(csrf), None, factors),
            ))
        }
        Some(_) => Reply::Redirect(Redirect::to(super::security::security_path())),
        None => start_over(),
    })
}

#[derive(FromForm)]
struct CodeForm {
    #[field(default = String::new())]
    code: String,
}

#[post("/login/verify", data = "<form>")]
async fn verify(
    ctx: LoginContext<'_>,
    csrf: CsrfToken,
    pending: Pending,
    mfa: &State<Mfa>,
    form: CsrfForm<CodeForm>,
) -> Result<Reply> {
    let frame = ctx.frame.clone().with_csrf(csrf);
    if pending.purpose() != PendingPurpose::Verify {
        return Ok(Reply::Redirect(Redirect::to(
            super::security::security_path(),
        )));
    }
    let code = form.0.code.trim().to_string();
    let factors = factors_of(ctx.db, ctx.passkeys, &pending.user).await?;
    let refuse = |status: Status, msg: String| {
        Ok(Reply::Page((
            status,
            verify_page(frame.clone(), Some(msg), factors),
        )))
    };
    if code.is_empty() {
        return refuse(
            Status::UnprocessableEntity,
            "Enter the 6-digit code from your authenticator app, or a recovery code.".into(),
        );
    }
    let db = &ctx.db.0;
    let user = &pending.user;
    let (check, _) = mfa::check_code(db, mfa, user, &code, Against::Account, ctx.client.ip).await?;
    let method = match check {
        CodeCheck::Totp => AuthMethod::PasswordTotp,
        CodeCheck::Recovery => AuthMethod::RecoveryCode,
        CodeCheck::Invalid => {
            return refuse(
                Status::Unauthorized,
                "That code is not valid. Codes work once; wait for the next one.".into(),
            )
        }
        CodeCheck::Throttled { wait_seconds } => {
            let msg = format!(
                "Too many failed attempts. Try again in {}.",
                wait_words(wait_seconds)
            );
            return refuse(Status::TooManyRequests, msg);
        }
    };
    // Used up here: one pending login makes at most one session.
    if !factors::take_pending(db, pending.row.id, now()).await? {
        mfa::forget(db, ctx.cookies).await?;
        return Ok(start_over());
    }
    mfa::forget(db, ctx.cookies).await?;
    let session = ctx
        .log_in_with(user, ProviderId::Local, method, pending.row.remember)
        .await?;
    if let Some(local) = ctx.providers.local() {
        ctx.cookies
            .add_private(local.device_cookie(&user.email, ctx.client.https));
    }
    let to = after_login(&pending.row.next);
    let greeting = format!("Welcome back, {}.", user.name);
    if method == AuthMethod::RecoveryCode {
        // A recovery code is used when the app is lost, perhaps with the password:
        // whoever else is logged in to this account is logged out.
        let ended = sessions::delete_others(db, user.id, session).await?;
        let left = factors::codes_left(db, user.id).await?;
        let msg = format!(
            "{greeting} You used a recovery code; {left} {} left. {} Set up your \
             authenticator app again or make new codes on your security page.",
            if left == 1 { "is" } else { "are" },
            ended_sentence(ended),
        );
        return Ok(Reply::Flash(Flash::success(Redirect::to(to), msg)));
    }
    Ok(Reply::Flash(Flash::success(Redirect::to(to), greeting)))
}

/// "Every other session was logged out (2)." or that there were none.
pub fn ended_sentence(ended: u64) -> String {
    match ended {
        0 => "No other session was logged in.".into(),
        1 => "1 other session was logged out.".into(),
        n => format!("{n} other sessions were logged out."),
    }
}

/// A code posted from a browser with no pending login (expired, used, never begun).
#[post("/login/verify", rank = 2, data = "<_form>")]
fn verify_without_login(_form: CsrfForm<CodeForm>) -> Reply {
    start_over()
}
