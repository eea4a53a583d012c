//! Running the `quire` binary itself, as an operator or a service manager would.

use std::path::Path;
use std::process::Command;

/// `quire` (the binary Cargo built for this test run) in `dir`, on the database at `url`,
/// in the debug profile. It reads no Rocket.toml and none of this process's `ROCKET_*`
/// variables, so a developer's configuration cannot change what a test sees; the caller
/// adds the arguments, any other `ROCKET_*` and the stdio.
pub fn quire_command(dir: &Path, url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quire"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ROCKET_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        // A few connections each: many instances of the suite share one PostgreSQL.
        .env(
            "ROCKET_DATABASES",
            format!("{{quire={{url=\"{url}\",max_connections=4}}}}"),
        )
        .env("ROCKET_PROFILE", "debug")
        .env("ROCKET_CONFIG", dir.join("absent.toml"));
    cmd
}
