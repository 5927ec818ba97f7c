//! Recurring jobs through the API: any `#[job]` with arguments, on a cron
//! schedule, under an id of the application's choosing.

use jobs_core::recurring::{DEFAULT_TIME_ZONE, Misfire};
use jobs_core::{Error, Job, JobId, RecurringDefinition, Result};

use crate::Client;
use crate::client::{arguments, checked_queue};

/// A recurring job's schedule and settings: the cron expression, then
/// optional setters; an option not set takes the default.
///
/// ```
/// use jobs_runtime::RecurringOptions;
/// use jobs_core::recurring::Misfire;
/// let options = RecurringOptions::cron("0 0 8 * * MON-FRI")
///     .time_zone("Europe/Berlin")
///     .queue("reports")
///     .misfire(Misfire::Skip)
///     .skip_if_running(true);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecurringOptions {
    cron: String,
    time_zone: String,
    queue: Option<String>,
    max_attempts: Option<u32>,
    misfire: Misfire,
    skip_if_running: bool,
}

impl RecurringOptions {
    /// Fires on `cron`: 5 fields (minute hour day-of-month month
    /// day-of-week) or 6 with seconds first, in UTC unless
    /// [`time_zone`](Self::time_zone) says otherwise. Checked when saved.
    pub fn cron(cron: impl Into<String>) -> Self {
        RecurringOptions {
            cron: cron.into(),
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
            queue: None,
            max_attempts: None,
            misfire: Misfire::default(),
            skip_if_running: false,
        }
    }

    /// The IANA time zone whose wall clock the expression reads (default
    /// `"UTC"`), daylight saving included.
    #[must_use]
    pub fn time_zone(mut self, time_zone: impl Into<String>) -> Self {
        self.time_zone = time_zone.into();
        self
    }

    /// The queue of each run (default: the job's).
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// The most attempts each run gets (default: the job's retries + 1).
    #[must_use]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// What to do with ticks missed while no server ran (default
    /// [`Misfire::RunOnce`]).
    #[must_use]
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = misfire;
        self
    }

    /// Whether a tick is skipped while the previous run has not finished
    /// (default `false`).
    #[must_use]
    pub fn skip_if_running(mut self, skip: bool) -> Self {
        self.skip_if_running = skip;
        self
    }
}

impl Client {
    /// Adds the recurring job `id`, or replaces it, running `job` (its
    /// arguments) on the schedule of `options`. A replaced job keeps its
    /// next tick unless its cron expression or time zone changed, and its
    /// pause.
    ///
    /// # Errors
    /// [`Error::InvalidSchedule`] for a cron expression or time zone that
    /// does not parse; [`Error::Config`] for an empty id or queue;
    /// [`Error::Serialize`]; a storage error.
    pub async fn add_or_update_recurring<J: Job>(
        &self,
        id: &str,
        job: J,
        options: RecurringOptions,
    ) -> Result<()> {
        if id.trim().is_empty() {
            return Err(Error::Config(
                "a recurring job's id must not be empty".to_owned(),
            ));
        }
        let definition = RecurringDefinition {
            id: id.to_owned(),
            job_name: J::NAME.to_owned(),
            args: arguments(&job)?,
            queue: checked_queue(J::NAME, options.queue.as_deref().unwrap_or(J::QUEUE))?,
            max_attempts: options
                .max_attempts
                .unwrap_or(J::RETRY_POLICY.max_attempts())
                .max(1),
            cron: options.cron,
            time_zone: options.time_zone,
            misfire: options.misfire,
            skip_if_running: options.skip_if_running,
        };
        self.storage().save_recurring(definition, false).await
    }

    /// [`Storage::trigger_recurring`](crate::Storage::trigger_recurring).
    ///
    /// # Errors
    /// As that.
    pub async fn trigger_recurring(&self, id: &str) -> Result<JobId> {
        self.storage().trigger_recurring(id).await
    }
}
