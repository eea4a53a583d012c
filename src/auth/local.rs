//! Local accounts: signup, argon2id verification and login throttling.

use std::collections::BTreeMap;
use std::net::IpAddr;

use validator::Validate;

use super::password::{policy_problem, Hasher};
use super::{Identity, IdentityProvider, LoginEntry, LoginError, PasswordAttempt};
use crate::config::AuthConfig;
use crate::db::users::{self, InsertError, NewLocalUser, User};
use crate::db::{now, throttle, Pool};
use crate::domain::{ProviderId, UserId};
use crate::error::Error;

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

/// Field name -> messages, as the forms show them.
pub type FieldErrors = BTreeMap<&'static str, Vec<String>>;

pub struct LocalProvider {
    pub hasher: Hasher,
    cfg: AuthConfig,
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
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Internal(#[from] Error),
}

impl LocalProvider {
    pub fn new(cfg: &AuthConfig) -> Result<LocalProvider, String> {
        Ok(LocalProvider {
            hasher: Hasher::new(cfg.argon2, cfg.hash_concurrency)?,
            cfg: cfg.clone(),
        })
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
        let hash = self.hasher.hash(&account.password).await?;
        let new = NewLocalUser {
            email: &account.email,
            name: &account.name,
            password_hash: &hash,
            is_admin,
        };
        match users::insert_local(db, new).await {
            Ok(user) => Ok(user),
            Err(InsertError::EmailTaken) => {
                let mut errors = FieldErrors::new();
                errors.insert(
                    "email",
                    vec!["An account with this email already exists. Log in instead?".into()],
                );
                Err(SignupError::Invalid(errors))
            }
            Err(InsertError::Db(e)) => Err(SignupError::Internal(e.into())),
        }
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

    /// True when `password` is this user's current password.
    pub async fn verify_current(
        &self,
        db: &Pool,
        user_id: UserId,
        password: &str,
    ) -> Result<bool, Error> {
        let hash = users::password_hash(db, user_id).await?;
        match hash {
            Some(h) => self.hasher.verify(password, Some(&h)).await,
            None => Ok(false),
        }
    }
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
        let email = normalize_email(attempt.email);
        // Unknown emails are counted like real ones, so throttling reveals nothing.
        let account_key = format!("account:{email}");
        let client_key = client_key(attempt.client);
        let now = now();
        let wait = throttle::wait_seconds(db, &account_key, now)
            .await?
            .max(throttle::wait_seconds(db, &client_key, now).await?);
        if wait > 0 {
            return Err(LoginError::Throttled { wait_seconds: wait });
        }

        let creds = users::local_credentials(db, &email).await?;
        let hash = creds.as_ref().and_then(|c| c.password_hash.as_deref());
        let ok = self.hasher.verify(attempt.password, hash).await?;
        if let (true, Some(creds)) = (ok, creds.as_ref()) {
            throttle::clear(db, &account_key).await?;
            if hash.is_some_and(|h| self.hasher.needs_rehash(h)) {
                let fresh = self.hasher.hash(attempt.password).await?;
                users::update_password(db, creds.id, &fresh).await?;
            }
            let user = users::by_id(db, creds.id)
                .await?
                .ok_or(LoginError::Invalid)?;
            return Ok(Identity {
                user,
                provider: ProviderId::Local,
            });
        }

        let failures = throttle::record_failure(db, &account_key, now, ACCOUNT_WINDOW).await?;
        let mut wait = account_wait(failures);
        if wait > 0 {
            throttle::lock_until(db, &account_key, now + wait).await?;
        }
        let client_failures = throttle::record_failure(db, &client_key, now, CLIENT_WINDOW).await?;
        if client_failures >= CLIENT_MAX_FAILURES {
            throttle::lock_until(db, &client_key, now + CLIENT_WINDOW).await?;
            wait = wait.max(CLIENT_WINDOW);
        }
        if failures == 1 {
            throttle::prune(db, now - ACCOUNT_WINDOW).await?;
        }
        if wait > 0 {
            return Err(LoginError::Throttled { wait_seconds: wait });
        }
        Err(LoginError::Invalid)
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
