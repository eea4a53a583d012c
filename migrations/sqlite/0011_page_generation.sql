-- Rendered public pages are cached by each instance (src/web/page_cache.rs). This number
-- says whether anything they show may have changed: every write to posts, tags, a post's
-- tags, an author's name or handle, or an account's deletion bumps it, by these
-- triggers, in the write's own transaction. Triggers rather than calls in the code: no
-- write path (the CLI's import, a backfill at start, one added later) can forget it.
-- Instances compare it with the one they cached under; a change empties their cache.
CREATE TABLE page_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT  NOT NULL
);
INSERT INTO page_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER page_generation_posts_insert AFTER INSERT ON posts BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER page_generation_posts_update AFTER UPDATE ON posts BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER page_generation_posts_delete AFTER DELETE ON posts BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER page_generation_tags_insert AFTER INSERT ON tags BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER page_generation_tags_update AFTER UPDATE ON tags BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER page_generation_tags_delete AFTER DELETE ON tags BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER page_generation_post_tags_insert AFTER INSERT ON post_tags BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER page_generation_post_tags_update AFTER UPDATE ON post_tags BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER page_generation_post_tags_delete AFTER DELETE ON post_tags BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
-- Logins touch other columns of users (password rehashes, OIDC claims): only a new name
-- or handle shows on public pages.
CREATE TRIGGER page_generation_users_rename AFTER UPDATE OF name, handle ON users
WHEN OLD.name IS NOT NEW.name OR OLD.handle IS NOT NEW.handle BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER page_generation_users_delete AFTER DELETE ON users BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
END;
