//! `quire backup --out FILE`: a consistent copy of the live SQLite database, taken while
//! quire serves and writes. On PostgreSQL it names pg_dump, which does the same job.

use std::path::{Path, PathBuf};

use quire::db::{sqlite, Backend};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

/// What `quire backup` wrote, for its one line of output.
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub posts: i64,
    pub accounts: i64,
    pub uploads: i64,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrote {} ({}): {} post(s), {} account(s), {} upload(s); integrity check ok",
            self.path.display(),
            human_size(self.bytes),
            self.posts,
            self.accounts,
            self.uploads
        )
    }
}

/// Backs up the database `url` names into `out`. Err is the message for the operator:
/// on PostgreSQL the pg_dump and pg_restore commands; on SQLite one line, with nothing
/// left at `out` (an existing `out` is refused unless `force`).
pub async fn run(url: &str, out: &Path, force: bool) -> Result<Written, String> {
    match Backend::from_url(url).map_err(|e| e.to_string())? {
        Backend::Postgres => Err(pg_dump_advice(url, out)),
        Backend::Sqlite => {
            let db = sqlite::database_file(url).ok_or(
                "databases.quire.url names an in-memory SQLite database: nothing to back up",
            )?;
            backup_sqlite(&db, out, force).await
        }
    }
}

async fn backup_sqlite(db: &Path, out: &Path, force: bool) -> Result<Written, String> {
    if !db.is_file() {
        return Err(format!("no database file at {}", db.display()));
    }
    let out_name = out
        .file_name()
        .ok_or_else(|| format!("--out {}: name a file, not a folder", out.display()))?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "--out {}: no folder {}",
            out.display(),
            dir.display()
        ));
    }
    match out.symlink_metadata() {
        Ok(meta) if meta.is_dir() => {
            return Err(format!("--out {} is a folder: name a file", out.display()))
        }
        Ok(_) if !force => {
            return Err(format!(
                "{} already exists: choose another name, or add --force to replace it",
                out.display()
            ))
        }
        _ => {}
    }
    refuse_live_files(db, &dir, out_name)?;

    // Written under a private name beside FILE, checked, then put in place whole: a
    // failure at any point leaves no FILE (or the old one, with --force) and no temp file.
    let tmp = Temp::create(&dir, out_name).map_err(|e| {
        format!(
            "--out {}: cannot write in {}: {e}",
            out.display(),
            dir.display()
        )
    })?;
    copy_into(db, &tmp.path)
        .await
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
    std::fs::File::open(&tmp.path)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
    let (posts, accounts, uploads) = check_copy(&tmp.path)
        .await
        .map_err(|e| format!("checking the copy of {}: {e}", db.display()))?;
    let bytes = std::fs::metadata(&tmp.path).map(|m| m.len()).unwrap_or(0);
    tmp.put_in_place(out, force)?;
    Ok(Written {
        path: out.to_path_buf(),
        bytes,
        posts,
        accounts,
        uploads,
    })
}

/// `--force` must never replace the live database or its -wal and -shm files.
fn refuse_live_files(db: &Path, dir: &Path, out_name: &std::ffi::OsStr) -> Result<(), String> {
    let (Ok(db), Ok(dir)) = (db.canonicalize(), dir.canonicalize()) else {
        return Ok(());
    };
    let target = dir.join(out_name);
    let mut live = vec![db.clone()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        live.push(PathBuf::from(name));
    }
    let target = target.canonicalize().unwrap_or(target);
    if live.contains(&target) {
        return Err(format!(
            "--out {}: that is the live database's own file; write the copy elsewhere",
            target.display()
        ));
    }
    Ok(())
}

/// VACUUM INTO on a connection of its own: one read transaction, so it is a consistent
/// snapshot while other connections (and other quire processes) keep writing in WAL mode.
async fn copy_into(db: &Path, tmp: &Path) -> Result<(), String> {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| sqlite_message(&e, db))?;
    let tmp_name = tmp
        .to_str()
        .ok_or("the folder's name is not UTF-8, which SQLite needs")?;
    let copied = sqlx::query("VACUUM INTO ?")
        .bind(tmp_name)
        .execute(&mut conn)
        .await
        .map_err(|e| sqlite_message(&e, db));
    let _ = conn.close().await;
    copied.map(|_| ())
}

/// `PRAGMA integrity_check` on the copy, then what it holds: (posts, accounts, uploads).
/// Opened read-write: checking the search index (FTS5) needs it, though nothing changes.
async fn check_copy(copy: &Path) -> Result<(i64, i64, i64), String> {
    let mut conn = SqliteConnectOptions::new()
        .filename(copy)
        .connect()
        .await
        .map_err(|e| sqlite_message(&e, copy))?;
    let checked = async {
        let rows = sqlx::query("PRAGMA integrity_check")
            .fetch_all(&mut conn)
            .await
            .map_err(|e| sqlite_message(&e, copy))?;
        let verdict: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
            .collect();
        if verdict != ["ok"] {
            return Err(format!("integrity check failed: {}", verdict.join("; ")));
        }
        let mut counts = [0i64; 3];
        for (n, table) in counts.iter_mut().zip(["posts", "users", "media"]) {
            *n = sqlx::query(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&mut conn)
                .await
                .map_err(|_| "it holds no quire tables: is this quire's database?".to_string())?
                .try_get(0)
                .map_err(|e| e.to_string())?;
        }
        Ok((counts[0], counts[1], counts[2]))
    }
    .await;
    let _ = conn.close().await;
    checked
}

/// SQLite's own words for an error, which say what happened ("database or disk is
/// full", "file is not a database"), without sqlx's wrapping.
fn sqlite_message(e: &sqlx::Error, file: &Path) -> String {
    match e {
        sqlx::Error::Database(d) if d.message().contains("not a database") => {
            format!("{} is not a SQLite database", file.display())
        }
        sqlx::Error::Database(d) => d.message().to_string(),
        e => e.to_string(),
    }
}

/// The temp file beside FILE; removed when dropped unless it was put in place.
struct Temp {
    path: PathBuf,
}

impl Temp {
    /// Created empty (VACUUM INTO accepts an empty file) and private: the copy holds
    /// password hashes and sessions, as the database does.
    fn create(dir: &Path, name: &std::ffi::OsStr) -> std::io::Result<Temp> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", &quire::token::generate()[..12]));
        let path = dir.join(tmp_name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Temp { path })
    }

    /// Moves the copy to `out`: without `force` by a hard link, which fails rather than
    /// replace a file that appeared meanwhile; with it by a rename, atomic either way.
    /// Then syncs the folder so the new name survives a crash.
    fn put_in_place(self, out: &Path, force: bool) -> Result<(), String> {
        let placed = if force {
            std::fs::rename(&self.path, out)
        } else {
            match std::fs::hard_link(&self.path, out) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(format!(
                        "{} already exists: choose another name, or add --force to replace it",
                        out.display()
                    ))
                }
                // A file system without hard links: a rename, checked just before.
                Err(_) if !out.exists() => std::fs::rename(&self.path, out),
                other => other,
            }
        };
        placed.map_err(|e| format!("--out {}: {e}", out.display()))?;
        if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
        // Dropping self removes the temp name (gone already after a rename).
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // SQLite removes these when the last connection closes; after a crash of
        // check_copy they could stay.
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = self.path.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// The message for PostgreSQL: pg_dump makes consistent copies of a live database, of
/// uploads too (they are rows); the commands carry the configured URL without its password.
fn pg_dump_advice(url: &str, out: &Path) -> String {
    let url = shell_quote(&without_password(url));
    let file = shell_quote(&out.display().to_string());
    format!(
        "quire backup copies SQLite databases; on PostgreSQL use pg_dump, which makes a \
         consistent copy while quire serves (uploads included: they live in the database):\n\
         \x20 pg_dump --format=custom --no-owner --file {file} {url}\n\
         to restore it (quire stopped):\n\
         \x20 pg_restore --clean --if-exists --no-owner --dbname {url} {file}\n\
         (the password is left out of the URL: pg_dump reads PGPASSWORD or ~/.pgpass, or asks)"
    )
}

/// `url` with any password taken out (user info and a `password=` parameter).
fn without_password(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "\"$DATABASE_URL\"".into();
    };
    let _ = parsed.set_password(None);
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "password")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// `s` as one shell word: as it is when it is plain, else in single quotes.
fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::{shell_quote, without_password};

    #[test]
    fn the_password_never_reaches_the_printed_commands() {
        assert_eq!(
            without_password("postgres://quire:s3cret@db.internal:5432/quire?sslmode=require"),
            "postgres://quire@db.internal:5432/quire?sslmode=require"
        );
        assert_eq!(
            without_password("postgres://quire@db/quire?password=s3cret&sslmode=verify-full"),
            "postgres://quire@db/quire?sslmode=verify-full"
        );
        assert_eq!(
            without_password("postgres://u@h/db?password=x"),
            "postgres://u@h/db"
        );
    }

    #[test]
    fn odd_names_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/backups/blog.dump"), "/backups/blog.dump");
        assert_eq!(shell_quote("my blog's.dump"), "'my blog'\\''s.dump'");
        assert_eq!(
            shell_quote("postgres://u@h/db?sslmode=require&x=1"),
            "'postgres://u@h/db?sslmode=require&x=1'"
        );
    }
}
