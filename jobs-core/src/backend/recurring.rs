//! The recurring jobs' part of the maintenance contract: stored
//! definitions, and the claim of a tick with its enqueue as one
//! compare-and-set.

use chrono::{DateTime, Utc};

use super::jobs::NewJob;
use crate::recurring::Misfire;
use crate::{JobId, State};

/// What a recurring job enqueues, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecurringDefinition {
    /// The recurring job's id: unique, chosen by its author (a
    /// `#[recurring]` function's is its job name).
    pub id: String,
    /// The job each tick enqueues ([`Job::NAME`](crate::Job::NAME)).
    pub job_name: String,
    /// Its arguments as a JSON document.
    pub args: String,
    /// The queue each run goes to.
    pub queue: String,
    /// The most attempts each run gets (at least 1).
    pub max_attempts: u32,
    /// The cron expression ([`CronSchedule`](crate::recurring::CronSchedule)).
    pub cron: String,
    /// The IANA time zone the expression reads its wall clock in.
    pub time_zone: String,
    /// What to do with ticks missed while no scheduler ran.
    pub misfire: Misfire,
    /// Whether a tick is skipped while the previous run has not finished
    /// (is `Scheduled` for a retry, `Enqueued`, `Processing` or `Awaiting`).
    pub skip_if_running: bool,
}

/// A stored recurring job: its definition and where its schedule stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecurringJob {
    /// What it enqueues, and when.
    pub definition: RecurringDefinition,
    /// Whether it was defined by `#[recurring]` (synced at server start),
    /// rather than through the API.
    pub in_code: bool,
    /// Whether it was defined by `#[recurring]` and the last server that
    /// synced no longer has it: it stops firing, and is kept with its
    /// history until removed.
    pub missing_from_code: bool,
    /// Whether it is paused: it does not fire until resumed.
    pub paused: bool,
    /// Its next tick (UTC); `None` when it never fires again.
    pub next_run_at: Option<DateTime<Utc>>,
    /// When it last enqueued a run: the tick, or when it was triggered.
    pub last_run_at: Option<DateTime<Utc>>,
    /// The job of its last run.
    pub last_job_id: Option<JobId>,
    /// That job's state now; `None` once the job expired.
    pub last_job_state: Option<State>,
    /// Grows with every change of the row: the token of
    /// [`FireRecurringParams::version`].
    pub version: i64,
}

impl RecurringJob {
    /// Whether its last run has not finished yet (`Scheduled` for a retry,
    /// `Enqueued`, `Processing` or `Awaiting`).
    pub fn last_run_unfinished(&self) -> bool {
        self.last_job_state.is_some_and(|state| !state.is_final())
    }
}

/// The arguments of [`MaintenanceStorage::save_recurring`](super::MaintenanceStorage::save_recurring).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveRecurringParams {
    /// The definition, stored under its id, replacing the one stored.
    pub definition: RecurringDefinition,
    /// Whether `#[recurring]` defines it (see [`RecurringJob::in_code`]).
    pub in_code: bool,
    /// Its first tick after the storage's clock, used when the job is new,
    /// its cron expression or time zone changed, or it has no next run;
    /// otherwise the stored next run stays, so that a server's restart
    /// moves no tick (and ticks missed while it was missing from code are
    /// its misfire policy's to handle).
    pub next_run_at: Option<DateTime<Utc>>,
}

/// The arguments of [`MaintenanceStorage::sync_recurring`](super::MaintenanceStorage::sync_recurring).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncRecurringParams {
    /// Every `#[recurring]` job of the binary, saved as
    /// [`save_recurring`](super::MaintenanceStorage::save_recurring) does
    /// with `in_code` set.
    pub jobs: Vec<SaveRecurringParams>,
    /// The job names that other live servers run and this binary does
    /// not (from the server registry). A stored job defined in code that is
    /// not in `jobs` is marked
    /// [`missing_from_code`](RecurringJob::missing_from_code) unless its job
    /// name is here: so a binary never switches off the recurring jobs of
    /// another binary sharing the storage, while a job this binary has, but
    /// no longer as recurring, stops.
    pub other_job_names: Vec<String>,
}

/// The arguments of [`MaintenanceStorage::due_recurring`](super::MaintenanceStorage::due_recurring).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueRecurringParams {
    /// The most jobs to return.
    pub limit: usize,
    /// Keyset paging within a pass: only jobs after this next run and id,
    /// in the order returned (the last job of the previous page). So jobs
    /// a scheduler leaves alone do not hide the others.
    pub after: Option<(DateTime<Utc>, String)>,
}

/// What [`MaintenanceStorage::due_recurring`](super::MaintenanceStorage::due_recurring) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueRecurring {
    /// The storage's clock when it looked.
    pub now: DateTime<Utc>,
    /// The jobs due at `now` (next run not after it), neither paused nor
    /// missing from code, by next run then id.
    pub due: Vec<RecurringJob>,
    /// The earliest next run of the others that will fire: when to look
    /// again.
    pub next_due_at: Option<DateTime<Utc>>,
}

/// The arguments of [`MaintenanceStorage::fire_recurring`](super::MaintenanceStorage::fire_recurring).
#[derive(Clone, Debug, PartialEq)]
pub struct FireRecurringParams {
    /// The recurring job.
    pub id: String,
    /// The [`version`](RecurringJob::version) read: nothing happens unless
    /// the stored one is still this (compare-and-set), so that of all the
    /// schedulers that read a tick, one claims it.
    pub version: i64,
    /// The next run to store.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The runs to enqueue, in the same transaction (may be empty: a tick
    /// skipped). The last one becomes the job's last run.
    pub jobs: Vec<NewJob>,
    /// The last run's time to store when `jobs` is not empty: its tick;
    /// `None` for the storage's clock (a run triggered by hand).
    pub last_run_at: Option<DateTime<Utc>>,
}

/// The arguments of [`MaintenanceStorage::pause_recurring`](super::MaintenanceStorage::pause_recurring).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseRecurringParams {
    /// The recurring job.
    pub id: String,
    /// Pause (`true`) or resume (`false`).
    pub paused: bool,
    /// The next run to store: the one read when pausing; when resuming a
    /// paused job, the first tick after the storage's clock, so that ticks
    /// passed while paused do not fire.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The [`version`](RecurringJob::version) read: nothing changes unless
    /// the stored one is still this, as `next_run_at` was decided from the
    /// job as read.
    pub version: i64,
}
