-- lode workspace store, version 5: SQL drafts of the review screen. An edit not yet saved (or
-- validated) is kept here when the reviewer moves to another pair or quits, and comes back
-- with the pair. Saving the edit, or discarding the draft, deletes the row.
CREATE TABLE review_drafts (
    pair_id    INTEGER PRIMARY KEY REFERENCES pairs(id),
    sql        TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
