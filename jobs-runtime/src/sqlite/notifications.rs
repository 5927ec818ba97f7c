//! [`NotificationStorage`] for SQLite: `PRAGMA data_version`.

use jobs_core::{Notification, NotificationStorage, Result};
use sqlx::{Connection, SqliteConnection};

use super::{CHANGE_CHECK_INTERVAL, SqliteStorage};
use crate::sql_error::storage_error;

#[async_trait::async_trait]
impl NotificationStorage for SqliteStorage {
    async fn listen(&self, notify: &(dyn Fn(Notification) + Send + Sync)) -> Result<()> {
        const OP: &str = "watching the SQLite file for changes";
        let Some(file) = &self.file else {
            return std::future::pending().await;
        };
        let mut conn = SqliteConnection::connect_with(file)
            .await
            .map_err(|e| storage_error(OP, e))?;
        let mut seen: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| storage_error(OP, e))?;
        // Jobs may have come while nobody watched. (Leases revoked by
        // another process are seen at the next renewal: a change of the
        // file does not say what changed, and most are finishes.)
        notify(Notification::JobsAvailable);
        let mut tick = tokio::time::interval(CHANGE_CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let version: i64 = sqlx::query_scalar("PRAGMA data_version")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| storage_error(OP, e))?;
            if version != seen {
                seen = version;
                notify(Notification::JobsAvailable);
            }
        }
    }
}
