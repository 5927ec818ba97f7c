//! [`JobStorage`] for SQLite. Lists of jobs travel as one JSON parameter
//! read with `json_each`, so a batch is one statement whatever its size.

use jobs_core::{
    Attempt, BatchId, EnqueueParams, Error, ExtendLeasesParams, FetchParams, FetchedJob,
    FinishParams, JobId, JobStorage, MoveParams, NewJob, Result, SetParametersParams,
    SetPausedParams, State, WriteLogParams, decide,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use super::SqliteStorage;
use super::decode::{millis, taken_jobs};
use crate::related::JobRow;
use crate::sorted_ids::sorted_ids;
use crate::sql_error::storage_error;

/// `[[id, attempt, "Processing"], ...]`, as [`EXTEND_LEASES`] reads it.
pub(super) fn attempts_json(jobs: &[Attempt]) -> String {
    let rows: Vec<(i64, u32, &str)> = jobs
        .iter()
        .map(|job| (job.id.0, job.attempt, State::Processing.as_str()))
        .collect();
    serde_json::to_string(&rows).expect("integers and strings serialize")
}

/// The ids of up to `?2` enqueued jobs under no concurrency limit of
/// queue `?1`, by priority (lower first) then oldest first, through the
/// partial index of enqueued jobs, as one JSON array; none while the
/// queue is paused, and none of a paused job name (read past: a long
/// backlog of a paused job name slows every fetch of its queue).
pub(super) const PICK: &str = "SELECT json_group_array(id) FROM (
         SELECT id, priority FROM jobs_job
         WHERE state = 'Enqueued' AND concurrency_key IS NULL AND queue = ?1
           AND name NOT IN (SELECT name FROM jobs_paused WHERE kind = 'job')
           AND NOT EXISTS (SELECT 1 FROM jobs_paused WHERE kind = 'queue' AND name = ?1)
         ORDER BY priority, id LIMIT ?2)";

/// [`PICK`] as a JSON array of `[id, priority]`, to merge with the jobs
/// under a limit ([`PICK_LIMITED`]) when both are found.
const PICK_WITH_PRIORITY: &str = "SELECT json_group_array(json_array(id, priority)) FROM (
         SELECT id, priority FROM jobs_job
         WHERE state = 'Enqueued' AND concurrency_key IS NULL AND queue = ?1
           AND name NOT IN (SELECT name FROM jobs_paused WHERE kind = 'job')
           AND NOT EXISTS (SELECT 1 FROM jobs_paused WHERE kind = 'queue' AND name = ?1)
         ORDER BY priority, id LIMIT ?2)";

/// [`PICK`] for jobs under a concurrency limit, from the index of waiting
/// limited jobs: of the first `?3` waiting whose key is below its limit,
/// no more of each key than its limit less its jobs running (counted
/// among the `Processing` jobs, in this write transaction: SQLite's
/// writers take turns, so no other fetch takes room meanwhile).
pub(super) const PICK_LIMITED: &str = "WITH running AS (
         SELECT concurrency_key, count(*) AS n, min(concurrency_limit) AS lowest FROM jobs_job
         WHERE state = 'Processing' AND concurrency_key IS NOT NULL
         GROUP BY concurrency_key
     )
     SELECT json_group_array(json_array(id, priority)) FROM (
         SELECT id, priority FROM (
             SELECT c.id, c.priority,
                    c.concurrency_limit - coalesce(r.n, 0)
                    - row_number() OVER (PARTITION BY c.concurrency_key
                                         ORDER BY c.priority, c.id) AS room_after
             FROM (SELECT id, priority, concurrency_key, concurrency_limit FROM jobs_job
                   WHERE state = 'Enqueued' AND concurrency_key IS NOT NULL AND queue = ?1
                     AND name NOT IN (SELECT name FROM jobs_paused WHERE kind = 'job')
                     AND concurrency_key NOT IN (
                         SELECT concurrency_key FROM running WHERE n >= lowest)
                   ORDER BY priority, id LIMIT ?3) AS c
             LEFT JOIN running AS r ON r.concurrency_key = c.concurrency_key)
         WHERE room_after >= 0
           AND NOT EXISTS (SELECT 1 FROM jobs_paused WHERE kind = 'queue' AND name = ?1)
         ORDER BY priority, id LIMIT ?2)";

/// How many waiting limited jobs of a queue a fetch looks at, in order:
/// keys whose jobs are all further down wait for a later fetch.
const LIMITED_WINDOW: i64 = 1000;

/// Moves the jobs of the JSON array `?4` to `Processing` for server `?1` at
/// time `?2` with a lease of `?3` ms, clearing the progress an earlier
/// attempt reported.
const TAKE: &str = "UPDATE jobs_job
     SET state = 'Processing', attempt = attempt + 1, server = ?1,
         lease_expires_at = ?2 + ?3, state_changed_at = ?2, run_at = NULL,
         reason = NULL, state_data = json_object('server', ?1, 'attempt', attempt + 1),
         progress = NULL
     WHERE id IN (SELECT value FROM json_each(?4))";

/// The jobs of the JSON array `?1` as one JSON array of `[id, name, queue,
/// args, attempt, max_attempts, priority, created_at, parent_result]`: one
/// row from SQLite's thread for the whole batch rather than one per job.
const TAKEN: &str =
    "SELECT json_group_array(json_array(id, name, queue, args, attempt, max_attempts,
                                                 priority, created_at, parent_result,
                                                 trace_context))
     FROM jobs_job WHERE id IN (SELECT value FROM json_each(?1))";

/// Records outcomes at time `?1`: `?2` is a JSON array of `[id, attempt,
/// state, reason, data, run_after_ms, grant_attempt, release_server,
/// from_state, result]`. Each job is found by its primary key: the state it must
/// be in comes from the array (`from_state`, always `Processing`), not as a
/// literal, so the planner cannot take the partial index of processing jobs
/// instead, whatever `ANALYZE` found (see the plan tests). `?3` is true for
/// a rescue: only while the lease is still expired.
pub(super) const FINISH: &str = "UPDATE jobs_job
     SET state = o.state, state_changed_at = ?1, lease_expires_at = NULL,
         run_at = ?1 + o.run_after_ms,
         max_attempts = jobs_job.max_attempts + o.grant_attempt,
         server = CASE WHEN o.release_server THEN NULL ELSE jobs_job.server END,
         reason = o.reason, state_data = o.data, result = o.result
     FROM (SELECT value ->> 0 AS id, value ->> 1 AS attempt, value ->> 2 AS state,
                  value ->> 3 AS reason, value ->> 4 AS data, value ->> 5 AS run_after_ms,
                  value ->> 6 AS grant_attempt, value ->> 7 AS release_server,
                  value ->> 8 AS from_state, value ->> 9 AS result
           FROM json_each(?2)) AS o
     WHERE jobs_job.id = o.id AND jobs_job.attempt = o.attempt AND jobs_job.state = o.from_state
       AND (NOT ?3 OR jobs_job.lease_expires_at < ?1)";

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
pub(super) const EXTEND_LEASES: &str = "UPDATE jobs_job SET lease_expires_at = ?1 + ?3
     FROM (SELECT value ->> 0 AS id, value ->> 1 AS attempt, value ->> 2 AS from_state
           FROM json_each(?2)) AS held
     WHERE jobs_job.id = held.id AND jobs_job.attempt = held.attempt
       AND jobs_job.state = held.from_state
     RETURNING jobs_job.id";

/// Moves jobs for an operator at time `?1`: `?2` a JSON array of ids, `?3`
/// the new state, `?4` a JSON array of the states a job may move from
/// ([`State::sources`]), `?5` the reason. A requeued job gets at least one
/// attempt more than it used, and loses the result of its earlier run. A
/// running job moved keeps, as the move's data, the attempt it stopped
/// (`{"server": ..., "attempt": ...}`). A unique job is left alone when the
/// move would take it into its key's states while another job holds the
/// key.
const MOVE: &str = "UPDATE jobs_job
     SET state = ?3, state_changed_at = ?1, lease_expires_at = NULL, server = NULL,
         run_at = NULL, reason = ?5,
         state_data = CASE WHEN state = 'Processing'
                           THEN json_object('server', server, 'attempt', attempt) END,
         max_attempts = CASE WHEN ?3 = 'Enqueued' THEN max(max_attempts, attempt + 1)
                             ELSE max_attempts END,
         result = CASE WHEN ?3 = 'Enqueued' THEN NULL ELSE result END
     WHERE id IN (SELECT value FROM json_each(?2))
       AND state IN (SELECT value FROM json_each(?4))
       AND (unique_key IS NULL
            OR instr(unique_states, ',' || ?3 || ',') = 0
            OR NOT EXISTS (SELECT 1 FROM jobs_job AS holder
                           WHERE holder.unique_key = jobs_job.unique_key
                             AND holder.id <> jobs_job.id
                             AND instr(holder.unique_states, ',' || holder.state || ',') > 0))
     RETURNING id";

/// The rows of [`FINISH`] for `params`.
fn outcome_rows(params: &FinishParams) -> String {
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
                stored.result,
            ])
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

/// Decides, at time `?1`, the `Awaiting` continuations of the jobs of the
/// JSON array `?2` (ids) that are in a final state (the JSON array `?3`):
/// each moves to `Enqueued` when that state is one it awaits (its stored
/// `continue_on`, written by [`ContinueOn::stored`](jobs_core::ContinueOn::stored)),
/// with the reason `?4`, else to `Deleted` with `?5`, and keeps the
/// parent's result. Found through `jobs_job_parent`, which holds only
/// continuations. Returns the continuations moved, with their new state.
pub(super) const CONTINUE: &str = "UPDATE jobs_job AS c
     SET state = CASE WHEN instr(',' || c.continue_on || ',', ',' || p.state || ',') > 0
                      THEN 'Enqueued' ELSE 'Deleted' END,
         reason = CASE WHEN instr(',' || c.continue_on || ',', ',' || p.state || ',') > 0
                       THEN ?4 ELSE ?5 END,
         state_data = json_object('parent', p.id, 'parent_state', p.state),
         state_changed_at = ?1, parent_result = p.result
     FROM jobs_job AS p
     WHERE c.parent_id = p.id AND c.state = 'Awaiting'
       AND p.id IN (SELECT value FROM json_each(?2))
       AND p.state IN (SELECT value FROM json_each(?3))
     RETURNING id, state";

/// The final states, as [`CONTINUE`] binds them.
pub(super) fn final_states() -> String {
    let finals: Vec<&str> = State::ALL
        .into_iter()
        .filter(|state| state.is_final())
        .map(State::as_str)
        .collect();
    serde_json::to_string(&finals).expect("strings serialize")
}

/// Runs [`CONTINUE`] for the jobs `ids` (a JSON array) in the open write
/// transaction at time `now`, then again for the continuations it deleted
/// (a final state in their turn), until a round deletes none: on SQLite,
/// whose writers take turns, a job's continuations, chains included, are
/// decided in the transaction that moves the job, and the leader's check
/// only has batches left to decide. Returns how many it moved.
pub(super) async fn continue_awaiting(
    conn: &mut SqliteConnection,
    now: i64,
    ids: &str,
) -> std::result::Result<usize, sqlx::Error> {
    let mut ids = ids.to_owned();
    let mut moved = 0;
    loop {
        let decided: Vec<(i64, String)> = sqlx::query_as(CONTINUE)
            .bind(now)
            .bind(&ids)
            .bind(final_states())
            .bind(decide::PARENT_AS_AWAITED)
            .bind(decide::PARENT_NOT_AS_AWAITED)
            .fetch_all(&mut *conn)
            .await?;
        moved += decided.len();
        let deleted: Vec<i64> = decided
            .into_iter()
            .filter(|(_, state)| state == State::Deleted.as_str())
            .map(|(id, _)| id)
            .collect();
        if deleted.is_empty() {
            return Ok(moved);
        }
        ids = serde_json::to_string(&deleted).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    }
}

impl SqliteStorage {
    /// Records outcomes with [`FINISH`]; `rescue` adds that the lease must
    /// still be expired.
    pub(super) async fn record_outcomes(
        &self,
        operation: &'static str,
        params: FinishParams,
        rescue: bool,
    ) -> Result<Vec<JobId>> {
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = outcome_rows(&params);
        let (mut tx, now) = self.write(operation).await?;
        // Counted rather than returned: each returned row is a message from
        // SQLite's thread, and nearly always every job moves.
        let changed = sqlx::query(FINISH)
            .bind(now)
            .bind(&rows)
            .bind(rescue)
            .execute(&mut *tx)
            .await
            .map_err(|e| storage_error(operation, e))?
            .rows_affected();
        let moved: Vec<i64> = if changed == params.jobs.len() as u64 {
            params.jobs.iter().map(|job| job.job.id.0).collect()
        } else {
            moved_at(&mut tx, now, &rows)
                .await
                .map_err(|e| storage_error(operation, e))?
        };
        let ids = serde_json::to_string(&moved).map_err(|e| Error::storage(operation, e))?;
        // Continuations enqueued here wake other servers through the
        // file's `data_version`, as every commit does.
        continue_awaiting(&mut tx, now, &ids)
            .await
            .map_err(|e| storage_error(operation, e))?;
        tx.commit().await.map_err(|e| storage_error(operation, e))?;
        Ok(sorted_ids(moved))
    }
}

async fn moved_at(
    tx: &mut Transaction<'static, Sqlite>,
    now: i64,
    rows: &str,
) -> std::result::Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(MOVED_AT)
        .bind(now)
        .bind(rows)
        .fetch_all(&mut **tx)
        .await
}

/// Stores new jobs with neither parent nor batch in the open write
/// transaction, at the database's clock `now` (a delay is added to it, not
/// to the client's clock); the history triggers record each one's first
/// state with its reason and data. Returns the new ids in the jobs' order.
/// No job may be unique (see [`insert_unique`]).
pub(super) async fn insert_jobs(
    conn: &mut SqliteConnection,
    now: i64,
    jobs: &[NewJob],
) -> std::result::Result<Vec<i64>, sqlx::Error> {
    if crate::unique::needs_control(jobs) {
        let rows = jobs.iter().map(|job| control_row(job, None)).collect();
        let stored = insert_rows(conn, now, rows, Columns::Control).await?;
        return Ok(stored.into_iter().map(|(id, _)| id).collect());
    }
    let rows = jobs
        .iter()
        .map(|job| with_trace(plain_row(job), job))
        .collect();
    let stored = insert_rows(conn, now, rows, Columns::Plain).await?;
    Ok(stored.into_iter().map(|(id, _)| id).collect())
}

/// Stores new jobs with neither parent nor batch, some of them unique, with
/// their unique keys as stored (`keys`, see
/// [`stored_keys`](crate::unique::stored_keys)): a job whose key another
/// job holds is skipped (`ON CONFLICT DO NOTHING` on `jobs_job_unique`).
/// Returns the rows stored, `(id, unique_key)`, sorted by id.
pub(super) async fn insert_unique(
    conn: &mut SqliteConnection,
    now: i64,
    jobs: &[NewJob],
    keys: &[Option<String>],
) -> std::result::Result<Vec<(i64, Option<String>)>, sqlx::Error> {
    let rows = jobs
        .iter()
        .zip(keys)
        .map(|(job, key)| control_row(job, key.as_deref()))
        .collect();
    insert_rows(conn, now, rows, Columns::Unique).await
}

/// `row` with the job's trace context added as its last column (see
/// [`insert_rows`]).
fn with_trace(mut row: serde_json::Value, job: &NewJob) -> serde_json::Value {
    if let serde_json::Value::Array(values) = &mut row {
        values.push(serde_json::json!(job.trace_context));
    }
    row
}

/// The ten first columns [`insert_rows`] reads for a job with neither
/// parent nor batch, nor unique key nor concurrency limit; its trace
/// context follows ([`with_trace`]).
fn plain_row(job: &NewJob) -> serde_json::Value {
    serde_json::json!([
        job.name,
        job.queue,
        job.args,
        job.max_attempts,
        job.schedule.state().as_str(),
        job.schedule.at().map(|at| at.timestamp_millis()),
        job.schedule.delay().map(millis),
        job.reason,
        job.data,
        job.priority,
    ])
}

/// The row [`insert_rows`] reads for a job with neither parent nor batch,
/// with its unique key as stored and its concurrency limit: the ten
/// columns of [`plain_row`], no parent nor batch, the control ones, then
/// the trace context.
fn control_row(job: &NewJob, unique_key: Option<&str>) -> serde_json::Value {
    let mut row = plain_row(job);
    if let serde_json::Value::Array(values) = &mut row {
        values.extend(std::iter::repeat_n(serde_json::Value::Null, 5));
        values.extend([
            serde_json::json!(unique_key),
            serde_json::json!(job.unique.as_ref().map(jobs_core::UniqueKey::stored_states)),
            serde_json::json!(job.concurrency.as_ref().map(|limit| limit.key.as_str())),
            serde_json::json!(job.concurrency.as_ref().map(|limit| limit.limit)),
        ]);
    }
    with_trace(row, job)
}

/// Stores jobs as [`plan`](crate::related::plan) decided them, with their
/// parents and batches, as [`insert_jobs`] does (none is unique).
pub(super) async fn insert_planned(
    conn: &mut SqliteConnection,
    now: i64,
    rows: &[JobRow<'_>],
) -> std::result::Result<Vec<i64>, sqlx::Error> {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let waits = row.state == State::Scheduled;
            serde_json::json!([
                row.job.name,
                row.job.queue,
                row.job.args,
                row.job.max_attempts,
                row.state.as_str(),
                row.job
                    .schedule
                    .at()
                    .filter(|_| waits)
                    .map(|at| at.timestamp_millis()),
                row.job.schedule.delay().filter(|_| waits).map(millis),
                row.reason,
                row.data,
                row.job.priority,
                row.parent_id(),
                row.parent_batch(),
                row.continue_on(),
                row.parent_result,
                row.batch(),
                null,
                null,
                row.job.concurrency.as_ref().map(|limit| limit.key.as_str()),
                row.job.concurrency.as_ref().map(|limit| limit.limit),
                row.job.trace_context,
            ])
        })
        .collect();
    let stored = insert_rows(conn, now, rows, Columns::Control).await?;
    Ok(stored.into_iter().map(|(id, _)| id).collect())
}

/// Which columns [`insert_rows`] stores.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Columns {
    /// The ten first and the trace context: the hot path's bulk enqueue.
    Plain,
    /// All twenty.
    Control,
    /// All twenty, skipping a row whose unique key another job holds.
    Unique,
}

/// The columns of [`insert_rows`]: rows of `[name, queue, args,
/// max_attempts, state, run_at, run_in_ms, reason, data, priority]`, then
/// for [`Columns::Control`] `[parent_id, parent_batch_id, continue_on,
/// parent_result, batch_id, unique_key, unique_states, concurrency_key,
/// concurrency_limit]`, then `trace_context`.
const INSERT_PLAIN: &str = "INSERT INTO jobs_job (name, queue, args, state, max_attempts,
                               created_at, state_changed_at, run_at, reason, state_data,
                               priority, trace_context)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 4, value ->> 3, ?1, ?1,
                coalesce(value ->> 5, ?1 + (value ->> 6)), value ->> 7, value ->> 8,
                value ->> 9, value ->> 10
         FROM json_each(?2)
         RETURNING id, NULL";

/// [`INSERT_PLAIN`] with every column; `{on_conflict}` is empty or skips a
/// row whose unique key another job holds (`WHERE true` keeps SQLite from
/// reading `ON` as a join's).
const INSERT_ALL: &str = "INSERT INTO jobs_job (name, queue, args, state, max_attempts,
                               created_at, state_changed_at, run_at, reason, state_data,
                               priority, parent_id, parent_batch_id, continue_on,
                               parent_result, batch_id, unique_key, unique_states,
                               concurrency_key, concurrency_limit, trace_context)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 4, value ->> 3, ?1, ?1,
                coalesce(value ->> 5, ?1 + (value ->> 6)), value ->> 7, value ->> 8,
                value ->> 9, value ->> 10, value ->> 11, value ->> 12, value ->> 13,
                value ->> 14, value ->> 15, value ->> 16, value ->> 17, value ->> 18,
                value ->> 19
         FROM json_each(?2)
         {on_conflict}
         RETURNING id, unique_key";

/// Inserts JSON rows with the columns `columns` names (see
/// [`INSERT_PLAIN`]); returns `(id, unique_key)` of the rows stored,
/// sorted by id.
async fn insert_rows(
    conn: &mut SqliteConnection,
    now: i64,
    rows: Vec<serde_json::Value>,
    columns: Columns,
) -> std::result::Result<Vec<(i64, Option<String>)>, sqlx::Error> {
    let rows = serde_json::to_string(&rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let statement = match columns {
        Columns::Plain => INSERT_PLAIN.to_owned(),
        Columns::Control => INSERT_ALL.replace("{on_conflict}", ""),
        Columns::Unique => INSERT_ALL.replace("{on_conflict}", "WHERE true ON CONFLICT DO NOTHING"),
    };
    let mut stored: Vec<(i64, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .bind(now)
        .bind(rows)
        .fetch_all(conn)
        .await?;
    stored.sort_unstable_by_key(|row| row.0);
    Ok(stored)
}

#[async_trait::async_trait]
impl JobStorage for SqliteStorage {
    async fn enqueue(&self, params: EnqueueParams) -> Result<Vec<JobId>> {
        let (mut tx, now) = self.write(super::related::OP).await?;
        let ids = super::related::enqueue_on(&mut tx, now, &params).await?;
        tx.commit()
            .await
            .map_err(|e| storage_error(super::related::OP, e))?;
        Ok(ids)
    }

    async fn cancel_batch(&self, id: BatchId) -> Result<Vec<JobId>> {
        self.batch_cancel(id).await
    }

    async fn set_paused(&self, params: SetPausedParams) -> Result<bool> {
        self.paused_set(params).await
    }

    async fn write_log(&self, params: WriteLogParams) -> Result<()> {
        self.log_write(params).await
    }

    async fn set_parameters(&self, params: SetParametersParams) -> Result<()> {
        self.parameters_set(params).await
    }

    async fn fetch(&self, params: FetchParams) -> Result<Vec<FetchedJob>> {
        const OP: &str = "fetching jobs";
        if params.limit == 0 || params.queues.is_empty() {
            return Ok(Vec::new());
        }
        let (mut tx, now) = self.write(OP).await?;
        let limited_due = self.limited.is_due();
        let mut limited_seen = false;
        let mut jobs = Vec::with_capacity(params.limit);
        for queue in &params.queues {
            let wanted = params.limit - jobs.len();
            if wanted == 0 {
                break;
            }
            let pick = |statement: &'static str| {
                sqlx::query_scalar::<_, String>(statement)
                    .bind(queue)
                    .bind(i64::try_from(wanted).unwrap_or(i64::MAX))
                    .bind(LIMITED_WINDOW)
            };
            let mut picked: String = pick(PICK)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?;
            // Jobs under a limit, when some may wait or this queue has
            // fewer others than wanted; merged with the others by
            // priority then id when both are found.
            // The ids are `[1,2,3]`: counted by their commas, not parsed.
            let picked_count = if picked == "[]" {
                0
            } else {
                picked.bytes().filter(|&byte| byte == b',').count() + 1
            };
            if limited_due || picked_count < wanted {
                let limited: String = pick(PICK_LIMITED)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| storage_error(OP, e))?;
                let limited: Vec<(i64, i16)> =
                    serde_json::from_str(&limited).map_err(|e| Error::storage(OP, e))?;
                if !limited.is_empty() {
                    limited_seen = true;
                    let others: String = pick(PICK_WITH_PRIORITY)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| storage_error(OP, e))?;
                    let mut both: Vec<(i64, i16)> =
                        serde_json::from_str(&others).map_err(|e| Error::storage(OP, e))?;
                    both.extend(limited);
                    both.sort_unstable_by_key(|&(id, priority)| (priority, id));
                    both.truncate(wanted);
                    let ids: Vec<i64> = both.into_iter().map(|(id, _)| id).collect();
                    picked = serde_json::to_string(&ids).map_err(|e| Error::storage(OP, e))?;
                }
            }
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
            FetchedJob::sort_for(&mut rows, &params.queues);
            jobs.extend(rows);
        }
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        if limited_due || limited_seen {
            self.limited.looked(limited_seen);
        }
        Ok(jobs)
    }

    async fn finish(&self, params: FinishParams) -> Result<Vec<JobId>> {
        self.record_outcomes("recording outcomes", params, false)
            .await
    }

    async fn extend_leases(&self, params: ExtendLeasesParams) -> Result<Vec<JobId>> {
        const OP: &str = "extending leases";
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let (mut tx, now) = self.write(OP).await?;
        let held: Vec<i64> = sqlx::query_scalar(EXTEND_LEASES)
            .bind(now)
            .bind(attempts_json(&params.jobs))
            .bind(millis(params.lease))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(sorted_ids(held))
    }

    async fn move_jobs(&self, params: MoveParams) -> Result<Vec<JobId>> {
        const OP: &str = "moving jobs";
        let ids: Vec<i64> = params.ids.iter().map(|id| id.0).collect();
        let sources = params.sources()?;
        let ids = serde_json::to_string(&ids).map_err(|e| Error::storage(OP, e))?;
        let sources = serde_json::to_string(&sources).map_err(|e| Error::storage(OP, e))?;
        let (mut tx, now) = self.write(OP).await?;
        let moved: Vec<i64> = sqlx::query_scalar(MOVE)
            .bind(now)
            .bind(ids)
            .bind(params.to.as_str())
            .bind(sources)
            .bind(jobs_core::storable_text(&params.reason).as_ref())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| storage_error(OP, e))?;
        let moved_ids = serde_json::to_string(&moved).map_err(|e| Error::storage(OP, e))?;
        continue_awaiting(&mut tx, now, &moved_ids)
            .await
            .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(sorted_ids(moved))
    }
}
