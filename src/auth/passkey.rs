//! Passkeys (WebAuthn, checked by webauthn-rs): registered on /account/security, used as
//! the second factor after a password, or alone from /login as an identity provider of
//! its own (a discoverable credential names its account; no email typed).
//!
//! The relying party's id and origin come from `site.url` (the host and origin the
//! browser sees, also behind a TLS proxy); without `site.url`, or with an IP address
//! there (WebAuthn needs a domain), passkeys are off and the pages say why. Each
//! ceremony's challenge and state live in a `webauthn_challenges` row named by the hash
//! of a random token in a private cookie and bound to who asked, so it works on any
//! instance, is taken once (DELETE ... RETURNING) and dies after a few minutes.
//! webauthn-rs checks the signature, origin, RP id hash, user verification and the
//! signature counter (a counter that goes backwards marks a cloned authenticator and is
//! refused).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rocket::http::CookieJar;
use serde::de::DeserializeOwned;
use serde::Serialize;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::cookies::{self, Name};
use super::{Identity, IdentityProvider, LoginEntry, LoginError};
use crate::config::Config;
use crate::db::passkeys::{self as store, Ceremony, NewChallenge, NewPasskey, PasskeyRow};
use crate::db::users::{self, User};
use crate::db::{now, Pool};
use crate::domain::{AccountKind, ProviderId, UserId};
use crate::error::{Error, Result};
use crate::token;

/// How long a ceremony's challenge stays answerable.
pub const CHALLENGE_SECONDS: i64 = 5 * 60;
/// Longest passkey name kept.
pub const NAME_MAX: usize = 60;
/// Longest credential JSON looked at (real ones are a few KiB).
pub const CREDENTIAL_MAX: usize = 64 * 1024;

/// The relying party, built once at launch from `site.url`; managed state.
pub struct Passkeys {
    webauthn: std::result::Result<Arc<Webauthn>, String>,
}

impl Passkeys {
    pub fn from_config(config: &Config) -> Passkeys {
        Passkeys {
            webauthn: relying_party(config).map(Arc::new),
        }
    }

    /// The relying party, or why passkeys are off.
    pub fn webauthn(&self) -> std::result::Result<&Webauthn, &str> {
        self.webauthn.as_deref().map_err(String::as_str)
    }

    pub fn shared(&self) -> Option<Arc<Webauthn>> {
        self.webauthn.as_ref().ok().cloned()
    }

    /// Whether passkeys can be used at all.
    pub fn on(&self) -> bool {
        self.webauthn.is_ok()
    }
}

fn relying_party(config: &Config) -> std::result::Result<Webauthn, String> {
    let Some(url) = &config.site.url else {
        return Err("passkeys need site.url (the address browsers use for this site)".into());
    };
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "passkeys need a domain name in site.url, not {:?}: WebAuthn has no relying \
             party id for an IP address",
            url.as_str()
        ));
    }
    let origin = Url::parse(&url.origin().ascii_serialization())
        .map_err(|e| format!("site.url {url}: {e}"))?;
    WebauthnBuilder::new(host, &origin)
        .and_then(|b| {
            b.rp_name(&config.site.title)
                .timeout(std::time::Duration::from_secs(CHALLENGE_SECONDS as u64))
                .build()
        })
        .map_err(|e| format!("passkeys for site.url {url}: {e}"))
}

/// A credential id as stored and compared: base64url without padding.
pub fn credential_key(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// Why a ceremony's answer was refused; each is said plainly to the person.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("passkeys are not available on this site")]
    Off,
    /// No live challenge for this browser and purpose: used, expired, another's.
    #[error("that passkey request has expired or was already used; try again")]
    NoChallenge,
    /// The browser sent nothing (no JavaScript, or the person cancelled).
    #[error("no passkey answer arrived")]
    Missing,
    /// Malformed, for another challenge or origin, a bad signature, an unknown or
    /// removed passkey, a counter gone backwards.
    #[error("that passkey was not accepted")]
    Rejected,
    /// The passkey is registered already.
    #[error("that passkey is registered already")]
    Taken,
    #[error(transparent)]
    Internal(#[from] Error),
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        Refusal::Internal(e.into())
    }
}

/// Where a ceremony runs: the database and the browser's cookies (`https`: the request
/// came over TLS, so the cookie takes its `__Host-` name).
pub struct At<'a, 'r> {
    pub db: &'a Pool,
    pub jar: &'a CookieJar<'r>,
    pub https: bool,
}

/// Keeps a ceremony's state server-side and gives the browser the cookie naming it.
async fn stash(
    at: &At<'_, '_>,
    ceremony: Ceremony,
    owner: &str,
    user: Option<UserId>,
    state: &impl Serialize,
) -> Result<()> {
    let state = serde_json::to_string(state).map_err(Error::internal)?;
    let secret = token::generate();
    let now = now();
    store::insert_challenge(
        at.db,
        NewChallenge {
            token_hash: &token::hash(&secret),
            ceremony,
            owner,
            user_id: user.map_or(0, |u| u.0),
            state: &state,
            now,
            expires_at: now + CHALLENGE_SECONDS,
        },
    )
    .await?;
    let mut cookie = cookies::build(Name::Passkey, secret, at.https);
    cookie.set_max_age(time::Duration::seconds(CHALLENGE_SECONDS));
    at.jar.add_private(cookie);
    Ok(())
}

/// Takes this browser's challenge for `ceremony` and `owner` (once), with its account.
async fn take<T: DeserializeOwned>(
    at: &At<'_, '_>,
    ceremony: Ceremony,
    owner: &str,
) -> std::result::Result<(T, i64), Refusal> {
    let Some(cookie) = cookies::get(at.jar, Name::Passkey, at.https) else {
        return Err(Refusal::NoChallenge);
    };
    cookies::remove(at.jar, Name::Passkey);
    let taken =
        store::take_challenge(at.db, &token::hash(cookie.value()), ceremony, owner, now()).await?;
    let Some((state, user)) = taken else {
        return Err(Refusal::NoChallenge);
    };
    let state = serde_json::from_str(&state).map_err(|e| {
        log::warn!("a stored passkey challenge does not read back: {e}");
        Refusal::NoChallenge
    })?;
    Ok((state, user))
}

fn parse<T: DeserializeOwned>(credential: &str) -> std::result::Result<T, Refusal> {
    let credential = credential.trim();
    if credential.is_empty() {
        return Err(Refusal::Missing);
    }
    if credential.len() > CREDENTIAL_MAX {
        return Err(Refusal::Rejected);
    }
    serde_json::from_str(credential).map_err(|_| Refusal::Rejected)
}

fn stored(row: &PasskeyRow) -> std::result::Result<Passkey, Refusal> {
    serde_json::from_str(&row.passkey).map_err(|e| {
        Refusal::Internal(Error::internal(format!(
            "passkey {} does not read back: {e}",
            row.id
        )))
    })
}

/// What the browser's `navigator.credentials` call takes, as JSON.
fn options_json(options: &impl Serialize, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value = serde_json::to_value(options).unwrap_or_default();
    edit(&mut value);
    value.to_string()
}

/// Begins adding a passkey to `user`'s account for `owner` ("session:<id>" or
/// "pending:<id>"): the options for `navigator.credentials.create()`, as JSON. The
/// passkey must be discoverable (so it can log in alone) and verify its user.
pub async fn begin_registration(
    webauthn: &Webauthn,
    at: &At<'_, '_>,
    owner: &str,
    user: &User,
) -> Result<String> {
    let handle = match store::user_handle_of(at.db, user.id).await? {
        Some(h) => Uuid::parse_str(&h).map_err(Error::internal)?,
        None => Uuid::new_v4(),
    };
    let mut exclude = Vec::new();
    for row in store::list_of(at.db, user.id).await? {
        if let Ok(raw) = URL_SAFE_NO_PAD.decode(&row.credential_id) {
            exclude.push(raw);
        }
    }
    let (options, state) = webauthn
        .start_passkey_registration(handle, &user.email, &user.name, Some(exclude))
        .map_err(Error::internal)?;
    stash(
        at,
        Ceremony::Register,
        owner,
        Some(user.id),
        &(handle, state),
    )
    .await?;
    Ok(options_json(&options, |v| {
        if let Some(sel) = v.pointer_mut("/publicKey/authenticatorSelection") {
            sel["residentKey"] = "required".into();
            sel["requireResidentKey"] = true.into();
        }
    }))
}

/// Finishes adding a passkey: checks the browser's answer against this browser's
/// challenge for `owner` and stores the passkey under `name`. Returns the name kept.
pub async fn finish_registration(
    webauthn: &Webauthn,
    at: &At<'_, '_>,
    owner: &str,
    user: &User,
    name: &str,
    credential: &str,
) -> std::result::Result<String, Refusal> {
    let answer: std::result::Result<RegisterPublicKeyCredential, Refusal> = parse(credential);
    // The challenge is used up by any answer, good or bad.
    let ((handle, state), for_user): ((Uuid, PasskeyRegistration), i64) =
        take(at, Ceremony::Register, owner).await?;
    let answer = answer?;
    if for_user != user.id.0 {
        return Err(Refusal::NoChallenge);
    }
    let passkey = webauthn
        .finish_passkey_registration(&answer, &state)
        .map_err(|e| {
            log::info!("passkey registration refused: {e}");
            Refusal::Rejected
        })?;
    let name = clean_name(name);
    let json = serde_json::to_string(&passkey).map_err(Error::internal)?;
    let inserted = store::insert(
        at.db,
        NewPasskey {
            user_id: user.id,
            credential_id: &credential_key(passkey.cred_id().as_ref()),
            user_handle: &handle.to_string(),
            name: &name,
            passkey: &json,
            now: now(),
        },
    )
    .await;
    match inserted {
        Ok(_) => Ok(name),
        Err(store::InsertError::Taken) => Err(Refusal::Taken),
        Err(store::InsertError::Db(e)) => Err(e.into()),
    }
}

/// A passkey's name as kept: trimmed, control characters out, at most `NAME_MAX`
/// characters; "Passkey" when nothing is left.
pub fn clean_name(name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(NAME_MAX)
        .collect();
    if name.is_empty() {
        "Passkey".into()
    } else {
        name.trim_end().to_string()
    }
}

/// Begins the second step of `user`'s login with one of their passkeys, for `owner`
/// ("pending:<id>"): the options for `navigator.credentials.get()`, as JSON. None when
/// the account has no passkey.
pub async fn begin_second_factor(
    webauthn: &Webauthn,
    at: &At<'_, '_>,
    owner: &str,
    user: &User,
) -> Result<Option<String>> {
    let mut keys = Vec::new();
    for row in store::list_of(at.db, user.id).await? {
        match stored(&row) {
            Ok(k) => keys.push(k),
            Err(e) => log::warn!("{e}"),
        }
    }
    if keys.is_empty() {
        return Ok(None);
    }
    let (options, state) = webauthn
        .start_passkey_authentication(&keys)
        .map_err(Error::internal)?;
    stash(at, Ceremony::SecondFactor, owner, Some(user.id), &state).await?;
    Ok(Some(options_json(&options, |_| {})))
}

/// Checks the answer to `begin_second_factor`: one of `user`'s passkeys signed this
/// browser's challenge. Its use is recorded.
pub async fn finish_second_factor(
    webauthn: &Webauthn,
    at: &At<'_, '_>,
    owner: &str,
    user: &User,
    credential: &str,
) -> std::result::Result<(), Refusal> {
    let answer: std::result::Result<PublicKeyCredential, Refusal> = parse(credential);
    let (state, for_user): (PasskeyAuthentication, i64) =
        take(at, Ceremony::SecondFactor, owner).await?;
    let answer = answer?;
    if for_user != user.id.0 {
        return Err(Refusal::NoChallenge);
    }
    let Some(row) = store::by_credential_id(at.db, &credential_key(answer.get_credential_id()))
        .await?
        .filter(|r| r.user_id == user.id)
    else {
        return Err(Refusal::Rejected);
    };
    let result = webauthn
        .finish_passkey_authentication(&answer, &state)
        .map_err(|e| {
            log::info!("passkey second factor refused: {e}");
            Refusal::Rejected
        })?;
    record(at.db, &row, &result).await
}

/// Keeps what an accepted assertion taught about the passkey (its counter, backup
/// state) and when it was used.
async fn record(
    db: &Pool,
    row: &PasskeyRow,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> std::result::Result<(), Refusal> {
    let mut passkey = stored(row)?;
    passkey.update_credential(result);
    let json = serde_json::to_string(&passkey).map_err(Error::internal)?;
    store::record_use(db, row.id, &json, now()).await?;
    Ok(())
}

/// The identity provider of passkey-only logins: a discoverable credential, answered to
/// a challenge this browser got from /login, names its account.
pub struct PasskeyProvider {
    webauthn: Arc<Webauthn>,
}

impl PasskeyProvider {
    pub fn new(webauthn: Arc<Webauthn>) -> PasskeyProvider {
        PasskeyProvider { webauthn }
    }

    /// Begins a passkey login in this browser: the options for
    /// `navigator.credentials.get()` (no credentials listed: the authenticator offers
    /// the site's discoverable ones), as JSON.
    pub async fn begin(&self, at: &At<'_, '_>) -> Result<String> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(Error::internal)?;
        stash(at, Ceremony::Login, "login", None, &state).await?;
        // webauthn-rs asks for conditional mediation (autofill); quire's button asks
        // the browser outright, which every browser with passkeys supports.
        Ok(options_json(&options, |v| {
            if let Some(obj) = v.as_object_mut() {
                obj.remove("mediation");
            }
        }))
    }
}

/// What the passkey login form submitted.
pub struct PasskeyAttempt<'a, 'r> {
    /// The database and the browser whose challenge it answers.
    pub at: At<'a, 'r>,
    /// The browser's answer (JSON of the `PublicKeyCredential`).
    pub credential: &'a str,
}

#[rocket::async_trait]
impl IdentityProvider for PasskeyProvider {
    fn id(&self) -> ProviderId {
        ProviderId::Passkey
    }

    fn login_entry(&self) -> LoginEntry {
        LoginEntry::Passkey
    }

    async fn authenticate_passkey(
        &self,
        db: &Pool,
        attempt: PasskeyAttempt<'_, '_>,
    ) -> std::result::Result<Identity, LoginError> {
        match self.check(db, attempt).await {
            Ok(identity) => Ok(identity),
            Err(Refusal::Internal(e)) => Err(LoginError::Internal(e)),
            Err(refusal) => Err(LoginError::Passkey(refusal.to_string())),
        }
    }
}

impl PasskeyProvider {
    async fn check(
        &self,
        db: &Pool,
        attempt: PasskeyAttempt<'_, '_>,
    ) -> std::result::Result<Identity, Refusal> {
        let answer: std::result::Result<PublicKeyCredential, Refusal> = parse(attempt.credential);
        let (state, _): (DiscoverableAuthentication, i64) =
            take(&attempt.at, Ceremony::Login, "login").await?;
        let answer = answer?;
        let (handle, raw_id) = self
            .webauthn
            .identify_discoverable_authentication(&answer)
            .map_err(|_| Refusal::Rejected)?;
        let Some(row) = store::by_credential_id(db, &credential_key(raw_id)).await? else {
            return Err(Refusal::Rejected);
        };
        // The authenticator's user handle must be the one this passkey was made with.
        if row.user_handle != handle.to_string() {
            return Err(Refusal::Rejected);
        }
        let key = DiscoverableKey::from(stored(&row)?);
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&answer, state, &key)
            .map_err(|e| {
                log::info!("passkey login refused: {e}");
                Refusal::Rejected
            })?;
        let Some(user) = users::by_id(db, row.user_id).await? else {
            return Err(Refusal::Rejected);
        };
        if user.kind != AccountKind::Local {
            return Err(Refusal::Rejected);
        }
        record(db, &row, &result).await?;
        Ok(Identity {
            user,
            provider: ProviderId::Passkey,
        })
    }
}
