//! The maintenance part of the contract: the periodic work one leader does
//! for all servers of a storage.

use std::time::Duration;

use super::jobs::Attempt;
use super::outcome::FinishParams;
use crate::{JobId, Result};

/// The arguments of [`MaintenanceStorage::promote_scheduled`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromoteParams {
    /// The most jobs to move in one call.
    pub limit: usize,
}

/// The arguments of [`MaintenanceStorage::expired_leases`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredLeasesParams {
    /// The most attempts to return.
    pub limit: usize,
}

/// A `Processing` attempt whose lease ran out: its server stopped renewing
/// it (it died, or lost the database for longer than the lease).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredLease {
    /// The attempt.
    pub job: Attempt,
    /// The most attempts the job gets.
    pub max_attempts: u32,
    /// The server that held it.
    pub server: Option<String>,
}

/// The name of the leadership under which one server runs the maintenance
/// (promotion, rescue, expiry) for all.
pub const MAINTENANCE_LEADERSHIP: &str = "maintenance";

/// The arguments of [`MaintenanceStorage::try_lead`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadParams {
    /// The leadership's name: [`MAINTENANCE_LEADERSHIP`] for the
    /// server's maintenance; a feature that needs one doer of its own takes
    /// a name of its own.
    pub name: String,
    /// The server that wants to lead.
    pub server: String,
    /// How long the leadership lasts unless renewed by another call.
    pub ttl: Duration,
}

/// The arguments of [`MaintenanceStorage::expire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpireParams {
    /// `Succeeded` and `Deleted` jobs that have been so for longer than
    /// this are deleted with their history.
    pub older_than: Duration,
    /// The most jobs to delete in one call.
    pub limit: usize,
}

/// The maintenance part of the contract: work done once for all servers,
/// by the leader (see [`try_lead`](Self::try_lead)).
#[async_trait::async_trait]
pub trait MaintenanceStorage: Send + Sync + 'static {
    /// Moves `Scheduled` jobs whose time has come (by the storage's clock)
    /// to `Enqueued`, oldest due first, with the reason
    /// [`SCHEDULED_TIME_REACHED`](crate::decide::SCHEDULED_TIME_REACHED).
    /// Returns how many moved.
    async fn promote_scheduled(&self, params: PromoteParams) -> Result<u64>;

    /// The `Processing` attempts whose lease expired, oldest expiry first.
    /// Reads only; [`rescue`](Self::rescue) moves them.
    async fn expired_leases(&self, params: ExpiredLeasesParams) -> Result<Vec<ExpiredLease>>;

    /// Records outcomes for attempts whose lease expired (decided by
    /// [`decide::rescued`](crate::decide::rescued)), as
    /// [`finish`](super::JobStorage::finish) does, but only while the lease
    /// is still expired: an attempt whose lease was renewed meanwhile, or
    /// that finished, is skipped. Returns the ids that moved, sorted.
    async fn rescue(&self, params: FinishParams) -> Result<Vec<JobId>>;

    /// Deletes finished jobs (`Succeeded`, `Deleted`) older than the
    /// retention, oldest first, with their history. `Failed` jobs are kept
    /// until someone deletes them. Returns how many were deleted.
    async fn expire(&self, params: ExpireParams) -> Result<u64>;

    /// Takes or renews the leadership `name` for `ttl`. Returns whether
    /// `server` leads now: at most one server leads a name at any time,
    /// and a leader that stops renewing loses it when the ttl runs out.
    async fn try_lead(&self, params: LeadParams) -> Result<bool>;

    /// Gives up the leadership `name` if `server` holds it.
    async fn resign(&self, name: &str, server: &str) -> Result<()>;
}
