//! Running jobs' log lines and progress for SQLite: rows of
//! `jobs_job_log`, and the `progress` column of `jobs_job`.

use jobs_core::{JobLogQuery, LogRecord, Result, WriteLogParams};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStorage;
use super::decode::time;
use crate::sql_error::storage_error;

impl SqliteStorage {
    pub(super) async fn log_write(&self, params: WriteLogParams) -> Result<()> {
        const OP: &str = "writing job logs";
        if params.lines.is_empty() && params.progress.is_empty() {
            return Ok(());
        }
        let lines: Vec<serde_json::Value> = params
            .lines
            .iter()
            .map(|line| {
                serde_json::json!([
                    line.job.id.0,
                    line.job.attempt,
                    i64::try_from(line.age.as_millis()).unwrap_or(i64::MAX),
                    line.text
                ])
            })
            .collect();
        let progress: Vec<serde_json::Value> = params
            .progress
            .iter()
            .map(|p| serde_json::json!([p.job.id.0, p.job.attempt, p.progress]))
            .collect();
        let (mut tx, now) = self.write(OP).await?;
        if !lines.is_empty() {
            sqlx::query(
                "INSERT INTO jobs_job_log (job_id, attempt, logged_at, line)
                 SELECT l.value ->> 0, l.value ->> 1, ?2 - (l.value ->> 2), l.value ->> 3
                 FROM json_each(?1) AS l
                 WHERE EXISTS (SELECT 1 FROM jobs_job j WHERE j.id = l.value ->> 0)
                 ORDER BY l.key",
            )
            .bind(serde_json::Value::Array(lines).to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| storage_error(OP, e))?;
        }
        if !progress.is_empty() {
            sqlx::query(
                "UPDATE jobs_job SET progress = p.value ->> 2
                 FROM json_each(?1) AS p
                 WHERE jobs_job.id = p.value ->> 0 AND jobs_job.attempt = p.value ->> 1",
            )
            .bind(serde_json::Value::Array(progress).to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| storage_error(OP, e))?;
        }
        tx.commit().await.map_err(|e| storage_error(OP, e))
    }

    pub(super) async fn log_list(&self, query: JobLogQuery) -> Result<Vec<LogRecord>> {
        const OP: &str = "reading a job's log";
        sqlx::query(
            "SELECT id, attempt, logged_at, line FROM jobs_job_log
             WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )
        .bind(query.job.0)
        .bind(query.after.unwrap_or(0))
        .bind(i64::try_from(query.limit.max(1)).unwrap_or(i64::MAX))
        .try_map(|row: SqliteRow| {
            Ok(LogRecord {
                id: row.try_get("id")?,
                attempt: row.try_get("attempt")?,
                at: time(row.try_get("logged_at")?),
                text: row.try_get("line")?,
            })
        })
        .fetch_all(&self.reader)
        .await
        .map_err(|e| storage_error(OP, e))
    }
}
