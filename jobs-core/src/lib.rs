//! The vocabulary of the `jobs` framework.
//!
//! This crate holds what every other part agrees on: the [`Job`] trait that
//! `#[job]` implements, [`JobId`], the [`State`] machine with Hangfire's state
//! names and its allowed transitions, the state history ([`StateChange`]), the
//! [`RetryPolicy`] (Hangfire's `AutomaticRetry` by default), the [`Registry`]
//! of jobs collected with `inventory`, and the storage contract that every
//! storage (SQLite, PostgreSQL) implements: [`StorageBackend`], made of one
//! trait per concern (see [`backend`] for where a new call goes), with the
//! [`decide`] module holding the decisions and reasons every storage binds.
//!
//! Users normally depend on the `jobs` facade crate, which re-exports all of it.
#![warn(missing_docs)]

pub mod backend;
mod cancellation;
mod context;
mod context_sink;
mod control;
pub mod decide;
mod duration;
mod error;
mod history;
mod id;
mod job;
pub mod recurring;
mod registry;
mod retry;
mod state;
mod text;

pub use backend::{
    AggregateCountersParams, Attempt, BatchQuery, BatchRecord, BatchState, Continuation,
    ContinueOn, DueRecurring, DueRecurringParams, EnqueueParams, ExpireParams, ExpiredLease,
    ExpiredLeasesParams, ExtendLeasesParams, FetchParams, FetchedJob, FinishParams, Finished,
    FireRecurringParams, HourStatistics, JobLogQuery, JobOutcome, JobParameters, JobProgress,
    JobQuery, JobRecord, JobSearch, JobStorage, LeadParams, LogLine, LogRecord,
    MAINTENANCE_LEADERSHIP, MAX_LOG_LINES_PER_ATTEMPT, MAX_PARAMETER_LEN, MAX_PARAMETER_NAME_LEN,
    MAX_RETRY_DELAY, MaintenanceStorage, MonitoringStorage, MoveParams, NewBatch, NewJob,
    Notification, NotificationStorage, Outcome, Parent, PauseRecurringParams, PauseTarget, Paused,
    PromoteParams, PruneServersParams, QueueCounts, RecurringDefinition, RecurringJob,
    ResolveAwaitingParams, STATISTICS_KEPT, SaveRecurringParams, Schedule, SearchPage, ServerInfo,
    ServerRecord, ServerStorage, SetParametersParams, SetPausedParams, StateCounts, Statistics,
    StorageBackend, StoredOutcome, SyncRecurringParams, WriteLogParams, check_parameter,
};
pub use cancellation::{CancelReason, Cancellation};
pub use context::JobContext;
pub use context_sink::ContextSink;
pub use control::{
    Concurrency, ConcurrencyKey, UNIQUE_WHILE_UNFINISHED, UNIQUE_WITHIN_PERIOD, UniqueKey,
    Uniqueness, canonical_json,
};
pub use duration::duration_text;
pub use error::{Error, Result};
pub use history::StateChange;
pub use id::{BatchId, JobId, ParentOf, TypedJobId};
pub use job::{
    BoxFuture, IntoJobResult, Job, JobArgument, JobError, JobResult, MAX_BATCH_RESULTS_LEN,
    MAX_RESULT_LEN, encode_result,
};
pub use registry::{JobRegistration, Registry};
pub use retry::{Backoff, RetryPolicy};
pub use state::{ParseStateError, State};
pub use text::{MAX_TEXT_LEN, NUL_REPLACEMENT, TRUNCATION_MARKER, storable_text};

#[doc(hidden)]
pub use inventory;
