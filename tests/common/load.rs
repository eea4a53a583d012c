//! Real processes under real HTTP load, for the stories about stopping and faults: a
//! `quire serve` the test can signal, kill -9 and start again, and browsers (reqwest
//! with their own cookie jar) that sign up, log in and write posts on it.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::Jar;
use reqwest::StatusCode;

use super::process::quire_command;
use super::{csrf_token_in, unique_email, PASSWORD, SECRET_KEY, USER_AGENT};

/// Longest a process may take to answer /healthz after it starts.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One `quire serve` process on 127.0.0.1:`port`, killed (and reaped) when dropped.
pub struct Quire {
    pub name: String,
    pub port: u16,
    child: Child,
    stderr: PathBuf,
}

impl Quire {
    /// Starts `quire serve` in `dir` on the database at `url` and `port`, with the tests'
    /// secret key, `auth` as `ROCKET_AUTH` (e.g. `{argon2={memory_kib=64,iterations=1}}`)
    /// and `env` added; waits until it is healthy.
    pub async fn start(
        dir: &Path,
        url: &str,
        name: &str,
        port: u16,
        env: &[(&str, &str)],
    ) -> Quire {
        let stderr = dir.join(format!("{name}.stderr"));
        let mut cmd = quire_command(dir, url);
        cmd.arg("serve")
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_SECRET_KEY", SECRET_KEY)
            .env("ROCKET_AUTH", "{argon2={memory_kib=64,iterations=1}}")
            .env("ROCKET_LOG_LEVEL", "critical")
            .env("ROCKET_CLI_COLORS", "false");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("quire starts");
        let mut quire = Quire {
            name: name.to_string(),
            port,
            child,
            stderr,
        };
        quire.wait_healthy().await;
        quire
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    async fn wait_healthy(&mut self) {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!(
                    "{} exited ({status}) before it was healthy:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            if let Ok(res) = http.get(self.url("/healthz")).send().await {
                if res.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(
                started.elapsed() < HEALTHY_WITHIN,
                "{} not healthy after {HEALTHY_WITHIN:?}:\n{}",
                self.name,
                self.stderr()
            );
            rocket::tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (libc::SIGTERM, libc::SIGKILL) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid; it is not reaped before Drop.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Waits up to `within` until the kernel holds nothing for this instance to read: no
    /// connection waits in its accept queue and every accepted one has had its bytes read.
    /// A request that reached the machine but not yet the server (its task not yet run on a
    /// busy machine) is not in flight; a stop closes such a connection unanswered, as any
    /// server would. The counts from /proc/net/tcp when time ran out, or None.
    pub async fn wait_until_read(&self, within: Duration) -> Option<(u64, u64)> {
        let started = Instant::now();
        loop {
            let unread = unread_on(self.port);
            if unread == (0, 0) {
                return None;
            }
            if started.elapsed() >= within {
                return Some(unread);
            }
            rocket::tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Its exit status, once it has exited; None while it still runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("child status")
    }

    /// Waits up to `within` for the process to exit; its status, or None if it still runs.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if started.elapsed() > within {
                return None;
            }
            rocket::tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Quire {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a request came back with.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub location: String,
    pub body: String,
}

/// A browser: its own cookies, no redirects followed, a connection of its own per
/// request in flight (as many people at once would have).
#[derive(Clone)]
pub struct Web {
    http: reqwest::Client,
    jar: Arc<Jar>,
}

impl Default for Web {
    fn default() -> Self {
        Self::new()
    }
}

impl Web {
    pub fn new() -> Web {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(USER_AGENT)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("HTTP client");
        Web { http, jar }
    }

    /// Writes a form POST to `path` on `quire`, whole, with this browser's cookies, on a
    /// connection of its own; once this returns the request is with the server (unlike
    /// reqwest's, which may still be queued in the client). `Sent::answer` reads the reply.
    pub async fn send_form(
        &self,
        quire: &Quire,
        path: &str,
        fields: &[(&str, &str)],
    ) -> std::io::Result<Sent> {
        use reqwest::cookie::CookieStore;
        use rocket::tokio::io::AsyncWriteExt;
        let url = quire.url(path).parse().expect("URL");
        let cookies = self
            .jar
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_string))
            .unwrap_or_default();
        let body = super::encode(fields);
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: {USER_AGENT}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Cookie: {cookies}\r\nConnection: close\r\n\r\n{body}",
            quire.port,
            body.len()
        );
        let mut stream = rocket::tokio::net::TcpStream::connect(("127.0.0.1", quire.port)).await?;
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        Ok(Sent { stream })
    }

    pub async fn get(&self, url: &str) -> reqwest::Result<Answer> {
        read(self.http.get(url).send().await?).await
    }

    pub async fn post(&self, url: &str, fields: &[(&str, &str)]) -> reqwest::Result<Answer> {
        read(self.http.post(url).form(fields).send().await?).await
    }

    /// The CSRF token of the form at `url`.
    pub async fn token_from(&self, url: &str) -> String {
        let page = self
            .get(url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(page.status, StatusCode::OK, "GET {url}: {}", page.body);
        csrf_token_in(&page.body)
    }

    /// Signs up `name` on `quire` through the form (logging this browser in) and returns
    /// the email.
    pub async fn sign_up(&self, quire: &Quire, name: &str) -> String {
        let token = self.token_from(&quire.url("/signup")).await;
        let email = unique_email(name);
        let fields = [
            ("csrf_token", token.as_str()),
            ("email", &email),
            ("name", name),
            ("password", PASSWORD),
        ];
        let answer = self
            .post(&quire.url("/signup"), &fields)
            .await
            .expect("signup");
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "signup: {}",
            answer.body
        );
        email
    }

    /// Submits the login form (token read beforehand with `token_from`).
    pub async fn login(&self, url: &str, token: &str, email: &str) -> reqwest::Result<Answer> {
        let fields = [
            ("csrf_token", token),
            ("email", email),
            ("password", PASSWORD),
        ];
        self.post(url, &fields).await
    }

    /// Publishes a post through the new-post form; the answer is a 303 to it when saved.
    pub async fn publish(&self, url: &str, token: &str, title: &str) -> reqwest::Result<Answer> {
        let fields = [
            ("csrf_token", token),
            ("title", title),
            ("body", "Written under load."),
            ("publish", "true"),
        ];
        self.post(url, &fields).await
    }
}

/// A request `Web::send_form` wrote.
pub struct Sent {
    stream: rocket::tokio::net::TcpStream,
}

impl Sent {
    /// The status and Location of the reply (read to the end of the connection).
    pub async fn answer(mut self) -> std::io::Result<(u16, String)> {
        use rocket::tokio::io::AsyncReadExt;
        let mut reply = Vec::new();
        self.stream.read_to_end(&mut reply).await?;
        let reply = String::from_utf8_lossy(&reply);
        let head = reply.split("\r\n\r\n").next().unwrap_or_default();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no HTTP reply: {reply:?}")))?;
        let location = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("location: ")
                    .or(l.strip_prefix("Location: "))
            })
            .unwrap_or_default()
            .to_string();
        Ok((status, location))
    }
}

async fn read(res: reqwest::Response) -> reqwest::Result<Answer> {
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok(Answer {
        status,
        location,
        body: res.text().await?,
    })
}

/// SQLite's own check of the file at `url`: "ok" when the database is intact.
pub async fn integrity_check(url: &str) -> String {
    let pool = super::database::connect(url).await;
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&*pool)
        .await
        .expect("PRAGMA integrity_check");
    rows.into_iter()
        .map(|(r,)| r)
        .collect::<Vec<_>>()
        .join("\n")
}

/// From /proc/net/tcp, for 127.0.0.1:`port`: the connections waiting in the listening
/// socket's accept queue, and the accepted connections with bytes the server has not read.
fn unread_on(port: u16) -> (u64, u64) {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local = format!("0100007F:{port:04X}");
    let (mut queued, mut unread) = (0, 0);
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, address, _, state, queues, ..] = fields[..] else {
            continue;
        };
        if address != local {
            continue;
        }
        let rx = queues
            .split_once(':')
            .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
            .unwrap_or(0);
        match state {
            // LISTEN: rx_queue is the accept backlog.
            "0A" => queued += rx,
            // ESTABLISHED: bytes received and not yet read.
            "01" if rx > 0 => unread += 1,
            _ => {}
        }
    }
    (queued, unread)
}
