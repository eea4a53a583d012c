//! Authenticator-app codes (RFC 6238 as every app expects them: HMAC-SHA-1, 6 digits,
//! 30-second steps), the `otpauth://` URI apps read, and its QR code drawn on the
//! server as SVG (shown as a `data:` image, which the CSP allows; no script, no
//! outside service).

use base64::Engine as _;
use rand::RngCore;
use totp_rs::{Algorithm, TOTP};

/// Seconds per time step.
pub const STEP: u64 = 30;
pub const DIGITS: usize = 6;
/// Steps of clock skew accepted either way.
pub const SKEW: u64 = 1;
/// Secret length: 160 bits, RFC 4226's recommendation.
const SECRET_BYTES: usize = 20;

/// A TOTP secret (raw bytes).
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// A fresh random secret.
    pub fn generate() -> Secret {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Secret(bytes)
    }

    /// The secret as base32 text (RFC 4648, no padding), as apps take it typed in and
    /// as it is stored (sealed).
    pub fn to_base32(&self) -> String {
        self.totp("", "").get_secret_base32()
    }

    /// The secret written by `to_base32`; None when `text` is not base32 of at least
    /// 128 bits.
    pub fn from_base32(text: &str) -> Option<Secret> {
        let bytes = totp_rs::Secret::Encoded(text.to_string()).to_bytes().ok()?;
        (bytes.len() >= 16).then_some(Secret(bytes))
    }

    fn totp(&self, issuer: &str, account: &str) -> TOTP {
        // A colon separates issuer and account in the URI's label: keep it out of both.
        let clean = |s: &str| s.replace(':', " ");
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            SKEW as u8,
            STEP,
            self.0.clone(),
            (!issuer.is_empty()).then(|| clean(issuer)),
            clean(account),
        )
    }

    /// The `otpauth://totp/...` URI for an app, labelled "issuer:account".
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        self.totp(issuer, account).get_url()
    }

    /// The code for the step holding unix time `time`.
    pub fn code_at(&self, time: u64) -> String {
        self.totp("", "").generate(time)
    }

    /// The time step whose code `code` is, among the step of `now` and one either side;
    /// None when it is none of them. Compared in constant time; the caller still has to
    /// make sure a step is accepted once (`db::factors::use_step`).
    pub fn check(&self, code: &str, now: u64) -> Option<i64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp("", "");
        let current = now / STEP;
        let mut found = None;
        // Every candidate is computed and compared, so the time taken says nothing.
        for step in current.saturating_sub(SKEW)..=current + SKEW {
            let expected = totp.generate(step * STEP);
            if crate::token::constant_eq(&expected, code) && found.is_none() {
                found = Some(step as i64);
            }
        }
        found
    }
}

/// A QR code of `text` as an `<img>` source: an SVG made here, base64 in a `data:` URI.
pub fn qr_data_uri(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret, "12345678901234567890".
    fn rfc_secret() -> Secret {
        Secret(b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_match_rfc_6238_test_vectors() {
        // The RFC's 8-digit values, last six digits.
        for (time, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(rfc_secret().code_at(time), code, "at {time}");
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let s = rfc_secret();
        let now = 1_700_000_000;
        let step = (now / STEP) as i64;
        assert_eq!(s.check(&s.code_at(now), now), Some(step));
        assert_eq!(s.check(&s.code_at(now - STEP), now), Some(step - 1));
        assert_eq!(s.check(&s.code_at(now + STEP), now), Some(step + 1));
        assert_eq!(s.check(&s.code_at(now - 2 * STEP), now), None);
        assert_eq!(s.check(&s.code_at(now + 2 * STEP), now), None);
        assert_eq!(s.check("12345", now), None);
        assert_eq!(s.check("abcdef", now), None);
    }

    #[test]
    fn the_secret_round_trips_through_base32_and_the_uri_names_it() {
        let s = Secret::generate();
        let text = s.to_base32();
        assert_eq!(text.len(), 32);
        assert_eq!(Secret::from_base32(&text).unwrap().0, s.0);
        assert!(Secret::from_base32("not base32!").is_none());
        let uri = s.uri("My: Blog", "ann@example.com");
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains(&format!("secret={text}")), "{uri}");
        assert!(!uri.contains("My:"), "{uri}");
        let qr = qr_data_uri(&uri).unwrap();
        assert!(qr.starts_with("data:image/svg+xml;base64,"));
    }
}
