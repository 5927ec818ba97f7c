use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::{
    Attempt, CancelReason, Cancellation, ContextSink, JobError, JobId, JobParameters,
    MAX_LOG_LINES_PER_ATTEMPT, check_parameter, storable_text,
};

/// What a running job may know about itself.
///
/// Take it as the first parameter of a `#[job]` function; it is not one of
/// the job's arguments and is not stored.
///
/// ```ignore
/// #[job]
/// async fn resize(ctx: JobContext, image: String) -> Result<(), std::io::Error> {
///     tracing::info!(job = %ctx.id(), attempt = ctx.attempt(), "resizing {image}");
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct JobContext {
    id: JobId,
    name: &'static str,
    queue: String,
    attempt: u32,
    max_attempts: u32,
    enqueued_at: DateTime<Utc>,
    parent_result: Option<Arc<str>>,
    cancellation: Cancellation,
    /// The job's own token, a child of the attempt's: made when first
    /// asked for, so that an attempt that never asks costs nothing more.
    token: OnceLock<CancellationToken>,
    /// Where the log, progress and parameters go; `None` outside a server.
    sink: Option<Arc<Sink>>,
}

/// The attempt's sink, with its count of log lines (shared by the
/// context's clones).
struct Sink {
    sink: Arc<dyn ContextSink>,
    lines: AtomicU32,
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("queue", &self.queue)
            .field("attempt", &self.attempt)
            .field("max_attempts", &self.max_attempts)
            .field("enqueued_at", &self.enqueued_at)
            .field("cancel_reason", &self.cancel_reason())
            .finish_non_exhaustive()
    }
}

impl JobContext {
    /// Builds a context; the server does this before each attempt.
    pub fn new(
        id: JobId,
        name: &'static str,
        queue: String,
        attempt: u32,
        max_attempts: u32,
        enqueued_at: DateTime<Utc>,
    ) -> Self {
        JobContext {
            id,
            name,
            queue,
            attempt,
            max_attempts,
            enqueued_at,
            parent_result: None,
            cancellation: Cancellation::new(),
            token: OnceLock::new(),
            sink: None,
        }
    }

    /// The context with the sink its log, progress and parameters go to;
    /// the server sets it.
    #[must_use]
    pub fn with_sink(mut self, sink: Arc<dyn ContextSink>) -> Self {
        self.sink = Some(Arc::new(Sink {
            sink,
            lines: AtomicU32::new(0),
        }));
        self
    }

    fn attempt_key(&self) -> Attempt {
        Attempt {
            id: self.id,
            attempt: self.attempt,
        }
    }

    /// Adds a line to the job's log, kept with the job for the dashboard
    /// (Hangfire.Console's `WriteLine`) and listed by
    /// `Storage::job_log`. Does not wait: the server gathers lines for
    /// half a second and writes them together, so a line is stored within
    /// about that (also after the attempt ended); each keeps the time it
    /// was logged.
    ///
    /// A line is made storable (a NUL byte replaced, cut at
    /// [`MAX_TEXT_LEN`](crate::MAX_TEXT_LEN) bytes). An attempt keeps its
    /// first [`MAX_LOG_LINES_PER_ATTEMPT`] lines, then one that says later
    /// lines are dropped. Outside a server (a context made by
    /// [`JobContext::new`] alone) lines are not kept.
    ///
    /// ```ignore
    /// ctx.log(format!("sending {template} to {user_id}"));
    /// ```
    pub fn log(&self, line: impl Into<String>) {
        let Some(sink) = &self.sink else { return };
        let logged = sink.lines.fetch_add(1, Ordering::Relaxed);
        let text = match logged.cmp(&MAX_LOG_LINES_PER_ATTEMPT) {
            std::cmp::Ordering::Less => {
                let line = line.into();
                match storable_text(&line) {
                    std::borrow::Cow::Borrowed(_) => line,
                    std::borrow::Cow::Owned(stored) => stored,
                }
            }
            std::cmp::Ordering::Equal => format!(
                "(this attempt logged {MAX_LOG_LINES_PER_ATTEMPT} lines, the most kept; later lines are dropped)"
            ),
            std::cmp::Ordering::Greater => {
                // Keep the count from wrapping around in an endless loop.
                sink.lines
                    .store(MAX_LOG_LINES_PER_ATTEMPT + 1, Ordering::Relaxed);
                return;
            }
        };
        sink.sink.log(self.attempt_key(), text);
    }

    /// Reports how far the job is, from 0.0 (nothing done) to 1.0 (all
    /// done), for the dashboard; a value out of that range is clamped, NaN
    /// is ignored. The server stores the latest value with the log lines,
    /// within about half a second
    /// ([`JobRecord::progress`](crate::JobRecord::progress)).
    pub fn progress(&self, progress: f64) {
        let Some(sink) = &self.sink else { return };
        if progress.is_nan() {
            return;
        }
        sink.sink
            .progress(self.attempt_key(), progress.clamp(0.0, 1.0));
    }

    /// Reads the job's parameter `name` (see
    /// [`JobParameters`](crate::JobParameters)): what a client filter set
    /// at enqueue, or an earlier attempt with
    /// [`set_parameter`](Self::set_parameter). `None` when it is not set.
    ///
    /// # Errors
    /// A retryable [`JobError`] when the storage cannot be read (or the
    /// context was made outside a server); a permanent one when the value
    /// does not decode as a `T`.
    pub async fn parameter<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, JobError> {
        let parameters = self.parameters().await?;
        let Some(json) = parameters.get(name) else {
            return Ok(None);
        };
        serde_json::from_str(json).map(Some).map_err(|error| {
            JobError::permanent(format!(
                "job parameter `{name}` does not decode as `{}`: {error}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// Every parameter of the job, name to JSON value.
    ///
    /// # Errors
    /// A retryable [`JobError`] when the storage cannot be read, or the
    /// context was made outside a server.
    pub async fn parameters(&self) -> Result<JobParameters, JobError> {
        let sink = self.sink()?;
        sink.parameters(self.id)
            .await
            .map_err(|error| JobError::new(format!("reading the job's parameters: {error}")))
    }

    /// Sets the job's parameter `name` to `value` (as JSON), stored at
    /// once: a later attempt, the server filters (through
    /// [`parameter`](Self::parameter)) and the dashboard see it.
    ///
    /// # Errors
    /// A permanent [`JobError`] when `value` does not serialize or the
    /// parameter is refused (see
    /// [`check_parameter`](crate::check_parameter)); a retryable one when
    /// the storage cannot be written, or the context was made outside a
    /// server.
    pub async fn set_parameter<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<(), JobError> {
        let json = serde_json::to_string(value).map_err(|error| {
            JobError::permanent(format!(
                "job parameter `{name}` does not serialize: {error}"
            ))
        })?;
        check_parameter(name, &json).map_err(|error| JobError::permanent(error.to_string()))?;
        let sink = self.sink()?;
        sink.set_parameters(self.id, JobParameters::from([(name.to_owned(), json)]))
            .await
            .map_err(|error| JobError::new(format!("setting job parameter `{name}`: {error}")))
    }

    fn sink(&self) -> Result<&dyn ContextSink, JobError> {
        match &self.sink {
            Some(sink) => Ok(&*sink.sink),
            None => Err(JobError::new(
                "this JobContext has no storage: it was made outside a server",
            )),
        }
    }

    /// The context with the attempt's stop signal; the server sets the
    /// one it fires on a cancel, a timeout or a shutdown.
    #[must_use]
    pub fn with_cancellation(mut self, cancellation: Cancellation) -> Self {
        self.cancellation = cancellation;
        self
    }

    /// The token that fires when this attempt is asked to stop: the job
    /// was cancelled ([`CancelReason::Cancelled`]), it ran past its
    /// timeout ([`CancelReason::TimedOut`]), or the server is shutting
    /// down ([`CancelReason::Shutdown`]). A long job watches it to stop
    /// cleanly, or hands it to code that takes a token:
    ///
    /// ```ignore
    /// #[job(timeout = "10m")]
    /// async fn export(ctx: JobContext, rows: u64) -> Result<(), std::io::Error> {
    ///     for chunk in 0..rows / 1000 {
    ///         if ctx.is_cancelled() {
    ///             return Err(std::io::Error::other(format!("stopped at chunk {chunk}")));
    ///         }
    ///         /* export a chunk */
    ///     }
    ///     Ok(())
    /// }
    /// ```
    ///
    /// A job that ignores it is stopped anyway (its future dropped) after
    /// the server's cancel grace, or at the end of the shutdown timeout.
    ///
    /// The token is the job's own (a child of the attempt's): cancelling it
    /// (to stop helpers of the job's) does not stop the attempt.
    pub fn cancellation_token(&self) -> &CancellationToken {
        self.token
            .get_or_init(|| self.cancellation.token().child_token())
    }

    /// Whether this attempt was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// Completes when this attempt is asked to stop.
    pub async fn cancelled(&self) {
        self.cancellation.cancelled().await;
    }

    /// Why this attempt was asked to stop; `None` while it was not.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.cancellation.reason()
    }

    /// The context with the parent's result (JSON) of a continuation; the
    /// server sets it from the stored job.
    #[must_use]
    pub fn with_parent_result(mut self, parent_result: Option<String>) -> Self {
        self.parent_result = parent_result.map(Arc::from);
        self
    }

    /// For a continuation: its parent's result as stored (JSON), `None`
    /// when the parent returned nothing, did not succeed, or there is no
    /// parent.
    pub fn parent_result_json(&self) -> Option<&str> {
        self.parent_result.as_deref()
    }

    /// For a continuation: its parent's result decoded as a `T`; a missing
    /// result decodes as JSON `null` (so as `None` for an `Option`). What
    /// a `#[parent]` parameter receives.
    ///
    /// # Errors
    /// A permanent [`JobError`] (no retry can mend it) when the result
    /// does not decode as a `T`.
    pub fn parent_result<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        let json = self.parent_result_json().unwrap_or("null");
        serde_json::from_str(json).map_err(|error| {
            let what = if self.parent_result.is_some() {
                "the parent's result"
            } else {
                "the missing parent result (the parent returned nothing or did not succeed, or a batch's results exceed MAX_BATCH_RESULTS_LEN; take an `Option`)"
            };
            JobError::permanent(format!(
                "{what} does not decode as `{}`: {error}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The job's stable name (`#[job(name = "...")]`, default the function's name).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The queue the job was fetched from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// This attempt's number, 1 for the first run, 2 for the first retry, ...
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The most attempts this job gets (retries + 1).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether this attempt is the last one: a failure now is final.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// When the job was first enqueued or scheduled (UTC).
    pub fn enqueued_at(&self) -> DateTime<Utc> {
        self.enqueued_at
    }
}
