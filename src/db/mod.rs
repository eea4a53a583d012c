//! The only place with SQL. Every query goes through one `sqlx::AnyPool`, so the same
//! functions serve SQLite and PostgreSQL; see `migrations/` for the paired schemas.

pub mod export;
pub mod factors;
pub mod handles;
pub mod imports;
pub mod listings;
pub mod media;
pub mod oidc_sessions;
pub mod outbox;
pub mod page_generation;
pub mod passkeys;
pub mod posts;
pub mod rate;
pub mod resets;
pub mod search;
pub mod sessions;
pub mod sitemap;
pub mod sqlite;
pub mod tags;
pub mod throttle;
pub mod used_once;
pub mod users;
pub mod verifications;

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
    /// Ranked search hits of recent queries (db::search), checked against the database.
    pub search_cache: std::sync::Arc<search::Cache>,
    /// When expired sessions were last removed (unix seconds; sessions::sweep_expired).
    pub session_sweep: std::sync::Arc<std::sync::atomic::AtomicI64>,
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
            // WAL lets readers proceed while a post is being written. Each connection
            // has its own page cache (2 MiB by default, so 32 MiB for 16 connections as
            // the database grows); 1 MiB each keeps that bound small, and a page it misses
            // comes from the operating system's cache, shared by all.
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                         PRAGMA cache_size = -1024;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let inner = pool.connect_with(options).await?;
        Ok(Pool {
            inner,
            backend,
            search_cache: Default::default(),
            session_sweep: Default::default(),
        })
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
        backfill_excerpts(&self.inner).await?;
        Ok(())
    }
}

/// Posts read at once by [`backfill_excerpts`]: bodies may be 200 000 characters each.
const EXCERPT_BATCH: i64 = 50;

/// Gives posts saved before excerpts existed the excerpt saving would have given them:
/// `excerpt::excerpt_source` of their Markdown, through `render::render_post` (the same
/// sanitizer and bounds as saving), a batch at a time. Each post is taken off the list
/// once done, so this is work done once (a restart carries on where it stopped; instances
/// starting together at worst render a post twice, and store it once). A post whose
/// excerpt the renderer refuses keeps none, as saving it would have been refused.
async fn backfill_excerpts(db: &AnyPool) -> sqlx::Result<()> {
    loop {
        let batch = posts::awaiting_excerpt(db, EXCERPT_BATCH).await?;
        if batch.is_empty() {
            return Ok(());
        }
        for post in &batch {
            let source = crate::excerpt::excerpt_source(&post.body_md, &post.excerpt_md);
            let html = if source.is_empty() {
                String::new()
            } else {
                render_excerpt(post.id, source).await
            };
            posts::set_awaited_excerpt(db, post, &html).await?;
        }
    }
}

/// An excerpt's HTML as saving renders it; "" when the renderer refuses it. Waits while
/// the renderer is busy (other processes' posts are saved meanwhile), for a while.
async fn render_excerpt(post: crate::domain::PostId, source: &str) -> String {
    use crate::render::{render_post, RenderError};
    let mut waited = 0;
    loop {
        match render_post(source).await {
            Ok(rendered) => return rendered.html,
            Err(RenderError::Busy) if waited < 600 => {
                waited += 1;
                rocket::tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                log::warn!(
                    "post {}: no excerpt from before excerpts existed: {e}",
                    post.0
                );
                return String::new();
            }
        }
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

    /// Does nothing: rocket_db_pools calls this from its shutdown fairing, which Rocket
    /// runs the moment SIGTERM arrives, while requests are still being answered; closing
    /// then turned each of them into a 503. `quire serve` closes the pool itself once
    /// Rocket has finished serving ([`close_after_serving`]).
    async fn close(&self) {}
}

/// Background tasks that use the pool (the mail sender), so that stopping waits for
/// their current work before it closes the pool. Managed state.
#[derive(Default)]
pub struct Background(std::sync::Mutex<Vec<rocket::tokio::task::JoinHandle<()>>>);

impl Background {
    /// Keeps `task` to be waited for at shutdown; it must end once Rocket's shutdown
    /// is triggered and its current piece of work is done.
    pub fn add(&self, task: rocket::tokio::task::JoinHandle<()>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    }
}

/// What `quire serve` does once Rocket's graceful shutdown has answered every request it
/// had: waits up to `within` for the background tasks to finish what they were doing (a
/// mail being delivered), then closes the pool (on SQLite, the last connection to close
/// checkpoints the WAL into the database file). A task still running after `within` is
/// stopped where it is; whatever it held is taken up again after a restart.
pub async fn close_after_serving<P: rocket::Phase>(rocket: &rocket::Rocket<P>, within: Duration) {
    if let Some(background) = rocket.state::<Background>() {
        let tasks = std::mem::take(&mut *background.0.lock().unwrap_or_else(|e| e.into_inner()));
        for mut task in tasks {
            if rocket::tokio::time::timeout(within, &mut task)
                .await
                .is_err()
            {
                log::warn!("a background task was still busy {within:?} after shutdown; stopped");
                task.abort();
            }
        }
    }
    if let Some(db) = Db::fetch(rocket) {
        db.0.inner.close().await;
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

/// A BIGINT read whole. sqlx 0.7's Any driver types a SQLite value by what it holds and
/// decodes every INTEGER as 32 bits, so a time after 2038 (a post scheduled far ahead, an
/// imported date) would come back wrapped. Columns that can hold such values are selected
/// as `CAST(col AS TEXT)` and parsed here; a plain integer is taken too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Big(pub i64);

impl sqlx::Type<sqlx::Any> for Big {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<sqlx::Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Any>>::compatible(ty)
            || <i64 as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Big {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        match <String as sqlx::Decode<sqlx::Any>>::decode(value.clone()) {
            Ok(text) => Ok(Big(text.trim().parse()?)),
            Err(_) => Ok(Big(<i64 as sqlx::Decode<sqlx::Any>>::decode(value)?)),
        }
    }
}

/// A BIGINT unix-seconds column as a time.
fn time_at(row: &AnyRow, column: &str) -> sqlx::Result<OffsetDateTime> {
    from_unix(row.try_get::<Big, _>(column)?.0, column)
}

/// A BIGINT unix-seconds column where 0 means "never".
fn time_or_never(row: &AnyRow, column: &str) -> sqlx::Result<Option<OffsetDateTime>> {
    match row.try_get::<Big, _>(column)?.0 {
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

/// A write transaction that takes SQLite's write lock when it begins (BEGIN IMMEDIATE),
/// waiting its turn under `busy_timeout`. SQLite's default deferred BEGIN takes the lock
/// at the first write instead, and one that finds another writer's commit in between
/// fails with "database is locked" at once, not after waiting. On PostgreSQL it is an
/// ordinary transaction. Dropped unfinished (an error, a cancelled request), it takes its
/// connection out of the pool, and closing that connection rolls the transaction back.
pub struct WriteTx {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl WriteTx {
    pub async fn begin(db: &AnyPool) -> sqlx::Result<WriteTx> {
        let mut conn = db.acquire().await?;
        let begin = if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            "BEGIN IMMEDIATE"
        } else {
            "BEGIN"
        };
        sqlx::query(begin).execute(&mut *conn).await?;
        Ok(WriteTx { conn: Some(conn) })
    }

    /// The transaction's connection, for the statements inside it.
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        self.conn
            .as_mut()
            .expect("an open transaction has its connection")
    }

    pub fn is_sqlite(&mut self) -> bool {
        self.conn().backend_name().eq_ignore_ascii_case("sqlite")
    }

    pub async fn commit(mut self) -> sqlx::Result<()> {
        self.finish("COMMIT").await
    }

    pub async fn rollback(mut self) -> sqlx::Result<()> {
        self.finish("ROLLBACK").await
    }

    async fn finish(&mut self, how: &str) -> sqlx::Result<()> {
        let res = sqlx::query(how).execute(self.conn()).await;
        if res.is_ok() {
            // Back to the pool only when the transaction is surely over.
            self.conn.take();
        }
        res.map(|_| ())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}
