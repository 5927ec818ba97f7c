//! The maintenance part of the contract: the periodic work one leader does
//! for all servers of a storage.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::continuations::ResolveAwaitingParams;
use super::jobs::Attempt;
use super::outcome::FinishParams;
use super::recurring::{
    DueRecurring, DueRecurringParams, FireRecurringParams, PauseRecurringParams,
    SaveRecurringParams, SyncRecurringParams,
};
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
    /// The job's name.
    pub name: String,
    /// The job's queue.
    pub queue: String,
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
    /// until someone deletes them. Members of a batch expire with their
    /// batch instead: a batch that is not nested, finished (or cancelled)
    /// longer than the retention ago, is deleted with its nested batches
    /// and all their member jobs (`Failed` ones too) once every member is
    /// in a final state (a member of a cancelled batch may still run).
    /// Returns how many jobs were deleted.
    async fn expire(&self, params: ExpireParams) -> Result<u64>;

    /// Brings the statistics' counters together, as Hangfire's
    /// `CountersAggregator`: counts appended by the recording of outcomes
    /// are added to their hour's, and hours older than `params.keep` to
    /// the totals. What [`statistics`](super::MonitoringStorage::statistics)
    /// reads is the same before and after. Returns how many rows it folded.
    async fn aggregate_counters(&self, params: super::AggregateCountersParams) -> Result<u64>;

    /// Decides what waits on finished parents, in one transaction:
    /// finishes the `Started` batches whose members all reached a final
    /// state and whose nested batches all finished (as
    /// [`BatchState`](super::BatchState) says), then moves up to `limit`
    /// `Awaiting` continuations whose parent job or batch finished (or no
    /// longer exists) to `Enqueued` or `Deleted`, as their
    /// [`ContinueOn`](super::ContinueOn) says, with the parent's result.
    /// [`finish`](super::JobStorage::finish) decides a job's continuations
    /// as it finishes the job; this call decides the rest: batches' and,
    /// on a storage whose writers run at once (PostgreSQL), a continuation
    /// stored while its parent was finishing and chains of deletions (a
    /// storage may decide those when the parent moves instead, as SQLite
    /// does). Returns how many batches and continuations it decided.
    async fn resolve_awaiting(&self, params: ResolveAwaitingParams) -> Result<u64>;

    /// Takes or renews the leadership `name` for `ttl`. Returns whether
    /// `server` leads now: at most one server leads a name at any time,
    /// and a leader that stops renewing loses it when the ttl runs out.
    async fn try_lead(&self, params: LeadParams) -> Result<bool>;

    /// Gives up the leadership `name` if `server` holds it.
    async fn resign(&self, name: &str, server: &str) -> Result<()>;

    /// The storage's clock (UTC): what it would store as "now".
    async fn clock(&self) -> Result<DateTime<Utc>>;

    /// Stores a recurring job's definition under its id, creating or
    /// replacing it. A replaced job keeps its pause, its last run and,
    /// unless its cron expression or time zone changed, its next run; it is
    /// no longer [`missing_from_code`](super::RecurringJob::missing_from_code).
    /// A save that would change nothing writes nothing (the version stays).
    async fn save_recurring(&self, params: SaveRecurringParams) -> Result<()>;

    /// Saves every `#[recurring]` job of a binary and marks the stored
    /// ones defined in code that neither it nor a live server has as
    /// missing, in one transaction. Returns how many were newly marked.
    async fn sync_recurring(&self, params: SyncRecurringParams) -> Result<u64>;

    /// Pauses or resumes a recurring job and stores its next run, if its
    /// version is still the one given (compare-and-set). Returns whether it
    /// changed.
    async fn pause_recurring(&self, params: PauseRecurringParams) -> Result<bool>;

    /// Deletes a recurring job's definition (its past runs stay, as jobs).
    /// Returns whether it existed.
    async fn remove_recurring(&self, id: &str) -> Result<bool>;

    /// The recurring jobs due by the storage's clock, and when the next
    /// one is; reads only.
    async fn due_recurring(&self, params: DueRecurringParams) -> Result<DueRecurring>;

    /// In one transaction: if the job's version is still the one given,
    /// stores its next run, enqueues `jobs` as
    /// [`enqueue`](super::JobStorage::enqueue) does, records the last of
    /// them as its last run, and moves the version on. Returns the new
    /// jobs' ids, or `None` when the version moved (another scheduler
    /// claimed the tick, or the job changed or was removed): nothing was
    /// written then.
    async fn fire_recurring(&self, params: FireRecurringParams) -> Result<Option<Vec<JobId>>>;
}
