-- Full-text search (GET /search). body_text is the post's sanitized HTML as plain text,
-- written with the post; '' for posts saved before this migration (and by any writer
-- that leaves it out), whose Markdown is indexed instead. Every post is indexed, drafts
-- too: visibility is decided when searching, so a post is found the moment it is public.
-- The first 100 000 characters of a body are indexed: a tsvector may not pass 1 MB, and
-- both backends index the same text.
ALTER TABLE posts ADD COLUMN body_text TEXT NOT NULL DEFAULT '';

-- 'simple': exact words, case-insensitive, no stemming or stop words, as SQLite's FTS5
-- table does. Title words weigh A, body words B (see db::search for the ranking).
-- A generated column is recomputed by every write, whoever makes it.
ALTER TABLE posts ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple'::regconfig, title), 'A') ||
    setweight(to_tsvector('simple'::regconfig,
        left(CASE WHEN body_text = '' THEN body_md ELSE body_text END, 100000)), 'B')
) STORED;

CREATE INDEX posts_search ON posts USING GIN (search);
