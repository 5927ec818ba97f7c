//! The monitoring part of the contract: read-only, for applications, the
//! dashboard and the command line.

use chrono::{DateTime, Utc};

use super::batches::BatchRecord;
use super::job_log::{JobLogQuery, LogRecord};
use super::parameters::JobParameters;
use super::paused::Paused;
use super::recurring::RecurringJob;
use crate::{BatchId, JobId, Result, State, StateChange};

/// A stored job, as [`MonitoringStorage::job`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// Its stored name.
    pub name: String,
    /// Its queue.
    pub queue: String,
    /// Its arguments, JSON.
    pub args: String,
    /// Its current state.
    pub state: State,
    /// Attempts started so far (0 before the first fetch).
    pub attempt: u32,
    /// The most attempts it gets.
    pub max_attempts: u32,
    /// Its priority within its queue (lower numbers are fetched first).
    pub priority: i16,
    /// When it was enqueued or scheduled (UTC).
    pub created_at: DateTime<Utc>,
    /// When its state last changed (UTC).
    pub state_changed_at: DateTime<Utc>,
    /// When a `Scheduled` job is due (UTC); `None` in other states.
    pub run_at: Option<DateTime<Utc>>,
    /// The reason of its last move (the error of a `Failed` job).
    pub reason: Option<String>,
    /// What it returned, as JSON, once `Succeeded` (`None` for nothing).
    pub result: Option<String>,
    /// For a continuation of a job: the parent job.
    pub parent: Option<JobId>,
    /// For a continuation of a batch: the parent batch.
    pub parent_batch: Option<BatchId>,
    /// The batch it belongs to.
    pub batch: Option<BatchId>,
    /// The latest progress its running attempt reported
    /// (`ctx.progress(..)`), from 0.0 to 1.0; `None` when none did. Kept
    /// after the attempt ends.
    pub progress: Option<f64>,
}

/// How many jobs are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    counts: [u64; State::ALL.len()],
}

impl StateCounts {
    /// The count of jobs in `state`.
    pub fn get(&self, state: State) -> u64 {
        self.counts[Self::index(state)]
    }

    /// Sets the count of jobs in `state`.
    pub fn set(&mut self, state: State, count: u64) {
        self.counts[Self::index(state)] = count;
    }

    /// All jobs stored.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn index(state: State) -> usize {
        State::ALL
            .iter()
            .position(|s| *s == state)
            .expect("every state is in ALL")
    }
}

/// How many jobs of one queue are in each state, as
/// [`MonitoringStorage::queue_counts`] reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// The queue's name.
    pub queue: String,
    /// Its jobs per state.
    pub counts: StateCounts,
    /// When the job at the queue's head became `Enqueued` (UTC): the first
    /// job, by priority then id, of each of the two `Enqueued` indexes
    /// (without and with a concurrency key), the earlier of the two. Its
    /// age is the queue's latency, as Sidekiq's `Queue#latency`: how long
    /// the job a server takes next has waited. It is not always the
    /// longest wait: a retried job keeps its id, so once enqueued again it
    /// may stand at the head with a fresh time while newer jobs wait
    /// longer behind it (finding the longest wait would need another
    /// index on the hot path). `None` when no job waits.
    pub oldest_enqueued_at: Option<DateTime<Utc>>,
}

/// Which jobs [`MonitoringStorage::list_jobs`] reads: newest first, one
/// page at a time (keyset pagination: the next page starts
/// [`before`](Self::before) the last id of this one, so a page costs the
/// same however deep it is).
///
/// ```
/// use jobs_core::{JobQuery, State};
/// let failed_mail = JobQuery::new().state(State::Failed).queue("mail").limit(20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobQuery {
    /// Only jobs in this state; `None` for every state.
    pub state: Option<State>,
    /// Only jobs of this queue; `None` for every queue.
    pub queue: Option<String>,
    /// Only jobs with a smaller id (older) than this: the last id of the
    /// previous page. `None` for the first page.
    pub before: Option<JobId>,
    /// The most jobs to read ([`JobQuery::DEFAULT_LIMIT`] unless set; at
    /// most [`JobQuery::MAX_LIMIT`]).
    pub limit: usize,
}

impl Default for JobQuery {
    fn default() -> Self {
        JobQuery {
            state: None,
            queue: None,
            before: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

impl JobQuery {
    /// A page size that fits a screen.
    pub const DEFAULT_LIMIT: usize = 50;
    /// The largest page read at once.
    pub const MAX_LIMIT: usize = 1000;

    /// The first page of every job, newest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only jobs in `state`.
    pub fn state(mut self, state: State) -> Self {
        self.state = Some(state);
        self
    }

    /// Only jobs of `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Only jobs older than `id`: the page after the one whose last job is `id`.
    pub fn before(mut self, id: JobId) -> Self {
        self.before = Some(id);
        self
    }

    /// At most `limit` jobs (capped at [`JobQuery::MAX_LIMIT`]).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.min(Self::MAX_LIMIT);
        self
    }
}

/// A search among the jobs of a [`JobQuery`]'s state (from its `before`,
/// up to its limit) for those of its queue, of a name, with a text in
/// their arguments, or that ran before: the dashboard's filters and its
/// Retries page. No index serves these filters over a big state, so one
/// search reads at most [`JobSearch::WINDOW`] jobs of the state (newest
/// first from `before`) and returns the matches among them, with where to
/// go on ([`SearchPage::next`]): a page costs the same however many jobs
/// are kept and however rare the matches are.
///
/// ```
/// use jobs_core::{JobQuery, JobSearch, State};
/// let search = JobSearch::new(JobQuery::new().state(State::Failed))
///     .name("send_mail")
///     .text("\"to\":\"ann@");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobSearch {
    /// Which jobs are searched, and how many matches make a page.
    pub jobs: JobQuery,
    /// Only jobs of this name ([`Job::NAME`](crate::Job::NAME)), exactly.
    pub name: Option<String>,
    /// Only jobs whose arguments, as stored (JSON text), hold this text,
    /// case-sensitive.
    pub text: Option<String>,
    /// Only jobs that ran at least once (attempt 1 or more): among
    /// `Scheduled` jobs, the retries (and snoozes).
    pub attempted: bool,
}

impl JobSearch {
    /// The most jobs one search reads.
    pub const WINDOW: usize = 5000;

    /// Searches the jobs `jobs` names, with no filter yet.
    pub fn new(jobs: JobQuery) -> Self {
        JobSearch {
            jobs,
            name: None,
            text: None,
            attempted: false,
        }
    }

    /// Only jobs named `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only jobs whose arguments hold `text`.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Only jobs that ran at least once.
    pub fn attempted(mut self) -> Self {
        self.attempted = true;
        self
    }
}

/// What [`MonitoringStorage::search_jobs`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchPage {
    /// The matches, newest first: at most the query's limit.
    pub jobs: Vec<JobRecord>,
    /// Where the search goes on (the next search's `before`): after the
    /// last match of a full page, or below the oldest job read when the
    /// window ran out first. `None` when no older job is left to search.
    pub next: Option<JobId>,
}

impl SearchPage {
    /// The page of `matches` (newest first, at most `limit`) found among
    /// `read` jobs whose oldest is `oldest`, deciding where the search goes
    /// on: the window is [`JobSearch::WINDOW`] jobs.
    pub fn of(matches: Vec<JobRecord>, limit: usize, read: usize, oldest: Option<JobId>) -> Self {
        let next = if limit > 0 && matches.len() >= limit {
            matches.last().map(|job| job.id)
        } else if read >= JobSearch::WINDOW {
            oldest
        } else {
            None
        };
        SearchPage {
            jobs: matches,
            next,
        }
    }
}

/// The monitoring part of the contract: reads only, never a move.
#[async_trait::async_trait]
pub trait MonitoringStorage: Send + Sync + 'static {
    /// Searches jobs by name, text in their arguments, or whether they
    /// ran before, reading at most [`JobSearch::WINDOW`] jobs (see
    /// [`JobSearch`]).
    async fn search_jobs(&self, search: JobSearch) -> Result<SearchPage>;

    /// How many jobs succeeded and failed, in all and per hour (see
    /// [`Statistics`](super::Statistics)).
    async fn statistics(&self) -> Result<super::Statistics>;

    /// How many jobs of each queue are in each state but `Succeeded` and
    /// `Deleted` (those read 0: they are the bulk of a table that keeps
    /// finished jobs, and counting them would read it all), sorted by
    /// queue name; a queue with none of those jobs is not listed. With
    /// each queue that has jobs waiting, when its head job became
    /// `Enqueued` ([`QueueCounts::oldest_enqueued_at`]).
    async fn queue_counts(&self) -> Result<Vec<QueueCounts>>;

    /// Reads one job; `None` when no job has this id.
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>>;

    /// Reads a job's state history, oldest move first; empty when no job
    /// has this id.
    async fn history(&self, id: JobId) -> Result<Vec<StateChange>>;

    /// Counts the jobs in each state.
    async fn counts(&self) -> Result<StateCounts>;

    /// Counts the jobs in each of `states` (the others read 0), each
    /// through an index of its own where the storage has one: cheap for
    /// the states of few jobs however many finished jobs are kept, where
    /// [`counts`](Self::counts) reads the whole table.
    async fn counts_of(&self, states: &[State]) -> Result<StateCounts>;

    /// Reads one page of jobs, newest first (see [`JobQuery`]).
    async fn list_jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>>;

    /// Every recurring job, sorted by id, with its last run's state.
    async fn recurring_jobs(&self) -> Result<Vec<RecurringJob>>;

    /// The recurring job `id`, if stored.
    async fn recurring_job(&self, id: &str) -> Result<Option<RecurringJob>>;

    /// The batch `id` with its progress (its member jobs counted by
    /// state, its nested batches), if stored.
    async fn batch(&self, id: &BatchId) -> Result<Option<BatchRecord>>;

    /// The continuations of a job or batch, oldest first: at most
    /// [`JobQuery::MAX_LIMIT`].
    async fn continuations(&self, parent: super::Parent) -> Result<Vec<JobRecord>>;

    /// A page of batches with their progress, as [`BatchQuery`](super::BatchQuery) says.
    async fn list_batches(&self, query: super::BatchQuery) -> Result<Vec<BatchRecord>>;

    /// The paused queues, then the paused job names, each sorted by name.
    async fn paused(&self) -> Result<Vec<Paused>>;

    /// The parameters of job `id` (empty for an unknown job).
    async fn job_parameters(&self, id: JobId) -> Result<JobParameters>;

    /// Log lines of a job, in the order they were logged, as `query`
    /// pages them (empty for an unknown job).
    async fn job_log(&self, query: JobLogQuery) -> Result<Vec<LogRecord>>;
}
