//! Story: an operator manages the database and local accounts from the command line,
//! with the password read from stdin (never from the arguments) and failures reported
//! as one line on stderr.

use std::io::Write;
use std::process::{Output, Stdio};

use rocket::http::Status;
use tempfile::TempDir;

use crate::common::database::connect;
use crate::common::process::quire_command;
use crate::common::*;

/// A working directory for `quire` runs against the SQLite file `db`, reading no
/// Rocket.toml and none of this process's `ROCKET_*` variables.
struct Operator {
    dir: TempDir,
    db: std::path::PathBuf,
    /// A database URL to use instead of the file `db`.
    url: Option<String>,
    env: Vec<(String, String)>,
}

impl Operator {
    fn new() -> Operator {
        let dir = tempfile::Builder::new()
            .prefix("quire-cli-")
            .tempdir()
            .unwrap();
        let db = dir.path().join("q.sqlite");
        Operator {
            dir,
            db,
            url: None,
            env: Vec::new(),
        }
    }

    /// Runs against an existing database instead of a fresh file.
    fn for_url(url: &str) -> Operator {
        Operator {
            url: Some(url.to_string()),
            ..Operator::new()
        }
    }

    fn with_env(mut self, key: &str, value: &str) -> Operator {
        self.env.push((key.into(), value.into()));
        self
    }

    fn url(&self) -> String {
        match &self.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.db.display()),
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = quire_command(self.dir.path(), &self.url());
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("quire runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// (email, name, is_admin) of every account.
    async fn users(&self) -> Vec<(String, String, bool)> {
        users(self)
            .await
            .into_iter()
            .map(|u| (u.email, u.name, u.is_admin))
            .collect()
    }
}

impl Db for Operator {
    async fn pool(&self) -> quire::db::Pool {
        connect(&self.url()).await
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failure: non-zero exit and exactly one line on stderr, "quire: ...", returned.
fn one_line_failure(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded: {out:?}");
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(lines[0].starts_with("quire: "), "stderr: {err}");
    lines[0].to_string()
}

#[rocket::async_test]
async fn migrate_creates_the_schema() {
    let op = Operator::new();
    let out = op.run(&["migrate"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(op.db.exists());
    let tables = sqlite_tables(&op).await;
    for t in TABLES {
        assert!(tables.iter().any(|x| x == t), "{t} missing from {tables:?}");
    }
    // Running it again is harmless.
    assert!(op.run(&["migrate"], "").status.success());
}

#[rocket::async_test]
async fn user_add_creates_an_admin_with_the_password_from_stdin() {
    let op = Operator::new();
    let out = op.run(
        &[
            "user",
            "add",
            "--email",
            " Root@Example.com ",
            "--name",
            "Root",
            "--admin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        op.users().await,
        vec![("root@example.com".to_string(), "Root".to_string(), true)]
    );
    let hash = password_hash(&op, "root@example.com").await;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));

    let out = op.run(
        &[
            "user",
            "add",
            "--email",
            "writer@example.com",
            "--name",
            "Writer",
        ],
        &format!("{OTHER_PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!op.users().await[1].2, "not an admin without --admin");
}

#[rocket::async_test]
async fn user_add_refuses_a_weak_password_in_one_line() {
    let op = Operator::new();
    for weak in ["short one", "password1234567"] {
        let out = op.run(
            &["user", "add", "--email", "a@example.com", "--name", "A"],
            &format!("{weak}\n"),
        );
        let line = one_line_failure(&out);
        assert!(line.contains("password"), "{line}");
        assert!(!line.contains(weak), "{line}");
    }
    assert!(op.users().await.is_empty());
}

#[rocket::async_test]
async fn user_add_refuses_a_taken_email_in_one_line() {
    let op = Operator::new();
    let args = ["user", "add", "--email", "b@example.com", "--name", "B"];
    assert!(op.run(&args, &format!("{PASSWORD}\n")).status.success());
    let out = op.run(
        &["user", "add", "--email", "B@EXAMPLE.com", "--name", "B2"],
        &format!("{OTHER_PASSWORD}\n"),
    );
    let line = one_line_failure(&out);
    assert!(line.contains("already exists"), "{line}");
    assert_eq!(op.users().await.len(), 1);
}

#[rocket::async_test]
async fn a_password_on_the_command_line_is_not_accepted() {
    let op = Operator::new();
    let out = op.run(
        &[
            "user",
            "add",
            "--email",
            "c@example.com",
            "--name",
            "C",
            "--password",
            PASSWORD,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--password"), "{}", stderr(&out));
    assert!(!op.db.exists() || op.users().await.is_empty());
}

#[rocket::async_test]
async fn set_password_changes_it_and_ends_the_accounts_sessions() {
    let app = TestApp::spawn().await;
    let (author, email) = app.author("Nia").await;
    let (bystander, _) = app.author("Oz").await;
    assert!(author.is_logged_in().await);
    let before = password_hash(&app, &email).await;

    let op = Operator::for_url(&app.database.url);
    let out = op.run(
        &["user", "set-password", "--email", &email.to_uppercase()],
        &format!("{OTHER_PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    assert_ne!(password_hash(&app, &email).await, before);
    assert_eq!(session_ids_of(&app, &email).await.len(), 0);
    assert!(!author.is_logged_in().await, "the old session still works");
    assert!(
        bystander.is_logged_in().await,
        "someone else's session ended"
    );

    let b = app.new_browser().await;
    assert_eq!(
        b.login(&email, PASSWORD).await.status(),
        Status::Unauthorized
    );
    assert_eq!(
        b.login(&email, OTHER_PASSWORD).await.status(),
        Status::SeeOther
    );
}

#[rocket::async_test]
async fn set_password_refuses_a_weak_password_and_changes_nothing() {
    let op = Operator::new();
    let args = ["user", "add", "--email", "d@example.com", "--name", "D"];
    assert!(op.run(&args, &format!("{PASSWORD}\n")).status.success());
    let before = password_hash(&op, "d@example.com").await;
    let out = op.run(
        &["user", "set-password", "--email", "d@example.com"],
        "aaaaaaaaaaaaaaaa\n",
    );
    one_line_failure(&out);
    assert_eq!(password_hash(&op, "d@example.com").await, before);
}

#[rocket::async_test]
async fn set_password_for_an_unknown_email_fails_in_one_line() {
    let op = Operator::new();
    assert!(op.run(&["migrate"], "").status.success());
    let out = op.run(
        &["user", "set-password", "--email", "ghost@example.com"],
        &format!("{PASSWORD}\n"),
    );
    let line = one_line_failure(&out);
    assert!(line.contains("ghost@example.com"), "{line}");
}

#[rocket::async_test]
async fn the_cli_creates_accounts_when_signup_is_closed() {
    // The same variable raises the minimum length, which shows the setting is read.
    let op = Operator::new().with_env("ROCKET_AUTH", "{signup=false,password_min_length=20}");
    let out = op.run(
        &["user", "add", "--email", "e@example.com", "--name", "E"],
        "quartz-vellum-84\n",
    );
    let line = one_line_failure(&out);
    assert!(line.contains("at least 20"), "{line}");
    let out = op.run(
        &["user", "add", "--email", "e@example.com", "--name", "E"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(op.users().await.len(), 1);
}
