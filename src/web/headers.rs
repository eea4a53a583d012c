//! Security headers on every response, and how long each may be cached:
//! `Cache-Control: no-store` on anything that is personal (a logged-in page, a form with
//! a CSRF token, a Set-Cookie); public pages by anyone, asking again each time
//! (`PUBLIC_PAGE`, with the validators of `http_cache`).

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Header, Method, Status};
use rocket::{Request, Response};

/// No inline script anywhere; styles only from our own stylesheet. Images may come from
/// any https host because posts link them.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' https: data:; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The policy as sent. Browsers apply `form-action` to the redirects that follow a form
/// post too, so the logout form, which ends at the IdP's logout page, needs its origin.
pub struct Csp(pub String);

impl Csp {
    pub fn for_config(config: &crate::config::Config) -> Csp {
        let idp = config
            .auth
            .active_oidc()
            .map(|o| o.issuer.url().origin().ascii_serialization());
        match idp {
            Some(origin) => Csp(CSP.replace(
                "form-action 'self'",
                &format!("form-action 'self' {origin}"),
            )),
            None => Csp(CSP.to_string()),
        }
    }
}

/// A public page (home, a post) as any reader gets it: any cache may keep it but must
/// revalidate it before each use (a 304 when its ETag still matches), so an edit or a
/// deletion shows at once.
pub const PUBLIC_PAGE: &str = "public, no-cache";
/// Errors, redirects and the rest: a cache must ask again each time.
pub const REVALIDATE: &str = "no-cache";

pub struct SecurityHeaders;

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info {
            name: "Security headers",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let csp = req.rocket().state::<Csp>().map_or(CSP, |c| c.0.as_str());
        // A served upload keeps its own policy (`sandbox`).
        if !(super::media::is_file_path(req.uri().path().as_str())
            && res.headers().contains("Content-Security-Policy"))
        {
            res.set_header(Header::new("Content-Security-Policy", csp.to_string()));
        }
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        res.set_header(Header::new("Referrer-Policy", "same-origin"));
        res.set_header(Header::new("Cross-Origin-Opener-Policy", "same-origin"));
        res.set_header(Header::new(
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=()",
        ));
        if crate::auth::Client::of(req).https {
            res.set_header(Header::new("Strict-Transport-Security", "max-age=31536000"));
        }
        relax_flash_cookie(res);
        cache_control(req, res);
    }
}

/// A request carrying a session cookie may be answered with a personal page, and one
/// whose page got a CSRF token holds a secret of this browser; neither may be stored.
/// Assets are the same for everyone and keep their own caching; a route that says how
/// long its public answer keeps (the feed) is believed; other public pages get
/// `PUBLIC_PAGE`, varying by cookie so a browser that logs in asks again.
fn cache_control(req: &Request<'_>, res: &mut Response<'_>) {
    // Served uploads too: the same bytes for everyone, at a URL that changes with them.
    let path = req.uri().path();
    let asset = (path.starts_with("/static/") || super::media::is_file_path(path.as_str()))
        && res.headers().contains("Cache-Control");
    if asset {
        return;
    }
    let personal = res.headers().contains("Set-Cookie")
        || crate::auth::session::has_cookie(req)
        || crate::auth::csrf::issued(req);
    if personal {
        res.set_header(Header::new("Cache-Control", "no-store"));
        return;
    }
    if res.headers().contains("Cache-Control") {
        return;
    }
    let readable = matches!(req.method(), Method::Get | Method::Head);
    if readable && res.status() == Status::Ok {
        res.set_header(Header::new("Cache-Control", PUBLIC_PAGE));
        res.set_header(Header::new("Vary", "Cookie"));
    } else {
        res.set_header(Header::new("Cache-Control", REVALIDATE));
    }
}

/// Rocket sets its flash cookie SameSite=Strict, which browsers drop on a navigation that
/// began on another site: the "Welcome" after returning from the IdP, or "You are logged
/// out" after its logout page, would vanish and show up later out of context. A flash
/// message is not a secret, so it may travel like the session cookie (Lax).
fn relax_flash_cookie(res: &mut Response<'_>) {
    let cookies: Vec<String> = res
        .headers()
        .get("Set-Cookie")
        .map(str::to_string)
        .collect();
    if !cookies
        .iter()
        .any(|c| c.starts_with("_flash=") && c.contains("SameSite=Strict"))
    {
        return;
    }
    res.remove_header("Set-Cookie");
    for cookie in cookies {
        let cookie = if cookie.starts_with("_flash=") {
            cookie.replace("SameSite=Strict", "SameSite=Lax")
        } else {
            cookie
        };
        res.adjoin_raw_header("Set-Cookie", cookie);
    }
}
