//! Random tokens, their stored hashes and constant-time comparison: the one place
//! sessions, CSRF protection and single-use values get them from. It depends on nothing
//! else in quire, so every module may use it without making a circle.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 random bits from the OS, base64url without padding (43 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `value`, lowercase hex: what is stored in place of a token, so a leaked
/// table does not hold anything a browser could present.
pub fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Whether `given` equals `expected`, in time that does not depend on where they differ.
/// An empty `expected` matches nothing: a secret that was never set proves nothing.
pub fn constant_eq(given: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn an_empty_secret_matches_nothing() {
        assert!(constant_eq("x", "x"));
        assert!(!constant_eq("x", "y"));
        assert!(!constant_eq("", ""));
        assert!(!constant_eq("xy", "x"));
    }
}
