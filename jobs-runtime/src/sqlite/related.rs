//! Storing jobs on SQLite, in a write transaction (the storage's, or the
//! application's own): jobs with neither parent nor batch in one insert;
//! the others after reading the parents and batches they name, as
//! [`plan`] decides.

use std::collections::HashMap;

use jobs_core::{BatchId, EnqueueParams, Error, JobId, NewJob, Result, State};
use sqlx::{Row, SqliteConnection};

use super::batches::batch_results;
use super::jobs::{insert_jobs, insert_planned, insert_unique};
use crate::related::{self, ParentJob, StoredBatch, plan};
use crate::sorted_ids::sorted_ids;
use crate::sql_error::storage_error;
use crate::{job_parameters, unique};

pub(super) const OP: &str = "enqueueing jobs";

/// Stores `params` on `conn`, inside its write transaction, at the
/// database's clock `now`.
///
/// # Errors
/// As [`JobStorage::enqueue`](jobs_core::JobStorage::enqueue).
pub(crate) async fn enqueue_on(
    conn: &mut SqliteConnection,
    now: i64,
    params: &EnqueueParams,
) -> Result<Vec<JobId>> {
    let parameters = job_parameters::any(&params.jobs)?;
    let (ids, stored) = store(conn, now, params).await?;
    if parameters {
        let rows = job_parameters::rows(&params.jobs, &ids, stored.as_deref());
        let rows: Vec<serde_json::Value> = (0..rows.job_ids.len())
            .map(|row| serde_json::json!([rows.job_ids[row], rows.names[row], rows.values[row]]))
            .collect();
        sqlx::query(
            "INSERT INTO jobs_job_parameter (job_id, name, value)
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1)",
        )
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&mut *conn)
        .await
        .map_err(|e| storage_error(OP, e))?;
    }
    Ok(ids)
}

/// Stores the jobs and batches of `params`; returns the jobs' ids in
/// order and, for unique jobs, which of them were stored (not given their
/// key's holder's id).
async fn store(
    conn: &mut SqliteConnection,
    now: i64,
    params: &EnqueueParams,
) -> Result<(Vec<JobId>, Option<Vec<bool>>)> {
    unique::refuse_related(params)?;
    if params.batches.is_empty() && !params.jobs.iter().any(|job| job.is_related()) {
        if unique::any_unique(params) {
            let settled = unique_jobs(conn, now, &params.jobs).await?;
            return Ok((settled.ids, Some(settled.stored)));
        }
        let ids = insert_jobs(conn, now, &params.jobs)
            .await
            .map_err(|e| storage_error(OP, e))?;
        return Ok((sorted_ids(ids), None));
    }
    let json =
        |value: Vec<String>| serde_json::to_string(&value).map_err(|e| Error::storage(OP, e));
    let parent_ids: Vec<String> = related::parent_jobs(params)
        .iter()
        .map(|id| id.0.to_string())
        .collect();
    let mut parents = HashMap::new();
    if !parent_ids.is_empty() {
        let rows = sqlx::query(
            "SELECT id, state, result FROM jobs_job
             WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(parent_ids)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| storage_error(OP, e))?;
        for row in rows {
            let state: String = row.try_get("state").map_err(|e| storage_error(OP, e))?;
            parents.insert(
                JobId(row.try_get("id").map_err(|e| storage_error(OP, e))?),
                ParentJob {
                    state: state.parse::<State>().map_err(|e| Error::storage(OP, e))?,
                    result: row.try_get("result").map_err(|e| storage_error(OP, e))?,
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT b.id, b.state, b.root_id,
                    CASE WHEN b.state <> 'Started' THEN {} END AS results
             FROM jobs_batch b WHERE b.id IN (SELECT value FROM json_each(?1))",
            batch_results()
        )))
        .bind(json(batch_ids)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| storage_error(OP, e))?;
        for row in rows {
            let state: String = row.try_get("state").map_err(|e| storage_error(OP, e))?;
            batches.insert(
                BatchId(row.try_get("id").map_err(|e| storage_error(OP, e))?),
                StoredBatch {
                    state: state.parse().map_err(|e| Error::storage(OP, e))?,
                    root: BatchId(row.try_get("root_id").map_err(|e| storage_error(OP, e))?),
                    results: row.try_get("results").map_err(|e| storage_error(OP, e))?,
                },
            );
        }
    }
    let plan = plan(params, &parents, &batches)?;

    if !plan.batches.is_empty() {
        let rows: Vec<serde_json::Value> = plan
            .batches
            .iter()
            .map(|row| {
                serde_json::json!([
                    row.batch.id.as_str(),
                    row.batch.parent.as_ref().map(BatchId::as_str),
                    row.root.as_str(),
                    row.batch.description,
                ])
            })
            .collect();
        sqlx::query(
            "INSERT INTO jobs_batch (id, parent_id, root_id, description, state, created_at)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, 'Started', ?1
             FROM json_each(?2)",
        )
        .bind(now)
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&mut *conn)
        .await
        .map_err(|e| storage_error(OP, e))?;
    }
    let joined: Vec<String> = related::joined_stored_batches(params)
        .into_iter()
        .map(|id| id.0)
        .collect();
    if !joined.is_empty() {
        sqlx::query(
            "UPDATE jobs_batch SET version = version + 1
             WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(joined)?)
        .execute(&mut *conn)
        .await
        .map_err(|e| storage_error(OP, e))?;
    }
    let ids = insert_planned(conn, now, &plan.jobs)
        .await
        .map_err(|e| storage_error(OP, e))?;
    Ok((sorted_ids(ids), None))
}

/// Stores jobs some of which are unique, in the open write transaction:
/// each round inserts the jobs still without an id, skipping those whose
/// key another job holds, then reads the holders of the keys skipped (see
/// [`unique`]). Returns the ids in the jobs' order: a skipped job's is its
/// key's holder's. SQLite's writers take turns, so the first round
/// settles every job unless an application's transaction holds a key
/// without having written it yet.
async fn unique_jobs(
    conn: &mut SqliteConnection,
    now: i64,
    jobs: &[NewJob],
) -> Result<unique::Settled> {
    let mut settling = unique::Settling::new(jobs.len());
    for _ in 0..unique::MAX_ROUNDS {
        let round: Vec<NewJob> = settling
            .pending()
            .iter()
            .map(|&slot| jobs[slot].clone())
            .collect();
        let keys = unique::stored_keys(&round, now);
        let inserted = insert_unique(conn, now, &round, &keys)
            .await
            .map_err(|e| storage_error(OP, e))?;
        let skipped = unique::skipped_keys(&keys, &inserted);
        let holders: HashMap<String, i64> = if skipped.is_empty() {
            HashMap::new()
        } else {
            let skipped = serde_json::to_string(&skipped).map_err(|e| Error::storage(OP, e))?;
            sqlx::query_as(
                "SELECT unique_key, id FROM jobs_job
                 WHERE unique_key IN (SELECT value FROM json_each(?1))
                   AND instr(unique_states, ',' || state || ',') > 0",
            )
            .bind(skipped)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| storage_error(OP, e))?
            .into_iter()
            .collect()
        };
        let placed = unique::place(&keys, &inserted, &holders)?;
        if let Some(settled) = settling.settle(placed, &inserted) {
            return Ok(settled);
        }
    }
    Err(unique::gave_up())
}
