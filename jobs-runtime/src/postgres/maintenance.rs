//! [`MaintenanceStorage`] for PostgreSQL.

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
use sqlx::postgres::PgRow;

use super::PostgresStorage;
use super::decode::{count, limit, millis};
use super::jobs::RESCUE_GUARD;

#[async_trait::async_trait]
impl MaintenanceStorage for PostgresStorage {
    async fn promote_scheduled(&self, params: PromoteParams) -> Result<u64> {
        let moved: i64 = self
            .run(
                "promoting scheduled jobs",
                sqlx::query_scalar(self.moved_and_notified(
                    "UPDATE {s}.jobs_job
                 SET state = 'Enqueued', state_changed_at = now(), run_at = NULL,
                     reason = $3, state_data = NULL
                 WHERE id IN (SELECT id FROM {s}.jobs_job
                              WHERE state = 'Scheduled' AND run_at <= now()
                              ORDER BY run_at LIMIT $1
                              FOR UPDATE SKIP LOCKED)
                 RETURNING id, state, state_changed_at, reason, state_data",
                    2,
                ))
                .bind(limit(params.limit))
                .bind(&self.channel)
                .bind(decide::SCHEDULED_TIME_REACHED)
                .fetch_one(&self.pool),
            )
            .await?;
        Ok(u64::try_from(moved).unwrap_or(0))
    }

    async fn expired_leases(&self, params: ExpiredLeasesParams) -> Result<Vec<ExpiredLease>> {
        self.run(
            "finding expired leases",
            sqlx::query(self.sql(
                "SELECT id, name, queue, attempt, max_attempts, server FROM {s}.jobs_job
                 WHERE state = 'Processing' AND lease_expires_at < now()
                 ORDER BY lease_expires_at LIMIT $1",
            ))
            .bind(limit(params.limit))
            .try_map(|row: PgRow| {
                Ok(ExpiredLease {
                    job: Attempt {
                        id: JobId(row.try_get("id")?),
                        attempt: count(&row, "attempt")?,
                    },
                    name: row.try_get("name")?,
                    queue: row.try_get("queue")?,
                    max_attempts: count(&row, "max_attempts")?,
                    server: row.try_get("server")?,
                })
            })
            .fetch_all(&self.pool),
        )
        .await
    }

    async fn rescue(&self, params: FinishParams) -> Result<Vec<JobId>> {
        self.record_outcomes("rescuing jobs", params, RESCUE_GUARD)
            .await
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
                       AND batch_id IS NULL
                     ORDER BY state_changed_at LIMIT $2
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id
             ), forgotten AS (
                 DELETE FROM {s}.jobs_job_state WHERE job_id IN (SELECT id FROM expired)
             ), logs AS (
                 DELETE FROM {s}.jobs_job_log WHERE job_id IN (SELECT id FROM expired)
             )
             SELECT count(*) FROM expired",
                ))
                .bind(millis(params.older_than))
                .bind(limit(params.limit))
                .fetch_one(&self.pool),
            )
            .await?;
        let expired = u64::try_from(expired).unwrap_or(0);
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
        let leader: Option<String> = self.run("electing a leader", sqlx::query_scalar(self.sql(
            "INSERT INTO {s}.jobs_leader (name, server, expires_at)
             VALUES ($1, $2, now() + $3 * interval '1 millisecond')
             ON CONFLICT (name) DO UPDATE SET server = excluded.server, expires_at = excluded.expires_at
             WHERE jobs_leader.server = excluded.server OR jobs_leader.expires_at < now()
             RETURNING server",
        ))
        .bind(&params.name)
        .bind(&params.server)
        .bind(millis(params.ttl))
        .fetch_optional(&self.pool)
        ).await?;
        Ok(leader.is_some_and(|leader| leader == params.server))
    }

    async fn resign(&self, name: &str, server: &str) -> Result<()> {
        self.run(
            "resigning the leadership",
            sqlx::query(self.sql("DELETE FROM {s}.jobs_leader WHERE name = $1 AND server = $2"))
                .bind(name)
                .bind(server)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }
    async fn clock(&self) -> Result<DateTime<Utc>> {
        self.run(
            "reading the clock",
            sqlx::query_scalar("SELECT now()").fetch_one(&self.pool),
        )
        .await
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
