-- Uploaded images (src/media): one row per upload, and its files (the re-encoded
-- full-size image and its resized variants) with their bytes, so every instance on one
-- database serves the same files and a database backup holds them. `name` is the
-- full-size file's name in its URL (/media/<id>/<name>); `file_name` the uploader's own
-- name, shown in the library only.
CREATE TABLE media (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    file_name    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    width        BIGINT  NOT NULL,
    height       BIGINT  NOT NULL,
    byte_size    BIGINT  NOT NULL,
    animated     INTEGER NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX media_owner ON media (owner_id, id);

CREATE TABLE media_files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    media_id     INTEGER NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    width        BIGINT  NOT NULL,
    height       BIGINT  NOT NULL,
    etag         TEXT    NOT NULL,
    bytes        BLOB    NOT NULL,
    UNIQUE (media_id, name)
);
