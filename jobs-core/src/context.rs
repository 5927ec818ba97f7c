use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::{CancelReason, Cancellation, JobError, JobId};

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
#[derive(Clone, Debug)]
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
