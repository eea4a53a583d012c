//! /account/security: the account's second factors. An authenticator app is set up by
//! scanning a QR code (or typing the secret) and confirming with a `code`; recovery codes
//! are shown once, downloadable, and can be made anew. Setting up or removing a factor
//! and making new codes need a proof from the last ten minutes (step-up, at
//! /account/confirm), which then comes back here.
//!
//! An account that must have a factor and has none reaches this page after its password
//! with only a pending login (no session): setting up the app then starts its session.

use rocket::http::{ContentType, CookieJar, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, uri, FromForm, Responder, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::login::wait_words;
use super::login_context::LoginContext;
use super::login_verify::ended_sentence;
use super::{after_login, human_time, local_path, Frame, Reply};
use crate::auth::cookies::{self, Name};
use crate::auth::csrf::{CsrfForm, CsrfToken, Submit};
use crate::auth::mfa::{self, Against, CodeCheck, Mfa, Pending};
use crate::auth::totp::{self, Secret};
use crate::auth::{Client, CurrentUser, LoginError};
use crate::config::Config;
use crate::db::factors::{self, EnrolError, PendingPurpose};
use crate::db::users::User;
use crate::db::{now, sessions, Db};
use crate::domain::{AccountKind, AuthMethod, ProviderId};
use crate::error::{Error, Result};

pub fn routes() -> Vec<Route> {
    routes![
        security,
        confirm_totp,
        remove_totp,
        new_codes,
        download_codes,
        confirm_form,
        confirm
    ]
}

pub fn security_path() -> String {
    uri!(security).to_string()
}

fn confirm_path() -> String {
    uri!(confirm_form(Some(security_path()))).to_string()
}

/// Who is at the security page: a logged-in user, or an account that must set up a
/// factor before it gets a session. Forwards (to the login page) for anyone else.
pub enum Who {
    Session(CurrentUser),
    Enrolling(Pending),
}

impl Who {
    pub(super) fn user(&self) -> &User {
        match self {
            Who::Session(s) => &s.user,
            Who::Enrolling(p) => &p.user,
        }
    }

    /// Whether a proof is fresh enough for a sensitive change: the password of an
    /// enrolling account was just given (its pending login lasts less than the window).
    pub(super) async fn fresh(&self, db: &Db) -> Result<bool> {
        match self {
            Who::Session(s) => mfa::fresh(&db.0, s.session_id).await,
            Who::Enrolling(_) => Ok(true),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Who {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.guard::<CurrentUser>().await {
            Outcome::Success(u) => return Outcome::Success(Who::Session(u)),
            Outcome::Error(e) => return Outcome::Error(e),
            Outcome::Forward(_) => {}
        }
        match req.guard::<Pending>().await {
            Outcome::Success(p) if p.purpose() == PendingPurpose::Enrol => {
                Outcome::Success(Who::Enrolling(p))
            }
            Outcome::Error(e) => Outcome::Error(e),
            _ => Outcome::Forward(Status::Unauthorized),
        }
    }
}

#[derive(Serialize)]
struct Enrolment {
    secret: String,
    uri: String,
    qr: String,
}

#[derive(Serialize)]
struct SecurityPage {
    frame: Frame,
    /// A local account (a provider's accounts get their factors there).
    local: bool,
    /// Logged in with only a pending login: the page offers nothing but setting up.
    enrolling: bool,
    required: bool,
    fresh: bool,
    totp: Option<String>,
    enrolment: Option<Enrolment>,
    codes_left: i64,
    new_codes: Vec<String>,
    code_error: Option<String>,
    /// Where an enrolling account goes once set up.
    next: String,
    passkeys: Vec<PasskeyView>,
    /// Why passkeys are off on this site (no usable `site.url`); None when they are on.
    passkeys_off: Option<String>,
}

#[derive(Serialize)]
struct PasskeyView {
    id: i64,
    name: String,
    added: String,
    /// "never" before its first login.
    last_used: String,
}

/// The page. `code_error` is the enrolment form's message after a refused code.
async fn page(
    ctx: &LoginContext<'_>,
    mfa: &Mfa,
    frame: Frame,
    who: &Who,
    code_error: Option<String>,
) -> Result<Template> {
    let (db, jar, https, config) = (ctx.db, ctx.cookies, ctx.client.https, ctx.config);
    let user = who.user();
    let local = user.kind == AccountKind::Local;
    let fresh = who.fresh(db).await?;
    let factor = factors::totp_of(&db.0, user.id).await?;
    let mut enrolment = None;
    if local && factor.is_none() && fresh {
        enrolment = Some(enrolment_of(db, mfa, config, user).await?);
    }
    Ok(Template::render(
        "security.html",
        SecurityPage {
            frame,
            local,
            enrolling: matches!(who, Who::Enrolling(_)),
            required: mfa::required_for(&config.auth, user),
            fresh,
            totp: factor.map(|f| human_time(at(f.created_at))),
            enrolment,
            codes_left: factors::codes_left(&db.0, user.id).await?,
            new_codes: take_new_codes(jar, https, user),
            code_error,
            next: match who {
                Who::Enrolling(p) => after_login(&p.row.next),
                Who::Session(_) => after_login(""),
            },
            passkeys: crate::db::passkeys::list_of(&db.0, user.id)
                .await?
                .into_iter()
                .map(|p| PasskeyView {
                    id: p.id,
                    name: p.name,
                    added: human_time(at(p.created_at)),
                    last_used: if p.last_used_at == 0 {
                        "never".into()
                    } else {
                        human_time(at(p.last_used_at))
                    },
                })
                .collect(),
            passkeys_off: ctx.passkeys.webauthn().err().map(str::to_string),
        },
    ))
}

fn at(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The authenticator set-up on offer to the account, begun now if none is (or the one
/// on offer is old or no longer opens).
async fn enrolment_of(db: &Db, mfa: &Mfa, config: &Config, user: &User) -> Result<Enrolment> {
    let now = now();
    let offered = match factors::enrolment_of(&db.0, user.id).await? {
        Some((sealed, since)) if now - since < mfa::ENROLMENT_SECONDS => {
            mfa.open(&sealed, user.id, false)
        }
        _ => None,
    };
    let secret = match offered {
        Some(s) => s,
        None => {
            let s = Secret::generate();
            factors::begin_enrolment(&db.0, user.id, &mfa.seal(&s, user.id, false), now).await?;
            s
        }
    };
    let uri = secret.uri(&config.site.title, &user.email);
    Ok(Enrolment {
        secret: secret.to_base32(),
        qr: totp::qr_data_uri(&uri).unwrap_or_default(),
        uri,
    })
}

/// New recovery codes travel from the request that made them to the page that shows
/// them once, in a private cookie bound to the account.
fn keep_new_codes(jar: &CookieJar<'_>, https: bool, user: &User, codes: &[String]) {
    let mut cookie = cookies::build(
        Name::RecoveryCodes,
        format!("{} {}", user.id, codes.join(" ")),
        https,
    );
    cookie.set_max_age(time::Duration::minutes(10));
    jar.add_private(cookie);
}

fn take_new_codes(jar: &CookieJar<'_>, https: bool, user: &User) -> Vec<String> {
    let Some(cookie) = cookies::get(jar, Name::RecoveryCodes, https) else {
        return Vec::new();
    };
    cookies::remove(jar, Name::RecoveryCodes);
    let mut words = cookie.value().split(' ');
    if words.next() != Some(&user.id.to_string()) {
        return Vec::new();
    }
    words.map(str::to_string).collect()
}

#[get("/account/security")]
async fn security(
    ctx: LoginContext<'_>,
    mfa: &State<Mfa>,
    csrf: CsrfToken,
    who: Who,
) -> Result<Template> {
    let frame = ctx.frame.clone().with_csrf(csrf);
    page(&ctx, mfa, frame, &who, None).await
}

/// Off to the step-up page, to come back here.
pub(super) fn ask_for_proof() -> Reply {
    Reply::Flash(Flash::error(
        Redirect::to(confirm_path()),
        "Confirm it is you first: enter your password or a code.",
    ))
}

#[derive(FromForm)]
struct CodeForm {
    #[field(default = String::new())]
    code: String,
}

/// Confirms the authenticator set-up with a code from it: the app becomes the
/// account's factor, ten recovery codes are made (shown once), and every other session
/// ends. An enrolling account's session starts here.
#[post("/account/security/totp", data = "<form>")]
async fn confirm_totp(
    ctx: LoginContext<'_>,
    csrf: CsrfToken,
    mfa: &State<Mfa>,
    who: Who,
    form: CsrfForm<CodeForm>,
) -> Result<Reply> {
    let db = ctx.db;
    let user = who.user().clone();
    if user.kind != AccountKind::Local {
        return Err(Error::NotFound);
    }
    if !who.fresh(db).await? {
        return Ok(ask_for_proof());
    }
    let frame = ctx.frame.clone().with_csrf(csrf);
    let https = ctx.client.https;
    let (at_page, context) = (&who, &ctx);
    let refuse = |msg: String, status: Status| async move {
        let page = page(context, mfa, frame, at_page, Some(msg)).await?;
        Ok(Reply::Page((status, page)))
    };
    let Some((sealed, since)) = factors::enrolment_of(&db.0, user.id).await? else {
        if factors::has_factor(&db.0, user.id).await? {
            return Ok(Reply::Flash(Flash::success(
                Redirect::to(security_path()),
                "Your authenticator app is already set up.",
            )));
        }
        return refuse(
            "That set-up has ended; scan the new QR code below.".into(),
            Status::UnprocessableEntity,
        )
        .await;
    };
    let secret = match mfa.open(&sealed, user.id, false) {
        Some(s) if now() - since < mfa::ENROLMENT_SECONDS => s,
        _ => {
            return refuse(
                "That set-up has ended; scan the new QR code below.".into(),
                Status::UnprocessableEntity,
            )
            .await
        }
    };
    let code = form.0.code.trim().to_string();
    if code.is_empty() {
        return refuse(
            "Enter the 6-digit code your app shows.".into(),
            Status::UnprocessableEntity,
        )
        .await;
    }
    let against = Against::Enrolment(&secret);
    let (check, step) = mfa::check_code(&db.0, mfa, &user, &code, against, ctx.client.ip).await?;
    let step = match (check, step) {
        (CodeCheck::Totp, Some(step)) => step,
        (CodeCheck::Throttled { wait_seconds }, _) => {
            let msg = format!(
                "Too many failed attempts. Try again in {}.",
                wait_words(wait_seconds)
            );
            return refuse(msg, Status::TooManyRequests).await;
        }
        _ => {
            return refuse(
                "That code is not the one your app shows now. Check the app's clock and try \
                 the current code."
                    .into(),
                Status::UnprocessableEntity,
            )
            .await
        }
    };
    let codes = mfa::new_codes();
    let hashes = mfa::code_hashes(user.id, &codes);
    let sealed_factor = mfa.seal(&secret, user.id, true);
    let now = now();
    match factors::complete_enrolment(&db.0, user.id, &sealed, &sealed_factor, step, &hashes, now)
        .await
    {
        Ok(()) => {}
        Err(EnrolError::Exists) => {
            return Ok(Reply::Flash(Flash::success(
                Redirect::to(security_path()),
                "Your authenticator app is already set up.",
            )))
        }
        Err(EnrolError::Stale) => {
            return refuse(
                "That set-up was replaced; scan the new QR code below.".into(),
                Status::Conflict,
            )
            .await
        }
        Err(EnrolError::Db(e)) => return Err(e.into()),
    }
    let ended = match &who {
        Who::Session(s) => {
            sessions::upgrade_method(&db.0, s.session_id, AuthMethod::PasswordTotp, now).await?;
            factors::delete_pending_of(&db.0, user.id).await?;
            sessions::delete_others(&db.0, user.id, s.session_id).await?
        }
        Who::Enrolling(p) => {
            // The password step that led here becomes the session, once.
            if !factors::take_pending(&db.0, p.row.id, now).await? {
                return Ok(Reply::Flash(Flash::error(
                    Redirect::to(uri!(super::login::login_form(_))),
                    "Your authenticator app is set up, but your login expired meanwhile. \
                     Log in again with a code from it.",
                )));
            }
            mfa::forget(&db.0, ctx.cookies).await?;
            factors::delete_pending_of(&db.0, user.id).await?;
            let ended = sessions::delete_all_for_user(&db.0, user.id).await?;
            ctx.log_in_with(
                &user,
                ProviderId::Local,
                AuthMethod::PasswordTotp,
                p.row.remember,
            )
            .await?;
            ended
        }
    };
    keep_new_codes(ctx.cookies, https, &user, &codes);
    Ok(Reply::Flash(Flash::success(
        Redirect::to(security_path()),
        format!(
            "Your authenticator app is set up. {} Save your recovery codes below: they are \
             shown only this once.",
            ended_sentence(ended)
        ),
    )))
}

/// Removes the authenticator app and voids the recovery codes; refused while
/// `auth.mfa.require` asks this account for a factor.
#[post("/account/security/totp/remove", data = "<_form>")]
async fn remove_totp(
    db: &Db,
    config: &State<Config>,
    user: CurrentUser,
    _form: CsrfForm<Submit>,
) -> Result<Reply> {
    if !mfa::fresh(&db.0, user.session_id).await? {
        return Ok(ask_for_proof());
    }
    // A passkey is a second factor too: with one, the app may go.
    if mfa::required_for(&config.auth, &user.user)
        && !crate::db::passkeys::has_passkey(&db.0, user.user.id).await?
    {
        return Ok(Reply::Flash(Flash::error(
            Redirect::to(security_path()),
            "This site requires your account to have a second factor, so the authenticator \
             app stays.",
        )));
    }
    let msg = if factors::remove_all(&db.0, user.user.id).await? {
        "Your authenticator app was removed and your recovery codes no longer work."
    } else {
        "There was no authenticator app to remove."
    };
    Ok(Reply::Flash(Flash::success(
        Redirect::to(security_path()),
        msg,
    )))
}

/// Makes a new set of recovery codes; the old set stops working.
#[post("/account/security/recovery-codes", data = "<_form>")]
async fn new_codes(
    db: &Db,
    jar: &CookieJar<'_>,
    client: Client,
    user: CurrentUser,
    _form: CsrfForm<Submit>,
) -> Result<Reply> {
    if !mfa::fresh(&db.0, user.session_id).await? {
        return Ok(ask_for_proof());
    }
    if !factors::has_factor(&db.0, user.user.id).await? {
        return Ok(Reply::Flash(Flash::error(
            Redirect::to(security_path()),
            "Set up an authenticator app first; recovery codes come with it.",
        )));
    }
    let codes = mfa::new_codes();
    factors::replace_codes(
        &db.0,
        user.user.id,
        &mfa::code_hashes(user.user.id, &codes),
        now(),
    )
    .await?;
    keep_new_codes(jar, client.https, &user.user, &codes);
    Ok(Reply::Flash(Flash::success(
        Redirect::to(security_path()),
        "New recovery codes are below, shown only this once; the old ones no longer work.",
    )))
}

#[derive(FromForm)]
struct CodesForm {
    #[field(default = String::new())]
    codes: String,
}

/// A text file.
#[derive(Responder)]
struct Download {
    body: (ContentType, String),
    disposition: Header<'static>,
}

/// The codes just shown, as a text file to keep. The page sends them back (quire keeps
/// only their hashes); only the account's unused codes are written out.
#[post("/account/security/recovery-codes/download", data = "<form>")]
async fn download_codes(
    db: &Db,
    config: &State<Config>,
    user: CurrentUser,
    form: CsrfForm<CodesForm>,
) -> Result<std::result::Result<Download, Flash<Redirect>>> {
    let codes: Vec<String> = form
        .0
        .codes
        .split_whitespace()
        .take(mfa::RECOVERY_CODES)
        .map(str::to_string)
        .collect();
    let hashes = mfa::code_hashes(user.user.id, &codes);
    let valid = factors::unused_among(&db.0, user.user.id, &hashes).await?;
    if codes.is_empty() || valid != codes.len() {
        return Ok(Err(Flash::error(
            Redirect::to(security_path()),
            "Those are not your current recovery codes. Make a new set to download it.",
        )));
    }
    let mut text = format!(
        "Recovery codes for {} at {}\nEach works once, in place of a code from your \
         authenticator app.\n\n",
        user.user.email, config.site.title
    );
    for c in &codes {
        text.push_str(c);
        text.push('\n');
    }
    Ok(Ok(Download {
        body: (ContentType::Plain, text),
        disposition: Header::new(
            "Content-Disposition",
            "attachment; filename=\"recovery-codes.txt\"",
        ),
    }))
}

#[derive(Serialize)]
struct ConfirmPage {
    frame: Frame,
    next: String,
    has_password: bool,
    has_factor: bool,
    error: Option<String>,
    minutes: i64,
}

async fn confirm_page(
    db: &Db,
    frame: Frame,
    user: &CurrentUser,
    next: &str,
    error: Option<String>,
) -> Result<Template> {
    Ok(Template::render(
        "account_confirm.html",
        ConfirmPage {
            frame,
            next: local_path(next).unwrap_or("").to_string(),
            has_password: user.user.kind == AccountKind::Local,
            has_factor: factors::has_factor(&db.0, user.user.id).await?,
            error,
            minutes: mfa::STEP_UP_SECONDS / 60,
        },
    ))
}

/// Step-up: asks for the password or a code, then goes back to `next`.
#[get("/account/confirm?<next>")]
async fn confirm_form(
    db: &Db,
    frame: Frame,
    csrf: CsrfToken,
    user: CurrentUser,
    next: Option<String>,
) -> Result<Template> {
    let next = next.unwrap_or_default();
    confirm_page(db, frame.with_csrf(csrf), &user, &next, None).await
}

#[derive(FromForm)]
struct ConfirmForm {
    #[field(default = String::new())]
    password: String,
    #[field(default = String::new())]
    code: String,
    #[field(default = String::new())]
    next: String,
}

#[post("/account/confirm", data = "<form>")]
async fn confirm(
    ctx: LoginContext<'_>,
    csrf: CsrfToken,
    mfa: &State<Mfa>,
    user: CurrentUser,
    form: CsrfForm<ConfirmForm>,
) -> Result<Reply> {
    let form = form.0;
    let db = ctx.db;
    let frame = ctx.frame.clone().with_csrf(csrf);
    let next = local_path(&form.next)
        .map(str::to_string)
        .unwrap_or_else(security_path);
    let (asking, typed_next) = (&user, form.next.clone());
    let refuse = |status: Status, msg: String| async move {
        let page = confirm_page(db, frame, asking, &typed_next, Some(msg)).await?;
        Ok(Reply::Page((status, page)))
    };
    let code = form.code.trim();
    let outcome: std::result::Result<Option<&str>, (Status, String)> = if !form.password.is_empty()
    {
        let Some(local) = ctx
            .providers
            .local()
            .filter(|_| user.user.kind == AccountKind::Local)
        else {
            return Err(Error::NotFound);
        };
        match super::account::current_password_of(
            local,
            &db.0,
            ctx.cookies,
            &ctx.client,
            &user.user,
            &form.password,
        )
        .await
        {
            Ok(true) => Ok(None),
            Ok(false)
            | Err(LoginError::Invalid | LoginError::Unsupported | LoginError::Passkey(_)) => Err((
                Status::Unauthorized,
                "That is not your password.".to_string(),
            )),
            Err(LoginError::Throttled { wait_seconds }) => Err((
                Status::TooManyRequests,
                format!(
                    "Too many failed attempts. Try again in {}.",
                    wait_words(wait_seconds)
                ),
            )),
            Err(LoginError::Internal(e)) => return Err(e),
        }
    } else if !code.is_empty() {
        let (check, _) = mfa::check_code(
            &db.0,
            mfa,
            &user.user,
            code,
            Against::Account,
            ctx.client.ip,
        )
        .await?;
        match check {
            CodeCheck::Totp => Ok(None),
            CodeCheck::Recovery => Ok(Some("recovery")),
            CodeCheck::Invalid => Err((
                Status::Unauthorized,
                "That code is not valid. Codes work once; wait for the next one.".to_string(),
            )),
            CodeCheck::Throttled { wait_seconds } => Err((
                Status::TooManyRequests,
                format!(
                    "Too many failed attempts. Try again in {}.",
                    wait_words(wait_seconds)
                ),
            )),
        }
    } else {
        Err((
            Status::UnprocessableEntity,
            "Enter your password or a code.".to_string(),
        ))
    };
    match outcome {
        Err((status, msg)) => refuse(status, msg).await,
        Ok(used) => {
            sessions::mark_proved(&db.0, user.session_id, now()).await?;
            let mut msg = format!(
                "Confirmed. For the next {} minutes you can change your security settings.",
                mfa::STEP_UP_SECONDS / 60
            );
            if used.is_some() {
                // As at login: a recovery code ends every other session.
                let ended = sessions::delete_others(&db.0, user.user.id, user.session_id).await?;
                let left = factors::codes_left(&db.0, user.user.id).await?;
                msg = format!(
                    "{msg} You used a recovery code; {left} left. {}",
                    ended_sentence(ended)
                );
            }
            Ok(Reply::Flash(Flash::success(Redirect::to(next), msg)))
        }
    }
}
