//! Previews of a post body as saving would store it, for the post form: its Preview
//! button (a full page, no JavaScript needed) and `POST /preview`, which static/preview.js
//! asks as the author types. Both go through `render_post`, so a preview is exactly what
//! saving would store, refusals included, and neither writes anything.

use rocket::http::{Header, Status};
use rocket::{post, routes, FromForm, Responder, Route};

use crate::auth::csrf::CsrfForm;
use crate::auth::local::FieldErrors;
use crate::auth::CurrentUser;
use crate::render::render_post;

pub fn routes() -> Vec<Route> {
    routes![preview]
}

/// The value of the post form's Preview button (`name="action"`).
pub const ACTION: &str = "preview";

/// What the form shows after its Preview button: the sanitized HTML, or the body field's
/// message (the one saving would give) and its status.
pub struct Preview {
    pub status: Status,
    pub html: Option<String>,
    pub errors: FieldErrors,
}

/// Renders `body` as saving would: 200 with the HTML, or the refusal as an error on the
/// `body` field with its status (422, or 503 when renders are busy).
pub async fn of_body(body: &str) -> Preview {
    match render_post(body).await {
        Ok(rendered) => Preview {
            status: Status::Ok,
            html: Some(rendered.html),
            errors: FieldErrors::new(),
        },
        Err(e) => Preview {
            status: e.status(),
            html: None,
            errors: FieldErrors::from([("body", vec![e.to_string()])]),
        },
    }
}

#[derive(FromForm)]
struct PreviewForm {
    #[field(default = String::new())]
    body: String,
}

/// A fragment of HTML, never stored by any cache.
#[derive(Responder)]
#[response(content_type = "html")]
struct Fragment {
    html: String,
    cache: Header<'static>,
}

/// Why a body was refused, as plain text for the preview pane.
#[derive(Responder)]
#[response(content_type = "text")]
struct Refusal {
    message: String,
    cache: Header<'static>,
}

#[derive(Responder)]
enum Answer {
    Html(Fragment),
    Refused((Status, Refusal)),
}

fn no_store() -> Header<'static> {
    Header::new("Cache-Control", "no-store")
}

/// The sanitized HTML that saving `body` would store, as a fragment; a body refused by
/// the renderer gets its status (422, 503 when busy) and the message as plain text.
/// Anonymous callers are sent to log in (303, through the 401 catcher); a missing or
/// wrong CSRF token is 403.
#[post("/preview", data = "<form>")]
async fn preview(_user: CurrentUser, form: CsrfForm<PreviewForm>) -> Answer {
    match render_post(&form.0.body).await {
        Ok(rendered) => Answer::Html(Fragment {
            html: rendered.html,
            cache: no_store(),
        }),
        Err(e) => Answer::Refused((
            e.status(),
            Refusal {
                message: e.to_string(),
                cache: no_store(),
            },
        )),
    }
}
