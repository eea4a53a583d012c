-- Passkeys (WebAuthn credentials) of local accounts: a second factor after the
-- password, or a login of their own (discoverable credentials). `passkey` is the
-- credential as webauthn-rs keeps it (JSON: public key, signature counter, backup
-- flags); credential_id (base64url) is unique across accounts, so an assertion names
-- one account. user_handle is the random id the authenticator stores for the account
-- (the same for all of its passkeys); a discoverable login reports it back.
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT    NOT NULL UNIQUE,
    user_handle   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    passkey       TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- WebAuthn ceremonies under way: the challenge and what webauthn-rs needs to check
-- its answer, named by the SHA-256 of a random token in the browser's private cookie,
-- and bound to who asked ('session:<id>', 'pending:<id>', or 'login' before anyone is
-- known). Taken once (DELETE ... RETURNING), on any instance; dead after expires_at.
CREATE TABLE webauthn_challenges (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT    NOT NULL UNIQUE,
    purpose    TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    user_id    BIGINT  NOT NULL,
    state      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
