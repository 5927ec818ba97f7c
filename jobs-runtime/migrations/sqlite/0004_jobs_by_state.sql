-- Lists of jobs by state, newest first (the dashboard's pages), for the
-- states that are rare among the jobs kept: without it, listing `Failed`
-- jobs walks the primary key back through every retained `Succeeded` one.
-- The states of the hot path (Enqueued, Processing, Succeeded) are left
-- out, so fetching and finishing a job writes no entry here; a job enters
-- it only when it is scheduled (a delay or a retry), fails, is deleted or
-- awaits a parent.
CREATE INDEX jobs_job_listed ON jobs_job (state, id)
    WHERE state IN ('Scheduled', 'Failed', 'Deleted', 'Awaiting');
