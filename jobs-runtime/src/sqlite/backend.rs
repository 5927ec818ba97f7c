//! [`StorageBackend`] for SQLite. Lists of jobs travel as one JSON parameter
//! read with `json_each`, so a batch is one statement whatever its size.

use chrono::{DateTime, TimeZone, Utc};
use jobs_core::{
    CompleteParams, Completion, EnqueueParams, Error, ExpireParams, ExtendLeasesParams, FailParams,
    FetchParams, FetchedJob, JobId, JobRecord, LeadParams, PromoteParams, PruneServersParams,
    RequeueParams, RescueParams, Result, RetryParams, ServerInfo, ServerRecord, State, StateChange,
    StateCounts, StorageBackend,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::SqliteStorage;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// `[[id, attempt], ...]`, as the statements below read with `json_each`.
fn attempts_json(jobs: &[Completion]) -> String {
    let pairs: Vec<[i64; 2]> = jobs
        .iter()
        .map(|job| [job.id.0, i64::from(job.attempt)])
        .collect();
    serde_json::to_string(&pairs).expect("integers serialize")
}

/// Takes up to `?5` enqueued jobs of queue `?4` for server `?1` at time
/// `?2` with a lease of `?3` ms, through the partial index of enqueued jobs.
const FETCH: &str = "UPDATE jobs_job
     SET state = 'Processing', attempt = attempt + 1, server = ?1,
         lease_expires_at = ?2 + ?3, state_changed_at = ?2, run_at = NULL,
         reason = NULL, state_data = json_object('server', ?1, 'attempt', attempt + 1)
     WHERE id IN (SELECT id FROM jobs_job
                  WHERE state = 'Enqueued' AND queue = ?4
                  ORDER BY id LIMIT ?5)
     RETURNING id, name, queue, args, attempt, max_attempts, created_at";

/// The current attempts among `?2`, as a `FROM` clause joined on id.
const HELD: &str = "(SELECT value ->> 0 AS id, value ->> 1 AS attempt FROM json_each(?2)) AS held";

/// The one leadership there is for now: maintenance.
const MAINTENANCE: &str = "maintenance";

impl SqliteStorage {
    async fn write(&self, operation: &'static str) -> Result<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| Error::storage(operation, e))
    }

    /// Runs one statement in its own write transaction; returns the rows
    /// it changed.
    async fn execute(
        &self,
        operation: &'static str,
        query: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<u64> {
        let mut tx = self.write(operation).await?;
        let changed = query
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::storage(operation, e))?
            .rows_affected();
        tx.commit()
            .await
            .map_err(|e| Error::storage(operation, e))?;
        Ok(changed)
    }
}

fn fetched(row: &SqliteRow) -> std::result::Result<FetchedJob, sqlx::Error> {
    Ok(FetchedJob {
        id: JobId(row.try_get("id")?),
        name: row.try_get("name")?,
        queue: row.try_get("queue")?,
        args: row.try_get("args")?,
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        enqueued_at: time(row.try_get("created_at")?),
    })
}

fn record(row: &SqliteRow) -> std::result::Result<JobRecord, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(JobRecord {
        id: JobId(row.try_get("id")?),
        name: row.try_get("name")?,
        queue: row.try_get("queue")?,
        args: row.try_get("args")?,
        state: state
            .parse()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        created_at: time(row.try_get("created_at")?),
        state_changed_at: time(row.try_get("state_changed_at")?),
        run_at: row.try_get::<Option<i64>, _>("run_at")?.map(time),
        reason: row.try_get("reason")?,
    })
}

#[async_trait::async_trait]
impl StorageBackend for SqliteStorage {
    async fn enqueue(&self, params: EnqueueParams) -> Result<Vec<JobId>> {
        const OP: &str = "enqueueing jobs";
        let now = now_ms();
        let rows: Vec<serde_json::Value> = params
            .jobs
            .iter()
            .map(|job| {
                serde_json::json!([
                    job.name,
                    job.queue,
                    job.args,
                    job.max_attempts.max(1),
                    job.run_at.map(|at| at.timestamp_millis()),
                ])
            })
            .collect();
        let rows = serde_json::to_string(&rows).map_err(|e| Error::storage(OP, e))?;
        let mut tx = self.write(OP).await?;
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO jobs_job (name, queue, args, state, max_attempts, created_at, state_changed_at, run_at)
             SELECT value ->> 0, value ->> 1, value ->> 2,
                    CASE WHEN value ->> 4 IS NULL THEN 'Enqueued' ELSE 'Scheduled' END,
                    value ->> 3, ?1, ?1, value ->> 4
             FROM json_each(?2)
             RETURNING id",
        )
        .bind(now)
        .bind(rows)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| Error::storage(OP, e))?;
        tx.commit().await.map_err(|e| Error::storage(OP, e))?;
        // Rows are inserted in array order and ids only grow.
        ids.sort_unstable();
        Ok(ids.into_iter().map(JobId).collect())
    }

    async fn fetch(&self, params: FetchParams) -> Result<Vec<FetchedJob>> {
        const OP: &str = "fetching jobs";
        if params.limit == 0 || params.queues.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let mut tx = self.write(OP).await?;
        let mut jobs = Vec::with_capacity(params.limit);
        for queue in &params.queues {
            let wanted = params.limit - jobs.len();
            if wanted == 0 {
                break;
            }
            let mut rows = sqlx::query(FETCH)
                .bind(&params.server)
                .bind(now)
                .bind(millis(params.lease))
                .bind(queue)
                .bind(i64::try_from(wanted).unwrap_or(i64::MAX))
                .try_map(|row: SqliteRow| fetched(&row))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| Error::storage(OP, e))?;
            rows.sort_unstable_by_key(|job| job.id);
            jobs.extend(rows);
        }
        tx.commit().await.map_err(|e| Error::storage(OP, e))?;
        Ok(jobs)
    }

    async fn complete(&self, params: CompleteParams) -> Result<u64> {
        const OP: &str = "completing jobs";
        if params.jobs.is_empty() {
            return Ok(0);
        }
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs_job
             SET state = 'Succeeded', state_changed_at = ?1, lease_expires_at = NULL,
                 reason = NULL, state_data = NULL
             FROM {HELD}
             WHERE jobs_job.id = held.id AND jobs_job.attempt = held.attempt
               AND jobs_job.state = 'Processing'"
        )))
        .bind(now_ms())
        .bind(attempts_json(&params.jobs));
        let done = self.execute(OP, query).await?;
        Ok(done)
    }

    async fn fail(&self, params: FailParams) -> Result<bool> {
        const OP: &str = "failing a job";
        let query = sqlx::query(
            "UPDATE jobs_job
             SET state = 'Failed', state_changed_at = ?1, lease_expires_at = NULL,
                 reason = ?2, state_data = NULL
             WHERE id = ?3 AND attempt = ?4 AND state = 'Processing'",
        )
        .bind(now_ms())
        .bind(&params.reason)
        .bind(params.job.id.0)
        .bind(params.job.attempt);
        let moved = self.execute(OP, query).await?;
        Ok(moved == 1)
    }

    async fn retry(&self, params: RetryParams) -> Result<bool> {
        const OP: &str = "scheduling a retry";
        let now = now_ms();
        let query = sqlx::query(
            "UPDATE jobs_job
             SET state = 'Scheduled', state_changed_at = ?1, run_at = ?1 + ?2,
                 lease_expires_at = NULL, server = NULL, max_attempts = max_attempts + ?7,
                 reason = ?3, state_data = json_object('error', ?4)
             WHERE id = ?5 AND attempt = ?6 AND state = 'Processing'",
        )
        .bind(now)
        .bind(millis(params.delay))
        .bind(&params.reason)
        .bind(&params.error)
        .bind(params.job.id.0)
        .bind(params.job.attempt)
        .bind(i64::from(params.forgive));
        let moved = self.execute(OP, query).await?;
        Ok(moved == 1)
    }

    async fn requeue(&self, params: RequeueParams) -> Result<u64> {
        const OP: &str = "requeueing jobs";
        if params.jobs.is_empty() {
            return Ok(0);
        }
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs_job
             SET state = 'Enqueued', max_attempts = jobs_job.max_attempts + 1, state_changed_at = ?1,
                 lease_expires_at = NULL, server = NULL, reason = ?3, state_data = NULL
             FROM {HELD}
             WHERE jobs_job.id = held.id AND jobs_job.attempt = held.attempt
               AND jobs_job.state = 'Processing'"
        )))
        .bind(now_ms())
        .bind(attempts_json(&params.jobs))
        .bind(&params.reason);
        let moved = self.execute(OP, query).await?;
        Ok(moved)
    }

    async fn extend_leases(&self, params: ExtendLeasesParams) -> Result<Vec<JobId>> {
        const OP: &str = "extending leases";
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write(OP).await?;
        let mut held: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs_job SET lease_expires_at = ?1 + ?3
             FROM {HELD}
             WHERE jobs_job.id = held.id AND jobs_job.attempt = held.attempt
               AND jobs_job.state = 'Processing'
             RETURNING jobs_job.id"
        )))
        .bind(now_ms())
        .bind(attempts_json(&params.jobs))
        .bind(millis(params.lease))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| Error::storage(OP, e))?;
        tx.commit().await.map_err(|e| Error::storage(OP, e))?;
        held.sort_unstable();
        Ok(held.into_iter().map(JobId).collect())
    }

    async fn promote_scheduled(&self, params: PromoteParams) -> Result<u64> {
        const OP: &str = "promoting scheduled jobs";
        let now = now_ms();
        let query = sqlx::query(
            "UPDATE jobs_job
             SET state = 'Enqueued', state_changed_at = ?1, run_at = NULL,
                 reason = 'scheduled time reached', state_data = NULL
             WHERE id IN (SELECT id FROM jobs_job
                          WHERE state = 'Scheduled' AND run_at <= ?1
                          ORDER BY run_at LIMIT ?2)",
        )
        .bind(now)
        .bind(i64::try_from(params.limit).unwrap_or(i64::MAX));
        let moved = self.execute(OP, query).await?;
        Ok(moved)
    }

    async fn rescue(&self, params: RescueParams) -> Result<u64> {
        const OP: &str = "rescuing jobs";
        let now = now_ms();
        let query = sqlx::query(
            "UPDATE jobs_job
             SET state = CASE WHEN attempt < max_attempts THEN 'Enqueued' ELSE 'Failed' END,
                 state_changed_at = ?1, lease_expires_at = NULL, server = NULL,
                 reason = 'rescued: the lease of server ' || coalesce(server, '?')
                          || ' expired (it stopped heartbeating)'
                          || CASE WHEN attempt < max_attempts THEN '' ELSE '; no attempts left' END,
                 state_data = json_object('server', server, 'attempt', attempt)
             WHERE id IN (SELECT id FROM jobs_job
                          WHERE state = 'Processing' AND lease_expires_at < ?1
                          ORDER BY lease_expires_at LIMIT ?2)",
        )
        .bind(now)
        .bind(i64::try_from(params.limit).unwrap_or(i64::MAX));
        let moved = self.execute(OP, query).await?;
        Ok(moved)
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        sqlx::query(
            "SELECT id, name, queue, args, state, attempt, max_attempts, created_at,
                    state_changed_at, run_at, reason
             FROM jobs_job WHERE id = ?1",
        )
        .bind(id.0)
        .try_map(|row: SqliteRow| record(&row))
        .fetch_optional(&self.reader)
        .await
        .map_err(|e| Error::storage("reading a job", e))
    }

    async fn history(&self, id: JobId) -> Result<Vec<StateChange>> {
        sqlx::query(
            "SELECT state, at, reason, data FROM jobs_job_state WHERE job_id = ?1 ORDER BY id",
        )
        .bind(id.0)
        .try_map(|row: SqliteRow| {
            let state: String = row.try_get("state")?;
            let data: Option<String> = row.try_get("data")?;
            Ok(StateChange {
                state: state
                    .parse()
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                at: time(row.try_get("at")?),
                reason: row.try_get("reason")?,
                data: data
                    .map(|data| serde_json::from_str(&data))
                    .transpose()
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            })
        })
        .fetch_all(&self.reader)
        .await
        .map_err(|e| Error::storage("reading a job's history", e))
    }

    async fn counts(&self) -> Result<StateCounts> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM jobs_job GROUP BY state")
                .fetch_all(&self.reader)
                .await
                .map_err(|e| Error::storage("counting jobs", e))?;
        let mut counts = StateCounts::default();
        for (state, count) in rows {
            let state: State = state
                .parse()
                .map_err(|e| Error::storage("counting jobs", e))?;
            counts.set(state, u64::try_from(count).unwrap_or(0));
        }
        Ok(counts)
    }

    async fn register_server(&self, server: ServerInfo) -> Result<()> {
        let queues = serde_json::to_string(&server.queues).expect("strings serialize");
        let jobs = serde_json::to_string(&server.jobs).expect("strings serialize");
        let query = sqlx::query(
            "INSERT INTO jobs_server (id, workers, queues, jobs, started_at, heartbeat_at)
             VALUES (?1, ?2, ?3, ?5, ?4, ?4)
             ON CONFLICT (id) DO UPDATE
             SET workers = excluded.workers, queues = excluded.queues, jobs = excluded.jobs,
                 heartbeat_at = excluded.heartbeat_at",
        )
        .bind(server.id)
        .bind(server.workers)
        .bind(queues)
        .bind(now_ms())
        .bind(jobs);
        self.execute("registering a server", query).await.map(drop)
    }

    async fn heartbeat(&self, server: &str) -> Result<bool> {
        let query = sqlx::query("UPDATE jobs_server SET heartbeat_at = ?1 WHERE id = ?2")
            .bind(now_ms())
            .bind(server.to_owned());
        Ok(self.execute("recording a heartbeat", query).await? == 1)
    }

    async fn unregister_server(&self, server: &str) -> Result<()> {
        const OP: &str = "unregistering a server";
        let mut tx = self.write(OP).await?;
        for statement in [
            "DELETE FROM jobs_server WHERE id = ?1",
            "DELETE FROM jobs_leader WHERE server = ?1",
        ] {
            sqlx::query(statement)
                .bind(server)
                .execute(&mut *tx)
                .await
                .map_err(|e| Error::storage(OP, e))?;
        }
        tx.commit().await.map_err(|e| Error::storage(OP, e))
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        sqlx::query(
            "SELECT id, workers, queues, jobs, started_at, heartbeat_at FROM jobs_server ORDER BY started_at, id",
        )
        .try_map(|row: SqliteRow| {
            let list = |column: &str| -> std::result::Result<Vec<String>, sqlx::Error> {
                let json: String = row.try_get(column)?;
                serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
            };
            Ok(ServerRecord {
                id: row.try_get("id")?,
                workers: row.try_get("workers")?,
                queues: list("queues")?,
                jobs: list("jobs")?,
                started_at: time(row.try_get("started_at")?),
                heartbeat_at: time(row.try_get("heartbeat_at")?),
            })
        })
        .fetch_all(&self.reader)
        .await
        .map_err(|e| Error::storage("reading servers", e))
    }

    async fn prune_servers(&self, params: PruneServersParams) -> Result<u64> {
        let query = sqlx::query("DELETE FROM jobs_server WHERE heartbeat_at < ?1 - ?2")
            .bind(now_ms())
            .bind(millis(params.silent_for));
        self.execute("pruning servers", query).await
    }

    async fn try_lead(&self, params: LeadParams) -> Result<bool> {
        const OP: &str = "electing a leader";
        let now = now_ms();
        let mut tx = self.write(OP).await?;
        let leader: Option<String> = sqlx::query_scalar(
            "INSERT INTO jobs_leader (name, server, expires_at) VALUES (?1, ?2, ?3 + ?4)
             ON CONFLICT (name) DO UPDATE SET server = excluded.server, expires_at = excluded.expires_at
             WHERE jobs_leader.server = excluded.server OR jobs_leader.expires_at < ?3
             RETURNING server",
        )
        .bind(MAINTENANCE)
        .bind(&params.server)
        .bind(now)
        .bind(millis(params.ttl))
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| Error::storage(OP, e))?;
        tx.commit().await.map_err(|e| Error::storage(OP, e))?;
        Ok(leader.is_some_and(|leader| leader == params.server))
    }

    async fn resign(&self, server: &str) -> Result<()> {
        let query = sqlx::query("DELETE FROM jobs_leader WHERE name = ?1 AND server = ?2")
            .bind(MAINTENANCE)
            .bind(server.to_owned());
        self.execute("resigning the leadership", query)
            .await
            .map(drop)
    }

    async fn expire(&self, params: ExpireParams) -> Result<u64> {
        let query = sqlx::query(
            "DELETE FROM jobs_job WHERE id IN (
                 SELECT id FROM jobs_job
                 WHERE state IN ('Succeeded', 'Deleted') AND state_changed_at < ?1 - ?2
                 ORDER BY state_changed_at LIMIT ?3)",
        )
        .bind(now_ms())
        .bind(millis(params.older_than))
        .bind(i64::try_from(params.limit).unwrap_or(i64::MAX));
        self.execute("expiring finished jobs", query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real fetch statement reads the partial index of enqueued jobs,
    /// whatever the number of finished jobs kept.
    #[tokio::test]
    async fn fetch_reads_the_partial_index_among_many_finished_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
        let storage = SqliteStorage::connect(&url).await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO jobs_job (name, queue, args, state, max_attempts, created_at, state_changed_at)
             SELECT 'done', 'default', '{}', 'Succeeded', 1, 0, 0 FROM n",
        )
        .execute(storage.pool())
        .await
        .unwrap();
        sqlx::query("ANALYZE")
            .execute(storage.pool())
            .await
            .unwrap();
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {FETCH}")))
                .bind("server")
                .bind(0_i64)
                .bind(1000_i64)
                .bind("default")
                .bind(10_i64)
                .fetch_all(storage.pool())
                .await
                .unwrap();
        let plan: Vec<_> = plan.into_iter().map(|row| row.3).collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("INDEX jobs_job_enqueued")),
            "{plan:#?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN jobs_job")),
            "{plan:#?}"
        );
    }
}
