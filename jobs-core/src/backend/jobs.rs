//! The jobs part of the contract: enqueue, fetch, finish, leases, and the
//! moves an operator makes.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::batches::NewBatch;
use super::continuations::Continuation;
use super::job_log::WriteLogParams;
use super::outcome::FinishParams;
use super::parameters::{JobParameters, SetParametersParams};
use super::paused::SetPausedParams;
use crate::{BatchId, ConcurrencyKey, JobId, Result, State, UniqueKey};

/// When a new job becomes `Enqueued`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schedule {
    /// At once: stored `Enqueued`.
    #[default]
    Now,
    /// Stored `Scheduled`, due this long after the storage's own clock
    /// reads when the job is stored (not the client's clock), at most
    /// [`MAX_RETRY_DELAY`](crate::MAX_RETRY_DELAY).
    In(Duration),
    /// Stored `Scheduled`, due at this time (UTC). A time in the past
    /// enqueues it at the next promotion.
    At(DateTime<Utc>),
}

impl Schedule {
    /// Whether the job is stored `Enqueued` (rather than `Scheduled`).
    pub fn is_now(&self) -> bool {
        matches!(self, Schedule::Now)
    }

    /// The state a new job is stored in: `Enqueued` now, else `Scheduled`.
    pub fn state(&self) -> State {
        if self.is_now() {
            State::Enqueued
        } else {
            State::Scheduled
        }
    }

    /// For [`Schedule::At`]: the due time, to store as it is.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            Schedule::At(at) => Some(*at),
            _ => None,
        }
    }

    /// For [`Schedule::In`]: the delay a storage adds to its own clock, at
    /// most [`MAX_RETRY_DELAY`](crate::MAX_RETRY_DELAY).
    pub fn delay(&self) -> Option<Duration> {
        match self {
            Schedule::In(delay) => Some((*delay).min(crate::MAX_RETRY_DELAY)),
            _ => None,
        }
    }
}

/// A job to be stored by [`JobStorage::enqueue`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// The job's stable name ([`Job::NAME`](crate::Job::NAME)).
    pub name: String,
    /// The queue it goes to.
    pub queue: String,
    /// Its arguments as a JSON document.
    pub args: String,
    /// The most attempts it gets (retries + 1): at least 1. The `Storage`
    /// handle raises 0 to 1; a storage refuses 0.
    pub max_attempts: u32,
    /// When it becomes `Enqueued`.
    pub schedule: Schedule,
    /// Its priority within its queue: lower numbers are fetched first
    /// ([`Job::PRIORITY`](crate::Job::PRIORITY)); 0 by default.
    pub priority: i16,
    /// Why it was created, recorded with its first state: `None` for a
    /// plain enqueue; a recurring job's tick says which job and tick.
    pub reason: Option<String>,
    /// Details of its creation as a JSON document, recorded with its first
    /// state (`{"recurring_job": id, "tick": time}` for a tick).
    pub data: Option<String>,
    /// For a continuation: what it awaits. It is stored `Awaiting` (its
    /// `schedule` is not used) until the parent finishes.
    pub continuation: Option<Continuation>,
    /// The batch it belongs to: one of the call's
    /// [`EnqueueParams::batches`], or an existing `Started` batch.
    pub batch: Option<BatchId>,
    /// For a unique job: its key. While a job of the key is in one of the
    /// key's states (within its period), this job is not stored, and
    /// [`JobStorage::enqueue`] returns that job's id in its place.
    pub unique: Option<UniqueKey>,
    /// For a job under a concurrency limit: its key and limit.
    /// [`JobStorage::fetch`] takes it only while fewer than `limit` jobs
    /// of the key are `Processing`.
    pub concurrency: Option<ConcurrencyKey>,
    /// Its parameters (name to JSON), stored with it: what client filters
    /// set (see [`JobParameters`](super::JobParameters)). Empty by default.
    pub parameters: JobParameters,
    /// The trace context of the code that enqueued it, as a W3C
    /// `traceparent` (`00-{trace id}-{span id}-{flags}`, 55 characters):
    /// each attempt's span is linked to it. Set by the client from the
    /// current span when the feature `opentelemetry` is on; `None`
    /// otherwise. A storage keeps it as given and hands it back in
    /// [`FetchedJob::trace_context`].
    pub trace_context: Option<String>,
}

impl NewJob {
    /// A job of `name` with these JSON arguments on `queue`, enqueued at
    /// once, with at most `max_attempts`; the other fields are empty.
    pub fn new(
        name: impl Into<String>,
        queue: impl Into<String>,
        args: impl Into<String>,
        max_attempts: u32,
    ) -> Self {
        NewJob {
            name: name.into(),
            queue: queue.into(),
            args: args.into(),
            max_attempts,
            schedule: Schedule::Now,
            priority: 0,
            reason: None,
            data: None,
            continuation: None,
            batch: None,
            unique: None,
            concurrency: None,
            parameters: JobParameters::new(),
            trace_context: None,
        }
    }

    /// Whether storing it needs more than an insert: it awaits a parent or
    /// joins a batch.
    pub fn is_related(&self) -> bool {
        self.continuation.is_some() || self.batch.is_some()
    }
}

/// The arguments of [`JobStorage::enqueue`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnqueueParams {
    /// The jobs, stored in one transaction, in this order.
    pub jobs: Vec<NewJob>,
    /// Batches to create in the same transaction, parents before the
    /// batches nested in them; the jobs name them by id.
    pub batches: Vec<NewBatch>,
}

impl EnqueueParams {
    /// Stores `jobs`, with no batch to create.
    pub fn jobs(jobs: Vec<NewJob>) -> Self {
        EnqueueParams {
            jobs,
            batches: Vec::new(),
        }
    }
}

/// The arguments of [`JobStorage::fetch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchParams {
    /// Queues in priority order: a job of `queues[0]` is taken before any job
    /// of `queues[1]`. Within a queue, jobs are taken by their priority
    /// (lower numbers first), then in enqueue order. A paused queue, and
    /// the jobs of a paused job name, are skipped.
    pub queues: Vec<String>,
    /// The most jobs to take.
    pub limit: usize,
    /// The id of the fetching server, recorded on the jobs.
    pub server: String,
    /// How long the server holds each job before it may be rescued, unless
    /// it extends the lease ([`JobStorage::extend_leases`]).
    pub lease: Duration,
}

/// A job taken by [`JobStorage::fetch`], now `Processing`.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchedJob {
    /// Its id.
    pub id: JobId,
    /// Its stored name.
    pub name: String,
    /// The queue it came from.
    pub queue: String,
    /// Its arguments, JSON.
    pub args: String,
    /// This attempt's number (1-based). With the id, it fences the attempt:
    /// only a call carrying the same attempt may finish it.
    pub attempt: u32,
    /// The most attempts the job gets.
    pub max_attempts: u32,
    /// Its priority within its queue (lower numbers first).
    pub priority: i16,
    /// When it was first enqueued or scheduled (UTC).
    pub enqueued_at: DateTime<Utc>,
    /// For a continuation: its parent's result (JSON), copied when the
    /// parent finished; `None` otherwise.
    pub parent_result: Option<String>,
    /// The trace context it was enqueued in ([`NewJob::trace_context`]).
    pub trace_context: Option<String>,
}

impl FetchedJob {
    /// Sorts a fetch's jobs in the order [`JobStorage::fetch`] takes them:
    /// by the rank of their queue in `queues`, then priority, then id.
    pub fn sort_for(jobs: &mut [FetchedJob], queues: &[String]) {
        let rank = |queue: &str| queues.iter().position(|q| q == queue);
        jobs.sort_unstable_by_key(|job| (rank(&job.queue), job.priority, job.id));
    }

    /// The attempt this fetch holds.
    pub fn held(&self) -> Attempt {
        Attempt {
            id: self.id,
            attempt: self.attempt,
        }
    }
}

/// One attempt that a server holds: the job's id and the attempt's number.
///
/// Storage calls that finish or extend an attempt take these and do nothing
/// to a job whose current attempt is another (it was rescued and fetched
/// again), so a late result cannot overwrite a newer one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attempt {
    /// The job.
    pub id: JobId,
    /// The attempt's number (1-based), as [`FetchedJob::attempt`] gave it.
    pub attempt: u32,
}

/// The arguments of [`JobStorage::extend_leases`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendLeasesParams {
    /// The attempts the server still runs.
    pub jobs: Vec<Attempt>,
    /// The new lease, from the storage's now.
    pub lease: Duration,
}

/// The arguments of [`JobStorage::move_jobs`]: an operator's move (the
/// dashboard's or an application's requeue, delete and cancel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveParams {
    /// The jobs to move.
    pub ids: Vec<JobId>,
    /// Where to: [`State::Enqueued`] (requeue) or [`State::Deleted`].
    pub to: State,
    /// The states jobs are moved from; a job in another state is left
    /// alone. [`MoveParams::new`] takes every state an operator moves
    /// from ([`decide::operator_sources`](crate::decide::operator_sources));
    /// a cancel takes the unfinished ones only.
    pub from: Vec<State>,
    /// The history's reason, e.g. `"requeued by an operator"`.
    pub reason: String,
}

impl MoveParams {
    /// An operator's move of `ids` to `to`, from every state that allows
    /// it.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when `to` is neither
    /// `Enqueued` nor `Deleted`.
    pub fn new(ids: Vec<JobId>, to: State, reason: impl Into<String>) -> Result<Self> {
        Ok(MoveParams {
            ids,
            to,
            from: crate::decide::operator_sources(to)?,
            reason: reason.into(),
        })
    }

    /// The states to bind: [`from`](Self::from), each checked against the
    /// moves an operator may make.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when `to` is neither
    /// `Enqueued` nor `Deleted`, or `from` names a state that may not move
    /// to `to`.
    pub fn sources(&self) -> Result<Vec<&'static str>> {
        let allowed = crate::decide::operator_sources(self.to)?;
        self.from
            .iter()
            .map(|from| {
                if allowed.contains(from) {
                    Ok(from.as_str())
                } else {
                    Err(crate::Error::Config(format!(
                        "an operator cannot move a job from {from} to {}",
                        self.to
                    )))
                }
            })
            .collect()
    }

    /// Whether the move may take running jobs (`Processing`): their
    /// servers must then stop them, so a storage with notifications tells
    /// every server at once.
    pub fn stops_running(&self) -> bool {
        self.from.contains(&State::Processing)
    }
}

/// The jobs part of the contract: the moves of a job's life.
///
/// Methods are named after the move they make, like River's driver and
/// Oban's engine; each runs in its own transaction and records every move
/// in the job's state history. Every method that finishes or extends an
/// attempt takes [`Attempt`]s and leaves alone any job whose current
/// attempt differs (fencing). Times are the storage's own clock, UTC.
#[async_trait::async_trait]
pub trait JobStorage: Send + Sync + 'static {
    /// Stores new jobs as `Enqueued` (or `Scheduled` per their
    /// [`Schedule`], or as a continuation says), and creates the call's
    /// batches, in one transaction; returns the jobs' ids in the same
    /// order. Wakes the servers listening on other processes when a job is
    /// `Enqueued` (see [`NotificationStorage`](super::NotificationStorage)).
    ///
    /// A continuation whose parent has not finished is stored `Awaiting`;
    /// one whose parent already has is decided at once, with the parent's
    /// result (see [`Continuation`]). Adding jobs or nested batches to an
    /// existing batch moves its version on, so that it cannot finish over
    /// them.
    ///
    /// # Errors
    /// [`Error::JobNotFound`](crate::Error::JobNotFound) or
    /// [`Error::BatchNotFound`](crate::Error::BatchNotFound) for an
    /// unknown parent or batch; [`Error::BatchFinished`](crate::Error::BatchFinished)
    /// when a job or batch joins a batch that is no longer `Started`;
    /// nothing of the call is stored then.
    async fn enqueue(&self, params: EnqueueParams) -> Result<Vec<JobId>>;

    /// Takes up to `limit` `Enqueued` jobs, by queue priority then enqueue
    /// order, and moves them to `Processing` under a lease for `server`,
    /// counting one more attempt each. A job is handed to one fetch only.
    /// The history's data of the move is `{"server": ..., "attempt": ...}`.
    async fn fetch(&self, params: FetchParams) -> Result<Vec<FetchedJob>>;

    /// Records the outcomes of attempts, all in one statement whatever
    /// their kinds, each job looked up by its primary key, with the
    /// columns [`Outcome::stored`](crate::Outcome::stored) gives. An
    /// attempt that is no longer current (the job was rescued and fetched
    /// again, or is not `Processing`) is skipped. Returns the ids of the
    /// jobs that moved, sorted.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) when the statement fails;
    /// then nothing of the batch was recorded. Its `transient` flag tells a
    /// failure worth trying again (the database is away) from one that will
    /// fail again (see [`Error::is_transient`](crate::Error::is_transient)).
    async fn finish(&self, params: FinishParams) -> Result<Vec<JobId>>;

    /// Extends the leases of the attempts a server still runs. Returns the
    /// jobs whose lease it still holds, sorted; an attempt missing from the
    /// answer was rescued or moved by an operator and must stop.
    async fn extend_leases(&self, params: ExtendLeasesParams) -> Result<Vec<JobId>>;

    /// Moves jobs to `to` for an operator, each only from a state that
    /// [`State::can_move_to`] allows (bind
    /// [`decide::operator_sources`](crate::decide::operator_sources)); other jobs
    /// are left as they are. A move to `Enqueued` clears the job's lease,
    /// server and due time and gives it at least one attempt more than it
    /// has used (`max_attempts` becomes at least `attempt + 1`). A running
    /// attempt of a moved job is no longer current: its outcome is
    /// skipped and its lease is not extended. Returns the ids that moved,
    /// sorted.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when `to` is neither
    /// `Enqueued` nor `Deleted` (as `operator_sources` says).
    async fn move_jobs(&self, params: MoveParams) -> Result<Vec<JobId>>;

    /// Pauses or resumes a queue or a job name: while paused, its jobs
    /// stay `Enqueued` and [`fetch`](Self::fetch) takes none of them;
    /// running jobs are not stopped. Persisted (in `jobs_paused`), so it
    /// holds across restarts and for every server. Resuming wakes the
    /// listening servers. Returns whether anything changed (`false` when
    /// it was paused, or resumed, already).
    async fn set_paused(&self, params: SetPausedParams) -> Result<bool>;

    /// Appends running jobs' log lines and stores their latest progress
    /// (see [`LogLine`](super::LogLine)), in one transaction. A line of a
    /// job that no longer exists (expired) is dropped; a progress of an
    /// attempt that is no longer the job's latest (it was rescued and
    /// fetched again) is not stored. Both may arrive after the attempt
    /// ended (the server gathers them for half a second, longer while the
    /// storage is away). Each line's time is the storage's now minus its
    /// [`age`](super::LogLine::age).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) when the write fails;
    /// nothing of the call is stored then.
    async fn write_log(&self, params: WriteLogParams) -> Result<()>;

    /// Sets parameters of a job (see [`JobParameters`](super::JobParameters)):
    /// a name already set gets the new value.
    ///
    /// # Errors
    /// [`Error::JobNotFound`](crate::Error::JobNotFound) for an unknown
    /// job; [`Error::Config`](crate::Error::Config) for a parameter
    /// [`check_parameter`](super::check_parameter) refuses (nothing is set
    /// then).
    async fn set_parameters(&self, params: SetParametersParams) -> Result<()>;

    /// Cancels a `Started` batch and its nested batches: they become
    /// `Deleted`, and their members that wait (`Scheduled`, `Enqueued`,
    /// `Awaiting`) move to `Deleted` with the reason
    /// [`BATCH_CANCELLED`](crate::decide::BATCH_CANCELLED); running members
    /// are not interrupted: their attempt's outcome is recorded as usual
    /// (a retry of one runs). The batches' continuations are decided by the
    /// next [`resolve_awaiting`](super::MaintenanceStorage::resolve_awaiting).
    /// Returns the ids of the jobs deleted, sorted.
    ///
    /// # Errors
    /// [`Error::BatchNotFound`](crate::Error::BatchNotFound) for an
    /// unknown batch; [`Error::BatchFinished`](crate::Error::BatchFinished)
    /// when it is no longer `Started`.
    async fn cancel_batch(&self, id: BatchId) -> Result<Vec<JobId>>;
}
