//! Passkey routes. Each ceremony is two POSTs from the page's own script
//! (/static/passkeys.js): its `.../options` answers JSON for the browser's
//! `navigator.credentials` call, then the page's form posts the browser's answer in a
//! `credential` field, as any form (CSRF token, redirect with a message).
//!
//! - /account/security/passkeys: add a passkey (named), behind the step-up like every
//!   factor change; /account/security/passkeys/<id>/remove removes one.
//! - /login/verify/passkey: a passkey as the second step after a password.
//! - /login/passkey: a passkey alone, through the passkey identity provider.

use rocket::http::{ContentType, Status};
use rocket::response::{Flash, Redirect};
use rocket::{post, routes, uri, FromForm, Route, State};

use super::login_context::LoginContext;
use super::login_verify::{ended_sentence, verify_path};
use super::security::{ask_for_proof, security_path, Who};
use super::{after_login, local_path, Reply};
use crate::auth::csrf::{CsrfForm, Submit};
use crate::auth::mfa::{self, Pending};
use crate::auth::passkey::{self, At, PasskeyAttempt, Passkeys, Refusal};
use crate::auth::{Client, CurrentUser, IdentityProvider, LoginError};
use crate::config::Config;
use crate::db::factors::{self, PendingPurpose};
use crate::db::passkeys as store;
use crate::db::{now, sessions, Db};
use crate::domain::{AccountKind, AuthMethod, ProviderId};
use crate::error::Result;

pub fn routes() -> Vec<Route> {
    routes![
        register_options,
        register,
        remove,
        verify_options,
        verify,
        login_options,
        login
    ]
}

/// A JSON answer to a page's script: the options, or `{"error": "..."}` to show.
type Json = (Status, (ContentType, String));

fn json(options: String) -> Json {
    (Status::Ok, (ContentType::JSON, options))
}

fn json_error(status: Status, message: &str) -> Json {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, (ContentType::JSON, body))
}

fn off(why: &str) -> Json {
    json_error(
        Status::NotFound,
        &format!("Passkeys are not available on this site: {why}."),
    )
}

fn owner_of(who: &Who) -> String {
    match who {
        Who::Session(s) => format!("session:{}", s.session_id),
        Who::Enrolling(p) => format!("pending:{}", p.row.id),
    }
}

/// The person's words for a refused answer.
fn refusal_words(refusal: &Refusal, action: &str) -> String {
    match refusal {
        Refusal::Off => "Passkeys are not available on this site.".into(),
        Refusal::NoChallenge => {
            format!("That passkey request has expired or was already used. {action}")
        }
        Refusal::Missing => format!(
            "No passkey answer arrived: passkeys need JavaScript in your browser, and the \
             request may have been cancelled. {action}"
        ),
        Refusal::Rejected => format!("That passkey was not accepted. {action}"),
        Refusal::Taken => "That passkey is registered already.".into(),
        Refusal::Internal(_) => String::new(),
    }
}

#[post("/account/security/passkeys/options", data = "<_form>")]
async fn register_options(
    db: &Db,
    passkeys: &State<Passkeys>,
    client: Client,
    jar: &rocket::http::CookieJar<'_>,
    who: Who,
    _form: CsrfForm<Submit>,
) -> Result<Json> {
    let webauthn = match passkeys.webauthn() {
        Ok(w) => w,
        Err(why) => return Ok(off(why)),
    };
    if who.user().kind != AccountKind::Local {
        return Ok(json_error(
            Status::Forbidden,
            "Your account's second factors are kept by your sign-in provider.",
        ));
    }
    if !who.fresh(db).await? {
        return Ok(json_error(
            Status::Forbidden,
            "Confirm it is you first (your password or a code), then add the passkey.",
        ));
    }
    let owner = owner_of(&who);
    let at = At {
        db: &db.0,
        jar,
        https: client.https,
    };
    let options = passkey::begin_registration(webauthn, &at, &owner, who.user()).await?;
    Ok(json(options))
}

#[derive(FromForm)]
struct RegisterForm {
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    credential: String,
}

/// Stores the passkey the browser just made; like turning on the authenticator app, it
/// logs out the account's other sessions. An enrolling account's session starts here.
#[post("/account/security/passkeys", data = "<form>")]
async fn register(
    ctx: LoginContext<'_>,
    passkeys: &State<Passkeys>,
    who: Who,
    form: CsrfForm<RegisterForm>,
) -> Result<Reply> {
    let db = ctx.db;
    let user = who.user().clone();
    let back = |msg: String| {
        Ok(Reply::Flash(Flash::error(
            Redirect::to(security_path()),
            msg,
        )))
    };
    let webauthn = match passkeys.webauthn() {
        Ok(w) => w,
        Err(_) => return back(refusal_words(&Refusal::Off, "")),
    };
    if user.kind != AccountKind::Local {
        return Err(crate::error::Error::NotFound);
    }
    if !who.fresh(db).await? {
        return Ok(ask_for_proof());
    }
    let owner = owner_of(&who);
    let at = At {
        db: &db.0,
        jar: ctx.cookies,
        https: ctx.client.https,
    };
    let name = match passkey::finish_registration(
        webauthn,
        &at,
        &owner,
        &user,
        &form.0.name,
        &form.0.credential,
    )
    .await
    {
        Ok(name) => name,
        Err(Refusal::Internal(e)) => return Err(e),
        Err(r) => return back(refusal_words(&r, "Try adding it again.")),
    };
    let now = now();
    match &who {
        Who::Session(s) => {
            store::upgrade_session(&db.0, s.session_id.0, now).await?;
            factors::delete_pending_of(&db.0, user.id).await?;
            let ended = sessions::delete_others(&db.0, user.id, s.session_id).await?;
            Ok(Reply::Flash(Flash::success(
                Redirect::to(security_path()),
                format!(
                    "Your passkey “{name}” is added: you can log in with it alone, or use it \
                     after your password. {}",
                    ended_sentence(ended)
                ),
            )))
        }
        Who::Enrolling(p) => {
            // The password step that led here becomes the session, once.
            if !factors::take_pending(&db.0, p.row.id, now).await? {
                return Ok(Reply::Flash(Flash::error(
                    Redirect::to(uri!(super::login::login_form(_))),
                    format!(
                        "Your passkey “{name}” is added, but your login expired meanwhile. \
                         Log in again."
                    ),
                )));
            }
            mfa::forget(&db.0, ctx.cookies).await?;
            factors::delete_pending_of(&db.0, user.id).await?;
            let ended = sessions::delete_all_for_user(&db.0, user.id).await?;
            ctx.log_in_with(
                &user,
                ProviderId::Local,
                AuthMethod::PasswordPasskey,
                p.row.remember,
            )
            .await?;
            Ok(Reply::Flash(Flash::success(
                Redirect::to(after_login(&p.row.next)),
                format!(
                    "Your passkey “{name}” is added and you are logged in. {}",
                    ended_sentence(ended)
                ),
            )))
        }
    }
}

/// Removes one of the account's passkeys; refused for the last second factor while
/// `auth.mfa.require` asks this account for one.
#[post("/account/security/passkeys/<id>/remove", data = "<_form>")]
async fn remove(
    db: &Db,
    config: &State<Config>,
    user: CurrentUser,
    id: i64,
    _form: CsrfForm<Submit>,
) -> Result<Reply> {
    if !mfa::fresh(&db.0, user.session_id).await? {
        return Ok(ask_for_proof());
    }
    let account = user.user.id;
    if mfa::required_for(&config.auth, &user.user) && !factors::has_factor(&db.0, account).await? {
        let others = store::list_of(&db.0, account)
            .await?
            .iter()
            .filter(|p| p.id != id)
            .count();
        if others == 0 {
            return Ok(Reply::Flash(Flash::error(
                Redirect::to(security_path()),
                "This site requires your account to have a second factor, so your last \
                 passkey stays. Add another passkey or an authenticator app first.",
            )));
        }
    }
    let msg = match store::delete(&db.0, account, id).await? {
        Some(name) => format!("Your passkey “{name}” was removed; it no longer logs you in."),
        None => "There was no such passkey to remove.".into(),
    };
    Ok(Reply::Flash(Flash::success(
        Redirect::to(security_path()),
        msg,
    )))
}

#[post("/login/verify/passkey/options", data = "<_form>")]
async fn verify_options(
    db: &Db,
    passkeys: &State<Passkeys>,
    client: Client,
    jar: &rocket::http::CookieJar<'_>,
    pending: Option<Pending>,
    _form: CsrfForm<Submit>,
) -> Result<Json> {
    let webauthn = match passkeys.webauthn() {
        Ok(w) => w,
        Err(why) => return Ok(off(why)),
    };
    let Some(pending) = pending.filter(|p| p.purpose() == PendingPurpose::Verify) else {
        return Ok(json_error(
            Status::Unauthorized,
            "Your login has expired or was not started. Log in again.",
        ));
    };
    let owner = format!("pending:{}", pending.row.id);
    let at = At {
        db: &db.0,
        jar,
        https: client.https,
    };
    match passkey::begin_second_factor(webauthn, &at, &owner, &pending.user).await? {
        Some(options) => Ok(json(options)),
        None => Ok(json_error(
            Status::NotFound,
            "Your account has no passkey. Enter a code instead.",
        )),
    }
}

#[derive(FromForm)]
struct CredentialForm {
    #[field(default = String::new())]
    credential: String,
    #[field(default = String::new())]
    next: String,
}

/// The second step with a passkey: the session starts once it signed this browser's
/// challenge.
#[post("/login/verify/passkey", data = "<form>")]
async fn verify(
    ctx: LoginContext<'_>,
    passkeys: &State<Passkeys>,
    pending: Option<Pending>,
    form: CsrfForm<CredentialForm>,
) -> Result<Reply> {
    let db = &ctx.db.0;
    let Some(pending) = pending.filter(|p| p.purpose() == PendingPurpose::Verify) else {
        return Ok(Reply::Flash(Flash::error(
            Redirect::to(uri!(super::login::login_form(_))),
            "Your login has expired or was not started. Log in again.",
        )));
    };
    let again = |msg: String| Ok(Reply::Flash(Flash::error(Redirect::to(verify_path()), msg)));
    let webauthn = match passkeys.webauthn() {
        Ok(w) => w,
        Err(_) => return again(refusal_words(&Refusal::Off, "")),
    };
    let owner = format!("pending:{}", pending.row.id);
    let user = &pending.user;
    let at = At {
        db,
        jar: ctx.cookies,
        https: ctx.client.https,
    };
    let checked =
        passkey::finish_second_factor(webauthn, &at, &owner, user, &form.0.credential).await;
    match checked {
        Ok(()) => {}
        Err(Refusal::Internal(e)) => return Err(e),
        Err(r) => return again(refusal_words(&r, "Try again, or enter a code.")),
    }
    // Used up here: one pending login makes at most one session.
    if !factors::take_pending(db, pending.row.id, now()).await? {
        mfa::forget(db, ctx.cookies).await?;
        return Ok(Reply::Flash(Flash::error(
            Redirect::to(uri!(super::login::login_form(_))),
            "Your login has expired or was not started. Log in again.",
        )));
    }
    mfa::forget(db, ctx.cookies).await?;
    ctx.log_in_with(
        user,
        ProviderId::Local,
        AuthMethod::PasswordPasskey,
        pending.row.remember,
    )
    .await?;
    if let Some(local) = ctx.providers.local() {
        ctx.cookies
            .add_private(local.device_cookie(&user.email, ctx.client.https));
    }
    Ok(Reply::Flash(Flash::success(
        Redirect::to(after_login(&pending.row.next)),
        format!("Welcome back, {}.", user.name),
    )))
}

#[post("/login/passkey/options", data = "<_form>")]
async fn login_options(ctx: LoginContext<'_>, _form: CsrfForm<Submit>) -> Result<Json> {
    let Some(provider) = ctx.providers.passkey() else {
        let why = ctx
            .passkeys
            .webauthn()
            .err()
            .unwrap_or("local accounts are off");
        return Ok(off(why));
    };
    let at = At {
        db: &ctx.db.0,
        jar: ctx.cookies,
        https: ctx.client.https,
    };
    let options = provider.begin(&at).await?;
    Ok(json(options))
}

/// A login with a passkey alone: the passkey provider names the account, and the
/// session starts as any login's does.
#[post("/login/passkey", data = "<form>")]
async fn login(ctx: LoginContext<'_>, form: CsrfForm<CredentialForm>) -> Result<Reply> {
    let form = form.0;
    let next = local_path(&form.next).map(str::to_string);
    let back = |msg: String| {
        Ok(Reply::Flash(Flash::error(
            Redirect::to(uri!(super::login::login_form(next.clone()))),
            msg,
        )))
    };
    let Some(provider) = ctx.providers.passkey() else {
        return back(refusal_words(&Refusal::Off, ""));
    };
    let attempt = PasskeyAttempt {
        at: At {
            db: &ctx.db.0,
            jar: ctx.cookies,
            https: ctx.client.https,
        },
        credential: &form.credential,
    };
    let identity = match provider.authenticate_passkey(&ctx.db.0, attempt).await {
        Ok(identity) => identity,
        Err(LoginError::Internal(e)) => return Err(e),
        Err(LoginError::Passkey(_)) if form.credential.trim().is_empty() => {
            return back(refusal_words(&Refusal::Missing, "Try again."))
        }
        Err(LoginError::Passkey(msg)) => {
            return back(format!(
                "{}. Try again, or log in with your email and password.",
                capitalized(&msg)
            ))
        }
        Err(_) => return back(refusal_words(&Refusal::Rejected, "Try again.")),
    };
    // Whatever password step this browser had waiting is over.
    mfa::forget(&ctx.db.0, ctx.cookies).await?;
    ctx.log_in(&identity.user, identity.provider, false).await?;
    Ok(Reply::Flash(Flash::success(
        Redirect::to(after_login(&form.next)),
        format!("Welcome back, {}.", identity.user.name),
    )))
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
