//! Email confirmation links (`auth.verify_email`): a 256-bit token (`token::generate`),
//! stored as its hash, valid for `VERIFY_HOURS`, used once; a newer link voids older
//! ones. And the mails around them: the link itself, "someone tried to sign up with your
//! address" for an address that has an account, and the notice to the old address of an
//! email change.

use serde::Serialize;
use sqlx::AnyConnection;

use super::Mailer;
use crate::db::{now, users::User, verifications};
use crate::error::{Error, Result};
use crate::web::paths;

pub const VERIFY_HOURS: i64 = 24;

/// Records a new link for `user` confirming `email` on `conn`, voiding older ones, and
/// returns its token.
pub async fn issue(conn: &mut AnyConnection, user: &User, email: &str) -> sqlx::Result<String> {
    let token = crate::token::generate();
    let now = now();
    verifications::replace(
        conn,
        user.id,
        email,
        &crate::token::hash(&token),
        now,
        now + VERIFY_HOURS * 3600,
    )
    .await?;
    Ok(token)
}

#[derive(Serialize)]
struct LinkValues<'a> {
    name: &'a str,
    email: &'a str,
    link: &'a str,
    hours: i64,
    /// True for the new address of an email change, false after signup.
    change: bool,
}

#[derive(Serialize)]
struct ExistingValues<'a> {
    name: &'a str,
    login_link: &'a str,
    reset_link: &'a str,
    minutes: i64,
}

#[derive(Serialize)]
struct ChangeValues<'a> {
    name: &'a str,
    new_email: &'a str,
    /// True while the new address waits for confirmation; false once it replaced this one.
    pending: bool,
    hours: i64,
    forgot_link: &'a str,
}

impl Mailer {
    /// Issues a link for `user` confirming `email` and queues the mail holding it (sent
    /// to `email`), on `conn`.
    pub async fn queue_verification(
        &self,
        conn: &mut AnyConnection,
        user: &User,
        email: &str,
    ) -> Result<()> {
        let token = issue(conn, user, email).await?;
        let link = self.url(&paths::verify_email(&token));
        let change = email != user.email;
        let subject = if change {
            format!("Confirm your new email address on {}", self.site_title())
        } else {
            format!("Confirm your email address on {}", self.site_title())
        };
        let mail = self
            .compose(
                "verify_email",
                email,
                subject,
                LinkValues {
                    name: &user.name,
                    email,
                    link: &link,
                    hours: VERIFY_HOURS,
                    change,
                },
            )
            .map_err(Error::Internal)?;
        self.queue(conn, &mail).await?;
        Ok(())
    }

    /// Queues, for the owner of an address someone tried to sign up with, the mail that
    /// says so, with a password reset link (issued on `conn`, voiding older ones).
    pub async fn queue_signup_attempt(&self, conn: &mut AnyConnection, user: &User) -> Result<()> {
        let token = super::reset::issue(conn, user).await?;
        let reset_link = self.url(&paths::password_reset(&token));
        let login_link = self.url(paths::LOGIN);
        let mail = self
            .compose(
                "verify_existing",
                &user.email,
                format!(
                    "Someone tried to sign up on {} with your address",
                    self.site_title()
                ),
                ExistingValues {
                    name: &user.name,
                    login_link: &login_link,
                    reset_link: &reset_link,
                    minutes: super::reset::RESET_MINUTES,
                },
            )
            .map_err(Error::Internal)?;
        self.queue(conn, &mail).await?;
        Ok(())
    }

    /// Queues, to `old_email`, the notice that `user`'s email is changing (`pending`) or
    /// changed to `new_email`, on `conn`.
    pub async fn queue_change_notice(
        &self,
        conn: &mut AnyConnection,
        user: &User,
        old_email: &str,
        new_email: &str,
        pending: bool,
    ) -> Result<()> {
        let forgot_link = self.url(paths::PASSWORD_FORGOT);
        let mail = self
            .compose(
                "verify_change_notice",
                old_email,
                if pending {
                    format!(
                        "The email of your account on {} is changing",
                        self.site_title()
                    )
                } else {
                    format!(
                        "The email of your account on {} was changed",
                        self.site_title()
                    )
                },
                ChangeValues {
                    name: &user.name,
                    new_email,
                    pending,
                    hours: VERIFY_HOURS,
                    forgot_link: &forgot_link,
                },
            )
            .map_err(Error::Internal)?;
        self.queue(conn, &mail).await?;
        Ok(())
    }
}
