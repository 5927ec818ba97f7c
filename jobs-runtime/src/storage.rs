use std::fmt;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use jobs_core::recurring::{self, CronSchedule, RecurringRegistration};
use jobs_core::{
    BatchId, BatchQuery, BatchRecord, PauseTarget, Paused, SetPausedParams, TypedJobId,
};
use jobs_core::{
    DueRecurring, DueRecurringParams, FireRecurringParams, PauseRecurringParams,
    RecurringDefinition, RecurringJob, SaveRecurringParams, SyncRecurringParams,
};
use jobs_core::{
    EnqueueParams, Error, FinishParams, JobId, JobQuery, JobRecord, MoveParams, PromoteParams,
    Result, ServerRecord, State, StateChange, StateCounts, StorageBackend, decide,
};
use jobs_core::{JobLogQuery, JobParameters, LogRecord, QueueCounts, SetParametersParams};
use jobs_core::{JobSearch, SearchPage, Statistics};
#[allow(unused_imports)] // named by the docs
use jobs_core::{JobStorage, MaintenanceStorage, NotificationStorage};
use tokio::sync::{Notify, watch};

use crate::ConnectOptions;
use crate::metrics;
use crate::postgres::PostgresStorage;
use crate::sqlite::SqliteStorage;
use crate::traced::Traced;

/// A cheap-to-clone handle to the storage that clients and servers share.
///
/// Open one with [`Storage::connect`] (or wrap a backend with
/// [`Storage::new`]); clone it freely (an `Arc` inside). Its methods are
/// what applications and the dashboard use: read a job, its history, the
/// counts by state, a page of jobs by state and queue, the servers;
/// requeue and delete a job. Enqueue through a [`Client`](crate::Client)
/// over it. The worker-side calls (fetch, finish, leases, maintenance) are
/// the server's, reached through the [`StorageBackend`] it holds.
#[derive(Clone)]
pub struct Storage {
    backend: Arc<dyn StorageBackend>,
    wakeup: Arc<Notify>,
    recurring_changed: Arc<Notify>,
    awaiting_changed: Arc<Notify>,
    leases_revoked: Arc<watch::Sender<()>>,
}

impl Storage {
    /// Opens the storage a URL names, creating and migrating it as needed.
    ///
    /// - `sqlite://PATH` (or `sqlite:PATH`): a SQLite file, created if
    ///   missing, in WAL mode; see [`SqliteStorage`].
    /// - `sqlite::memory:`: a private in-memory database, for tests.
    /// - `postgres://USER@HOST/DB` (or `postgresql://`): PostgreSQL, tables in
    ///   the schema `jobs`; see [`PostgresStorage`].
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for another scheme; [`Error::Storage`] when
    /// the database cannot be opened or migrated.
    /// Uses the default [`ConnectOptions`]: a pool of
    /// [`DEFAULT_MAX_CONNECTIONS`](crate::DEFAULT_MAX_CONNECTIONS), enough
    /// for a server of any number of workers and its clients.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for another scheme; [`Error::Storage`] when
    /// the database cannot be opened or migrated. A PostgreSQL server that
    /// refuses or does not answer fails within the connect timeout
    /// ([`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT)), and
    /// the error names the cause.
    pub async fn connect(url: &str) -> Result<Storage> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// As [`connect`](Self::connect), with the pool's size and timeouts
    /// from `options`.
    ///
    /// ```no_run
    /// # async fn demo() -> jobs_core::Result<()> {
    /// use jobs_runtime::{ConnectOptions, Storage};
    /// let options = ConnectOptions::new().max_connections(20);
    /// let storage = Storage::connect_with("postgres://postgres@localhost/app", options).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Storage> {
        if url.starts_with("sqlite:") {
            Ok(Storage::new(
                SqliteStorage::connect_with_options(url, &options).await?,
            ))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let postgres = PostgresStorage::connect_with_options(
                url,
                crate::postgres::DEFAULT_SCHEMA,
                &options,
            )
            .await?;
            Ok(Storage::new(postgres))
        } else {
            Err(Error::UnsupportedUrl(url.to_owned()))
        }
    }

    /// A handle over any backend: a storage of your own, or one of ours
    /// opened with its own options. Every call through it is traced (a
    /// `debug` span per call, named `storage.<method>`).
    pub fn new(backend: impl StorageBackend) -> Storage {
        Storage {
            backend: Arc::new(Traced::new(backend)),
            wakeup: Arc::new(Notify::new()),
            recurring_changed: Arc::new(Notify::new()),
            awaiting_changed: Arc::new(Notify::new()),
            leases_revoked: Arc::new(watch::Sender::new(())),
        }
    }

    /// Reads one job; `None` when no job has this id.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn job(&self, id: impl Into<JobId>) -> Result<Option<JobRecord>> {
        self.backend.job(id.into()).await
    }

    /// The result a job returned, decoded: `None` while it has none (not
    /// `Succeeded` yet, or it returned nothing). Give it the typed id the
    /// job's helpers return (`TypedJobId<T>` of a job returning
    /// `Result<T, E>`).
    ///
    /// # Errors
    /// [`Error::JobNotFound`] when no job has this id;
    /// [`Error::Storage`] when the database cannot be read, or when the
    /// stored result does not decode as a `T`.
    pub async fn job_result<T: serde::de::DeserializeOwned>(
        &self,
        id: TypedJobId<T>,
    ) -> Result<Option<T>> {
        let job = self
            .backend
            .job(id.id())
            .await?
            .ok_or(Error::JobNotFound(id.id()))?;
        job.result
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| Error::storage("decoding a job's result", e))
    }

    /// Reads a batch with its progress: its state, its member jobs counted
    /// by state (pending are those not final: [`BatchRecord::pending`]),
    /// its nested batches; `None` when no batch has this id.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn batch(&self, id: &BatchId) -> Result<Option<BatchRecord>> {
        self.backend.batch(id).await
    }

    /// The continuations of a job or batch (awaiting it, or decided
    /// already), oldest first: at most
    /// [`JobQuery::MAX_LIMIT`](jobs_core::JobQuery::MAX_LIMIT).
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn continuations(&self, parent: jobs_core::Parent) -> Result<Vec<JobRecord>> {
        self.backend.continuations(parent).await
    }

    /// A page of batches with their progress: started ones newest first,
    /// or finished outermost ones most recently finished first
    /// ([`BatchQuery`]).
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn list_batches(&self, query: BatchQuery) -> Result<Vec<BatchRecord>> {
        self.backend.list_batches(query).await
    }

    /// Cancels a `Started` batch and the batches nested in it: they become
    /// `Deleted`, and their members that have not started (`Scheduled`,
    /// `Enqueued`, `Awaiting`) are deleted with the reason
    /// [`BATCH_CANCELLED`](jobs_core::decide::BATCH_CANCELLED); running
    /// members are not interrupted: their attempt's outcome is recorded as
    /// usual (a retry of one runs; delete it to stop it). The batch's continuations are then
    /// decided as for a `Deleted` parent (only those awaiting
    /// `ContinueOn::Deleted` or `Finished` run). Returns the deleted jobs'
    /// ids, sorted.
    ///
    /// # Errors
    /// [`Error::BatchNotFound`] when no batch has this id;
    /// [`Error::BatchFinished`] when it finished or was cancelled already;
    /// [`Error::Storage`] when the database fails.
    pub async fn cancel_batch(&self, id: &BatchId) -> Result<Vec<JobId>> {
        let deleted = self.backend.cancel_batch(id.clone()).await?;
        self.awaiting_changed.notify_one();
        Ok(deleted)
    }

    /// Reads a job's state history, oldest move first (every move with its
    /// time, reason and data); empty when no job has this id.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn history(&self, id: impl Into<JobId>) -> Result<Vec<StateChange>> {
        self.backend.history(id.into()).await
    }

    /// Reads a job's log: the lines its attempts logged with
    /// [`JobContext::log`](jobs_core::JobContext::log), oldest first, a
    /// keyset page as `query` says (`JobLogQuery::new(id).after(last.id)`
    /// for the next one); empty when no job has this id.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn job_log(&self, query: JobLogQuery) -> Result<Vec<LogRecord>> {
        self.backend.job_log(query).await
    }

    /// Reads a job's parameters, name to JSON value (see
    /// [`JobParameters`]); empty when no job has this id.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn job_parameters(&self, id: impl Into<JobId>) -> Result<JobParameters> {
        self.backend.job_parameters(id.into()).await
    }

    /// Sets a job's parameter `name` to `value`, whatever the job's state
    /// (as Hangfire's `SetJobParameter`).
    ///
    /// # Errors
    /// [`Error::JobNotFound`] when no job has this id; [`Error::Config`]
    /// for a name or value [`check_parameter`](jobs_core::check_parameter)
    /// refuses; [`Error::Storage`] when the database fails.
    pub async fn set_job_parameter(
        &self,
        id: impl Into<JobId>,
        name: &str,
        value: impl Into<serde_json::Value>,
    ) -> Result<()> {
        self.backend
            .set_parameters(SetParametersParams {
                job: id.into(),
                parameters: JobParameters::from([(name.to_owned(), value.into().to_string())]),
            })
            .await
    }

    /// How many jobs succeeded and failed: in all since the storage was
    /// created, and per hour (UTC) for the last [`STATISTICS_KEPT`](jobs_core::STATISTICS_KEPT)
    /// (31 days), as Hangfire's statistics. A job counts each time it
    /// reaches `Succeeded` or `Failed`; its expiry takes nothing off.
    /// Counts appear at once on SQLite; on PostgreSQL at once too (the
    /// leader's folding of the appended counts changes no total).
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn statistics(&self) -> Result<Statistics> {
        self.backend.statistics().await
    }

    /// Counts the jobs of each queue in each state but `Succeeded` and
    /// `Deleted` (those read 0: they are the bulk of a table that keeps
    /// finished jobs, and counting them would read it all), sorted by
    /// queue name; a queue with none of those jobs is not listed.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn queue_counts(&self) -> Result<Vec<QueueCounts>> {
        self.backend.queue_counts().await
    }

    /// The counts shown to people (the dashboard, `jobs status`), cheap
    /// however many jobs are kept: the jobs in each state now, each counted
    /// through its own indexes ([`counts_of`](Self::counts_of)), but
    /// `Succeeded`, which reads all the jobs that ever succeeded (the bulk
    /// of a table that keeps finished jobs, counted by the statistics, as
    /// Hangfire does); and the statistics themselves.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn counts_shown(&self) -> Result<(StateCounts, Statistics)> {
        let unfinished: Vec<State> = State::ALL
            .into_iter()
            .filter(|state| *state != State::Succeeded)
            .collect();
        let (mut counts, statistics) =
            tokio::try_join!(self.counts_of(&unfinished), self.statistics())?;
        counts.set(State::Succeeded, statistics.total.succeeded);
        Ok((counts, statistics))
    }

    /// Counts the jobs in each of `states`; the others read 0. Each state
    /// is counted through an index of its own where the storage has one:
    /// cheap for states of few jobs however many finished jobs are kept,
    /// where [`counts`](Self::counts) reads the whole table.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn counts_of(&self, states: &[State]) -> Result<StateCounts> {
        self.backend.counts_of(states).await
    }

    /// Counts the jobs in each state, reading the whole table (see
    /// [`counts_of`](Self::counts_of) for the states of few jobs).
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn counts(&self) -> Result<StateCounts> {
        self.backend.counts().await
    }

    /// Reads one page of jobs, newest first, by state and queue:
    ///
    /// ```no_run
    /// # async fn demo(storage: jobs_runtime::Storage) -> jobs_core::Result<()> {
    /// use jobs_core::{JobQuery, State};
    /// let query = JobQuery::new().state(State::Failed).limit(20);
    /// let page = storage.list_jobs(query.clone()).await?;
    /// if let Some(last) = page.last() {
    ///     let next = storage.list_jobs(query.before(last.id)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn list_jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>> {
        self.backend.list_jobs(query).await
    }

    /// Searches jobs by name, by a text in their arguments, or for those
    /// that ran before (the retries among `Scheduled` jobs), reading at
    /// most [`JobSearch::WINDOW`] jobs; [`SearchPage::next`] says where to
    /// go on:
    ///
    /// ```no_run
    /// # async fn demo(storage: jobs_runtime::Storage) -> jobs_core::Result<()> {
    /// use jobs_core::{JobQuery, JobSearch, State};
    /// let search = JobSearch::new(JobQuery::new().state(State::Failed)).text("ann@");
    /// let page = storage.search_jobs(search.clone()).await?;
    /// if let Some(next) = page.next {
    ///     let mut older = search;
    ///     older.jobs = older.jobs.before(next);
    ///     let more = storage.search_jobs(older).await?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn search_jobs(&self, search: JobSearch) -> Result<SearchPage> {
        self.backend.search_jobs(search).await
    }

    /// The servers registered now, oldest first; each record says how long
    /// it has been silent (`silent_for`, by the storage's clock). A server
    /// silent for longer than the server timeout is removed by the leader.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be read.
    pub async fn servers(&self) -> Result<Vec<ServerRecord>> {
        self.backend.servers().await
    }

    /// Enqueues a job again now, as Hangfire's dashboard "Requeue" does: a
    /// `Failed`, `Succeeded`, `Deleted`, `Scheduled` or `Awaiting` job (or
    /// a running one, whose attempt then stops: its outcome is not recorded
    /// and its lease is not renewed). It gets at least one more attempt. The move is
    /// recorded with the reason
    /// [`REQUEUED_BY_OPERATOR`](jobs_core::decide::REQUEUED_BY_OPERATOR).
    ///
    /// # Errors
    /// [`Error::JobNotFound`] when no job has this id;
    /// [`Error::MoveRefused`] when the job is `Enqueued` already;
    /// [`Error::Storage`] when the database fails.
    pub async fn requeue(&self, id: impl Into<JobId>) -> Result<()> {
        self.move_one(id.into(), State::Enqueued, decide::REQUEUED_BY_OPERATOR)
            .await
    }

    /// Moves a job to `Deleted`: it will not run (a running attempt stops,
    /// as with [`requeue`](Self::requeue)), and it is kept for the record
    /// until it expires with the retention.
    ///
    /// # Errors
    /// [`Error::JobNotFound`] when no job has this id;
    /// [`Error::MoveRefused`] when it is `Deleted` already;
    /// [`Error::Storage`] when the database fails.
    pub async fn delete(&self, id: impl Into<JobId>) -> Result<()> {
        self.move_one(id.into(), State::Deleted, decide::DELETED_BY_OPERATOR)
            .await
    }

    /// Pauses a queue: its jobs stay `Enqueued` and no server fetches them
    /// until [`resume_queue`](Self::resume_queue); running jobs go on, and
    /// jobs may still be enqueued to it. Persisted, so it holds for every
    /// server and across restarts; listed by [`paused`](Self::paused).
    /// Returns `false` when it was paused already.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database fails.
    pub async fn pause_queue(&self, queue: &str) -> Result<bool> {
        self.pause_or_resume(PauseTarget::Queue(queue.to_owned()), true)
            .await
    }

    /// Resumes a paused queue: servers fetch its jobs again at once.
    /// Returns `false` when it was not paused.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database fails.
    pub async fn resume_queue(&self, queue: &str) -> Result<bool> {
        self.pause_or_resume(PauseTarget::Queue(queue.to_owned()), false)
            .await
    }

    /// Pauses a job name ([`Job::NAME`](jobs_core::Job::NAME)) in every
    /// queue, as [`pause_queue`](Self::pause_queue) does a queue. The
    /// fetch reads past its waiting jobs, so a long backlog of a paused
    /// job slows the fetches of its queue a little. Returns `false` when
    /// it was paused already.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database fails.
    pub async fn pause_job(&self, name: &str) -> Result<bool> {
        self.pause_or_resume(PauseTarget::Job(name.to_owned()), true)
            .await
    }

    /// Resumes a paused job name. Returns `false` when it was not paused.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database fails.
    pub async fn resume_job(&self, name: &str) -> Result<bool> {
        self.pause_or_resume(PauseTarget::Job(name.to_owned()), false)
            .await
    }

    /// The paused queues, then the paused job names, each sorted by name,
    /// with when they were paused (UTC).
    ///
    /// # Errors
    /// [`Error::Storage`] when the database fails.
    pub async fn paused(&self) -> Result<Vec<Paused>> {
        self.backend.paused().await
    }

    async fn pause_or_resume(&self, target: PauseTarget, paused: bool) -> Result<bool> {
        if target.name().trim().is_empty() {
            return Err(Error::Config(format!(
                "cannot pause or resume {target}: the name is empty"
            )));
        }
        let changed = self
            .backend
            .set_paused(SetPausedParams { target, paused })
            .await?;
        self.wake_servers_if(changed && !paused);
        Ok(changed)
    }

    /// Cancels a job that has not finished: one that waits (`Scheduled`,
    /// `Enqueued`, `Awaiting`) moves to `Deleted` and never runs; a
    /// running one moves to `Deleted` at once, with the reason
    /// [`CANCELLED`](jobs_core::decide::CANCELLED), and its server stops
    /// it: the attempt's cancellation token fires
    /// ([`CancelReason::Cancelled`](jobs_core::CancelReason::Cancelled)),
    /// and whatever the attempt returns is not recorded. The servers of
    /// this process hear of it at once, those of other processes on
    /// PostgreSQL within moments (`NOTIFY`), on SQLite at their next lease
    /// renewal (a third of the lease). Its continuations that await
    /// `Deleted` (or any final state) are enqueued.
    ///
    /// Returns `false`, changing nothing, when the job had finished
    /// already (`Succeeded`, `Failed` or `Deleted`).
    ///
    /// # Errors
    /// [`Error::JobNotFound`] when no job has this id;
    /// [`Error::Storage`] when the database fails.
    pub async fn cancel(&self, id: impl Into<JobId>) -> Result<bool> {
        let id = id.into();
        let unfinished: Vec<State> = State::ALL
            .into_iter()
            .filter(|state| !state.is_final())
            .collect();
        let params = MoveParams {
            ids: vec![id],
            to: State::Deleted,
            from: unfinished,
            reason: decide::CANCELLED.to_owned(),
        };
        // A job moves only onward, and every unfinished state is a source:
        // when nothing moved, the job had finished.
        if !self.move_jobs(params).await?.is_empty() {
            return Ok(true);
        }
        match self.backend.job(id).await? {
            None => Err(Error::JobNotFound(id)),
            Some(_) => Ok(false),
        }
    }

    /// Moves one job for an operator. When the move is refused, the job's
    /// state is read to say why; if that state allows the move after all
    /// (the job moved on between the two calls), the move is tried again,
    /// so the error never names an allowed move.
    async fn move_one(&self, id: JobId, to: State, reason: &str) -> Result<()> {
        let mut tries = 0;
        loop {
            tries += 1;
            let moved = self
                .move_jobs(MoveParams::new(vec![id], to, reason)?)
                .await?;
            if !moved.is_empty() {
                return Ok(());
            }
            match self.backend.job(id).await? {
                None => return Err(Error::JobNotFound(id)),
                Some(job) if job.state.can_move_to(to) && tries < 3 => continue,
                // Allowed, and refused again and again: a unique job whose
                // key another job holds.
                Some(job) if job.state.can_move_to(to) => {
                    return Err(Error::Config(format!(
                        "job {id} cannot move from {} to {to}: it is unique, and another job holds its key in that state",
                        job.state
                    )));
                }
                Some(job) => {
                    return Err(Error::MoveRefused {
                        id,
                        from: job.state,
                        to,
                    });
                }
            }
        }
    }

    /// Every recurring job, sorted by id: its schedule, next and last run
    /// (UTC), the last run's job and its state, whether it is paused or
    /// missing from code.
    ///
    /// # Errors
    /// When the storage fails.
    pub async fn recurring_jobs(&self) -> Result<Vec<RecurringJob>> {
        self.backend.recurring_jobs().await
    }

    /// The recurring job `id`, if stored.
    ///
    /// # Errors
    /// When the storage fails.
    pub async fn recurring_job(&self, id: &str) -> Result<Option<RecurringJob>> {
        self.backend.recurring_job(id).await
    }

    /// Enqueues a run of the recurring job `id` now, off its schedule (its
    /// next tick stays); recorded as its last run, with the reason
    /// "recurring job `id`, triggered". Works on a paused job too. Returns
    /// the new job's id.
    ///
    /// # Errors
    /// [`Error::RecurringJobNotFound`] when no recurring job has this id;
    /// a storage error.
    pub async fn trigger_recurring(&self, id: &str) -> Result<JobId> {
        self.update_recurring(id, "triggering a recurring job", |job| async move {
            let fired = self
                .fire_recurring(FireRecurringParams {
                    id: job.definition.id.clone(),
                    version: job.version,
                    next_run_at: job.next_run_at,
                    jobs: vec![recurring::triggered_job(&job.definition)],
                    last_run_at: None,
                })
                .await?;
            Ok(fired.map(|ids| ids[0]))
        })
        .await
    }

    /// Pauses the recurring job `id`: no tick fires until it is resumed
    /// (a run triggered by hand still does).
    ///
    /// # Errors
    /// [`Error::RecurringJobNotFound`]; a storage error.
    pub async fn pause_recurring(&self, id: &str) -> Result<()> {
        self.update_recurring(id, "pausing a recurring job", |job| async move {
            self.set_paused(&job, true, job.next_run_at).await
        })
        .await
    }

    /// Resumes the paused recurring job `id` from its next tick after now:
    /// ticks that passed while it was paused do not fire. A job not paused
    /// keeps its next run.
    ///
    /// # Errors
    /// [`Error::RecurringJobNotFound`]; [`Error::InvalidSchedule`] when its
    /// stored schedule no longer parses; a storage error.
    pub async fn resume_recurring(&self, id: &str) -> Result<()> {
        self.update_recurring(id, "resuming a recurring job", |job| async move {
            let schedule = parse_schedule(&job.definition)?;
            let next_run_at = if job.paused || job.next_run_at.is_none() {
                schedule.next_after(self.backend.clock().await?)
            } else {
                job.next_run_at
            };
            self.set_paused(&job, false, next_run_at).await
        })
        .await
    }

    /// Deletes the recurring job `id`: it fires no more; its past runs stay
    /// as jobs. A `#[recurring]` one comes back when a server that has it
    /// starts.
    ///
    /// # Errors
    /// [`Error::RecurringJobNotFound`]; a storage error.
    pub async fn remove_recurring(&self, id: &str) -> Result<()> {
        if self.backend.remove_recurring(id).await? {
            self.recurring_changed.notify_waiters();
            Ok(())
        } else {
            Err(Error::RecurringJobNotFound(id.to_owned()))
        }
    }

    async fn recurring_or_not_found(&self, id: &str) -> Result<RecurringJob> {
        self.backend
            .recurring_job(id)
            .await?
            .ok_or_else(|| Error::RecurringJobNotFound(id.to_owned()))
    }

    /// Reads the recurring job `id` and runs `write` with it, until
    /// `write` finds the job as it read it (returns `Some`, its
    /// compare-and-set on the version held), five times at most.
    async fn update_recurring<T, F, Fut>(
        &self,
        id: &str,
        operation: &'static str,
        mut write: F,
    ) -> Result<T>
    where
        F: FnMut(RecurringJob) -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        for _ in 0..5 {
            if let Some(done) = write(self.recurring_or_not_found(id).await?).await? {
                return Ok(done);
            }
        }
        Err(Error::transient_storage(
            operation,
            format!("recurring job {id:?} kept changing meanwhile"),
        ))
    }

    /// Pauses or resumes `job` as read, with `next_run_at`; `Some` when
    /// it had not changed since.
    async fn set_paused(
        &self,
        job: &RecurringJob,
        paused: bool,
        next_run_at: Option<DateTime<Utc>>,
    ) -> Result<Option<()>> {
        let changed = self
            .backend
            .pause_recurring(PauseRecurringParams {
                id: job.definition.id.clone(),
                paused,
                next_run_at,
                version: job.version,
            })
            .await?;
        if changed {
            self.recurring_changed.notify_waiters();
        }
        Ok(changed.then_some(()))
    }

    /// Stores `definition` under its id, its first tick computed from the
    /// storage's clock, and wakes this process's recurring scheduler.
    pub(crate) async fn save_recurring(
        &self,
        definition: RecurringDefinition,
        in_code: bool,
    ) -> Result<()> {
        let now = self.backend.clock().await?;
        self.backend
            .save_recurring(save_params(definition, in_code, now)?)
            .await?;
        self.recurring_changed.notify_waiters();
        Ok(())
    }

    /// Stores every `#[recurring]` job of the binary (see
    /// [`MaintenanceStorage::sync_recurring`]); `job_names` are all the
    /// binary's jobs. A stored one it lacks is missing from code unless
    /// its job is one this binary does not have and a server heard from
    /// within `server_timeout` runs. Returns how many stored ones were
    /// newly found missing.
    pub(crate) async fn sync_recurring(
        &self,
        jobs: &[&RecurringRegistration],
        job_names: &[&str],
        server_timeout: std::time::Duration,
    ) -> Result<u64> {
        let other_job_names = self
            .backend
            .servers()
            .await?
            .into_iter()
            .filter(|server| server.silent_for < server_timeout)
            .flat_map(|server| server.jobs)
            .filter(|name| !job_names.contains(&name.as_str()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let now = self.backend.clock().await?;
        let jobs = jobs
            .iter()
            .map(|registration| save_params(registration.definition(), true, now))
            .collect::<Result<Vec<_>>>()?;
        let missing = self
            .backend
            .sync_recurring(SyncRecurringParams {
                jobs,
                other_job_names,
            })
            .await?;
        self.recurring_changed.notify_waiters();
        Ok(missing)
    }

    pub(crate) async fn due_recurring(&self, params: DueRecurringParams) -> Result<DueRecurring> {
        self.backend.due_recurring(params).await
    }

    pub(crate) async fn fire_recurring(
        &self,
        params: FireRecurringParams,
    ) -> Result<Option<Vec<JobId>>> {
        let enqueued = params.jobs.iter().any(|job| job.schedule.is_now());
        let counted = metrics::Enqueueing::of(&params.jobs);
        let fired = self.backend.fire_recurring(params).await?;
        if fired.is_some() {
            counted.stored();
        }
        self.wake_servers_if(enqueued && fired.as_ref().is_some_and(|ids| !ids.is_empty()));
        Ok(fired)
    }

    /// Notified when a recurring job changes through this handle or a
    /// clone of it.
    pub(crate) fn recurring_changed(&self) -> &Notify {
        &self.recurring_changed
    }

    /// The backend behind the handle, traced: for the server and the
    /// conformance suite. Applications use the methods above.
    pub(crate) fn backend(&self) -> &dyn StorageBackend {
        &*self.backend
    }

    /// [`JobStorage::enqueue`], raising `max_attempts` of 0 to 1, and
    /// waking the idle servers of this process when a job is `Enqueued`.
    pub(crate) async fn enqueue(&self, mut params: EnqueueParams) -> Result<Vec<JobId>> {
        let now = params.jobs.iter().any(|job| job.schedule.is_now());
        for job in &mut params.jobs {
            job.max_attempts = job.max_attempts.max(1);
        }
        let batches = !params.batches.is_empty();
        let counted = metrics::Enqueueing::of(&params.jobs);
        let ids = self.backend.enqueue(params).await?;
        counted.stored();
        self.wake_servers_if(now);
        if batches {
            // An empty batch finishes at the next check: make it now.
            self.awaiting_changed.notify_one();
        }
        Ok(ids)
    }

    /// Notified when something may now wait on a finished parent (a batch
    /// cancelled or created): the continuation service checks at once.
    pub(crate) fn awaiting_changed(&self) -> &Notify {
        &self.awaiting_changed
    }

    /// [`JobStorage::finish`], waking the idle servers of this process when
    /// a job went back to its queue.
    pub(crate) async fn finish(&self, params: FinishParams) -> Result<Vec<JobId>> {
        let requeued = Self::requeues(&params);
        let moved = self.backend.finish(params).await?;
        self.wake_servers_if(requeued && !moved.is_empty());
        Ok(moved)
    }

    /// [`MaintenanceStorage::rescue`], waking as [`finish`](Self::finish).
    pub(crate) async fn rescue(&self, params: FinishParams) -> Result<Vec<JobId>> {
        let requeued = Self::requeues(&params);
        let moved = self.backend.rescue(params).await?;
        self.wake_servers_if(requeued && !moved.is_empty());
        Ok(moved)
    }

    /// [`MaintenanceStorage::promote_scheduled`], waking when jobs moved.
    pub(crate) async fn promote_scheduled(&self, params: PromoteParams) -> Result<u64> {
        let moved = self.backend.promote_scheduled(params).await?;
        self.wake_servers_if(moved > 0);
        Ok(moved)
    }

    /// [`JobStorage::move_jobs`], waking when jobs were requeued, and
    /// telling the servers of this process to renew their leases at once
    /// when running jobs may have moved (so that they stop them).
    pub(crate) async fn move_jobs(&self, params: MoveParams) -> Result<Vec<JobId>> {
        let to = params.to;
        let stops_running = params.stops_running();
        let moved = self.backend.move_jobs(params).await?;
        self.wake_servers_if(to == State::Enqueued && !moved.is_empty());
        if stops_running && !moved.is_empty() {
            self.revoke_leases();
        }
        Ok(moved)
    }

    /// Tells the servers of this process (sharing this handle or a clone)
    /// that running jobs may have been moved away: each renews its leases
    /// at once and stops the attempts it no longer holds.
    pub(crate) fn revoke_leases(&self) {
        self.leases_revoked.send_replace(());
    }

    /// Marked changed by [`revoke_leases`](Self::revoke_leases); a
    /// receiver never misses one.
    pub(crate) fn leases_revoked(&self) -> watch::Receiver<()> {
        self.leases_revoked.subscribe()
    }

    fn requeues(params: &FinishParams) -> bool {
        params.jobs.iter().any(|job| job.outcome.requeues())
    }

    /// Wakes the idle servers of this process that share this handle (or a
    /// clone of it), when `available`: jobs may be waiting. The one place
    /// that wakes them, but for the storage's own notifications (see
    /// [`NotificationStorage`]).
    pub(crate) fn wake_servers_if(&self, available: bool) {
        if available {
            self.wakeup.notify_waiters();
        }
    }

    /// The notification [`wake_servers_if`](Self::wake_servers_if) sends.
    pub(crate) fn wakeup(&self) -> &Notify {
        &self.wakeup
    }
}

/// `definition` to save at the storage's clock `now`: its first tick after
/// `now`, or why its schedule does not parse.
fn save_params(
    definition: RecurringDefinition,
    in_code: bool,
    now: DateTime<Utc>,
) -> Result<SaveRecurringParams> {
    let next_run_at = parse_schedule(&definition)?.next_after(now);
    Ok(SaveRecurringParams {
        definition,
        in_code,
        next_run_at,
    })
}

/// The schedule of `definition`, or why it does not parse.
pub(crate) fn parse_schedule(definition: &RecurringDefinition) -> Result<CronSchedule> {
    CronSchedule::parse(&definition.cron, &definition.time_zone).map_err(|source| {
        Error::InvalidSchedule {
            id: definition.id.clone(),
            source,
        }
    })
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").finish_non_exhaustive()
    }
}
