//! A real SMTP server for the mail stories: `tests/mail/smtp_server.py` (aiosmtpd,
//! installed by `tests/mail/install.sh` when missing), one process per server, each
//! message it accepts kept as a JSON file in its own folder. Also the certificates for
//! STARTTLS (made here with the `openssl` command) and the `[mail]` settings pointing
//! quire at a server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use rocket::figment::Figment;
use tempfile::TempDir;

/// The `site.url` the mail stories configure; mailed links start with it.
pub const SITE_URL: &str = "http://blog.test";

fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Installs aiosmtpd once per test run if it is missing.
fn ensure_installed() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let status = Command::new("bash")
            .arg(manifest_path("tests/mail/install.sh"))
            .status()
            .expect("bash runs tests/mail/install.sh");
        assert!(
            status.success(),
            "tests/mail/install.sh could not install aiosmtpd"
        );
    });
}

/// A port nothing listens on now (taken and released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One message as the server received it, its parts decoded.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ReceivedMail {
    pub rcpt_to: Vec<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub tls: bool,
}

impl ReceivedMail {
    /// The reset link in the plain-text body.
    pub fn reset_link(&self) -> String {
        let re = regex::Regex::new(r"https?://\S+/password/reset/[A-Za-z0-9_-]+").unwrap();
        re.find(&self.text)
            .unwrap_or_else(|| panic!("no reset link in {:?}", self.text))
            .as_str()
            .to_string()
    }

    /// The reset link's path (what a test browser requests).
    pub fn reset_path(&self) -> String {
        let link = self.reset_link();
        link.strip_prefix(SITE_URL)
            .unwrap_or_else(|| panic!("{link} is not on {SITE_URL}"))
            .to_string()
    }
}

pub struct SmtpServer {
    pub port: u16,
    child: Child,
    dir: TempDir,
}

/// Certificate files for a STARTTLS server on "localhost": a CA the test made and the
/// server's certificate it signed.
pub struct TestCerts {
    pub dir: TempDir,
}

impl TestCerts {
    pub fn make() -> TestCerts {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("the openssl command runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=quire test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.path().join("ext.cnf"),
            "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost\n\
             extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ]);
        TestCerts { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl SmtpServer {
    /// A plain server on a free port.
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(free_port(), None)
    }

    /// A server on `port`; with `certs`, it requires STARTTLS with their certificate.
    pub fn start_on(port: u16, certs: Option<&TestCerts>) -> SmtpServer {
        ensure_installed();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new("python3");
        cmd.arg(manifest_path("tests/mail/smtp_server.py"))
            .args(["--port", &port.to_string()])
            .arg("--out")
            .arg(dir.path());
        if let Some(c) = certs {
            cmd.arg("--cert")
                .arg(c.dir.path().join("server.pem"))
                .arg("--key")
                .arg(c.dir.path().join("server.key"));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts the SMTP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the SMTP server's first line");
        assert!(
            line.starts_with("ready"),
            "SMTP server did not start: {line:?}"
        );
        SmtpServer { port, child, dir }
    }

    /// Every message received so far, oldest first.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            // ".name.json" is a message still being written; the server renames it
            // to "name.json" once whole.
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (up to `secs` seconds) until at least `n` messages arrived; returns them all.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<ReceivedMail> {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < until,
                "waited {secs} s for {n} mails, got {}: {mails:?}",
                mails.len()
            );
            rocket::tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `[mail]` settings that send to this server (plain SMTP on loopback).
    pub fn configure(&self, figment: Figment) -> Figment {
        mail_settings(figment, &format!("smtp://127.0.0.1:{}", self.port))
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `figment` with `[mail]` sending to `smtp_url`, `site.url` set, and retries and polls
/// every second so the stories do not wait long.
pub fn mail_settings(figment: Figment, smtp_url: &str) -> Figment {
    figment
        .merge(("site.url", SITE_URL))
        .merge(("site.title", "Test Blog"))
        .merge(("mail.smtp_url", smtp_url))
        .merge(("mail.from", "Test Blog <blog@blog.test>"))
        .merge(("mail.retry_seconds", 1))
        .merge(("mail.poll_seconds", 1))
}
