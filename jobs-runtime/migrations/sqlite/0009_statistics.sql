-- Statistics: how many jobs succeeded and failed per hour (UTC), for the
-- dashboard's totals and graphs, as Hangfire's `stats:succeeded:<hour>`
-- counters. A job counts each time it reaches `Succeeded` or `Failed`;
-- expiring it later takes nothing off. Times are Unix milliseconds, UTC.
-- SQLite's writes are serialized, so a trigger adds to the hour's row at
-- once; PostgreSQL's migration of the same number appends instead and
-- folds. Hours older than the history kept are folded into one row per
-- name at the epoch (0) by the maintenance leader.
CREATE TABLE jobs_counter_hour (
    name  TEXT    NOT NULL, -- 'Succeeded' or 'Failed'
    hour  INTEGER NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (name, hour)
) WITHOUT ROWID;

CREATE TRIGGER jobs_job_count_final AFTER UPDATE OF state ON jobs_job
WHEN NEW.state IN ('Succeeded', 'Failed') AND NEW.state IS NOT OLD.state
BEGIN
    INSERT INTO jobs_counter_hour (name, hour, value)
    VALUES (NEW.state, NEW.state_changed_at - NEW.state_changed_at % 3600000, 1)
    ON CONFLICT (name, hour) DO UPDATE SET value = value + 1;
END;

-- The jobs kept from before this migration count in the hour they
-- finished (each once, as stored now: earlier attempts and expired jobs
-- are not known); hours older than the history kept are folded into the
-- totals by the leader's next fold.
INSERT INTO jobs_counter_hour (name, hour, value)
SELECT state, state_changed_at - state_changed_at % 3600000, count(*)
FROM jobs_job WHERE state IN ('Succeeded', 'Failed')
GROUP BY 1, 2;
