//! Paused queues and job names for PostgreSQL: rows of `jobs_paused`,
//! which the fetch reads (see [`FETCH`](super::jobs::FETCH)).

use jobs_core::{PauseTarget, Paused, Result, SetPausedParams};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStorage;
use crate::readable::readable;

/// Pauses `$1` (kind) `$2` (name); nothing when it is paused already.
const PAUSE: &str = "INSERT INTO {s}.jobs_paused (kind, name, paused_at) VALUES ($1, $2, now())
     ON CONFLICT (kind, name) DO NOTHING";

/// Resumes `$1` (kind) `$2` (name) and wakes the servers listening on `$3`
/// when it was paused: its jobs may be fetched again.
const RESUME: &str = "WITH resumed AS (
         DELETE FROM {s}.jobs_paused WHERE kind = $1 AND name = $2 RETURNING 1
     ), notified AS (
         SELECT pg_notify($3, '') WHERE EXISTS (SELECT FROM resumed)
     )
     SELECT count(*) FROM resumed LEFT JOIN notified ON true";

impl PostgresStorage {
    pub(super) async fn paused_set(&self, params: SetPausedParams) -> Result<bool> {
        let (kind, name) = (params.target.kind(), params.target.name());
        if params.paused {
            let done = self
                .run(
                    "pausing",
                    sqlx::query(self.sql(PAUSE))
                        .bind(kind)
                        .bind(name)
                        .execute(&self.pool),
                )
                .await?;
            Ok(done.rows_affected() > 0)
        } else {
            let resumed: i64 = self
                .run(
                    "resuming",
                    sqlx::query_scalar(self.sql(RESUME))
                        .bind(kind)
                        .bind(name)
                        .bind(&self.channel)
                        .fetch_one(&self.pool),
                )
                .await?;
            Ok(resumed > 0)
        }
    }

    pub(super) async fn paused_list(&self) -> Result<Vec<Paused>> {
        let rows = self
            .run(
                "listing paused queues and jobs",
                sqlx::query(self.sql(
                    "SELECT kind, name, paused_at FROM {s}.jobs_paused ORDER BY kind DESC, name",
                ))
                .map(|row: PgRow| paused(&row))
                .fetch_all(&self.pool),
            )
            .await?;
        Ok(readable("paused queue or job", rows))
    }
}

/// A row of `jobs_paused`; an unknown kind (written by a newer version)
/// does not decode.
fn paused(row: &PgRow) -> std::result::Result<Paused, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let target = PauseTarget::from_stored(&kind, row.try_get("name")?)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown kind of pause `{kind}`").into()))?;
    Ok(Paused {
        target,
        paused_at: row.try_get("paused_at")?,
    })
}
