//! One integration-test binary: each module is a user story, each test owns a fresh
//! database through `common::TestApp`.

mod common;

mod accounts;
mod authors;
mod blog_posts;
mod cli;
mod config;
mod csrf;
mod hardening_cookies;
mod hardening_leaks;
mod hardening_races;
mod hardening_throttle;
mod instances;
mod login;
mod oidc_accounts;
mod oidc_hardening;
mod oidc_login;
mod op_selftest;
mod outage;
mod posts;
mod preview;
mod proxy;
mod public;
mod render_bounds;
mod search;
mod security;
mod sessions;
mod share_cards;
mod signup;
mod tags;
