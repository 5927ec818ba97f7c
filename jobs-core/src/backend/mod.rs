//! The storage contract: what every storage implements, split by concern
//! as River's driver groups `Job*`, `Leader*` and `Queue*` calls.
//!
//! | trait | calls | who calls them |
//! | --- | --- | --- |
//! | [`JobStorage`] | enqueue, fetch, finish, extend leases, move (requeue, delete, cancel), pause and resume queues and job names, running jobs' log, progress and parameters | clients, the server's fetcher, completer and lease keeper, operators |
//! | [`MaintenanceStorage`] | promote scheduled jobs, find and rescue expired leases, expire finished jobs, aggregate counters, leadership by name, the storage's clock, recurring jobs (save, sync, pause, remove, find due, fire a tick) | the leader's maintenance services |
//! | [`ServerStorage`] | register, heartbeat, unregister, list and prune servers | every server's heartbeat; the dashboard |
//! | [`MonitoringStorage`] | read a job and its history, count by state and queue, statistics of finished jobs, list jobs by state and queue (keyset pages), list recurring jobs, batches, paused queues and job names, a job's parameters and log | applications, the dashboard, the CLI; read-only |
//! | [`NotificationStorage`] | wake servers when jobs become available elsewhere | every server's notifier |
//!
//! [`StorageBackend`] is all five together: a storage implements the five
//! traits and gets it for free; users hold it behind the `Storage` handle
//! of `jobs-runtime`, which exposes only what applications need.
//!
//! **Where a new feature's calls go.** First look for a field on an
//! existing call's parameters (a unique key, a parent job, a batch on
//! [`NewJob`]; a new [`Outcome`] kind for [`JobStorage::finish`]) rather
//! than a new method. A new method goes in the trait of its concern:
//! moves of jobs in [`JobStorage`], leader-only periodic work (recurring
//! ticks) in [`MaintenanceStorage`], reads for people in
//! [`MonitoringStorage`]. Every parameter struct is its own type, so a
//! field can be added without changing a signature.
//!
//! **Meaning in Rust, SQL per dialect.** Decisions (retry or fail, rescue
//! or fail), reasons and state data are made once in shared code
//! ([`Outcome::stored`], [`decide`](crate::decide)) and bound as parameters;
//! a storage's SQL holds only what its dialect needs. A storage refuses
//! every move that [`State::can_move_to`](crate::State::can_move_to)
//! forbids, and takes every stored time from the database's clock.

mod batches;
mod continuations;
mod job_log;
mod jobs;
mod maintenance;
mod monitoring;
mod notifications;
mod outcome;
mod parameters;
mod paused;
mod recurring;
mod servers;
mod statistics;

pub use batches::{BatchQuery, BatchRecord, BatchState, NewBatch};
pub use continuations::{Continuation, ContinueOn, Parent, ResolveAwaitingParams};
pub use job_log::{
    JobLogQuery, JobProgress, LogLine, LogRecord, MAX_LOG_LINES_PER_ATTEMPT, WriteLogParams,
};
pub use jobs::{
    Attempt, EnqueueParams, ExtendLeasesParams, FetchParams, FetchedJob, JobStorage, MoveParams,
    NewJob, Schedule,
};
pub use maintenance::{
    ExpireParams, ExpiredLease, ExpiredLeasesParams, LeadParams, MAINTENANCE_LEADERSHIP,
    MaintenanceStorage, PromoteParams,
};
pub use monitoring::{
    JobQuery, JobRecord, JobSearch, MonitoringStorage, QueueCounts, SearchPage, StateCounts,
};
pub use notifications::{Notification, NotificationStorage};
pub use outcome::{FinishParams, JobOutcome, MAX_RETRY_DELAY, Outcome, StoredOutcome};
pub use parameters::{
    JobParameters, MAX_PARAMETER_LEN, MAX_PARAMETER_NAME_LEN, SetParametersParams, check_parameter,
};
pub use paused::{PauseTarget, Paused, SetPausedParams};
pub use recurring::{
    DueRecurring, DueRecurringParams, FireRecurringParams, PauseRecurringParams,
    RecurringDefinition, RecurringJob, SaveRecurringParams, SyncRecurringParams,
};
pub use servers::{PruneServersParams, ServerInfo, ServerRecord, ServerStorage};
pub use statistics::{
    AggregateCountersParams, Finished, HourStatistics, STATISTICS_KEPT, Statistics,
};

/// Everything a storage implements: the five traits of the contract
/// together. Implemented for every type that implements them.
///
/// The invariants every implementation keeps are in DESIGN.md:
/// at-least-once (nothing enqueued is lost; a job whose lease expires is
/// rescued), a dequeue whose cost does not grow with finished jobs kept,
/// durable commits, the database's clock for every stored time, and only
/// the moves [`State::can_move_to`](crate::State::can_move_to) allows.
/// The conformance suite of `jobs-runtime` checks them.
pub trait StorageBackend:
    JobStorage + MaintenanceStorage + ServerStorage + MonitoringStorage + NotificationStorage
{
}

impl<T> StorageBackend for T where
    T: JobStorage + MaintenanceStorage + ServerStorage + MonitoringStorage + NotificationStorage
{
}
