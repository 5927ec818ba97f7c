//! Server filters: run around each attempt.

use std::sync::Arc;

use jobs_core::{BoxFuture, JobContext, JobResult};

/// The rest of the attempt that a [`ServerFilter`] wraps: the next
/// filters, then the job. Await it to run them; its result is the
/// attempt's.
pub type Next<'a> = BoxFuture<'a, JobResult>;

/// Runs around each attempt of every job on a server, in the worker's
/// task (as Hangfire's `IServerFilter`, Sidekiq's server middleware).
///
/// `around` gets the attempt's context and the rest of the attempt as a
/// future: it runs code before, awaits `next`, runs code after, and
/// returns the result, or another one. Not awaiting `next` skips the job:
/// return an error to fail the attempt (it follows the retry policy),
/// [`JobError::snooze`](jobs_core::JobError::snooze) to try it later.
/// A filter's panic fails the attempt, as the job's own does. A
/// cancellation, a timeout or a shutdown stops the filters with the job.
///
/// ```
/// use std::time::Instant;
/// use jobs_core::{JobContext, JobResult};
/// use jobs_runtime::{Next, ServerFilter};
///
/// /// Logs how long each attempt took.
/// struct Timing;
///
/// #[async_trait::async_trait]
/// impl ServerFilter for Timing {
///     async fn around(&self, ctx: &JobContext, next: Next<'_>) -> JobResult {
///         let started = Instant::now();
///         let result = next.await;
///         tracing::info!(job = %ctx.id(), elapsed = ?started.elapsed(), ok = result.is_ok(), "attempt ended");
///         result
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait ServerFilter: Send + Sync + 'static {
    /// Runs the attempt `next` of the job `ctx` describes, and returns
    /// its result.
    async fn around(&self, ctx: &JobContext, next: Next<'_>) -> JobResult;
}

/// `job` inside `filters`, the first outermost.
pub(crate) fn around<'a>(
    filters: &'a [Arc<dyn ServerFilter>],
    ctx: &'a JobContext,
    job: Next<'a>,
) -> Next<'a> {
    filters
        .iter()
        .rev()
        .fold(job, |next, filter| filter.around(ctx, next))
}
