//! What is particular to SQLite databases beyond the SQL they share with PostgreSQL.

use std::path::PathBuf;

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
