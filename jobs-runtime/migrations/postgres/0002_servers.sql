-- Servers and their heartbeats, the maintenance leader, and an index to
-- expire finished jobs. Same as the SQLite migration of the same number.
CREATE TABLE jobs_server (
    id           TEXT        PRIMARY KEY,
    workers      INTEGER     NOT NULL,
    queues       TEXT[]      NOT NULL, -- priority order
    jobs         TEXT[]      NOT NULL, -- the job names it runs
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

-- One row per leadership; `server` leads until `expires_at`.
CREATE TABLE jobs_leader (
    name       TEXT        PRIMARY KEY,
    server     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX jobs_job_finished ON jobs_job (state_changed_at) WHERE state IN ('Succeeded', 'Deleted');
