//! What the tests know about quire's tables: every SQL statement a story runs to arrange
//! a situation or to check what the database now holds lives here, so a schema change
//! touches this file and no story.
//!
//! The schema stores flags as 0/1 integers and "not yet" timestamps as 0 (sqlx 0.7's Any
//! driver decodes neither booleans nor NULL); stories get `bool` and `Option` instead.

use std::future::Future;

use quire::db::Pool;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::database::{self, is_postgres, TestDatabase};
use super::TestApp;

/// Anything with a database under test (a `TestApp`, an `OidcApp`, a `Pool`, ...).
pub trait Db {
    /// A pool on that database.
    fn pool(&self) -> impl Future<Output = Pool>;
}

impl Db for Pool {
    async fn pool(&self) -> Pool {
        self.clone()
    }
}

impl Db for TestApp {
    async fn pool(&self) -> Pool {
        self.db().await
    }
}

impl Db for TestDatabase {
    async fn pool(&self) -> Pool {
        database::connect(&self.url).await
    }
}

// ---------------------------------------------------------------------------------------
// Accounts

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    /// "local" or "oidc".
    pub kind: String,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    /// "" for local accounts.
    pub oidc_issuer: String,
    pub oidc_subject: String,
}

/// Every account, oldest first.
pub async fn users(db: &impl Db) -> Vec<UserRow> {
    let rows: Vec<(i64, String, String, String, i64, String, String)> = sqlx::query_as(
        "SELECT id, kind, email, name, is_admin, oidc_issuer, oidc_subject FROM users \
         ORDER BY id",
    )
    .fetch_all(&*db.pool().await)
    .await
    .expect("users");
    rows.into_iter()
        .map(
            |(id, kind, email, name, is_admin, oidc_issuer, oidc_subject)| UserRow {
                id,
                kind,
                email,
                name,
                is_admin: is_admin != 0,
                oidc_issuer,
                oidc_subject,
            },
        )
        .collect()
}

/// The email of every account, oldest first.
pub async fn emails(db: &impl Db) -> Vec<String> {
    users(db).await.into_iter().map(|u| u.email).collect()
}

pub async fn user_count(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&*db.pool().await)
        .await
        .expect("count users")
}

/// The id of the account with this (stored, lowercased) email; panics when there is none.
pub async fn user_id(db: &impl Db, email: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&*db.pool().await)
        .await
        .unwrap_or_else(|e| panic!("no account {email}: {e}"))
}

/// The stored password hash of the account with this email ("" without a password).
pub async fn password_hash(db: &impl Db, email: &str) -> String {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&*db.pool().await)
        .await
        .unwrap_or_else(|e| panic!("no account {email}: {e}"))
}

/// Makes the account with this email an admin, as `quire user add --admin` would have.
pub async fn make_admin(db: &impl Db, email: &str) {
    let done = sqlx::query("UPDATE users SET is_admin = 1 WHERE email = $1")
        .bind(email)
        .execute(&*db.pool().await)
        .await
        .expect("make admin");
    assert_eq!(done.rows_affected(), 1, "no account {email}");
}

// ---------------------------------------------------------------------------------------
// Sessions

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    /// "local" or "oidc".
    pub provider: String,
    /// The raw ID token of an OIDC login ("" for local ones).
    pub id_token: String,
    pub oidc_sid: String,
}

/// Every session, oldest first.
pub async fn sessions(db: &impl Db) -> Vec<SessionRow> {
    let rows: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
        "SELECT id, user_id, provider, id_token, oidc_sid FROM sessions ORDER BY id",
    )
    .fetch_all(&*db.pool().await)
    .await
    .expect("sessions");
    rows.into_iter()
        .map(|(id, user_id, provider, id_token, oidc_sid)| SessionRow {
            id,
            user_id,
            provider,
            id_token,
            oidc_sid,
        })
        .collect()
}

pub async fn session_count(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(&*db.pool().await)
        .await
        .expect("count sessions")
}

/// The id of every session, oldest first.
pub async fn session_ids(db: &impl Db) -> Vec<i64> {
    sessions(db).await.into_iter().map(|s| s.id).collect()
}

/// The ids of the sessions of the account with this email, oldest first.
pub async fn session_ids_of(db: &impl Db, email: &str) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT sessions.id FROM sessions JOIN users ON users.id = sessions.user_id \
         WHERE users.email = $1 ORDER BY sessions.id",
    )
    .bind(email)
    .fetch_all(&*db.pool().await)
    .await
    .expect("sessions of an account")
}

/// What the database keeps of a session token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The stored token hash of every session, oldest first.
pub async fn token_hashes(db: &impl Db) -> Vec<String> {
    sqlx::query_scalar("SELECT token_hash FROM sessions ORDER BY id")
        .fetch_all(&*db.pool().await)
        .await
        .expect("token hashes")
}

/// How many sessions are stored under this token hash.
pub async fn sessions_with_hash(db: &impl Db, hash: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE token_hash = $1")
        .bind(hash)
        .fetch_one(&*db.pool().await)
        .await
        .expect("count sessions")
}

/// Moves every session's last activity `seconds` into the past, as staying away would.
pub async fn idle_sessions(db: &impl Db, seconds: i64) {
    sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at - $1")
        .bind(seconds)
        .execute(&*db.pool().await)
        .await
        .expect("age sessions");
}

/// Puts every session past its absolute expiry, however recently it was used.
pub async fn expire_sessions(db: &impl Db) {
    sqlx::query("UPDATE sessions SET expires_at = last_seen_at - 1")
        .execute(&*db.pool().await)
        .await
        .expect("expire sessions");
}

// ---------------------------------------------------------------------------------------
// Posts

/// A post as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRow {
    pub author_id: i64,
    pub slug: String,
    pub title: String,
    pub body_md: String,
    /// Rendered and sanitized when the post was saved.
    pub body_html: String,
    pub published: bool,
    /// When it was first published; `None` for a post never published.
    pub published_at: Option<i64>,
}

/// The post at this address, if there is one.
pub async fn post_row(db: &impl Db, slug: &str) -> Option<PostRow> {
    // Never-published posts store 0, not NULL.
    // As text: sqlx's Any driver reads a SQLite INTEGER as 32 bits (a time after 2038).
    let row: Option<(i64, String, String, String, String, i64, String)> = sqlx::query_as(
        "SELECT author_id, slug, title, body_md, body_html, published, \
         CAST(COALESCE(published_at, 0) AS TEXT) FROM posts WHERE slug = $1",
    )
    .bind(slug)
    .fetch_optional(&*db.pool().await)
    .await
    .expect("query posts");
    row.map(
        |(author_id, slug, title, body_md, body_html, published, at)| PostRow {
            author_id,
            slug,
            title,
            body_md,
            body_html,
            published: published != 0,
            published_at: Some(at.parse::<i64>().expect("a number")).filter(|&at| at > 0),
        },
    )
}

pub async fn post_count(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM posts")
        .fetch_one(&*db.pool().await)
        .await
        .expect("count posts")
}

/// Dates the post's publication at unix time `ts`.
pub async fn set_published_at(db: &impl Db, slug: &str, ts: i64) {
    let done = sqlx::query("UPDATE posts SET published_at = $1 WHERE slug = $2")
        .bind(ts)
        .bind(slug)
        .execute(&*db.pool().await)
        .await
        .expect("update post");
    assert_eq!(done.rows_affected(), 1, "{slug}");
}

/// Inserts `n` published posts "Post 001".."Post n" (slugs post-001..), one hour apart,
/// Post n the newest, written by `author_id`.
pub async fn insert_posts(db: &impl Db, author_id: i64, n: i64) {
    let pool = db.pool().await;
    for i in 1..=n {
        let ts = 1_700_000_000 + i * 3600;
        sqlx::query(
            "INSERT INTO posts (author_id, slug, title, body_md, body_html, published, \
             published_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6, $6)",
        )
        .bind(author_id)
        .bind(format!("post-{i:03}"))
        .bind(format!("Post {i:03}"))
        .bind(format!("Body {i}"))
        .bind(format!("<p>Body {i}</p>"))
        .bind(ts)
        .execute(&*pool)
        .await
        .expect("insert post");
    }
}

/// Inserts `n` published posts as `insert_posts` does, in one statement (for listings of
/// many thousands): "Post 000001".. with slugs bulk-000001.., one hour apart from
/// 1_700_000_000, the last the newest.
pub async fn insert_many_posts(db: &impl Db, author_id: i64, n: i64) {
    let pad = if is_postgres() {
        "lpad(n::text, 6, '0')"
    } else {
        "substr('000000' || n, -6, 6)"
    };
    sqlx::query(&format!(
        "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $2) \
         INSERT INTO posts (author_id, slug, title, body_md, body_html, published, \
         published_at, created_at, updated_at) \
         SELECT $1, 'bulk-' || {pad}, 'Post ' || {pad}, 'Body', '<p>Body</p>', 1, \
         1700000000 + n * 3600, 1700000000 + n * 3600, 1700000000 + n * 3600 FROM seq"
    ))
    .bind(author_id)
    .bind(n)
    .execute(&*db.pool().await)
    .await
    .expect("insert posts");
}

/// The `?before=` cursor that lists the posts after this one (as quire writes it in its
/// "Older posts" links: published_at and id).
pub async fn cursor_of(db: &impl Db, slug: &str) -> String {
    let (at, id): (i64, i64) = sqlx::query_as("SELECT published_at, id FROM posts WHERE slug = $1")
        .bind(slug)
        .fetch_one(&*db.pool().await)
        .await
        .expect("query posts");
    format!("{at}-{id}")
}

/// A post's stored excerpt HTML ("" when none).
pub async fn excerpt_html(db: &impl Db, slug: &str) -> String {
    sqlx::query_scalar("SELECT excerpt_html FROM posts WHERE slug = $1")
        .bind(slug)
        .fetch_one(&*db.pool().await)
        .await
        .expect("query posts")
}

/// Takes the post's excerpt away and lists it for the excerpt backfill, as migration
/// 0008 finds a post saved before excerpts existed.
pub async fn forget_excerpt(db: &impl Db, slug: &str) {
    let pool = db.pool().await;
    let done = sqlx::query("UPDATE posts SET excerpt_html = '' WHERE slug = $1")
        .bind(slug)
        .execute(&*pool)
        .await
        .expect("forget excerpt");
    assert_eq!(done.rows_affected(), 1, "{slug}");
    sqlx::query("INSERT INTO excerpt_backfill (post_id) SELECT id FROM posts WHERE slug = $1")
        .bind(slug)
        .execute(&*pool)
        .await
        .expect("list for the backfill");
}

/// How many posts still wait for the excerpt backfill.
pub async fn awaiting_excerpts(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM excerpt_backfill")
        .fetch_one(&*db.pool().await)
        .await
        .expect("count excerpt_backfill")
}

/// A post's last-edit time, unix seconds.
pub async fn updated_at(db: &impl Db, slug: &str) -> i64 {
    sqlx::query_scalar("SELECT updated_at FROM posts WHERE slug = $1")
        .bind(slug)
        .fetch_one(&*db.pool().await)
        .await
        .expect("query posts")
}

/// The home page's query, as `src/db/posts.rs` runs it for page 1 (at "now" 2e9).
pub const HOME_QUERY: &str = "SELECT p.id, p.slug, p.title, u.name AS author_name, \
     u.handle AS author_handle, p.published, p.published_at, p.updated_at, p.excerpt_html \
     FROM posts p JOIN users u ON u.id = p.author_id \
     WHERE p.published = 1 AND p.published_at <= 2000000000 \
     ORDER BY p.published_at DESC, p.id DESC LIMIT 21 OFFSET 0";

/// The query of a page of older posts (`?before=`), as `src/db/posts.rs` runs it.
pub const OLDER_QUERY: &str = "SELECT p.id, p.slug, p.title, u.name AS author_name, \
     u.handle AS author_handle, p.published, p.published_at, p.updated_at, p.excerpt_html FROM posts p \
     JOIN users u ON u.id = p.author_id \
     WHERE p.published = 1 AND p.published_at <= 2000000000 \
     AND (p.published_at, p.id) < (1700360000, 100) \
     ORDER BY p.published_at DESC, p.id DESC LIMIT 21";

/// The query of a page of an author's older posts (`/authors/<handle>?before=`), as
/// `src/db/listings.rs` runs it.
pub fn author_older_query(author_id: i64) -> String {
    format!(
        "SELECT p.id, p.slug, p.title, u.name AS author_name, \
         u.handle AS author_handle, p.published, p.published_at, p.updated_at, p.excerpt_html \
         FROM posts p JOIN users u ON u.id = p.author_id \
         WHERE p.author_id = {author_id} AND p.published = 1 AND p.published_at <= 2000000000 \
         AND (p.published_at, p.id) < (1700360000, 100) \
         ORDER BY p.published_at DESC, p.id DESC LIMIT 21"
    )
}

/// The database's plan for `HOME_QUERY`, one line per step.
pub async fn home_query_plan(db: &impl Db) -> String {
    query_plan(db, HOME_QUERY).await
}

/// The database's plan for `query`, one line per step. On PostgreSQL scans and sorts are
/// discouraged first: with a few rows they are cheapest, and the question is whether the
/// index can serve the query's filter and order at all.
pub async fn query_plan(db: &impl Db, query: &str) -> String {
    let pool = db.pool().await;
    let mut conn = pool.acquire().await.expect("connection");
    let plan: Vec<String> = if is_postgres() {
        for sql in [
            "ANALYZE posts",
            "SET enable_seqscan = off",
            "SET enable_bitmapscan = off",
            "SET enable_sort = off",
        ] {
            sqlx::query(sql).execute(&mut *conn).await.expect(sql);
        }
        sqlx::query(&format!("EXPLAIN {query}"))
            .fetch_all(&mut *conn)
            .await
            .expect("explain")
            .iter()
            .map(|r| r.try_get::<String, _>(0).expect("plan line"))
            .collect()
    } else {
        sqlx::query(&format!("EXPLAIN QUERY PLAN {query}"))
            .fetch_all(&mut *conn)
            .await
            .expect("explain")
            .iter()
            .map(|r| r.try_get::<String, _>("detail").expect("detail column"))
            .collect()
    };
    plan.join("\n")
}

// ---------------------------------------------------------------------------------------
// Login throttling

/// Lets every lock pass, as waiting would.
pub async fn let_locks_pass(db: &impl Db) {
    sqlx::query("UPDATE login_throttle SET locked_until = 0")
        .execute(&*db.pool().await)
        .await
        .expect("unlock");
}

/// Whether failed logins are being counted against the account with this email.
pub async fn account_failures_counted(app: &TestApp, email: &str) -> bool {
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_throttle WHERE key = $1")
        .bind(account_key(app, email))
        .fetch_one(&*app.pool().await)
        .await
        .expect("throttle rows");
    rows > 0
}

/// The throttle row of the account with this email, as quire names it (a keyed hash of
/// the normalized email, so the table holds nothing anyone typed).
pub fn account_key(app: &TestApp, email: &str) -> String {
    quire::auth::local::ThrottleKeys::from_figment(&app.figment)
        .account(&quire::auth::local::normalize_email(email))
}

/// Until when (unix seconds) the account with this email is locked; panics when no
/// failure was ever counted against it.
pub async fn account_locked_until(app: &TestApp, email: &str) -> i64 {
    sqlx::query_scalar("SELECT locked_until FROM login_throttle WHERE key = $1")
        .bind(account_key(app, email))
        .fetch_one(&*app.pool().await)
        .await
        .expect("a throttle row for the account")
}

/// The client addresses failed logins were counted against, sorted.
pub async fn throttled_clients(db: &impl Db) -> Vec<String> {
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM login_throttle WHERE key LIKE 'ip:%' ORDER BY key")
            .fetch_all(&*db.pool().await)
            .await
            .expect("throttle rows");
    keys.into_iter()
        .map(|k| k.trim_start_matches("ip:").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Single-use values, migrations, the whole database

/// How many single-use values (login states, logout token ids) have been spent.
pub async fn used_once_count(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM used_once")
        .fetch_one(&*db.pool().await)
        .await
        .expect("count used_once")
}

/// The tables of a SQLite database, sorted.
pub async fn sqlite_tables(db: &impl Db) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&*db.pool().await)
        .await
        .expect("sqlite_master")
}

/// The tables every quire database has.
pub const TABLES: [&str; 4] = ["login_throttle", "posts", "sessions", "users"];

/// The versions of the migrations shipped for the suite's backend, sorted.
pub fn shipped_migrations() -> Vec<i64> {
    let backend = if is_postgres() { "postgres" } else { "sqlite" };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/");
    let mut versions: Vec<i64> = std::fs::read_dir(format!("{dir}{backend}"))
        .expect("migrations directory")
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let (number, _) = name
                .split_once('_')
                .unwrap_or_else(|| panic!("migration {name:?} has no version prefix"));
            number.parse().unwrap()
        })
        .collect();
    versions.sort();
    versions
}

/// The migrations recorded as applied, by version, sorted (one row each).
pub async fn applied_migrations(db: &impl Db) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&*db.pool().await)
        .await
        .expect("_sqlx_migrations")
}

/// How many recorded migrations succeeded.
pub async fn successful_migrations(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&*db.pool().await)
        .await
        .expect("_sqlx_migrations")
}

/// Everything a request could change (accounts, sessions, posts), in a comparable form.
pub async fn snapshot(db: &impl Db) -> String {
    let pool = db.pool().await;
    let users: Vec<(i64, String, String, Option<String>)> =
        sqlx::query_as("SELECT id, email, name, password_hash FROM users ORDER BY id")
            .fetch_all(&*pool)
            .await
            .expect("users");
    let sessions: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT id, user_id, token_hash FROM sessions ORDER BY id")
            .fetch_all(&*pool)
            .await
            .expect("sessions");
    let posts: Vec<(i64, String, String, String, i64)> =
        sqlx::query_as("SELECT id, slug, title, body_md, published FROM posts ORDER BY id")
            .fetch_all(&*pool)
            .await
            .expect("posts");
    format!("{users:?}\n{sessions:?}\n{posts:?}")
}

// ---------------------------------------------------------------------------------------
// Throttle counters, credentials and OIDC re-checks (the hardening stories)

/// A throttle counter as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleCounter {
    /// Failures counted in the current run (or window).
    pub failures: i64,
    /// Until when (unix seconds) the key is refused; 0 or past when it is not.
    pub locked_until: i64,
}

/// The counter stored under `key`; `None` when nothing is counted against it.
pub async fn throttle_counter(db: &impl Db, key: &str) -> Option<ThrottleCounter> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT failures, locked_until FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(&*db.pool().await)
            .await
            .expect("throttle counter");
    row.map(|(failures, locked_until)| ThrottleCounter {
        failures,
        locked_until,
    })
}

/// The failures counted against the account with this email; panics when none ever was.
pub async fn account_failures(app: &TestApp, email: &str) -> i64 {
    throttle_counter(app, &account_key(app, email))
        .await
        .expect("a throttle row for the account")
        .failures
}

/// The failures counted against the client address `ip`; panics when none ever was.
pub async fn client_failures(db: &impl Db, ip: &str) -> i64 {
    throttle_counter(db, &format!("ip:{ip}"))
        .await
        .unwrap_or_else(|| panic!("no throttle row for the client {ip}"))
        .failures
}

/// The keys of the login counters (accounts, clients, known browsers), sorted; signup's
/// counters aside.
pub async fn login_throttle_keys(db: &impl Db) -> Vec<String> {
    sqlx::query_scalar("SELECT key FROM login_throttle WHERE key NOT LIKE 'signup%' ORDER BY key")
        .fetch_all(&*db.pool().await)
        .await
        .expect("throttle keys")
}

/// Forgets every counted failure (logins and signups), as if none had happened.
pub async fn forget_failures(db: &impl Db) {
    sqlx::query("DELETE FROM login_throttle")
        .execute(&*db.pool().await)
        .await
        .expect("forget failures");
}

/// Stores for the account with this email a hash of `password` made with argon2 at
/// `memory_kib` KiB, one pass, one lane: with less memory than the app is configured for,
/// it is what a hash made before a parameter upgrade looks like.
pub async fn store_old_hash(db: &impl Db, email: &str, password: &str, memory_kib: u32) {
    use argon2::password_hash::{PasswordHasher, SaltString};

    let hash = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(memory_kib, 1, 1, None).expect("argon2 parameters"),
    )
    .hash_password(
        password.as_bytes(),
        &SaltString::generate(&mut rand::rngs::OsRng),
    )
    .expect("hash")
    .to_string();
    let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE email = $2")
        .bind(&hash)
        .bind(email)
        .execute(&*db.pool().await)
        .await
        .expect("store hash");
    assert_eq!(done.rows_affected(), 1, "no account {email}");
}

/// Does to the account with this email what a password change does to it (its
/// credential version moves on), without touching its password or its sessions.
pub async fn bump_credential_version(db: &impl Db, email: &str) {
    let done = sqlx::query(
        "UPDATE users SET credential_version = credential_version + 1 WHERE email = $1",
    )
    .bind(email)
    .execute(&*db.pool().await)
    .await
    .expect("bump credential version");
    assert_eq!(done.rows_affected(), 1, "no account {email}");
}

/// What an OIDC session keeps for re-checking its claims at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcTokens {
    /// "" when the provider gave none.
    pub refresh_token: String,
    pub access_token: String,
    /// When (unix seconds) the claims were last checked.
    pub checked_at: i64,
}

/// The re-check tokens of the first stored session; panics when there is no session.
pub async fn oidc_tokens(db: &impl Db) -> OidcTokens {
    let (refresh_token, access_token, checked_at): (String, String, i64) = sqlx::query_as(
        "SELECT oidc_refresh_token, oidc_access_token, oidc_checked_at FROM sessions \
         ORDER BY id",
    )
    .fetch_one(&*db.pool().await)
    .await
    .expect("a session");
    OidcTokens {
        refresh_token,
        access_token,
        checked_at,
    }
}

/// Dates every session's last re-check at the provider `minutes` ago.
pub async fn backdate_oidc_recheck(db: &impl Db, minutes: i64) {
    sqlx::query("UPDATE sessions SET oidc_checked_at = $1")
        .bind(quire::db::now() - minutes * 60)
        .execute(&*db.pool().await)
        .await
        .expect("backdate re-check");
}

/// Lets every session's access token expire.
pub async fn expire_oidc_access_tokens(db: &impl Db) {
    sqlx::query("UPDATE sessions SET oidc_access_expires_at = $1")
        .bind(quire::db::now() - 1)
        .execute(&*db.pool().await)
        .await
        .expect("expire access tokens");
}

/// Overwrites every session's stored refresh token, as someone with write access to
/// the database could.
pub async fn set_oidc_refresh_tokens(db: &impl Db, stored: &str) {
    sqlx::query("UPDATE sessions SET oidc_refresh_token = $1")
        .bind(stored)
        .execute(&*db.pool().await)
        .await
        .expect("set refresh tokens");
}

// ---------------------------------------------------------------------------------------
// Tags and handles (the tags and authors stories)

/// Every tag as stored, (slug, name), by slug.
pub async fn tag_rows(db: &impl Db) -> Vec<(String, String)> {
    sqlx::query_as("SELECT slug, name FROM tags ORDER BY slug")
        .fetch_all(&*db.pool().await)
        .await
        .expect("tags")
}

/// How many links between posts and tags there are.
pub async fn post_tag_count(db: &impl Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM post_tags")
        .fetch_one(&*db.pool().await)
        .await
        .expect("count post_tags")
}

/// Tags every post with the tag `slug` (named `name`), as the form would.
pub async fn tag_every_post(db: &impl Db, slug: &str, name: &str) {
    let pool = db.pool().await;
    sqlx::query("INSERT INTO tags (slug, name) VALUES ($1, $2)")
        .bind(slug)
        .bind(name)
        .execute(&*pool)
        .await
        .expect("insert tag");
    sqlx::query(
        "INSERT INTO post_tags (post_id, tag_id, position) \
         SELECT p.id, t.id, 0 FROM posts p, tags t WHERE t.slug = $1",
    )
    .bind(slug)
    .execute(&*pool)
    .await
    .expect("link posts");
}

/// The handle of the account with this email ("" while it has none).
pub async fn handle_of(db: &impl Db, email: &str) -> String {
    sqlx::query_scalar("SELECT handle FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&*db.pool().await)
        .await
        .expect("a user with that email")
}

/// Takes the account's handle away, as for an account made before handles existed.
pub async fn clear_handle(db: &impl Db, email: &str) {
    sqlx::query("UPDATE users SET handle = '' WHERE email = $1")
        .bind(email)
        .execute(&*db.pool().await)
        .await
        .expect("clear handle");
}

/// Dates the giving up of `handle` `days` earlier than it happened.
pub async fn age_released_handle(db: &impl Db, handle: &str, days: i64) {
    let done =
        sqlx::query("UPDATE handle_history SET released_at = released_at - $1 WHERE handle = $2")
            .bind(days * 86_400)
            .bind(handle)
            .execute(&*db.pool().await)
            .await
            .expect("age handle");
    assert_eq!(done.rows_affected(), 1, "{handle} was never given up");
}

// ---------------------------------------------------------------------------------------
// Mail and password resets

/// Puts every password reset token past its expiry, as waiting 30 minutes would.
pub async fn expire_password_resets(db: &impl Db) {
    sqlx::query("UPDATE password_resets SET expires_at = created_at - 1")
        .execute(&*db.pool().await)
        .await
        .expect("expire reset tokens");
}

/// The stored hashes of live reset tokens (what a leaked table would hold).
pub async fn reset_token_hashes(db: &impl Db) -> Vec<String> {
    sqlx::query_scalar("SELECT token_hash FROM password_resets")
        .fetch_all(&*db.pool().await)
        .await
        .expect("reset tokens")
}

/// Queued messages: (recipient, kind, sealed text body, last error).
pub async fn outbox(db: &impl Db) -> Vec<(String, String, String, String)> {
    sqlx::query_as("SELECT recipient, kind, body_text, last_error FROM outbox ORDER BY id")
        .fetch_all(&*db.pool().await)
        .await
        .expect("outbox")
}

// ---------------------------------------------------------------------------------------
// Email verification

/// Puts every email confirmation link past its expiry, as waiting 24 hours would.
pub async fn expire_email_verifications(db: &impl Db) {
    sqlx::query("UPDATE email_verifications SET expires_at = created_at - 1")
        .execute(&*db.pool().await)
        .await
        .expect("expire confirmation links");
}

/// The stored hashes of confirmation links (what a leaked table would hold).
pub async fn verification_token_hashes(db: &impl Db) -> Vec<String> {
    sqlx::query_scalar("SELECT token_hash FROM email_verifications")
        .fetch_all(&*db.pool().await)
        .await
        .expect("confirmation links")
}

/// Whether the local account with this email has it confirmed.
pub async fn email_confirmed(db: &impl Db, email: &str) -> bool {
    let flag: i64 =
        sqlx::query_scalar("SELECT email_confirmed FROM users WHERE kind = 'local' AND email = $1")
            .bind(email)
            .fetch_one(&*db.pool().await)
            .await
            .expect("the account's confirmation flag");
    flag != 0
}

/// Gives the account with this email a new display name, as its identity provider's
/// claims would at its next login, with no request to quire.
pub async fn rename_user(db: &impl Db, email: &str, name: &str) {
    let done = sqlx::query("UPDATE users SET name = $1 WHERE email = $2")
        .bind(name)
        .bind(email)
        .execute(&*db.pool().await)
        .await
        .expect("rename user");
    assert_eq!(done.rows_affected(), 1, "{email}");
}
