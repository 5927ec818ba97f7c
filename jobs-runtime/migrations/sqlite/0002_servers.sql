-- Servers and their heartbeats, the maintenance leader, and an index to
-- expire finished jobs. Times are Unix milliseconds, UTC.
CREATE TABLE jobs_server (
    id           TEXT    PRIMARY KEY,
    workers      INTEGER NOT NULL,
    queues       TEXT    NOT NULL, -- JSON array, priority order
    jobs         TEXT    NOT NULL, -- JSON array of the job names it runs
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

-- One row per leadership; `server` leads until `expires_at`.
CREATE TABLE jobs_leader (
    name       TEXT    PRIMARY KEY,
    server     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX jobs_job_finished ON jobs_job (state_changed_at) WHERE state IN ('Succeeded', 'Deleted');
