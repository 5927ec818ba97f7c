//! [`ServerStorage`] for SQLite.

use jobs_core::{PruneServersParams, Result, ServerInfo, ServerRecord, ServerStorage};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStorage;
use super::decode::{millis, time};
use crate::sql_error::storage_error;

#[async_trait::async_trait]
impl ServerStorage for SqliteStorage {
    async fn register_server(&self, server: ServerInfo) -> Result<()> {
        let queues = serde_json::to_string(&server.queues).expect("strings serialize");
        let jobs = serde_json::to_string(&server.jobs).expect("strings serialize");
        self.execute("registering a server", |now| {
            sqlx::query(
                "INSERT INTO jobs_server (id, workers, queues, jobs, started_at, heartbeat_at)
                 VALUES (?1, ?2, ?3, ?5, ?4, ?4)
                 ON CONFLICT (id) DO UPDATE
                 SET workers = excluded.workers, queues = excluded.queues, jobs = excluded.jobs,
                     heartbeat_at = excluded.heartbeat_at",
            )
            .bind(server.id)
            .bind(server.workers)
            .bind(queues)
            .bind(now)
            .bind(jobs)
        })
        .await
        .map(drop)
    }

    async fn heartbeat(&self, server: &str) -> Result<bool> {
        let server = server.to_owned();
        let beat = self
            .execute("recording a heartbeat", |now| {
                sqlx::query("UPDATE jobs_server SET heartbeat_at = ?1 WHERE id = ?2")
                    .bind(now)
                    .bind(server)
            })
            .await?;
        Ok(beat == 1)
    }

    async fn unregister_server(&self, server: &str) -> Result<()> {
        const OP: &str = "unregistering a server";
        let (mut tx, _) = self.write(OP).await?;
        for statement in [
            "DELETE FROM jobs_server WHERE id = ?1",
            "DELETE FROM jobs_leader WHERE server = ?1",
        ] {
            sqlx::query(statement)
                .bind(server)
                .execute(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?;
        }
        tx.commit().await.map_err(|e| storage_error(OP, e))
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        sqlx::query(concat!(
            "SELECT id, workers, queues, jobs, started_at, heartbeat_at, max(",
            now_ms!(),
            " - heartbeat_at, 0) AS silent_ms FROM jobs_server ORDER BY started_at, id"
        ))
        .try_map(|row: SqliteRow| {
            let list = |column: &str| -> std::result::Result<Vec<String>, sqlx::Error> {
                let json: String = row.try_get(column)?;
                serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
            };
            Ok(ServerRecord {
                id: row.try_get("id")?,
                workers: row.try_get("workers")?,
                queues: list("queues")?,
                jobs: list("jobs")?,
                started_at: time(row.try_get("started_at")?),
                heartbeat_at: time(row.try_get("heartbeat_at")?),
                silent_for: std::time::Duration::from_millis(
                    row.try_get::<i64, _>("silent_ms")?.try_into().unwrap_or(0),
                ),
            })
        })
        .fetch_all(&self.reader)
        .await
        .map_err(|e| storage_error("reading servers", e))
    }

    async fn prune_servers(&self, params: PruneServersParams) -> Result<u64> {
        self.execute("pruning servers", |now| {
            sqlx::query("DELETE FROM jobs_server WHERE heartbeat_at < ?1 - ?2")
                .bind(now)
                .bind(millis(params.silent_for))
        })
        .await
    }
}
