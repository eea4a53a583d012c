//! The provider's tokens at rest: sealed (`keys::SecretBox`) before they reach the
//! sessions table and opened when read back, each bound to its session and column, so
//! a database dump hands out no working refresh token and a token moved to another
//! session does not open. One that does not open (altered, or `secret_key` rotated)
//! counts as no token, so that session's next re-check ends it.

use super::OidcProvider;
use crate::db::oidc_sessions::{self, RecheckState, Tokens};
use crate::db::Pool;
use crate::domain::SessionId;
use crate::keys::SecretBox;

const REFRESH: &str = "oidc_refresh_token";
const ACCESS: &str = "oidc_access_token";

impl OidcProvider {
    /// The box the tokens are sealed with; `new` gives one with a random key, so the
    /// server passes the one derived from its `secret_key`.
    pub fn with_secret_box(mut self, tokens: SecretBox) -> OidcProvider {
        self.tokens = tokens;
        self
    }

    /// Keeps `tokens` (as the provider gave them) with the session, sealed.
    pub async fn keep_tokens(
        &self,
        db: &Pool,
        session_id: SessionId,
        tokens: &Tokens,
        now: i64,
    ) -> sqlx::Result<()> {
        let sealed = Tokens {
            oidc_refresh_token: self
                .tokens
                .seal(&tokens.oidc_refresh_token, &context(REFRESH, session_id)),
            oidc_access_token: self
                .tokens
                .seal(&tokens.oidc_access_token, &context(ACCESS, session_id)),
            oidc_access_expires_at: tokens.oidc_access_expires_at,
        };
        oidc_sessions::set_tokens(db, session_id, &sealed, now).await
    }

    /// The session's re-check state with its tokens opened ("" for one that does not
    /// open); None when there is no such OIDC session.
    pub(super) async fn recheck_state(
        &self,
        db: &Pool,
        session_id: SessionId,
    ) -> sqlx::Result<Option<RecheckState>> {
        let Some(mut state) = oidc_sessions::recheck_state(db, session_id).await? else {
            return Ok(None);
        };
        state.oidc_refresh_token = self.open(&state.oidc_refresh_token, REFRESH, session_id);
        state.oidc_access_token = self.open(&state.oidc_access_token, ACCESS, session_id);
        Ok(Some(state))
    }

    fn open(&self, sealed: &str, column: &str, session_id: SessionId) -> String {
        self.tokens
            .open(sealed, &context(column, session_id))
            .unwrap_or_else(|| {
                log::info!(
                    "session {session_id}: the stored {column} does not open (altered, or \
                     secret_key changed); treated as none"
                );
                String::new()
            })
    }
}

/// What a token is bound to: its column and its session.
fn context(column: &str, session_id: SessionId) -> String {
    format!("{column} of session {}", session_id.0)
}
