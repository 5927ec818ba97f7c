//! [`StorageBackend`] for PostgreSQL. Lists of jobs travel as arrays read
//! with `unnest`, so a batch is one statement whatever its size; every
//! statement is a transaction of its own.

use jobs_core::{
    Completion, EnqueueParams, Error, ExpireParams, ExtendLeasesParams, FetchParams, FetchedJob,
    FinishParams, JobId, JobOutcome, JobRecord, LeadParams, PromoteParams, PruneServersParams,
    RescueParams, Result, ServerInfo, ServerRecord, State, StateChange, StateCounts,
    StorageBackend,
};
use sqlx::Row;
use sqlx::postgres::{PgListener, PgPoolOptions, PgRow};

use super::PostgresStorage;
use crate::sql_error::storage_error;

fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The ids and attempts of `jobs`, as two arrays for `unnest($1, $2)`.
fn held(jobs: &[Completion]) -> (Vec<i64>, Vec<i32>) {
    jobs.iter()
        .map(|job| (job.id.0, i32::try_from(job.attempt).unwrap_or(i32::MAX)))
        .unzip()
}

/// Takes up to `$2` enqueued jobs of the queues `$1` (in priority order) for
/// server `$3` with a lease of `$4` ms: queues in priority order, each read
/// through its partial index; rows another server holds are skipped, never
/// waited for.
///
/// `queue = ANY(ARRAY[q.name])` and `ORDER BY queue, id` (rather than
/// `queue = q.name` and `ORDER BY id`) leave only the partial index
/// `(queue, id)` able to give the order: with `queue = q.name`, the primary
/// key gives it too, and once statistics were taken while a backlog was
/// enqueued the planner walks the primary key past every job already done
/// (measured: 62 ms a fetch after 60,000 of 100,000 were drained, 3 ms
/// through the partial index). See the plan tests. Records each move in the history, with the server and the
/// attempt as its data (kept in the history only, not on the job's row).
const FETCH: &str = "WITH picked AS (
         SELECT job.id
         FROM unnest($1::text[]) WITH ORDINALITY AS q(name, priority)
         CROSS JOIN LATERAL (
             SELECT id FROM {s}.jobs_job
             WHERE state = 'Enqueued' AND queue = ANY(ARRAY[q.name])
             ORDER BY queue, id LIMIT $2
             FOR UPDATE SKIP LOCKED
         ) AS job
         ORDER BY q.priority, job.id
         LIMIT $2
     )
     , moved AS (
         UPDATE {s}.jobs_job AS j
         SET state = 'Processing', attempt = j.attempt + 1, server = $3,
             lease_expires_at = now() + $4 * interval '1 millisecond',
             state_changed_at = now(), run_at = NULL, reason = NULL, state_data = NULL
         FROM picked WHERE j.id = picked.id
         RETURNING j.id, j.name, j.queue, j.args, j.attempt, j.max_attempts, j.created_at,
                   j.state, j.state_changed_at
     ), recorded AS (
         INSERT INTO {s}.jobs_job_state (job_id, state, at, data)
         SELECT id, state, state_changed_at,
                jsonb_build_object('server', $3::text, 'attempt', attempt)
         FROM moved
     )
     SELECT id, name, queue, args, attempt, max_attempts, created_at FROM moved";

/// How statements that change held attempts find their rows: each job by
/// its primary key (`j.id = ANY($1)`, joined to the per-job values of the
/// `unnest`), never through a partial index. The state a job must be in
/// comes from the `unnest` too (`from_state`), not as a literal: with
/// `state = 'Processing'` written out, the planner may prove the predicate
/// of `jobs_job_processing` and, once statistics exist, read 20,000
/// processing rows against the id list for every batch (seconds instead
/// of milliseconds). A column cannot prove it, so the plan stays on the
/// primary key whatever the table holds (see the plan tests below).
///
/// Records outcomes: `$1` ids, `$2` attempts, `$3` new states, `$4`
/// reasons, `$5` data (JSON text), `$6` delays in ms for `Scheduled`, `$7`
/// attempts granted back (0 or 1), `$8` whether the server is cleared, `$9`
/// the state each job must be in (`Processing`), `$10` the channel to
/// notify when a job became `Enqueued`. Records each move in the history;
/// the move's data (a retry's error) goes there only, not on the job's row,
/// so a text is kept once.
/// Returns the ids that moved.
const FINISH: &str = "WITH o AS (
         SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[],
                              $6::float8[], $7::int[], $8::bool[], $9::text[])
                AS o(id, attempt, state, reason, data, run_after_ms, grant_attempt, release, from_state)
     ), moved AS (
         UPDATE {s}.jobs_job AS j
         SET state = o.state, state_changed_at = now(), lease_expires_at = NULL,
             run_at = now() + o.run_after_ms * interval '1 millisecond',
             max_attempts = j.max_attempts + o.grant_attempt,
             server = CASE WHEN o.release THEN NULL ELSE j.server END,
             reason = o.reason, state_data = NULL
         FROM o
         WHERE j.id = ANY($1) AND j.id = o.id AND j.attempt = o.attempt AND j.state = o.from_state
         RETURNING j.id, j.state, j.state_changed_at, j.reason, o.data
     ), recorded AS (
         INSERT INTO {s}.jobs_job_state (job_id, state, at, reason, data)
         SELECT id, state, state_changed_at, reason, data::jsonb FROM moved
     ), notified AS (
         SELECT pg_notify($10, '') WHERE EXISTS (SELECT FROM moved WHERE state = 'Enqueued')
     )
     SELECT id FROM moved LEFT JOIN notified ON true";

/// Renews the leases of held attempts: `$1` ids, `$2` attempts, `$3` the
/// state each must be in (`Processing`), `$4` the lease in ms. Planned
/// through the primary key as [`FINISH`] is. Returns the ids still held.
const EXTEND_LEASES: &str = "UPDATE {s}.jobs_job AS j
     SET lease_expires_at = now() + $4 * interval '1 millisecond'
     FROM unnest($1::bigint[], $2::int[], $3::text[]) AS held(id, attempt, from_state)
     WHERE j.id = ANY($1) AND j.id = held.id AND j.attempt = held.attempt
       AND j.state = held.from_state
     RETURNING j.id";

/// The per-job columns of [`FINISH`], as arrays.
struct OutcomeRows {
    ids: Vec<i64>,
    attempts: Vec<i32>,
    states: Vec<&'static str>,
    reasons: Vec<Option<String>>,
    data: Vec<Option<String>>,
    run_after_ms: Vec<Option<f64>>,
    grant: Vec<i32>,
    release: Vec<bool>,
    from_state: Vec<&'static str>,
}

impl OutcomeRows {
    fn new(jobs: &[JobOutcome]) -> Self {
        let mut rows = OutcomeRows {
            ids: Vec::with_capacity(jobs.len()),
            attempts: Vec::with_capacity(jobs.len()),
            states: Vec::with_capacity(jobs.len()),
            reasons: Vec::with_capacity(jobs.len()),
            data: Vec::with_capacity(jobs.len()),
            run_after_ms: Vec::with_capacity(jobs.len()),
            grant: Vec::with_capacity(jobs.len()),
            release: Vec::with_capacity(jobs.len()),
            from_state: Vec::with_capacity(jobs.len()),
        };
        for job in jobs {
            let stored = job.outcome.stored();
            rows.ids.push(job.job.id.0);
            rows.attempts
                .push(i32::try_from(job.job.attempt).unwrap_or(i32::MAX));
            rows.states.push(stored.state.as_str());
            rows.reasons.push(stored.reason);
            rows.data.push(stored.data);
            rows.run_after_ms.push(stored.run_after.map(millis));
            rows.grant.push(i32::from(stored.grant_attempt));
            rows.release.push(stored.release_server);
            rows.from_state.push(State::Processing.as_str());
        }
        rows
    }
}

/// The one leadership there is for now: maintenance.
const MAINTENANCE: &str = "maintenance";

fn decode_state(state: &str) -> std::result::Result<jobs_core::State, sqlx::Error> {
    state.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn fetched(row: &PgRow) -> std::result::Result<FetchedJob, sqlx::Error> {
    Ok(FetchedJob {
        id: JobId(row.try_get("id")?),
        name: row.try_get("name")?,
        queue: row.try_get("queue")?,
        args: row.try_get("args")?,
        attempt: row.try_get::<i32, _>("attempt")?.try_into().unwrap_or(0),
        max_attempts: row
            .try_get::<i32, _>("max_attempts")?
            .try_into()
            .unwrap_or(1),
        enqueued_at: row.try_get("created_at")?,
    })
}

fn record(row: &PgRow) -> std::result::Result<JobRecord, sqlx::Error> {
    Ok(JobRecord {
        id: JobId(row.try_get("id")?),
        name: row.try_get("name")?,
        queue: row.try_get("queue")?,
        args: row.try_get("args")?,
        state: decode_state(row.try_get("state")?)?,
        attempt: row.try_get::<i32, _>("attempt")?.try_into().unwrap_or(0),
        max_attempts: row
            .try_get::<i32, _>("max_attempts")?
            .try_into()
            .unwrap_or(1),
        created_at: row.try_get("created_at")?,
        state_changed_at: row.try_get("state_changed_at")?,
        run_at: row.try_get("run_at")?,
        reason: row.try_get("reason")?,
    })
}

#[async_trait::async_trait]
impl StorageBackend for PostgresStorage {
    async fn enqueue(&self, params: EnqueueParams) -> Result<Vec<JobId>> {
        const OP: &str = "enqueueing jobs";
        let jobs = params.jobs;
        let names: Vec<&str> = jobs.iter().map(|job| job.name.as_str()).collect();
        let queues: Vec<&str> = jobs.iter().map(|job| job.queue.as_str()).collect();
        let args: Vec<&str> = jobs.iter().map(|job| job.args.as_str()).collect();
        let max_attempts: Vec<i32> = jobs
            .iter()
            .map(|job| i32::try_from(job.max_attempts.max(1)).unwrap_or(i32::MAX))
            .collect();
        let run_at: Vec<Option<chrono::DateTime<chrono::Utc>>> =
            jobs.iter().map(|job| job.run_at).collect();
        let notify = jobs.iter().any(|job| job.run_at.is_none());
        // One statement: insert, and wake the listening servers on commit.
        let mut ids: Vec<i64> = self.run(OP, sqlx::query_scalar(self.sql(
            "WITH inserted AS (
                 INSERT INTO {s}.jobs_job (name, queue, args, state, max_attempts, created_at, state_changed_at, run_at)
                 SELECT name, queue, args,
                        CASE WHEN run_at IS NULL THEN 'Enqueued' ELSE 'Scheduled' END,
                        max_attempts, now(), now(), run_at
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[])
                      WITH ORDINALITY AS new(name, queue, args, max_attempts, run_at, n)
                 ORDER BY n
                 RETURNING id, state, state_changed_at, reason, state_data
             ), recorded AS (
                 INSERT INTO {s}.jobs_job_state (job_id, state, at, reason, data)
                 SELECT id, state, state_changed_at, reason, state_data FROM inserted
             ), notified AS (
                 SELECT pg_notify($6, '') WHERE $7
             )
             SELECT id FROM inserted LEFT JOIN notified ON true",
        ))
        .bind(names)
        .bind(queues)
        .bind(args)
        .bind(max_attempts)
        .bind(run_at)
        .bind(&self.channel)
        .bind(notify)
        .fetch_all(&self.pool)
        ).await?;
        ids.sort_unstable();
        Ok(ids.into_iter().map(JobId).collect())
    }

    async fn fetch(&self, params: FetchParams) -> Result<Vec<FetchedJob>> {
        if params.limit == 0 || params.queues.is_empty() {
            return Ok(Vec::new());
        }
        let mut jobs = self
            .run(
                "fetching jobs",
                sqlx::query(self.sql(FETCH))
                    .bind(&params.queues)
                    .bind(limit(params.limit))
                    .bind(&params.server)
                    .bind(millis(params.lease))
                    .try_map(|row: PgRow| fetched(&row))
                    .fetch_all(&self.pool),
            )
            .await?;
        let priority = |queue: &str| params.queues.iter().position(|q| q == queue);
        jobs.sort_unstable_by_key(|job| (priority(&job.queue), job.id));
        Ok(jobs)
    }

    async fn finish(&self, params: FinishParams) -> Result<Vec<JobId>> {
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = OutcomeRows::new(&params.jobs);
        let mut moved: Vec<i64> = self
            .run(
                "recording outcomes",
                sqlx::query_scalar(self.sql(FINISH))
                    .bind(rows.ids)
                    .bind(rows.attempts)
                    .bind(rows.states)
                    .bind(rows.reasons)
                    .bind(rows.data)
                    .bind(rows.run_after_ms)
                    .bind(rows.grant)
                    .bind(rows.release)
                    .bind(rows.from_state)
                    .bind(&self.channel)
                    .fetch_all(&self.pool),
            )
            .await?;
        moved.sort_unstable();
        Ok(moved.into_iter().map(JobId).collect())
    }

    async fn extend_leases(&self, params: ExtendLeasesParams) -> Result<Vec<JobId>> {
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, attempts) = held(&params.jobs);
        let from_state = vec![State::Processing.as_str(); ids.len()];
        let mut held: Vec<i64> = self
            .run(
                "extending leases",
                sqlx::query_scalar(self.sql(EXTEND_LEASES))
                    .bind(ids)
                    .bind(attempts)
                    .bind(from_state)
                    .bind(millis(params.lease))
                    .fetch_all(&self.pool),
            )
            .await?;
        held.sort_unstable();
        Ok(held.into_iter().map(JobId).collect())
    }

    async fn promote_scheduled(&self, params: PromoteParams) -> Result<u64> {
        let moved: i64 = self
            .run(
                "promoting scheduled jobs",
                sqlx::query_scalar(self.moved_and_notified(
                    "UPDATE {s}.jobs_job
                 SET state = 'Enqueued', state_changed_at = now(), run_at = NULL,
                     reason = 'scheduled time reached', state_data = NULL
                 WHERE id IN (SELECT id FROM {s}.jobs_job
                              WHERE state = 'Scheduled' AND run_at <= now()
                              ORDER BY run_at LIMIT $1
                              FOR UPDATE SKIP LOCKED)
                 RETURNING id, state, state_changed_at, reason, state_data",
                    2,
                ))
                .bind(limit(params.limit))
                .bind(&self.channel)
                .fetch_one(&self.pool),
            )
            .await?;
        Ok(u64::try_from(moved).unwrap_or(0))
    }

    async fn rescue(&self, params: RescueParams) -> Result<u64> {
        let moved: i64 = self.run("rescuing jobs", sqlx::query_scalar(self.moved_and_notified(
            "UPDATE {s}.jobs_job
                 SET state = CASE WHEN attempt < max_attempts THEN 'Enqueued' ELSE 'Failed' END,
                     state_changed_at = now(), lease_expires_at = NULL, server = NULL,
                     reason = 'rescued: the lease of server ' || coalesce(server, '?')
                              || ' expired (the server stopped renewing it: it died, or lost the database for longer than the lease)'
                              || CASE WHEN attempt < max_attempts THEN '' ELSE '; no attempts left' END,
                     state_data = jsonb_build_object('server', server, 'attempt', attempt)
                 WHERE id IN (SELECT id FROM {s}.jobs_job
                              WHERE state = 'Processing' AND lease_expires_at < now()
                              ORDER BY lease_expires_at LIMIT $1
                              FOR UPDATE SKIP LOCKED)
                 RETURNING id, state, state_changed_at, reason, state_data",
            2,
        ))
        .bind(limit(params.limit))
        .bind(&self.channel)
        .fetch_one(&self.pool)
        ).await?;
        Ok(u64::try_from(moved).unwrap_or(0))
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.run(
            "reading a job",
            sqlx::query(self.sql(
                "SELECT id, name, queue, args, state, attempt, max_attempts, created_at,
                    state_changed_at, run_at, reason
             FROM {s}.jobs_job WHERE id = $1",
            ))
            .bind(id.0)
            .try_map(|row: PgRow| record(&row))
            .fetch_optional(&self.pool),
        )
        .await
    }

    async fn history(&self, id: JobId) -> Result<Vec<StateChange>> {
        self.run("reading a job's history", sqlx::query(self.sql(
            "SELECT state, at, reason, data FROM {s}.jobs_job_state WHERE job_id = $1 ORDER BY id",
        ))
        .bind(id.0)
        .try_map(|row: PgRow| {
            Ok(StateChange {
                state: decode_state(row.try_get("state")?)?,
                at: row.try_get("at")?,
                reason: row.try_get("reason")?,
                data: row.try_get("data")?,
            })
        })
        .fetch_all(&self.pool)
        ).await
    }

    async fn counts(&self) -> Result<StateCounts> {
        let rows: Vec<(String, i64)> = self
            .run(
                "counting jobs",
                sqlx::query_as(self.sql("SELECT state, count(*) FROM {s}.jobs_job GROUP BY state"))
                    .fetch_all(&self.pool),
            )
            .await?;
        let mut counts = StateCounts::default();
        for (state, count) in rows {
            let state = decode_state(&state).map_err(|e| Error::storage("counting jobs", e))?;
            counts.set(state, u64::try_from(count).unwrap_or(0));
        }
        Ok(counts)
    }

    async fn register_server(&self, server: ServerInfo) -> Result<()> {
        self.run(
            "registering a server",
            sqlx::query(self.sql(
                "INSERT INTO {s}.jobs_server (id, workers, queues, jobs, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, now(), now())
             ON CONFLICT (id) DO UPDATE
             SET workers = excluded.workers, queues = excluded.queues, jobs = excluded.jobs,
                 heartbeat_at = now()",
            ))
            .bind(&server.id)
            .bind(i32::try_from(server.workers).unwrap_or(i32::MAX))
            .bind(&server.queues)
            .bind(&server.jobs)
            .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn heartbeat(&self, server: &str) -> Result<bool> {
        let beat = self
            .run(
                "recording a heartbeat",
                sqlx::query(
                    self.sql("UPDATE {s}.jobs_server SET heartbeat_at = now() WHERE id = $1"),
                )
                .bind(server)
                .execute(&self.pool),
            )
            .await?;
        Ok(beat.rows_affected() == 1)
    }

    async fn unregister_server(&self, server: &str) -> Result<()> {
        self.run(
            "unregistering a server",
            sqlx::query(self.sql(
                "WITH leader AS (DELETE FROM {s}.jobs_leader WHERE server = $1)
             DELETE FROM {s}.jobs_server WHERE id = $1",
            ))
            .bind(server)
            .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        self.run("reading servers", sqlx::query(self.sql(
            "SELECT id, workers, queues, jobs, started_at, heartbeat_at FROM {s}.jobs_server ORDER BY started_at, id",
        ))
        .try_map(|row: PgRow| {
            Ok(ServerRecord {
                id: row.try_get("id")?,
                workers: row.try_get::<i32, _>("workers")?.try_into().unwrap_or(0),
                queues: row.try_get("queues")?,
                jobs: row.try_get("jobs")?,
                started_at: row.try_get("started_at")?,
                heartbeat_at: row.try_get("heartbeat_at")?,
            })
        })
        .fetch_all(&self.pool)
        ).await
    }

    async fn prune_servers(&self, params: PruneServersParams) -> Result<u64> {
        let pruned = self.run("pruning servers", sqlx::query(self.sql(
            "DELETE FROM {s}.jobs_server WHERE heartbeat_at < now() - $1 * interval '1 millisecond'",
        ))
        .bind(millis(params.silent_for))
        .execute(&self.pool)
        ).await?;
        Ok(pruned.rows_affected())
    }

    async fn try_lead(&self, params: LeadParams) -> Result<bool> {
        let leader: Option<String> = self.run("electing a leader", sqlx::query_scalar(self.sql(
            "INSERT INTO {s}.jobs_leader (name, server, expires_at)
             VALUES ($1, $2, now() + $3 * interval '1 millisecond')
             ON CONFLICT (name) DO UPDATE SET server = excluded.server, expires_at = excluded.expires_at
             WHERE jobs_leader.server = excluded.server OR jobs_leader.expires_at < now()
             RETURNING server",
        ))
        .bind(MAINTENANCE)
        .bind(&params.server)
        .bind(millis(params.ttl))
        .fetch_optional(&self.pool)
        ).await?;
        Ok(leader.is_some_and(|leader| leader == params.server))
    }

    async fn resign(&self, server: &str) -> Result<()> {
        self.run(
            "resigning the leadership",
            sqlx::query(self.sql("DELETE FROM {s}.jobs_leader WHERE name = $1 AND server = $2"))
                .bind(MAINTENANCE)
                .bind(server)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn expire(&self, params: ExpireParams) -> Result<u64> {
        let expired: i64 = self
            .run(
                "expiring finished jobs",
                sqlx::query_scalar(self.sql(
                    "WITH expired AS (
                 DELETE FROM {s}.jobs_job WHERE id IN (
                     SELECT id FROM {s}.jobs_job
                     WHERE state IN ('Succeeded', 'Deleted')
                       AND state_changed_at < now() - $1 * interval '1 millisecond'
                     ORDER BY state_changed_at LIMIT $2
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id
             ), forgotten AS (
                 DELETE FROM {s}.jobs_job_state WHERE job_id IN (SELECT id FROM expired)
             )
             SELECT count(*) FROM expired",
                ))
                .bind(millis(params.older_than))
                .bind(limit(params.limit))
                .fetch_one(&self.pool),
            )
            .await?;
        Ok(u64::try_from(expired).unwrap_or(0))
    }

    async fn watch_for_jobs(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<()> {
        const OP: &str = "listening for enqueued jobs";
        // A connection of its own, so that listening never takes one of
        // the pool's (which may be the application's, and small).
        let own = PgPoolOptions::new()
            .max_connections(1)
            .connect_with((*self.pool.connect_options()).clone())
            .await
            .map_err(|e| storage_error(OP, e))?;
        let mut listener = PgListener::connect_with(&own)
            .await
            .map_err(|e| storage_error(OP, e))?;
        listener
            .listen(&self.channel)
            .await
            .map_err(|e| storage_error(OP, e))?;
        // Jobs may have come while nobody listened.
        wake();
        loop {
            // `None`: the connection was lost and is being re-established;
            // notifications may have been missed meanwhile, so wake anyway.
            listener
                .try_recv()
                .await
                .map_err(|e| storage_error(OP, e))?;
            wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fresh_postgres;

    /// The real fetch statement reads the partial index of enqueued jobs,
    /// whatever the number of finished jobs kept.
    #[tokio::test]
    async fn fetch_reads_the_partial_index_among_many_finished_jobs() {
        let Some(pg) = fresh_postgres().await else {
            return;
        };
        let storage = &pg.storage;
        sqlx::query(storage.sql(
            "INSERT INTO {s}.jobs_job (name, queue, args, state, max_attempts, created_at, state_changed_at)
             SELECT 'done', 'default', '{}', 'Succeeded', 1, now(), now() FROM generate_series(1, 20000)",
        ))
        .execute(storage.pool())
        .await
        .unwrap();
        sqlx::query(storage.sql("ANALYZE {s}.jobs_job"))
            .execute(storage.pool())
            .await
            .unwrap();
        let plan: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN {}",
            storage.sql(FETCH).0
        )))
        .bind(vec!["default".to_owned()])
        .bind(10_i64)
        .bind("server")
        .bind(1000.0_f64)
        .fetch_all(storage.pool())
        .await
        .unwrap();
        let plan: Vec<_> = plan.into_iter().map(|row| row.0).collect();
        assert!(
            plan.iter().any(|line| line.contains("jobs_job_enqueued")),
            "{plan:#?}"
        );
        assert!(
            !plan
                .iter()
                .any(|line| line.contains("Seq Scan on jobs_job ")),
            "{plan:#?}"
        );
    }
}

#[cfg(test)]
mod plan_tests {
    //! The hot statements EXPLAINed as the storage sends them, both with the
    //! values bound (a custom plan) and as the generic plan a prepared
    //! statement switches to after five runs, on tables whose statistics
    //! could mislead the planner.
    use super::*;
    use crate::testing::fresh_postgres;

    async fn explain(
        conn: &mut sqlx::PgConnection,
        statement: &str,
        arguments: &[&str],
    ) -> Vec<String> {
        // `PREPARE` with the statement's own types, then `EXPLAIN EXECUTE`
        // with literal arguments: the plan the server would run.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "held_jobs_{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PREPARE {name} AS {statement}"
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "EXPLAIN EXECUTE {name}({})",
            arguments.join(", ")
        )))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        rows.iter().map(|row| row.get::<String, _>(0)).collect()
    }

    async fn set_plan_cache_mode(conn: &mut sqlx::PgConnection, mode: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
            .execute(&mut *conn)
            .await
            .unwrap();
    }

    fn assert_primary_key(what: &str, plan: &[String]) {
        let text = plan.join("\n");
        assert!(text.contains("jobs_job_pkey"), "{what}:\n{text}");
        assert!(!text.contains("jobs_job_processing"), "{what}:\n{text}");
        assert!(!text.contains("Seq Scan on jobs_job "), "{what}:\n{text}");
    }

    /// On an ANALYZEd table of 20,000 `Processing` and 500,000 `Succeeded`
    /// jobs, the finish (succeeded and requeued outcomes) and lease-renewal
    /// statements find their rows through the primary key.
    #[tokio::test]
    async fn held_attempts_are_found_by_primary_key_on_a_full_analyzed_table() {
        let Some(pg) = fresh_postgres().await else {
            return;
        };
        let storage = &pg.storage;
        sqlx::raw_sql(storage.sql(
            "INSERT INTO {s}.jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, server)
             SELECT 'done', 'default', '{}', 'Succeeded', 1, 1, now(), now(), 'old' FROM generate_series(1, 500000);
             INSERT INTO {s}.jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, server, lease_expires_at)
             SELECT 'held', 'default', '{}', 'Processing', 1, 5, now(), now(), 'me', now() + interval '1 hour'
             FROM generate_series(1, 20000);
             ANALYZE {s}.jobs_job;",
        ))
        .execute(storage.pool())
        .await
        .unwrap();
        let ids: Vec<i64> =
            sqlx::query_scalar(storage.sql(
                "SELECT id FROM {s}.jobs_job WHERE state = 'Processing' ORDER BY id LIMIT 1000",
            ))
            .fetch_all(storage.pool())
            .await
            .unwrap();
        let n = ids.len();
        let list = |values: String| format!("'{{{values}}}'");
        let ids = list(ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
        let ones = list(vec!["1"; n].join(","));
        let zeros = list(vec!["0"; n].join(","));
        let nulls = list(vec!["NULL"; n].join(","));
        let falses = list(vec!["false"; n].join(","));
        let trues = list(vec!["true"; n].join(","));
        let texts = |text: &str| list(vec![text; n].join(","));
        let processing = texts("Processing");
        let succeeded = texts("Succeeded");
        let enqueued = texts("Enqueued");
        let reasons = texts("\"server stopping\"");
        let finish = storage.sql(FINISH).0;
        let extend = storage.sql(EXTEND_LEASES).0;
        let mut conn = storage.pool().acquire().await.unwrap();
        for mode in ["auto", "force_generic_plan"] {
            set_plan_cache_mode(&mut conn, mode).await;
            let completed = [
                ids.as_str(),
                &ones,
                &succeeded,
                &nulls,
                &nulls,
                &nulls,
                &zeros,
                &falses,
                &processing,
                "'chan'",
            ];
            assert_primary_key(
                &format!("finish, succeeded ({mode})"),
                &explain(&mut conn, &finish, &completed).await,
            );
            let requeued = [
                ids.as_str(),
                &ones,
                &enqueued,
                &reasons,
                &nulls,
                &nulls,
                &ones,
                &trues,
                &processing,
                "'chan'",
            ];
            assert_primary_key(
                &format!("finish, requeued ({mode})"),
                &explain(&mut conn, &finish, &requeued).await,
            );
            let renewed = [ids.as_str(), &ones, &processing, "30000"];
            assert_primary_key(
                &format!("extend_leases ({mode})"),
                &explain(&mut conn, &extend, &renewed).await,
            );
        }
    }

    /// Statistics taken while a backlog was enqueued, then most of it done:
    /// the fetch still reads the partial index, not the primary key past
    /// every finished job.
    #[tokio::test]
    async fn fetch_reads_the_partial_index_with_statistics_of_a_backlog() {
        let Some(pg) = fresh_postgres().await else {
            return;
        };
        let storage = &pg.storage;
        sqlx::raw_sql(storage.sql(
            "INSERT INTO {s}.jobs_job (name, queue, args, state, max_attempts, created_at, state_changed_at)
             SELECT 'backlog', 'default', '{}', 'Enqueued', 1, now(), now() FROM generate_series(1, 100000);
             ANALYZE {s}.jobs_job;
             UPDATE {s}.jobs_job SET state = 'Succeeded' WHERE id <= (SELECT min(id) + 60000 FROM {s}.jobs_job);",
        ))
        .execute(storage.pool())
        .await
        .unwrap();
        let fetch = storage.sql(FETCH).0;
        let mut conn = storage.pool().acquire().await.unwrap();
        for mode in ["auto", "force_generic_plan"] {
            set_plan_cache_mode(&mut conn, mode).await;
            let arguments = ["ARRAY['default']", "100", "'server'", "30000"];
            let plan = explain(&mut conn, &fetch, &arguments).await;
            let picked = plan
                .iter()
                .find(|line| line.contains("Index Scan") || line.contains("Seq Scan"))
                .cloned()
                .unwrap_or_default();
            assert!(picked.contains("jobs_job_enqueued"), "{mode}: {plan:#?}");
        }
    }
}
