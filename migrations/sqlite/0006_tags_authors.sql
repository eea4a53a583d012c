-- Author pages: every account has a handle (a-z, 0-9 and '-', stored lowercase), unique.
-- '' means "none yet": accounts from before this migration get one derived from their
-- name when quire next starts (db::handles::backfill), or `user-<id>`.
ALTER TABLE users ADD COLUMN handle TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX users_handle ON users (handle) WHERE handle <> '';

-- Handles an account gave up, held for it: nobody else may take one within 30 days of
-- `released_at`, and /authors/<old> redirects to the account's page meanwhile.
CREATE TABLE handle_history (
    handle      TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    released_at BIGINT  NOT NULL
);
CREATE INDEX handle_history_user ON handle_history (user_id);

-- Tags: one row per slug (so "Rust" and "rust" are one tag), named as first typed.
CREATE TABLE tags (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT    NOT NULL UNIQUE,
    name TEXT    NOT NULL
);
-- A post's tags, in the order its author typed them.
CREATE TABLE post_tags (
    post_id  INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    tag_id   INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (post_id, tag_id)
);
CREATE INDEX post_tags_tag ON post_tags (tag_id, post_id);
