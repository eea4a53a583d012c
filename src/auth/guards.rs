//! Request guards: handlers learn who is calling only through these.

use std::net::{IpAddr, Ipv4Addr};

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket_db_pools::Database;

use super::oidc::Recheck;
use super::{session, Providers};
use crate::config::Config;
use crate::db::users::User;
use crate::db::Db;

/// The logged-in user. Forwards (401) when nobody is logged in, so protected routes
/// fall through to the catcher that redirects to /login; errors with 503 only when the
/// database cannot answer.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub session_id: i64,
    /// The provider that made this session ("local", "oidc").
    pub provider: String,
}

impl CurrentUser {
    /// Whether this user may edit or delete a post written by `author_id`.
    pub fn may_manage(&self, author_id: i64) -> bool {
        self.user.id == author_id || self.user.is_admin()
    }
}

/// The session lookup, done once per request however many guards ask.
async fn lookup(req: &Request<'_>) -> Result<Option<CurrentUser>, ()> {
    let cached: &Result<Option<CurrentUser>, ()> = req
        .local_cache_async(async {
            let db = Db::fetch(req.rocket()).ok_or(())?;
            let config = req.rocket().state::<Config>().ok_or(())?;
            let found = session::current(db, req.cookies(), &config.auth).await;
            // OIDC sessions are re-checked at the provider every `recheck_minutes`;
            // when that changed something, read the session again.
            let found = match (
                found,
                req.rocket().state::<Providers>().and_then(|p| p.oidc()),
            ) {
                (Ok(Some(s)), Some(oidc)) if s.provider == "oidc" => {
                    match oidc.recheck(db, s.session_id).await {
                        Ok(Recheck::NotDue) => Ok(Some(s)),
                        Ok(_) => session::current(db, req.cookies(), &config.auth).await,
                        Err(e) => Err(e),
                    }
                }
                (found, _) => found,
            };
            match found {
                Ok(found) => Ok(found.map(|s| CurrentUser {
                    user: s.user(),
                    session_id: s.session_id,
                    provider: s.provider,
                })),
                Err(e) => {
                    log::error!("session lookup failed: {e}");
                    Err(())
                }
            }
        })
        .await;
    cached.clone()
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentUser {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match lookup(req).await {
            Ok(Some(user)) => Outcome::Success(user),
            Ok(None) => Outcome::Forward(Status::Unauthorized),
            Err(()) => Outcome::Error((Status::ServiceUnavailable, ())),
        }
    }
}

/// What the request says about the client: its address (for throttling) and whether it
/// reached us over HTTPS (for Secure cookies). Both come from the connection itself,
/// unless the peer is one of `trusted_proxies`: then from its `X-Forwarded-For` (the
/// rightmost address that is not itself a trusted proxy) and `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub ip: IpAddr,
    pub https: bool,
}

impl Client {
    pub fn of(req: &Request<'_>) -> Client {
        let peer = req
            .remote()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let tls = req.rocket().config().tls_enabled();
        let proxies = req
            .rocket()
            .state::<Config>()
            .map_or(&[][..], |c| &c.proxies[..]);
        let trusted = |ip: &IpAddr| proxies.iter().any(|net| net.contains(&canonical(*ip)));
        if !trusted(&peer) {
            return Client {
                ip: peer,
                https: tls,
            };
        }
        let mut ip = peer;
        let hops: Vec<&str> = req
            .headers()
            .get("X-Forwarded-For")
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(addr) => {
                    ip = addr;
                    if !trusted(&addr) {
                        break;
                    }
                }
                // Garbage: keep the last address a trusted proxy vouched for.
                None => break,
            }
        }
        let proto = req
            .headers()
            .get("X-Forwarded-Proto")
            .flat_map(|v| v.split(','))
            .last();
        let https = tls || proto.is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        Client {
            ip: canonical(ip),
            https,
        }
    }
}

/// IPv4-mapped IPv6 addresses as plain IPv4, so one client has one form.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An X-Forwarded-For entry: an address, possibly with a port or in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Client {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(Client::of(req))
    }
}

/// The User-Agent header, empty when absent.
pub struct UserAgent(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for UserAgent {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(UserAgent(
            req.headers()
                .get_one("User-Agent")
                .unwrap_or("")
                .to_string(),
        ))
    }
}
