use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{JobContext, RetryPolicy};

/// A boxed, sendable future, as the registry hands out to run a job.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The outcome of one attempt of a job.
pub type JobResult = Result<(), JobError>;

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

/// The failure of one attempt: the text recorded on the job's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobError {
    message: String,
}

impl JobError {
    /// A failure with this message (a job's error, formatted with `Display`).
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
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

impl std::error::Error for JobError {}

/// What a `#[job]` function may return: `()` or `Result<(), E>` with
/// `E: Display` (an `anyhow::Error`, an `std::io::Error`, a `String`, your own
/// error type...). The error's `Display` text is recorded on the attempt.
#[diagnostic::on_unimplemented(
    message = "a #[job] function must return `()` or `Result<(), E>` with `E: Display`, not `{Self}`",
    label = "unsupported job return type"
)]
pub trait IntoJobResult {
    /// Turns the function's return value into the attempt's outcome.
    fn into_job_result(self) -> JobResult;
}

impl IntoJobResult for () {
    fn into_job_result(self) -> JobResult {
        Ok(())
    }
}

impl<E: fmt::Display> IntoJobResult for Result<(), E> {
    fn into_job_result(self) -> JobResult {
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
