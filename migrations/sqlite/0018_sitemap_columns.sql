-- The sitemap reads every public post's last change (tag and author pages take their
-- newest post's). The narrow indexes that answer visibility now carry updated_at too, so
-- those reads come from index pages instead of the wide posts rows. db::sitemap names
-- posts_visible (INDEXED BY); search keeps using it as before.
DROP INDEX posts_visible;
CREATE INDEX posts_visible ON posts (id, published, published_at, updated_at);
DROP INDEX posts_author_public;
CREATE INDEX posts_author_public ON posts (author_id, published, published_at DESC, id DESC, updated_at);
