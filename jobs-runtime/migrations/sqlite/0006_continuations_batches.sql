-- Job results, continuations and batches. Same columns and tables as the
-- PostgreSQL migration of the same number. Times are Unix milliseconds, UTC.
ALTER TABLE jobs_job ADD COLUMN result          TEXT;    -- JSON: what a Succeeded job returned
ALTER TABLE jobs_job ADD COLUMN parent_id       INTEGER; -- a continuation: the job it awaits
ALTER TABLE jobs_job ADD COLUMN parent_batch_id TEXT;    -- a batch continuation: the batch it awaits
ALTER TABLE jobs_job ADD COLUMN continue_on     TEXT;    -- the parent's final states that enqueue it, comma-separated
ALTER TABLE jobs_job ADD COLUMN parent_result   TEXT;    -- JSON: the parent's result, copied when it is decided
ALTER TABLE jobs_job ADD COLUMN batch_id        TEXT;    -- the batch it belongs to

-- Neither index names `state`, and no statement of the hot path changes
-- their columns, so fetching and finishing jobs never touches them (a
-- partial index over `state` cost SQLite 8% of its drain rate, see 0004).
CREATE INDEX jobs_job_parent       ON jobs_job (parent_id)       WHERE parent_id IS NOT NULL;
CREATE INDEX jobs_job_parent_batch ON jobs_job (parent_batch_id) WHERE parent_batch_id IS NOT NULL;
CREATE INDEX jobs_job_batch        ON jobs_job (batch_id)        WHERE batch_id IS NOT NULL;

-- A batch: a set of jobs (and of nested batches) that finishes when every
-- member has. `state` is Started until then, then Succeeded (every member
-- succeeded), Failed (one did not) or Deleted (cancelled).
CREATE TABLE jobs_batch (
    id          TEXT    PRIMARY KEY CHECK (id <> ''),
    parent_id   TEXT,                   -- the batch it is nested in
    root_id     TEXT    NOT NULL,       -- the outermost batch of its tree (itself at the top)
    description TEXT,
    state       TEXT    NOT NULL CHECK (state IN ('Started', 'Succeeded', 'Failed', 'Deleted')),
    version     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
) WITHOUT ROWID;
CREATE INDEX jobs_batch_started  ON jobs_batch (created_at)  WHERE state = 'Started';
CREATE INDEX jobs_batch_children ON jobs_batch (parent_id)   WHERE parent_id IS NOT NULL;
CREATE INDEX jobs_batch_finished ON jobs_batch (finished_at) WHERE parent_id IS NULL AND state <> 'Started';
CREATE INDEX jobs_batch_tree     ON jobs_batch (root_id);
