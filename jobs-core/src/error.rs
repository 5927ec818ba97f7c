use crate::{BatchId, BatchState, JobId, State};

/// A `Result` whose error is the framework's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when enqueueing, storing or serving jobs.
///
/// A job's own failure is not an `Error`: it is recorded on the job (see
/// [`JobError`](crate::JobError)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage failed: the database went away, a query failed, a
    /// migration could not run. The message says which operation failed
    /// and why (the driver's error, e.g. "Connection refused").
    #[error("storage error while {operation}: {source}")]
    Storage {
        /// What the storage was doing, e.g. `"fetching jobs"`.
        operation: &'static str,
        /// The database driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        /// Whether the same call may succeed later unchanged: the database
        /// was unreachable, the pool had no connection in time, a lock or
        /// serialization conflict. `false` for errors that would repeat
        /// (a value the database refuses, a constraint, a bad statement).
        transient: bool,
    },

    /// A job's arguments could not be turned into JSON.
    #[error("the arguments of job `{job}` could not be serialized: {source}")]
    Serialize {
        /// The job's name.
        job: &'static str,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },

    /// Two `#[job]` functions register the same job name. Names must be
    /// unique across the binary; set one with `#[job(name = "...")]`.
    #[error(
        "job name `{name}` is registered twice: at {first} and at {second}; give one of them another name with #[job(name = \"...\")]"
    )]
    DuplicateJobName {
        /// The name both use.
        name: &'static str,
        /// Where the first one is defined (`file:line`).
        first: String,
        /// Where the second one is defined (`file:line`).
        second: String,
    },

    /// A storage URL this build cannot open.
    #[error(
        "unsupported storage URL `{0}`: expected sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedUrl(String),

    /// No job has this id.
    #[error("no job with id {0}")]
    JobNotFound(JobId),

    /// A move the job's state does not allow (see
    /// [`State::can_move_to`](crate::State::can_move_to)), e.g. requeueing
    /// a job that is `Enqueued` already.
    #[error("job {id} cannot move from {from} to {to}")]
    MoveRefused {
        /// The job.
        id: JobId,
        /// Its state when the move was refused.
        from: State,
        /// The state asked for.
        to: State,
    },

    /// A configuration value is out of its range; the message says which.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// No recurring job has this id.
    #[error("no recurring job with id {0:?}")]
    RecurringJobNotFound(String),

    /// A recurring job's cron expression or time zone is refused.
    #[error("recurring job {id:?}: {source}")]
    InvalidSchedule {
        /// The recurring job's id.
        id: String,
        /// What is wrong.
        #[source]
        source: crate::recurring::ScheduleError,
    },

    /// A client filter rejected the job: nothing of the enqueue call was
    /// stored.
    #[error("job `{name}` was rejected: {reason}")]
    Rejected {
        /// The job's name.
        name: String,
        /// Why, as the filter said.
        reason: String,
    },

    /// No batch has this id.
    #[error("no batch with id {0}")]
    BatchNotFound(BatchId),

    /// The batch has finished or was cancelled: no job or batch can join
    /// it, and it cannot be cancelled again.
    #[error("batch {id} is {state}: it takes no more jobs and cannot be cancelled")]
    BatchFinished {
        /// The batch.
        id: BatchId,
        /// Its state.
        state: BatchState,
    },
}

impl Error {
    /// A job of `name` rejected by a client filter, for `reason`.
    pub fn rejected(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Rejected {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// Wraps a driver error with the operation that failed; `transient`
    /// says whether repeating the call later may succeed (see
    /// [`is_transient`](Self::is_transient)).
    pub fn storage_with(
        operation: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
        transient: bool,
    ) -> Self {
        Error::Storage {
            operation,
            source: source.into(),
            transient,
        }
    }

    /// Wraps a driver error with the operation that failed, as an error
    /// that would happen again if the call were repeated.
    pub fn storage(
        operation: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::storage_with(operation, source, false)
    }

    /// Wraps a driver error with the operation that failed, as an error
    /// that may go away if the call is repeated later (the database is
    /// unreachable, busy or restarting).
    pub fn transient_storage(
        operation: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::storage_with(operation, source, true)
    }

    /// Whether repeating the call later may succeed: a transient storage
    /// error. Everything else (including a refused value) would fail again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Storage {
                transient: true,
                ..
            }
        )
    }
}
