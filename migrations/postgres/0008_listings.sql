-- Author pages page by keyset cursor like the home page: this index is entered where
-- the last page stopped, for any author and any depth.
CREATE INDEX posts_author_public ON posts (author_id, published, published_at DESC, id DESC);

-- Posts saved before excerpts existed (migration 0005) have none. quire renders their
-- excerpt at start, as saving would (db::backfill_excerpts), taking each post off this
-- list once done, so the work is done once, whichever instance does it.
CREATE TABLE excerpt_backfill (
    post_id BIGINT PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE
);
INSERT INTO excerpt_backfill (post_id) SELECT id FROM posts WHERE excerpt_html = '';
