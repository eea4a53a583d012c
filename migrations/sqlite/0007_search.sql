-- Full-text search (GET /search). body_text is the post's sanitized HTML as plain text,
-- written with the post; '' for posts saved before this migration (and by any writer
-- that leaves it out), whose Markdown is indexed instead. Every post is indexed, drafts
-- too: visibility is decided when searching, so a post is found the moment it is public.
-- The first 100 000 characters of a body are indexed (PostgreSQL bounds a tsvector's
-- size, and both backends index the same text).
ALTER TABLE posts ADD COLUMN body_text TEXT NOT NULL DEFAULT '';

-- Exact words, case-insensitive, no stemming or stop words: what PostgreSQL's 'simple'
-- configuration does, so both backends find the same posts.
CREATE VIRTUAL TABLE posts_fts USING fts5(
    title, body, tokenize = 'unicode61 remove_diacritics 0'
);

INSERT INTO posts_fts (rowid, title, body)
    SELECT id, title, substr(body_md, 1, 100000) FROM posts;

-- Triggers keep the index in step with every write, in the same transaction.
CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
    INSERT INTO posts_fts (rowid, title, body) VALUES (
        new.id, new.title,
        substr(CASE WHEN new.body_text = '' THEN new.body_md ELSE new.body_text END, 1, 100000)
    );
END;

CREATE TRIGGER posts_fts_update AFTER UPDATE OF title, body_md, body_text ON posts BEGIN
    DELETE FROM posts_fts WHERE rowid = old.id;
    INSERT INTO posts_fts (rowid, title, body) VALUES (
        new.id, new.title,
        substr(CASE WHEN new.body_text = '' THEN new.body_md ELSE new.body_text END, 1, 100000)
    );
END;

CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
    DELETE FROM posts_fts WHERE rowid = old.id;
END;
