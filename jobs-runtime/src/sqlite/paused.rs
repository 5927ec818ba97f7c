//! Paused queues and job names for SQLite: rows of `jobs_paused`, which
//! the fetch reads (see [`PICK`](super::jobs::PICK)). A resume wakes the
//! servers of other processes through the file's change counter, as
//! every write does.

use jobs_core::{PauseTarget, Paused, Result, SetPausedParams};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStorage;
use super::decode::time;
use crate::readable::readable;
use crate::sql_error::storage_error;

impl SqliteStorage {
    pub(super) async fn paused_set(&self, params: SetPausedParams) -> Result<bool> {
        let kind = params.target.kind();
        let name = params.target.name().to_owned();
        let changed = if params.paused {
            self.execute("pausing", move |now| {
                sqlx::query(
                    "INSERT INTO jobs_paused (kind, name, paused_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (kind, name) DO NOTHING",
                )
                .bind(kind)
                .bind(name)
                .bind(now)
            })
            .await?
        } else {
            self.execute("resuming", move |_| {
                sqlx::query("DELETE FROM jobs_paused WHERE kind = ?1 AND name = ?2")
                    .bind(kind)
                    .bind(name)
            })
            .await?
        };
        Ok(changed > 0)
    }

    pub(super) async fn paused_list(&self) -> Result<Vec<Paused>> {
        const OP: &str = "listing paused queues and jobs";
        let rows =
            sqlx::query("SELECT kind, name, paused_at FROM jobs_paused ORDER BY kind DESC, name")
                .map(|row: SqliteRow| paused(&row))
                .fetch_all(&self.reader)
                .await
                .map_err(|e| storage_error(OP, e))?;
        Ok(readable("paused queue or job", rows))
    }
}

/// A row of `jobs_paused`; an unknown kind (written by a newer version)
/// does not decode.
fn paused(row: &SqliteRow) -> std::result::Result<Paused, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let target = PauseTarget::from_stored(&kind, row.try_get("name")?)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown kind of pause `{kind}`").into()))?;
    Ok(Paused {
        target,
        paused_at: time(row.try_get("paused_at")?),
    })
}
