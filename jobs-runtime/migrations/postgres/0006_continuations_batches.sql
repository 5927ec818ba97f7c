-- Job results, continuations and batches. Same columns and tables as the
-- SQLite migration of the same number. Every column added is nullable
-- without a default, so adding it rewrites nothing.
ALTER TABLE jobs_job
    ADD COLUMN result          TEXT,    -- JSON: what a Succeeded job returned
    ADD COLUMN parent_id       BIGINT,  -- a continuation: the job it awaits
    ADD COLUMN parent_batch_id TEXT,    -- a batch continuation: the batch it awaits
    ADD COLUMN continue_on     TEXT,    -- the parent's final states that enqueue it, comma-separated
    ADD COLUMN parent_result   TEXT,    -- JSON: the parent's result, copied when it is decided
    ADD COLUMN batch_id        TEXT;    -- the batch it belongs to

-- A finishing job finds its continuations, and a batch its members, by
-- these; the hot path's jobs have neither, so they never enter them (the
-- last names `state`, so a batch member's every move updates it).
CREATE INDEX jobs_job_parent       ON jobs_job (parent_id)       WHERE parent_id IS NOT NULL;
CREATE INDEX jobs_job_parent_batch ON jobs_job (parent_batch_id) WHERE parent_batch_id IS NOT NULL;
CREATE INDEX jobs_job_batch        ON jobs_job (batch_id, state) WHERE batch_id IS NOT NULL;

-- A batch: a set of jobs (and of nested batches) that finishes when every
-- member has. `state` is Started until then, then Succeeded (every member
-- succeeded), Failed (one did not) or Deleted (cancelled). `version` grows
-- when jobs are added, so that a batch is never finished over a member
-- added concurrently.
CREATE TABLE jobs_batch (
    id          TEXT        PRIMARY KEY CHECK (id <> ''),
    parent_id   TEXT,                       -- the batch it is nested in
    root_id     TEXT        NOT NULL,       -- the outermost batch of its tree (itself at the top)
    description TEXT,
    state       TEXT        NOT NULL CHECK (state IN ('Started', 'Succeeded', 'Failed', 'Deleted')),
    version     BIGINT      NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
CREATE INDEX jobs_batch_started  ON jobs_batch (created_at)  WHERE state = 'Started';
CREATE INDEX jobs_batch_children ON jobs_batch (parent_id)   WHERE parent_id IS NOT NULL;
CREATE INDEX jobs_batch_finished ON jobs_batch (finished_at) WHERE parent_id IS NULL AND state <> 'Started';
CREATE INDEX jobs_batch_tree     ON jobs_batch (root_id);
