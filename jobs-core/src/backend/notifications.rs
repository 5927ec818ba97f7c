//! Notifications: how a server hears, without polling, of jobs made
//! available by another process, and of running jobs an operator moved.

use crate::Result;

/// What a storage's notification tells the servers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Notification {
    /// Jobs may have become `Enqueued`: idle servers fetch at once.
    JobsAvailable,
    /// Running jobs may have been moved away by an operator (cancelled,
    /// deleted or requeued): every server renews its leases at once, which
    /// stops the attempts it no longer holds (their cancellation tokens
    /// fire) within moments instead of a third of the lease.
    LeasesRevoked,
}

/// The notifications part of the contract.
#[async_trait::async_trait]
pub trait NotificationStorage: Send + Sync + 'static {
    /// Calls `notify` whenever another process may have made jobs
    /// available or revoked leases (PostgreSQL: `LISTEN`/`NOTIFY`), and
    /// with both notifications once it starts listening, and again
    /// whenever it may have missed some. Runs until it fails; a server
    /// calls it again after an error and keeps polling meanwhile, so a
    /// lost notification only delays a job or a stop. A storage without
    /// notifications returns `std::future::pending().await`: polling
    /// alone.
    async fn listen(&self, notify: &(dyn Fn(Notification) + Send + Sync)) -> Result<()>;
}
