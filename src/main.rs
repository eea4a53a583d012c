use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use quire::auth::local::{NewAccount, SetPasswordError, SignupError};
use quire::auth::LocalProvider;
use quire::config::{self, Config};
use quire::db::{self, users, Pool};

mod backup;

#[derive(Parser)]
#[command(name = "quire", version, about = "A self-hostable blog")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the blog (the default); applies pending migrations first.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage local accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Check the OpenID Connect configuration against the live provider before anyone
    /// logs in (printing what to register there), and the mail settings by connecting to
    /// the SMTP server. Exits 0 when both can work.
    Doctor {
        /// Also send one test message to this address (directly, not through the outbox).
        #[arg(long, value_name = "EMAIL")]
        send_test_to: Option<String>,
    },
    /// Write a consistent copy of the SQLite database to FILE while quire keeps serving
    /// (uploads included: they live in the database). On PostgreSQL, prints the pg_dump
    /// command to use instead.
    Backup {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Write every post (Markdown with front matter), the uploads' files and one JSON
    /// document of the whole site (quire-export.json) into DIR, a new or empty folder.
    Export {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Import posts from another engine's export, all or nothing; running it again adds
    /// nothing. Never touches the network.
    #[command(subcommand)]
    Import(ImportCommand),
}

/// The formats `quire import` reads, one subcommand each.
#[derive(Subcommand)]
enum ImportCommand {
    /// Rebuild a site from a `quire export` folder, into a database without posts or
    /// uploads; all or nothing, and a second run adds nothing.
    Quire {
        dir: PathBuf,
        /// Check everything and say what would be imported, writing nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A WordPress export (WXR file, Tools → Export); images are taken from the
    /// wp-content/uploads folder beside it, or --uploads DIR.
    Wordpress {
        #[command(flatten)]
        args: ImportArgs,
        /// The copy of wp-content/uploads to take images from.
        #[arg(long, value_name = "DIR")]
        uploads: Option<PathBuf>,
    },
    /// A Ghost JSON export (Settings → Labs → Export); images are taken from a copy of
    /// Ghost's content/images folder beside it, or --uploads DIR.
    Ghost {
        #[command(flatten)]
        args: ImportArgs,
        /// The copy of Ghost's content/images to take images from.
        #[arg(long, value_name = "DIR")]
        uploads: Option<PathBuf>,
    },
    /// A WriteFreely JSON export (/me/export.json).
    Writefreely {
        #[command(flatten)]
        args: ImportArgs,
    },
    /// A folder of Markdown files with YAML front matter (title, date, tags, draft).
    Markdown {
        #[command(flatten)]
        args: ImportArgs,
    },
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The export file (for markdown: the folder).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The account that gets posts whose author the export does not name or names by an
    /// email no account here has.
    #[arg(long, value_name = "EMAIL")]
    author: Option<String>,
    /// Print what would be imported, and write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a local account; the password is read from a prompt, or from stdin when
    /// it is not a terminal (never from the command line, where others could see it).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Let the account edit and delete anyone's posts.
        #[arg(long)]
        admin: bool,
    },
    /// Set a local account's password (read like `user add`'s) and end its sessions.
    SetPassword {
        #[arg(long)]
        email: String,
    },
    /// Print a one-time password reset link for a local account (valid 30 minutes; a
    /// newer link voids it), for the operator to hand over when the site sends no mail.
    ResetLink {
        #[arg(long)]
        email: String,
    },
    /// Remove a local account's second factors (authenticator app, recovery codes,
    /// passkeys) and end its sessions, for someone who lost them; they log in with the
    /// password alone (and set up a factor again where the site requires one).
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[arg(long)]
        email: String,
    },
}

/// glibc's malloc arenas: at most this many. By default glibc opens up to eight per core
/// as threads contend (request workers, hashing workers, one thread per SQLite
/// connection), and memory freed in one arena is not reused by another, so under a long
/// mixed load the process kept growing; with two it stays level.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: i32 = 2;

/// Blocks at least this large come from the kernel and go back to it when freed. glibc
/// raises its threshold each time such a block is freed (up to 32 MiB), after which the
/// large, short-lived buffers of a request (an upload's decoded image and its variants,
/// a long page while it is rendered and compressed) stay in the heap once freed: under
/// the soak's mixed load the highest RSS of each minute crept up from 106 to 124 MiB in
/// five minutes, and with the threshold fixed it stayed between 102 and 107.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_MMAP_THRESHOLD: i32 = 128 << 10;

fn main() -> ExitCode {
    // Before any thread starts, so that no thread has taken an arena of its own yet.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; nothing else runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
    }
    let cli = Cli::parse();
    rocket::execute(async move {
        match run(cli).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(msg) => {
                eprintln!("quire: {msg}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Serves until SIGTERM (or Ctrl-C) and every request in flight then has been answered
/// (or the `shutdown.grace` and `shutdown.mercy` seconds ran out, which is an error); only
/// then may the pool close, or those requests would fail.
async fn serve(figment: rocket::figment::Figment) -> Result<(), String> {
    use rocket::error::ErrorKind;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let rocket = quire::build(figment)
        .ignite()
        .await
        .map_err(|e| format!("could not serve: {e}"))?;
    let limits = &rocket.config().shutdown;
    let grace = Duration::from_secs(limits.grace.into());
    let mercy = Duration::from_secs(limits.mercy.into());
    let shutdown = rocket.shutdown();
    let requested = rocket::tokio::spawn(async move {
        shutdown.await;
        Instant::now()
    });
    let error = match rocket.launch().await {
        Ok(rocket) => {
            db::close_after_serving(&rocket, mercy).await;
            return Ok(());
        }
        Err(error) => error,
    };
    // When SIGTERM lands while Rocket 0.5 is polling its accept loop, the loop ends
    // before Rocket has seen the signal: it takes that for the server ending by itself
    // and, finding connections still at work, gives up at once ("shutdown failed"), and
    // those requests got no answer. Give them the grace and mercy Rocket would have.
    if let ErrorKind::Shutdown(orbit, None) = error.kind() {
        // At once in that case: the shutdown was requested, only not yet seen.
        let requested = rocket::tokio::time::timeout(Duration::from_secs(1), requested).await;
        if let Ok(Ok(at)) = requested {
            // Rocket's own limit: a second after grace and mercy, connections are dropped.
            let deadline = at + grace + mercy + Duration::from_secs(1);
            while Arc::strong_count(orbit) > 1 && Instant::now() < deadline {
                rocket::tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if Arc::strong_count(orbit) == 1 {
                db::close_after_serving(&**orbit, mercy).await;
                return Ok(());
            }
        }
    }
    Err(format!("could not serve: {error}"))
}

async fn run(cli: Cli) -> Result<(), String> {
    let figment = quire::secret_key::with_secret_key(config::figment())?;
    let config = Config::from_figment(&figment)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(figment).await,
        Command::Doctor { send_test_to } => {
            let mut ready = true;
            if let Some(oidc) = config.auth.active_oidc() {
                let tokens = quire::keys::Keys::from_figment(&figment)
                    .secret_box(quire::keys::Purpose::OidcTokens);
                let provider = quire::auth::oidc::OidcProvider::new(oidc)?.with_secret_box(tokens);
                let report = provider.doctor().await;
                print_doctor(&report);
                for warning in config.auth.warnings() {
                    println!("WARN  {warning}");
                }
                if report.ready() {
                    println!("\nready: people can log in through {}", oidc.display_name);
                } else {
                    ready = false;
                }
            } else {
                println!(
                    "auth.providers does not name \"oidc\": local accounts only, nothing to check"
                );
            }
            ready &= doctor_mail(&figment, &config, send_test_to.as_deref()).await;
            if ready {
                Ok(())
            } else {
                Err("not ready: fix the FAIL lines above".into())
            }
        }
        Command::Backup { out, force } => {
            let url: String = figment
                .extract_inner("databases.quire.url")
                .map_err(|e| format!("databases.quire.url: {e}"))?;
            println!("{}", backup::run(&url, &out, force).await?);
            Ok(())
        }
        Command::Export { out } => {
            let db = open_db(&figment).await?;
            println!("{}", quire::export::export(&db, &out).await?);
            Ok(())
        }
        Command::Import(command) => {
            use quire::import::{Format, Options};
            let bounds = quire::media::Bounds {
                max_bytes: config.media.max_bytes,
                max_pixels: config.media.max_pixels,
            };
            let (format, args, uploads) = match command {
                ImportCommand::Quire { dir, dry_run } => {
                    let db = open_db(&figment).await?;
                    let done = quire::export::import::run(&db, &dir, bounds, dry_run).await?;
                    println!("{done}");
                    return Ok(());
                }
                ImportCommand::Wordpress { args, uploads } => (Format::WordPress, args, uploads),
                ImportCommand::Ghost { args, uploads } => (Format::Ghost, args, uploads),
                ImportCommand::Writefreely { args } => (Format::WriteFreely, args, None),
                ImportCommand::Markdown { args } => (Format::Markdown, args, None),
            };
            let opts = Options {
                path: args.file,
                author: args.author,
                uploads,
                dry_run: args.dry_run,
                bounds,
            };
            // The file is read before the database is opened: a malformed export is
            // reported without touching anything.
            let export = quire::import::read(format, &opts)?;
            let db = open_db(&figment).await?;
            let report = quire::import::import(&db, export, &opts).await?;
            for line in &report.lines {
                println!("{line}");
            }
            Ok(())
        }
        Command::Migrate => {
            open_db(&figment).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User(UserCommand::Add { email, name, admin }) => {
            let db = open_db(&figment).await?;
            let local = LocalProvider::new(&config.auth)?;
            let password = read_password(true)?;
            let account = NewAccount::new(&email, &name, &password);
            match local.create_account(&db, &account, admin).await {
                Ok(user) => {
                    let role = if admin { "admin" } else { "author" };
                    println!("created {role} account {} ({})", user.email, user.name);
                    Ok(())
                }
                Err(SignupError::Invalid(errors)) => Err(errors
                    .into_iter()
                    .map(|(field, msgs)| format!("{field}: {}", msgs.join(" ")))
                    .collect::<Vec<_>>()
                    .join("; ")),
                Err(SignupError::EmailTaken) => Err(format!(
                    "email: an account with {} already exists",
                    account.email
                )),
                Err(SignupError::Internal(e)) => Err(e.to_string()),
            }
        }
        Command::User(UserCommand::SetPassword { email }) => {
            let db = open_db(&figment).await?;
            let local = LocalProvider::new(&config.auth)?;
            let email = quire::auth::local::normalize_email(&email);
            let user = users::local_by_email(&db, &email)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no local account with email {email}"))?;
            let password = read_password(true)?;
            match local.set_password(&db, &user, &password).await {
                Ok(()) => {}
                Err(SetPasswordError::Refused(msg)) => return Err(format!("password: {msg}")),
                Err(SetPasswordError::Internal(e)) => return Err(e.to_string()),
            }
            let ended = db::sessions::delete_all_for_user(&db, user.id)
                .await
                .map_err(|e| e.to_string())?;
            println!("password changed for {email}; {ended} session(s) ended");
            Ok(())
        }
        Command::User(UserCommand::Reset2fa { email }) => {
            let db = open_db(&figment).await?;
            let email = quire::auth::local::normalize_email(&email);
            let user = users::local_by_email(&db, &email)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no local account with email {email}"))?;
            let ended = db::factors::reset(&db, user.id)
                .await
                .map_err(|e| e.to_string())?;
            println!("second factors removed for {email}; {ended} session(s) ended");
            Ok(())
        }
        Command::User(UserCommand::ResetLink { email }) => {
            let site_url = config
                .site
                .url
                .clone()
                .ok_or("site.url: set it to this site's public URL, so the link is absolute")?;
            let db = open_db(&figment).await?;
            let email = quire::auth::local::normalize_email(&email);
            let user = users::local_by_email(&db, &email)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no local account with email {email}"))?;
            let issued = async {
                let mut tx = db.begin().await?;
                let token = quire::mail::reset::issue(&mut tx, &user).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(token)
            };
            let token = issued.await.map_err(|e| e.to_string())?;
            println!("{}", quire::mail::reset::link(&site_url, &token));
            eprintln!(
                "one use, valid for {} minutes; asking for another link voids this one",
                quire::mail::reset::RESET_MINUTES
            );
            Ok(())
        }
    }
}

/// `quire doctor`'s mail part: connects to the configured server (TLS and login
/// included) and, when asked, sends one test message. False when something failed.
async fn doctor_mail(
    figment: &rocket::figment::Figment,
    config: &Config,
    send_test_to: Option<&str>,
) -> bool {
    use quire::mail::{transport, Mailer};
    let Some(mail) = &config.mail else {
        println!(
            "\n[mail] is not set: no mail is sent (the forgot-password page says to contact you)"
        );
        if send_test_to.is_some() {
            println!("FAIL  mail: --send-test-to needs [mail]");
            return false;
        }
        return true;
    };
    let server = &mail.server;
    let how = match server.security {
        config::SmtpSecurity::Plain => "plain SMTP",
        config::SmtpSecurity::StartTls => "STARTTLS",
        config::SmtpSecurity::Tls => "TLS",
    };
    let target = format!("{}:{} ({how})", server.host, server.port);
    match transport::check(mail).await {
        Ok(()) => println!("\n{:<22} connected to {target}", "mail:"),
        Err(e) => {
            println!("\nFAIL  mail: cannot connect to {target}: {e}");
            return false;
        }
    }
    let Some(to) = send_test_to else {
        return true;
    };
    let keys = quire::keys::Keys::from_figment(figment);
    let override_dir: Option<std::path::PathBuf> = figment.extract_inner("template_dir").ok();
    let sent = async {
        let mailer =
            Mailer::new(config, &keys, override_dir.as_deref())?.ok_or("[mail] is not set")?;
        let subject = format!("Test message from {}", mailer.site_title());
        let m = mailer.compose("test", to, subject, ())?;
        let message = transport::message(&mail.from, to, &m.subject, m.text, m.html)?;
        transport::send(&transport::build(mail)?, message)
            .await
            .map_err(|e| e.message)
    };
    match sent.await {
        Ok(()) => {
            println!(
                "{:<22} test message to {to} accepted by the server",
                "mail:"
            );
            true
        }
        Err(e) => {
            println!("FAIL  mail: test message to {to}: {e}");
            false
        }
    }
}

/// Prints `quire doctor`'s findings: one aligned line each, failures and warnings
/// flagged, then what to register at the provider.
fn print_doctor(report: &quire::auth::oidc::DoctorReport) {
    use quire::auth::oidc::CheckStatus;
    for check in &report.checks {
        match check.status {
            CheckStatus::Ok => {
                let label = format!("{}:", check.label);
                println!("{label:<22} {}", check.detail);
            }
            CheckStatus::Warn => println!("WARN  {}: {}", check.label, check.detail),
            CheckStatus::Fail => println!("FAIL  {}: {}", check.label, check.detail),
        }
    }
    if !report.register.is_empty() {
        println!("\nRegister at the provider:");
        for (what, uri) in &report.register {
            let what = format!("{what}:");
            println!("  {what:<26} {uri}");
        }
    }
}

async fn open_db(figment: &rocket::figment::Figment) -> Result<Pool, String> {
    let db_config: rocket_db_pools::Config = figment
        .extract_inner("databases.quire")
        .map_err(|e| format!("databases.quire: {e}"))?;
    let pool = Pool::connect(&db_config).await.map_err(|e| e.to_string())?;
    pool.migrate().await.map_err(|e| e.to_string())?;
    Ok(pool)
}

/// Reads a password: from a hidden prompt (twice) on a terminal, else one line of stdin.
fn read_password(confirm: bool) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        if confirm {
            let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
            if again != first {
                return Err("the passwords did not match".into());
            }
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading stdin: {e}"))?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            return Err("no password on stdin".into());
        }
        Ok(password.to_string())
    }
}
