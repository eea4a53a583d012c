-- How each session was made ('password', 'password+totp', 'recovery-code', 'oidc'; later
-- passkeys) and when its user last proved who they are (its login, or a step-up): the
-- account's sensitive changes need a proof from the last few minutes.
ALTER TABLE sessions ADD COLUMN method TEXT NOT NULL DEFAULT 'password';
ALTER TABLE sessions ADD COLUMN proved_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET method = 'oidc' WHERE provider = 'oidc';
UPDATE sessions SET proved_at = created_at;

-- An account's authenticator app (RFC 6238): at most one. The secret is sealed with a
-- key derived from the secret key. last_step is the time step of the last code
-- accepted: a code is accepted only for a later step, in one UPDATE, so a code (or an
-- older one) replayed on any instance is refused.
CREATE TABLE totp_factors (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    secret       TEXT    NOT NULL,              -- sealed
    created_at   BIGINT  NOT NULL,
    last_step    BIGINT  NOT NULL DEFAULT 0,
    last_used_at BIGINT  NOT NULL DEFAULT 0
);

-- An authenticator app being set up: its secret (sealed) until a code confirms it.
CREATE TABLE totp_enrolments (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT   NOT NULL,                 -- sealed
    created_at BIGINT NOT NULL
);

-- Recovery codes, by their SHA-256 (hex): single use (used_at set once, in one UPDATE).
CREATE TABLE recovery_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    used_at    BIGINT  NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX recovery_codes_user ON recovery_codes (user_id, code_hash);

-- Logins between the password and the second step: no session yet, only this row,
-- named by the SHA-256 of a random token in a private cookie. 'verify': a code is due
-- at /login/verify; 'enrol': the account must set up a factor before it gets a session.
-- Used up (deleted) when the session starts; dead after expires_at.
CREATE TABLE login_pending (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash         TEXT    NOT NULL UNIQUE,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose            TEXT    NOT NULL,
    first_factor       TEXT    NOT NULL,        -- how the first step was made: 'password'
    remember           INTEGER NOT NULL,
    next               TEXT    NOT NULL,
    credential_version BIGINT  NOT NULL,
    created_at         BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL
);
CREATE INDEX login_pending_user ON login_pending (user_id);
