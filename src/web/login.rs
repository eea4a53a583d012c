//! Signup, login and logout.

use rocket::http::{CookieJar, Status};
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, FromForm, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::{local_path, FlashView, Frame};
use crate::auth::csrf::{CsrfForm, CsrfToken, Submit};
use crate::auth::local::{
    FieldErrors, NewAccount, OpenSignupError, SignupError, DEVICE_COOKIE, EMAIL_MAX,
};
use crate::auth::password::too_long;
use crate::auth::session::{self, Start};
use crate::auth::{
    Client, CurrentUser, LoginEntry, LoginError, PasswordAttempt, Providers, UserAgent,
};
use crate::config::{Config, PASSWORD_MAX};
use crate::db::{now, sessions, users, Db};
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
    redirects: Vec<RedirectEntry>,
    values: LoginValues,
    error: Option<String>,
}

fn login_page(
    frame: Frame,
    providers: &Providers,
    values: LoginValues,
    error: Option<String>,
) -> Template {
    let mut password_form = false;
    let mut redirects = Vec::new();
    for p in providers.all() {
        match p.login_entry() {
            LoginEntry::PasswordForm => password_form = true,
            LoginEntry::Redirect { label, href } => {
                let href = if values.next.is_empty() {
                    href
                } else {
                    format!("{href}?next={}", urlencode(&values.next))
                };
                redirects.push(RedirectEntry { label, href })
            }
        }
    }
    Template::render(
        "login.html",
        LoginPage {
            frame,
            password_form,
            redirects,
            values,
            error,
        },
    )
}

fn urlencode(s: &str) -> String {
    rocket::http::RawStr::new(s).percent_encode().to_string()
}

/// Where to go after logging in: `next` if it is a path on this site, else the dashboard.
pub fn after_login(next: &str) -> String {
    local_path(next)
        .filter(|p| *p != "/login")
        .unwrap_or("/dashboard")
        .to_string()
}

#[allow(clippy::large_enum_variant)]
#[derive(rocket::Responder)]
enum Page {
    Template(Template),
    Redirect(Redirect),
}

#[get("/login?<next>")]
fn login_form(
    frame: Frame,
    csrf: CsrfToken,
    providers: &State<Providers>,
    user: Option<CurrentUser>,
    next: Option<String>,
) -> Page {
    let next = next.unwrap_or_default();
    if user.is_some() {
        return Page::Redirect(Redirect::to(after_login(&next)));
    }
    // With one redirect-based provider and no password form, go straight to it.
    if let [only] = providers.all() {
        if let LoginEntry::Redirect { href, .. } = only.login_entry() {
            let to = match local_path(&next) {
                Some(n) => format!("{href}?next={}", urlencode(n)),
                None => href,
            };
            return Page::Redirect(Redirect::to(to));
        }
    }
    let values = LoginValues {
        next: local_path(&next).unwrap_or("").to_string(),
        ..Default::default()
    };
    Page::Template(login_page(frame.with_csrf(csrf), providers, values, None))
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

#[allow(clippy::too_many_arguments)]
#[post("/login", data = "<form>")]
async fn login(
    db: &Db,
    cookies: &CookieJar<'_>,
    providers: &State<Providers>,
    config: &State<Config>,
    client: Client,
    agent: UserAgent,
    frame: Frame,
    csrf: CsrfToken,
    form: CsrfForm<LoginForm>,
) -> Result<std::result::Result<Flash<Redirect>, (Status, Template)>> {
    let form = form.0;
    let Some(provider) = providers.password_provider() else {
        return Err(Error::NotFound);
    };
    let values = LoginValues {
        email: form.email.trim().to_string(),
        remember: form.remember,
        next: local_path(&form.next).unwrap_or("").to_string(),
    };
    let refuse = |status: Status, msg: String, values: LoginValues| {
        Ok(Err((
            status,
            login_page(
                frame.clone().with_csrf(csrf.clone()),
                providers,
                values,
                Some(msg),
            ),
        )))
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
    let device = cookies.get_private(DEVICE_COOKIE);
    let attempt = PasswordAttempt {
        email: &form.email,
        password: &form.password,
        client: client.ip,
        device: device.as_ref().map(|c| c.value()),
    };
    let identity = match provider.authenticate_password(&db.0, attempt).await {
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
        Err(LoginError::Unsupported) => return Err(Error::NotFound),
        Err(LoginError::Internal(e)) => return Err(e),
    };
    session::start(
        &db.0,
        cookies,
        &config.auth,
        Start {
            user_id: identity.user.id,
            provider: identity.provider,
            remember: form.remember,
            user_agent: &agent.0,
            secure: client.https,
            credential_version: identity.user.credential_version,
            ..Default::default()
        },
    )
    .await?;
    // The password changed while this one was being checked: the session, stamped with
    // the old version, would not work anyway; say so now.
    let version = users::credential_version(&db.0, identity.user.id).await?;
    if version != Some(identity.user.credential_version) {
        session::end(&db.0, cookies).await?;
        return refuse(
            Status::Unauthorized,
            "Incorrect email or password.".into(),
            values,
        );
    }
    if let Some(local) = providers.local() {
        cookies.add_private(local.device_cookie(&identity.user.email, client.https));
    }
    sessions::delete_expired(&db.0, now()).await?;
    let greeting = format!("Welcome back, {}.", identity.user.name);
    Ok(Ok(Flash::success(
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

#[allow(clippy::too_many_arguments)]
#[post("/signup", data = "<form>")]
async fn signup(
    db: &Db,
    cookies: &CookieJar<'_>,
    providers: &State<Providers>,
    config: &State<Config>,
    client: Client,
    agent: UserAgent,
    frame: Frame,
    csrf: CsrfToken,
    form: CsrfForm<SignupForm>,
) -> Result<std::result::Result<Flash<Redirect>, (Status, Template)>> {
    let form = form.0;
    let frame = frame.with_csrf(csrf);
    let values = SignupValues {
        email: form.email.trim().to_string(),
        name: form.name.trim().to_string(),
    };
    let local = match providers.local() {
        Some(local) if config.auth.signup => local,
        _ => {
            let page = signup_page(frame, config, providers, values, FieldErrors::new());
            return Ok(Err((Status::Forbidden, page)));
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
        return Ok(Err((Status::UnprocessableEntity, page)));
    }
    let account = NewAccount::new(&form.email, &form.name, &form.password);
    let user = match local.sign_up(&db.0, &account, client.ip).await {
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
            return Ok(Err((Status::TooManyRequests, page)));
        }
        Err(OpenSignupError::Signup(SignupError::Invalid(errors))) => {
            let page = signup_page(frame, config, providers, values, errors);
            return Ok(Err((Status::UnprocessableEntity, page)));
        }
        Err(OpenSignupError::Signup(SignupError::Internal(e))) => return Err(e),
    };
    let start = Start {
        user_id: user.id,
        provider: "local",
        remember: false,
        user_agent: &agent.0,
        secure: client.https,
        ..Default::default()
    };
    session::start(&db.0, cookies, &config.auth, start).await?;
    cookies.add_private(local.device_cookie(&user.email, client.https));
    let welcome = format!(
        "Welcome to {}, {}. Write your first post below.",
        config.site.title, user.name
    );
    Ok(Ok(Flash::success(Redirect::to("/dashboard"), welcome)))
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
    // Only a session made through the IdP is ended there too, and it needs the ID token.
    let id_token = match &user {
        Some(u) if u.provider != "local" => Some(sessions::id_token(&db.0, u.session_id).await?),
        _ => None,
    };
    session::end(&db.0, cookies).await?;
    let mut to = None;
    if let Some(provider) = user.as_ref().and_then(|u| providers.by_id(&u.provider)) {
        to = provider.after_logout(id_token.as_deref()).await;
    }
    Ok(Flash::success(
        Redirect::to(to.unwrap_or_else(|| "/".into())),
        "You are logged out.",
    ))
}
