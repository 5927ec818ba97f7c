use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Concurrency, JobContext, RetryPolicy, Uniqueness};

/// A boxed, sendable future, as the registry hands out to run a job.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The outcome of one attempt of a job: on success, the job's result as
/// JSON (`None` when it returns nothing, `()`), which the storage keeps
/// and hands to the job's continuations; on failure, the error.
pub type JobResult = Result<Option<String>, JobError>;

/// The longest result a job may return, as JSON: 1 MiB. A result is
/// stored on the job's row and copied to each continuation; a larger one
/// fails the attempt for good ([`encode_result`]).
pub const MAX_RESULT_LEN: usize = 1 << 20;

/// The longest a batch continuation's parent result may be: the results
/// of the batch's members together, as one JSON array, 16 MiB. Beyond it,
/// the continuation gets no result (its `#[parent]` parameter fails to
/// decode, saying why) rather than every continuation waiting on one
/// value the database cannot build.
pub const MAX_BATCH_RESULTS_LEN: usize = 16 << 20;

/// Turns what a job's function returned into the attempt's outcome: its
/// value serialized as JSON, `None` for `()` (which serializes as `null`).
///
/// # Errors
/// The job's own error, unchanged; a permanent [`JobError`] (no retry can
/// help) when the value does not serialize or its JSON is longer than
/// [`MAX_RESULT_LEN`].
pub fn encode_result<T: Serialize>(value: Result<T, JobError>) -> JobResult {
    let json = serde_json::to_string(&value?).map_err(|error| {
        JobError::permanent(format!("the job's result does not serialize: {error}"))
    })?;
    if json.len() > MAX_RESULT_LEN {
        return Err(JobError::permanent(format!(
            "the job's result is {} bytes of JSON, more than the {MAX_RESULT_LEN} a result may hold",
            json.len()
        )));
    }
    Ok((json != "null").then_some(json))
}

/// A background job: its arguments (the implementing struct), its stable
/// name, its default queue, its retry policy and the work it does.
///
/// `#[job]` implements it on the argument struct it generates from an
/// `async fn`; implementing it by hand works too. The stored form of a job is
/// [`NAME`](Job::NAME) plus the struct as JSON, so renaming the struct or
/// moving it to another module never orphans stored jobs, but renaming a field
/// does (such a job fails with "arguments no longer decode").
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The stable name stored with each job and used to find the code that
    /// runs it. Unique within a binary (see [`Registry`](crate::Registry)).
    const NAME: &'static str;
    /// The queue the job goes to unless the caller picks another.
    const QUEUE: &'static str;
    /// How failed attempts are retried.
    const RETRY_POLICY: RetryPolicy;
    /// The longest one attempt may run (`#[job(timeout = "30s")]`): past
    /// it, the attempt is cancelled and fails with "timed out after 30s",
    /// then follows the retry policy. `None` (the default) leaves it to
    /// the server's default timeout, if it has one.
    const TIMEOUT: Option<Duration> = None;
    /// Its priority within its queue (`#[job(priority = -5)]`) unless the
    /// caller picks another: a job of lower priority number is fetched
    /// before the jobs of higher numbers waiting in the same queue (as in
    /// graphile_worker and Oban), whatever their enqueue order. 0 unless
    /// given; negative numbers run sooner.
    const PRIORITY: i16 = 0;
    /// Whether, and how, the job is unique (`#[job(unique)]`): at most one
    /// job of its key in the chosen states; an enqueue that would make a
    /// second returns the existing job's id. `None` (the default): every
    /// enqueue makes a job.
    const UNIQUE: Option<Uniqueness> = None;
    /// Its concurrency limit (`#[job(concurrency = 2)]`): at most this
    /// many of its jobs (of one key, for a limit per key) run at once
    /// across every server. `None` (the default): no limit.
    const CONCURRENCY: Option<Concurrency> = None;

    /// The key text of this job's uniqueness: `None` (the default) for
    /// its arguments, as canonical JSON; `#[job(unique(by = [a, b]))]`
    /// gives the JSON of the arguments it names.
    fn unique_key(&self) -> Option<String> {
        None
    }

    /// The key text of a concurrency limit per key
    /// (`#[job(concurrency(limit = 1, by = [customer_id]))]`): the JSON of
    /// the arguments it names; `None` (the default) for a limit per name.
    fn concurrency_key(&self) -> Option<String> {
        None
    }

    /// Runs one attempt of the job.
    fn perform(self, ctx: JobContext) -> impl Future<Output = JobResult> + Send;
}

/// The failure of one attempt: the text recorded on the job's history,
/// and what follows it: a retry by the job's policy (the default), a
/// retry after a delay of the job's choosing, no retry at all, or a
/// snooze.
///
/// A job chooses its outcome by returning `Result<T, JobError>`; `?` turns
/// any `std::error::Error` into a `JobError` that retries by the policy
/// (which is why `JobError` itself does not implement `std::error::Error`,
/// as `anyhow::Error` does not):
///
/// ```
/// use std::time::Duration;
/// use jobs_core::JobError;
///
/// fn charge(card: &str, attempts_left: bool) -> Result<(), JobError> {
///     if card.is_empty() {
///         return Err(JobError::permanent("no card on file"));  // no retry
///     }
///     if !attempts_left {
///         return Err(JobError::snooze(Duration::from_secs(300)));  // later, uncounted
///     }
///     let _amount: u32 = "12".parse()?;  // a ParseIntError retries by the policy
///     Err(JobError::new("gateway busy").retry_after(Duration::from_secs(10)))
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobError {
    message: String,
    next: AfterFailure,
}

/// What follows a [`JobError`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum AfterFailure {
    /// A retry while attempts are left, after `after` or else the policy's
    /// backoff.
    Retry { after: Option<Duration> },
    /// `Failed` at once.
    Fail,
    /// `Scheduled` again after the delay, the attempt not counted.
    Snooze(Duration),
}

impl JobError {
    /// A failure with this message (a job's error, formatted with
    /// `Display`); the job's retry policy decides whether it runs again,
    /// and when.
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            next: AfterFailure::Retry { after: None },
        }
    }

    /// A failure that no retry can mend (a card declined for good, a
    /// result that cannot be stored, a parent's result that does not
    /// decode): the job moves to `Failed` whatever attempts it has left.
    pub fn permanent(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            next: AfterFailure::Fail,
        }
    }

    /// Not a failure: the job runs again once `delay` has passed, and this
    /// attempt does not count against its retries (Oban's and River's
    /// snooze). Recorded as a move to `Scheduled` with the reason
    /// "snoozed for 5m". A snoozing job may snooze for ever; the delay is
    /// shortened to [`MAX_RETRY_DELAY`](crate::MAX_RETRY_DELAY).
    pub fn snooze(delay: Duration) -> Self {
        JobError {
            message: format!("snoozed for {}", crate::duration_text(delay)),
            next: AfterFailure::Snooze(delay),
        }
    }

    /// This failure, retried after `delay` instead of the policy's
    /// backoff (a `Retry-After` header's wait). It still counts as an
    /// attempt: when none is left, the job fails. No effect on a
    /// permanent failure or a snooze.
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Self {
        if let AfterFailure::Retry { after } = &mut self.next {
            *after = Some(delay);
        }
        self
    }

    /// Whether the retry policy may run the job again after this failure
    /// (true for a snooze, which is not a failure).
    pub fn is_retryable(&self) -> bool {
        !matches!(self.next, AfterFailure::Fail)
    }

    /// The delay the job chose for its retry ([`retry_after`](Self::retry_after));
    /// `None` for the policy's backoff.
    pub fn retry_delay(&self) -> Option<Duration> {
        match self.next {
            AfterFailure::Retry { after } => after,
            _ => None,
        }
    }

    /// For a [`snooze`](Self::snooze): its delay.
    pub fn snoozed_for(&self) -> Option<Duration> {
        match self.next {
            AfterFailure::Snooze(delay) => Some(delay),
            _ => None,
        }
    }

    /// The recorded text.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Any error converts with `?`: its `Display` text, retried by the policy.
impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(error: E) -> Self {
        JobError::new(error.to_string())
    }
}

/// What a `#[job]` function may return: `()`, or `Result<T, E>` with
/// `E: Display + 'static` (an `anyhow::Error`, an `std::io::Error`, a
/// `String`, your own error type, or a [`JobError`] to choose what
/// follows a failure) and `T` a value stored as the job's result (JSON, at
/// most [`MAX_RESULT_LEN`]) that its continuations receive. The error's
/// `Display` text is recorded on the attempt.
#[diagnostic::on_unimplemented(
    message = "a #[job] function must return `()` or `Result<T, E>` with `T: Serialize + DeserializeOwned` and `E: Display + 'static`, not `{Self}`",
    label = "unsupported job return type"
)]
pub trait IntoJobResult {
    /// The job's result: what its continuations receive (`()` for none).
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Turns the function's return value into the attempt's outcome.
    ///
    /// # Errors
    /// The function's error, as a retryable [`JobError`] with its
    /// `Display` text.
    fn into_job_result(self) -> Result<Self::Output, JobError>;
}

impl IntoJobResult for () {
    type Output = ();

    fn into_job_result(self) -> Result<(), JobError> {
        Ok(())
    }
}

impl<T, E> IntoJobResult for Result<T, E>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    E: fmt::Display + 'static,
{
    type Output = T;

    /// A [`JobError`] is kept as it is (its permanence, snooze or retry
    /// delay); any other error becomes a retryable `JobError` with its
    /// `Display` text.
    fn into_job_result(self) -> Result<T, JobError> {
        self.map_err(|error| {
            let error: Box<dyn Any> = Box::new(error);
            match error.downcast::<JobError>() {
                Ok(job_error) => *job_error,
                Err(other) => JobError::new(
                    other
                        .downcast::<E>()
                        .map_or_else(|_| String::new(), |error| error.to_string()),
                ),
            }
        })
    }
}

/// What a job argument must be: stored as JSON, so `Serialize` and
/// `Deserialize`, and moved to a worker task, so `Send + 'static`.
///
/// `#[job]` asserts it on each argument's type, so a wrong type is reported
/// on that argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a #[job] argument: it must be `Serialize + DeserializeOwned + Send + 'static`",
    label = "not storable as a job argument",
    note = "job arguments are stored as JSON: derive `serde::Serialize` and `serde::Deserialize` on your own types"
)]
pub trait JobArgument: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> JobArgument for T {}
