-- Excerpts: `excerpt_md` is the optional excerpt field as the author typed it ('' when
-- none); `excerpt_html` is the excerpt listings and feeds show, rendered and sanitized
-- when the post was saved (from the text before `<!--more-->`, else the field, else the
-- body's first paragraph). Posts saved before this migration list without an excerpt
-- until they are next saved.
--
-- `published_at` now also holds a chosen publication time: a published post whose
-- published_at is still in the future is scheduled, and every public query compares it
-- with the current time (see `VISIBLE` in src/db/posts.rs). `posts_home`
-- (published, published_at DESC, id DESC) serves those queries and their keyset cursor.
ALTER TABLE posts ADD COLUMN excerpt_md TEXT NOT NULL DEFAULT '';
ALTER TABLE posts ADD COLUMN excerpt_html TEXT NOT NULL DEFAULT '';
