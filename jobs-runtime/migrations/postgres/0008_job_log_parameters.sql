-- A running job's log lines and progress (`ctx.log`, `ctx.progress`), and
-- job parameters (set by client filters and jobs). Same columns, tables
-- and indexes as the SQLite migration of the same number. They go with
-- their job: the expiry deletes its log lines with it, and its parameters
-- go by ON DELETE CASCADE. The log has no foreign key: a line written
-- while its job expires is skipped or left behind, never an error that
-- would cost the other lines of its write.
ALTER TABLE jobs_job ADD COLUMN progress DOUBLE PRECISION; -- 0.0 to 1.0, the latest reported

CREATE TABLE jobs_job_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    BIGINT      NOT NULL,
    attempt   INTEGER     NOT NULL,
    logged_at TIMESTAMPTZ NOT NULL,
    line      TEXT        NOT NULL
);
CREATE INDEX jobs_job_log_job ON jobs_job_log (job_id, id);

CREATE TABLE jobs_job_parameter (
    job_id BIGINT NOT NULL REFERENCES jobs_job (id) ON DELETE CASCADE,
    name   TEXT   NOT NULL CHECK (name <> ''),
    value  TEXT   NOT NULL, -- JSON
    PRIMARY KEY (job_id, name)
);
