use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{JobContext, RetryPolicy};

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

    /// Runs one attempt of the job.
    fn perform(self, ctx: JobContext) -> impl Future<Output = JobResult> + Send;
}

/// The failure of one attempt: the text recorded on the job's history, and
/// whether another attempt may help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobError {
    message: String,
    retryable: bool,
}

impl JobError {
    /// A failure with this message (a job's error, formatted with
    /// `Display`); the job's retry policy decides whether it runs again.
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that no retry can mend (a result that cannot be stored,
    /// a parent's result that does not decode): the job moves to `Failed`
    /// whatever attempts it has left.
    pub fn permanent(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retryable: false,
        }
    }

    /// Whether the retry policy may run the job again after this failure.
    pub fn is_retryable(&self) -> bool {
        self.retryable
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

impl std::error::Error for JobError {}

/// What a `#[job]` function may return: `()`, or `Result<T, E>` with
/// `E: Display` (an `anyhow::Error`, an `std::io::Error`, a `String`, your
/// own error type...) and `T` a value stored as the job's result (JSON, at
/// most [`MAX_RESULT_LEN`]) that its continuations receive. The error's
/// `Display` text is recorded on the attempt.
#[diagnostic::on_unimplemented(
    message = "a #[job] function must return `()` or `Result<T, E>` with `T: Serialize + DeserializeOwned` and `E: Display`, not `{Self}`",
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
    E: fmt::Display,
{
    type Output = T;

    fn into_job_result(self) -> Result<T, JobError> {
        self.map_err(|error| JobError::new(error.to_string()))
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
