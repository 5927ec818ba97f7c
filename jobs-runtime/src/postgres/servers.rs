//! [`ServerStorage`] for PostgreSQL.

use jobs_core::{PruneServersParams, Result, ServerInfo, ServerRecord, ServerStorage};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStorage;
use super::decode::{count, millis};

#[async_trait::async_trait]
impl ServerStorage for PostgresStorage {
    async fn register_server(&self, server: ServerInfo) -> Result<()> {
        self.run(
            "registering a server",
            sqlx::query(self.sql(
                "INSERT INTO {s}.jobs_server (id, workers, queues, jobs, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, now(), now())
             ON CONFLICT (id) DO UPDATE
             SET workers = excluded.workers, queues = excluded.queues, jobs = excluded.jobs,
                 heartbeat_at = now()",
            ))
            .bind(&server.id)
            .bind(i32::try_from(server.workers).unwrap_or(i32::MAX))
            .bind(&server.queues)
            .bind(&server.jobs)
            .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn heartbeat(&self, server: &str) -> Result<bool> {
        let beat = self
            .run(
                "recording a heartbeat",
                sqlx::query(
                    self.sql("UPDATE {s}.jobs_server SET heartbeat_at = now() WHERE id = $1"),
                )
                .bind(server)
                .execute(&self.pool),
            )
            .await?;
        Ok(beat.rows_affected() == 1)
    }

    async fn unregister_server(&self, server: &str) -> Result<()> {
        self.run(
            "unregistering a server",
            sqlx::query(self.sql(
                "WITH leader AS (DELETE FROM {s}.jobs_leader WHERE server = $1)
             DELETE FROM {s}.jobs_server WHERE id = $1",
            ))
            .bind(server)
            .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        self.run(
            "reading servers",
            sqlx::query(self.sql(
                "SELECT id, workers, queues, jobs, started_at, heartbeat_at,
                    greatest(extract(epoch FROM now() - heartbeat_at), 0)::float8 AS silent_s
             FROM {s}.jobs_server ORDER BY started_at, id",
            ))
            .try_map(|row: PgRow| {
                Ok(ServerRecord {
                    id: row.try_get("id")?,
                    workers: count(&row, "workers")?,
                    queues: row.try_get("queues")?,
                    jobs: row.try_get("jobs")?,
                    started_at: row.try_get("started_at")?,
                    heartbeat_at: row.try_get("heartbeat_at")?,
                    silent_for: std::time::Duration::from_secs_f64(row.try_get("silent_s")?),
                })
            })
            .fetch_all(&self.pool),
        )
        .await
    }

    async fn prune_servers(&self, params: PruneServersParams) -> Result<u64> {
        let pruned = self.run("pruning servers", sqlx::query(self.sql(
            "DELETE FROM {s}.jobs_server WHERE heartbeat_at < now() - $1 * interval '1 millisecond'",
        ))
        .bind(millis(params.silent_for))
        .execute(&self.pool)
        ).await?;
        Ok(pruned.rows_affected())
    }
}
