//! Storing jobs on PostgreSQL, on any connection (the storage's pool, or
//! the application's own transaction): jobs with neither parent nor batch
//! in one statement; the others in a transaction (a savepoint inside the
//! application's) that locks what they name, as [`plan`] decides.

use std::collections::HashMap;

use jobs_core::{BatchId, EnqueueParams, JobId, NewJob, Result};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

use super::batches::batch_results;
use super::decode::decode_batch_state;
use super::jobs::{NewJobColumns, insert_jobs};
use super::{channel_of, in_schema};
use crate::related::{self, ParentJob, StoredBatch, plan};
use crate::sorted_ids::sorted_ids;
use crate::sql_error::storage_error;
use crate::{job_parameters, unique};

const OP: &str = "enqueueing jobs";

/// Stores `params` with the tables in `schema`, on `conn`: jobs and
/// batches exist once the transaction `conn` is in (if any) commits, and
/// the servers listening are woken then.
///
/// # Errors
/// As [`JobStorage::enqueue`](jobs_core::JobStorage::enqueue).
pub(crate) async fn enqueue_on(
    conn: &mut PgConnection,
    schema: &str,
    params: EnqueueParams,
) -> Result<Vec<JobId>> {
    if !job_parameters::any(&params.jobs)? {
        return store(conn, schema, &params).await.map(|(ids, _)| ids);
    }
    // The jobs and their parameters commit together.
    let mut tx = conn.begin().await.map_err(|e| storage_error(OP, e))?;
    let (ids, stored) = store(&mut tx, schema, &params).await?;
    let rows = job_parameters::rows(&params.jobs, &ids, stored.as_deref());
    sqlx::query(in_schema(
        schema,
        "INSERT INTO {s}.jobs_job_parameter (job_id, name, value)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])",
    ))
    .bind(rows.job_ids)
    .bind(rows.names)
    .bind(rows.values)
    .execute(&mut *tx)
    .await
    .map_err(|e| storage_error(OP, e))?;
    tx.commit().await.map_err(|e| storage_error(OP, e))?;
    Ok(ids)
}

/// Stores the jobs and batches of `params`; returns the jobs' ids in
/// order and, for unique jobs, which of them were stored (not given their
/// key's holder's id).
async fn store(
    conn: &mut PgConnection,
    schema: &str,
    params: &EnqueueParams,
) -> Result<(Vec<JobId>, Option<Vec<bool>>)> {
    unique::refuse_related(params)?;
    let channel = channel_of(schema);
    if params.batches.is_empty() && !params.jobs.iter().any(|job| job.is_related()) {
        if unique::any_unique(params) {
            let mut tx = conn.begin().await.map_err(|e| storage_error(OP, e))?;
            let settled = unique_jobs(&mut tx, schema, &channel, &params.jobs)
                .await
                .map_err(|e| match e {
                    Failure::Sql(e) => storage_error(OP, e),
                    Failure::Refused(e) => e,
                })?;
            tx.commit().await.map_err(|e| storage_error(OP, e))?;
            return Ok((settled.ids, Some(settled.stored)));
        }
        // One statement: insert, and wake the listening servers on commit.
        let control = unique::needs_control(&params.jobs);
        let sql = in_schema(
            schema,
            &format!(
                "WITH {} SELECT id FROM inserted LEFT JOIN notified ON true",
                insert_jobs("", false, control)
            ),
        );
        let mut columns = NewJobColumns::of(&params.jobs);
        if control {
            let no_keys = vec![None; params.jobs.len()];
            columns = columns.with_control(params.jobs.iter(), no_keys);
        }
        let arguments = columns
            .arguments(&channel)
            .map_err(|e| storage_error(OP, sqlx::Error::Encode(e)))?;
        let ids: Vec<i64> = sqlx::query_scalar_with(sql, arguments)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| storage_error(OP, e))?;
        return Ok((sorted_ids(ids), None));
    }
    let mut tx = conn.begin().await.map_err(|e| storage_error(OP, e))?;
    let ids = related_jobs(&mut tx, schema, &channel, params)
        .await
        .map_err(|e| match e {
            Failure::Sql(e) => storage_error(OP, e),
            Failure::Refused(e) => e,
        })?;
    tx.commit().await.map_err(|e| storage_error(OP, e))?;
    Ok((sorted_ids(ids), None))
}

/// [`enqueue_on`] inside a savepoint of the application's transaction
/// `conn` (a failure leaves the transaction usable), `max_attempts` of 0
/// raised to 1 as the `Storage` handle does.
pub(crate) async fn enqueue_in_savepoint(
    conn: &mut PgConnection,
    schema: &str,
    mut params: EnqueueParams,
) -> Result<Vec<JobId>> {
    for job in &mut params.jobs {
        job.max_attempts = job.max_attempts.max(1);
    }
    let mut savepoint = conn.begin().await.map_err(|e| storage_error(OP, e))?;
    let ids = enqueue_on(&mut savepoint, schema, params).await?;
    savepoint.commit().await.map_err(|e| storage_error(OP, e))?;
    Ok(ids)
}

enum Failure {
    Sql(sqlx::Error),
    Refused(jobs_core::Error),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Failure::Sql(error)
    }
}

/// Reads the parents and batches `params` names, plans, and writes.
///
/// A parent job is locked `FOR KEY SHARE`: it cannot be deleted (expired)
/// before this transaction ends, and nothing else waits for it: a finish,
/// a lease renewal or an operator's move of the parent goes on while the
/// application's transaction is open. A parent that finishes meanwhile
/// does not see this continuation (its statement's snapshot is older), so
/// the leader's `resolve_awaiting` decides it, within its check interval.
/// Batches are locked `FOR UPDATE` and their version moved on: one cannot
/// finish over the members added here, and the leader's check skips a
/// locked batch rather than waiting for it.
async fn related_jobs(
    conn: &mut PgConnection,
    schema: &str,
    channel: &str,
    params: &EnqueueParams,
) -> std::result::Result<Vec<i64>, Failure> {
    let sql = |template: &str| in_schema(schema, template);
    let parent_ids: Vec<i64> = related::parent_jobs(params).iter().map(|id| id.0).collect();
    let mut parents = HashMap::new();
    if !parent_ids.is_empty() {
        let rows = sqlx::query(sql(
            "SELECT id, state, result FROM {s}.jobs_job WHERE id = ANY($1) ORDER BY id
             FOR KEY SHARE",
        ))
        .bind(&parent_ids)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let state: String = row.try_get("state")?;
            parents.insert(
                JobId(row.try_get("id")?),
                ParentJob {
                    state: super::decode::decode_state(&state)?,
                    result: row.try_get("result")?,
                },
            );
        }
    }
    let batch_ids: Vec<String> = related::stored_batches(params)
        .into_iter()
        .map(|id| id.0)
        .collect();
    let mut batches = HashMap::new();
    if !batch_ids.is_empty() {
        let rows = sqlx::query(sql(&format!(
            "SELECT b.id, b.state, b.root_id,
                    CASE WHEN b.state <> 'Started' THEN {} END AS results
             FROM {{s}}.jobs_batch b WHERE b.id = ANY($1) ORDER BY b.id FOR UPDATE",
            batch_results()
        )))
        .bind(&batch_ids)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let state: String = row.try_get("state")?;
            batches.insert(
                BatchId(row.try_get("id")?),
                StoredBatch {
                    state: decode_batch_state(&state)?,
                    root: BatchId(row.try_get("root_id")?),
                    results: row.try_get("results")?,
                },
            );
        }
    }
    let plan = plan(params, &parents, &batches).map_err(Failure::Refused)?;

    if !plan.batches.is_empty() {
        let ids: Vec<&str> = plan.batches.iter().map(|b| b.batch.id.as_str()).collect();
        let parents: Vec<Option<&str>> = plan
            .batches
            .iter()
            .map(|b| b.batch.parent.as_ref().map(BatchId::as_str))
            .collect();
        let roots: Vec<&str> = plan.batches.iter().map(|b| b.root.as_str()).collect();
        let descriptions: Vec<Option<&str>> = plan
            .batches
            .iter()
            .map(|b| b.batch.description.as_deref())
            .collect();
        sqlx::query(sql(
            "INSERT INTO {s}.jobs_batch (id, parent_id, root_id, description, state, created_at)
             SELECT id, parent_id, root_id, description, 'Started', now()
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                  AS new(id, parent_id, root_id, description)",
        ))
        .bind(ids)
        .bind(parents)
        .bind(roots)
        .bind(descriptions)
        .execute(&mut *conn)
        .await?;
    }
    let joined: Vec<String> = related::joined_stored_batches(params)
        .into_iter()
        .map(|id| id.0)
        .collect();
    if !joined.is_empty() {
        sqlx::query(sql(
            "UPDATE {s}.jobs_batch SET version = version + 1 WHERE id = ANY($1)",
        ))
        .bind(joined)
        .execute(&mut *conn)
        .await?;
    }
    if plan.jobs.is_empty() {
        return Ok(Vec::new());
    }
    let control = unique::needs_control(plan.jobs.iter().map(|row| row.job));
    let statement = sql(&format!(
        "WITH {} SELECT id FROM inserted LEFT JOIN notified ON true",
        insert_jobs("", true, control)
    ));
    let mut columns = NewJobColumns::planned(&plan.jobs);
    if control {
        // No unique job here (refused): concurrency limits only.
        let no_keys = vec![None; plan.jobs.len()];
        columns = columns.with_control(plan.jobs.iter().map(|row| row.job), no_keys);
    }
    let arguments = columns.arguments(channel).map_err(sqlx::Error::Encode)?;
    Ok(sqlx::query_scalar_with(statement, arguments)
        .fetch_all(&mut *conn)
        .await?)
}

/// Stores jobs some of which are unique, in the open transaction `conn`:
/// each round inserts the jobs still without an id, skipping those whose
/// key another job holds (`ON CONFLICT DO NOTHING`, which waits for a
/// concurrent insert of the key to end), then reads the holders of the
/// keys skipped, in a statement of its own so that it sees a holder that
/// committed meanwhile (see [`unique`]). Returns the ids in the jobs'
/// order: a skipped job's is its key's holder's. The keys' periods are
/// numbered on the transaction's clock, the one the insert stores.
async fn unique_jobs(
    conn: &mut PgConnection,
    schema: &str,
    channel: &str,
    jobs: &[NewJob],
) -> std::result::Result<unique::Settled, Failure> {
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *conn)
        .await?;
    let statement = in_schema(
        schema,
        &format!(
            "WITH {} SELECT id, unique_key FROM inserted LEFT JOIN notified ON true",
            insert_jobs("", false, true)
        ),
    );
    let holders_of = in_schema(
        schema,
        "SELECT unique_key, id FROM {s}.jobs_job
         WHERE unique_key = ANY($1) AND strpos(unique_states, ',' || state || ',') > 0",
    );
    let mut settling = unique::Settling::new(jobs.len());
    for _ in 0..unique::MAX_ROUNDS {
        let round: Vec<NewJob> = settling
            .pending()
            .iter()
            .map(|&slot| jobs[slot].clone())
            .collect();
        let keys = unique::stored_keys(&round, now.timestamp_millis());
        let columns = NewJobColumns::of(&round).with_control(round.iter(), keys.clone());
        let arguments = columns.arguments(channel).map_err(sqlx::Error::Encode)?;
        let mut inserted: Vec<(i64, Option<String>)> =
            sqlx::query_as_with(AssertSqlSafe(statement.0.clone()), arguments)
                .fetch_all(&mut *conn)
                .await?;
        inserted.sort_unstable_by_key(|row| row.0);
        let skipped = unique::skipped_keys(&keys, &inserted);
        let holders: HashMap<String, i64> = if skipped.is_empty() {
            HashMap::new()
        } else {
            sqlx::query_as(AssertSqlSafe(holders_of.0.clone()))
                .bind(&skipped)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .collect()
        };
        let placed = unique::place(&keys, &inserted, &holders).map_err(Failure::Refused)?;
        if let Some(settled) = settling.settle(placed, &inserted) {
            return Ok(settled);
        }
    }
    Err(Failure::Refused(unique::gave_up()))
}

/// A connection of the application's transaction whose jobs' tables are
/// in `schema` rather than [`DEFAULT_SCHEMA`](super::DEFAULT_SCHEMA): give
/// `&mut InSchema::new(&mut *tx, "billing_jobs")` to the `enqueue_in_tx`
/// helpers.
pub struct InSchema<'c> {
    conn: &'c mut PgConnection,
    schema: &'c str,
}

impl<'c> InSchema<'c> {
    /// The connection `conn` (a transaction's: `&mut *tx`), with the
    /// tables in `schema`.
    pub fn new(conn: &'c mut PgConnection, schema: &'c str) -> Self {
        InSchema { conn, schema }
    }
}

impl crate::EnqueueInTransaction for InSchema<'_> {
    async fn enqueue_jobs(&mut self, params: EnqueueParams) -> Result<Vec<JobId>> {
        super::check_schema_name(self.schema)?;
        enqueue_in_savepoint(self.conn, self.schema, params).await
    }
}
