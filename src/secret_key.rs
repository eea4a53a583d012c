//! The secret key that encrypts session and CSRF cookies. A configured `secret_key`
//! always wins; without one, quire keeps a generated key in a file beside the SQLite
//! database, so logins survive restarts.

use std::io::Write;
use std::path::{Path, PathBuf};

use rocket::figment::Figment;

use crate::db::sqlite;

/// When no `secret_key` is configured, uses the one kept beside the SQLite database,
/// generating it (mode 0600, written whole before it appears) on first start, so sessions survive restarts.
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

/// How long a reader waits for a key file another process is still writing (one made by
/// an older quire, which created the file before writing it).
const READ_RETRIES: u32 = 20;

fn load_or_create_key(path: &Path) -> std::io::Result<String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    if path.exists() {
        return read_key(path);
    }
    // Written whole under a name of our own, then linked into place: the link fails when
    // another process got there first, and either way the file at `path` is complete
    // from the moment it exists, so every process starting together reads one key.
    let fresh = generate();
    let tmp = dir.join(format!(
        ".quire.secret_key.{}.{}",
        std::process::id(),
        crate::token::generate()
    ));
    write_private(&tmp, &fresh)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(fresh),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(e),
    }
}

/// 512 random bits, base64.
fn generate() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 64];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Creates `path` (which must not exist) readable by its owner only, holding `key`.
fn write_private(path: &Path, key: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(key.as_bytes())?;
    file.sync_all()
}

/// The key in an existing file, retrying briefly while it is empty or short (still being
/// written); warns when others may read it.
fn read_key(path: &Path) -> std::io::Result<String> {
    use base64::Engine as _;
    let mut attempt = 0;
    loop {
        let existing = std::fs::read_to_string(path)?;
        let existing = existing.trim();
        let valid = base64::engine::general_purpose::STANDARD
            .decode(existing)
            .is_ok_and(|k| k.len() == 64 || k.len() == 32);
        if valid {
            if let Some(mode) = sqlite::exposed_mode(path) {
                // Rocket's logger is not set up yet at this point.
                eprintln!(
                    "quire: warning: the secret key file {} can be read by other users \
                     (mode {mode:o}); anyone who reads it can forge session cookies. \
                     `chmod 600` it.",
                    path.display()
                );
            }
            return Ok(existing.to_string());
        }
        if attempt == READ_RETRIES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "does not hold a base64 key of 256 or 512 bits; remove it to generate a new one",
            ));
        }
        attempt += 1;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
