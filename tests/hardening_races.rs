//! Story: an author changes their password while someone (who knows the old one) keeps
//! logging in, in parallel, from other browsers. Once the change is done, nobody holds a
//! session made with the old password, and a login that upgrades an old hash never puts
//! the old password back.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use rocket::futures::future::{join, join_all};
use rocket::http::Status;

use crate::common::*;

/// Hashing slow enough (a few milliseconds) that a login and a change overlap in it.
fn slow_hashing(f: rocket::figment::Figment) -> rocket::figment::Figment {
    f.merge(("auth.argon2.memory_kib", 4096))
        // Several browsers, each its own Rocket and pool, on one PostgreSQL.
        .merge(("databases.quire.max_connections", 2))
}

/// The n-th password of the story: all distinct and acceptable.
fn password(n: usize) -> String {
    format!("{PASSWORD} and {n} quiet owls")
}

fn matches(password: &str, hash: &str) -> bool {
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &PasswordHash::new(hash).unwrap())
        .is_ok()
}

async fn change_password(b: &Browser, from: &str, to: &str) -> Status {
    b.post_form(
        "/account/password",
        &[("current_password", from), ("new_password", to)],
    )
    .await
    .status()
}

#[rocket::async_test]
async fn logins_racing_a_password_change_keep_no_session_made_with_the_old_password() {
    let app = TestApp::spawn_with(slow_hashing).await;
    let (owner, email) = app.author("Ada").await;
    // Browsers that logged in before, so they are not throttled as strangers.
    let mut racers = Vec::new();
    for _ in 0..8 {
        let b = app.login_as(&email).await;
        b.logout().await;
        b.csrf_token().await;
        racers.push(b);
    }
    let mut old = PASSWORD.to_string();
    let mut kept = Vec::new();
    for round in 1..=5 {
        // Earlier rounds' failures pass, so only the race decides what happens.
        forget_failures(&app).await;
        let new = password(round);
        let logins = join_all(racers.iter().map(|b| b.login(&email, &old)));
        let (changed, _) = join(change_password(&owner, &old, &new), logins).await;
        assert_eq!(changed, Status::SeeOther, "round {round}: the change");
        for (i, b) in racers.iter().enumerate() {
            if b.is_logged_in().await {
                kept.push((round, i));
                b.logout().await;
            }
        }
        assert!(owner.is_logged_in().await, "round {round}: the owner stays");
        old = new;
    }
    assert!(
        kept.is_empty(),
        "sessions made with an old password survived its change (round, browser): {kept:?}"
    );
    // The last password works; the one before does not.
    let b = app.new_browser().await;
    assert_eq!(
        b.login(&email, &password(4)).await.status(),
        Status::Unauthorized
    );
    assert_eq!(b.login(&email, &old).await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn upgrading_an_old_hash_at_login_never_restores_a_changed_password() {
    let app = TestApp::spawn_with(slow_hashing).await;
    let (owner, email) = app.author("Bea").await;
    let racer = app.login_as(&email).await;
    racer.logout().await;
    racer.csrf_token().await;

    let mut old = PASSWORD.to_string();
    let mut restored = Vec::new();
    for round in 1..=12 {
        // Earlier rounds' failures pass, so only the race decides what happens.
        forget_failures(&app).await;
        // As if the hash predated an upgrade of the parameters (1024 KiB, now 4096): a
        // login will rehash it.
        store_old_hash(&app, &email, &old, 1024).await;
        let new = password(round);
        let (changed, _) = join(
            change_password(&owner, &old, &new),
            racer.login(&email, &old),
        )
        .await;
        assert_eq!(changed, Status::SeeOther, "round {round}: the change");
        let hash = password_hash(&app, &email).await;
        if !matches(&new, &hash) {
            assert!(matches(&old, &hash), "round {round}: neither password");
            restored.push(round);
        }
        racer.logout().await;
        old = new;
    }
    assert!(
        restored.is_empty(),
        "a login's rehash put the old password back in rounds {restored:?}"
    );
}

/// The last line of defence behind the race above: whenever a password change lands
/// (even just after a login's own check), sessions made before it stop working.
#[rocket::async_test]
async fn a_session_made_before_the_password_changed_is_no_longer_honoured() {
    let app = TestApp::spawn().await;
    let (owner, email) = app.author("Cy").await;
    let other = app.login_as(&email).await;
    // What a password change does to the account, without touching its sessions.
    bump_credential_version(&app, &email).await;
    assert!(!other.is_logged_in().await);
    assert!(!owner.is_logged_in().await);
    // A fresh login works again.
    assert_eq!(
        other.login(&email, PASSWORD).await.status(),
        Status::SeeOther
    );
    assert!(other.is_logged_in().await);
}
