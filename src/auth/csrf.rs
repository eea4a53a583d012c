//! CSRF protection for every state-changing form. Each form carries the token in a hidden
//! `csrf_token` field, and `CsrfForm` refuses a body whose field does not match it.
//! Before login the token is random and lives in a private (encrypted, authenticated)
//! cookie. Once the browser has a session the token is derived from the session's secret
//! token instead, and only that one counts: a pre-login cookie planted in (or stolen
//! from) a browser is no use against its session, and every login or logout changes it.

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::form::{Form, FromForm};
use rocket::http::{RawStr, Status};
use rocket::request::{FromRequest, Outcome, Request};

use super::client::Client;
use super::cookies::{self, Name};
use super::guards::CurrentUser;
use crate::token;

pub const FIELD: &str = "csrf_token";

/// This browser's CSRF token, created (and its cookie set) on first use.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(token(req).await)
    }
}

/// Whether this request's answer holds a CSRF token (`token` was asked for): such a page
/// is this browser's alone and must not be cached.
pub fn issued(req: &Request<'_>) -> bool {
    req.local_cache(|| Issued(false)).0
}

struct Issued(bool);

/// The token for this request, created at most once per request.
pub async fn token(req: &Request<'_>) -> CsrfToken {
    req.local_cache(|| Issued(true));
    req.local_cache_async(async {
        if let Ok(Some(token)) = expected(req).await {
            return CsrfToken(token);
        }
        let fresh = token::generate();
        let mut cookie = cookies::build(Name::Csrf, fresh.clone(), Client::of(req).https);
        cookie.set_expires(None); // a browser-session cookie
        req.cookies().add_private(cookie);
        CsrfToken(fresh)
    })
    .await
    .clone()
}

/// The token this browser's forms must carry: derived from its session's token when it
/// is logged in, else its pre-login cookie's; None when it has neither yet, Err when the
/// database cannot say whether the session is live. A session cookie that names no live
/// session (expired, ended, planted) does not count.
async fn expected(req: &Request<'_>) -> Result<Option<String>, ()> {
    let https = Client::of(req).https;
    let jar = req.cookies();
    match req.guard::<CurrentUser>().await {
        Outcome::Success(_) => {
            Ok(cookies::get(jar, Name::Session, https).map(|c| for_session(c.value())))
        }
        Outcome::Forward(_) => {
            Ok(cookies::get(jar, Name::Csrf, https).map(|c| c.value().to_string()))
        }
        Outcome::Error(_) => Err(()),
    }
}

/// The CSRF token of the session whose secret token is `session_token`: a hash of it
/// under its own label, so it reveals nothing of the session token, differs from the
/// hash the database keeps, and changes with every new session.
pub fn for_session(session_token: &str) -> String {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"quire csrf token v1\0");
    h.update(session_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
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
        let expected = match expected(req).await {
            Ok(expected) => expected,
            Err(()) => {
                return data::Outcome::Error((Status::ServiceUnavailable, "database unavailable"))
            }
        };
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
