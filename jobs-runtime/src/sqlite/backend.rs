//! [`StorageBackend`] for SQLite. Lists of jobs travel as one JSON parameter
//! read with `json_each`, so a batch is one statement whatever its size.

use chrono::{DateTime, TimeZone, Utc};
use jobs_core::{
    Completion, EnqueueParams, Error, ExpireParams, ExtendLeasesParams, FetchParams, FetchedJob,
    FinishParams, JobId, JobRecord, LeadParams, PromoteParams, PruneServersParams, RescueParams,
    Result, ServerInfo, ServerRecord, State, StateChange, StateCounts, StorageBackend,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row, Sqlite, SqliteConnection, Transaction};

use super::{CHANGE_CHECK_INTERVAL, SqliteStorage};
use crate::sql_error::storage_error;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// `[[id, attempt, "Processing"], ...]`, as [`EXTEND_LEASES`] reads it.
fn attempts_json(jobs: &[Completion]) -> String {
    let rows: Vec<(i64, u32, &str)> = jobs
        .iter()
        .map(|job| (job.id.0, job.attempt, State::Processing.as_str()))
        .collect();
    serde_json::to_string(&rows).expect("integers and strings serialize")
}

/// The ids of up to `?2` enqueued jobs of queue `?1`, oldest first, through
/// the partial index of enqueued jobs, as one JSON array.
const PICK: &str = "SELECT json_group_array(id) FROM (
         SELECT id FROM jobs_job WHERE state = 'Enqueued' AND queue = ?1 ORDER BY id LIMIT ?2)";

/// Moves the jobs of the JSON array `?4` to `Processing` for server `?1` at
/// time `?2` with a lease of `?3` ms.
const TAKE: &str = "UPDATE jobs_job
     SET state = 'Processing', attempt = attempt + 1, server = ?1,
         lease_expires_at = ?2 + ?3, state_changed_at = ?2, run_at = NULL,
         reason = NULL, state_data = json_object('server', ?1, 'attempt', attempt + 1)
     WHERE id IN (SELECT value FROM json_each(?4))";

/// The jobs of the JSON array `?1` as one JSON array of `[id, name, queue,
/// args, attempt, max_attempts, created_at]`: one row from SQLite's thread
/// for the whole batch rather than one per job.
const TAKEN: &str =
    "SELECT json_group_array(json_array(id, name, queue, args, attempt, max_attempts, created_at))
     FROM jobs_job WHERE id IN (SELECT value FROM json_each(?1))";

/// Records outcomes at time `?1`: `?2` is a JSON array of `[id, attempt,
/// state, reason, data, run_after_ms, grant_attempt, release_server,
/// from_state]`. Each job is found by its primary key: the state it must
/// be in comes from the array (`from_state`, always `Processing`), not as a
/// literal, so the planner cannot take the partial index of processing jobs
/// instead, whatever `ANALYZE` found (see the plan tests below).
const FINISH: &str = "UPDATE jobs_job
     SET state = o.state, state_changed_at = ?1, lease_expires_at = NULL,
         run_at = ?1 + o.run_after_ms,
         max_attempts = jobs_job.max_attempts + o.grant_attempt,
         server = CASE WHEN o.release_server THEN NULL ELSE jobs_job.server END,
         reason = o.reason, state_data = o.data
     FROM (SELECT value ->> 0 AS id, value ->> 1 AS attempt, value ->> 2 AS state,
                  value ->> 3 AS reason, value ->> 4 AS data, value ->> 5 AS run_after_ms,
                  value ->> 6 AS grant_attempt, value ->> 7 AS release_server,
                  value ->> 8 AS from_state
           FROM json_each(?2)) AS o
     WHERE jobs_job.id = o.id AND jobs_job.attempt = o.attempt AND jobs_job.state = o.from_state";

/// After [`FINISH`] moved fewer jobs than it was given, in the same
/// transaction: the ids among `?2` that it moved at time `?1` (their
/// attempt and new state match, changed now).
const MOVED_AT: &str = "SELECT jobs_job.id FROM jobs_job
     JOIN (SELECT value ->> 0 AS id, value ->> 1 AS attempt, value ->> 2 AS state
           FROM json_each(?2)) AS o
       ON jobs_job.id = o.id
     WHERE jobs_job.attempt = o.attempt AND jobs_job.state = o.state
       AND jobs_job.state_changed_at = ?1";

/// Renews leases at time `?1` for `?3` ms: `?2` is a JSON array of
/// `[id, attempt, from_state]`, planned as [`FINISH`] is. Returns the ids
/// still held.
const EXTEND_LEASES: &str = "UPDATE jobs_job SET lease_expires_at = ?1 + ?3
     FROM (SELECT value ->> 0 AS id, value ->> 1 AS attempt, value ->> 2 AS from_state
           FROM json_each(?2)) AS held
     WHERE jobs_job.id = held.id AND jobs_job.attempt = held.attempt
       AND jobs_job.state = held.from_state
     RETURNING jobs_job.id";

/// The one leadership there is for now: maintenance.
const MAINTENANCE: &str = "maintenance";

impl SqliteStorage {
    async fn write(&self, operation: &'static str) -> Result<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| storage_error(operation, e))
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
            .map_err(|e| storage_error(operation, e))?
            .rows_affected();
        tx.commit().await.map_err(|e| storage_error(operation, e))?;
        Ok(changed)
    }
}

/// The jobs [`TAKEN`] returns.
fn taken_jobs(json: &str) -> serde_json::Result<Vec<FetchedJob>> {
    let rows: Vec<(i64, String, String, String, u32, u32, i64)> = serde_json::from_str(json)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, queue, args, attempt, max_attempts, created_at)| FetchedJob {
                id: JobId(id),
                name,
                queue,
                args,
                attempt,
                max_attempts,
                enqueued_at: time(created_at),
            },
        )
        .collect())
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
        .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
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
            let picked: String = sqlx::query_scalar(PICK)
                .bind(queue)
                .bind(i64::try_from(wanted).unwrap_or(i64::MAX))
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?;
            if picked == "[]" {
                continue;
            }
            sqlx::query(TAKE)
                .bind(&params.server)
                .bind(now)
                .bind(millis(params.lease))
                .bind(&picked)
                .execute(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?;
            let taken: String = sqlx::query_scalar(TAKEN)
                .bind(&picked)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?;
            let mut rows = taken_jobs(&taken).map_err(|e| Error::storage(OP, e))?;
            rows.sort_unstable_by_key(|job| job.id);
            jobs.extend(rows);
        }
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(jobs)
    }

    async fn finish(&self, params: FinishParams) -> Result<Vec<JobId>> {
        const OP: &str = "recording outcomes";
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<serde_json::Value> = params
            .jobs
            .iter()
            .map(|job| {
                let stored = job.outcome.stored();
                serde_json::json!([
                    job.job.id.0,
                    job.job.attempt,
                    stored.state.as_str(),
                    stored.reason,
                    stored.data,
                    stored.run_after.map(millis),
                    i64::from(stored.grant_attempt),
                    stored.release_server,
                    State::Processing.as_str(),
                ])
            })
            .collect();
        let rows = serde_json::to_string(&rows).map_err(|e| Error::storage(OP, e))?;
        let now = now_ms();
        let mut tx = self.write(OP).await?;
        // Counted rather than returned: each returned row is a message from
        // SQLite's thread, and nearly always every job moves.
        let changed = sqlx::query(FINISH)
            .bind(now)
            .bind(&rows)
            .execute(&mut *tx)
            .await
            .map_err(|e| storage_error(OP, e))?
            .rows_affected();
        let mut moved: Vec<i64> = if changed == params.jobs.len() as u64 {
            params.jobs.iter().map(|job| job.job.id.0).collect()
        } else {
            sqlx::query_scalar(MOVED_AT)
                .bind(now)
                .bind(&rows)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?
        };
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        moved.sort_unstable();
        Ok(moved.into_iter().map(JobId).collect())
    }

    async fn extend_leases(&self, params: ExtendLeasesParams) -> Result<Vec<JobId>> {
        const OP: &str = "extending leases";
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write(OP).await?;
        let mut held: Vec<i64> = sqlx::query_scalar(EXTEND_LEASES)
            .bind(now_ms())
            .bind(attempts_json(&params.jobs))
            .bind(millis(params.lease))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
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
                          || ' expired (the server stopped renewing it: it died, or lost the database for longer than the lease)'
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
        .map_err(|e| storage_error("reading a job", e))
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
        .map_err(|e| storage_error("reading a job's history", e))
    }

    async fn counts(&self) -> Result<StateCounts> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM jobs_job GROUP BY state")
                .fetch_all(&self.reader)
                .await
                .map_err(|e| storage_error("counting jobs", e))?;
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
                .map_err(|e| storage_error(OP, e))?;
        }
        tx.commit().await.map_err(|e| storage_error(OP, e))
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
        .map_err(|e| storage_error("reading servers", e))
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
        .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
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

    /// Wakes when another connection (another process, or this process's
    /// writer) committed to the file: `PRAGMA data_version` on a connection
    /// of its own, checked every [`CHANGE_CHECK_INTERVAL`]. That is a few
    /// microseconds per check and reads no table, unlike a fetch. In memory
    /// no other process can write: polling alone.
    async fn watch_for_jobs(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<()> {
        const OP: &str = "watching the SQLite file for changes";
        let Some(file) = &self.file else {
            return std::future::pending().await;
        };
        let mut conn = SqliteConnection::connect_with(file)
            .await
            .map_err(|e| storage_error(OP, e))?;
        let mut seen: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| storage_error(OP, e))?;
        // Jobs may have come while nobody watched.
        wake();
        let mut tick = tokio::time::interval(CHANGE_CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let version: i64 = sqlx::query_scalar("PRAGMA data_version")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| storage_error(OP, e))?;
            if version != seen {
                seen = version;
                wake();
            }
        }
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
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {PICK}")))
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

#[cfg(test)]
mod plan_tests {
    //! The statements that change held attempts, EXPLAINed as the storage
    //! sends them, on an ANALYZEd file of 20,000 `Processing` and 500,000
    //! `Succeeded` jobs: each must find its rows by primary key.
    use super::*;

    #[tokio::test]
    async fn held_attempts_are_found_by_primary_key_on_a_full_analyzed_table() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
        let storage = SqliteStorage::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500000)
             INSERT INTO jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, server)
             SELECT 'done', 'default', '{}', 'Succeeded', 1, 1, 0, 0, 'old' FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, server, lease_expires_at)
             SELECT 'held', 'default', '{}', 'Processing', 1, 5, 0, 0, 'me', 9000000000000 FROM n;
             ANALYZE;",
        )
        .execute(storage.pool())
        .await
        .unwrap();
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs_job WHERE state = 'Processing' ORDER BY id LIMIT 1000",
        )
        .fetch_all(storage.pool())
        .await
        .unwrap();
        let held: Vec<Completion> = ids
            .iter()
            .map(|&id| Completion {
                id: JobId(id),
                attempt: 1,
            })
            .collect();
        let outcomes: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| {
                serde_json::json!([id, 1, "Succeeded", null, null, null, 0, false, "Processing"])
            })
            .collect();
        for (what, statement, rows) in [
            ("finish", FINISH, serde_json::to_string(&outcomes).unwrap()),
            ("extend_leases", EXTEND_LEASES, attempts_json(&held)),
        ] {
            let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN {statement}"
            )))
            .bind(0_i64)
            .bind(rows)
            .bind(1000_i64)
            .fetch_all(storage.pool())
            .await
            .unwrap();
            let plan: Vec<_> = plan.into_iter().map(|row| row.3).collect();
            assert!(
                plan.iter()
                    .any(|step| step.contains("SEARCH jobs_job USING INTEGER PRIMARY KEY")),
                "{what}: {plan:#?}"
            );
            assert!(
                !plan.iter().any(|step| step.contains("jobs_job_processing")
                    || step.starts_with("SCAN jobs_job")),
                "{what}: {plan:#?}"
            );
        }
    }
}
