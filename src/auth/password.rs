//! Password policy and argon2id hashing. Hashing runs on the blocking pool behind a
//! semaphore: argon2 is deliberately slow and memory-hungry, and unbounded parallel
//! hashes would stall the async executor or exhaust memory under a login flood.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rocket::tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

use crate::config::{Argon2Config, PASSWORD_MAX};
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the email is unknown so that
    /// answering "no such account" takes as long as "wrong password".
    dummy_hash: Arc<String>,
    /// How long a verification with the configured parameters takes (nanoseconds, a
    /// running average). A wrong password checked against a hash made with weaker
    /// parameters (before an upgrade) is padded to this, so that it answers no sooner
    /// than an unknown email, which is checked against the dummy hash.
    typical_nanos: Arc<AtomicU64>,
}

/// Longest password input looked at, in characters: four times the longest password
/// accepted, which NFKC normalization cannot shrink into (its largest contraction, a
/// Hangul syllable, is three to one). Anything longer is refused before normalizing or
/// hashing, so a 2 MiB form costs nothing.
pub const INPUT_MAX: usize = 4 * PASSWORD_MAX;

/// True when `password` is longer than any password quire accepted could have been typed.
pub fn too_long(password: &str) -> bool {
    password.len() > INPUT_MAX && password.chars().nth(INPUT_MAX).is_some()
}

impl Hasher {
    pub fn new(cfg: Argon2Config, concurrency: usize) -> Result<Hasher, String> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| format!("auth.argon2: {e}"))?;
        let mut random = [0u8; 32];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut random[..]);
        let started = Instant::now();
        let dummy = hash_blocking(&params, &hex::encode(random)).map_err(|e| e.to_string())?;
        // Hashing and verifying with the same parameters cost the same: a first estimate.
        let typical = started.elapsed().as_nanos() as u64;
        Ok(Hasher {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: Arc::new(dummy),
            typical_nanos: Arc::new(AtomicU64::new(typical)),
        })
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Hashes with the configured parameters and a random salt (PHC string).
    pub async fn hash(&self, password: &str) -> Result<String> {
        let params = self.params.clone();
        let password = password.to_string();
        self.run(move || hash_blocking(&params, &password)).await?
    }

    /// True when `password` matches `hash`. With no hash (unknown account) it checks
    /// against a dummy hash and returns false, taking the same time. A wrong password
    /// against a hash with weaker parameters than the configured ones takes as long as
    /// one against a current hash, so an old account does not stand out.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let known = hash.is_some();
        let weaker = hash.is_some_and(|h| self.needs_rehash(h));
        let hash = hash.unwrap_or(&self.dummy_hash).to_string();
        let password = password.to_string();
        let (ok, took) = self
            .run(move || {
                let started = Instant::now();
                let ok = verify_blocking(&password, &hash);
                (ok, started.elapsed())
            })
            .await?;
        if !weaker {
            self.observe(took);
        } else if !ok {
            // Padded by sleeping, not by hashing: it costs the server nothing.
            let typical = Duration::from_nanos(self.typical_nanos.load(Ordering::Relaxed));
            rocket::tokio::time::sleep(typical.saturating_sub(took)).await;
        }
        Ok(ok && known)
    }

    /// Folds one verification's duration into the running average (weight 1/8).
    fn observe(&self, took: Duration) {
        let sample = took.as_nanos() as u64;
        let old = self.typical_nanos.load(Ordering::Relaxed);
        let new = old - old / 8 + sample / 8;
        self.typical_nanos.store(new, Ordering::Relaxed);
    }

    /// True when `hash` was made with weaker parameters than the configured ones, so a
    /// successful login should store a fresh hash.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return true;
        };
        let Ok(p) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm != argon2::ARGON2ID_IDENT
            || p.m_cost() < self.params.m_cost()
            || p.t_cost() < self.params.t_cost()
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        rocket::tokio::task::spawn_blocking(f)
            .await
            .map_err(Error::internal)
    }
}

/// NFKC, as NIST SP 800-63B asks, so the same passphrase typed on different keyboards
/// (composed or decomposed accents, full-width forms) is the same password.
pub fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

fn hash_blocking(params: &Params, password: &str) -> Result<String> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon
        .hash_password(normalize(password).as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(Error::internal)
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        log::error!("stored password hash is not a PHC string");
        return false;
    };
    // Verification takes its parameters from the stored hash.
    Argon2::default()
        .verify_password(normalize(password).as_bytes(), &parsed)
        .is_ok()
}

/// Why a new password is refused, worded for the person choosing it.
pub fn policy_problem(password: &str, min_len: usize, context: &[&str]) -> Option<String> {
    if too_long(password) {
        return Some(format!("Use at most {PASSWORD_MAX} characters."));
    }
    let len = normalize(password).chars().count();
    if len < min_len {
        return Some(format!(
            "Use at least {min_len} characters; a few words make an easy start."
        ));
    }
    if len > PASSWORD_MAX {
        return Some(format!("Use at most {PASSWORD_MAX} characters."));
    }
    // zxcvbn's matching grows quickly with length; a long password is judged by its start.
    let head: String = password.chars().take(100).collect();
    let inputs: Vec<&str> = context.iter().copied().filter(|s| !s.is_empty()).collect();
    let estimate = zxcvbn::zxcvbn(&head, &inputs);
    if u8::from(estimate.score()) < 3 {
        let why = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        return Some(format!(
            "This password is too common or easy to guess{why}. Try a few unrelated words."
        ));
    }
    None
}
