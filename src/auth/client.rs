//! Who is on the other end of the connection: the client's address and whether it came
//! over HTTPS, believing forwarded headers only from `trusted_proxies`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::Data;

use crate::config::Config;

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
            .map_or(&[][..], |c| &c.trusted_proxies[..]);
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

/// Warns once when quire seems to sit behind a reverse proxy it was not told about: the
/// first requests carrying `X-Forwarded-For` all come from one loopback or private
/// address while `trusted_proxies` is empty. Every client is then throttled as that one
/// address, so one person's failures would lock out everyone.
#[derive(Default)]
pub struct UntrustedProxyWarning {
    done: AtomicBool,
    seen: Mutex<(Option<IpAddr>, u32)>,
}

/// Forwarded requests looked at before deciding.
const PROXY_SAMPLE: u32 = 10;

#[rocket::async_trait]
impl Fairing for UntrustedProxyWarning {
    fn info(&self) -> Info {
        Info {
            name: "untrusted proxy warning",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        if self.done.load(Ordering::Relaxed) || !req.headers().contains("X-Forwarded-For") {
            return;
        }
        let configured = req
            .rocket()
            .state::<Config>()
            .is_some_and(|c| !c.trusted_proxies.is_empty());
        let Some(peer) = req.remote().map(|a| canonical(a.ip())) else {
            return;
        };
        if configured || !is_local_network(peer) {
            self.done.store(true, Ordering::Relaxed);
            return;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        match seen.0 {
            Some(first) if first != peer => {
                self.done.store(true, Ordering::Relaxed);
                return;
            }
            _ => *seen = (Some(peer), seen.1 + 1),
        }
        if seen.1 >= PROXY_SAMPLE && !self.done.swap(true, Ordering::Relaxed) {
            log::warn!(
                "every request with X-Forwarded-For comes from {peer}, but trusted_proxies is \
                 empty: quire seems to be behind a reverse proxy it does not trust, so it \
                 counts every client's login failures as that one address's. Add the proxy to \
                 trusted_proxies (see the README, \"Behind a reverse proxy\")."
            );
        }
    }
}

/// Loopback and private addresses, where a reverse proxy usually sits.
fn is_local_network(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
        }
    }
}
