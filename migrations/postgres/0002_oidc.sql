-- Accounts from an OpenID provider are keyed by (issuer, subject), never by email.
ALTER TABLE users ADD COLUMN oidc_issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN oidc_subject TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX users_oidc_identity ON users (oidc_issuer, oidc_subject) WHERE kind = 'oidc';

-- The raw ID token (for id_token_hint at logout; tokens are long, so unbounded text) and
-- the OP's session id (for back-channel logout by sid).
ALTER TABLE sessions ADD COLUMN id_token TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN oidc_sid TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_oidc_sid ON sessions (oidc_sid);

-- Single-use values (login states, logout token ids), kept until they would expire anyway,
-- so a replay is refused on every instance.
CREATE TABLE used_once (
    key        TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_once_expires ON used_once (expires_at);
