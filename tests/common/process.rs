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

/// A `quire serve` process on a free port of 127.0.0.1, killed when dropped.
pub struct Served {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Served {
    /// Starts `quire serve` in `dir` on the database at `url`, with the tests' secret key
    /// (so sessions made by the in-process app hold there) and cheap hashing, and waits
    /// until it is healthy. Its stderr goes to `dir/<name>.stderr`, shown if it never is.
    pub async fn start(dir: &Path, url: &str, name: &str) -> Served {
        use std::time::{Duration, Instant};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = dir.join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&log).expect("stderr file");
        let child = quire_command(dir, url)
            .arg("serve")
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_SECRET_KEY", super::SECRET_KEY)
            .env("ROCKET_AUTH", "{argon2={memory_kib=64,iterations=1}}")
            .env("ROCKET_LOG_LEVEL", "critical")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("quire starts");
        let served = Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        let start = Instant::now();
        while http
            .get(served.url("/healthz"))
            .send()
            .await
            .map(|r| r.status())
            .ok()
            != Some(reqwest::StatusCode::OK)
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{name} not healthy: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            rocket::tokio::time::sleep(Duration::from_millis(50)).await;
        }
        served
    }

    /// The address of `path` on this process.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
