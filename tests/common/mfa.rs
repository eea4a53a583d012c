//! Second factors as the tests drive them: codes an authenticator app would show
//! (computed with totp-rs from the secret the page shows), reading the security page,
//! and the SQL the MFA stories run to arrange or check the MFA tables.

use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;
use rocket::http::Status;

use super::schema::Db;
use super::{location, Browser};

/// What an authenticator app holding `secret` (base32, as the page shows it) shows at
/// unix time `time`.
pub fn code_at(secret: &str, time: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .expect("a base32 secret");
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    )
    .generate(time)
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code the app shows now, `steps` 30-second steps away (-1: the previous one).
/// Waits first when the current step is about to end, so the code is still of the
/// step meant when quire checks it.
pub async fn code_now(secret: &str, steps: i64) -> String {
    if now_secs() % 30 >= 27 {
        rocket::tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    let time = now_secs() as i64 + steps * 30;
    code_at(secret, time as u64)
}

/// The authenticator secret (base32) on a security page.
pub fn secret_in(page: &str) -> Option<String> {
    let re = Regex::new(r#"<code id="totp-secret">([A-Z2-7]+)</code>"#).unwrap();
    re.captures(page).map(|c| c[1].to_string())
}

/// The `otpauth://` URI on a security page (unescaped).
pub fn otpauth_uri_in(page: &str) -> Option<String> {
    let re = Regex::new(r#"<code id="totp-uri">([^<]+)</code>"#).unwrap();
    re.captures(page).map(|c| super::unescape(&c[1]))
}

/// The recovery codes listed once, one per `<li>` inside `#recovery-codes`.
pub fn recovery_codes_in(page: &str) -> Vec<String> {
    let list = Regex::new(r#"(?s)<ul id="recovery-codes"[^>]*>(.*?)</ul>"#).unwrap();
    let Some(items) = list.captures(page) else {
        return Vec::new();
    };
    let li = Regex::new(r"(?s)<li>(.*?)</li>").unwrap();
    let tags = Regex::new(r"<[^>]*>").unwrap();
    li.captures_iter(&items[1])
        .map(|c| tags.replace_all(&c[1], "").trim().to_string())
        .collect()
}

/// Sets up an authenticator app from this logged-in browser (its proof fresh) and
/// returns the secret and the recovery codes shown.
pub async fn enrol(b: &Browser) -> (String, Vec<String>) {
    let (status, page) = b.get_text("/account/security").await;
    assert_eq!(status, Status::Ok);
    let secret = secret_in(&page).unwrap_or_else(|| panic!("no secret on the page:\n{page}"));
    let code = code_now(&secret, 0).await;
    let res = b
        .post_form("/account/security/totp", &[("code", &code)])
        .await;
    assert_eq!(res.status(), Status::SeeOther, "enrolment refused");
    assert_eq!(location(&res), "/account/security");
    drop(res);
    let (_, page) = b.get_text("/account/security").await;
    let codes = recovery_codes_in(&page);
    assert_eq!(codes.len(), 10, "recovery codes shown:\n{page}");
    (secret, codes)
}

/// Forgets which time steps were accepted, so a test may use any code in the window
/// again (as if the clock had moved on).
pub async fn forget_used_steps(db: &impl Db) {
    sqlx::query("UPDATE totp_factors SET last_step = 0")
        .execute(&*db.pool().await)
        .await
        .expect("forget steps");
}

/// How many authenticator apps are enrolled.
pub async fn totp_factor_count(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM totp_factors")
        .fetch_one(&*db.pool().await)
        .await
        .expect("count factors")
}

/// The stored authenticator secrets, as kept (sealed).
pub async fn stored_totp_secrets(db: &impl Db) -> Vec<String> {
    sqlx::query_scalar("SELECT secret FROM totp_factors ORDER BY id")
        .fetch_all(&*db.pool().await)
        .await
        .expect("secrets")
}

/// The stored recovery code hashes.
pub async fn stored_code_hashes(db: &impl Db) -> Vec<String> {
    sqlx::query_scalar("SELECT code_hash FROM recovery_codes ORDER BY id")
        .fetch_all(&*db.pool().await)
        .await
        .expect("code hashes")
}

/// How many logins wait for their second step.
pub async fn pending_count(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM login_pending")
        .fetch_one(&*db.pool().await)
        .await
        .expect("count pending")
}

/// Puts every pending login past its expiry.
pub async fn expire_pending(db: &impl Db) {
    sqlx::query("UPDATE login_pending SET expires_at = created_at - 1")
        .execute(&*db.pool().await)
        .await
        .expect("expire pending");
}

/// Moves every session's last proof `seconds` into the past.
pub async fn age_proofs(db: &impl Db, seconds: i64) {
    sqlx::query("UPDATE sessions SET proved_at = proved_at - $1")
        .bind(seconds)
        .execute(&*db.pool().await)
        .await
        .expect("age proofs");
}

/// How each session was made ('password', 'password+totp', ...), oldest first.
pub async fn session_methods(db: &impl Db) -> Vec<String> {
    sqlx::query_scalar("SELECT method FROM sessions ORDER BY id")
        .fetch_all(&*db.pool().await)
        .await
        .expect("methods")
}
