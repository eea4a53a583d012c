//! CSRF protection for every state-changing form. The token is random and lives in a
//! private (encrypted, authenticated) cookie; each form carries it in a hidden
//! `csrf_token` field, and `CsrfForm` refuses a body whose field does not match the
//! cookie. A cross-site page can neither read the cookie nor forge one.

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, RawStr, SameSite, Status};
use rocket::request::{FromRequest, Outcome, Request};

use super::client::Client;
use crate::token;

pub const COOKIE: &str = "quire_csrf";
pub const FIELD: &str = "csrf_token";

/// This browser's CSRF token, created (and its cookie set) on first use.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(token(req))
    }
}

/// Whether this request's answer holds a CSRF token (`token` was asked for): such a page
/// is this browser's alone and must not be cached.
pub fn issued(req: &Request<'_>) -> bool {
    req.local_cache(|| Issued(false)).0
}

struct Issued(bool);

/// The token for this request, created at most once per request.
pub fn token(req: &Request<'_>) -> CsrfToken {
    req.local_cache(|| Issued(true));
    req.local_cache(|| {
        let cookies = req.cookies();
        if let Some(c) = cookies.get_private(COOKIE) {
            return CsrfToken(c.value().to_string());
        }
        let fresh = token::generate();
        let cookie = Cookie::build((COOKIE, fresh.clone()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(Client::of(req).https)
            .expires(None::<time::OffsetDateTime>); // browser-session cookie
        cookies.add_private(cookie);
        CsrfToken(fresh)
    })
    .clone()
}

/// A form with no fields of its own (logout, delete): only the CSRF token.
#[derive(FromForm)]
pub struct Submit {
    #[field(name = "csrf_token", default = String::new())]
    _token: String,
}

/// A urlencoded form whose `csrf_token` matched; fields not in `T` are ignored.
/// Fails with 403 on a missing or wrong token (the handler never runs, nothing changes),
/// with 413 when the body is over the `form` limit, and with 422 when it holds a NUL.
pub struct CsrfForm<T>(pub T);

#[rocket::async_trait]
impl<'r, T: for<'a> FromForm<'a> + Send + 'static> FromData<'r> for CsrfForm<T> {
    type Error = &'static str;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let limit = req.limits().get("form").unwrap_or(32.kibibytes());
        let body = match data.open(limit).into_string().await {
            Ok(s) if s.is_complete() => s.into_inner(),
            Ok(_) => return data::Outcome::Error((Status::PayloadTooLarge, "form too large")),
            Err(_) => return data::Outcome::Error((Status::BadRequest, "unreadable form")),
        };
        // No one types a NUL, and PostgreSQL cannot store one in text.
        if body.contains("%00") || body.contains('\0') {
            return data::Outcome::Error((Status::UnprocessableEntity, "NUL in form"));
        }
        let sent = Form::values(&body)
            .find(|f| f.name == FIELD)
            .map(|f| RawStr::new(f.value).url_decode_lossy().into_owned());
        // Only an existing cookie counts; one minted now could not match anything sent.
        let expected = req
            .cookies()
            .get_private(COOKIE)
            .map(|c| c.value().to_string());
        let valid = match (sent, expected) {
            (Some(s), Some(e)) => token::constant_eq(&s, &e),
            _ => false,
        };
        if !valid {
            log::warn!("CSRF check failed for {} {}", req.method(), req.uri());
            return data::Outcome::Error((Status::Forbidden, "CSRF token missing or wrong"));
        }
        match Form::<T>::parse_encoded(RawStr::new(&body)) {
            Ok(value) => data::Outcome::Success(CsrfForm(value)),
            Err(_) => data::Outcome::Error((Status::UnprocessableEntity, "malformed form")),
        }
    }
}
