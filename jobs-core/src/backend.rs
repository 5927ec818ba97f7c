use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{JobId, Result, State, StateChange};

/// A job to be stored by [`StorageBackend::enqueue`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// The job's stable name ([`Job::NAME`](crate::Job::NAME)).
    pub name: String,
    /// The queue it goes to.
    pub queue: String,
    /// Its arguments as a JSON document.
    pub args: String,
    /// The most attempts it gets (retries + 1); at least 1.
    pub max_attempts: u32,
    /// `None` to enqueue it now (state `Enqueued`); a time to schedule it
    /// (state `Scheduled` until then, UTC). A time in the past enqueues it at
    /// the next promotion.
    pub run_at: Option<DateTime<Utc>>,
}

/// The arguments of [`StorageBackend::enqueue`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnqueueParams {
    /// The jobs, stored in one transaction, in this order.
    pub jobs: Vec<NewJob>,
}

/// The arguments of [`StorageBackend::fetch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchParams {
    /// Queues in priority order: a job of `queues[0]` is taken before any job
    /// of `queues[1]`. Within a queue, jobs are taken in enqueue order.
    pub queues: Vec<String>,
    /// The most jobs to take.
    pub limit: usize,
    /// The id of the fetching server, recorded on the jobs.
    pub server: String,
    /// How long the server holds each job before it may be rescued, unless
    /// it extends the lease ([`StorageBackend::extend_leases`]).
    pub lease: Duration,
}

/// A job taken by [`StorageBackend::fetch`], now `Processing`.
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
    /// When it was first enqueued or scheduled (UTC).
    pub enqueued_at: DateTime<Utc>,
}

/// One attempt that a server holds: the job's id and the attempt's number.
///
/// Storage calls that finish or extend an attempt take these and do nothing
/// to a job whose current attempt is another (it was rescued and fetched
/// again), so a late result cannot overwrite a newer one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Completion {
    /// The job.
    pub id: JobId,
    /// The attempt held.
    pub attempt: u32,
}

/// How an attempt ended, as [`StorageBackend::finish`] records it.
///
/// Texts (reasons, errors) may come from user code: storages keep them
/// through [`storable_text`](crate::storable_text) (NUL replaced, cut at
/// [`MAX_TEXT_LEN`](crate::MAX_TEXT_LEN)), so any text can be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The job ran to completion: `Succeeded`.
    Succeeded,
    /// The job failed for good: `Failed`, with the reason (the job's error
    /// text, or what the server could not do, e.g. "no job named `x` is
    /// registered").
    Failed {
        /// Why, recorded as the history's reason.
        reason: String,
    },
    /// The attempt failed and the job gets another: `Scheduled`, due after
    /// `delay` (a retry, as Hangfire records one).
    Retry {
        /// How long from now the job waits in `Scheduled`.
        delay: Duration,
        /// The history's reason, e.g. `"retry attempt 1 of 10"`.
        reason: String,
        /// The failed attempt's error, kept in the history's data as
        /// `{"error": ...}`.
        error: String,
        /// Whether the failed attempt is forgiven: then the job's
        /// `max_attempts` grows by one, so it does not count against the job
        /// (used when this server cannot run the job but another can).
        forgive: bool,
    },
    /// The server gives the attempt back unfinished (shutdown, or fetched
    /// ahead and never started): `Enqueued` again, not counted against the
    /// job (its `max_attempts` grows by one, while the attempt number, which
    /// fences, only ever grows).
    Requeue {
        /// The history's reason, e.g. `"server stopping"`.
        reason: String,
    },
}

/// The longest a job waits in `Scheduled` after an [`Outcome::Retry`]: a
/// longer delay (a backoff grown past any sense, `Duration::MAX`) is stored
/// as this, 100 years, so that every storage can add it to its clock.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The columns a storage writes for an [`Outcome`]: the decision is made
/// here once, in Rust, and each storage binds these values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOutcome {
    /// The job's new state.
    pub state: State,
    /// The move's reason, storable (see [`storable_text`](crate::storable_text)).
    pub reason: Option<String>,
    /// The move's data, a JSON object as text, storable.
    pub data: Option<String>,
    /// For `Scheduled`: due this long after the storage's now, at most
    /// [`MAX_RETRY_DELAY`].
    pub run_after: Option<Duration>,
    /// Whether the job's `max_attempts` grows by one (a forgiven attempt).
    pub grant_attempt: bool,
    /// Whether the job's `server` is cleared (it waits again), rather than
    /// kept as the server that finished it.
    pub release_server: bool,
}

impl Outcome {
    /// What a storage writes for this outcome.
    pub fn stored(&self) -> StoredOutcome {
        let text = |text: &str| crate::storable_text(text).into_owned();
        match self {
            Outcome::Succeeded => StoredOutcome {
                state: State::Succeeded,
                reason: None,
                data: None,
                run_after: None,
                grant_attempt: false,
                release_server: false,
            },
            Outcome::Failed { reason } => StoredOutcome {
                state: State::Failed,
                reason: Some(text(reason)),
                data: None,
                run_after: None,
                grant_attempt: false,
                release_server: false,
            },
            Outcome::Retry {
                delay,
                reason,
                error,
                forgive,
            } => StoredOutcome {
                state: State::Scheduled,
                reason: Some(text(reason)),
                data: Some(serde_json::json!({ "error": text(error) }).to_string()),
                run_after: Some((*delay).min(MAX_RETRY_DELAY)),
                grant_attempt: *forgive,
                release_server: true,
            },
            Outcome::Requeue { reason } => StoredOutcome {
                state: State::Enqueued,
                reason: Some(text(reason)),
                data: None,
                run_after: None,
                grant_attempt: true,
                release_server: true,
            },
        }
    }
}

/// One attempt's outcome, for [`StorageBackend::finish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOutcome {
    /// The attempt that ended.
    pub job: Completion,
    /// How it ended.
    pub outcome: Outcome,
}

/// The arguments of [`StorageBackend::finish`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinishParams {
    /// The outcomes, at most one per job; all are recorded in one statement.
    pub jobs: Vec<JobOutcome>,
}

/// The arguments of [`StorageBackend::complete`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompleteParams {
    /// The attempts that succeeded; all are recorded in one transaction.
    pub jobs: Vec<Completion>,
}

/// The arguments of [`StorageBackend::fail`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailParams {
    /// The attempt that failed for good.
    pub job: Completion,
    /// Why, recorded as the history's reason: the job's error text, or
    /// what the server could not do ("no job named `x` is registered").
    pub reason: String,
}

/// The arguments of [`StorageBackend::retry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryParams {
    /// The attempt that failed.
    pub job: Completion,
    /// How long from now the job waits in `Scheduled`.
    pub delay: Duration,
    /// The history's reason, e.g. `"retry attempt 1 of 10"`.
    pub reason: String,
    /// The failed attempt's error, kept in the history's data.
    pub error: String,
    /// Whether the failed attempt is forgiven (see [`Outcome::Retry`]).
    pub forgive: bool,
}

/// The arguments of [`StorageBackend::requeue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequeueParams {
    /// The attempts a server gives back unfinished (see [`Outcome::Requeue`]).
    pub jobs: Vec<Completion>,
    /// The history's reason, e.g. `"server stopping"`.
    pub reason: String,
}

/// The arguments of [`StorageBackend::extend_leases`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendLeasesParams {
    /// The attempts the server still runs.
    pub jobs: Vec<Completion>,
    /// The new lease, from now.
    pub lease: Duration,
}

/// The arguments of [`StorageBackend::promote_scheduled`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromoteParams {
    /// The most jobs to move in one call.
    pub limit: usize,
}

/// The arguments of [`StorageBackend::rescue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RescueParams {
    /// The most jobs to move in one call.
    pub limit: usize,
}

/// A server announcing itself: [`StorageBackend::register_server`].
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

/// A registered server, as [`StorageBackend::servers`] reads it.
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
}

/// The arguments of [`StorageBackend::prune_servers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneServersParams {
    /// Servers silent for longer than this are removed.
    pub silent_for: Duration,
}

/// The arguments of [`StorageBackend::try_lead`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadParams {
    /// The server that wants to lead.
    pub server: String,
    /// How long the leadership lasts unless renewed by another call.
    pub ttl: Duration,
}

/// The arguments of [`StorageBackend::expire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpireParams {
    /// `Succeeded` and `Deleted` jobs that have been so for longer than
    /// this are deleted with their history.
    pub older_than: Duration,
    /// The most jobs to delete in one call.
    pub limit: usize,
}

/// A stored job, as [`StorageBackend::job`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// Its stored name.
    pub name: String,
    /// Its queue.
    pub queue: String,
    /// Its arguments, JSON.
    pub args: String,
    /// Its current state.
    pub state: State,
    /// Attempts started so far (0 before the first fetch).
    pub attempt: u32,
    /// The most attempts it gets.
    pub max_attempts: u32,
    /// When it was enqueued or scheduled (UTC).
    pub created_at: DateTime<Utc>,
    /// When its state last changed (UTC).
    pub state_changed_at: DateTime<Utc>,
    /// When a `Scheduled` job is due (UTC); `None` in other states.
    pub run_at: Option<DateTime<Utc>>,
    /// The reason of its last move (the error of a `Failed` job).
    pub reason: Option<String>,
}

/// How many jobs are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    counts: [u64; State::ALL.len()],
}

impl StateCounts {
    /// The count of jobs in `state`.
    pub fn get(&self, state: State) -> u64 {
        self.counts[Self::index(state)]
    }

    /// Sets the count of jobs in `state`.
    pub fn set(&mut self, state: State, count: u64) {
        self.counts[Self::index(state)] = count;
    }

    /// All jobs stored.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn index(state: State) -> usize {
        State::ALL
            .iter()
            .position(|s| *s == state)
            .expect("every state is in ALL")
    }
}

/// What every storage implements: the state changes of jobs, each in its
/// own transaction, each recorded in the job's state history.
///
/// Methods are named after the move they make, like River's driver and
/// Oban's engine. Every method that finishes or extends an attempt takes
/// [`Completion`]s and leaves alone any job whose current attempt differs
/// (fencing). Times are the storage's own clock, UTC.
///
/// The invariants every implementation keeps are in DESIGN.md: at-least-once
/// (nothing enqueued is lost; a job whose lease expires is rescued), a
/// dequeue whose cost does not grow with finished jobs kept, and durable
/// commits.
#[async_trait::async_trait]
pub trait StorageBackend: Send + Sync + 'static {
    /// Stores new jobs as `Enqueued` (or `Scheduled` when they have a
    /// `run_at`), in one transaction; returns their ids in the same order.
    async fn enqueue(&self, params: EnqueueParams) -> Result<Vec<JobId>>;

    /// Takes up to `limit` `Enqueued` jobs, by queue priority then enqueue
    /// order, and moves them to `Processing` under a lease for `server`,
    /// counting one more attempt each. A job is handed to one fetch only.
    async fn fetch(&self, params: FetchParams) -> Result<Vec<FetchedJob>>;

    /// Records the outcomes of attempts, all in one statement whatever
    /// their kinds, each job looked up by its primary key. An attempt that
    /// is no longer current (the job was rescued and fetched again, or is
    /// not `Processing`) is skipped. Returns the ids of the jobs that moved,
    /// sorted.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) when the statement fails;
    /// then nothing of the batch was recorded. Its `transient` flag tells a
    /// failure worth trying again (the database is away) from one that will
    /// fail again (see [`Error::is_transient`](crate::Error::is_transient)).
    async fn finish(&self, params: FinishParams) -> Result<Vec<JobId>>;

    /// Moves the attempts to `Succeeded` ([`finish`](Self::finish) with
    /// [`Outcome::Succeeded`]). Returns how many moved (an attempt that is
    /// no longer current is skipped).
    async fn complete(&self, params: CompleteParams) -> Result<u64> {
        let jobs = params
            .jobs
            .into_iter()
            .map(|job| JobOutcome {
                job,
                outcome: Outcome::Succeeded,
            })
            .collect();
        let moved = self.finish(FinishParams { jobs }).await?;
        Ok(moved.len() as u64)
    }

    /// Moves the attempt to `Failed` with the reason ([`Outcome::Failed`]).
    /// Returns whether it moved.
    async fn fail(&self, params: FailParams) -> Result<bool> {
        let outcome = Outcome::Failed {
            reason: params.reason,
        };
        let jobs = vec![JobOutcome {
            job: params.job,
            outcome,
        }];
        Ok(!self.finish(FinishParams { jobs }).await?.is_empty())
    }

    /// Moves the attempt to `Scheduled`, due after `delay`, with the reason
    /// ([`Outcome::Retry`]). Returns whether it moved.
    async fn retry(&self, params: RetryParams) -> Result<bool> {
        let outcome = Outcome::Retry {
            delay: params.delay,
            reason: params.reason,
            error: params.error,
            forgive: params.forgive,
        };
        let jobs = vec![JobOutcome {
            job: params.job,
            outcome,
        }];
        Ok(!self.finish(FinishParams { jobs }).await?.is_empty())
    }

    /// Moves unfinished attempts back to `Enqueued` without counting them
    /// ([`Outcome::Requeue`]). Returns how many moved.
    async fn requeue(&self, params: RequeueParams) -> Result<u64> {
        let jobs = params
            .jobs
            .into_iter()
            .map(|job| JobOutcome {
                job,
                outcome: Outcome::Requeue {
                    reason: params.reason.clone(),
                },
            })
            .collect();
        let moved = self.finish(FinishParams { jobs }).await?;
        Ok(moved.len() as u64)
    }

    /// Extends the leases of the attempts a server still runs. Returns the
    /// jobs whose lease it still holds, sorted; an attempt missing from the
    /// answer was rescued and must stop.
    async fn extend_leases(&self, params: ExtendLeasesParams) -> Result<Vec<JobId>>;

    /// Moves `Scheduled` jobs whose time has come to `Enqueued`, oldest due
    /// first. Returns how many moved.
    async fn promote_scheduled(&self, params: PromoteParams) -> Result<u64>;

    /// Rescues `Processing` jobs whose lease expired (their server died):
    /// back to `Enqueued` when they have attempts left, else `Failed`.
    /// Returns how many moved.
    async fn rescue(&self, params: RescueParams) -> Result<u64>;

    /// Reads one job; `None` when no job has this id.
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>>;

    /// Reads a job's state history, oldest move first; empty when no job
    /// has this id.
    async fn history(&self, id: JobId) -> Result<Vec<StateChange>>;

    /// Counts the jobs in each state.
    async fn counts(&self) -> Result<StateCounts>;

    /// Registers a server, or refreshes its record; its heartbeat is now.
    async fn register_server(&self, server: ServerInfo) -> Result<()>;

    /// Records a heartbeat of `server`. Returns `false` when the server is
    /// not registered (it was pruned as dead): it should register again.
    async fn heartbeat(&self, server: &str) -> Result<bool>;

    /// Removes a server's record, and its leadership if it holds it.
    async fn unregister_server(&self, server: &str) -> Result<()>;

    /// Every registered server, oldest first.
    async fn servers(&self) -> Result<Vec<ServerRecord>>;

    /// Removes servers whose last heartbeat is older than `silent_for`.
    /// Returns how many were removed.
    async fn prune_servers(&self, params: PruneServersParams) -> Result<u64>;

    /// Takes or renews the maintenance leadership for `ttl`. Returns whether
    /// `server` leads now: at most one server leads at any time, and a
    /// leader that stops renewing loses it when the ttl runs out.
    async fn try_lead(&self, params: LeadParams) -> Result<bool>;

    /// Gives up the leadership if `server` holds it.
    async fn resign(&self, server: &str) -> Result<()>;

    /// Deletes finished jobs (`Succeeded`, `Deleted`) older than the
    /// retention, oldest first, with their history. `Failed` jobs are kept
    /// until someone deletes them. Returns how many were deleted.
    async fn expire(&self, params: ExpireParams) -> Result<u64>;

    /// Calls `wake` whenever jobs may have become available through another
    /// process (PostgreSQL: `LISTEN`/`NOTIFY`), and once when it starts
    /// listening. Runs until it fails; a server calls it again after an
    /// error and keeps polling meanwhile, so a lost notification only delays
    /// a job. The default never wakes: polling alone.
    async fn watch_for_jobs(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<()> {
        let _ = wake;
        std::future::pending().await
    }
}
