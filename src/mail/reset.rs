//! Password reset links: a 256-bit token (`token::generate`), stored as its hash, valid
//! for `RESET_MINUTES`, used once; a newer link voids the older ones. The same rules for
//! a mailed link and for one `quire user reset-link` prints.

use serde::Serialize;
use sqlx::AnyConnection;
use url::Url;

use super::Mailer;
use crate::db::{now, resets, users::User};
use crate::web::paths;

pub const RESET_MINUTES: i64 = 30;

/// Records a new reset token for `user` on `conn`, voiding older ones, and returns it.
pub async fn issue(conn: &mut AnyConnection, user: &User) -> sqlx::Result<String> {
    let token = crate::token::generate();
    let now = now();
    resets::replace(
        conn,
        user.id,
        &crate::token::hash(&token),
        now,
        now + RESET_MINUTES * 60,
    )
    .await?;
    Ok(token)
}

/// The absolute URL of the reset form for `token`.
pub fn link(site_url: &Url, token: &str) -> String {
    super::absolute_url(site_url, &paths::password_reset(token))
}

#[derive(Serialize)]
struct ResetValues<'a> {
    name: &'a str,
    link: &'a str,
    minutes: i64,
}

#[derive(Serialize)]
struct ChangedValues<'a> {
    name: &'a str,
    forgot_link: &'a str,
}

#[derive(Serialize)]
struct OidcValues<'a> {
    provider: &'a str,
    login_link: &'a str,
}

impl Mailer {
    /// Issues a token for `user` and queues the mail with its link, on `conn`.
    pub async fn queue_reset(
        &self,
        conn: &mut AnyConnection,
        user: &User,
    ) -> crate::error::Result<()> {
        let token = issue(conn, user).await?;
        let link = self.url(&paths::password_reset(&token));
        let mail = self
            .compose(
                "password_reset",
                &user.email,
                format!("Reset your password on {}", self.site_title()),
                ResetValues {
                    name: &user.name,
                    link: &link,
                    minutes: RESET_MINUTES,
                },
            )
            .map_err(crate::error::Error::Internal)?;
        self.queue(conn, &mail).await?;
        Ok(())
    }

    /// Queues the notice that `user`'s password was changed, on `conn`.
    pub async fn queue_changed(
        &self,
        conn: &mut AnyConnection,
        user: &User,
    ) -> crate::error::Result<()> {
        let forgot_link = self.url(paths::PASSWORD_FORGOT);
        let mail = self
            .compose(
                "password_changed",
                &user.email,
                format!("Your password on {} was changed", self.site_title()),
                ChangedValues {
                    name: &user.name,
                    forgot_link: &forgot_link,
                },
            )
            .map_err(crate::error::Error::Internal)?;
        self.queue(conn, &mail).await?;
        Ok(())
    }

    /// Queues, for an address whose account logs in through an OpenID provider, the mail
    /// that says to use the provider (there is no password here to reset).
    pub async fn queue_use_provider(
        &self,
        conn: &mut AnyConnection,
        email: &str,
        provider: &str,
    ) -> crate::error::Result<()> {
        let login_link = self.url(paths::LOGIN);
        let mail = self
            .compose(
                "password_reset_oidc",
                email,
                format!("Log in to {} with {provider}", self.site_title()),
                OidcValues {
                    provider,
                    login_link: &login_link,
                },
            )
            .map_err(crate::error::Error::Internal)?;
        self.queue(conn, &mail).await?;
        Ok(())
    }
}
