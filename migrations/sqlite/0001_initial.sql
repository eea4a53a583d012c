-- Timestamps are unix seconds and flags are 0/1 integers, so that the same queries decode
-- identically through sqlx's Any driver on SQLite and PostgreSQL. Columns are NOT NULL
-- with an "absent" value ('' or 0): sqlx 0.7's Any driver cannot decode NULL into Option.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,              -- 'local' or 'oidc'
    email         TEXT    NOT NULL,              -- trimmed and lowercased
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL DEFAULT '', -- '' for accounts without a local password
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL
);
-- Email identifies local accounts only; identities from an IdP never collide with them.
CREATE UNIQUE INDEX users_local_email ON users (email) WHERE kind = 'local';

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT    NOT NULL UNIQUE,        -- SHA-256 of the cookie token, hex
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider     TEXT    NOT NULL,
    remember     INTEGER NOT NULL,
    user_agent   TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL                -- absolute limit; the idle limit is checked against last_seen_at
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE posts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    slug         TEXT    NOT NULL UNIQUE,
    title        TEXT    NOT NULL,
    body_md      TEXT    NOT NULL,
    body_html    TEXT    NOT NULL,               -- rendered and sanitized when saved
    published    INTEGER NOT NULL DEFAULT 0,
    published_at BIGINT   NOT NULL DEFAULT 0,   -- 0 until first published
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX posts_home ON posts (published, published_at DESC, id DESC);
CREATE INDEX posts_author ON posts (author_id, updated_at DESC);

-- Failed-login counters keyed by 'account:<email>' or 'ip:<address>'; kept in the
-- database so that every instance behind a load balancer counts the same failures.
CREATE TABLE login_throttle (
    key          TEXT   PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX login_throttle_updated ON login_throttle (updated_at);
