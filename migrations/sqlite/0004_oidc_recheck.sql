-- What re-checking an OIDC session's claims at the provider needs (auth.oidc.recheck_minutes):
-- the refresh token (when the provider gave one), the access token and when it expires,
-- and when the claims were last checked. Tokens are long, so unbounded text.
ALTER TABLE sessions ADD COLUMN oidc_refresh_token TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN oidc_access_token TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN oidc_access_expires_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN oidc_checked_at BIGINT NOT NULL DEFAULT 0;
-- Sessions from before this migration have nothing to re-check with: they end once
-- recheck_minutes have passed since they started.
UPDATE sessions SET oidc_checked_at = created_at WHERE provider = 'oidc';

-- Per-client counters of requests that make quire call the OIDC provider (starting a
-- login, exchanging a code that turns out junk); in the database so every instance
-- counts the same requests.
CREATE TABLE rate_limit (
    key          TEXT   PRIMARY KEY,
    hits         BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
CREATE INDEX rate_limit_window ON rate_limit (window_start);
