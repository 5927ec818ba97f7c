//! The fetch of jobs under a concurrency limit on PostgreSQL: at most
//! `limit` jobs of one key `Processing` at once, across every server,
//! without a worker waiting on a lock.
//!
//! A limited job waits in an index of its own (`jobs_job_limited`), so the
//! fetch of every other job never reads past it. Taking limited jobs is
//! one transaction of two statements:
//! 1. [`claim_keys`] looks at the first limited jobs of the queues served,
//!    leaves out the keys already at their limit, and takes a transaction
//!    advisory lock on each key it keeps, skipping the keys another
//!    server's fetch holds (`pg_try_advisory_xact_lock`: no one waits);
//! 2. [`take_limited`], a statement of its own so that its snapshot sees
//!    every fetch of those keys that committed before the locks were
//!    taken, counts the jobs of each key running and takes no more than
//!    the room left.
//!
//! Only a fetch moves a job into `Processing`, and it holds the key's lock
//! while it counts and takes, so two fetches never both fill the same
//! room. A finish or a rescue only frees room. No counter is kept that
//! could drift: the running jobs are counted each time, through the
//! index of limited running jobs (at most the workers of all servers).

use jobs_core::{FetchParams, FetchedJob, Result};
use sqlx::postgres::PgRow;

use super::PostgresStorage;
use super::decode::{fetched, limit, millis};
use super::jobs::{NAME_NOT_PAUSED, SERVED_QUEUES, take_sql};

/// How many waiting limited jobs of each queue a fetch looks at, in
/// order: keys whose jobs are all further down wait for a later fetch.
const WINDOW: i64 = 1000;

/// The keys of the first [`WINDOW`] limited jobs waiting in each queue of
/// `$1` (neither paused), leaving out the keys at their limit, that this
/// transaction could lock: the two-key form of the advisory lock, the
/// schema's hash (`$3`: two schemas' keys never share a lock) and the
/// key's, apart from the single-key locks the application or the
/// migrations take. `$2` is the window.
fn claim_keys() -> String {
    format!(
        "WITH full_keys AS (
         SELECT concurrency_key FROM {{s}}.jobs_job
         WHERE state = 'Processing' AND concurrency_key IS NOT NULL
         GROUP BY concurrency_key HAVING count(*) >= min(concurrency_limit)
     ), waiting AS (
         SELECT DISTINCT job.concurrency_key
         FROM {SERVED_QUEUES}
         CROSS JOIN LATERAL (
             SELECT concurrency_key FROM {{s}}.jobs_job AS j
             WHERE state = 'Enqueued' AND concurrency_key IS NOT NULL
               AND queue = ANY(ARRAY[q.name])
               AND {NAME_NOT_PAUSED}
               AND concurrency_key NOT IN (SELECT concurrency_key FROM full_keys)
             ORDER BY queue, priority, id LIMIT $2
         ) AS job
     )
     SELECT concurrency_key FROM waiting
     WHERE pg_try_advisory_xact_lock(hashtext($3), hashtext(concurrency_key))"
    )
}

/// Takes up to `$2` waiting jobs of the locked keys `$5` in the queues
/// `$1`, in queue order, then priority, then id, no more of each key than
/// its limit less its running jobs; for server `$3` with a lease of `$4`
/// ms (see [`take_sql`]).
fn take_limited() -> String {
    format!(
        "running AS (
         SELECT concurrency_key, count(*) AS n FROM {{s}}.jobs_job
         WHERE state = 'Processing' AND concurrency_key = ANY($5)
         GROUP BY concurrency_key
     ), candidates AS (
         SELECT job.id, job.concurrency_key, job.concurrency_limit, q.rank, job.priority
         FROM {SERVED_QUEUES}
         CROSS JOIN LATERAL (
             SELECT id, concurrency_key, concurrency_limit, priority FROM {{s}}.jobs_job AS j
             WHERE state = 'Enqueued' AND concurrency_key = ANY($5)
               AND queue = ANY(ARRAY[q.name])
               AND {NAME_NOT_PAUSED}
             ORDER BY queue, priority, id LIMIT $6
             FOR UPDATE SKIP LOCKED
         ) AS job
     ), ranked AS (
         SELECT c.id, c.rank, c.priority,
                c.concurrency_limit - coalesce(r.n, 0)
                - row_number() OVER (PARTITION BY c.concurrency_key
                                     ORDER BY c.rank, c.priority, c.id) AS room_after
         FROM candidates AS c LEFT JOIN running AS r USING (concurrency_key)
     ), picked AS (
         SELECT id FROM ranked WHERE room_after >= 0
         ORDER BY rank, priority, id
         LIMIT $2
     )"
    )
}

impl PostgresStorage {
    /// Takes up to `wanted` jobs under a concurrency limit, as the module
    /// says; notes whether any waited, for the next [`Probe::is_due`].
    pub(super) async fn fetch_limited(
        &self,
        params: &FetchParams,
        wanted: usize,
    ) -> Result<Vec<FetchedJob>> {
        const OP: &str = "fetching jobs under a concurrency limit";
        if wanted == 0 {
            return Ok(Vec::new());
        }
        // READ COMMITTED whatever the database's default: the count must
        // see every fetch of the keys that committed before the locks.
        let mut tx = self
            .run(
                OP,
                self.pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED"),
            )
            .await?;
        let keys: Vec<String> = self
            .run(
                OP,
                sqlx::query_scalar(self.sql(&claim_keys()))
                    .bind(&params.queues)
                    .bind(WINDOW)
                    .bind(&self.schema)
                    .fetch_all(&mut *tx),
            )
            .await?;
        self.limited.looked(!keys.is_empty());
        if keys.is_empty() {
            self.run(OP, tx.commit()).await?;
            return Ok(Vec::new());
        }
        let jobs = self
            .run(
                OP,
                sqlx::query(self.sql(&take_sql(&take_limited())))
                    .bind(&params.queues)
                    .bind(limit(wanted))
                    .bind(&params.server)
                    .bind(millis(params.lease))
                    .bind(&keys)
                    .bind(WINDOW)
                    .try_map(|row: PgRow| fetched(&row))
                    .fetch_all(&mut *tx),
            )
            .await?;
        self.run(OP, tx.commit()).await?;
        Ok(jobs)
    }
}
