//! Story: an operator starts quire with little or no configuration; the secret key is
//! generated once and kept beside the database so logins survive restarts, and a
//! configuration quire cannot honour stops launch instead of running weakened.

use std::os::unix::fs::PermissionsExt;

use rocket::figment::Figment;
use rocket::http::{Cookie, Status};
use tempfile::TempDir;

use crate::common::*;

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("quire-config-")
        .tempdir()
        .unwrap()
}

/// What quire starts from in `dir` with no secret key configured: the key generated, or
/// read, beside the SQLite file there.
fn first_start(dir: &TempDir) -> Result<Figment, String> {
    quire::secret_key::with_secret_key(keyless_figment(&database::TestDatabase::sqlite(dir.path())))
}

fn secret_key(figment: &Figment) -> String {
    figment.extract_inner("secret_key").expect("a secret key")
}

#[rocket::async_test]
async fn a_missing_secret_key_is_generated_once_beside_the_database() {
    let dir = temp_dir();
    let key_file = dir.path().join("quire.secret_key");
    let first = first_start(&dir).unwrap();
    assert!(key_file.exists());
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    let key = secret_key(&first);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), key);

    let second = first_start(&dir).unwrap();
    assert_eq!(secret_key(&second), key);
}

#[rocket::async_test]
async fn logins_survive_a_restart_with_a_generated_key() {
    let dir = temp_dir();
    let first = Browser::launch(first_start(&dir).unwrap()).await;
    let res = first.signup(&unique_email("pat"), "Pat", PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(first.is_logged_in().await);
    // The cookie as the browser holds it: encrypted with the instance's key.
    let sealed = first
        .cookie("quire_session")
        .expect("session cookie")
        .value()
        .to_string();

    let restarted = Browser::launch(first_start(&dir).unwrap()).await;
    let res = restarted
        .get_with_cookie("/dashboard", Cookie::new("quire_session", sealed.clone()))
        .await;
    assert_eq!(res.status(), Status::Ok, "logged out by a restart");

    // Under another key the same cookie means nothing, so the check above is the key's doing.
    let other = Browser::launch(test_figment(&database::TestDatabase::sqlite(dir.path()))).await;
    let res = other
        .get_with_cookie("/dashboard", Cookie::new("quire_session", sealed))
        .await;
    assert_eq!(res.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_configured_secret_key_wins_and_no_file_is_written() {
    let dir = temp_dir();
    let figment = test_figment(&database::TestDatabase::sqlite(dir.path()));
    let figment = quire::secret_key::with_secret_key(figment).unwrap();
    assert_eq!(secret_key(&figment), SECRET_KEY);
    assert!(!dir.path().join("quire.secret_key").exists());
}

#[rocket::async_test]
async fn a_garbled_key_file_is_an_error_naming_the_file() {
    let dir = temp_dir();
    let key_file = dir.path().join("quire.secret_key");
    std::fs::write(&key_file, "this is not a key\n").unwrap();
    let err = first_start(&dir).expect_err("garbled key accepted");
    assert!(
        err.contains(&key_file.display().to_string()),
        "error does not name the file: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        "this is not a key\n",
        "the file was overwritten"
    );
}

#[rocket::async_test]
async fn a_configuration_quire_cannot_honour_stops_launch() {
    let dir = temp_dir();
    let base = test_figment(&database::TestDatabase::sqlite(dir.path()));
    let bad: [(&str, Figment); 3] = [
        (
            "auth.password_min_length",
            base.clone().merge(("auth.password_min_length", 7)),
        ),
        (
            "auth.providers",
            base.clone().merge(("auth.providers", ["ldap"])),
        ),
        (
            "trusted_proxies",
            base.clone().merge(("trusted_proxies", ["10.0.0.0/33"])),
        ),
    ];
    for (key, figment) in bad {
        assert_launch_refused(figment, key).await;
    }
    // The floor itself is allowed, so the refusal above is about the value.
    assert_launches(base.merge(("auth.password_min_length", 8))).await;
}

/// `config::defaults()` promises quire's defaults alone, read from no file or environment,
/// so that a developer's Rocket.toml or exported `ROCKET_*` cannot change what tests see.
#[rocket::async_test]
async fn the_defaults_read_no_file_or_environment() {
    let figment = quire::config::defaults();
    let outside: Vec<String> = figment
        .metadata()
        .filter(|m| m.name.contains("file") || m.name.contains("environment"))
        .map(|m| m.name.to_string())
        .collect();
    assert!(outside.is_empty(), "defaults() reads {outside:?}");
}
