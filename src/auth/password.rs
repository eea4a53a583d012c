//! Password policy and argon2id hashing. Hashing runs on a fixed set of worker threads
//! (`auth.hash_concurrency` of them), fed by a bounded queue: argon2 is deliberately slow
//! and memory-hungry, so it must stay off the async executor, and under a login flood
//! its memory must not grow with the number of requests. Each worker owns one argon2
//! memory block, allocated at its first job and reused for every later one, so hashing
//! takes at most workers x `auth.argon2.memory_kib` however many logins arrive; requests
//! beyond the queue wait as parked tasks, which cost a few hundred bytes each. (Handing
//! each hash to the blocking pool instead let every hash allocate its 19 MiB anew, on
//! whichever thread and malloc arena it landed, and a flood of 64 logins took the process
//! from about 75 to over 380 MiB.)

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rocket::tokio::sync::{mpsc, oneshot};
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;

use crate::config::{Argon2Config, PASSWORD_MAX};
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// The workers' queue. They stop when the last `Hasher` holding it is dropped.
    jobs: mpsc::Sender<Job>,
    /// A hash of a random password, verified against when the email is unknown so that
    /// answering "no such account" takes as long as "wrong password".
    dummy_hash: Arc<String>,
    /// How long a verification with the configured parameters takes (nanoseconds, a
    /// running average). A wrong password checked against a hash made with weaker
    /// parameters (before an upgrade) is padded to this, so that it answers no sooner
    /// than an unknown email, which is checked against the dummy hash.
    typical_nanos: Arc<AtomicU64>,
}

/// One hash or verification, run on a worker with the worker's memory.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// Longest password input looked at, in characters: four times the longest password
/// accepted, which NFKC normalization cannot shrink into (its largest contraction, a
/// Hangul syllable, is three to one). Anything longer is refused before normalizing or
/// hashing, so a 2 MiB form costs nothing.
pub const INPUT_MAX: usize = 4 * PASSWORD_MAX;

/// True when `password` is longer than any password quire accepted could have been typed.
pub fn too_long(password: &str) -> bool {
    password.len() > INPUT_MAX && password.chars().nth(INPUT_MAX).is_some()
}

/// How much the workers' scheduling priority is lowered (a nice increment, Linux): while
/// a login flood keeps every worker busy, the threads serving pages still get the CPU
/// when a request comes in, so public pages stay quick. Logins lose nothing on an
/// otherwise idle machine: the workers still get every cycle no one else wants.
const WORKER_NICE: i32 = 5;

impl Hasher {
    /// Starts `concurrency` (at least one) hashing workers. Fails on invalid parameters.
    pub fn new(cfg: Argon2Config, concurrency: usize) -> Result<Hasher, String> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| format!("auth.argon2: {e}"))?;
        let workers = concurrency.max(1);
        // The first worker's memory makes the dummy hash, then goes to that worker.
        let mut first = Memory::new(params.block_count());
        let mut random = [0u8; 32];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut random[..]);
        let started = Instant::now();
        let dummy =
            hash_with(&mut first, &params, &hex::encode(random)).map_err(|e| e.to_string())?;
        // Hashing and verifying with the same parameters cost the same: a first estimate.
        let typical = started.elapsed().as_nanos() as u64;
        let (jobs, queue) = mpsc::channel::<Job>(workers);
        let queue = Arc::new(Mutex::new(queue));
        let mut memory = Some(first);
        for n in 0..workers {
            let queue = queue.clone();
            let memory = memory
                .take()
                .unwrap_or_else(|| Memory::new(params.block_count()));
            std::thread::Builder::new()
                .name(format!("quire-hash-{n}"))
                .spawn(move || work(&queue, memory))
                .map_err(|e| format!("auth.hash_concurrency: cannot start a worker: {e}"))?;
        }
        Ok(Hasher {
            params,
            jobs,
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
        self.run(move |memory| hash_with(memory, &params, &password))
            .await?
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
            .run(move |memory| {
                let started = Instant::now();
                let ok = verify_with(memory, &password, &hash);
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

    /// Runs `f` on a worker, waiting (asynchronously) for room in the queue first.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // A request that has gone away (its client disconnected) is not worth a hash.
            if !done.is_closed() {
                let _ = done.send(f(memory));
            }
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| Error::internal("the password hashing workers have stopped"))?;
        result
            .await
            .map_err(|_| Error::internal("a password hashing job failed"))
    }
}

/// A worker: takes jobs until every `Hasher` is gone. A job that panics loses its answer
/// (its caller gets an internal error), not the worker.
fn work(queue: &Mutex<mpsc::Receiver<Job>>, mut memory: Memory) {
    lower_priority();
    loop {
        // One worker waits on the queue at a time; the others wait for the lock.
        let job = queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .blocking_recv();
        let Some(job) = job else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| job(&mut memory))).is_err() {
            log::error!("a password hashing job panicked");
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // On Linux a nice value belongs to a thread: PRIO_PROCESS with a thread id (0 is
    // the calling thread).
    // SAFETY: setpriority only reads its integer arguments.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, WORKER_NICE) } != 0;
    if failed {
        log::debug!("could not lower the hashing workers' priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// A worker's argon2 memory: `blocks` for the configured parameters, reused by every job.
struct Memory {
    blocks: Vec<Block>,
    /// The block count of the configured parameters; kept at that size.
    configured: usize,
}

impl Memory {
    /// Allocated at the first use, so an instance that never hashes never holds it.
    fn new(configured: usize) -> Memory {
        Memory {
            blocks: Vec::new(),
            configured,
        }
    }

    /// Runs `f` with at least `needed` blocks: the worker's own when they are enough
    /// (a hash made with the configured parameters or weaker ones), else a buffer for
    /// this one job (a hash stored with stronger parameters than the configured ones,
    /// after the operator lowered them).
    fn with<T>(&mut self, needed: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        if needed > self.configured {
            return f(&mut vec![Block::default(); needed]);
        }
        if self.blocks.is_empty() {
            self.blocks = vec![Block::default(); self.configured];
        }
        f(&mut self.blocks[..needed])
    }
}

/// NFKC, as NIST SP 800-63B asks, so the same passphrase typed on different keyboards
/// (composed or decomposed accents, full-width forms) is the same password.
pub fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

/// An argon2id hash of `password` with `params` and a random salt, as a PHC string:
/// what argon2's own `PasswordHasher` makes, computed in the worker's memory.
fn hash_with(memory: &mut Memory, params: &Params, password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(Error::internal)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    memory
        .with(params.block_count(), |blocks| {
            argon.hash_password_into_with_memory(
                normalize(password).as_bytes(),
                salt_bytes,
                &mut out,
                blocks,
            )
        })
        .map_err(Error::internal)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(Error::internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(Error::internal)?),
    };
    Ok(phc.to_string())
}

/// True when `password` matches the PHC string `hash`, whose algorithm, version,
/// parameters and output length are used (as argon2's own `PasswordVerifier` does); the
/// outputs are compared in constant time. False for anything that is not an argon2 PHC
/// string.
fn verify_with(memory: &mut Memory, password: &str, hash: &str) -> bool {
    let Some((argon, blocks_needed, salt, expected)) = parse_phc(hash) else {
        log::error!("stored password hash is not an argon2 PHC string");
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let computed = memory.with(blocks_needed, |blocks| {
        argon.hash_password_into_with_memory(normalize(password).as_bytes(), salt, &mut out, blocks)
    });
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// The argon2 context (and the memory blocks it needs), salt and expected output a PHC
/// string describes.
fn parse_phc(
    hash: &str,
) -> Option<(
    Argon2<'static>,
    usize,
    argon2::password_hash::Salt<'_>,
    Output,
)> {
    let parsed = PasswordHash::new(hash).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).ok()?;
    let blocks = params.block_count();
    Some((
        Argon2::new(algorithm, version, params),
        blocks,
        parsed.salt?,
        parsed.hash?,
    ))
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
            .map(|w| format!(" ({})", w.to_string().trim_end_matches('.')))
            .unwrap_or_default();
        return Some(format!(
            "This password is too common or easy to guess{why}. Try a few unrelated words."
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{policy_problem, Hasher};
    use crate::config::Argon2Config;
    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};

    #[rocket::async_test]
    async fn worker_hashes_and_argon2s_own_hashes_verify_each_other() {
        let hasher = Hasher::new(Argon2Config::default(), 2).expect("hasher");
        let password = "correct horse battery staple";

        let ours = hasher.hash(password).await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert_eq!(parsed.algorithm, argon2::ARGON2ID_IDENT);
        let standard = Argon2::default();
        assert!(standard
            .verify_password(password.as_bytes(), &parsed)
            .is_ok());
        assert!(standard
            .verify_password(b"wrong password here", &parsed)
            .is_err());

        // Argon2's own hashes, with the configured parameters and with others (argon2i,
        // less memory, a longer output): the workers take each hash's own parameters.
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = standard
            .hash_password(password.as_bytes(), &salt)
            .expect("hash")
            .to_string();
        let params = Params::new(4096, 1, 1, Some(48)).expect("params");
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .expect("hash")
            .to_string();
        for hash in [&ours, &theirs, &other] {
            assert!(hasher.verify(password, Some(hash)).await.unwrap(), "{hash}");
            assert!(
                !hasher
                    .verify("wrong password here", Some(hash))
                    .await
                    .unwrap(),
                "{hash}"
            );
        }
        assert!(!hasher.verify(password, Some("not a hash")).await.unwrap());
        assert!(!hasher.verify(password, None).await.unwrap());
        // Many at once through two workers: every answer comes back, and right.
        let checks = (0..8).map(|i| {
            let hasher = hasher.clone();
            let (ours, i) = (ours.clone(), i);
            async move {
                let typed = if i % 2 == 0 {
                    password
                } else {
                    "another password"
                };
                hasher.verify(typed, Some(&ours)).await.unwrap() == (i % 2 == 0)
            }
        });
        assert!(rocket::futures::future::join_all(checks)
            .await
            .into_iter()
            .all(|right| right));
    }

    #[test]
    fn a_weak_password_gets_one_sentence_with_the_reason_in_brackets() {
        let msg = policy_problem("abcabcabcabcabcabc", 15, &[]).expect("refused");
        assert!(
            msg.starts_with("This password is too common or easy to guess ("),
            "{msg}"
        );
        assert!(!msg.contains(".)"), "{msg}");
        assert!(msg.ends_with("). Try a few unrelated words."), "{msg}");
    }
}
