-- Numbered as the PostgreSQL migration that adds an index of the rarely
-- listed states (Scheduled, Failed, Deleted, Awaiting) for pages of jobs
-- by state. SQLite does without it: measured side by side with 32 workers
-- and no-op jobs, keeping that partial index up to date cost SQLite 8% of
-- its drain rate (47,000 against 51,000 jobs/s), although the hot path's
-- rows never enter it. A page of a rare state walks the primary key back
-- instead; nothing changes here.
SELECT 1;
