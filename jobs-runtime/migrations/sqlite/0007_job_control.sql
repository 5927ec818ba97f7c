-- Job control: priority within a queue, paused queues and job names,
-- unique jobs and concurrency limits. Same columns, tables and indexes as
-- the PostgreSQL migration of the same number. Times are Unix
-- milliseconds, UTC.
ALTER TABLE jobs_job ADD COLUMN priority INTEGER NOT NULL DEFAULT 0; -- lower numbers are fetched first within a queue
ALTER TABLE jobs_job ADD COLUMN unique_key TEXT;          -- a unique job: the digest of its name and key (and period)
ALTER TABLE jobs_job ADD COLUMN unique_states TEXT;       -- the states it blocks its key in: ',Scheduled,Enqueued,'
ALTER TABLE jobs_job ADD COLUMN concurrency_key TEXT;     -- a limited job: its name, or name#digest for a limit per key
ALTER TABLE jobs_job ADD COLUMN concurrency_limit INTEGER; -- jobs of its key running at once

-- The fetch reads each queue in (priority, id) order. Jobs under a
-- concurrency limit wait in an index of their own, which the fetch of
-- limited jobs reads, so that the fetch of every other job never reads
-- past them.
DROP INDEX jobs_job_enqueued;
CREATE INDEX jobs_job_enqueued ON jobs_job (queue, priority, id)
    WHERE state = 'Enqueued' AND concurrency_key IS NULL;
CREATE INDEX jobs_job_limited ON jobs_job (queue, priority, id)
    WHERE state = 'Enqueued' AND concurrency_key IS NOT NULL;
-- How many jobs of a key run is counted among the Processing jobs
-- (`jobs_job_processing`): at most the workers and prefetch of all
-- servers, and an index of its own would cost every fetch and finish.

-- At most one job of a unique key in the states it names (see the
-- PostgreSQL migration).
CREATE UNIQUE INDEX jobs_job_unique ON jobs_job (unique_key)
    WHERE unique_key IS NOT NULL AND instr(unique_states, ',' || state || ',') > 0;

-- Queues and job names an operator paused: their jobs stay `Enqueued`
-- and no server fetches them until they are resumed.
CREATE TABLE jobs_paused (
    kind      TEXT    NOT NULL CHECK (kind IN ('queue', 'job')),
    name      TEXT    NOT NULL CHECK (name <> ''),
    paused_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
