//! A software passkey authenticator (1Password's passkey-rs) that a story holds like a
//! phone: it makes discoverable credentials for the site, verifies its "user" at once,
//! counts its signatures, and answers the site's challenges as a browser would pass
//! them on. Plus the page-level steps the passkey stories repeat.

use std::collections::BTreeMap;

use passkey_authenticator::{
    Authenticator, CredentialStore, DiscoverabilitySupport, StoreInfo, UiHint, UserCheck,
    UserValidationMethod,
};
use passkey_client::{Client, DefaultClientData};
use passkey_crypto::AvailableBackend;
use passkey_types::ctap2::make_credential::{
    Options, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
use passkey_types::ctap2::{Aaguid, Ctap2Error, StatusCode};
use passkey_types::webauthn::{
    CredentialCreationOptions, CredentialRequestOptions, PublicKeyCredentialDescriptor,
};
use passkey_types::Passkey;
use rocket::http::Status;
use url::Url;

use super::schema::Db;
use super::{encode, location, text_of, Browser};

/// The `site.url` of the passkey stories: WebAuthn's relying party is its host, which
/// must be a domain name (localhost is one), never an IP address.
pub const PASSKEY_SITE: &str = "http://localhost:8000";

/// The user of the authenticator: present and verified (a PIN or a fingerprint) every
/// time it is asked.
struct Owner;

#[rocket::async_trait]
impl UserValidationMethod for Owner {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

/// The credentials a device holds, newest last. passkey-rs's own `MemoryStore` finds a
/// credential only when the site lists it (`allowCredentials`), so it cannot answer a
/// discoverable login, which lists none; this store then offers the newest credential
/// it holds for the site, as a phone does when its owner picks one.
#[derive(Clone, Default)]
pub struct Keys {
    /// By the order they were made (a counter), so "newest" is well defined.
    held: BTreeMap<u64, Passkey>,
    made: u64,
}

impl Keys {
    pub fn len(&self) -> usize {
        self.held.len()
    }
}

#[rocket::async_trait]
impl CredentialStore for Keys {
    type PasskeyItem = Passkey;

    async fn find_credentials(
        &self,
        ids: Option<&[PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        _user_handle: Option<&[u8]>,
    ) -> Result<Vec<Passkey>, StatusCode> {
        let mut found: Vec<Passkey> = self
            .held
            .values()
            .rev()
            .filter(|p| p.rp_id == rp_id)
            .filter(|p| match ids {
                Some(ids) if !ids.is_empty() => ids.iter().any(|d| d.id == p.credential_id),
                // Discoverable: only credentials that keep their user handle.
                _ => p.user_handle.is_some(),
            })
            .cloned()
            .collect();
        found.truncate(1);
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    async fn save_credential(
        &mut self,
        cred: Passkey,
        _user: PublicKeyCredentialUserEntity,
        _rp: PublicKeyCredentialRpEntity,
        _options: Options,
    ) -> Result<(), StatusCode> {
        self.held
            .retain(|_, p| p.credential_id != cred.credential_id);
        self.made += 1;
        self.held.insert(self.made, cred);
        Ok(())
    }

    async fn update_credential(&mut self, cred: &Passkey) -> Result<(), StatusCode> {
        for p in self.held.values_mut() {
            if p.credential_id == cred.credential_id {
                *p = cred.clone();
            }
        }
        Ok(())
    }

    async fn get_info(&self) -> StoreInfo {
        StoreInfo {
            discoverability: DiscoverabilitySupport::ForcedDiscoverable,
        }
    }
}

/// A device with a platform authenticator, used from the browser at `PASSKEY_SITE`.
#[derive(Clone)]
pub struct SoftAuthenticator {
    /// The credentials it holds (discoverable ones, with their signature counters).
    pub store: Keys,
    origin: Url,
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        SoftAuthenticator::new(PASSKEY_SITE)
    }
}

impl SoftAuthenticator {
    /// An authenticator for pages served from `origin`.
    pub fn new(origin: &str) -> SoftAuthenticator {
        SoftAuthenticator {
            store: Keys::default(),
            origin: Url::parse(origin).expect("origin"),
        }
    }

    fn authenticator(&self) -> Authenticator<Keys, Owner, AvailableBackend> {
        let mut authenticator = Authenticator::new(
            Aaguid::new_empty(),
            self.store.clone(),
            Owner,
            AvailableBackend,
        );
        // A counter that only goes up, as hardware keys keep one: the site notices a
        // copy of the key that answers with an older count.
        authenticator.set_make_credentials_with_signature_counter(true);
        authenticator
    }

    /// How many credentials it holds.
    pub fn credentials(&self) -> usize {
        self.store.len()
    }

    /// Makes a passkey from the site's options (the JSON of
    /// `/account/security/passkeys/options`); returns the JSON a browser posts back.
    pub async fn create(&mut self, options: &str) -> Result<String, String> {
        let options: CredentialCreationOptions =
            serde_json::from_str(options).map_err(|e| format!("options: {e}: {options}"))?;
        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let created = client
            .register(&self.origin, options, DefaultClientData)
            .await
            .map_err(|e| format!("register: {e:?}"))?;
        self.store = client.authenticator().store().clone();
        Ok(serde_json::to_string(&created).expect("credential JSON"))
    }

    /// Answers a login challenge (the JSON of a `.../passkey/options` route) with a
    /// passkey it holds; returns the JSON a browser posts back.
    pub async fn get(&mut self, options: &str) -> Result<String, String> {
        let options: CredentialRequestOptions =
            serde_json::from_str(options).map_err(|e| format!("options: {e}: {options}"))?;
        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let answer = client
            .authenticate(&self.origin, options, DefaultClientData)
            .await
            .map_err(|e| format!("authenticate: {e:?}"))?;
        self.store = client.authenticator().store().clone();
        Ok(serde_json::to_string(&answer).expect("assertion JSON"))
    }
}

/// Asks `path` (a `.../options` route) for WebAuthn options with the page's CSRF token;
/// the status and the JSON body.
pub async fn options(b: &Browser, path: &str) -> (Status, String) {
    let res = b.post_form(path, &[]).await;
    text_of(res).await
}

/// Adds a passkey named `name` from this logged-in browser (its proof fresh), made by
/// `device`; returns where the browser was sent and the page there.
pub async fn add_passkey(b: &Browser, device: &mut SoftAuthenticator, name: &str) -> String {
    let (status, json) = options(b, "/account/security/passkeys/options").await;
    assert_eq!(status, Status::Ok, "registration options: {json}");
    let credential = device
        .create(&json)
        .await
        .expect("the device makes a passkey");
    let res = b
        .post_form(
            "/account/security/passkeys",
            &[("name", name), ("credential", &credential)],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let to = location(&res);
    drop(res);
    let (_, page) = b.get_text(&to).await;
    page
}

/// A passkey login's answer from `device`, for a challenge this browser just got at /login.
pub async fn passkey_answer(b: &Browser, device: &mut SoftAuthenticator) -> String {
    let (status, json) = options(b, "/login/passkey/options").await;
    assert_eq!(status, Status::Ok, "login options: {json}");
    device.get(&json).await.expect("the device answers")
}

/// Logs in from /login with a passkey alone; returns (status, Location).
pub async fn log_in_with_passkey(b: &Browser, device: &mut SoftAuthenticator) -> (Status, String) {
    let answer = passkey_answer(b, device).await;
    post_login_answer(b, &answer).await
}

/// Posts a passkey login answer to /login/passkey; (status, Location).
pub async fn post_login_answer(b: &Browser, answer: &str) -> (Status, String) {
    let res = b
        .post_form("/login/passkey", &[("credential", answer), ("next", "")])
        .await;
    (res.status(), location(&res))
}

/// Posts `fields` (with `from`'s CSRF token) to `path` on the instance `instance` runs,
/// carrying every cookie `from` holds, as when a load balancer sends a browser's next
/// request to another instance (same database and secret key). Cookies the answer sets
/// stay with `instance`. Returns (status, Location).
pub async fn post_form_via(
    instance: &Browser,
    from: &Browser,
    path: &str,
    fields: &[(&str, &str)],
) -> (Status, String) {
    let token = from.csrf_token().await;
    let mut all: Vec<(&str, &str)> = vec![("csrf_token", &token)];
    all.extend_from_slice(fields);
    let cookies: Vec<_> = from.client.cookies().iter().cloned().collect();
    let res = instance
        .raw_request(path, &encode(&all))
        .cookies(cookies)
        .dispatch()
        .await;
    (res.status(), location(&res))
}

/// How many WebAuthn challenges are waiting (all browsers).
pub async fn challenge_count(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM webauthn_challenges")
        .fetch_one(&*db.pool().await)
        .await
        .expect("count challenges")
}

/// How many passkeys are stored (all accounts).
pub async fn passkey_count(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM passkeys")
        .fetch_one(&*db.pool().await)
        .await
        .expect("count passkeys")
}

/// The stored passkeys' ids, oldest first.
pub async fn passkey_ids(db: &impl Db) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM passkeys ORDER BY id")
        .fetch_all(&*db.pool().await)
        .await
        .expect("passkey ids")
}

/// Puts every WebAuthn challenge past its expiry.
pub async fn expire_challenges(db: &impl Db) {
    sqlx::query("UPDATE webauthn_challenges SET expires_at = created_at - 1")
        .execute(&*db.pool().await)
        .await
        .expect("expire challenges");
}
