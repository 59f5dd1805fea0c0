-- lode workspace store, version 6: the review queue reads from an index. A queue read asks for
-- id, status, generator and question of a run's pairs under a status filter; with this index it
-- never reads the rows themselves (their SQL, analysis and fingerprints), which at 100,000
-- pairs made a read of a few failed pairs scan every row (about 190 ms).
CREATE INDEX pairs_queue ON pairs(run_id, id, status, generator, question);
