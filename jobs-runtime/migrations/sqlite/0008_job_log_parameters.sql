-- A running job's log lines and progress (`ctx.log`, `ctx.progress`), and
-- job parameters (set by client filters and jobs). Same columns, tables
-- and indexes as the PostgreSQL migration of the same number. Times are
-- Unix milliseconds, UTC. They go with their job (ON DELETE CASCADE).
-- Unlike PostgreSQL's, the log keeps its foreign key: SQLite's writes are
-- serialized, so a line's check that its job exists cannot race the
-- expiry.
ALTER TABLE jobs_job ADD COLUMN progress REAL; -- 0.0 to 1.0, the latest reported

CREATE TABLE jobs_job_log (
    id        INTEGER PRIMARY KEY,
    job_id    INTEGER NOT NULL REFERENCES jobs_job (id) ON DELETE CASCADE,
    attempt   INTEGER NOT NULL,
    logged_at INTEGER NOT NULL,
    line      TEXT    NOT NULL
);
CREATE INDEX jobs_job_log_job ON jobs_job_log (job_id, id);

CREATE TABLE jobs_job_parameter (
    job_id INTEGER NOT NULL REFERENCES jobs_job (id) ON DELETE CASCADE,
    name   TEXT    NOT NULL CHECK (name <> ''),
    value  TEXT    NOT NULL, -- JSON
    PRIMARY KEY (job_id, name)
) WITHOUT ROWID;
