//! [`NotificationStorage`] for PostgreSQL: `LISTEN`/`NOTIFY`.

use jobs_core::{NotificationStorage, Result};
use sqlx::postgres::{PgListener, PgPoolOptions};

use super::PostgresStorage;
use crate::sql_error::storage_error;

#[async_trait::async_trait]
impl NotificationStorage for PostgresStorage {
    async fn watch_for_jobs(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<()> {
        const OP: &str = "listening for enqueued jobs";
        // A connection of its own, so that listening never takes one of
        // the pool's (which may be the application's, and small).
        let own = PgPoolOptions::new()
            .max_connections(1)
            .connect_with((*self.pool.connect_options()).clone())
            .await
            .map_err(|e| storage_error(OP, e))?;
        let mut listener = PgListener::connect_with(&own)
            .await
            .map_err(|e| storage_error(OP, e))?;
        listener
            .listen(&self.channel)
            .await
            .map_err(|e| storage_error(OP, e))?;
        // Jobs may have come while nobody listened.
        wake();
        loop {
            // `None`: the connection was lost and is being re-established;
            // notifications may have been missed meanwhile, so wake anyway.
            listener
                .try_recv()
                .await
                .map_err(|e| storage_error(OP, e))?;
            wake();
        }
    }
}
