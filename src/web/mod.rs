//! Routes by audience. Every page gets a typed context that embeds one `Frame`: the
//! site, the current user, the flash message and the CSRF token for the nav's forms.

pub mod account;
pub mod assets;
pub mod authors;
pub mod catchers;
pub mod dashboard;
pub mod headers;
pub mod http_cache;
pub mod login;
pub mod login_context;
pub mod login_verify;
pub mod media;
pub mod oidc;
pub mod page_cache;
pub mod passkeys;
pub mod password;
pub mod paths;
pub mod preview;
pub mod public;
pub mod search;
pub mod security;
pub mod seo;
pub mod tags;
pub mod verify;

use rocket::http::Status;
use rocket::request::{FlashMessage, FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::{uri, Responder, Route};
use rocket_dyn_templates::Template;
use serde::Serialize;
use time::OffsetDateTime;

use crate::auth::csrf;
use crate::auth::guards::CurrentUser;
use crate::auth::Providers;
use crate::config::Config;

pub fn routes() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(public::routes());
    routes.extend(login::routes());
    routes.extend(oidc::routes());
    routes.extend(dashboard::routes());
    routes.extend(account::routes());
    routes.extend(password::routes());
    routes.extend(assets::routes());
    routes.extend(preview::routes());
    routes.extend(tags::routes());
    routes.extend(authors::routes());
    routes.extend(search::routes());
    routes.extend(seo::routes());
    routes.extend(verify::routes());
    routes.extend(login_verify::routes());
    routes.extend(security::routes());
    routes.extend(media::routes());
    routes.extend(passkeys::routes());
    routes
}

/// What a handler answers when it may either finish or show a page: a redirect (with a
/// flash message or without) or a page with its status, such as a form shown again with
/// its problems. Failures are the `Err` of the `Result` around it.
#[allow(clippy::large_enum_variant)]
#[derive(Responder)]
pub enum Reply {
    Redirect(Redirect),
    Flash(Flash<Redirect>),
    Page((Status, Template)),
}

#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub name: String,
    pub email: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlashView {
    /// "success" or "error".
    pub kind: String,
    pub message: String,
}

/// What every page's layout needs.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    pub site_title: String,
    pub user: Option<UserView>,
    pub flash: Option<FlashView>,
    /// Set when the page has forms (always for a logged-in user: the nav's logout).
    pub csrf_token: Option<String>,
    pub signup_open: bool,
    /// The head's canonical link, description and share-card tags.
    pub meta: seo::PageMeta,
}

impl Frame {
    /// Adds the CSRF token for a page with forms, creating the cookie if needed.
    pub fn with_csrf(mut self, req_token: csrf::CsrfToken) -> Frame {
        self.csrf_token = Some(req_token.0);
        self
    }

    pub async fn from_request_lenient(req: &Request<'_>) -> Frame {
        let config = req.rocket().state::<Config>();
        let user = match req.guard::<CurrentUser>().await {
            Outcome::Success(u) => Some(u),
            _ => None,
        };
        let flash = match req.guard::<Option<FlashMessage<'_>>>().await {
            Outcome::Success(Some(f)) => Some(FlashView {
                kind: if f.kind() == "error" {
                    "error".into()
                } else {
                    "success".into()
                },
                message: f.message().to_string(),
            }),
            _ => None,
        };
        let signup_open = config.is_some_and(|c| c.auth.signup)
            && req
                .rocket()
                .state::<Providers>()
                .is_some_and(|p| p.local().is_some());
        let csrf_token = match user {
            Some(_) => Some(csrf::token(req).await.0),
            None => None,
        };
        let meta = seo::PageMeta::of(req);
        Frame {
            meta,
            site_title: config.map_or_else(|| "quire".into(), |c| c.site.title.clone()),
            csrf_token,
            user: user.map(|u| UserView {
                name: u.user.name,
                email: u.user.email,
                is_admin: u.user.is_admin,
            }),
            flash,
            signup_open,
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Frame {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(Frame::from_request_lenient(req).await)
    }
}

/// Where to go after logging in: `next` if it is a path on this site (other than the
/// login page), else the dashboard.
pub fn after_login(next: &str) -> String {
    match local_path(next) {
        Some(path) if uri!(login::login_form(_)) != path => path.to_string(),
        _ => uri!(dashboard::dashboard).to_string(),
    }
}

/// `next` when it is a path on this site, else None. Refuses `//host`, backslashes
/// (browsers read `/\host` as `//host`), control characters and anything not an origin URI.
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control())
        && next.len() <= 2048
        && rocket::http::uri::Origin::parse(next).is_ok();
    ok.then_some(next)
}

/// "23 Nov 2026".
pub fn human_date(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[day padding:none] [month repr:short] [year]");
    t.format(&format).unwrap_or_default()
}

/// "23 Nov 2026, 14:05 UTC".
pub fn human_time(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
    );
    t.format(&format).unwrap_or_default()
}

/// RFC 3339, for `<time datetime>` and the feed.
pub fn iso_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Rendering the built-in templates without a server, for the tests of page contexts.
#[cfg(test)]
pub(crate) mod testing {
    use rocket_dyn_templates::tera::{Context, Tera};
    use serde::Serialize;

    use super::Frame;

    /// The frame of an anonymous visitor's page with a form.
    pub fn frame() -> Frame {
        Frame {
            site_title: "quire".into(),
            user: None,
            flash: None,
            csrf_token: Some("token".into()),
            signup_open: true,
            meta: super::seo::PageMeta::plain("http://localhost:8000/", "quire", "About quire."),
        }
    }

    pub fn render(template: &str, page: &impl Serialize) -> String {
        let mut tera = Tera::default();
        super::assets::register_templates(&mut tera, None).expect("templates");
        let context = Context::from_serialize(page).expect("context");
        tera.render(template, &context).expect("renders")
    }
}

#[cfg(test)]
mod tests {
    use super::{after_login, local_path};

    #[test]
    fn after_login_goes_to_next_unless_it_is_the_login_page_or_off_site() {
        assert_eq!(after_login("/posts/a?x=1"), "/posts/a?x=1");
        assert_eq!(after_login("/login"), "/dashboard");
        assert_eq!(after_login("https://evil.example/"), "/dashboard");
        assert_eq!(after_login(""), "/dashboard");
    }

    #[test]
    fn only_local_paths_are_kept() {
        for good in ["/", "/dashboard", "/posts/a-b?x=1"] {
            assert_eq!(local_path(good), Some(good));
        }
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "https://evil.com",
            "evil.com",
            "/\t/evil.com",
            "",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }
}
