//! Mail: messages rendered from templates (plain text and HTML, in the same override
//! folder as the pages), queued in the outbox inside the transaction of the change that
//! causes them, and delivered by a sender task with retries (`sender`). Nothing here
//! ever logs a body: bodies may hold a reset link.

pub mod reset;
pub mod sender;
pub mod transport;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocket::fairing::AdHoc;
use rocket::tokio::sync::Notify;
use rocket_db_pools::Database;
use rocket_dyn_templates::tera::{Context, Tera};
use serde::Serialize;
use sqlx::AnyConnection;
use url::Url;

use crate::auth::local::ThrottleKeys;
use crate::config::{Config, MailConfig};
use crate::db::{outbox, Db};
use crate::keys::{Keys, Purpose, SecretBox};
use crate::web::password::ResetKeys;

/// The mail side of the application, held as managed state: `None` inside when no
/// `[mail]` is configured, and then nothing claims to have sent anything.
pub struct Outgoing(pub Option<Arc<Mailer>>);

impl Outgoing {
    pub fn mailer(&self) -> Option<&Mailer> {
        self.0.as_deref()
    }
}

pub struct Mailer {
    pub config: MailConfig,
    site_title: String,
    site_url: Url,
    templates: Tera,
    seal: SecretBox,
    wake: Notify,
}

/// A rendered message, not yet queued.
pub struct Mail {
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What every mail template gets besides its own values.
#[derive(Serialize)]
struct MailContext<'a, T: Serialize> {
    site_title: &'a str,
    site_url: &'a str,
    #[serde(flatten)]
    values: T,
}

impl Mailer {
    /// The mailer for `config` (whose `mail` and `site.url` are set), with the mail
    /// templates of `override_dir` in place of the built-in ones.
    pub fn new(
        config: &Config,
        keys: &Keys,
        override_dir: Option<&Path>,
    ) -> Result<Option<Mailer>, String> {
        let Some(mail) = config.mail.clone() else {
            return Ok(None);
        };
        let site_url = config
            .site
            .url
            .clone()
            .ok_or("site.url: required when [mail] is set")?;
        let mut templates = Tera::default();
        crate::web::assets::register_templates(&mut templates, override_dir)?;
        // Fails at launch, not at the first mail, when the CA file is unreadable.
        transport::build(&mail)?;
        Ok(Some(Mailer {
            config: mail,
            site_title: config.site.title.clone(),
            site_url,
            templates,
            seal: keys.secret_box(Purpose::MailOutbox),
            wake: Notify::new(),
        }))
    }

    /// An absolute URL on this site for `path` (which starts with '/').
    pub fn url(&self, path: &str) -> String {
        absolute_url(&self.site_url, path)
    }

    pub fn site_title(&self) -> &str {
        &self.site_title
    }

    /// Renders `mail/<kind>.txt` and `mail/<kind>.html` with `values`.
    pub fn compose(
        &self,
        kind: &'static str,
        to: &str,
        subject: String,
        values: impl Serialize,
    ) -> Result<Mail, String> {
        let ctx = MailContext {
            site_title: &self.site_title,
            site_url: self.site_url.as_str(),
            values,
        };
        let ctx = Context::from_serialize(&ctx).map_err(|e| crate::error::chain(&e))?;
        let render = |name: String| {
            self.templates
                .render(&name, &ctx)
                .map_err(|e| format!("{name}: {}", crate::error::chain(&e)))
        };
        Ok(Mail {
            kind,
            to: to.to_string(),
            subject,
            text: render(format!("mail/{kind}.txt"))?,
            html: render(format!("mail/{kind}.html"))?,
        })
    }

    /// Queues `mail` on `conn` (the transaction of the change that causes it), bodies
    /// sealed. Call `wake` once that transaction committed.
    pub async fn queue(&self, conn: &mut AnyConnection, mail: &Mail) -> sqlx::Result<()> {
        let text = self.seal.seal(&mail.text, &seal_context(&mail.to, "text"));
        let html = self.seal.seal(&mail.html, &seal_context(&mail.to, "html"));
        let new = outbox::NewMail {
            recipient: &mail.to,
            subject: &mail.subject,
            body_text: &text,
            body_html: &html,
            kind: mail.kind,
        };
        outbox::enqueue(conn, &new, crate::db::now()).await
    }

    /// Tells this instance's sender that mail was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A claimed message's bodies; None when they cannot be opened (the secret key
    /// changed since they were sealed).
    fn open(&self, m: &outbox::Claimed) -> Option<(String, String)> {
        let text = self
            .seal
            .open(&m.body_text, &seal_context(&m.recipient, "text"))?;
        let html = self
            .seal
            .open(&m.body_html, &seal_context(&m.recipient, "html"))?;
        Some((text, html))
    }
}

fn seal_context(recipient: &str, part: &str) -> String {
    format!("outbox {part} {recipient}")
}

/// `base` (the configured `site.url`, maybe with a path) joined with an absolute `path`.
pub fn absolute_url(base: &Url, path: &str) -> String {
    let base = base.as_str().trim_end_matches('/');
    format!("{base}{path}")
}

/// Builds the mailer at ignite (from the `template_dir` the operator configured, read
/// before the templating fairing replaces it) and starts the sender at liftoff.
pub fn stage(override_dir: Option<PathBuf>) -> AdHoc {
    AdHoc::on_ignite("mail", move |rocket| async move {
        let rocket = rocket.attach(AdHoc::try_on_ignite("mail settings", |rocket| async move {
            let Some(config) = rocket.state::<Config>() else {
                return Err(rocket);
            };
            let keys = Keys::from_figment(rocket.figment());
            match Mailer::new(config, &keys, override_dir.as_deref()) {
                Ok(mailer) => {
                    let keys = ThrottleKeys::from_figment(rocket.figment());
                    Ok(rocket
                        .manage(Outgoing(mailer.map(Arc::new)))
                        .manage(ResetKeys(keys)))
                }
                Err(e) => {
                    log::error!("mail: {e}");
                    Err(rocket)
                }
            }
        }));
        rocket.attach(AdHoc::on_liftoff("mail sender", |rocket| {
            Box::pin(async move {
                let mailer = rocket.state::<Outgoing>().and_then(|o| o.0.clone());
                let db = Db::fetch(rocket).map(|db| db.0.clone());
                if let (Some(mailer), Some(db)) = (mailer, db) {
                    let task = rocket::tokio::spawn(sender::run(mailer, db, rocket.shutdown()));
                    // So that stopping lets the message being delivered finish first.
                    if let Some(background) = rocket.state::<crate::db::Background>() {
                        background.add(task);
                    }
                }
            })
        }))
    })
}
