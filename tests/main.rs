//! One integration-test binary: each module is a user story, each test owns a fresh
//! database through `common::TestApp`.

mod common;

mod accounts;
mod authors;
mod backup;
mod blog_posts;
mod cli;
mod config;
mod csrf;
mod export;
mod faults;
mod graceful_stop;
mod hardening_cookies;
mod hardening_leaks;
mod hardening_races;
mod hardening_throttle;
mod http_cache;
mod import;
mod instances;
mod login;
mod mail;
mod media;
mod mfa;
mod oidc_accounts;
mod oidc_amr;
mod oidc_hardening;
mod oidc_login;
mod op_selftest;
mod outage;
mod page_cache;
mod passkeys;
mod posts;
mod preview;
mod props;
mod proxy;
mod public;
mod render_bounds;
mod search;
mod security;
mod sessions;
mod share_cards;
mod signup;
mod tags;
mod verify_email;
