-- Statistics: how many jobs succeeded and failed per hour (UTC), for the
-- dashboard's totals and graphs, as Hangfire's `stats:succeeded:<hour>`
-- counters. A job counts each time it reaches `Succeeded` or `Failed`;
-- expiring it later takes nothing off. Each batch of outcomes appends its
-- counts to jobs_counter in the statement that records them (no row is
-- updated, so completers never wait on one another); the maintenance
-- leader folds the appended rows into jobs_counter_hour every few seconds,
-- and hours older than the history kept into one row per name at the
-- epoch. Reads add both tables. The SQLite migration of the same number
-- has jobs_counter_hour only, kept by a trigger.
CREATE TABLE jobs_counter (
    id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name  TEXT        NOT NULL, -- 'Succeeded' or 'Failed'
    hour  TIMESTAMPTZ NOT NULL,
    value BIGINT      NOT NULL
);

CREATE TABLE jobs_counter_hour (
    name  TEXT        NOT NULL,
    hour  TIMESTAMPTZ NOT NULL, -- the epoch for hours older than the history kept
    value BIGINT      NOT NULL,
    PRIMARY KEY (name, hour)
);

-- The jobs kept from before this migration count in the hour they
-- finished (each once, as stored now: earlier attempts and expired jobs
-- are not known); hours older than the history kept are folded into the
-- totals by the leader's next fold.
INSERT INTO jobs_counter_hour (name, hour, value)
SELECT state, date_trunc('hour', state_changed_at, 'UTC'), count(*)
FROM jobs_job WHERE state IN ('Succeeded', 'Failed')
GROUP BY 1, 2;
