//! What is particular to SQLite databases beyond the SQL they share with PostgreSQL.

use std::path::{Path, PathBuf};

/// The file a `sqlite:` URL names, or None for other backends and in-memory databases.
pub fn database_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Creates the database file a `sqlite:` URL names, empty and readable by its owner only,
/// before SQLite opens it: SQLite would create it with the umask's mode (often
/// world-readable), and its `-wal` and `-shm` files copy the database file's mode, so
/// all three stay private. An existing file is left as it is, with a warning when group or
/// others may read it. Other URLs and in-memory databases: nothing to do.
pub fn create_private(url: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = database_file(url) else {
        return;
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Some(mode) = exposed_mode(&path) {
                log::warn!(
                    "the database file {} can be read by other users (mode {mode:o}); \
                     `chmod 600` it and its -wal and -shm files",
                    path.display()
                );
            }
        }
        // A missing folder and the like: SQLite reports it, with the URL, when it opens.
        Err(_) => {}
    }
}

/// The file's permission bits when group or others may read or write it.
pub fn exposed_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::database_file;
    use std::path::PathBuf;

    #[test]
    fn the_file_a_url_names() {
        let file = |u: &str| database_file(u);
        assert_eq!(
            file("sqlite://data/quire.sqlite?mode=rwc"),
            Some(PathBuf::from("data/quire.sqlite"))
        );
        assert_eq!(file("sqlite:/var/q.db"), Some(PathBuf::from("/var/q.db")));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://:memory:?cache=shared"), None);
        assert_eq!(file("postgres://u@h/db"), None);
    }
}
