-- Recurring jobs: one row per schedule. Times are Unix milliseconds, UTC.
-- `version` grows with every change of the row; a scheduler claims a tick
-- by compare-and-set on it, in the transaction that enqueues the tick's
-- run.
CREATE TABLE jobs_recurring (
    id                TEXT    PRIMARY KEY CHECK (id <> ''),
    job_name          TEXT    NOT NULL CHECK (job_name <> ''),
    args              TEXT    NOT NULL,           -- JSON
    queue             TEXT    NOT NULL CHECK (queue <> ''),
    max_attempts      INTEGER NOT NULL CHECK (max_attempts >= 1),
    cron              TEXT    NOT NULL,
    time_zone         TEXT    NOT NULL,
    misfire           TEXT    NOT NULL,           -- once | skip | each:N
    skip_if_running   INTEGER NOT NULL,           -- boolean
    in_code           INTEGER NOT NULL,           -- defined by #[recurring]
    missing_from_code INTEGER NOT NULL DEFAULT 0,
    paused            INTEGER NOT NULL DEFAULT 0,
    next_run_at       INTEGER,                    -- NULL: never fires again
    last_run_at       INTEGER,
    last_job_id       INTEGER,
    version           INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) WITHOUT ROWID;

-- The schedules that fire, by next run: what the scheduler reads.
CREATE INDEX jobs_recurring_due ON jobs_recurring (next_run_at)
    WHERE NOT paused AND NOT missing_from_code;
