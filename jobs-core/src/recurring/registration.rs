//! What `#[recurring]` submits to `inventory`.

use std::fmt;

use super::Misfire;
use crate::Job;
use crate::backend::RecurringDefinition;

/// One `#[recurring]` job of this binary: the job (registered as any
/// `#[job]` is) and its schedule. Its recurring id is its job name.
///
/// Built by the `const fn` [`RecurringRegistration::of`], so that it can
/// live in a static; every server stores them all when it starts.
pub struct RecurringRegistration {
    /// The job's name ([`Job::NAME`]), which is also the recurring id.
    pub name: &'static str,
    /// Its queue ([`Job::QUEUE`]).
    pub queue: &'static str,
    /// The most attempts each run gets ([`Job::RETRY_POLICY`]).
    pub max_attempts: u32,
    /// The cron expression, checked at compile time.
    pub cron: &'static str,
    /// The IANA time zone, checked at compile time.
    pub time_zone: &'static str,
    /// What to do with missed ticks.
    pub misfire: Misfire,
    /// Whether a tick is skipped while the previous run has not finished.
    pub skip_if_running: bool,
    /// The source file that defines it, for error messages.
    pub file: &'static str,
    /// The line in [`file`](Self::file).
    pub line: u32,
}

impl RecurringRegistration {
    /// The registration of job type `J` (which takes no arguments) on the
    /// schedule `cron` in `time_zone`, defined at `file:line`.
    pub const fn of<J: Job>(
        cron: &'static str,
        time_zone: &'static str,
        misfire: Misfire,
        skip_if_running: bool,
        file: &'static str,
        line: u32,
    ) -> Self {
        RecurringRegistration {
            name: J::NAME,
            queue: J::QUEUE,
            max_attempts: J::RETRY_POLICY.max_attempts(),
            cron,
            time_zone,
            misfire,
            skip_if_running,
            file,
            line,
        }
    }

    /// Every `#[recurring]` job of the binary, sorted by name.
    pub fn all() -> Vec<&'static RecurringRegistration> {
        let mut all: Vec<_> = inventory::iter::<RecurringRegistration>
            .into_iter()
            .collect();
        all.sort_by_key(|registration| registration.name);
        all
    }

    /// The definition to store: the job with no arguments (`{}`).
    pub fn definition(&self) -> RecurringDefinition {
        RecurringDefinition {
            id: self.name.to_owned(),
            job_name: self.name.to_owned(),
            args: "{}".to_owned(),
            queue: self.queue.to_owned(),
            max_attempts: self.max_attempts,
            cron: self.cron.to_owned(),
            time_zone: self.time_zone.to_owned(),
            misfire: self.misfire,
            skip_if_running: self.skip_if_running,
        }
    }
}

impl fmt::Debug for RecurringRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecurringRegistration")
            .field("name", &self.name)
            .field("cron", &self.cron)
            .field("time_zone", &self.time_zone)
            .field("location", &format_args!("{}:{}", self.file, self.line))
            .finish()
    }
}

inventory::collect!(RecurringRegistration);
