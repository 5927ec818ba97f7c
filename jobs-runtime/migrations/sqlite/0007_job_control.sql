-- Job control: priority within a queue, and paused queues and job names.
-- Same columns, tables and indexes as the PostgreSQL migration of the
-- same number. Times are Unix milliseconds, UTC.

-- Lower numbers are fetched first within a queue; 0 by default.
ALTER TABLE jobs_job ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;

-- The fetch reads each queue in (priority, id) order. The index still
-- holds only the jobs waiting in `Enqueued`.
DROP INDEX jobs_job_enqueued;
CREATE INDEX jobs_job_enqueued ON jobs_job (queue, priority, id) WHERE state = 'Enqueued';

-- Queues and job names an operator paused: their jobs stay `Enqueued`
-- and no server fetches them until they are resumed.
CREATE TABLE jobs_paused (
    kind      TEXT    NOT NULL CHECK (kind IN ('queue', 'job')),
    name      TEXT    NOT NULL CHECK (name <> ''),
    paused_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
