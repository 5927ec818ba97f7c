//! Statistics of finished jobs for PostgreSQL: counts appended to
//! `jobs_counter` by the recording of outcomes (see `finish_sql`), folded
//! by the leader into `jobs_counter_hour` (migration 0009).

use chrono::{DateTime, Utc};
use jobs_core::{AggregateCountersParams, Result, Statistics};

use super::PostgresStorage;
use super::decode::millis;

/// Every count, folded or not, by name and hour.
const READ: &str = "SELECT name, hour, sum(value)::bigint FROM (
         SELECT name, hour, value FROM {s}.jobs_counter_hour
         UNION ALL
         SELECT name, hour, value FROM {s}.jobs_counter
     ) AS c GROUP BY name, hour";

/// Adds the appended counts to their hour's row (`$1`: hours older than
/// this many ms go to the epoch's row). Deletes only the rows its
/// snapshot sees: a count appended meanwhile waits for the next fold.
const FOLD_APPENDED: &str = "WITH appended AS (
         DELETE FROM {s}.jobs_counter RETURNING name, hour, value
     ), summed AS (
         SELECT name,
                CASE WHEN hour < now() - $1 * interval '1 millisecond'
                     THEN 'epoch'::timestamptz ELSE hour END AS hour,
                sum(value)::bigint AS value, count(*) AS rows
         FROM appended GROUP BY 1, 2
     ), added AS (
         INSERT INTO {s}.jobs_counter_hour AS h (name, hour, value)
         SELECT name, hour, value FROM summed
         ON CONFLICT (name, hour) DO UPDATE SET value = h.value + excluded.value
     )
     SELECT coalesce(sum(rows), 0)::bigint FROM summed";

/// Adds the hours older than `$1` ms to the epoch's row.
const FOLD_OLD_HOURS: &str = "WITH old AS (
         DELETE FROM {s}.jobs_counter_hour
         WHERE hour > 'epoch' AND hour < now() - $1 * interval '1 millisecond'
         RETURNING name, value
     ), summed AS (
         SELECT name, sum(value)::bigint AS value, count(*) AS rows FROM old GROUP BY name
     ), added AS (
         INSERT INTO {s}.jobs_counter_hour AS h (name, hour, value)
         SELECT name, 'epoch', value FROM summed
         ON CONFLICT (name, hour) DO UPDATE SET value = h.value + excluded.value
     )
     SELECT coalesce(sum(rows), 0)::bigint FROM summed";

impl PostgresStorage {
    pub(super) async fn statistics_read(&self) -> Result<Statistics> {
        let rows: Vec<(String, DateTime<Utc>, i64)> = self
            .run(
                "reading statistics",
                sqlx::query_as(self.sql(READ)).fetch_all(&self.pool),
            )
            .await?;
        Ok(Statistics::from_rows(rows))
    }

    pub(super) async fn counters_aggregate(&self, params: AggregateCountersParams) -> Result<u64> {
        let mut folded = 0;
        for (operation, statement) in [
            ("folding counters", FOLD_APPENDED),
            ("folding old hours of counters", FOLD_OLD_HOURS),
        ] {
            let rows: i64 = self
                .run(
                    operation,
                    sqlx::query_scalar(self.sql(statement))
                        .bind(millis(params.keep))
                        .fetch_one(&self.pool),
                )
                .await?;
            folded += u64::try_from(rows).unwrap_or(0);
        }
        Ok(folded)
    }
}
