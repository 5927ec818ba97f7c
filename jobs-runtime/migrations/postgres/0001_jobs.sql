-- Jobs and their state history, in the schema the storage was configured
-- with (the migration runs with `search_path` set to it). Same tables,
-- columns and indexes as the SQLite migration of the same number.
CREATE TABLE jobs_job (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             TEXT        NOT NULL CHECK (name <> ''),
    queue            TEXT        NOT NULL CHECK (queue <> ''),
    args             TEXT        NOT NULL,  -- JSON, kept as written
    state            TEXT        NOT NULL CHECK (state IN
                         ('Scheduled', 'Enqueued', 'Processing', 'Succeeded', 'Failed', 'Deleted', 'Awaiting')),
    attempt          INTEGER     NOT NULL DEFAULT 0,
    max_attempts     INTEGER     NOT NULL CHECK (max_attempts >= 1),
    created_at       TIMESTAMPTZ NOT NULL,
    state_changed_at TIMESTAMPTZ NOT NULL,
    run_at           TIMESTAMPTZ,
    lease_expires_at TIMESTAMPTZ,
    server           TEXT,
    reason           TEXT,
    state_data       JSONB
);

-- Partial indexes: only waiting jobs, so dequeue cost does not grow with
-- finished jobs kept.
CREATE INDEX jobs_job_enqueued   ON jobs_job (queue, id)        WHERE state = 'Enqueued';
CREATE INDEX jobs_job_scheduled  ON jobs_job (run_at)           WHERE state = 'Scheduled';
CREATE INDEX jobs_job_processing ON jobs_job (lease_expires_at) WHERE state = 'Processing';

CREATE TABLE jobs_job_state (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id BIGINT      NOT NULL REFERENCES jobs_job (id) ON DELETE CASCADE,
    state  TEXT        NOT NULL,
    at     TIMESTAMPTZ NOT NULL,
    reason TEXT,
    data   JSONB
);
CREATE INDEX jobs_job_state_job ON jobs_job_state (job_id, id);

-- Every move is recorded by these statement-level triggers, one INSERT per
-- statement whatever the batch size. `SET search_path FROM CURRENT` pins
-- the schema, so they work from any session.
CREATE FUNCTION jobs_record_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO jobs_job_state (job_id, state, at, reason, data)
    SELECT id, state, state_changed_at, reason, state_data FROM new_jobs ORDER BY id;
    RETURN NULL;
END
$$;

CREATE FUNCTION jobs_record_moved() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO jobs_job_state (job_id, state, at, reason, data)
    SELECT n.id, n.state, n.state_changed_at, n.reason, n.state_data
    FROM new_jobs n JOIN old_jobs o ON o.id = n.id
    WHERE n.state IS DISTINCT FROM o.state
    ORDER BY n.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_job_record_insert AFTER INSERT ON jobs_job
REFERENCING NEW TABLE AS new_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobs_record_inserted();

CREATE TRIGGER jobs_job_record_move AFTER UPDATE ON jobs_job
REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobs_record_moved();
