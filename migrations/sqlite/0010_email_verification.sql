-- Email verification (auth.verify_email). Accounts from before this migration, and every
-- account made while the setting is off, count as confirmed: the default is 1. Accounts
-- from an OpenID provider are confirmed by it.
ALTER TABLE users ADD COLUMN email_confirmed INTEGER NOT NULL DEFAULT 1;

-- Confirmation links, by their SHA-256 (hex): at most one per account (a newer link
-- replaces the row, so older links stop working), deleted when used. `email` is the
-- address the link confirms: the account's own after signup, or the new address of an
-- email change, which replaces the account's only when confirmed.
CREATE TABLE email_verifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE UNIQUE INDEX email_verifications_user ON email_verifications (user_id);
