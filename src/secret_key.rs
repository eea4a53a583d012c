//! The secret key that encrypts session and CSRF cookies. A configured `secret_key`
//! always wins; without one, quire keeps a generated key in a file beside the SQLite
//! database, so logins survive restarts.

use std::io::Write;
use std::path::{Path, PathBuf};

use rocket::figment::Figment;

use crate::db::sqlite;

/// When no `secret_key` is configured, uses the one kept beside the SQLite database,
/// generating it (mode 0600) on first start, so sessions survive restarts.
/// A configured key always wins. With PostgreSQL, or an in-memory SQLite database,
/// there is nowhere to keep one: release then needs `secret_key` configured (instances
/// behind one load balancer must share it anyway).
pub fn with_secret_key(figment: Figment) -> Result<Figment, String> {
    // The base figment always holds Rocket's all-zero placeholder key.
    let configured = figment
        .extract_inner::<rocket::config::SecretKey>("secret_key")
        .is_ok_and(|k| !k.is_zero());
    if configured {
        return Ok(figment);
    }
    let url: String = figment
        .extract_inner("databases.quire.url")
        .unwrap_or_default();
    let Some(db_path) = sqlite::database_file(&url) else {
        return Ok(figment);
    };
    let key_path = secret_key_path(&db_path);
    let key = load_or_create_key(&key_path)
        .map_err(|e| format!("secret key file {}: {e}", key_path.display()))?;
    Ok(figment.merge(("secret_key", key)))
}

pub fn secret_key_path(db_path: &Path) -> PathBuf {
    let dir = db_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join("quire.secret_key")
}

fn load_or_create_key(path: &Path) -> std::io::Result<String> {
    use base64::Engine as _;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = [0u8; 64];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
    let fresh = base64::engine::general_purpose::STANDARD.encode(bytes);
    // create_new: when two processes start at once, one writes and both read its key.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(fresh.as_bytes())?;
            file.sync_all()?;
            Ok(fresh)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = std::fs::read_to_string(path)?;
            let existing = existing.trim();
            let valid = base64::engine::general_purpose::STANDARD
                .decode(existing)
                .is_ok_and(|k| k.len() == 64 || k.len() == 32);
            if !valid {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "does not hold a base64 key of 256 or 512 bits; remove it to generate a new one",
                ));
            }
            Ok(existing.to_string())
        }
        Err(e) => Err(e),
    }
}
