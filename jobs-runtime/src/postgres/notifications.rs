//! [`NotificationStorage`] for PostgreSQL: `LISTEN`/`NOTIFY`.

use jobs_core::{Notification, NotificationStorage, Result};
use sqlx::postgres::{PgListener, PgPoolOptions};

use super::PostgresStorage;
use crate::sql_error::storage_error;

/// The payload of a [`Notification::LeasesRevoked`] on the storage's
/// channel; every other payload (the empty one) says jobs are available.
pub(super) const REVOKED: &str = "revoked";

#[async_trait::async_trait]
impl NotificationStorage for PostgresStorage {
    async fn listen(&self, notify: &(dyn Fn(Notification) + Send + Sync)) -> Result<()> {
        const OP: &str = "listening for notifications";
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
        // Jobs may have come, and leases gone, while nobody listened.
        notify(Notification::JobsAvailable);
        notify(Notification::LeasesRevoked);
        loop {
            // `None`: the connection was lost and is being re-established;
            // notifications may have been missed meanwhile: both, anyway.
            let received = listener
                .try_recv()
                .await
                .map_err(|e| storage_error(OP, e))?;
            match received {
                Some(message) if message.payload() == REVOKED => {
                    notify(Notification::LeasesRevoked);
                }
                Some(_) => notify(Notification::JobsAvailable),
                None => {
                    notify(Notification::JobsAvailable);
                    notify(Notification::LeasesRevoked);
                }
            }
        }
    }
}
