//! [`MonitoringStorage`] for PostgreSQL: reads only.

use jobs_core::{
    Error, JobId, JobQuery, JobRecord, MonitoringStorage, Result, StateChange, StateCounts,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStorage;
use super::decode::{decode_state, limit, record};

#[async_trait::async_trait]
impl MonitoringStorage for PostgresStorage {
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

    async fn list_jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>> {
        self.run(
            "listing jobs",
            sqlx::query(self.sql(
                "SELECT id, name, queue, args, state, attempt, max_attempts, created_at,
                        state_changed_at, run_at, reason
                 FROM {s}.jobs_job
                 WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR queue = $2)
                   AND ($3::bigint IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4",
            ))
            .bind(query.state.map(|state| state.as_str()))
            .bind(query.queue)
            .bind(query.before.map(|id| id.0))
            .bind(limit(query.limit.min(JobQuery::MAX_LIMIT)))
            .try_map(|row: PgRow| record(&row))
            .fetch_all(&self.pool),
        )
        .await
    }
}
