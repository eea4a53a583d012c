//! quire: a self-hostable blog whose authors log in with local accounts (and, through
//! the same `IdentityProvider` trait, external providers).

pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod excerpt;
pub mod export;
pub mod import;
pub mod keys;
pub mod mail;
pub mod media;
pub mod render;
pub mod secret_key;
pub mod text;
pub mod token;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;

use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::{Build, Rocket};
use rocket_db_pools::Database;
use rocket_dyn_templates::Template;

use auth::{LocalProvider, Providers};
use config::Config;
use db::Db;
use domain::ProviderId;

/// Builds the application from a figment (see `config::figment` for the one `quire
/// serve` uses; tests pass their own). Configuration errors stop launch with a message
/// naming the key.
pub fn build(figment: Figment) -> Rocket<Build> {
    let override_dir: Option<PathBuf> = figment.extract_inner("template_dir").ok();
    // Client addresses come from the connection or a trusted proxy (`auth::Client`).
    let figment = figment.merge(("ip_header", false));
    let figment = web::media::with_upload_limits(figment);
    rocket::custom(figment)
        .attach(AdHoc::try_on_ignite(
            "quire configuration",
            |rocket| async move {
                match configure(&rocket) {
                    Ok((config, providers)) => {
                        let csp = web::headers::Csp::for_config(&config);
                        let mfa = auth::mfa::Mfa::new(
                            keys::Keys::from_figment(rocket.figment())
                                .secret_box(keys::Purpose::TotpSecrets),
                        );
                        let passkeys = auth::passkey::Passkeys::from_config(&config);
                        let providers = match passkeys.shared() {
                            Some(rp) if providers.local().is_some() => providers
                                .with_passkey(Arc::new(auth::passkey::PasskeyProvider::new(rp))),
                            _ => providers,
                        };
                        if let (Err(why), Some(_)) = (passkeys.webauthn(), providers.local()) {
                            log::warn!("{why}");
                        }
                        Ok(rocket
                            .manage(config)
                            .manage(providers)
                            .manage(passkeys)
                            .manage(csp)
                            .manage(mfa))
                    }
                    Err(e) => {
                        log::error!("{e}");
                        Err(rocket)
                    }
                }
            },
        ))
        .attach(Db::init())
        .manage(db::Background::default())
        .attach(mail::stage(override_dir.clone()))
        .attach(web::assets::private_template_dir())
        .attach(Template::try_custom(move |engines| {
            web::assets::register_templates(&mut engines.tera, override_dir.as_deref())
                .map_err(Into::into)
        }))
        .attach(web::headers::SecurityHeaders)
        .attach(web::http_cache::HttpCache)
        .attach(web::page_cache::Stage)
        .attach(auth::client::UntrustedProxyWarning::default())
        .mount("/", web::routes())
        .register("/", web::catchers::catchers())
}

fn configure(rocket: &Rocket<Build>) -> Result<(Config, Providers), String> {
    let config = Config::from_figment(rocket.figment())?;
    for warning in config.auth.warnings() {
        log::warn!("{warning}");
    }
    let a = config.auth.argon2;
    let owasp = config::Argon2Config::default();
    if a.memory_kib < owasp.memory_kib || a.iterations < owasp.iterations {
        log::warn!(
            "auth.argon2 is below OWASP's minimum (m={} KiB, t={}): acceptable for tests only",
            owasp.memory_kib,
            owasp.iterations
        );
    }
    let local = if config.auth.uses(ProviderId::Local) {
        let keys = auth::local::ThrottleKeys::from_figment(rocket.figment());
        Some(Arc::new(
            LocalProvider::new(&config.auth)?.with_throttle_keys(keys),
        ))
    } else {
        None
    };
    let oidc = match config.auth.active_oidc() {
        Some(cfg) => {
            let tokens =
                keys::Keys::from_figment(rocket.figment()).secret_box(keys::Purpose::OidcTokens);
            Some(Arc::new(
                auth::oidc::OidcProvider::new(cfg)?.with_secret_box(tokens),
            ))
        }
        None => None,
    };
    Ok((config, Providers::new(local, oidc)))
}
