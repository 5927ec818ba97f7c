use chrono::{DateTime, Utc};

use crate::JobId;

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
        }
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
