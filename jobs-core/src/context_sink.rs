//! Where a running job's [`JobContext`](crate::JobContext) sends what it
//! records: its log lines and progress, and its parameters. The server
//! implements it; a context made without one (in a unit test of a job)
//! keeps nothing.

use crate::{Attempt, BoxFuture, JobId, JobParameters, Result};

/// The server's side of a running job's context.
///
/// `log` and `progress` must not wait: a job calls them in its hot loop.
/// The server gathers them for half a second and writes them together
/// ([`JobStorage::write_log`](crate::JobStorage::write_log)).
pub trait ContextSink: Send + Sync + 'static {
    /// Records a log line of `job`, already storable and counted against
    /// [`MAX_LOG_LINES_PER_ATTEMPT`](crate::MAX_LOG_LINES_PER_ATTEMPT).
    fn log(&self, job: Attempt, text: String);

    /// Records the progress of `job`, from 0.0 to 1.0.
    fn progress(&self, job: Attempt, progress: f64);

    /// Reads the parameters of job `id`.
    fn parameters(&self, id: JobId) -> BoxFuture<'_, Result<JobParameters>>;

    /// Sets parameters of job `id`.
    fn set_parameters(&self, id: JobId, parameters: JobParameters) -> BoxFuture<'_, Result<()>>;
}
