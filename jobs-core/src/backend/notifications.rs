//! Notifications: how a server hears of jobs made available by another
//! process without polling for them.

use crate::Result;

/// The notifications part of the contract.
#[async_trait::async_trait]
pub trait NotificationStorage: Send + Sync + 'static {
    /// Calls `wake` whenever jobs may have become available through another
    /// process (PostgreSQL: `LISTEN`/`NOTIFY`), and once when it starts
    /// listening. Runs until it fails; a server calls it again after an
    /// error and keeps polling meanwhile, so a lost notification only delays
    /// a job. A storage without notifications returns
    /// `std::future::pending().await`: polling alone.
    async fn watch_for_jobs(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<()>;
}
