//! Purpose-bound keys derived from the configured `secret_key`.
//!
//! The secret key itself only ever goes into HKDF-SHA256; each use gets its own subkey
//! through a distinct `Purpose`, so a key serving one purpose says nothing about another
//! and no two uses can be confused. Two tools come out:
//!
//! - `KeyedHash` (HMAC-SHA256): names for things the database should not hold in the
//!   clear, alike on every instance sharing the secret key (login throttle rows).
//! - `SecretBox` (AES-256-GCM): short secrets the database must keep but a dump must
//!   not hand out (the provider's OIDC tokens; later TOTP secrets). A sealed value is
//!   the text `v1.<base64(nonce || ciphertext)>`, with a random 96-bit nonce per seal and
//!   the purpose and a caller's context (such as the owning row's id) as associated
//!   data, so a value copied to another row or column no longer opens.
//!
//! Rotating `secret_key` changes every subkey: sealed values no longer open (their
//! owners treat them as absent) and keyed-hash names change.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rocket::config::SecretKey;
use rocket::figment::Figment;
use sha2::Sha256;

/// What a subkey is for. Each purpose has its own HKDF info string, so each its own key;
/// a new use of the secret key gets a new variant, never a reused one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Names of login throttle rows (`auth::local::ThrottleKeys`).
    LoginThrottle,
    /// The refresh and access tokens an OIDC provider gave, kept with the session.
    OidcTokens,
    /// The bodies of queued mail (they may hold a reset link).
    MailOutbox,
    /// Authenticator-app (TOTP) secrets, enrolled or being set up.
    TotpSecrets,
}

impl Purpose {
    /// The HKDF info string; changing one changes that key, so these are fixed forever.
    fn info(self) -> &'static str {
        match self {
            Purpose::LoginThrottle => "quire v1 keyed-hash login-throttle",
            Purpose::OidcTokens => "quire v1 secret-box oidc-tokens",
            Purpose::MailOutbox => "quire v1 secret-box mail-outbox",
            Purpose::TotpSecrets => "quire v1 secret-box totp-secrets",
        }
    }
}

/// The HKDF salt: fixed, it only separates quire's use of the key from Rocket's.
const SALT: &[u8] = b"quire keys v1";
/// The prefix of a sealed value: the format, so a later one can be told apart.
const SEALED_V1: &str = "v1.";
const NONCE_LEN: usize = 12;
/// AES-GCM's tag: the shortest ciphertext.
const TAG_LEN: usize = 16;
type HmacSha256 = Hmac<Sha256>;

/// The root of every subkey: HKDF over the configured `secret_key`.
#[derive(Clone)]
pub struct Keys {
    hkdf: Hkdf<Sha256>,
    /// False when no secret key was configured: the keys are then public knowledge.
    keyed: bool,
}

impl Keys {
    /// Keys from the figment's `secret_key` (what Rocket accepts there: 256 or 512 bits
    /// in base64 or hex, or a byte array). With none configured, or Rocket's all-zero
    /// placeholder (only debug builds launch so), the keys are fixed and public.
    pub fn from_figment(figment: &Figment) -> Keys {
        match secret_from_figment(figment) {
            Some(secret) => Keys::from_secret(&secret),
            None => Keys::unkeyed(),
        }
    }

    /// Keys from raw secret bytes.
    pub fn from_secret(secret: &[u8]) -> Keys {
        Keys {
            hkdf: Hkdf::new(Some(SALT), secret),
            keyed: true,
        }
    }

    /// Keys from nothing: fixed and public, for what needs the same names without a
    /// configured key (the command line, a debug build).
    pub fn unkeyed() -> Keys {
        Keys {
            hkdf: Hkdf::new(Some(SALT), b""),
            keyed: false,
        }
    }

    fn subkey(&self, purpose: Purpose) -> [u8; 32] {
        let mut key = [0u8; 32];
        self.hkdf
            .expand(purpose.info().as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        key
    }

    /// The keyed hash for `purpose`.
    pub fn keyed_hash(&self, purpose: Purpose) -> KeyedHash {
        KeyedHash {
            key: self.subkey(purpose),
        }
    }

    /// The secret box for `purpose`. Without a configured key it uses a random key of
    /// this process instead of a public one: what it seals opens only in this process,
    /// as with the cookie key Rocket then generates.
    pub fn secret_box(&self, purpose: Purpose) -> SecretBox {
        if self.keyed {
            SecretBox::with_key(self.subkey(purpose), purpose)
        } else {
            SecretBox::random(purpose)
        }
    }
}

/// The secret key's bytes as Rocket reads them, None when unset, zero or invalid.
fn secret_from_figment(figment: &Figment) -> Option<Vec<u8>> {
    let key = figment.extract_inner::<SecretKey>("secret_key").ok()?;
    if key.is_zero() {
        return None;
    }
    // SecretKey keeps its bytes to itself: decode the value as it did.
    if let Ok(text) = figment.extract_inner::<String>("secret_key") {
        let decoded = match text.len() {
            44 | 88 => base64::engine::general_purpose::STANDARD.decode(&text).ok(),
            64 => hex::decode(&text).ok(),
            _ => None,
        };
        // Whatever Rocket accepted is secret material, decoded or not.
        return Some(decoded.unwrap_or_else(|| text.into_bytes()));
    }
    figment.extract_inner::<Vec<u8>>("secret_key").ok()
}

/// HMAC-SHA256 under one purpose's subkey.
#[derive(Clone)]
pub struct KeyedHash {
    key: [u8; 32],
}

impl KeyedHash {
    /// The MAC of `data` under `label`, a sub-purpose (the label is length-prefixed, so
    /// no label and data pair reads as another).
    pub fn hash(&self, label: &str, data: &[u8]) -> [u8; 32] {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&(label.len() as u64).to_be_bytes());
        mac.update(label.as_bytes());
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The first 128 bits of `hash`, in hex: plenty for naming rows.
    pub fn hex128(&self, label: &str, data: &[u8]) -> String {
        hex::encode(&self.hash(label, data)[..16])
    }
}

/// Seals short secrets (tokens, TOTP secrets) for storage as text with AES-256-GCM under
/// one purpose's subkey. See the module documentation for the format.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    purpose: Purpose,
}

impl SecretBox {
    fn with_key(key: [u8; 32], purpose: Purpose) -> SecretBox {
        SecretBox {
            cipher: Aes256Gcm::new(&key.into()),
            purpose,
        }
    }

    /// A box with a random key: nothing it seals opens anywhere else.
    pub fn random(purpose: Purpose) -> SecretBox {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        SecretBox::with_key(key, purpose)
    }

    /// What the tag also covers: the purpose and the caller's context. The purpose is
    /// length-prefixed, so no pair of them reads as another.
    fn associated_data(&self, context: &str) -> Vec<u8> {
        let purpose = self.purpose.info().as_bytes();
        let mut aad = Vec::with_capacity(8 + purpose.len() + context.len());
        aad.extend_from_slice(&(purpose.len() as u64).to_be_bytes());
        aad.extend_from_slice(purpose);
        aad.extend_from_slice(context.as_bytes());
        aad
    }

    /// `secret` sealed as `v1.<base64>`, bound to `context` (say, the owning row's id and
    /// column); each seal of one secret differs. The empty string stays empty: "none".
    pub fn seal(&self, secret: &str, context: &str) -> String {
        if secret.is_empty() {
            return String::new();
        }
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = self.associated_data(context);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals any short secret");
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        format!(
            "{SEALED_V1}{}",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    }

    /// The secret `seal` sealed with this `context`. None when `sealed` is malformed,
    /// was altered, was sealed for another context or purpose, or under another key
    /// (`secret_key` rotated); callers treat that as no secret. "" opens to "".
    pub fn open(&self, sealed: &str, context: &str) -> Option<String> {
        if sealed.is_empty() {
            return Some(String::new());
        }
        let blob = base64::engine::general_purpose::STANDARD
            .decode(sealed.strip_prefix(SEALED_V1)?)
            .ok()?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let aad = self.associated_data(context);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_secret(&[7u8; 64])
    }

    fn tokens() -> SecretBox {
        keys().secret_box(Purpose::OidcTokens)
    }

    #[test]
    fn a_sealed_secret_opens_to_itself_and_does_not_show() {
        let b = tokens();
        let sealed = b.seal("refresh-token-value", "refresh 1");
        assert!(sealed.starts_with("v1."), "{sealed}");
        assert!(!sealed.contains("refresh-token-value"));
        assert_eq!(
            b.open(&sealed, "refresh 1").as_deref(),
            Some("refresh-token-value")
        );
        // Another box from the same secret key opens it too (another instance).
        assert_eq!(
            tokens().open(&sealed, "refresh 1").as_deref(),
            Some("refresh-token-value")
        );
    }

    #[test]
    fn the_empty_secret_stays_empty() {
        let b = tokens();
        assert_eq!(b.seal("", "refresh 1"), "");
        assert_eq!(b.open("", "refresh 1").as_deref(), Some(""));
    }

    #[test]
    fn altering_any_character_or_bit_makes_it_unopenable() {
        let b = tokens();
        let sealed = b.seal("a short secret", "ctx");
        for i in 0..sealed.len() {
            for c in ['A', 'z', '0', '+', '/', '=', '.', '#'] {
                let mut altered = sealed.clone().into_bytes();
                if altered[i] == c as u8 {
                    continue;
                }
                altered[i] = c as u8;
                let altered = String::from_utf8(altered).unwrap();
                assert_eq!(b.open(&altered, "ctx"), None, "{altered}");
            }
        }
        let blob = base64::engine::general_purpose::STANDARD
            .decode(&sealed[3..])
            .unwrap();
        for i in 0..blob.len() * 8 {
            let mut flipped = blob.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            let altered = format!(
                "v1.{}",
                base64::engine::general_purpose::STANDARD.encode(flipped)
            );
            assert_eq!(b.open(&altered, "ctx"), None, "bit {i}");
        }
        // Truncated, extended, or not a sealed value at all.
        for junk in [
            &sealed[..sealed.len() - 4],
            &format!("{sealed}AAAA"),
            "v1.",
            "v1.AAAA",
            "v2.AAAA",
            "a short secret",
            "v1.!!!!",
        ] {
            assert_eq!(b.open(junk, "ctx"), None, "{junk}");
        }
    }

    #[test]
    fn a_secret_opens_only_with_its_context_purpose_and_key() {
        let sealed = tokens().seal("secret", "refresh 1");
        assert_eq!(tokens().open(&sealed, "refresh 2"), None);
        assert_eq!(tokens().open(&sealed, "access 1"), None);
        assert_eq!(tokens().open(&sealed, ""), None);
        let other_purpose = keys().secret_box(Purpose::LoginThrottle);
        assert_eq!(other_purpose.open(&sealed, "refresh 1"), None);
        let other_key = Keys::from_secret(&[8u8; 64]).secret_box(Purpose::OidcTokens);
        assert_eq!(other_key.open(&sealed, "refresh 1"), None);
    }

    #[test]
    fn two_seals_of_one_secret_differ() {
        let b = tokens();
        let one = b.seal("secret", "ctx");
        let two = b.seal("secret", "ctx");
        assert_ne!(one, two);
        assert_eq!(b.open(&two, "ctx").as_deref(), Some("secret"));
    }

    #[test]
    fn each_purpose_and_secret_key_has_its_own_subkey() {
        let k = keys();
        assert_ne!(
            k.subkey(Purpose::LoginThrottle),
            k.subkey(Purpose::OidcTokens)
        );
        assert_ne!(
            k.subkey(Purpose::OidcTokens),
            Keys::from_secret(&[8u8; 64]).subkey(Purpose::OidcTokens)
        );
        let a = k.keyed_hash(Purpose::LoginThrottle);
        let b = k.keyed_hash(Purpose::OidcTokens);
        assert_ne!(a.hash("account", b"x"), b.hash("account", b"x"));
        assert_ne!(a.hash("account", b"x"), a.hash("device", b"x"));
        // Label and data do not run together.
        assert_ne!(a.hash("ab", b"c"), a.hash("a", b"bc"));
        assert_eq!(a.hex128("account", b"x").len(), 32);
    }

    #[test]
    fn without_a_configured_key_boxes_are_random_and_hashes_fixed() {
        let unkeyed = Keys::unkeyed();
        let sealed = unkeyed.secret_box(Purpose::OidcTokens).seal("secret", "c");
        assert_eq!(
            Keys::unkeyed()
                .secret_box(Purpose::OidcTokens)
                .open(&sealed, "c"),
            None
        );
        assert_eq!(
            unkeyed.keyed_hash(Purpose::LoginThrottle).hash("a", b"x"),
            Keys::unkeyed()
                .keyed_hash(Purpose::LoginThrottle)
                .hash("a", b"x")
        );
    }

    #[test]
    fn the_figments_secret_key_is_read_as_rocket_reads_it() {
        use base64::engine::general_purpose::STANDARD;
        let raw = [9u8; 64];
        let sealed = Keys::from_secret(&raw)
            .secret_box(Purpose::OidcTokens)
            .seal("s", "c");
        let base64 = Figment::new().merge(("secret_key", STANDARD.encode(raw)));
        let bytes = Figment::new().merge(("secret_key", raw.to_vec()));
        for figment in [base64, bytes] {
            let b = Keys::from_figment(&figment).secret_box(Purpose::OidcTokens);
            assert_eq!(b.open(&sealed, "c").as_deref(), Some("s"));
        }
        let hex = Figment::new().merge(("secret_key", hex::encode([9u8; 32])));
        let sealed = Keys::from_secret(&[9u8; 32])
            .secret_box(Purpose::OidcTokens)
            .seal("s", "c");
        let b = Keys::from_figment(&hex).secret_box(Purpose::OidcTokens);
        assert_eq!(b.open(&sealed, "c").as_deref(), Some("s"));
        // Unset, or Rocket's zero placeholder: no key.
        for figment in [
            Figment::new(),
            Figment::new().merge(("secret_key", STANDARD.encode([0u8; 64]))),
        ] {
            assert!(!Keys::from_figment(&figment).keyed);
        }
    }
}
