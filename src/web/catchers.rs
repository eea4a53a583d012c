//! Error pages in the site's layout. Anonymous requests to protected pages arrive here
//! as 401 (the user guard forwards) and are sent to the login page.

use rocket::http::{Method, Status};
use rocket::response::Redirect;
use rocket::{catch, catchers, uri, Catcher, Request};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::Frame;

pub fn catchers() -> Vec<Catcher> {
    catchers![unauthorized, default_catcher]
}

#[derive(Serialize)]
struct ErrorPage {
    frame: Frame,
    code: u16,
    title: &'static str,
    message: &'static str,
}

/// A GET to a protected page comes back to it after login; any other method to the
/// dashboard, since replaying a form submission as a GET would make no sense.
#[catch(401)]
fn unauthorized(req: &Request<'_>) -> Redirect {
    if req.method() == Method::Get {
        let next = Some(req.uri().to_string());
        Redirect::to(uri!(super::login::login_form(next)))
    } else {
        Redirect::to(uri!(super::login::login_form(_)))
    }
}

fn describe(status: Status) -> (&'static str, &'static str) {
    match status.code {
        400 => ("Bad request", "The request could not be understood."),
        403 => (
            "Not allowed",
            "You do not have permission to do that. If you were filling in a form, reload the page and try again.",
        ),
        404 => ("Page not found", "There is nothing here. The post may have been deleted or its address mistyped."),
        405 => ("Not allowed", "That action is not available here."),
        413 => ("Too large", "What you sent is larger than this site accepts. Shorten it and try again."),
        415 => ("Unsupported form", "The form was sent in a format this site does not accept."),
        422 => ("Could not read the form", "The form was incomplete or malformed. Reload the page and try again."),
        429 => ("Too many requests", "Too many attempts. Wait a few minutes and try again."),
        503 => ("Temporarily unavailable", "The site cannot reach its database right now. Try again in a moment."),
        507 => ("Out of storage space", "The server has run out of disk space, so nothing was saved. Pages can still be read; try again once space has been freed."),
        c if c >= 500 => ("Something went wrong", "The error has been logged. Try again in a moment."),
        _ => ("Something went wrong", "The request could not be completed."),
    }
}

#[catch(default)]
async fn default_catcher(status: Status, req: &Request<'_>) -> (Status, Template) {
    let mut frame = Frame::from_request_lenient(req).await;
    frame.meta.noindex = true;
    frame.meta.url = None;
    let (title, message) = describe(status);
    let page = ErrorPage {
        frame,
        code: status.code,
        title,
        message,
    };
    (status, Template::render("errors/error.html", page))
}
