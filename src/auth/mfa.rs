//! Second factors: who must have one (`auth.mfa.require`), the login state between the
//! password and the second step, checking a code (an authenticator app's or a recovery
//! code) throttled like a password, recovery codes, and the fresh proof that sensitive
//! changes need (step-up).
//!
//! Between the password and the second step there is no session: only a `login_pending`
//! row named by the hash of a random token in its own private cookie. That cookie opens
//! nothing but /login/verify (or, for an account that must first set up a factor, the
//! enrolment page), it expires after a few minutes, and it is used up by the session it
//! turns into.

use std::net::IpAddr;

use rocket::http::CookieJar;
use rocket::request::{FromRequest, Outcome, Request};
use rocket_db_pools::Database;
use sha2::{Digest, Sha256};

use super::cookies::{self, Name};
use super::local::{account_wait, account_waits, client_key, CLIENT_MAX_FAILURES, CLIENT_WINDOW};
use super::totp::Secret;
use crate::config::{AuthConfig, MfaRequire};
use crate::db::factors::{self, NewPending, PendingPurpose, PendingRow};
use crate::db::sessions::{self, SessionUser};
use crate::db::throttle::{self, Reservation};
use crate::db::users::{self, User};
use crate::db::{now, Db, Pool};
use crate::domain::{AccountKind, AuthMethod, ProviderId, SessionId, UserId};
use crate::error::Result;
use crate::keys::SecretBox;
use crate::token;

/// How long a login waits for its code.
pub const VERIFY_MINUTES: i64 = 5;
/// How long an account that must set up a factor has to do so after its password.
pub const ENROL_MINUTES: i64 = 10;
/// How long a proof (the password or a code) counts for sensitive changes.
pub const STEP_UP_SECONDS: i64 = 10 * 60;
/// How long an authenticator set-up (its secret) stays on offer unconfirmed.
pub const ENROLMENT_SECONDS: i64 = 30 * 60;
/// Recovery codes in a set.
pub const RECOVERY_CODES: usize = 10;
/// Longest code looked at; anything longer is no code of ours.
const CODE_MAX: usize = 64;
/// Throttle failures older than this are forgotten (as for passwords).
const ACCOUNT_WINDOW: i64 = 24 * 60 * 60;

/// Whether `auth.mfa.require` asks this account for a second factor. Only local
/// accounts: an OpenID provider's logins are its own business (for now).
pub fn required_for(cfg: &AuthConfig, user: &User) -> bool {
    user.kind == AccountKind::Local
        && match cfg.mfa.require {
            MfaRequire::None => false,
            MfaRequire::Admins => user.is_admin,
            MfaRequire::All => true,
        }
}

/// Whether a session must not count as logged in: made with a password alone for an
/// account that must have a second factor (say, remembered from before the setting).
/// Its owner logs in again and is led to set one up.
pub fn held_back(cfg: &AuthConfig, s: &SessionUser) -> bool {
    // An OIDC login counts as having its second factor when its amr meets
    // auth.oidc.require_amr (its admin list for admins); one made before the setting
    // (or before its owner became an admin) does not count until they log in again.
    if s.provider == ProviderId::Oidc {
        return cfg.active_oidc().is_some_and(|o| {
            !crate::auth::oidc::missing_amr(o.required_amr(s.user.is_admin), &s.amr).is_empty()
        });
    }
    s.provider == ProviderId::Local && !s.method.has_second_factor() && required_for(cfg, &s.user)
}

/// The secret box for TOTP secrets and the name apps show, held as managed state.
pub struct Mfa {
    secrets: SecretBox,
}

impl Mfa {
    pub fn new(secrets: SecretBox) -> Mfa {
        Mfa { secrets }
    }

    /// A secret sealed for the account's enrolled factor (`enrolled`) or its set-up.
    pub fn seal(&self, secret: &Secret, user: UserId, enrolled: bool) -> String {
        self.secrets
            .seal(&secret.to_base32(), &context(user, enrolled))
    }

    /// The secret `seal` sealed; None when it does not open (the secret key changed).
    pub fn open(&self, sealed: &str, user: UserId, enrolled: bool) -> Option<Secret> {
        let text = self.secrets.open(sealed, &context(user, enrolled))?;
        Secret::from_base32(&text)
    }
}

fn context(user: UserId, enrolled: bool) -> String {
    let what = if enrolled { "totp" } else { "totp-enrolment" };
    format!("{what} {user}")
}

// ---------------------------------------------------------------------------------------
// The login between its two steps

/// A login waiting for its second step, with its account, from this browser's cookie.
/// Forwards when the browser has none that is live.
#[derive(Debug, Clone)]
pub struct Pending {
    pub row: PendingRow,
    /// The account, at the credential version its password step verified.
    pub user: User,
}

impl Pending {
    pub fn purpose(&self) -> PendingPurpose {
        self.row.purpose
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Pending {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let cached: &Result<Option<Pending>, ()> = req
            .local_cache_async(async {
                let db = Db::fetch(req.rocket()).ok_or(())?;
                let https = super::Client::of(req).https;
                match current(db, req.cookies(), https).await {
                    Ok(p) => Ok(p),
                    Err(e) => {
                        log::error!("pending login lookup failed: {e}");
                        Err(())
                    }
                }
            })
            .await;
        match cached {
            Ok(Some(p)) => Outcome::Success(p.clone()),
            Ok(None) => Outcome::Forward(rocket::http::Status::Unauthorized),
            Err(()) => Outcome::Error((rocket::http::Status::ServiceUnavailable, ())),
        }
    }
}

async fn current(db: &Pool, jar: &CookieJar<'_>, https: bool) -> Result<Option<Pending>> {
    let Some(cookie) = cookies::get(jar, Name::MfaPending, https) else {
        return Ok(None);
    };
    let Some(row) = factors::pending_by_token_hash(db, &token::hash(cookie.value()), now()).await?
    else {
        return Ok(None);
    };
    let Some(user) = users::by_id(db, row.user_id).await? else {
        return Ok(None);
    };
    let user = User {
        credential_version: row.credential_version,
        ..user
    };
    Ok(Some(Pending { row, user }))
}

/// What a password step leads to.
pub struct FirstStep<'a> {
    pub user: &'a User,
    pub purpose: PendingPurpose,
    pub remember: bool,
    /// Where to go once logged in (a local path, or "").
    pub next: &'a str,
    pub https: bool,
}

/// Begins a login's wait for its second step: any session this browser had ends, a
/// pending row is stored and its cookie (browser-session, private) set.
pub async fn begin(db: &Pool, jar: &CookieJar<'_>, step: FirstStep<'_>) -> Result<()> {
    super::session::end(db, jar).await?;
    forget(db, jar).await?;
    let secret = token::generate();
    let now = now();
    let minutes = match step.purpose {
        PendingPurpose::Verify => VERIFY_MINUTES,
        PendingPurpose::Enrol => ENROL_MINUTES,
    };
    factors::insert_pending(
        db,
        NewPending {
            token_hash: &token::hash(&secret),
            user_id: step.user.id,
            purpose: step.purpose,
            first_factor: AuthMethod::Password,
            remember: step.remember,
            next: step.next,
            credential_version: step.user.credential_version,
            now,
            expires_at: now + minutes * 60,
        },
    )
    .await?;
    let mut cookie = cookies::build(Name::MfaPending, secret, step.https);
    cookie.set_expires(None);
    jar.add_private(cookie);
    Ok(())
}

/// Ends this browser's pending login, if any (row and cookie).
pub async fn forget(db: &Pool, jar: &CookieJar<'_>) -> Result<()> {
    for https in [false, true] {
        if let Some(cookie) = cookies::get(jar, Name::MfaPending, https) {
            factors::delete_pending_by_token_hash(db, &token::hash(cookie.value())).await?;
        }
    }
    cookies::remove(jar, Name::MfaPending);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Codes

/// What a code turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// A current code of the account's authenticator app, now used.
    Totp,
    /// One of the account's unused recovery codes, now used.
    Recovery,
    /// Neither (wrong, replayed, another account's, malformed).
    Invalid,
    /// Too many recent failures: not checked, or this failure reached the limit.
    Throttled { wait_seconds: i64 },
}

/// What a code is checked against.
pub enum Against<'a> {
    /// The account's enrolled app, or its recovery codes.
    Account,
    /// A secret being set up (no recovery codes).
    Enrolment(&'a Secret),
}

/// Checks `code` for `user`, throttled like a password: reserved per client address
/// (the login budget) and per account before it is looked at. A code of the app is
/// accepted only for a time step later than the last accepted one; a recovery code only
/// once. Returns the step of an accepted enrolment code in `Ok((Totp, Some(step)))`.
pub async fn check_code(
    db: &Pool,
    mfa: &Mfa,
    user: &User,
    code: &str,
    against: Against<'_>,
    client: IpAddr,
) -> Result<(CodeCheck, Option<i64>)> {
    let now = now();
    let client_row = client_key(client);
    let account_row = format!("mfa:{}", user.id);
    if let Reservation::Refused { wait_seconds } =
        throttle::reserve_in_window(db, &client_row, now, CLIENT_WINDOW, CLIENT_MAX_FAILURES)
            .await?
    {
        return Ok((CodeCheck::Throttled { wait_seconds }, None));
    }
    let count = match throttle::reserve_consecutive(
        db,
        &account_row,
        now,
        ACCOUNT_WINDOW,
        &account_waits(),
    )
    .await?
    {
        Reservation::Granted { count } => count,
        Reservation::Refused { wait_seconds } => {
            throttle::release(db, &client_row).await?;
            return Ok((CodeCheck::Throttled { wait_seconds }, None));
        }
    };
    let verdict = verify(db, mfa, user, code, against, now).await;
    let (check, step) = match verdict {
        Ok(v) => v,
        Err(e) => {
            // Nothing was learnt about the code: take both reservations back.
            let _ = throttle::release(db, &client_row).await;
            let _ = throttle::release(db, &account_row).await;
            return Err(e);
        }
    };
    if check == CodeCheck::Invalid {
        throttle::settle_failure(db, &account_row).await?;
        let wait = account_wait(count);
        if wait > 0 {
            return Ok((CodeCheck::Throttled { wait_seconds: wait }, None));
        }
    } else {
        throttle::succeeded(db, &client_row, &account_row, now).await?;
    }
    Ok((check, step))
}

async fn verify(
    db: &Pool,
    mfa: &Mfa,
    user: &User,
    code: &str,
    against: Against<'_>,
    now: i64,
) -> Result<(CodeCheck, Option<i64>)> {
    if code.chars().count() > CODE_MAX {
        return Ok((CodeCheck::Invalid, None));
    }
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let looks_totp =
        digits.len() == super::totp::DIGITS && digits.bytes().all(|b| b.is_ascii_digit());
    match against {
        Against::Enrolment(secret) => {
            let step = secret.check(&digits, now as u64);
            Ok(match step {
                Some(step) => (CodeCheck::Totp, Some(step)),
                None => (CodeCheck::Invalid, None),
            })
        }
        Against::Account if looks_totp => {
            let Some(factor) = factors::totp_of(db, user.id).await? else {
                return Ok((CodeCheck::Invalid, None));
            };
            let Some(secret) = mfa.open(&factor.secret, user.id, true) else {
                log::warn!(
                    "account {}: its authenticator secret does not open (secret_key changed?)",
                    user.id
                );
                return Ok((CodeCheck::Invalid, None));
            };
            match secret.check(&digits, now as u64) {
                Some(step) if factors::use_step(db, factor.id, step, now).await? => {
                    Ok((CodeCheck::Totp, None))
                }
                _ => Ok((CodeCheck::Invalid, None)),
            }
        }
        Against::Account => {
            let normalized = normalize_code(code);
            if normalized.len() != CODE_LEN {
                return Ok((CodeCheck::Invalid, None));
            }
            if factors::use_code(db, user.id, &code_hash(user.id, &normalized), now).await? {
                Ok((CodeCheck::Recovery, None))
            } else {
                Ok((CodeCheck::Invalid, None))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Recovery codes

/// Characters of a recovery code: lowercase letters and digits without look-alikes
/// (0/o, 1/l/i): 31 of them, almost 5 bits each.
const ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Characters per code (about 49 bits), written as two groups of five.
const CODE_LEN: usize = 10;

/// A fresh set of recovery codes, as shown ("abcde-fghjk").
pub fn new_codes() -> Vec<String> {
    use rand::Rng;
    let alphabet = &ALPHABET[..];
    let mut rng = rand::rngs::OsRng;
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw: String = (0..CODE_LEN)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
                .collect();
            format!("{}-{}", &raw[..5], &raw[5..])
        })
        .collect()
}

/// A code as typed, lowercased, without spaces and dashes.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// What is stored of a (normalized) recovery code: SHA-256 over the account and the
/// code. Codes carry 50 random bits, so a plain hash suffices; the account in it keeps
/// one account's code from matching another's row.
pub fn code_hash(user: UserId, normalized: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"quire recovery code v1\0");
    h.update(user.to_string().as_bytes());
    h.update(b"\0");
    h.update(normalized.as_bytes());
    hex::encode(h.finalize())
}

/// The stored hashes of a set of codes.
pub fn code_hashes(user: UserId, codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .map(|c| code_hash(user, &normalize_code(c)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Step-up

/// Whether the session's user proved who they are in the last `STEP_UP_SECONDS`.
pub async fn fresh(db: &Pool, session: SessionId) -> Result<bool> {
    let proved = sessions::proved_at(db, session).await?.unwrap_or(0);
    Ok(now() - proved < STEP_UP_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_ten_distinct_and_typed_loosely() {
        let codes = new_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.len(), CODE_LEN + 1);
            assert_eq!(
                normalize_code(&c.to_uppercase().replace('-', " ")),
                c.replace('-', "")
            );
        }
        let one = UserId(1);
        let two = UserId(2);
        assert_ne!(code_hash(one, "abc"), code_hash(two, "abc"));
    }
}
