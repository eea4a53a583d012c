//! HTTP validators and compression for what everyone may see: an ETag and Last-Modified on
//! every public 200 answer of a text type (pages, feeds, sitemap, static files), 304 Not
//! Modified when the reader already has it, and gzip or brotli when the client accepts
//! them, with `Vary: Accept-Encoding`.
//!
//! Personal answers (those `headers::SecurityHeaders` marked `no-store`, or that set a
//! cookie) get none of it: no validator that could confirm one person's page to another,
//! and no compression of a page holding a secret (a CSRF token) next to text a visitor
//! can choose, which is what BREACH reads secrets through.
//!
//! The ETag is a SHA-256 of the identity bytes; each content coding is a representation of
//! its own (RFC 9110, 8.8.3), so the gzip and brotli bodies carry a strong tag of their
//! own ("<hash>-gz", "<hash>-br"). Last-Modified is when this instance first sent those
//! bytes at that address (`page_last_modified`); for static files, when it started.

use std::io::{Cursor, Write};
use std::sync::OnceLock;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Header, Method, Status};
use rocket::{Build, Request, Response, Rocket};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Bodies above this are sent as they are: no hash, no compression (nothing public is
/// this large; the bound keeps a response's extra work small whatever it is).
pub const MAX_BODY: usize = 4 << 20;
/// Below this, compression saves less than the header costs.
pub const MIN_COMPRESS: usize = 512;
/// Brotli quality for answers compressed per request: fast, and still smaller than gzip.
const BROTLI_DYNAMIC: u32 = 5;
/// For static files, compressed once.
pub const BROTLI_STATIC: u32 = 11;

/// A content coding quire sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
}

impl Coding {
    fn token(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
            Coding::Brotli => Some("br"),
        }
    }

    /// The representation's strong ETag for the identity bytes' `hash`.
    pub fn etag(self, hash: &str) -> String {
        match self {
            Coding::Identity => format!("\"{hash}\""),
            Coding::Gzip => format!("\"{hash}-gz\""),
            Coding::Brotli => format!("\"{hash}-br\""),
        }
    }

    /// Sets Content-Encoding (nothing for identity).
    pub fn set_on(self, res: &mut Response<'_>) {
        if let Some(t) = self.token() {
            res.set_header(Header::new("Content-Encoding", t));
        }
    }
}

/// The coding to send, from the request's Accept-Encoding: the highest q-value among
/// those offered (brotli on a tie), a q of 0 meaning "not this one", `*` standing for
/// codings not named. Identity when there is no header or nothing acceptable is offered.
pub fn negotiate(accept_encoding: Option<&str>, gzip: bool, brotli: bool) -> Coding {
    let Some(header) = accept_encoding else {
        return Coding::Identity;
    };
    let mut q_gzip = None;
    let mut q_br = None;
    let mut q_any = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0_f32;
        for p in parts {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        match name.as_str() {
            "gzip" | "x-gzip" => q_gzip = Some(q),
            "br" => q_br = Some(q),
            "*" => q_any = Some(q),
            _ => {}
        }
    }
    let q_gzip = if gzip {
        q_gzip.or(q_any).unwrap_or(0.0)
    } else {
        0.0
    };
    let q_br = if brotli {
        q_br.or(q_any).unwrap_or(0.0)
    } else {
        0.0
    };
    if q_br > 0.0 && q_br >= q_gzip {
        Coding::Brotli
    } else if q_gzip > 0.0 {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

/// Whether answers of this type are text worth compressing and validating: HTML, CSS,
/// JavaScript, XML (Atom, sitemaps) and JSON.
pub fn compressible(ct: &ContentType) -> bool {
    let top = ct.top().as_str().to_ascii_lowercase();
    let sub = ct.sub().as_str().to_ascii_lowercase();
    match top.as_str() {
        "text" => matches!(sub.as_str(), "html" | "css" | "javascript" | "xml"),
        "application" => {
            matches!(sub.as_str(), "javascript" | "xml" | "json")
                || sub.ends_with("+xml")
                || sub.ends_with("+json")
        }
        _ => false,
    }
}

/// `body` compressed with `coding` (brotli at `quality`); None for identity.
pub fn compress(body: &[u8], coding: Coding, quality: u32) -> Option<Vec<u8>> {
    match coding {
        Coding::Identity => None,
        Coding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 3),
                flate2::Compression::default(),
            );
            enc.write_all(body).ok()?;
            enc.finish().ok()
        }
        Coding::Brotli => {
            let mut out = Vec::with_capacity(body.len() / 3);
            // A window no larger than the body, since the encoder sizes its ring buffer
            // by it (the default of 4 MiB made every compression allocate megabytes), but
            // of at least 17 bits: for windows of 16 bits or less at qualities 5 to 9 the
            // brotli crate lacks the small hasher the format's reference uses and falls
            // back to one with 32 MiB of tables, ten times slower for a 4 KiB page.
            let window = (usize::BITS - body.len().max(1).leading_zeros()).clamp(17, 22);
            let params = brotli::enc::BrotliEncoderParams {
                quality: quality as i32,
                lgwin: window as i32,
                size_hint: body.len(),
                ..Default::default()
            };
            brotli::BrotliCompress(&mut Cursor::new(body), &mut out, &params).ok()?;
            Some(out)
        }
    }
}

/// The hex SHA-256 of `body`, cut to 128 bits: what ETags are made of.
pub fn hash(body: &[u8]) -> String {
    hex::encode(&Sha256::digest(body)[..16])
}

/// When this process started serving: the Last-Modified of static files, which come
/// with the binary.
pub fn started() -> OffsetDateTime {
    static START: OnceLock<OffsetDateTime> = OnceLock::new();
    *START.get_or_init(crate::db::current_time)
}

const HTTP_DATE: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// An IMF-fixdate ("Tue, 01 Dec 2026 14:05:00 GMT").
pub fn http_date(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(HTTP_DATE)
        .unwrap_or_default()
}

/// An IMF-fixdate as a time; None for anything else (then the header is ignored, as
/// RFC 9110 says for an invalid date).
pub fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(s.trim(), HTTP_DATE)
        .ok()
        .map(|t| t.assume_utc())
}

/// Whether the request's preconditions say the client has this representation already:
/// If-None-Match against `etag` (weak comparison, `*` matching anything) when present,
/// else If-Modified-Since against `last_modified` to the second.
pub fn not_modified(req: &Request<'_>, etag: &str, last_modified: Option<OffsetDateTime>) -> bool {
    if let Some(inm) = req.headers().get_one("If-None-Match") {
        let ours = etag.trim_start_matches("W/");
        return inm
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours);
    }
    let since = req
        .headers()
        .get_one("If-Modified-Since")
        .and_then(parse_http_date);
    match (since, last_modified) {
        (Some(since), Some(lm)) => lm.unix_timestamp() <= since.unix_timestamp(),
        _ => false,
    }
}

/// Turns `res` into a 304 for the representation it was: no body, no Content-Length,
/// validators and caching headers kept.
pub fn make_not_modified(res: &mut Response<'_>) {
    res.set_status(Status::NotModified);
    res.set_streamed_body(rocket::tokio::io::empty());
    res.remove_header("Content-Encoding");
    res.remove_header("Content-Length");
}

/// Adds `Accept-Encoding` to the response's Vary.
pub fn vary_on_encoding(res: &mut Response<'_>) {
    let vary: Vec<String> = res.headers().get("Vary").map(str::to_string).collect();
    if vary
        .iter()
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding") || v.trim() == "*")
    {
        return;
    }
    let joined = vary
        .into_iter()
        .chain(std::iter::once("Accept-Encoding".to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    res.set_header(Header::new("Vary", joined));
}

/// At most this many addresses are remembered; past it the memory starts afresh.
const SEEN_MAX: usize = 10_000;

/// A page's Last-Modified: when this instance first sent the page (the address `key`)
/// with the identity bytes `hash`. Any change to what a page shows, a deletion or a
/// renamed author as much as a new post, changes its bytes and so moves this forward;
/// post times alone would not (a page losing its newest post would look older). Each
/// instance remembers on its own, and only ever later than the change, so a date one
/// instance gave never gets a wrong 304 from another; a page it does not remember is
/// new to it (an extra 200 at worst).
pub(crate) fn page_last_modified(key: &str, hash: &str) -> OffsetDateTime {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static SEEN: OnceLock<Mutex<HashMap<String, (String, OffsetDateTime)>>> = OnceLock::new();
    let now = crate::db::current_time();
    let Ok(mut seen) = SEEN.get_or_init(Default::default).lock() else {
        return now;
    };
    if let Some((h, t)) = seen.get(key) {
        if h == hash {
            return *t;
        }
    }
    if seen.len() >= SEEN_MAX && !seen.contains_key(key) {
        seen.clear();
    }
    seen.insert(key.to_string(), (hash.to_string(), now));
    now
}

/// Attach after `headers::SecurityHeaders`, whose Cache-Control it reads.
pub struct HttpCache;

#[rocket::async_trait]
impl Fairing for HttpCache {
    fn info(&self) -> Info {
        Info {
            name: "Validators and compression",
            kind: Kind::Ignite | Kind::Response,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> rocket::fairing::Result {
        started();
        Ok(rocket)
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        if !matches!(req.method(), Method::Get | Method::Head) || res.status() != Status::Ok {
            return;
        }
        let personal = res.headers().contains("Set-Cookie")
            || res
                .headers()
                .get("Cache-Control")
                .any(|v| v.contains("no-store") || v.contains("private"));
        if personal {
            return;
        }
        // Static files bring their validators (and their precompressed bodies, with
        // their own Vary).
        if let Some(etag) = res.headers().get_one("ETag").map(str::to_string) {
            let lm = res
                .headers()
                .get_one("Last-Modified")
                .and_then(parse_http_date);
            if not_modified(req, &etag, lm) {
                make_not_modified(res);
            }
            return;
        }
        // A page the page cache will keep: stored with its compressed forms, and sent.
        if super::page_cache::fill(req, res).await {
            return;
        }
        if !res.content_type().is_some_and(|ct| compressible(&ct)) {
            return;
        }
        vary_on_encoding(res);
        if res.headers().contains("Content-Encoding") {
            return;
        }
        match res.body().preset_size() {
            Some(n) if n <= MAX_BODY => {}
            // Streamed or too large: sent as it is.
            _ => return,
        }
        let Ok(body) = res.body_mut().to_bytes().await else {
            return;
        };
        let hash = hash(&body);
        let coding = if body.len() >= MIN_COMPRESS {
            negotiate(req.headers().get_one("Accept-Encoding"), true, true)
        } else {
            Coding::Identity
        };
        let etag = coding.etag(&hash);
        let lm = page_last_modified(&req.uri().to_string(), &hash);
        res.set_header(Header::new("ETag", etag.clone()));
        res.set_header(Header::new("Last-Modified", http_date(lm)));
        if not_modified(req, &etag, Some(lm)) {
            make_not_modified(res);
            return;
        }
        match compress(&body, coding, BROTLI_DYNAMIC) {
            Some(packed) => {
                coding.set_on(res);
                res.set_sized_body(packed.len(), Cursor::new(packed));
            }
            None => {
                res.set_header(Header::new("ETag", Coding::Identity.etag(&hash)));
                res.set_sized_body(body.len(), Cursor::new(body));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_round_trip_to_the_second() {
        let t = OffsetDateTime::from_unix_timestamp(1_796_220_300).unwrap();
        let s = http_date(t);
        assert!(s.ends_with(" GMT"), "{s}");
        assert_eq!(parse_http_date(&s), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn the_coding_follows_accept_encoding_and_its_q_values() {
        let pick = |h: Option<&str>| negotiate(h, true, true);
        assert_eq!(pick(None), Coding::Identity);
        assert_eq!(pick(Some("gzip, deflate, br")), Coding::Brotli);
        assert_eq!(pick(Some("gzip")), Coding::Gzip);
        assert_eq!(pick(Some("gzip;q=0")), Coding::Identity);
        assert_eq!(pick(Some("br;q=0, gzip;q=0.5")), Coding::Gzip);
        assert_eq!(pick(Some("gzip;q=1.0, br;q=0.8")), Coding::Gzip);
        assert_eq!(pick(Some("*")), Coding::Brotli);
        assert_eq!(pick(Some("*;q=0")), Coding::Identity);
        assert_eq!(pick(Some("identity")), Coding::Identity);
        assert_eq!(negotiate(Some("br, gzip"), true, false), Coding::Gzip);
    }

    #[test]
    fn text_types_are_compressible_and_images_are_not() {
        for ct in [
            ContentType::HTML,
            ContentType::CSS,
            ContentType::JavaScript,
            ContentType::XML,
            ContentType::JSON,
            ContentType::new("application", "atom+xml"),
        ] {
            assert!(compressible(&ct), "{ct}");
        }
        for ct in [ContentType::PNG, ContentType::Plain, ContentType::SVG] {
            assert!(!compressible(&ct), "{ct}");
        }
    }

    /// Bytes this thread holds from the allocator, and the most it held since the last
    /// reset: what one call costs, whatever other tests do on their threads meanwhile.
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            static HELD: Cell<isize> = const { Cell::new(0) };
            static PEAK: Cell<isize> = const { Cell::new(0) };
        }

        fn add(n: isize) {
            // During thread teardown the counters may be gone; nothing is measured then.
            let _ = HELD.try_with(|held| {
                let now = held.get() + n;
                held.set(now);
                let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
            });
        }

        pub struct Counting;

        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                add(layout.size() as isize);
                System.alloc(layout)
            }
            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                add(layout.size() as isize);
                System.alloc_zeroed(layout)
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                add(-(layout.size() as isize));
                System.dealloc(ptr, layout)
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                add(new_size as isize - layout.size() as isize);
                System.realloc(ptr, layout, new_size)
            }
        }

        #[global_allocator]
        static COUNTING: Counting = Counting;

        /// The most bytes `f` held at once beyond what the thread held before it.
        pub fn peak_of(f: impl FnOnce()) -> usize {
            let before = HELD.with(Cell::get);
            PEAK.with(|p| p.set(before));
            f();
            (PEAK.with(Cell::get) - before).max(0) as usize
        }
    }

    #[test]
    fn compressing_a_page_takes_a_few_mebibytes_at_most() {
        // Pages as small as a post and as large as a sitemap, at the per-request and the
        // stored quality: each compression is done on every render after a write.
        let para = "<p>A quiet morning by the river, stones and a garden lantern.</p>\n";
        for size in [600, 4 << 10, 30 << 10, 60 << 10, 200 << 10] {
            let body = para.repeat(size / para.len() + 1).into_bytes();
            for quality in [BROTLI_DYNAMIC, crate::web::page_cache::BROTLI_STORED] {
                let peak = counting::peak_of(|| {
                    compress(&body, Coding::Brotli, quality).unwrap();
                });
                assert!(
                    peak < 4 << 20,
                    "{} bytes at quality {quality}: {} KiB held at once",
                    body.len(),
                    peak >> 10
                );
            }
        }
    }

    #[test]
    fn compressed_bodies_decompress_to_the_same_bytes() {
        let body = "quire ".repeat(500).into_bytes();
        let gz = compress(&body, Coding::Gzip, 0).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        assert_eq!(out, body);
        let br = compress(&body, Coding::Brotli, BROTLI_DYNAMIC).unwrap();
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut Cursor::new(&br), &mut out).unwrap();
        assert_eq!(out, body);
        assert!(br.len() < body.len() && gz.len() < body.len());
    }
}
