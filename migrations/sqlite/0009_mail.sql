-- Mail waiting to be delivered. A message is written in the same transaction as the
-- change that causes it, and deleted once the server accepted it; until then a restart,
-- an SMTP outage or a crash keeps it. Bodies are sealed with a key derived from the
-- secret key (they may hold a reset link). A sender claims a row by moving
-- claimed_until into the future, so that of several instances exactly one sends it.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,              -- sealed
    body_html       TEXT    NOT NULL,              -- sealed
    kind            TEXT    NOT NULL,              -- which mail, for logs: 'password-reset', ...
    created_at      BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    claimed_until   BIGINT  NOT NULL DEFAULT 0,
    claim           TEXT    NOT NULL DEFAULT '',   -- the claiming sender's random token
    last_error      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id);

-- Password reset tokens, by their SHA-256 (hex): at most one per account (a newer request
-- replaces the row, so older links stop working), deleted when used.
CREATE TABLE password_resets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE UNIQUE INDEX password_resets_user ON password_resets (user_id);
