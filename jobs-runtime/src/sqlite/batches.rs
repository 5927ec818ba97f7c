//! Batches on SQLite: reading one with its progress, cancelling one,
//! deciding what awaits finished parents, and expiring finished batches
//! with their members. The calls of the contract's traits forward here.

use jobs_core::BatchQuery;
use jobs_core::{
    BatchId, BatchRecord, BatchState, Error, JobId, ResolveAwaitingParams, Result, State,
    StateCounts, decide,
};
use sqlx::Row;

use super::SqliteStorage;
use super::decode::{millis, time};
use super::jobs::continue_awaiting;
use crate::sorted_ids::sorted_ids;
use crate::sql_error::storage_error;

/// The results of the succeeded member jobs of the batch `b` that
/// returned one, in member order, as one JSON array (text): what a batch
/// continuation receives; `NULL` when longer than
/// [`MAX_BATCH_RESULTS_LEN`](jobs_core::MAX_BATCH_RESULTS_LEN).
pub(super) fn batch_results() -> String {
    format!(
        "CASE WHEN (SELECT coalesce(sum(length(CAST(m.result AS BLOB))), 0) FROM jobs_job m
                    WHERE m.batch_id = b.id AND m.state = 'Succeeded') > {max}
          THEN NULL
          ELSE (SELECT json_group_array(json(m.result) ORDER BY m.id) FROM jobs_job m
                WHERE m.batch_id = b.id AND m.state = 'Succeeded' AND m.result IS NOT NULL)
          END",
        max = jobs_core::MAX_BATCH_RESULTS_LEN
    )
}

/// Finishes, at time `?1`, up to `?3` `Started` batches that have no
/// member job in a state of the JSON array `?2` (those not final) and no
/// `Started` nested batch: as `Succeeded` when every member job and nested
/// batch succeeded, else `Failed`. Returns the ids finished.
const FINISH_BATCHES: &str = "UPDATE jobs_batch AS b
     SET state = CASE WHEN EXISTS (SELECT 1 FROM jobs_job j
                                   WHERE j.batch_id = b.id AND j.state <> 'Succeeded')
                        OR EXISTS (SELECT 1 FROM jobs_batch c
                                   WHERE c.parent_id = b.id AND c.state <> 'Succeeded')
                      THEN 'Failed' ELSE 'Succeeded' END,
         finished_at = ?1, version = version + 1
     WHERE b.id IN (
         SELECT b.id FROM jobs_batch b
         WHERE b.state = 'Started'
           AND NOT EXISTS (SELECT 1 FROM jobs_job j
                           WHERE j.batch_id = b.id
                             AND j.state IN (SELECT value FROM json_each(?2)))
           AND NOT EXISTS (SELECT 1 FROM jobs_batch c
                           WHERE c.parent_id = b.id AND c.state = 'Started')
         ORDER BY b.created_at LIMIT ?3)
     RETURNING id";

/// Decides, at time `?1`, up to `?2` `Awaiting` continuations of batches
/// that finished or no longer exist: `Enqueued` with the reason `?3` when
/// the batch's state is one they await, else `Deleted` with `?4`, or `?5`
/// when the batch is gone; each gets the results of the batch's members.
/// Driven from the batches, which are few, not from the continuations
/// stored. (A job's own continuations are decided when it moves: see
/// [`continue_awaiting`](super::jobs::continue_awaiting).) Returns the
/// continuations moved with their new state.
fn resolve_sql() -> String {
    let batch_results = batch_results();
    format!(
        "WITH due AS (
         SELECT c.id, c.parent_batch_id AS parent_batch, b.state AS parent_state,
                {batch_results} AS parent_result
         FROM jobs_batch b JOIN jobs_job c ON c.parent_batch_id = b.id
         WHERE b.state <> 'Started' AND c.state = 'Awaiting'
         UNION ALL
         SELECT c.id, c.parent_batch_id, NULL, NULL
         FROM jobs_job c
         WHERE c.parent_batch_id IS NOT NULL AND c.state = 'Awaiting'
           AND NOT EXISTS (SELECT 1 FROM jobs_batch b WHERE b.id = c.parent_batch_id)
         ORDER BY 1 LIMIT ?2
     )
     UPDATE jobs_job AS j
     SET state = CASE WHEN instr(',' || j.continue_on || ',', ',' || due.parent_state || ',') > 0
                      THEN 'Enqueued' ELSE 'Deleted' END,
         reason = CASE WHEN due.parent_state IS NULL THEN ?5
                       WHEN instr(',' || j.continue_on || ',', ',' || due.parent_state || ',') > 0
                       THEN ?3 ELSE ?4 END,
         -- `json_patch` drops the members that are null, as PostgreSQL's
         -- `jsonb_strip_nulls` does.
         state_data = json_patch('{{}}', json_object('parent_batch', due.parent_batch,
                                                    'parent_state', due.parent_state)),
         state_changed_at = ?1, parent_result = due.parent_result
     FROM due WHERE j.id = due.id AND j.state = 'Awaiting'
     RETURNING id, state"
    )
}

/// The most rounds of [`FINISH_BATCHES`] in one call: a nested batch
/// finishes a round before its parent can.
const MAX_NESTING_ROUNDS: usize = 32;

fn states_json(keep: impl Fn(State) -> bool) -> String {
    let states: Vec<&str> = State::ALL
        .into_iter()
        .filter(|state| keep(*state))
        .map(State::as_str)
        .collect();
    serde_json::to_string(&states).expect("strings serialize")
}

impl SqliteStorage {
    pub(super) async fn batch_list(&self, query: BatchQuery) -> Result<Vec<BatchRecord>> {
        let sql = if query.finished {
            "SELECT id FROM jobs_batch
             WHERE parent_id IS NULL AND state <> 'Started'
               AND (?1 IS NULL OR (finished_at, id) <
                    (SELECT finished_at, id FROM jobs_batch WHERE id = ?1))
             ORDER BY finished_at DESC, id DESC LIMIT ?2"
        } else {
            "SELECT id FROM jobs_batch
             WHERE state = 'Started'
               AND (?1 IS NULL OR (created_at, id) <
                    (SELECT created_at, id FROM jobs_batch WHERE id = ?1))
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        };
        let ids: Vec<String> = sqlx::query_scalar(sql)
            .bind(query.before.as_ref().map(BatchId::as_str))
            .bind(i64::try_from(query.limit.min(BatchQuery::MAX_LIMIT)).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await
            .map_err(|e| storage_error("listing batches", e))?;
        let mut batches = Vec::with_capacity(ids.len());
        for id in ids {
            // One gone meanwhile (expired) is left out.
            if let Some(batch) = self.batch_read(&BatchId(id)).await? {
                batches.push(batch);
            }
        }
        Ok(batches)
    }

    pub(super) async fn batch_read(&self, id: &BatchId) -> Result<Option<BatchRecord>> {
        const OP: &str = "reading a batch";
        let mut tx = self
            .reader
            .begin()
            .await
            .map_err(|e| storage_error(OP, e))?;
        let row = sqlx::query(
            "SELECT id, parent_id, description, state, created_at, finished_at
             FROM jobs_batch WHERE id = ?1",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, count(*) FROM jobs_job WHERE batch_id = ?1 GROUP BY state",
        )
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        let nested: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM jobs_batch WHERE parent_id = ?1 ORDER BY created_at, id",
        )
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        let mut jobs = StateCounts::default();
        for (state, count) in counts {
            let state: State = state.parse().map_err(|e| Error::storage(OP, e))?;
            jobs.set(state, u64::try_from(count).unwrap_or(0));
        }
        let state: String = row.try_get("state").map_err(|e| storage_error(OP, e))?;
        let get = |column: &str| -> Result<Option<String>> {
            row.try_get(column).map_err(|e| storage_error(OP, e))
        };
        Ok(Some(BatchRecord {
            id: BatchId(row.try_get("id").map_err(|e| storage_error(OP, e))?),
            parent: get("parent_id")?.map(BatchId),
            description: get("description")?,
            state: state.parse().map_err(|e| Error::storage(OP, e))?,
            jobs,
            batches: nested.into_iter().map(BatchId).collect(),
            created_at: time(
                row.try_get("created_at")
                    .map_err(|e| storage_error(OP, e))?,
            ),
            finished_at: row
                .try_get::<Option<i64>, _>("finished_at")
                .map_err(|e| storage_error(OP, e))?
                .map(time),
        }))
    }

    pub(super) async fn batch_cancel(&self, id: BatchId) -> Result<Vec<JobId>> {
        const OP: &str = "cancelling a batch";
        let (mut tx, now) = self.write(OP).await?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM jobs_batch WHERE id = ?1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?;
        let state: BatchState = match state {
            None => return Err(Error::BatchNotFound(id)),
            Some(state) => state.parse().map_err(|e| Error::storage(OP, e))?,
        };
        if state != BatchState::Started {
            return Err(Error::BatchFinished { id, state });
        }
        let cancelled: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE tree(id) AS (
                 SELECT ?2
                 UNION ALL
                 SELECT b.id FROM jobs_batch b JOIN tree ON b.parent_id = tree.id
             )
             UPDATE jobs_batch SET state = 'Deleted', finished_at = ?1, version = version + 1
             WHERE id IN (SELECT id FROM tree) AND state = 'Started'
             RETURNING id",
        )
        .bind(now)
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        let deleted: Vec<i64> = sqlx::query_scalar(
            "UPDATE jobs_job
             SET state = 'Deleted', state_changed_at = ?1, reason = ?3, run_at = NULL,
                 lease_expires_at = NULL, server = NULL, state_data = NULL
             WHERE batch_id IN (SELECT value FROM json_each(?2))
               AND state IN (SELECT value FROM json_each(?4))
             RETURNING id",
        )
        .bind(now)
        .bind(serde_json::to_string(&cancelled).map_err(|e| Error::storage(OP, e))?)
        .bind(decide::BATCH_CANCELLED)
        .bind(states_json(State::is_waiting))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        let ids = serde_json::to_string(&deleted).map_err(|e| Error::storage(OP, e))?;
        continue_awaiting(&mut tx, now, &ids)
            .await
            .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(sorted_ids(deleted))
    }

    pub(super) async fn awaiting_resolve(&self, params: ResolveAwaitingParams) -> Result<u64> {
        const OP: &str = "deciding continuations";
        let limit = i64::try_from(params.limit).unwrap_or(i64::MAX);
        let (mut tx, now) = self.write(OP).await?;
        let mut decided = 0u64;
        for _ in 0..MAX_NESTING_ROUNDS {
            let finished: Vec<String> = sqlx::query_scalar(FINISH_BATCHES)
                .bind(now)
                .bind(states_json(|state| !state.is_final()))
                .bind(limit)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?;
            if finished.is_empty() {
                break;
            }
            decided += finished.len() as u64;
        }
        let sql = resolve_sql();
        while decided < params.limit as u64 {
            let moved: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(now)
                .bind(limit - decided as i64)
                .bind(decide::PARENT_AS_AWAITED)
                .bind(decide::PARENT_NOT_AS_AWAITED)
                .bind(decide::PARENT_GONE)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?;
            if moved.is_empty() {
                break;
            }
            decided += moved.len() as u64;
            // A continuation deleted here is a final parent in its turn.
            let deleted: Vec<i64> = moved
                .into_iter()
                .filter(|(_, state)| state == State::Deleted.as_str())
                .map(|(id, _)| id)
                .collect();
            if !deleted.is_empty() {
                let ids = serde_json::to_string(&deleted).map_err(|e| Error::storage(OP, e))?;
                decided += continue_awaiting(&mut tx, now, &ids)
                    .await
                    .map_err(|e| storage_error(OP, e))? as u64;
            }
        }
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(decided)
    }

    /// Deletes the member jobs of batch trees finished longer than
    /// `older_than` ago (up to `limit` jobs), then the trees left without
    /// members; returns how many jobs were deleted.
    pub(super) async fn batches_expire(
        &self,
        older_than: std::time::Duration,
        limit: usize,
    ) -> Result<u64> {
        const OP: &str = "expiring finished batches";
        let (mut tx, now) = self.write(OP).await?;
        let expired = sqlx::query(
            "DELETE FROM jobs_job WHERE id IN (
                 SELECT j.id FROM jobs_job j JOIN jobs_batch t ON j.batch_id = t.id
                 WHERE t.root_id IN (
                     SELECT r.id FROM jobs_batch r
                     WHERE r.parent_id IS NULL AND r.state <> 'Started' AND r.finished_at < ?1 - ?2
                       AND NOT EXISTS (SELECT 1 FROM jobs_batch t JOIN jobs_job j ON j.batch_id = t.id
                                       WHERE t.root_id = r.id
                                         AND j.state NOT IN (SELECT value FROM json_each(?4)))
                     ORDER BY r.finished_at LIMIT 100)
                   AND j.state IN (SELECT value FROM json_each(?4))
                 LIMIT ?3)",
        )
        .bind(now)
        .bind(millis(older_than))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(states_json(State::is_final))
        .execute(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?
        .rows_affected();
        sqlx::query(
            "DELETE FROM jobs_batch WHERE root_id IN (
                 SELECT r.id FROM jobs_batch r
                 WHERE r.parent_id IS NULL AND r.state <> 'Started' AND r.finished_at < ?1 - ?2
                   AND NOT EXISTS (SELECT 1 FROM jobs_batch t JOIN jobs_job j ON j.batch_id = t.id
                                   WHERE t.root_id = r.id)
                 ORDER BY r.finished_at LIMIT 100)",
        )
        .bind(now)
        .bind(millis(older_than))
        .execute(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(expired)
    }
}
