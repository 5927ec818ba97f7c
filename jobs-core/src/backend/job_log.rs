//! A running job's log and progress (`ctx.log(..)`, `ctx.progress(..)`),
//! kept with the job for the dashboard, as Hangfire.Console keeps a job's
//! console lines and progress bar.
//!
//! The server gathers them for half a second and writes them together in
//! one [`JobStorage::write_log`](super::JobStorage::write_log) call; they
//! expire with their job.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{Attempt, JobId};

/// The most log lines one attempt keeps; one more line then says that the
/// later lines are dropped.
pub const MAX_LOG_LINES_PER_ATTEMPT: u32 = 1000;

/// One line a running job logged
/// ([`JobContext::log`](crate::JobContext::log)), on its way to the
/// storage. The server gathers lines and progress for half a second and
/// writes them together in one
/// [`JobStorage::write_log`](super::JobStorage::write_log) call; they
/// expire with their job.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// The job and the attempt that logged it.
    pub job: Attempt,
    /// How long ago it was logged when the write began: the storage stores
    /// its own clock's now minus this, so that a line keeps the time it
    /// was logged however long it waited to be written.
    pub age: Duration,
    /// The line, storable (see [`storable_text`](crate::storable_text)).
    pub text: String,
}

/// A running job's progress, on its way to the storage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobProgress {
    /// The job and the attempt that reported it: a progress of an attempt
    /// that is no longer the job's latest one is not stored.
    pub job: Attempt,
    /// From 0.0 (nothing done) to 1.0 (all done).
    pub progress: f64,
}

/// Log lines and progress to store, from
/// [`JobStorage::write_log`](super::JobStorage::write_log).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteLogParams {
    /// Lines to append, in the order they were logged.
    pub lines: Vec<LogLine>,
    /// The latest progress of each attempt that reported one.
    pub progress: Vec<JobProgress>,
}

/// A stored log line, as
/// [`MonitoringStorage::job_log`](super::MonitoringStorage::job_log) lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its place in the storage's log, increasing in the order lines were
    /// written: the key to ask for the lines after it.
    pub id: i64,
    /// The attempt that logged it.
    pub attempt: u32,
    /// When it was logged (UTC, the storage's clock).
    pub at: DateTime<Utc>,
    /// The line.
    pub text: String,
}

/// Which log lines of a job to list: a keyset page in the order they were
/// logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLogQuery {
    /// The job.
    pub job: JobId,
    /// Only lines after this [`LogRecord::id`]; `None` from the first.
    pub after: Option<i64>,
    /// At most this many lines, at least 1 (0 counts as 1).
    pub limit: usize,
}

impl JobLogQuery {
    /// The first [`MAX_LOG_LINES_PER_ATTEMPT`] lines of `job`.
    pub fn new(job: impl Into<JobId>) -> Self {
        JobLogQuery {
            job: job.into(),
            after: None,
            limit: MAX_LOG_LINES_PER_ATTEMPT as usize,
        }
    }

    /// Only the lines after the line `id`.
    #[must_use]
    pub fn after(mut self, id: i64) -> Self {
        self.after = Some(id);
        self
    }

    /// At most `limit` lines.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}
