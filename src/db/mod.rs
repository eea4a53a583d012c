//! The only place with SQL. Every query goes through one `sqlx::AnyPool`, so the same
//! functions serve SQLite and PostgreSQL; see `migrations/` for the paired schemas.

pub mod handles;
pub mod listings;
pub mod oidc_sessions;
pub mod posts;
pub mod rate;
pub mod search;
pub mod sessions;
pub mod sitemap;
pub mod sqlite;
pub mod tags;
pub mod throttle;
pub mod used_once;
pub mod users;

use std::time::Duration;

use rocket::figment::Figment;
use rocket_db_pools::Database;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use time::OffsetDateTime;

/// The application's database, configured under `databases.quire`.
#[derive(Database)]
#[database("quire")]
pub struct Db(pub Pool);

/// A pool over either backend, chosen by the URL's scheme.
#[derive(Clone, Debug)]
pub struct Pool {
    pub inner: AnyPool,
    pub backend: Backend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::ops::Deref for Pool {
    type Target = AnyPool;
    fn deref(&self) -> &AnyPool {
        &self.inner
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("database configuration: {0}")]
    Config(Box<rocket::figment::Error>),
    #[error("databases.quire.url must start with sqlite:// or postgres://, got {0:?}")]
    Scheme(String),
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, PoolError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(PoolError::Scheme(url.to_string()))
        }
    }
}

impl Pool {
    /// Opens a pool; connections are made lazily except the first, so a bad URL or an
    /// unreachable server is reported at start.
    pub async fn connect(config: &rocket_db_pools::Config) -> Result<Pool, PoolError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(&config.url)?;
        // Before sqlx opens (and maybe creates) it: the file and its WAL stay private.
        sqlite::create_private(&config.url);
        let options: AnyConnectOptions = config.url.parse()?;
        let mut pool = AnyPoolOptions::new()
            .max_connections(config.max_connections as u32)
            .min_connections(config.min_connections.unwrap_or(0))
            .acquire_timeout(Duration::from_secs(config.connect_timeout))
            .idle_timeout(config.idle_timeout.map(Duration::from_secs));
        if backend == Backend::Sqlite {
            // rocket_db_pools' SQLite defaults do not apply under Any: set them here.
            // WAL lets readers proceed while a post is being written.
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let inner = pool.connect_with(options).await?;
        Ok(Pool { inner, backend })
    }

    /// Applies pending migrations for this backend, each exactly once even when several
    /// processes start together. On PostgreSQL sqlx holds an advisory lock meanwhile.
    /// SQLite has no such lock, but each migration commits atomically with its record:
    /// a process that read the list before another committed fails on the now-existing
    /// tables, and on a second look finds the migration applied.
    pub async fn migrate(&self) -> Result<(), PoolError> {
        match self.backend {
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.inner)
                    .await?
            }
            Backend::Sqlite => {
                let migrator = sqlx::migrate!("./migrations/sqlite");
                let mut attempt = 0;
                loop {
                    match migrator.run(&self.inner).await {
                        Ok(()) => break,
                        Err(_) if attempt < 4 => {
                            attempt += 1;
                            rocket::tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        // Accounts from before handles existed get theirs before any page links them.
        handles::backfill(&self.inner).await?;
        Ok(())
    }
}

#[rocket::async_trait]
impl rocket_db_pools::Pool for Pool {
    type Connection = sqlx::pool::PoolConnection<sqlx::Any>;
    type Error = PoolError;

    async fn init(figment: &Figment) -> Result<Self, Self::Error> {
        let config: rocket_db_pools::Config = figment
            .extract()
            .map_err(|e| PoolError::Config(Box::new(e)))?;
        let pool = Pool::connect(&config).await?;
        pool.migrate().await?;
        Ok(pool)
    }

    async fn get(&self) -> Result<Self::Connection, Self::Error> {
        Ok(self.inner.acquire().await?)
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

/// Runs an `INSERT/UPDATE ... RETURNING` to completion and returns its one row.
/// `fetch_one` would stop at the first row, and sqlx's SQLite driver only commits the
/// implicit transaction when the statement finishes, so the write could be lost
/// (sqlx issues 2099 and 3430).
pub async fn fetch_returning<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    db: &AnyPool,
) -> sqlx::Result<O>
where
    O: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    query
        .fetch_all(db)
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)
}

/// Succeeds when the database answers a trivial query.
pub async fn ping(db: &AnyPool) -> sqlx::Result<()> {
    sqlx::query("SELECT 1").execute(db).await.map(|_| ())
}

/// Current time as unix seconds, for the counters and single-use records that reckon in
/// seconds (`throttle`, `used_once`).
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Now, to the whole second: the resolution timestamp columns keep, so that a time read
/// back compares equal to the one written.
pub fn current_time() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
}

// Decoding helpers. sqlx 0.7's Any driver decodes only integers, floats, text and bytes,
// and cannot decode NULL into an Option; so flags are 0/1 INTEGERs, timestamps BIGINT
// unix seconds, and absent values '' or 0 in NOT NULL columns. These turn such columns
// into the types the rest of quire sees, so that nothing outside `db` knows the encoding.

/// A 0/1 INTEGER column as a bool.
fn flag(row: &AnyRow, column: &str) -> sqlx::Result<bool> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// A BIGINT unix-seconds column as a time.
fn time_at(row: &AnyRow, column: &str) -> sqlx::Result<OffsetDateTime> {
    from_unix(row.try_get(column)?, column)
}

/// A BIGINT unix-seconds column where 0 means "never".
fn time_or_never(row: &AnyRow, column: &str) -> sqlx::Result<Option<OffsetDateTime>> {
    match row.try_get::<i64, _>(column)? {
        0 => Ok(None),
        secs => from_unix(secs, column).map(Some),
    }
}

fn from_unix(secs: i64, column: &str) -> sqlx::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    })
}

/// A text column holding one of a type's names (`AccountKind`, `ProviderId`).
fn named<T: std::str::FromStr<Err = String>>(row: &AnyRow, column: &str) -> sqlx::Result<T> {
    row.try_get::<String, _>(column)?
        .parse()
        .map_err(|e: String| sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source: e.into(),
        })
}

/// A text column where '' means absent.
fn text_or_none(row: &AnyRow, column: &str) -> sqlx::Result<Option<String>> {
    let s: String = row.try_get(column)?;
    Ok((!s.is_empty()).then_some(s))
}

/// A time as the unix seconds its column holds.
fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// True when the error is a unique-constraint violation, on either backend.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}
