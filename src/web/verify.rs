//! Email verification (`auth.verify_email`): signup answers "check your inbox" (the same
//! page whether or not the address has an account), the mailed link at
//! /verify-email/<token> confirms the address and logs the person in, an unconfirmed
//! account writes drafts but does not publish, and an email change on /account is
//! confirmed at the new address before it replaces the old one, which is told.

use std::time::{Duration, Instant};

use rocket::http::{CookieJar, Status};
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, uri, FromForm, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;
use validator::ValidateEmail;

use super::login_context::LoginContext;
use super::password::{no_store, NoStore, ResetKeys};
use super::{Frame, Reply};
use crate::auth::csrf::{CsrfForm, CsrfToken, Submit};
use crate::auth::local::{normalize_email, FieldErrors, EMAIL_MAX};
use crate::auth::{Client, CurrentUser, Providers};
use crate::config::Config;
use crate::db::users::{self, User};
use crate::db::verifications::{self, Confirmed};
use crate::db::{now, rate, Db};
use crate::domain::{AccountKind, ProviderId};
use crate::error::{Error, Result};
use crate::mail::verify::VERIFY_HOURS;
use crate::mail::Outgoing;

pub fn routes() -> Vec<Route> {
    routes![confirm, resend, change_email]
}

/// New links one account may ask for per hour from the dashboard.
const RESEND_MAX: i64 = 3;
/// Mails a signup may cause to one address per hour, whoever signs up with it.
const SIGNUP_MAILS_MAX: i64 = 3;
const HOUR: i64 = 60 * 60;
/// Every "check your inbox" answer takes at least this long, so that the work for a new
/// account and for a taken address (a different insert, a different mail) does not show.
const ANSWER_FLOOR: Duration = Duration::from_millis(250);

pub fn verify_path(token: &str) -> String {
    uri!(confirm(token)).to_string()
}

// ---------------------------------------------------------------------------------------
// Signup

/// What a signup with `auth.verify_email` needs besides the login context: the mailer,
/// the keys naming per-address counters, and when the request began (for the floor).
pub struct SignupMail<'r> {
    outgoing: &'r Outgoing,
    keys: &'r ResetKeys,
    started: Instant,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SignupMail<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let started = Instant::now();
        let outgoing = try_outcome!(req.guard::<&State<Outgoing>>().await);
        let keys = try_outcome!(req.guard::<&State<ResetKeys>>().await);
        Outcome::Success(SignupMail {
            outgoing: outgoing.inner(),
            keys: keys.inner(),
            started,
        })
    }
}

#[derive(Serialize)]
struct SentPage {
    frame: Frame,
    email: String,
    hours: i64,
}

/// The answer to a signup when addresses are verified: `created` is the new account, or
/// None when `email` (normalized) already had one, whose owner then gets a mail saying
/// so, with a reset link. Either way one mail is queued (within a per-address bound) and
/// the same page comes back after the same floor, so the answer tells nobody whether the
/// address has an account.
pub(crate) async fn signed_up(
    ctx: &LoginContext<'_>,
    mail: SignupMail<'_>,
    email: &str,
    created: Option<&User>,
) -> Result<Reply> {
    let mailer = mail
        .outgoing
        .mailer()
        .ok_or_else(|| Error::Internal("auth.verify_email is on without [mail]".into()))?;
    let db = &ctx.db.0;
    let key = format!("verify-signup-{}", mail.keys.0.account(email));
    if rate::hit(db, &key, now(), HOUR).await? <= SIGNUP_MAILS_MAX {
        let mut tx = db.begin().await?;
        match created {
            Some(user) => {
                mailer
                    .queue_verification(&mut tx, user, &user.email)
                    .await?
            }
            None => {
                if let Some(owner) = users::local_by_email(db, email).await? {
                    mailer.queue_signup_attempt(&mut tx, &owner).await?;
                }
            }
        }
        tx.commit().await?;
        mailer.wake();
    }
    if let Some(rest) = ANSWER_FLOOR.checked_sub(mail.started.elapsed()) {
        rocket::tokio::time::sleep(rest).await;
    }
    let page = SentPage {
        frame: ctx.frame.clone(),
        email: email.to_string(),
        hours: VERIFY_HOURS,
    };
    Ok(Reply::Page((
        Status::Ok,
        Template::render("verify_sent.html", page),
    )))
}

// ---------------------------------------------------------------------------------------
// The link

#[derive(Serialize)]
struct LinkPage {
    frame: Frame,
    /// "dead" (unknown, used, replaced or expired) or "taken" (the address went to
    /// another account meanwhile).
    state: &'static str,
    email: String,
    /// The visitor is logged in to an account still waiting for confirmation: the page
    /// offers the button that sends a new link.
    can_resend: bool,
}

#[get("/verify-email/<token>")]
async fn confirm(
    ctx: LoginContext<'_>,
    csrf: CsrfToken,
    user: Option<CurrentUser>,
    token: &str,
) -> Result<NoStore<Reply>> {
    let refused = |state, status, email| dead_link(&ctx, user.as_ref(), csrf, state, status, email);
    let db = &ctx.db.0;
    if token.len() > 100 {
        return refused("dead", Status::NotFound, String::new()).await;
    }
    let mut tx = db.begin().await?;
    let Some((id, email)) = verifications::take(&mut tx, &crate::token::hash(token), now()).await?
    else {
        drop(tx);
        return refused("dead", Status::NotFound, String::new()).await;
    };
    let previous = match verifications::confirm(&mut tx, id, &email).await? {
        Confirmed::Done { previous } => previous,
        Confirmed::Taken => {
            drop(tx);
            return refused("taken", Status::Conflict, email).await;
        }
        Confirmed::Gone => {
            drop(tx);
            return refused("dead", Status::NotFound, String::new()).await;
        }
    };
    tx.commit().await?;
    let Some(account) = users::by_id(db, id).await? else {
        return refused("dead", Status::NotFound, String::new()).await;
    };
    let msg = if previous == account.email {
        format!("Thank you: {} is confirmed.", account.email)
    } else {
        format!(
            "Your email address is now {}: log in with it from now on.",
            account.email
        )
    };
    // A mailed link is one factor, like a password: an account with a second factor (or
    // one it must set up) finishes at that step.
    if let Some(step) = super::login_verify::second_step(&ctx, &account, false, "").await? {
        return Ok(no_store(super::login_verify::step_reply(step, &msg)));
    }
    // A fresh session, as a login makes: whatever this browser had before ends.
    ctx.log_in(&account, ProviderId::Local, false).await?;
    if let Some(local) = ctx.providers.local() {
        ctx.cookies
            .add_private(local.device_cookie(&account.email, ctx.client.https));
    }
    Ok(no_store(Reply::Flash(Flash::success(
        Redirect::to(uri!(super::dashboard::dashboard)),
        msg,
    ))))
}

/// The page for a link that does not confirm anything (any more).
async fn dead_link(
    ctx: &LoginContext<'_>,
    user: Option<&CurrentUser>,
    csrf: CsrfToken,
    state: &'static str,
    status: Status,
    email: String,
) -> Result<NoStore<Reply>> {
    let can_resend = match user {
        Some(u) => awaits_confirmation(&ctx.db.0, ctx.config, &u.user).await?,
        None => false,
    };
    let page = LinkPage {
        frame: ctx.frame.clone().with_csrf(csrf),
        state,
        email,
        can_resend,
    };
    Ok(no_store(Reply::Page((
        status,
        Template::render("verify_link.html", page),
    ))))
}

/// Whether `user` is a local account that must still confirm its email before it may
/// publish: never when `auth.verify_email` is off, nor for an account from an OpenID
/// provider (the provider vouches for its email).
async fn awaits_confirmation(db: &crate::db::Pool, config: &Config, user: &User) -> Result<bool> {
    if !config.auth.verify_email || user.kind != AccountKind::Local {
        return Ok(false);
    }
    Ok(!verifications::is_confirmed(db, user.id).await?)
}

#[post("/verify-email/resend", data = "<_form>")]
async fn resend(
    db: &Db,
    user: CurrentUser,
    config: &State<Config>,
    outgoing: &State<Outgoing>,
    _form: CsrfForm<Submit>,
) -> Result<Flash<Redirect>> {
    let back = || Redirect::to(uri!(super::dashboard::dashboard));
    if !awaits_confirmation(&db.0, config, &user.user).await? {
        return Ok(Flash::success(
            back(),
            "Your email address is already confirmed.",
        ));
    }
    let Some(mailer) = outgoing.mailer() else {
        return Ok(Flash::error(
            back(),
            "This site cannot send mail; contact your administrator.",
        ));
    };
    let key = format!("verify-resend:{}", user.user.id);
    if rate::hit(&db.0, &key, now(), HOUR).await? > RESEND_MAX {
        return Ok(Flash::error(
            back(),
            format!(
                "You asked for {RESEND_MAX} links within the hour: try again later. \
                 The newest link you were sent still works."
            ),
        ));
    }
    let mut tx = db.0.begin().await?;
    mailer
        .queue_verification(&mut tx, &user.user, &user.user.email)
        .await?;
    tx.commit().await?;
    mailer.wake();
    Ok(Flash::success(
        back(),
        format!(
            "We sent a new link to {}. Links sent before no longer work.",
            user.user.email
        ),
    ))
}

// ---------------------------------------------------------------------------------------
// Publishing

/// Whether the logged-in user may publish: not while their email awaits confirmation.
/// Forwards like `CurrentUser` when nobody is logged in.
pub struct Standing {
    /// The address waiting to be confirmed, when it is.
    pub unconfirmed: Option<String>,
}

impl Standing {
    pub fn may_publish(&self) -> bool {
        self.unconfirmed.is_none()
    }

    /// What the post form says when it saved a post as a draft instead of publishing it.
    pub fn refusal(&self) -> String {
        format!(
            "Saved as a draft, not published: publishing (or scheduling) needs a confirmed \
             email address. Open the link we mailed to {}, or send a new one from your \
             dashboard.",
            self.unconfirmed.as_deref().unwrap_or("you")
        )
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Standing {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let user = try_outcome!(req.guard::<CurrentUser>().await);
        let db = try_outcome!(req.guard::<&Db>().await);
        let config = try_outcome!(req.guard::<&State<Config>>().await);
        match awaits_confirmation(&db.0, config, &user.user).await {
            Ok(waiting) => Outcome::Success(Standing {
                unconfirmed: waiting.then_some(user.user.email),
            }),
            Err(e) => {
                log::error!("email confirmation lookup failed: {e}");
                Outcome::Error((Status::ServiceUnavailable, ()))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Changing the email on /account

/// The email form of the account page.
#[derive(Serialize, Default)]
pub struct EmailForm {
    /// Local accounts only: an OpenID provider's accounts take their email from it.
    shown: bool,
    /// The address typed, after a refused change.
    value: String,
    errors: FieldErrors,
    /// A new address waiting for confirmation.
    pending: Option<String>,
    /// Whether a new address must be confirmed before it replaces the old one.
    confirm_first: bool,
    hours: i64,
}

impl EmailForm {
    /// The form for `user`, with any change waiting for confirmation.
    pub async fn load(db: &Db, user: &CurrentUser, providers: &Providers) -> Result<EmailForm> {
        let Some(local) = providers
            .local()
            .filter(|_| user.user.kind == AccountKind::Local)
        else {
            return Ok(EmailForm::default());
        };
        let pending = verifications::pending_change(&db.0, user.user.id, now())
            .await?
            .map(|(email, _)| email);
        Ok(EmailForm {
            shown: true,
            pending,
            confirm_first: local.verifies_email(),
            hours: VERIFY_HOURS,
            ..Default::default()
        })
    }
}

#[derive(FromForm)]
struct EmailChange {
    #[field(default = String::new())]
    email: String,
    #[field(default = String::new())]
    current_password: String,
}

/// Changes the account's email after checking the current password (throttled like a
/// login). With `auth.verify_email` the new address gets a link and replaces the old one
/// only when it is opened; without, it replaces it at once. The old address is told
/// either way.
#[allow(clippy::too_many_arguments)]
#[post("/account/email", data = "<form>")]
async fn change_email(
    db: &Db,
    cookies: &CookieJar<'_>,
    client: Client,
    frame: Frame,
    user: CurrentUser,
    providers: &State<Providers>,
    outgoing: &State<Outgoing>,
    form: CsrfForm<EmailChange>,
) -> Result<Reply> {
    let form = form.0;
    let Some(local) = providers
        .local()
        .filter(|_| user.user.kind == AccountKind::Local)
    else {
        return Err(Error::NotFound);
    };
    let typed = form.email.trim().to_string();
    let email = normalize_email(&typed);
    let mut errors = FieldErrors::new();
    if typed.is_empty() {
        errors.insert("email", vec!["Enter the new email address.".into()]);
    } else if typed.chars().count() > EMAIL_MAX || !email.validate_email() {
        errors.insert(
            "email",
            vec!["Enter an email address like name@example.com.".into()],
        );
    } else if email == user.user.email {
        errors.insert("email", vec!["That already is your email address.".into()]);
    }
    let current = super::account::current_password_of(
        local,
        &db.0,
        cookies,
        &client,
        &user.user,
        &form.current_password,
    )
    .await;
    let status = super::account::current_password_checked(current, &mut errors)?;
    let mailer = outgoing.mailer();
    if errors.is_empty() && local.verifies_email() {
        let Some(mailer) = mailer else {
            return Err(Error::Internal(
                "auth.verify_email is on without [mail]".into(),
            ));
        };
        let mut tx = db.0.begin().await?;
        // An address another account has gets no link (it could never be confirmed),
        // and the answer is the same, so this form tells nobody who has an account.
        if !verifications::email_taken(&db.0, &email, user.user.id).await? {
            mailer
                .queue_verification(&mut tx, &user.user, &email)
                .await?;
        }
        mailer
            .queue_change_notice(&mut tx, &user.user, &user.user.email, &email, true)
            .await?;
        tx.commit().await?;
        mailer.wake();
        let msg = format!(
            "We sent a link to {email}: your email changes when you open it (within \
             {VERIFY_HOURS} hours). Until then you log in with {}.",
            user.user.email
        );
        return Ok(Reply::Flash(Flash::success(
            Redirect::to(uri!(super::account::account)),
            msg,
        )));
    }
    if errors.is_empty() {
        let mut tx = db.0.begin().await?;
        match verifications::confirm(&mut tx, user.user.id, &email).await? {
            Confirmed::Done { previous } => {
                if let Some(mailer) = mailer {
                    mailer
                        .queue_change_notice(&mut tx, &user.user, &previous, &email, false)
                        .await?;
                }
                tx.commit().await?;
                if let Some(mailer) = mailer {
                    mailer.wake();
                }
                return Ok(Reply::Flash(Flash::success(
                    Redirect::to(uri!(super::account::account)),
                    format!("Your email address is now {email}: log in with it from now on."),
                )));
            }
            Confirmed::Taken => {
                errors.insert(
                    "email",
                    vec!["An account with this email already exists.".into()],
                );
            }
            Confirmed::Gone => return Err(Error::NotFound),
        }
    }
    let mut shown = EmailForm::load(db, &user, providers).await?;
    shown.value = typed;
    shown.errors = errors;
    let page = super::account::email_refused(db, frame, &user, providers, shown).await?;
    Ok(Reply::Page((status, page)))
}
