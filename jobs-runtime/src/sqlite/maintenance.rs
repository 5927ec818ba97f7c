//! [`MaintenanceStorage`] for SQLite.

use chrono::{DateTime, Utc};
use jobs_core::{
    AggregateCountersParams, Attempt, ExpireParams, ExpiredLease, ExpiredLeasesParams,
    FinishParams, JobId, LeadParams, MaintenanceStorage, PromoteParams, ResolveAwaitingParams,
    Result, decide,
};
use jobs_core::{
    DueRecurring, DueRecurringParams, FireRecurringParams, PauseRecurringParams,
    SaveRecurringParams, SyncRecurringParams,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStorage;
use super::decode::millis;
use crate::sql_error::storage_error;

#[async_trait::async_trait]
impl MaintenanceStorage for SqliteStorage {
    async fn promote_scheduled(&self, params: PromoteParams) -> Result<u64> {
        const OP: &str = "promoting scheduled jobs";
        let limit = i64::try_from(params.limit).unwrap_or(i64::MAX);
        self.execute(OP, |now| {
            sqlx::query(
                "UPDATE jobs_job
                 SET state = 'Enqueued', state_changed_at = ?1, run_at = NULL,
                     reason = ?3, state_data = NULL
                 WHERE id IN (SELECT id FROM jobs_job
                              WHERE state = 'Scheduled' AND run_at <= ?1
                              ORDER BY run_at LIMIT ?2)",
            )
            .bind(now)
            .bind(limit)
            .bind(decide::SCHEDULED_TIME_REACHED)
        })
        .await
    }

    async fn expired_leases(&self, params: ExpiredLeasesParams) -> Result<Vec<ExpiredLease>> {
        sqlx::query(concat!(
            "SELECT id, name, queue, attempt, max_attempts, server FROM jobs_job
             WHERE state = 'Processing' AND lease_expires_at < ",
            now_ms!(),
            " ORDER BY lease_expires_at LIMIT ?1"
        ))
        .bind(i64::try_from(params.limit).unwrap_or(i64::MAX))
        .try_map(|row: SqliteRow| {
            Ok(ExpiredLease {
                job: Attempt {
                    id: JobId(row.try_get("id")?),
                    attempt: row.try_get("attempt")?,
                },
                name: row.try_get("name")?,
                queue: row.try_get("queue")?,
                max_attempts: row.try_get("max_attempts")?,
                server: row.try_get("server")?,
            })
        })
        .fetch_all(&self.reader)
        .await
        .map_err(|e| storage_error("finding expired leases", e))
    }

    async fn rescue(&self, params: FinishParams) -> Result<Vec<JobId>> {
        self.record_outcomes("rescuing jobs", params, true).await
    }

    async fn expire(&self, params: ExpireParams) -> Result<u64> {
        let expired = self
            .execute("expiring finished jobs", |now| {
                sqlx::query(
                    "DELETE FROM jobs_job WHERE id IN (
                     SELECT id FROM jobs_job
                     WHERE state IN ('Succeeded', 'Deleted') AND state_changed_at < ?1 - ?2
                       AND batch_id IS NULL
                     ORDER BY state_changed_at LIMIT ?3)",
                )
                .bind(now)
                .bind(millis(params.older_than))
                .bind(i64::try_from(params.limit).unwrap_or(i64::MAX))
            })
            .await?;
        let members = self
            .batches_expire(
                params.older_than,
                params.limit.saturating_sub(expired as usize),
            )
            .await?;
        Ok(expired + members)
    }

    async fn aggregate_counters(&self, params: AggregateCountersParams) -> Result<u64> {
        self.counters_aggregate(params).await
    }

    async fn resolve_awaiting(&self, params: ResolveAwaitingParams) -> Result<u64> {
        self.awaiting_resolve(params).await
    }

    async fn try_lead(&self, params: LeadParams) -> Result<bool> {
        const OP: &str = "electing a leader";
        let (mut tx, now) = self.write(OP).await?;
        let leader: Option<String> = sqlx::query_scalar(
            "INSERT INTO jobs_leader (name, server, expires_at) VALUES (?1, ?2, ?3 + ?4)
             ON CONFLICT (name) DO UPDATE SET server = excluded.server, expires_at = excluded.expires_at
             WHERE jobs_leader.server = excluded.server OR jobs_leader.expires_at < ?3
             RETURNING server",
        )
        .bind(&params.name)
        .bind(&params.server)
        .bind(now)
        .bind(millis(params.ttl))
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(leader.is_some_and(|leader| leader == params.server))
    }

    async fn resign(&self, name: &str, server: &str) -> Result<()> {
        let (name, server) = (name.to_owned(), server.to_owned());
        self.execute("resigning the leadership", |_| {
            sqlx::query("DELETE FROM jobs_leader WHERE name = ?1 AND server = ?2")
                .bind(name)
                .bind(server)
        })
        .await
        .map(drop)
    }
    async fn clock(&self) -> Result<DateTime<Utc>> {
        // SQLite's clock is this process's (see `write`).
        Ok(Utc::now())
    }

    async fn save_recurring(&self, params: SaveRecurringParams) -> Result<()> {
        self.recurring_save(params).await
    }

    async fn sync_recurring(&self, params: SyncRecurringParams) -> Result<u64> {
        self.recurring_sync(params).await
    }

    async fn pause_recurring(&self, params: PauseRecurringParams) -> Result<bool> {
        self.recurring_pause(params).await
    }

    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        self.recurring_remove(id).await
    }

    async fn due_recurring(&self, params: DueRecurringParams) -> Result<DueRecurring> {
        self.recurring_due(params).await
    }

    async fn fire_recurring(&self, params: FireRecurringParams) -> Result<Option<Vec<JobId>>> {
        self.recurring_fire(params).await
    }
}
