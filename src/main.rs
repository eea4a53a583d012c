use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use quire::auth::local::{NewAccount, SetPasswordError, SignupError};
use quire::auth::LocalProvider;
use quire::config::{self, Config};
use quire::db::{self, users, Pool};

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
    /// logs in; prints what to register there. Exits 0 when login can work.
    Doctor,
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
}

#[rocket::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("quire: {msg}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let figment = quire::secret_key::with_secret_key(config::figment())?;
    let config = Config::from_figment(&figment)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let _ = quire::build(figment)
                .launch()
                .await
                .map_err(|e| format!("could not serve: {e}"))?;
            Ok(())
        }
        Command::Doctor => {
            let Some(oidc) = config.auth.active_oidc() else {
                println!(
                    "auth.providers does not name \"oidc\": local accounts only, nothing to check"
                );
                return Ok(());
            };
            let tokens = quire::keys::Keys::from_figment(&figment)
                .secret_box(quire::keys::Purpose::OidcTokens);
            let provider = quire::auth::oidc::OidcProvider::new(oidc)?.with_secret_box(tokens);
            let report = provider.doctor().await;
            print_doctor(&report);
            if report.ready() {
                println!("\nready: people can log in through {}", oidc.display_name);
                Ok(())
            } else {
                Err("not ready: fix the FAIL lines above".into())
            }
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
