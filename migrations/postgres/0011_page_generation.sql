-- Rendered public pages are cached by each instance (src/web/page_cache.rs). This number
-- says whether anything they show may have changed: every write to posts, tags, a post's
-- tags, an author's name or handle, or an account's deletion bumps it, by these
-- triggers, in the write's own transaction. Triggers rather than calls in the code: no
-- write path (the CLI's import, a backfill at start, one added later) can forget it.
-- Instances compare it with the one they cached under; a change empties their cache.
CREATE TABLE page_generation (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO page_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION page_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE page_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

-- Once per statement: a write of many rows bumps (and locks the one row) once.
CREATE TRIGGER page_generation_posts AFTER INSERT OR UPDATE OR DELETE ON posts
    FOR EACH STATEMENT EXECUTE FUNCTION page_generation_bump();
CREATE TRIGGER page_generation_tags AFTER INSERT OR UPDATE OR DELETE ON tags
    FOR EACH STATEMENT EXECUTE FUNCTION page_generation_bump();
CREATE TRIGGER page_generation_post_tags AFTER INSERT OR UPDATE OR DELETE ON post_tags
    FOR EACH STATEMENT EXECUTE FUNCTION page_generation_bump();
-- Logins touch other columns of users (password rehashes, OIDC claims): only a new name
-- or handle shows on public pages.
CREATE TRIGGER page_generation_users_rename AFTER UPDATE OF name, handle ON users
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.handle IS DISTINCT FROM NEW.handle)
    EXECUTE FUNCTION page_generation_bump();
CREATE TRIGGER page_generation_users_delete AFTER DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION page_generation_bump();
