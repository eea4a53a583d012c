//! Signup, login and logout.

use rocket::http::{CookieJar, Status};
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, uri, FromForm, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::login_context::LoginContext;
use super::{after_login, local_path, FlashView, Frame, Reply};
use crate::auth::csrf::{CsrfForm, CsrfToken, Submit};
use crate::auth::local::{
    FieldErrors, NewAccount, OpenSignupError, SignupError, DEVICE_COOKIE, EMAIL_MAX,
};
use crate::auth::password::too_long;
use crate::auth::session;
use crate::auth::{CurrentUser, LoginEntry, LoginError, PasswordAttempt, Providers};
use crate::config::{Config, PASSWORD_MAX};
use crate::db::users;
use crate::db::{current_time, sessions, Db};
use crate::domain::ProviderId;
use crate::error::{Error, Result};

pub fn routes() -> Vec<Route> {
    routes![login_form, login, signup_form, signup, logout]
}

#[derive(Serialize)]
struct RedirectEntry {
    label: String,
    href: String,
}

#[derive(Serialize, Default)]
struct LoginValues {
    email: String,
    remember: bool,
    next: String,
}

#[derive(Serialize)]
struct LoginPage {
    frame: Frame,
    password_form: bool,
    /// The "Log in with a passkey" button (passkeys on for local accounts).
    passkey: bool,
    redirects: Vec<RedirectEntry>,
    values: LoginValues,
    error: Option<String>,
    /// How long "remember me" keeps one logged in (`auth.remember_days`).
    remember_days: i64,
}

fn login_page(
    frame: Frame,
    config: &Config,
    providers: &Providers,
    values: LoginValues,
    error: Option<String>,
) -> Template {
    let mut password_form = false;
    let mut passkey = false;
    let mut redirects = Vec::new();
    for p in providers.all() {
        match p.login_entry() {
            LoginEntry::PasswordForm => password_form = true,
            LoginEntry::Passkey => passkey = true,
            LoginEntry::Redirect { label } => {
                if let Some(href) = redirect_start(p.id(), &values.next) {
                    redirects.push(RedirectEntry { label, href })
                }
            }
        }
    }
    Template::render(
        "login.html",
        LoginPage {
            frame,
            password_form,
            passkey,
            redirects,
            values,
            error,
            remember_days: config.auth.remember_days,
        },
    )
}

/// The route that starts a login with a redirect-based provider, carrying `next` when it
/// is a path on this site. The web layer owns the paths: a provider only says it logs
/// people in by redirect.
fn redirect_start(provider: ProviderId, next: &str) -> Option<String> {
    let next = local_path(next).map(str::to_string);
    match provider {
        ProviderId::Oidc => Some(uri!(super::oidc::start_login(next)).to_string()),
        ProviderId::Local | ProviderId::Passkey => None,
    }
}

#[get("/login?<next>")]
fn login_form(
    frame: Frame,
    csrf: CsrfToken,
    config: &State<Config>,
    providers: &State<Providers>,
    user: Option<CurrentUser>,
    next: Option<String>,
) -> Reply {
    let next = next.unwrap_or_default();
    if user.is_some() {
        return Reply::Redirect(Redirect::to(after_login(&next)));
    }
    // With one redirect-based provider and no password form, go straight to it.
    if let [only] = providers.all() {
        if let LoginEntry::Redirect { .. } = only.login_entry() {
            if let Some(to) = redirect_start(only.id(), &next) {
                return Reply::Redirect(Redirect::to(to));
            }
        }
    }
    let values = LoginValues {
        next: local_path(&next).unwrap_or("").to_string(),
        ..Default::default()
    };
    let page = login_page(frame.with_csrf(csrf), config, providers, values, None);
    Reply::Page((Status::Ok, page))
}

#[derive(FromForm)]
struct LoginForm {
    #[field(default = String::new())]
    email: String,
    #[field(default = String::new())]
    password: String,
    remember: bool,
    #[field(default = String::new())]
    next: String,
}

#[post("/login", data = "<form>")]
async fn login(ctx: LoginContext<'_>, csrf: CsrfToken, form: CsrfForm<LoginForm>) -> Result<Reply> {
    let form = form.0;
    let frame = ctx.frame.clone().with_csrf(csrf);
    let Some(provider) = ctx.providers.password_provider() else {
        return Err(Error::NotFound);
    };
    let values = LoginValues {
        email: form.email.trim().to_string(),
        remember: form.remember,
        next: local_path(&form.next).unwrap_or("").to_string(),
    };
    let refuse = |status: Status, msg: String, values: LoginValues| {
        let page = login_page(frame.clone(), ctx.config, ctx.providers, values, Some(msg));
        Ok(Reply::Page((status, page)))
    };
    if values.email.is_empty() || form.password.is_empty() {
        return refuse(
            Status::UnprocessableEntity,
            "Enter your email and password.".into(),
            values,
        );
    }
    // No account has such an email or password: refused before they are normalized,
    // hashed or counted.
    if values.email.chars().count() > EMAIL_MAX {
        let msg = format!("That email is too long: an address has at most {EMAIL_MAX} characters.");
        return refuse(Status::UnprocessableEntity, msg, values);
    }
    if too_long(&form.password) {
        let msg =
            format!("That password is too long: passwords have at most {PASSWORD_MAX} characters.");
        return refuse(Status::UnprocessableEntity, msg, values);
    }
    let device = ctx.cookies.get_private(DEVICE_COOKIE);
    let attempt = PasswordAttempt {
        email: &form.email,
        password: &form.password,
        client: ctx.client.ip,
        device: device.as_ref().map(|c| c.value()),
    };
    let identity = match provider.authenticate_password(&ctx.db.0, attempt).await {
        Ok(identity) => identity,
        Err(LoginError::Invalid) => {
            return refuse(
                Status::Unauthorized,
                "Incorrect email or password.".into(),
                values,
            )
        }
        Err(LoginError::Throttled { wait_seconds }) => {
            let msg = format!(
                "Too many failed attempts. Try again in {}.",
                wait_words(wait_seconds)
            );
            return refuse(Status::TooManyRequests, msg, values);
        }
        Err(LoginError::Unsupported | LoginError::Passkey(_)) => return Err(Error::NotFound),
        Err(LoginError::Internal(e)) => return Err(e),
    };
    // An account with a second factor (or one it must set up) gets no session yet.
    let held =
        super::login_verify::second_step(&ctx, &identity.user, form.remember, &form.next).await?;
    if let Some(step) = held {
        return Ok(super::login_verify::step_reply(step, ""));
    }
    ctx.log_in(&identity.user, identity.provider, form.remember)
        .await?;
    // The password changed while this one was being checked: the session, stamped with
    // the old version, would not work anyway; say so now.
    let version = users::credential_version(&ctx.db.0, identity.user.id).await?;
    if version != Some(identity.user.credential_version) {
        session::end(&ctx.db.0, ctx.cookies).await?;
        return refuse(
            Status::Unauthorized,
            "Incorrect email or password.".into(),
            values,
        );
    }
    if let Some(local) = ctx.providers.local() {
        ctx.cookies
            .add_private(local.device_cookie(&identity.user.email, ctx.client.https));
    }
    sessions::sweep_expired(&ctx.db.0, current_time()).await?;
    let greeting = format!("Welcome back, {}.", identity.user.name);
    Ok(Reply::Flash(Flash::success(
        Redirect::to(after_login(&form.next)),
        greeting,
    )))
}

/// "45 seconds", "3 minutes".
pub(crate) fn wait_words(seconds: i64) -> String {
    if seconds < 60 {
        format!("{seconds} second{}", if seconds == 1 { "" } else { "s" })
    } else {
        let minutes = (seconds + 59) / 60;
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    }
}

#[derive(Serialize, Default)]
struct SignupValues {
    email: String,
    name: String,
}

#[derive(Serialize)]
struct SignupPage {
    frame: Frame,
    open: bool,
    min_password_length: usize,
    values: SignupValues,
    errors: FieldErrors,
}

fn signup_page(
    frame: Frame,
    config: &Config,
    providers: &Providers,
    values: SignupValues,
    errors: FieldErrors,
) -> Template {
    Template::render(
        "signup.html",
        SignupPage {
            frame,
            open: config.auth.signup && providers.local().is_some(),
            min_password_length: config.auth.password_min_length,
            values,
            errors,
        },
    )
}

#[get("/signup")]
fn signup_form(
    frame: Frame,
    csrf: CsrfToken,
    config: &State<Config>,
    providers: &State<Providers>,
) -> Template {
    signup_page(
        frame.with_csrf(csrf),
        config,
        providers,
        SignupValues::default(),
        FieldErrors::new(),
    )
}

#[derive(FromForm)]
struct SignupForm {
    #[field(default = String::new())]
    email: String,
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    password: String,
}

#[post("/signup", data = "<form>")]
async fn signup(
    mail: super::verify::SignupMail<'_>,
    ctx: LoginContext<'_>,
    csrf: CsrfToken,
    form: CsrfForm<SignupForm>,
) -> Result<Reply> {
    let form = form.0;
    let frame = ctx.frame.clone().with_csrf(csrf);
    let (config, providers) = (ctx.config, ctx.providers);
    let values = SignupValues {
        email: form.email.trim().to_string(),
        name: form.name.trim().to_string(),
    };
    let local = match providers.local() {
        Some(local) if config.auth.signup => local,
        _ => {
            let page = signup_page(frame, config, providers, values, FieldErrors::new());
            return Ok(Reply::Page((Status::Forbidden, page)));
        }
    };
    // Refused before it is normalized; no account can have it.
    if values.email.chars().count() > EMAIL_MAX {
        let mut errors = FieldErrors::new();
        errors.insert(
            "email",
            vec![format!("Use at most {EMAIL_MAX} characters.")],
        );
        let page = signup_page(frame, config, providers, values, errors);
        return Ok(Reply::Page((Status::UnprocessableEntity, page)));
    }
    let account = NewAccount::new(&form.email, &form.name, &form.password);
    // With verification on, a new account and a taken email get the same answer.
    let verify = config.auth.verify_email;
    let user = match local
        .sign_up(&ctx.db.0, &account, ctx.client.ip, !verify)
        .await
    {
        Ok(user) if verify => {
            return super::verify::signed_up(&ctx, mail, &account.email, Some(&user)).await
        }
        Err(OpenSignupError::Signup(SignupError::EmailTaken)) if verify => {
            return super::verify::signed_up(&ctx, mail, &account.email, None).await
        }
        Ok(user) => user,
        Err(OpenSignupError::Throttled { wait_seconds }) => {
            let mut frame = frame;
            frame.flash = Some(FlashView {
                kind: "error".into(),
                message: format!(
                    "Too many signups from your network. Try again in {}.",
                    wait_words(wait_seconds)
                ),
            });
            let page = signup_page(frame, config, providers, values, FieldErrors::new());
            return Ok(Reply::Page((Status::TooManyRequests, page)));
        }
        Err(OpenSignupError::Signup(SignupError::Invalid(errors))) => {
            let page = signup_page(frame, config, providers, values, errors);
            return Ok(Reply::Page((Status::UnprocessableEntity, page)));
        }
        Err(OpenSignupError::Signup(SignupError::EmailTaken)) => {
            let errors = SignupError::taken_errors();
            let page = signup_page(frame, config, providers, values, errors);
            return Ok(Reply::Page((Status::UnprocessableEntity, page)));
        }
        Err(OpenSignupError::Signup(SignupError::Internal(e))) => return Err(e),
    };
    // Where every account must have a second factor, a new one sets it up first.
    if let Some(step) = super::login_verify::second_step(&ctx, &user, false, "").await? {
        return Ok(super::login_verify::step_reply(
            step,
            "Your account was created.",
        ));
    }
    ctx.log_in(&user, ProviderId::Local, false).await?;
    ctx.cookies
        .add_private(local.device_cookie(&user.email, ctx.client.https));
    let welcome = format!(
        "Welcome to {}, {}. Write your first post below.",
        config.site.title, user.name
    );
    Ok(Reply::Flash(Flash::success(
        Redirect::to(uri!(super::dashboard::dashboard)),
        welcome,
    )))
}

/// Ends the session (the row and the cookie), then goes where the provider says: for a
/// redirect-based login that may be the provider's own logout page.
#[post("/logout", data = "<_form>")]
async fn logout(
    db: &Db,
    cookies: &CookieJar<'_>,
    providers: &State<Providers>,
    user: Option<CurrentUser>,
    _form: CsrfForm<Submit>,
) -> Result<Flash<Redirect>> {
    // The provider may end its own session too (an IdP's logout page); only sessions
    // made through an IdP carry the ID token that asks it to.
    let id_token = match &user {
        Some(u) => sessions::id_token(&db.0, u.session_id).await?,
        None => None,
    };
    session::end(&db.0, cookies).await?;
    crate::auth::mfa::forget(&db.0, cookies).await?;
    let mut to = None;
    if let Some(provider) = user.as_ref().and_then(|u| providers.by_id(u.provider)) {
        to = provider.after_logout(id_token.as_deref()).await;
    }
    Ok(Flash::success(
        Redirect::to(to.unwrap_or_else(|| uri!(super::public::index(_)).to_string())),
        "You are logged out.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::testing::{frame, render};

    #[test]
    fn the_login_page_states_the_configured_remember_me_lifetime() {
        for (days, label) in [
            (7, ">Remember me for 7 days<"),
            (1, ">Remember me for 1 day<"),
        ] {
            let page = LoginPage {
                frame: frame(),
                password_form: true,
                passkey: false,
                redirects: Vec::new(),
                values: LoginValues::default(),
                error: None,
                remember_days: days,
            };
            let html = render("login.html", &page);
            assert!(html.contains(label), "{label} not in {html}");
        }
    }
}
