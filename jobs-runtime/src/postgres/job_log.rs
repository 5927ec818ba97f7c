//! Running jobs' log lines and progress for PostgreSQL: rows of
//! `jobs_job_log`, and the `progress` column of `jobs_job`.

use jobs_core::{JobLogQuery, LogRecord, Result, WriteLogParams};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStorage;
use super::decode::{count, limit, millis};

/// Appends lines (`$1` job ids, `$2` attempts, `$3` ages in ms, `$4`
/// texts) of jobs that still exist, and stores progress (`$5` job ids,
/// `$6` attempts, `$7` values) of jobs whose latest attempt it is. Jobs
/// are found by their primary key (`id = ANY(..)`), as every write of
/// held attempts finds them (see `finish_sql`), whatever the table holds.
/// The log has no foreign key: a line whose job expires meanwhile is left
/// behind rather than failing the write of every other line.
pub(super) const WRITE_LOG: &str = "WITH lines AS (
         INSERT INTO {s}.jobs_job_log (job_id, attempt, logged_at, line)
         SELECT l.job_id, l.attempt, now() - l.age_ms * interval '1 millisecond', l.line
         FROM unnest($1::bigint[], $2::int[], $3::float8[], $4::text[])
              WITH ORDINALITY AS l(job_id, attempt, age_ms, line, n)
         WHERE EXISTS (SELECT FROM {s}.jobs_job j WHERE j.id = ANY($1) AND j.id = l.job_id)
         ORDER BY l.n
     ), progress AS (
         UPDATE {s}.jobs_job j SET progress = p.progress
         FROM unnest($5::bigint[], $6::int[], $7::float8[]) AS p(id, attempt, progress)
         WHERE j.id = ANY($5) AND j.id = p.id AND j.attempt = p.attempt
     )
     SELECT 1";

impl PostgresStorage {
    pub(super) async fn log_write(&self, params: WriteLogParams) -> Result<()> {
        if params.lines.is_empty() && params.progress.is_empty() {
            return Ok(());
        }
        let lines = &params.lines;
        let mut progress = params.progress;
        // In id order, as every write of held attempts binds them.
        progress.sort_unstable_by_key(|p| p.job.id);
        self.run(
            "writing job logs",
            sqlx::query(self.sql(WRITE_LOG))
                .bind(lines.iter().map(|l| l.job.id.0).collect::<Vec<_>>())
                .bind(
                    lines
                        .iter()
                        .map(|l| attempt(l.job.attempt))
                        .collect::<Vec<_>>(),
                )
                .bind(lines.iter().map(|l| millis(l.age)).collect::<Vec<_>>())
                .bind(lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>())
                .bind(progress.iter().map(|p| p.job.id.0).collect::<Vec<_>>())
                .bind(
                    progress
                        .iter()
                        .map(|p| attempt(p.job.attempt))
                        .collect::<Vec<_>>(),
                )
                .bind(progress.iter().map(|p| p.progress).collect::<Vec<_>>())
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn log_list(&self, query: JobLogQuery) -> Result<Vec<LogRecord>> {
        self.run(
            "reading a job's log",
            sqlx::query(self.sql(
                "SELECT id, attempt, logged_at, line FROM {s}.jobs_job_log
                 WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            ))
            .bind(query.job.0)
            .bind(query.after.unwrap_or(0))
            .bind(limit(query.limit.max(1)))
            .try_map(|row: PgRow| {
                Ok(LogRecord {
                    id: row.try_get("id")?,
                    attempt: count(&row, "attempt")?,
                    at: row.try_get("logged_at")?,
                    text: row.try_get("line")?,
                })
            })
            .fetch_all(&self.pool),
        )
        .await
    }
}

fn attempt(attempt: u32) -> i32 {
    i32::try_from(attempt).unwrap_or(i32::MAX)
}
