-- Search checks every matching post's visibility (published, published_at). Read from
-- the posts table itself, that is a lookup of a row several kilobytes wide, whose two
-- columns lie past its Markdown and HTML (in an overflow page); this narrow index
-- answers it from a few pages, so a word in every post costs a scan of the index, not
-- of the posts. db::search names it (INDEXED BY).
CREATE INDEX posts_visible ON posts (id, published, published_at);
