//! Recurring jobs in SQLite: the calls of [`MaintenanceStorage`] and
//! [`MonitoringStorage`] on `jobs_recurring`, which those traits' impls
//! forward here. A tick is claimed by compare-and-set on the row's
//! `version` in the write transaction that enqueues its runs. Times are
//! Unix milliseconds, UTC.
//!
//! [`MaintenanceStorage`]: jobs_core::MaintenanceStorage
//! [`MonitoringStorage`]: jobs_core::MonitoringStorage

use chrono::{DateTime, Utc};
use jobs_core::{
    DueRecurring, DueRecurringParams, FireRecurringParams, JobId, PauseRecurringParams,
    RecurringDefinition, RecurringJob, Result, SaveRecurringParams, SyncRecurringParams,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use super::SqliteStorage;
use super::decode::time;
use super::jobs::insert_jobs;
use crate::readable::readable;
use crate::sorted_ids::sorted_ids;
use crate::sql_error::storage_error;

/// The columns [`recurring_job`] reads, with the last run's state.
const SELECT: &str = "SELECT r.*, j.state AS last_job_state
     FROM jobs_recurring r LEFT JOIN jobs_job j ON j.id = r.last_job_id";

/// Creates or replaces one definition: `?1`..`?9` the definition, `?10`
/// in code, `?11` its next run, `?12` the clock. A replaced row keeps its
/// next run unless the schedule changed or it had none; a row that would
/// not change is left alone, version included, so that a server's start
/// does not void a claim in flight.
const SAVE: &str = "INSERT INTO jobs_recurring AS r
         (id, job_name, args, queue, max_attempts, cron, time_zone, misfire, skip_if_running,
          in_code, next_run_at, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
     ON CONFLICT (id) DO UPDATE SET
         job_name = excluded.job_name, args = excluded.args, queue = excluded.queue,
         max_attempts = excluded.max_attempts, cron = excluded.cron,
         time_zone = excluded.time_zone, misfire = excluded.misfire,
         skip_if_running = excluded.skip_if_running, in_code = excluded.in_code,
         missing_from_code = 0,
         next_run_at = CASE WHEN r.cron = excluded.cron AND r.time_zone = excluded.time_zone
                            THEN coalesce(r.next_run_at, excluded.next_run_at)
                            ELSE excluded.next_run_at END,
         version = r.version + 1, updated_at = excluded.updated_at
     WHERE (r.job_name, r.args, r.queue, r.max_attempts, r.cron, r.time_zone, r.misfire,
            r.skip_if_running, r.in_code, r.missing_from_code)
           IS NOT
           (excluded.job_name, excluded.args, excluded.queue, excluded.max_attempts,
            excluded.cron, excluded.time_zone, excluded.misfire, excluded.skip_if_running,
            excluded.in_code, 0)
        OR (r.next_run_at IS NULL AND excluded.next_run_at IS NOT NULL)";

fn recurring_job(row: &SqliteRow) -> std::result::Result<RecurringJob, sqlx::Error> {
    let misfire: String = row.try_get("misfire")?;
    let last_job_state: Option<String> = row.try_get("last_job_state")?;
    let at = |column: &str| -> std::result::Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(time))
    };
    Ok(RecurringJob {
        definition: RecurringDefinition {
            id: row.try_get("id")?,
            job_name: row.try_get("job_name")?,
            args: row.try_get("args")?,
            queue: row.try_get("queue")?,
            max_attempts: row.try_get("max_attempts")?,
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
        next_run_at: at("next_run_at")?,
        last_run_at: at("last_run_at")?,
        last_job_id: row.try_get::<Option<i64>, _>("last_job_id")?.map(JobId),
        last_job_state: last_job_state
            .map(|state| state.parse().map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose()?,
        version: row.try_get("version")?,
    })
}

fn millis(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|at| at.timestamp_millis())
}

async fn save_one(
    conn: &mut SqliteConnection,
    now: i64,
    params: &SaveRecurringParams,
) -> std::result::Result<(), sqlx::Error> {
    let d = &params.definition;
    sqlx::query(SAVE)
        .bind(&d.id)
        .bind(&d.job_name)
        .bind(&d.args)
        .bind(&d.queue)
        .bind(d.max_attempts)
        .bind(&d.cron)
        .bind(&d.time_zone)
        .bind(d.misfire.to_string())
        .bind(d.skip_if_running)
        .bind(params.in_code)
        .bind(millis(params.next_run_at))
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

impl SqliteStorage {
    pub(super) async fn recurring_save(&self, params: SaveRecurringParams) -> Result<()> {
        const OP: &str = "saving a recurring job";
        let (mut tx, now) = self.write(OP).await?;
        save_one(&mut tx, now, &params)
            .await
            .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))
    }

    pub(super) async fn recurring_sync(&self, params: SyncRecurringParams) -> Result<u64> {
        const OP: &str = "syncing the recurring jobs defined in code";
        let (mut tx, now) = self.write(OP).await?;
        for job in &params.jobs {
            save_one(&mut tx, now, job)
                .await
                .map_err(|e| storage_error(OP, e))?;
        }
        let ids: Vec<&str> = params
            .jobs
            .iter()
            .map(|job| job.definition.id.as_str())
            .collect();
        let ids = serde_json::to_string(&ids).expect("strings serialize");
        let others = serde_json::to_string(&params.other_job_names).expect("strings serialize");
        let missing = sqlx::query(
            "UPDATE jobs_recurring
             SET missing_from_code = 1, version = version + 1, updated_at = ?2
             WHERE in_code AND NOT missing_from_code
               AND id NOT IN (SELECT value FROM json_each(?1))
               AND job_name NOT IN (SELECT value FROM json_each(?3))",
        )
        .bind(ids)
        .bind(now)
        .bind(others)
        .execute(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?
        .rows_affected();
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(missing)
    }

    pub(super) async fn recurring_pause(&self, params: PauseRecurringParams) -> Result<bool> {
        let op = if params.paused {
            "pausing a recurring job"
        } else {
            "resuming a recurring job"
        };
        let changed = self
            .execute(op, |now| {
                sqlx::query(
                    "UPDATE jobs_recurring
                     SET paused = ?2, next_run_at = ?3, version = version + 1,
                         updated_at = ?4
                     WHERE id = ?1 AND version = ?5",
                )
                .bind(params.id)
                .bind(params.paused)
                .bind(millis(params.next_run_at))
                .bind(now)
                .bind(params.version)
            })
            .await?;
        Ok(changed > 0)
    }

    pub(super) async fn recurring_remove(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        let removed = self
            .execute("removing a recurring job", |_| {
                sqlx::query("DELETE FROM jobs_recurring WHERE id = ?1").bind(id)
            })
            .await?;
        Ok(removed > 0)
    }

    pub(super) async fn recurring_due(&self, params: DueRecurringParams) -> Result<DueRecurring> {
        const OP: &str = "finding due recurring jobs";
        let now = Utc::now().timestamp_millis();
        let limit = i64::try_from(params.limit).unwrap_or(i64::MAX);
        let mut conn = self
            .reader
            .acquire()
            .await
            .map_err(|e| storage_error(OP, e))?;
        let due = sqlx::query(AssertSqlSafe(format!(
            "{SELECT} WHERE NOT r.paused AND NOT r.missing_from_code AND r.next_run_at <= ?1
               AND (?3 IS NULL OR (r.next_run_at, r.id) > (?3, ?4))
             ORDER BY r.next_run_at, r.id LIMIT ?2"
        )))
        .bind(now)
        .bind(limit)
        .bind(params.after.as_ref().map(|(at, _)| at.timestamp_millis()))
        .bind(params.after.as_ref().map(|(_, id)| id.clone()))
        .map(|row: SqliteRow| recurring_job(&row))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| storage_error(OP, e))?;
        let due = readable("recurring job", due);
        let next_due_at: Option<i64> = sqlx::query_scalar(
            "SELECT min(next_run_at) FROM jobs_recurring
             WHERE NOT paused AND NOT missing_from_code AND next_run_at > ?1",
        )
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| storage_error(OP, e))?;
        Ok(DueRecurring {
            now: time(now),
            due,
            next_due_at: next_due_at.map(time),
        })
    }

    pub(super) async fn recurring_fire(
        &self,
        params: FireRecurringParams,
    ) -> Result<Option<Vec<JobId>>> {
        const OP: &str = "firing a recurring job";
        let (mut tx, now) = self.write(OP).await?;
        // The write lock is held: nobody changes the version before commit.
        let claimed: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM jobs_recurring WHERE id = ?1 AND version = ?2")
                .bind(&params.id)
                .bind(params.version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?;
        if claimed.is_none() {
            return Ok(None);
        }
        let ids = insert_jobs(&mut tx, now, &params.jobs)
            .await
            .map_err(|e| storage_error(OP, e))?;
        let last_run_at = (!ids.is_empty()).then(|| millis(params.last_run_at).unwrap_or(now));
        sqlx::query(
            "UPDATE jobs_recurring
             SET next_run_at = ?2, version = version + 1, updated_at = ?3,
                 last_run_at = coalesce(?4, last_run_at),
                 last_job_id = coalesce(?5, last_job_id)
             WHERE id = ?1",
        )
        .bind(&params.id)
        .bind(millis(params.next_run_at))
        .bind(now)
        .bind(last_run_at)
        .bind(ids.iter().max())
        .execute(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(Some(sorted_ids(ids)))
    }

    pub(super) async fn recurring_list(&self) -> Result<Vec<RecurringJob>> {
        let rows = sqlx::query(AssertSqlSafe(format!("{SELECT} ORDER BY r.id")))
            .map(|row: SqliteRow| recurring_job(&row))
            .fetch_all(&self.reader)
            .await
            .map_err(|e| storage_error("listing recurring jobs", e))?;
        Ok(readable("recurring job", rows))
    }

    pub(super) async fn recurring_get(&self, id: &str) -> Result<Option<RecurringJob>> {
        sqlx::query(AssertSqlSafe(format!("{SELECT} WHERE r.id = ?1")))
            .bind(id)
            .try_map(|row: SqliteRow| recurring_job(&row))
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| storage_error("reading a recurring job", e))
    }
}
