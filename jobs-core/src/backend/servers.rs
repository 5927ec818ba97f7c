//! The server registry: which servers live, what they serve and run.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::Result;

/// A server announcing itself: [`ServerStorage::register_server`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// Its id (`host:pid:random`).
    pub id: String,
    /// Its number of workers.
    pub workers: u32,
    /// The queues it serves, in priority order.
    pub queues: Vec<String>,
    /// The names of the jobs it can run, sorted.
    pub jobs: Vec<String>,
}

/// A registered server, as [`ServerStorage::servers`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerRecord {
    /// Its id.
    pub id: String,
    /// Its number of workers.
    pub workers: u32,
    /// The queues it serves, in priority order.
    pub queues: Vec<String>,
    /// The names of the jobs it can run, sorted.
    pub jobs: Vec<String>,
    /// When it registered (UTC).
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat (UTC).
    pub heartbeat_at: DateTime<Utc>,
    /// How long ago that was, by the storage's clock when it was read (so
    /// that whether a server lives is judged by one clock, not by the
    /// reader's).
    pub silent_for: Duration,
}

/// The arguments of [`ServerStorage::prune_servers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneServersParams {
    /// Servers silent for longer than this are removed.
    pub silent_for: Duration,
}

/// The server registry part of the contract.
#[async_trait::async_trait]
pub trait ServerStorage: Send + Sync + 'static {
    /// Registers a server, or refreshes its record; its heartbeat is now.
    async fn register_server(&self, server: ServerInfo) -> Result<()>;

    /// Records a heartbeat of `server`. Returns `false` when the server is
    /// not registered (it was pruned as dead): it should register again.
    async fn heartbeat(&self, server: &str) -> Result<bool>;

    /// Removes a server's record, and every leadership it holds.
    async fn unregister_server(&self, server: &str) -> Result<()>;

    /// Every registered server, oldest first.
    async fn servers(&self) -> Result<Vec<ServerRecord>>;

    /// Removes servers whose last heartbeat is older than `silent_for` (by
    /// the storage's clock). Returns how many were removed.
    async fn prune_servers(&self, params: PruneServersParams) -> Result<u64>;
}
