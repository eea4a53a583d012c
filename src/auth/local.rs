//! Local accounts: signup, argon2id verification and login throttling.
//!
//! Every password check (a login, the current password on /account/password) first
//! reserves its attempt in the database, per client address and per account, and only
//! then runs argon2; the reservation counts as a failure until a success releases it.
//! So a burst of parallel guesses, on one instance or many, is allowed exactly what the
//! same guesses one after another would be. A browser that once logged in to an account
//! carries a device cookie for it, and is counted per device instead of per account: a
//! stranger's guesses lock the account for other strangers, never for its owner.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rocket::figment::Figment;
use rocket::http::{Cookie, SameSite};
use validator::Validate;

use super::password::{policy_problem, too_long, Hasher};
use super::{Identity, IdentityProvider, LoginEntry, LoginError, PasswordAttempt};
use crate::config::AuthConfig;
use crate::db::throttle::Reservation;
use crate::db::users::{self, Credentials, InsertError, NewLocalUser, User};
use crate::db::{now, throttle, Pool};
use crate::domain::{ProviderId, SessionId};
use crate::error::Error;
use crate::keys::{KeyedHash, Keys, Purpose};

/// Consecutive failures an account may have before it must wait.
pub const ACCOUNT_FREE_FAILURES: i64 = 5;
/// The first wait; it doubles with each further failure up to `ACCOUNT_MAX_WAIT`.
pub const ACCOUNT_FIRST_WAIT: i64 = 30;
/// The rightful owner is never kept out longer than this by someone else's guesses.
pub const ACCOUNT_MAX_WAIT: i64 = 300;
/// Failures from one client address allowed per window: loose, so that an office
/// behind one NAT is not locked out by one person's typos.
pub const CLIENT_MAX_FAILURES: i64 = 100;
pub const CLIENT_WINDOW: i64 = 15 * 60;
const ACCOUNT_WINDOW: i64 = 24 * 60 * 60;
/// Signup attempts one client address may make per `SIGNUP_WINDOW`...
pub const SIGNUP_MAX_ATTEMPTS: i64 = 30;
/// ...and accounts it may create in that time.
pub const SIGNUP_MAX_ACCOUNTS: i64 = 10;
pub const SIGNUP_WINDOW: i64 = 60 * 60;
/// Longest email looked at (RFC 5321's path limit); longer ones are refused unread.
pub const EMAIL_MAX: usize = 254;

/// The device cookie (private, so only quire can mint one): set at a successful login,
/// it names the account it was set for and a random nonce.
pub const DEVICE_COOKIE: &str = "quire_device";
const DEVICE_DAYS: i64 = 365;

/// Field name -> messages, as the forms show them.
pub type FieldErrors = BTreeMap<&'static str, Vec<String>>;

pub struct LocalProvider {
    pub hasher: Hasher,
    cfg: AuthConfig,
    keys: ThrottleKeys,
}

/// Names throttle rows. Account and device rows are keyed by a keyed hash (of the
/// normalized email, of the device nonce), so the table never holds what someone typed
/// (often a password, in the email field), and stays small whatever was typed. The key
/// comes from the configured `secret_key`, so every instance names a row alike.
#[derive(Clone)]
pub struct ThrottleKeys {
    hash: KeyedHash,
}

impl ThrottleKeys {
    /// Keys derived from the figment's `secret_key` (none configured: a fixed key).
    pub fn from_figment(figment: &Figment) -> ThrottleKeys {
        ThrottleKeys::from_keys(&Keys::from_figment(figment))
    }

    /// Keys derived from raw secret bytes (empty: the fixed key of an unkeyed site).
    pub fn from_secret(raw: &[u8]) -> ThrottleKeys {
        ThrottleKeys::from_keys(&Keys::from_secret(raw))
    }

    pub fn from_keys(keys: &Keys) -> ThrottleKeys {
        ThrottleKeys {
            hash: keys.keyed_hash(Purpose::LoginThrottle),
        }
    }

    /// 128 bits of a keyed hash of `data` for `purpose`, in hex.
    fn digest(&self, purpose: &str, data: &str) -> String {
        self.hash.hex128(purpose, data.as_bytes())
    }

    /// The row of the account with this (normalized) email, known or not.
    pub fn account(&self, email: &str) -> String {
        format!("account:{}", self.digest("account", email))
    }

    /// The row of a device cookie's value, when that cookie was set for this account.
    pub fn device(&self, cookie: &str, email: &str) -> Option<String> {
        let (account, nonce) = cookie.split_once('.')?;
        let expected = self.digest("account", email);
        let same = subtle::ConstantTimeEq::ct_eq(account.as_bytes(), expected.as_bytes());
        bool::from(same).then(|| format!("device:{}", self.digest("device", nonce)))
    }
}

/// A new account as typed, checked by `validate` once normalized.
#[derive(Debug, Validate)]
pub struct NewAccount {
    #[validate(length(max = 254, message = "Use at most 254 characters."))]
    #[validate(email(message = "Enter an email address like name@example.com."))]
    pub email: String,
    #[validate(length(min = 1, max = 100, message = "Enter a name of 1 to 100 characters."))]
    pub name: String,
    pub password: String,
}

impl NewAccount {
    /// Trims and lowercases the email and trims the name; the password is kept as typed.
    pub fn new(email: &str, name: &str, password: &str) -> NewAccount {
        NewAccount {
            email: normalize_email(email),
            name: name.trim().to_string(),
            password: password.to_string(),
        }
    }
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// A local account has this email already (checked after every other field).
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Internal(#[from] Error),
}

/// Why a signup at /signup did not make an account.
#[derive(Debug, thiserror::Error)]
pub enum OpenSignupError {
    /// Too many signups from this client address lately.
    #[error("too many signups from this address; retry in {wait_seconds} s")]
    Throttled { wait_seconds: i64 },
    #[error(transparent)]
    Signup(#[from] SignupError),
}

impl SignupError {
    /// The form's messages for a taken email, as a signup without verification shows them.
    pub fn taken_errors() -> FieldErrors {
        FieldErrors::from([(
            "email",
            vec!["An account with this email already exists. Log in instead?".into()],
        )])
    }
}

impl From<sqlx::Error> for OpenSignupError {
    fn from(e: sqlx::Error) -> Self {
        OpenSignupError::Signup(SignupError::Internal(e.into()))
    }
}

impl LocalProvider {
    /// A provider whose throttle rows are keyed without a secret (the command line, which
    /// throttles nothing); the server uses `with_throttle_keys`.
    pub fn new(cfg: &AuthConfig) -> Result<LocalProvider, String> {
        Ok(LocalProvider {
            hasher: Hasher::new(cfg.argon2, cfg.hash_concurrency)?,
            cfg: cfg.clone(),
            keys: ThrottleKeys::from_secret(b""),
        })
    }

    pub fn with_throttle_keys(mut self, keys: ThrottleKeys) -> LocalProvider {
        self.keys = keys;
        self
    }

    pub fn min_password_length(&self) -> usize {
        self.cfg.password_min_length
    }

    /// Checks a new account's fields; every problem is reported, by field.
    pub fn check(&self, account: &NewAccount) -> FieldErrors {
        let mut errors = FieldErrors::new();
        if let Err(e) = account.validate() {
            for (field, errs) in e.field_errors() {
                let key = if field == "email" { "email" } else { "name" };
                for err in errs {
                    let msg = err
                        .message
                        .as_deref()
                        .unwrap_or("Invalid value.")
                        .to_string();
                    errors.entry(key).or_default().push(msg);
                }
            }
        }
        if let Some(problem) =
            self.password_problem(&account.password, &account.email, &account.name)
        {
            errors.entry("password").or_default().push(problem);
        }
        errors
    }

    /// Why `password` may not be chosen by this person, if it may not.
    pub fn password_problem(&self, password: &str, email: &str, name: &str) -> Option<String> {
        let local_part = email.split('@').next().unwrap_or("");
        let context = [email, local_part, name, "quire", "blog", "password"];
        policy_problem(password, self.cfg.password_min_length, &context)
    }

    /// Creates an account after checking every field. A taken email is reported on the
    /// email field; the unique index decides, so concurrent signups cannot both succeed.
    pub async fn create_account(
        &self,
        db: &Pool,
        account: &NewAccount,
        is_admin: bool,
    ) -> Result<User, SignupError> {
        let errors = self.check(account);
        if !errors.is_empty() {
            return Err(SignupError::Invalid(errors));
        }
        self.create_checked(db, account, is_admin, true).await
    }

    /// Signup at /signup: as `create_account`, counted per client address (at most
    /// `SIGNUP_MAX_ATTEMPTS` tries and `SIGNUP_MAX_ACCOUNTS` new accounts per hour), so
    /// nobody can mass-create accounts or probe which emails are taken at length. With
    /// `confirmed` false (`auth.verify_email`) the account must confirm its email, and a
    /// taken email counts as an account made, so the bound reveals nothing either.
    pub async fn sign_up(
        &self,
        db: &Pool,
        account: &NewAccount,
        client: IpAddr,
        confirmed: bool,
    ) -> Result<User, OpenSignupError> {
        let now = now();
        let client = client_key(client);
        let tries = format!("signup:{client}");
        let made = format!("signup-made:{client}");
        let reserve = |key: String, limit| async move {
            throttle::reserve_in_window(db, &key, now, SIGNUP_WINDOW, limit).await
        };
        match reserve(tries, SIGNUP_MAX_ATTEMPTS).await? {
            Reservation::Granted { count: 1 } => {
                throttle::prune(db, now - ACCOUNT_WINDOW).await?;
            }
            Reservation::Granted { .. } => {}
            Reservation::Refused { wait_seconds } => {
                return Err(OpenSignupError::Throttled { wait_seconds })
            }
        }
        let errors = self.check(account);
        if !errors.is_empty() {
            return Err(SignupError::Invalid(errors).into());
        }
        if let Reservation::Refused { wait_seconds } =
            reserve(made.clone(), SIGNUP_MAX_ACCOUNTS).await?
        {
            return Err(OpenSignupError::Throttled { wait_seconds });
        }
        let created = self.create_checked(db, account, false, confirmed).await;
        let counts = match &created {
            Ok(_) => true,
            Err(SignupError::EmailTaken) => !confirmed,
            Err(_) => false,
        };
        if !counts {
            // Only accounts made count against the hourly bound.
            throttle::release(db, &made).await?;
        }
        Ok(created?)
    }

    /// Creates an account whose fields were checked.
    async fn create_checked(
        &self,
        db: &Pool,
        account: &NewAccount,
        is_admin: bool,
        email_confirmed: bool,
    ) -> Result<User, SignupError> {
        let hash = self.hasher.hash(&account.password).await?;
        let new = NewLocalUser {
            email: &account.email,
            name: &account.name,
            password_hash: &hash,
            is_admin,
            email_confirmed,
        };
        match users::insert_local(db, new).await {
            Ok(user) => Ok(user),
            Err(InsertError::EmailTaken) => Err(SignupError::EmailTaken),
            Err(InsertError::Db(e)) => Err(SignupError::Internal(e.into())),
        }
    }

    /// Whether signups must confirm their email (`auth.verify_email`).
    pub fn verifies_email(&self) -> bool {
        self.cfg.verify_email
    }

    /// Sets a new password after the policy check; `Err(Some(msg))` when refused.
    pub async fn set_password(
        &self,
        db: &Pool,
        user: &User,
        password: &str,
    ) -> Result<(), SetPasswordError> {
        if let Some(problem) = self.password_problem(password, &user.email, &user.name) {
            return Err(SetPasswordError::Refused(problem));
        }
        let hash = self.hasher.hash(password).await?;
        users::update_password(db, user.id, &hash)
            .await
            .map_err(Error::from)?;
        Ok(())
    }

    /// Changes the password of a logged-in user after the policy check: sessions made
    /// with the old password end, except `keep` (the one asking), in one transaction.
    pub async fn change_password(
        &self,
        db: &Pool,
        user: &User,
        password: &str,
        keep: SessionId,
    ) -> Result<(), SetPasswordError> {
        if let Some(problem) = self.password_problem(password, &user.email, &user.name) {
            return Err(SetPasswordError::Refused(problem));
        }
        let hash = self.hasher.hash(password).await?;
        users::change_password_keeping(db, user.id, &hash, keep)
            .await
            .map_err(Error::from)?;
        Ok(())
    }

    /// True when `password` is this user's current password. Checked and throttled like a
    /// login (`device` is the browser's device cookie), so a borrowed session cannot be
    /// used to guess the password; `Err(Throttled)` while too many have failed.
    pub async fn verify_current(
        &self,
        db: &Pool,
        user: &User,
        password: &str,
        client: IpAddr,
        device: Option<&str>,
    ) -> Result<bool, LoginError> {
        if too_long(password) {
            return Ok(false);
        }
        match self
            .check_password(db, &user.email, password, client, device)
            .await
        {
            Ok(creds) => Ok(creds.id == user.id),
            Err(LoginError::Invalid) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A fresh device cookie for a browser that just logged in to `email`'s account.
    pub fn device_cookie(&self, email: &str, secure: bool) -> Cookie<'static> {
        let mut nonce = [0u8; 32];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut nonce[..]);
        let account = self.keys.digest("account", &normalize_email(email));
        let value = format!("{account}.{}", hex::encode(nonce));
        Cookie::build((DEVICE_COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(secure)
            .max_age(time::Duration::days(DEVICE_DAYS))
            .build()
    }

    /// Checks `password` for the local account of `email` (normalized), throttled: the
    /// attempt is reserved per client and per account (or per device, for a browser
    /// whose device cookie names this account) before argon2 runs. `Err(Invalid)` for an
    /// unknown email or a wrong password alike; `Err(Throttled)` when refused unverified,
    /// or when this failure reached a limit.
    pub async fn check_password(
        &self,
        db: &Pool,
        email: &str,
        password: &str,
        client: IpAddr,
        device: Option<&str>,
    ) -> Result<Credentials, LoginError> {
        let now = now();
        let client_key = client_key(client);
        let account_key = self.keys.account(email);
        let device_key = device.and_then(|d| self.keys.device(d, email));
        // A known device is counted on its own row instead of the account's.
        let target = device_key.as_deref().unwrap_or(&account_key);

        let client_count = match throttle::reserve_in_window(
            db,
            &client_key,
            now,
            CLIENT_WINDOW,
            CLIENT_MAX_FAILURES,
        )
        .await?
        {
            Reservation::Granted { count } => count,
            Reservation::Refused { wait_seconds } => {
                return Err(LoginError::Throttled { wait_seconds })
            }
        };
        let target_count =
            match throttle::reserve_consecutive(db, target, now, ACCOUNT_WINDOW, &account_waits())
                .await
            {
                Ok(Reservation::Granted { count }) => count,
                Ok(Reservation::Refused { wait_seconds }) => {
                    // Refused unverified: not a guess the client made.
                    throttle::release(db, &client_key).await?;
                    return Err(LoginError::Throttled { wait_seconds });
                }
                Err(e) => {
                    let _ = throttle::release(db, &client_key).await;
                    return Err(e.into());
                }
            };

        match self.verify_stored(db, email, password).await {
            Ok(Some(creds)) => {
                throttle::succeeded(db, &client_key, target, now).await?;
                self.upgrade_hash(db, &creds, password).await?;
                Ok(creds)
            }
            Ok(None) => {
                throttle::settle_failure(db, target).await?;
                if target_count == 1 {
                    throttle::prune(db, now - ACCOUNT_WINDOW).await?;
                }
                let mut wait = account_wait(target_count);
                if client_count >= CLIENT_MAX_FAILURES {
                    wait = wait.max(CLIENT_WINDOW);
                }
                if wait > 0 {
                    return Err(LoginError::Throttled { wait_seconds: wait });
                }
                Err(LoginError::Invalid)
            }
            Err(e) => {
                // Nothing was learnt about the password: take both reservations back.
                let _ = throttle::release(db, &client_key).await;
                let _ = throttle::release(db, target).await;
                Err(e.into())
            }
        }
    }

    /// The account's credentials when `password` is its password; None for a wrong
    /// password or an unknown email (checked against the dummy hash, taking as long).
    async fn verify_stored(
        &self,
        db: &Pool,
        email: &str,
        password: &str,
    ) -> Result<Option<Credentials>, Error> {
        let creds = users::local_credentials(db, email).await?;
        let hash = creds.as_ref().and_then(|c| c.password_hash.as_deref());
        let ok = self.hasher.verify(password, hash).await?;
        Ok(creds.filter(|_| ok))
    }

    /// After a parameter upgrade, stores a stronger hash of the password just verified,
    /// unless the password changed meanwhile (compare-and-swap on the verified hash).
    async fn upgrade_hash(
        &self,
        db: &Pool,
        creds: &Credentials,
        password: &str,
    ) -> Result<(), Error> {
        let Some(verified) = creds.password_hash.as_deref() else {
            return Ok(());
        };
        if self.hasher.needs_rehash(verified) {
            let fresh = self.hasher.hash(password).await?;
            users::rehash_password(db, creds.id, verified, &fresh).await?;
        }
        Ok(())
    }
}

/// The account's waits by failure count, for `throttle::reserve_consecutive`: up to the
/// first count that waits the longest.
pub(crate) fn account_waits() -> Vec<i64> {
    let mut waits = Vec::new();
    for n in 1.. {
        let w = account_wait(n);
        waits.push(w);
        if w >= ACCOUNT_MAX_WAIT {
            break;
        }
    }
    waits
}

#[derive(Debug, thiserror::Error)]
pub enum SetPasswordError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] Error),
}

/// Throttle key of a client: the address, or its /64 for IPv6, where one host
/// commonly holds the whole prefix.
pub(crate) fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Seconds an account waits after `failures` consecutive failures.
pub fn account_wait(failures: i64) -> i64 {
    if failures < ACCOUNT_FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - ACCOUNT_FREE_FAILURES).min(16) as u32;
    (ACCOUNT_FIRST_WAIT << doublings).min(ACCOUNT_MAX_WAIT)
}

#[rocket::async_trait]
impl IdentityProvider for LocalProvider {
    fn id(&self) -> ProviderId {
        ProviderId::Local
    }

    fn login_entry(&self) -> LoginEntry {
        LoginEntry::PasswordForm
    }

    async fn authenticate_password(
        &self,
        db: &Pool,
        attempt: PasswordAttempt<'_>,
    ) -> Result<Identity, LoginError> {
        // No account has such an email or password: refused before any normalizing,
        // hashing or counting (the form refuses them visibly first).
        if attempt.email.trim().chars().count() > EMAIL_MAX || too_long(attempt.password) {
            return Err(LoginError::Invalid);
        }
        // Unknown emails are counted like real ones, so throttling reveals nothing.
        let email = normalize_email(attempt.email);
        let creds = self
            .check_password(db, &email, attempt.password, attempt.client, attempt.device)
            .await?;
        let user = users::by_id(db, creds.id)
            .await?
            .ok_or(LoginError::Invalid)?;
        Ok(Identity {
            // The session must carry the version that was verified, not a newer one.
            user: User {
                credential_version: creds.credential_version,
                ..user
            },
            provider: ProviderId::Local,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_wait_grows_and_is_capped() {
        assert_eq!(account_wait(4), 0);
        assert_eq!(account_wait(5), 30);
        assert_eq!(account_wait(6), 60);
        assert_eq!(account_wait(8), 240);
        assert_eq!(account_wait(9), 300);
        assert_eq!(account_wait(1000), 300);
    }

    #[test]
    fn ipv6_clients_are_grouped_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_eq!(
            client_key("::ffff:10.0.0.1".parse().unwrap()),
            "ip:10.0.0.1"
        );
    }
}
