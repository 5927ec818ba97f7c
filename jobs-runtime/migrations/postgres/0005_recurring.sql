-- Recurring jobs: one row per schedule. Same columns as the SQLite
-- migration of the same number. `version` grows with every change of the
-- row; a scheduler claims a tick by compare-and-set on it, in the
-- transaction that enqueues the tick's run.
CREATE TABLE jobs_recurring (
    id                TEXT        PRIMARY KEY CHECK (id <> ''),
    job_name          TEXT        NOT NULL CHECK (job_name <> ''),
    args              TEXT        NOT NULL,  -- JSON, kept as written
    queue             TEXT        NOT NULL CHECK (queue <> ''),
    max_attempts      INTEGER     NOT NULL CHECK (max_attempts >= 1),
    cron              TEXT        NOT NULL,
    time_zone         TEXT        NOT NULL,
    misfire           TEXT        NOT NULL,  -- once | skip | each:N
    skip_if_running   BOOLEAN     NOT NULL,
    in_code           BOOLEAN     NOT NULL,  -- defined by #[recurring]
    missing_from_code BOOLEAN     NOT NULL DEFAULT false,
    paused            BOOLEAN     NOT NULL DEFAULT false,
    next_run_at       TIMESTAMPTZ,           -- NULL: never fires again
    last_run_at       TIMESTAMPTZ,
    last_job_id       BIGINT,
    version           BIGINT      NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

-- The schedules that fire, by next run: what the scheduler reads.
CREATE INDEX jobs_recurring_due ON jobs_recurring (next_run_at)
    WHERE NOT paused AND NOT missing_from_code;
