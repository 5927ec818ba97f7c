-- Jobs and their state history. Table names are prefixed with `jobs_` so
-- that they live beside the application's own tables in one database.
-- Times are Unix milliseconds, UTC.
CREATE TABLE jobs_job (
    id               INTEGER PRIMARY KEY AUTOINCREMENT, -- AUTOINCREMENT: ids are never reused
    name             TEXT    NOT NULL CHECK (name <> ''),
    queue            TEXT    NOT NULL CHECK (queue <> ''),
    args             TEXT    NOT NULL,                  -- JSON
    state            TEXT    NOT NULL CHECK (state IN
                         ('Scheduled', 'Enqueued', 'Processing', 'Succeeded', 'Failed', 'Deleted', 'Awaiting')),
    attempt          INTEGER NOT NULL DEFAULT 0,        -- attempts started; fences finishing calls
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    created_at       INTEGER NOT NULL,
    state_changed_at INTEGER NOT NULL,
    run_at           INTEGER,                           -- Scheduled: when it is due
    lease_expires_at INTEGER,                           -- Processing: when it may be rescued
    server           TEXT,                              -- Processing: who holds it
    reason           TEXT,                              -- why it moved into its state
    state_data       TEXT                               -- JSON details of that move
);

-- Partial indexes: each covers only the jobs waiting in one state, so the
-- cost of fetching, promoting and rescuing does not grow with finished jobs.
CREATE INDEX jobs_job_enqueued   ON jobs_job (queue, id)        WHERE state = 'Enqueued';
CREATE INDEX jobs_job_scheduled  ON jobs_job (run_at)           WHERE state = 'Scheduled';
CREATE INDEX jobs_job_processing ON jobs_job (lease_expires_at) WHERE state = 'Processing';

-- Every move of every job, oldest first, written by the triggers below so
-- that no code path can move a job without recording it.
CREATE TABLE jobs_job_state (
    id     INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs_job (id) ON DELETE CASCADE,
    state  TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    reason TEXT,
    data   TEXT
);
CREATE INDEX jobs_job_state_job ON jobs_job_state (job_id, id);

CREATE TRIGGER jobs_job_record_insert AFTER INSERT ON jobs_job
BEGIN
    INSERT INTO jobs_job_state (job_id, state, at, reason, data)
    VALUES (NEW.id, NEW.state, NEW.state_changed_at, NEW.reason, NEW.state_data);
END;

CREATE TRIGGER jobs_job_record_move AFTER UPDATE OF state ON jobs_job
WHEN NEW.state IS NOT OLD.state
BEGIN
    INSERT INTO jobs_job_state (job_id, state, at, reason, data)
    VALUES (NEW.id, NEW.state, NEW.state_changed_at, NEW.reason, NEW.state_data);
END;
