//! Which database the suite runs against. By default each test gets a SQLite file in its
//! temporary directory. With `QUIRE_TEST_DATABASE=postgres://user@host:port/db` each test
//! gets a fresh PostgreSQL database (created through that URL, dropped when the test
//! ends). A PostgreSQL that cannot be reached fails the test: it never silently falls
//! back to SQLite.

use std::path::Path;

use sqlx::Connection;

pub const ENV: &str = "QUIRE_TEST_DATABASE";

/// The PostgreSQL admin URL when the suite is told to use PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(ENV) {
        Ok(v) if v.starts_with("postgres://") || v.starts_with("postgresql://") => Some(v),
        Ok(v) if v.is_empty() || v == "sqlite" => None,
        Ok(v) => panic!("{ENV} must be a postgres:// URL or \"sqlite\", got {v:?}"),
        Err(_) => None,
    }
}

pub fn is_postgres() -> bool {
    postgres_admin_url().is_some()
}

/// A small pool on the database at `url`, for arranging and asserting from outside the
/// app under test (a `quire` process, several instances).
pub async fn connect(url: &str) -> quire::db::Pool {
    let config = rocket_db_pools::Config {
        url: url.to_string(),
        min_connections: None,
        max_connections: 2,
        connect_timeout: 5,
        idle_timeout: None,
        extensions: None,
    };
    quire::db::Pool::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("database {url}: {e}"))
}

/// A database owned by one test.
pub struct TestDatabase {
    pub url: String,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A SQLite file in `dir`, or a new PostgreSQL database.
    pub fn create(dir: &Path) -> TestDatabase {
        match postgres_admin_url() {
            None => TestDatabase {
                url: format!("sqlite://{}?mode=rwc", dir.join("quire.sqlite").display()),
                postgres: None,
            },
            Some(admin) => {
                let name = format!(
                    "quire_test_{}_{}",
                    std::process::id(),
                    super::COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                let sql = format!("CREATE DATABASE \"{name}\"");
                admin_execute(&admin, &sql).unwrap_or_else(|e| {
                    panic!("{ENV}={admin}: cannot create a test database on PostgreSQL: {e}")
                });
                TestDatabase {
                    url: with_database(&admin, &name),
                    postgres: Some((admin, name)),
                }
            }
        }
    }

    /// A SQLite file in `dir`, whatever the suite's backend (for stories that are about
    /// the file itself, like the secret key kept beside it).
    pub fn sqlite(dir: &Path) -> TestDatabase {
        TestDatabase {
            url: format!("sqlite://{}?mode=rwc", dir.join("quire.sqlite").display()),
            postgres: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.postgres {
            // FORCE ends the connections the test's pools still hold.
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            if let Err(e) = admin_execute(admin, &sql) {
                eprintln!("could not drop test database {name}: {e}");
            }
        }
    }
}

/// `admin` with its database name replaced by `name`.
pub fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// Runs one statement on its own thread and runtime, so it works from sync code, async
/// tests and `Drop` alike.
fn admin_execute(admin: &str, sql: &str) -> Result<(), String> {
    let (admin, sql) = (admin.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = rocket::tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let mut conn = sqlx::postgres::PgConnection::connect(&admin)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            conn.close().await.map_err(|e| e.to_string())
        })
    })
    .join()
    .map_err(|_| "admin thread panicked".to_string())?
}
