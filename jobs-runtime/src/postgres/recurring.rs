//! Recurring jobs in PostgreSQL: the calls of [`MaintenanceStorage`] and
//! [`MonitoringStorage`] on `jobs_recurring`, which those traits' impls
//! forward here. A tick is claimed by compare-and-set on the row's
//! `version` in the statement that enqueues its runs.
//!
//! [`MaintenanceStorage`]: jobs_core::MaintenanceStorage
//! [`MonitoringStorage`]: jobs_core::MonitoringStorage

use chrono::{DateTime, Utc};
use jobs_core::{
    DueRecurring, DueRecurringParams, FireRecurringParams, JobId, PauseRecurringParams,
    RecurringDefinition, RecurringJob, Result, SaveRecurringParams, SyncRecurringParams,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::PostgresStorage;
use super::decode::{count, decode_state, limit};
use sqlx::Arguments;

use super::jobs::{NewJobColumns, insert_jobs};
use crate::readable::readable;
use crate::sql_error::storage_error;

/// The columns [`recurring_job`] reads, with the last run's state.
const SELECT: &str = "SELECT r.*, j.state AS last_job_state
     FROM {s}.jobs_recurring r LEFT JOIN {s}.jobs_job j ON j.id = r.last_job_id";

/// Creates or replaces one definition: `$1`..`$9` the definition, `$10`
/// in code, `$11` its next run. A replaced row keeps its next run unless
/// the schedule changed or it had none; a row that would not change is
/// left alone, version included, so that a server's start does not void a
/// claim in flight.
const SAVE: &str = "INSERT INTO {s}.jobs_recurring AS r
         (id, job_name, args, queue, max_attempts, cron, time_zone, misfire, skip_if_running,
          in_code, next_run_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), now())
     ON CONFLICT (id) DO UPDATE SET
         job_name = excluded.job_name, args = excluded.args, queue = excluded.queue,
         max_attempts = excluded.max_attempts, cron = excluded.cron,
         time_zone = excluded.time_zone, misfire = excluded.misfire,
         skip_if_running = excluded.skip_if_running, in_code = excluded.in_code,
         missing_from_code = false,
         next_run_at = CASE WHEN r.cron = excluded.cron AND r.time_zone = excluded.time_zone
                            THEN coalesce(r.next_run_at, excluded.next_run_at)
                            ELSE excluded.next_run_at END,
         version = r.version + 1, updated_at = now()
     WHERE (r.job_name, r.args, r.queue, r.max_attempts, r.cron, r.time_zone, r.misfire,
            r.skip_if_running, r.in_code, r.missing_from_code)
           IS DISTINCT FROM
           (excluded.job_name, excluded.args, excluded.queue, excluded.max_attempts,
            excluded.cron, excluded.time_zone, excluded.misfire, excluded.skip_if_running,
            excluded.in_code, false)
        OR (r.next_run_at IS NULL AND excluded.next_run_at IS NOT NULL)";

fn recurring_job(row: &PgRow) -> std::result::Result<RecurringJob, sqlx::Error> {
    let misfire: String = row.try_get("misfire")?;
    let last_job_state: Option<String> = row.try_get("last_job_state")?;
    Ok(RecurringJob {
        definition: RecurringDefinition {
            id: row.try_get("id")?,
            job_name: row.try_get("job_name")?,
            args: row.try_get("args")?,
            queue: row.try_get("queue")?,
            max_attempts: count(row, "max_attempts")?,
            cron: row.try_get("cron")?,
            time_zone: row.try_get("time_zone")?,
            misfire: misfire
                .parse()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            skip_if_running: row.try_get("skip_if_running")?,
        },
        in_code: row.try_get("in_code")?,
        missing_from_code: row.try_get("missing_from_code")?,
        paused: row.try_get("paused")?,
        next_run_at: row.try_get("next_run_at")?,
        last_run_at: row.try_get("last_run_at")?,
        last_job_id: row.try_get::<Option<i64>, _>("last_job_id")?.map(JobId),
        last_job_state: last_job_state.as_deref().map(decode_state).transpose()?,
        version: row.try_get("version")?,
    })
}

impl PostgresStorage {
    async fn save_one(
        &self,
        conn: &mut PgConnection,
        params: &SaveRecurringParams,
    ) -> std::result::Result<(), sqlx::Error> {
        let d = &params.definition;
        sqlx::query(self.sql(SAVE))
            .bind(&d.id)
            .bind(&d.job_name)
            .bind(&d.args)
            .bind(&d.queue)
            .bind(i32::try_from(d.max_attempts).unwrap_or(i32::MAX))
            .bind(&d.cron)
            .bind(&d.time_zone)
            .bind(d.misfire.to_string())
            .bind(d.skip_if_running)
            .bind(params.in_code)
            .bind(params.next_run_at)
            .execute(conn)
            .await?;
        Ok(())
    }

    pub(super) async fn recurring_save(&self, params: SaveRecurringParams) -> Result<()> {
        const OP: &str = "saving a recurring job";
        let mut conn = self.run(OP, self.pool.acquire()).await?;
        self.save_one(&mut conn, &params)
            .await
            .map_err(|e| storage_error(OP, e))
    }

    pub(super) async fn recurring_sync(&self, params: SyncRecurringParams) -> Result<u64> {
        const OP: &str = "syncing the recurring jobs defined in code";
        let mut tx = self.run(OP, self.pool.begin()).await?;
        for job in &params.jobs {
            self.save_one(&mut tx, job)
                .await
                .map_err(|e| storage_error(OP, e))?;
        }
        let ids: Vec<&str> = params
            .jobs
            .iter()
            .map(|job| job.definition.id.as_str())
            .collect();
        let missing = sqlx::query(self.sql(
            "UPDATE {s}.jobs_recurring
             SET missing_from_code = true, version = version + 1, updated_at = now()
             WHERE in_code AND NOT missing_from_code
               AND NOT (id = ANY($1)) AND NOT (job_name = ANY($2))",
        ))
        .bind(ids)
        .bind(&params.other_job_names)
        .execute(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?
        .rows_affected();
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(missing)
    }

    pub(super) async fn recurring_pause(&self, params: PauseRecurringParams) -> Result<bool> {
        let changed = self
            .run(
                if params.paused {
                    "pausing a recurring job"
                } else {
                    "resuming a recurring job"
                },
                sqlx::query(self.sql(
                    "UPDATE {s}.jobs_recurring
                     SET paused = $2, next_run_at = $3, version = version + 1,
                         updated_at = now()
                     WHERE id = $1 AND version = $4",
                ))
                .bind(&params.id)
                .bind(params.paused)
                .bind(params.next_run_at)
                .bind(params.version)
                .execute(&self.pool),
            )
            .await?;
        Ok(changed.rows_affected() > 0)
    }

    pub(super) async fn recurring_remove(&self, id: &str) -> Result<bool> {
        let removed = self
            .run(
                "removing a recurring job",
                sqlx::query(self.sql("DELETE FROM {s}.jobs_recurring WHERE id = $1"))
                    .bind(id)
                    .execute(&self.pool),
            )
            .await?;
        Ok(removed.rows_affected() > 0)
    }

    pub(super) async fn recurring_due(&self, params: DueRecurringParams) -> Result<DueRecurring> {
        const OP: &str = "finding due recurring jobs";
        let mut tx = self.run(OP, self.pool.begin()).await?;
        // One snapshot and one `now()` for the due jobs and the next one.
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| storage_error(OP, e))?;
        let due = sqlx::query(self.sql(&format!(
            "{SELECT} WHERE NOT r.paused AND NOT r.missing_from_code AND r.next_run_at <= $1
               AND ($3::timestamptz IS NULL OR (r.next_run_at, r.id) > ($3, $4))
             ORDER BY r.next_run_at, r.id LIMIT $2"
        )))
        .bind(now)
        .bind(limit(params.limit))
        .bind(params.after.as_ref().map(|(at, _)| *at))
        .bind(params.after.as_ref().map(|(_, id)| id.as_str()))
        .map(|row: PgRow| recurring_job(&row))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        let due = readable("recurring job", due);
        let next_due_at: Option<DateTime<Utc>> = sqlx::query_scalar(self.sql(
            "SELECT min(next_run_at) FROM {s}.jobs_recurring
             WHERE NOT paused AND NOT missing_from_code AND next_run_at > $1",
        ))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(DueRecurring {
            now,
            due,
            next_due_at,
        })
    }

    pub(super) async fn recurring_fire(
        &self,
        params: FireRecurringParams,
    ) -> Result<Option<Vec<JobId>>> {
        // The claim locks the row only while its version is the one read;
        // a concurrent claim waits, then finds the version moved and
        // inserts nothing. `notified` is joined so that it runs: a SELECT
        // in a CTE that nothing reads is never evaluated.
        let sql = self.sql(&format!(
            "WITH claimed AS (
                 SELECT id FROM {{s}}.jobs_recurring WHERE id = $14 AND version = $15 FOR UPDATE
             ), {}, updated AS (
                 UPDATE {{s}}.jobs_recurring AS r
                 SET next_run_at = $16, version = r.version + 1, updated_at = now(),
                     last_run_at = CASE WHEN EXISTS (SELECT FROM inserted)
                                        THEN coalesce($17, now()) ELSE r.last_run_at END,
                     last_job_id = coalesce((SELECT max(id) FROM inserted), r.last_job_id)
                 FROM claimed WHERE r.id = claimed.id
             )
             SELECT CASE WHEN EXISTS (SELECT FROM claimed)
                         THEN ARRAY(SELECT id FROM inserted ORDER BY id) END
             FROM (SELECT 1) AS one LEFT JOIN notified ON true",
            insert_jobs("AND EXISTS (SELECT FROM claimed)", false, false)
        ));
        const OP: &str = "firing a recurring job";
        let arguments = NewJobColumns::of(&params.jobs)
            .arguments(&self.channel)
            .and_then(|mut arguments| {
                arguments.add(&params.id)?;
                arguments.add(params.version)?;
                arguments.add(params.next_run_at)?;
                arguments.add(params.last_run_at)?;
                Ok(arguments)
            })
            .map_err(|e| crate::sql_error::storage_error(OP, sqlx::Error::Encode(e)))?;
        let ids: Option<Vec<i64>> = self
            .run(
                OP,
                sqlx::query_scalar_with(sql, arguments).fetch_one(&self.pool),
            )
            .await?;
        Ok(ids.map(|ids| ids.into_iter().map(JobId).collect()))
    }

    pub(super) async fn recurring_list(&self) -> Result<Vec<RecurringJob>> {
        let rows = self
            .run(
                "listing recurring jobs",
                sqlx::query(self.sql(&format!("{SELECT} ORDER BY r.id")))
                    .map(|row: PgRow| recurring_job(&row))
                    .fetch_all(&self.pool),
            )
            .await?;
        Ok(readable("recurring job", rows))
    }

    pub(super) async fn recurring_get(&self, id: &str) -> Result<Option<RecurringJob>> {
        self.run(
            "reading a recurring job",
            sqlx::query(self.sql(&format!("{SELECT} WHERE r.id = $1")))
                .bind(id)
                .try_map(|row: PgRow| recurring_job(&row))
                .fetch_optional(&self.pool),
        )
        .await
    }
}
