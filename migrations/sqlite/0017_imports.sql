-- What `quire import` brought in, keyed by where it came from: `source` names the export
-- ('wordpress:<site URL>', 'ghost', 'writefreely:<user>', 'markdown'), `source_id` the
-- item in it ('post:<id>', 'upload:<path>'). A second run of the same import skips every
-- key already here, so it adds nothing. `target_id` is the post or upload made; a row
-- stays when that post is deleted later, so re-running an import does not bring back
-- what an author removed.
CREATE TABLE imports (
    source      TEXT   NOT NULL,
    source_id   TEXT   NOT NULL,
    kind        TEXT   NOT NULL,              -- 'post' or 'upload'
    target_id   BIGINT NOT NULL,
    imported_at BIGINT NOT NULL,
    PRIMARY KEY (source, source_id)
);
