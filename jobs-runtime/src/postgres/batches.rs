//! Batches on PostgreSQL: reading one with its progress, cancelling one,
//! deciding what awaits finished parents, and expiring finished batches
//! with their members. The calls of the contract's traits forward here.

use chrono::{DateTime, Utc};
use jobs_core::BatchQuery;
use jobs_core::{
    BatchId, BatchRecord, BatchState, Error, JobId, ResolveAwaitingParams, Result, State,
    StateCounts, decide,
};
use sqlx::Row;

use super::PostgresStorage;
use super::decode::{decode_batch_state, decode_state, limit, millis};
use super::jobs::final_states;
use crate::sorted_ids::sorted_ids;
use crate::sql_error::storage_error;

/// The results of the succeeded member jobs of the batch `b` that
/// returned one, in member order, as one JSON array (text): what a batch
/// continuation receives; `NULL` when longer than
/// [`MAX_BATCH_RESULTS_LEN`](jobs_core::MAX_BATCH_RESULTS_LEN).
pub(super) fn batch_results() -> String {
    format!(
        "CASE WHEN (SELECT coalesce(sum(octet_length(m.result)), 0) FROM {{s}}.jobs_job m
                    WHERE m.batch_id = b.id AND m.state = 'Succeeded') > {max}
          THEN NULL
          ELSE coalesce((
              SELECT json_agg(m.result::json ORDER BY m.id)::text FROM {{s}}.jobs_job m
              WHERE m.batch_id = b.id AND m.state = 'Succeeded' AND m.result IS NOT NULL
          ), '[]') END",
        max = jobs_core::MAX_BATCH_RESULTS_LEN
    )
}

/// Finishes up to `$2` `Started` batches that have no member job in a
/// state of `$1` (those not final) and no `Started` nested batch: as
/// `Succeeded` when every member job and nested batch succeeded, else
/// `Failed`. Only while the batch's version is the one read: a batch that
/// got a member meanwhile stays `Started`. A batch locked by a transaction
/// adding members to it (perhaps the application's, open for long) is
/// skipped, not waited for. Returns the ids finished.
const FINISH_BATCHES: &str = "WITH done AS (
         SELECT b.id, b.version,
                CASE WHEN EXISTS (SELECT FROM {s}.jobs_job j
                                  WHERE j.batch_id = b.id AND j.state <> 'Succeeded')
                       OR EXISTS (SELECT FROM {s}.jobs_batch c
                                  WHERE c.parent_id = b.id AND c.state <> 'Succeeded')
                     THEN 'Failed' ELSE 'Succeeded' END AS outcome
         FROM {s}.jobs_batch b
         WHERE b.state = 'Started'
           AND NOT EXISTS (SELECT FROM {s}.jobs_job j
                           WHERE j.batch_id = b.id AND j.state = ANY($1::text[]))
           AND NOT EXISTS (SELECT FROM {s}.jobs_batch c
                           WHERE c.parent_id = b.id AND c.state = 'Started')
         ORDER BY b.created_at LIMIT $2
     ), locked AS (
         -- The latest version of each, locked, or none while another
         -- transaction holds it: compared with the version `done` read.
         SELECT id, version FROM {s}.jobs_batch
         WHERE id IN (SELECT id FROM done)
         FOR NO KEY UPDATE SKIP LOCKED
     )
     UPDATE {s}.jobs_batch AS b
     SET state = done.outcome, finished_at = now(), version = b.version + 1
     FROM done JOIN locked ON locked.id = done.id AND locked.version = done.version
     WHERE b.id = done.id AND b.state = 'Started'
     RETURNING b.id";

/// Decides up to `$2` `Awaiting` continuations whose parent job reached a
/// final state (`$1`) or whose parent batch finished, or whose parent no
/// longer exists: `Enqueued` with the reason `$3` when the parent's state
/// is one they await, else `Deleted` with `$4`, or `$5` when the parent is
/// gone; each keeps its parent's result (a batch's: its members').
/// Returns how many moved; wakes the servers (channel `$6`) when one was
/// enqueued.
fn resolve_sql() -> String {
    let batch_results = batch_results();
    format!(
        "WITH due AS (
         SELECT c.id, c.parent_id AS parent, NULL::text AS parent_batch, p.state AS parent_state,
                p.result AS parent_result
         FROM {{s}}.jobs_job c LEFT JOIN {{s}}.jobs_job p ON p.id = c.parent_id
         WHERE c.parent_id IS NOT NULL AND c.state = 'Awaiting'
           AND (p.id IS NULL OR p.state = ANY($1::text[]))
         UNION ALL
         SELECT c.id, NULL, c.parent_batch_id, b.state,
                CASE WHEN b.id IS NOT NULL THEN {batch_results} END
         FROM {{s}}.jobs_job c LEFT JOIN {{s}}.jobs_batch b ON b.id = c.parent_batch_id
         WHERE c.parent_batch_id IS NOT NULL AND c.state = 'Awaiting'
           AND (b.id IS NULL OR b.state <> 'Started')
         ORDER BY id LIMIT $2
     ), moved AS (
         UPDATE {{s}}.jobs_job AS j
         SET state = CASE WHEN due.parent_state = ANY(string_to_array(j.continue_on, ','))
                          THEN 'Enqueued' ELSE 'Deleted' END,
             reason = CASE WHEN due.parent_state IS NULL THEN $5
                           WHEN due.parent_state = ANY(string_to_array(j.continue_on, ','))
                           THEN $3 ELSE $4 END,
             state_changed_at = now(), parent_result = due.parent_result
         FROM due WHERE j.id = due.id AND j.state = 'Awaiting'
         RETURNING j.id, j.state, j.state_changed_at, j.reason,
                   jsonb_strip_nulls(jsonb_build_object(
                       'parent', due.parent, 'parent_batch', due.parent_batch,
                       'parent_state', due.parent_state)) AS data
     ), recorded AS (
         INSERT INTO {{s}}.jobs_job_state (job_id, state, at, reason, data)
         SELECT id, state, state_changed_at, reason, data FROM moved
     ), counted AS (
         SELECT count(*) AS moved, count(*) FILTER (WHERE state = 'Enqueued') AS enqueued
         FROM moved
     )
     SELECT moved FROM counted
     LEFT JOIN LATERAL (SELECT pg_notify($6, '') WHERE enqueued > 0) AS woken ON true"
    )
}

/// The most rounds of [`FINISH_BATCHES`] in one call: a nested batch
/// finishes a round before its parent can, so this is the deepest nesting
/// finished at once (a deeper tree finishes over several calls).
const MAX_NESTING_ROUNDS: usize = 32;

/// The states a job may be in and not be finished.
fn unfinished_states() -> Vec<&'static str> {
    State::ALL
        .into_iter()
        .filter(|state| !state.is_final())
        .map(State::as_str)
        .collect()
}

impl PostgresStorage {
    pub(super) async fn batch_read(&self, id: &BatchId) -> Result<Option<BatchRecord>> {
        const OP: &str = "reading a batch";
        let mut tx = self.run(OP, self.pool.begin()).await?;
        let row = sqlx::query(self.sql(
            "SELECT id, parent_id, description, state, created_at, finished_at
             FROM {s}.jobs_batch WHERE id = $1",
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let counts: Vec<(String, i64)> = sqlx::query_as(
            self.sql("SELECT state, count(*) FROM {s}.jobs_job WHERE batch_id = $1 GROUP BY state"),
        )
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        let nested: Vec<String> = sqlx::query_scalar(
            self.sql("SELECT id FROM {s}.jobs_batch WHERE parent_id = $1 ORDER BY created_at, id"),
        )
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        let record = || -> std::result::Result<BatchRecord, sqlx::Error> {
            let mut jobs = StateCounts::default();
            for (state, count) in counts {
                jobs.set(decode_state(&state)?, u64::try_from(count).unwrap_or(0));
            }
            let state: String = row.try_get("state")?;
            Ok(BatchRecord {
                id: BatchId(row.try_get("id")?),
                parent: row.try_get::<Option<String>, _>("parent_id")?.map(BatchId),
                description: row.try_get("description")?,
                state: decode_batch_state(&state)?,
                jobs,
                batches: nested.into_iter().map(BatchId).collect(),
                created_at: row.try_get("created_at")?,
                finished_at: row.try_get::<Option<DateTime<Utc>>, _>("finished_at")?,
            })
        };
        record().map(Some).map_err(|e| storage_error(OP, e))
    }

    pub(super) async fn batch_list(&self, query: BatchQuery) -> Result<Vec<BatchRecord>> {
        // Each list reads its own partial index: `jobs_batch_started` or
        // `jobs_batch_finished`.
        let sql = if query.finished {
            "SELECT id FROM {s}.jobs_batch
             WHERE parent_id IS NULL AND state <> 'Started'
               AND ($1::text IS NULL OR (finished_at, id) <
                    (SELECT finished_at, id FROM {s}.jobs_batch WHERE id = $1))
             ORDER BY finished_at DESC, id DESC LIMIT $2"
        } else {
            "SELECT id FROM {s}.jobs_batch
             WHERE state = 'Started'
               AND ($1::text IS NULL OR (created_at, id) <
                    (SELECT created_at, id FROM {s}.jobs_batch WHERE id = $1))
             ORDER BY created_at DESC, id DESC LIMIT $2"
        };
        let ids: Vec<String> = self
            .run(
                "listing batches",
                sqlx::query_scalar(self.sql(sql))
                    .bind(query.before.as_ref().map(BatchId::as_str))
                    .bind(limit(query.limit.min(BatchQuery::MAX_LIMIT)))
                    .fetch_all(&self.pool),
            )
            .await?;
        let mut batches = Vec::with_capacity(ids.len());
        for id in ids {
            // One gone meanwhile (expired) is left out.
            if let Some(batch) = self.batch_read(&BatchId(id)).await? {
                batches.push(batch);
            }
        }
        Ok(batches)
    }

    pub(super) async fn batch_cancel(&self, id: BatchId) -> Result<Vec<JobId>> {
        const OP: &str = "cancelling a batch";
        let mut tx = self.run(OP, self.pool.begin()).await?;
        // The whole tree is locked first: a job or nested batch joining
        // one of its batches waits, then finds it cancelled; the next
        // statement's snapshot sees every one that joined before.
        let tree: Vec<(String, String)> = sqlx::query_as(self.sql(
            "WITH RECURSIVE tree AS (
                 SELECT id FROM {s}.jobs_batch WHERE id = $1
                 UNION ALL
                 SELECT b.id FROM {s}.jobs_batch b JOIN tree ON b.parent_id = tree.id
             )
             SELECT id, state FROM {s}.jobs_batch WHERE id IN (SELECT id FROM tree)
             ORDER BY id FOR UPDATE",
        ))
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        let state = tree
            .into_iter()
            .find(|(batch, _)| *batch == id.0)
            .map(|(_, state)| state);
        let state = match state {
            None => return Err(Error::BatchNotFound(id)),
            Some(state) => decode_batch_state(&state).map_err(|e| storage_error(OP, e))?,
        };
        if state != BatchState::Started {
            return Err(Error::BatchFinished { id, state });
        }
        let waiting: Vec<&str> = State::ALL
            .into_iter()
            .filter(|state| state.is_waiting())
            .map(State::as_str)
            .collect();
        let deleted: Vec<i64> = sqlx::query_scalar(self.sql(
            "WITH RECURSIVE tree AS (
                 SELECT id FROM {s}.jobs_batch WHERE id = $1
                 UNION ALL
                 SELECT b.id FROM {s}.jobs_batch b JOIN tree ON b.parent_id = tree.id
             ), cancelled AS (
                 UPDATE {s}.jobs_batch
                 SET state = 'Deleted', finished_at = now(), version = version + 1
                 WHERE id IN (SELECT id FROM tree) AND state = 'Started'
                 RETURNING id
             ), moved AS (
                 UPDATE {s}.jobs_job AS j
                 SET state = 'Deleted', state_changed_at = now(), reason = $2, run_at = NULL,
                     lease_expires_at = NULL, server = NULL, state_data = NULL
                 WHERE j.batch_id IN (SELECT id FROM cancelled) AND j.state = ANY($3::text[])
                 RETURNING j.id, j.state, j.state_changed_at, j.reason
             ), recorded AS (
                 INSERT INTO {s}.jobs_job_state (job_id, state, at, reason)
                 SELECT id, state, state_changed_at, reason FROM moved
             )
             SELECT id FROM moved",
        ))
        .bind(id.as_str())
        .bind(decide::BATCH_CANCELLED)
        .bind(waiting)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(sorted_ids(deleted))
    }

    pub(super) async fn awaiting_resolve(&self, params: ResolveAwaitingParams) -> Result<u64> {
        let mut decided = 0;
        for _ in 0..MAX_NESTING_ROUNDS {
            let finished: Vec<String> = self
                .run(
                    "finishing batches",
                    sqlx::query_scalar(self.sql(FINISH_BATCHES))
                        .bind(unfinished_states())
                        .bind(limit(params.limit))
                        .fetch_all(&self.pool),
                )
                .await?;
            if finished.is_empty() {
                break;
            }
            decided += finished.len() as u64;
        }
        let finals = final_states();
        // A continuation deleted here is a final parent for the next round.
        while decided < params.limit as u64 {
            let moved: i64 = self
                .run(
                    "deciding continuations",
                    sqlx::query_scalar(self.sql(&resolve_sql()))
                        .bind(&finals)
                        .bind(limit(params.limit - decided as usize))
                        .bind(decide::PARENT_AS_AWAITED)
                        .bind(decide::PARENT_NOT_AS_AWAITED)
                        .bind(decide::PARENT_GONE)
                        .bind(&self.channel)
                        .fetch_one(&self.pool),
                )
                .await?;
            if moved == 0 {
                break;
            }
            decided += u64::try_from(moved).unwrap_or(0);
        }
        Ok(decided)
    }

    /// Deletes the member jobs of batch trees finished longer than
    /// `older_than` ago (up to `limit` jobs), then the trees left without
    /// members; returns how many jobs were deleted.
    pub(super) async fn batches_expire(
        &self,
        older_than: std::time::Duration,
        limit_jobs: usize,
    ) -> Result<u64> {
        let finals = final_states();
        let expired: i64 = self
            .run(
                "expiring finished batches",
                sqlx::query_scalar(self.sql(
                    "WITH roots AS (
                         SELECT r.id FROM {s}.jobs_batch r
                         WHERE r.parent_id IS NULL AND r.state <> 'Started'
                           AND r.finished_at < now() - $1 * interval '1 millisecond'
                           AND NOT EXISTS (SELECT FROM {s}.jobs_batch t
                                           JOIN {s}.jobs_job j ON j.batch_id = t.id
                                           WHERE t.root_id = r.id AND j.state <> ALL($3::text[]))
                         ORDER BY r.finished_at LIMIT 100
                     ), members AS (
                         SELECT j.id FROM {s}.jobs_job j
                         JOIN {s}.jobs_batch t ON j.batch_id = t.id
                         WHERE t.root_id IN (SELECT id FROM roots) AND j.state = ANY($3::text[])
                         LIMIT $2
                         FOR UPDATE OF j SKIP LOCKED
                     ), expired AS (
                         DELETE FROM {s}.jobs_job WHERE id IN (SELECT id FROM members)
                         RETURNING id
                     ), forgotten AS (
                         DELETE FROM {s}.jobs_job_state WHERE job_id IN (SELECT id FROM expired)
                     ), logs AS (
                         DELETE FROM {s}.jobs_job_log WHERE job_id IN (SELECT id FROM expired)
                     )
                     SELECT count(*) FROM expired",
                ))
                .bind(millis(older_than))
                .bind(limit(limit_jobs))
                .bind(&finals)
                .fetch_one(&self.pool),
            )
            .await?;
        self.run(
            "expiring finished batches",
            sqlx::query(self.sql(
                "DELETE FROM {s}.jobs_batch WHERE root_id IN (
                     SELECT r.id FROM {s}.jobs_batch r
                     WHERE r.parent_id IS NULL AND r.state <> 'Started'
                       AND r.finished_at < now() - $1 * interval '1 millisecond'
                       AND NOT EXISTS (SELECT FROM {s}.jobs_batch t
                                       JOIN {s}.jobs_job j ON j.batch_id = t.id
                                       WHERE t.root_id = r.id)
                     ORDER BY r.finished_at LIMIT 100)",
            ))
            .bind(millis(older_than))
            .execute(&self.pool),
        )
        .await?;
        Ok(u64::try_from(expired).unwrap_or(0))
    }
}
