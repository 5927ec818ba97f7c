use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::{
    BatchId, Concurrency, Continuation, ContinueOn, EnqueueParams, Error, Job, JobId,
    JobParameters, NewJob, Parent, Result, Schedule, Uniqueness, canonical_json,
};

use crate::{ClientFilter, Storage};

/// Enqueues and schedules jobs.
///
/// Cheap to clone. `#[job]` generates typed helpers that call it
/// (`send_welcome_email::enqueue(&client, 42, "welcome".into())`); it can
/// also be called with the argument struct (`client.enqueue(SendWelcomeEmail
/// { .. })`).
///
/// Every way to enqueue one job goes through [`enqueue_with`](Self::enqueue_with)
/// and its [`EnqueueOptions`]; [`enqueue`](Self::enqueue),
/// [`schedule_in`](Self::schedule_in) and [`schedule_at`](Self::schedule_at)
/// are shorthands for its common options.
#[derive(Clone)]
pub struct Client {
    storage: Storage,
    filters: Arc<[Arc<dyn ClientFilter>]>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("storage", &self.storage)
            .field("filters", &self.filters.len())
            .finish()
    }
}

/// Builds a [`Client`] with filters; from [`Client::builder`].
///
/// ```no_run
/// # async fn demo(storage: jobs_runtime::Storage, tenant: impl jobs_runtime::ClientFilter) {
/// let client = jobs_runtime::Client::builder(storage).filter(tenant).build();
/// # }
/// ```
#[must_use]
pub struct ClientBuilder {
    storage: Storage,
    filters: Vec<Arc<dyn ClientFilter>>,
}

impl ClientBuilder {
    /// Adds a [`ClientFilter`], run on each job before it is stored,
    /// after the filters added before it.
    pub fn filter(mut self, filter: impl ClientFilter) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        Client {
            storage: self.storage,
            filters: self.filters.into(),
        }
    }
}

impl Client {
    /// A client over a storage, without filters.
    pub fn new(storage: Storage) -> Self {
        Client::builder(storage).build()
    }

    /// A builder for a client over `storage` with
    /// [filters](crate::filters).
    pub fn builder(storage: Storage) -> ClientBuilder {
        ClientBuilder {
            storage,
            filters: Vec::new(),
        }
    }

    /// Runs the client filters on each job of `params`, in order, then
    /// checks again the queue a filter may have changed.
    ///
    /// # Errors
    /// The first error a filter returns: the job is rejected;
    /// [`Error::Config`] for a queue a filter left empty.
    pub(crate) async fn filtered(&self, mut params: EnqueueParams) -> Result<EnqueueParams> {
        if self.filters.is_empty() {
            return Ok(params);
        }
        for job in &mut params.jobs {
            for filter in self.filters.iter() {
                filter.on_enqueue(job).await?;
            }
            job.queue = checked_queue(&job.name, &job.queue)?;
        }
        Ok(params)
    }

    /// Enqueues `job` with `options` in the application's transaction
    /// `tx`, after this client's filters; as the generated
    /// `enqueue_in_tx` helpers (which run no filter) otherwise.
    ///
    /// # Errors
    /// As [`enqueue_in_tx`](crate::enqueue_in_tx), and what a filter
    /// returns.
    pub async fn enqueue_in_tx<J: Job>(
        &self,
        tx: &mut impl crate::EnqueueInTransaction,
        job: J,
        options: EnqueueOptions,
    ) -> Result<JobId> {
        let params = self
            .filtered(EnqueueParams::jobs(vec![new_job(&job, options)?]))
            .await?;
        tx.enqueue_jobs(params).await.map(first)
    }

    /// The storage this client writes to.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Enqueues a job with per-call `options`; returns its id.
    ///
    /// What `options` leaves unset comes from the job: its queue
    /// ([`Job::QUEUE`]), its attempts ([`RetryPolicy::max_attempts`] of
    /// [`Job::RETRY_POLICY`]), and no delay (stored `Enqueued`).
    ///
    /// ```no_run
    /// # async fn demo<J: jobs_core::Job>(client: jobs_runtime::Client, job: J) -> jobs_core::Result<()> {
    /// use std::time::Duration;
    /// use jobs_runtime::EnqueueOptions;
    ///
    /// let options = EnqueueOptions::new()
    ///     .queue("critical")
    ///     .delay(Duration::from_secs(60))
    ///     .max_attempts(3);
    /// let id = client.enqueue_with(job, options).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the job's queue (from `options` or
    /// [`Job::QUEUE`]) is empty or only white space: no server could serve
    /// it (the rule of [`ServerBuilder::queues`](crate::ServerBuilder::queues)); nothing is
    /// stored then.
    /// [`Error::Serialize`] when the arguments do not serialize;
    /// [`Error::Storage`] when the storage fails (nothing is stored then).
    ///
    /// [`RetryPolicy::max_attempts`]: jobs_core::RetryPolicy::max_attempts
    pub async fn enqueue_with<J: Job>(&self, job: J, options: EnqueueOptions) -> Result<JobId> {
        self.store(vec![new_job(&job, options)?]).await.map(first)
    }

    /// Enqueues a job on its queue ([`Job::QUEUE`]); returns its id.
    /// [`enqueue_with`](Self::enqueue_with) with no option.
    ///
    /// # Errors
    /// As [`enqueue_with`](Self::enqueue_with).
    pub async fn enqueue<J: Job>(&self, job: J) -> Result<JobId> {
        self.enqueue_with(job, EnqueueOptions::new()).await
    }

    /// Schedules a job to be enqueued once `delay` has passed, counted from
    /// the storage's clock when the job is stored (not this machine's);
    /// returns its id. [`enqueue_with`](Self::enqueue_with) with
    /// [`EnqueueOptions::delay`].
    ///
    /// # Errors
    /// As [`enqueue_with`](Self::enqueue_with).
    pub async fn schedule_in<J: Job>(&self, job: J, delay: Duration) -> Result<JobId> {
        self.enqueue_with(job, EnqueueOptions::new().delay(delay))
            .await
    }

    /// Schedules a job to be enqueued at `at` (UTC); a time in the past
    /// enqueues it at the next promotion. Returns its id.
    /// [`enqueue_with`](Self::enqueue_with) with [`EnqueueOptions::at`].
    ///
    /// # Errors
    /// As [`enqueue_with`](Self::enqueue_with).
    pub async fn schedule_at<J: Job>(&self, job: J, at: DateTime<Utc>) -> Result<JobId> {
        self.enqueue_with(job, EnqueueOptions::new().at(at)).await
    }

    /// Enqueues many jobs of one type in one transaction: all are stored or
    /// none. Returns their ids in order.
    ///
    /// # Errors
    /// As [`enqueue_with`](Self::enqueue_with) (nothing is stored then).
    pub async fn enqueue_many<J: Job>(
        &self,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<Vec<JobId>> {
        let jobs = jobs
            .into_iter()
            .map(|job| new_job(&job, EnqueueOptions::new()))
            .collect::<Result<Vec<_>>>()?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.store(jobs).await
    }

    /// Cancels a job that has not finished; see [`Storage::cancel`]: a
    /// waiting job never runs, a running one sees its cancellation token
    /// fire, and both end `Deleted` with the reason "cancelled". Returns
    /// `false` when the job had finished already.
    ///
    /// ```no_run
    /// # async fn demo(client: jobs_runtime::Client, id: jobs_core::JobId) -> jobs_core::Result<()> {
    /// if !client.cancel(id).await? {
    ///     println!("job {id} had finished already");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Storage::cancel`]: [`Error::JobNotFound`] for an unknown id.
    pub async fn cancel(&self, id: impl Into<JobId>) -> Result<bool> {
        self.storage.cancel(id).await
    }

    async fn store(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        let params = self.filtered(EnqueueParams::jobs(jobs)).await?;
        self.storage.enqueue(params).await
    }
}

/// The options of one enqueue, for [`Client::enqueue_with`] and the
/// `enqueue_with` helper that `#[job]` generates
/// (`send_welcome_email::enqueue_with(&client, options, 42, "welcome".into())`).
///
/// Start from [`EnqueueOptions::new`] (or `default()`: no option) and set
/// what this call needs; an option left unset takes the job's own value
/// (from its `#[job(...)]` keys or its [`Job`] impl).
///
/// ```
/// use std::time::Duration;
/// use jobs_runtime::EnqueueOptions;
///
/// let options = EnqueueOptions::new()
///     .queue("critical")
///     .delay(Duration::from_secs(30))
///     .max_attempts(1);
/// ```
///
/// Every per-call option lives here, as one setter: an option added later
/// (a priority, a unique key) is a new field and setter of this type, which
/// `Client::enqueue_with` and every generated `enqueue_with` helper then
/// take without a new method or helper per option. The type is
/// `#[non_exhaustive]` for that reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnqueueOptions {
    queue: Option<String>,
    schedule: Schedule,
    max_attempts: Option<u32>,
    priority: Option<i16>,
    unique: Option<Uniqueness>,
    unique_key: Option<String>,
    concurrency: Option<(Concurrency, Option<String>)>,
    parent: Option<Parent>,
    continue_on: ContinueOn,
    batch: Option<BatchId>,
    parameters: JobParameters,
}

impl EnqueueOptions {
    /// Sets the job parameter `name` to `value` (see
    /// [`JobParameters`]); the job reads it with
    /// [`JobContext::parameter`](jobs_core::JobContext::parameter). Client
    /// filters may add more. An invalid name or a value longer than
    /// [`MAX_PARAMETER_LEN`](jobs_core::MAX_PARAMETER_LEN) makes the
    /// enqueue fail with [`Error::Config`].
    ///
    /// ```
    /// use jobs_runtime::EnqueueOptions;
    ///
    /// let options = EnqueueOptions::new().parameter("tenant", "acme");
    /// ```
    #[must_use]
    pub fn parameter(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.parameters
            .insert(name.into(), value.into().to_string());
        self
    }

    /// No option: the job's queue and attempts, enqueued at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// The queue to enqueue on, instead of the job's ([`Job::QUEUE`],
    /// `#[job(queue = "...")]`, `"default"` unless given). A queue name that
    /// is empty or only white space makes [`Client::enqueue_with`] fail
    /// with [`Error::Config`].
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Stores the job `Scheduled`, due once `delay` has passed, counted from
    /// the storage's clock when it is stored, not this machine's
    /// ([`Schedule::In`]). The servers' scheduler enqueues it when it is due
    /// (within its schedule interval). A delay longer than
    /// [`MAX_RETRY_DELAY`](jobs_core::MAX_RETRY_DELAY) (100 years) is
    /// shortened to it; a zero delay still stores it `Scheduled`.
    ///
    /// Replaces an earlier [`at`](Self::at): a job has one due time.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.schedule = Schedule::In(delay);
        self
    }

    /// Stores the job `Scheduled`, due at `at` (UTC) ([`Schedule::At`]); a
    /// time in the past enqueues it at the servers' next promotion.
    ///
    /// Replaces an earlier [`delay`](Self::delay): a job has one due time.
    #[must_use]
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.schedule = Schedule::At(at);
        self
    }

    /// The most attempts this job gets, the first one included (retries +
    /// 1), instead of the job's ([`RetryPolicy::max_attempts`] of
    /// [`Job::RETRY_POLICY`]: `#[job(retries = N)]` + 1, 11 unless given).
    /// The delay between attempts stays the job's backoff. 0 counts as 1:
    /// a job always gets its first attempt.
    ///
    /// [`RetryPolicy::max_attempts`]: jobs_core::RetryPolicy::max_attempts
    #[must_use]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Its priority within its queue, instead of the job's
    /// ([`Job::PRIORITY`], `#[job(priority = N)]`, 0 unless given): a job
    /// with a lower number is fetched before the jobs with higher numbers
    /// waiting in the same queue, whatever their enqueue order; jobs of one
    /// priority keep their enqueue order. Queues keep their own order
    /// ([`ServerBuilder::queues`](crate::ServerBuilder::queues)): priority
    /// orders jobs within a queue only.
    #[must_use]
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Makes this job unique as `uniqueness` says, instead of as the job
    /// declares (`#[job(unique)]`, [`Job::UNIQUE`]): while a job of its key
    /// is in one of the states (within the period), the enqueue stores
    /// nothing and returns that job's id. The key is the job's name and
    /// its [`unique_key`](Self::unique_key), else its own (the arguments
    /// `#[job(unique(by = [...]))]` names, else all its arguments).
    ///
    /// A unique job cannot be a continuation or join a batch: the enqueue
    /// fails with [`Error::Config`].
    #[must_use]
    pub fn unique(mut self, uniqueness: Uniqueness) -> Self {
        self.unique = Some(uniqueness);
        self
    }

    /// The text of this job's unique key (with its name), instead of its
    /// arguments: `"invoice-2024-17"`. Makes the job unique (as it
    /// declares, else while a job of the key waits or runs) when it is
    /// not.
    #[must_use]
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// Puts this job under a concurrency limit of its name, instead of the
    /// job's own (`#[job(concurrency = N)]`): at most `limit` jobs of its
    /// name run at once, on every server. The key is the name's, shared
    /// with the job's own limit; give the jobs of one key one limit.
    #[must_use]
    pub fn concurrency(mut self, limit: u32) -> Self {
        self.concurrency = Some((Concurrency::per_name(limit), None));
        self
    }

    /// Puts this job under a concurrency limit of its name and `key`
    /// (a customer's id): at most `limit` jobs of the name and key run at
    /// once, on every server; other keys are not held back. To share the
    /// limit of `#[job(concurrency(limit = 1, by = [customer]))]`, give the
    /// key that `by` gives: the JSON array of the arguments it names
    /// (`"[42]"`).
    #[must_use]
    pub fn concurrency_per_key(mut self, limit: u32, key: impl Into<String>) -> Self {
        self.concurrency = Some((Concurrency::per_key(limit), Some(key.into())));
        self
    }

    /// Makes the job a continuation of the job `parent`: stored
    /// `Awaiting`, it is enqueued when the parent reaches a final state it
    /// awaits ([`continue_on`](Self::continue_on), `Succeeded` unless set),
    /// else deleted; it receives the parent's result. A delay or time set
    /// is not used. The typed `continue_after` helpers that `#[job]`
    /// generates set this and check the result's type.
    ///
    /// Replaces an earlier [`after_batch`](Self::after_batch).
    #[must_use]
    pub fn after(mut self, parent: impl Into<JobId>) -> Self {
        self.parent = Some(Parent::Job(parent.into()));
        self
    }

    /// Makes the job a continuation of the batch `batch`: enqueued when
    /// every member of the batch has finished, as
    /// [`continue_on`](Self::continue_on) says (`Succeeded`: all of them
    /// succeeded); it receives the results of the member jobs that
    /// succeeded and returned one, as a JSON array in member order (at most
    /// [`MAX_BATCH_RESULTS_LEN`](jobs_core::MAX_BATCH_RESULTS_LEN)).
    ///
    /// Replaces an earlier [`after`](Self::after).
    #[must_use]
    pub fn after_batch(mut self, batch: BatchId) -> Self {
        self.parent = Some(Parent::Batch(batch));
        self
    }

    /// Which final states of the parent (set by [`after`](Self::after) or
    /// [`after_batch`](Self::after_batch)) enqueue the job; in the others it
    /// is deleted. `ContinueOn::Succeeded` unless set.
    #[must_use]
    pub fn continue_on(mut self, on: ContinueOn) -> Self {
        self.continue_on = on;
        self
    }

    /// Adds the job to the existing batch `batch`, which must still be
    /// `Started` (else [`Error::BatchFinished`]); the batch finishes only
    /// once this job has too.
    #[must_use]
    pub fn batch(mut self, batch: BatchId) -> Self {
        self.batch = Some(batch);
        self
    }
}

fn first(ids: Vec<JobId>) -> JobId {
    ids[0]
}

/// The job to store: `options` where set, else the job's own values.
pub(crate) fn new_job<J: Job>(job: &J, options: EnqueueOptions) -> Result<NewJob> {
    let queue = options.queue_or(J::NAME, J::QUEUE)?;
    let args = arguments(job)?;
    let uniqueness = options
        .unique
        .or(J::UNIQUE)
        .or_else(|| options.unique_key.is_some().then(Uniqueness::new));
    if let Some(uniqueness) = &uniqueness {
        Uniqueness::check_states(uniqueness.states)
            .map_err(|problem| Error::Config(format!("job `{}`: {problem}", J::NAME)))?;
    }
    let unique = uniqueness.map(|uniqueness| {
        let key = options
            .unique_key
            .clone()
            .or_else(|| job.unique_key().map(|key| canonical_json(&key)))
            .unwrap_or_else(|| canonical_json(&args));
        uniqueness.key(J::NAME, &key)
    });
    let concurrency = match &options.concurrency {
        Some((limit, key)) => Some(limit.key(J::NAME, key.as_deref())),
        None => J::CONCURRENCY.map(|limit| {
            let key = job.concurrency_key().map(|key| canonical_json(&key));
            limit.key(J::NAME, key.as_deref())
        }),
    };
    Ok(NewJob {
        name: J::NAME.to_owned(),
        queue,
        args,
        max_attempts: options
            .max_attempts
            .unwrap_or(J::RETRY_POLICY.max_attempts()),
        schedule: options.schedule,
        priority: options.priority.unwrap_or(J::PRIORITY),
        reason: None,
        data: None,
        continuation: options.parent.map(|parent| Continuation {
            parent,
            on: options.continue_on,
        }),
        batch: options.batch,
        unique,
        concurrency,
        parameters: options.parameters,
        trace_context: crate::trace_context::current(),
    })
}

/// The job's arguments as the JSON document stored.
pub(crate) fn arguments<J: Job>(job: &J) -> Result<String> {
    serde_json::to_string(job).map_err(|source| Error::Serialize {
        job: J::NAME,
        source,
    })
}

/// `queue` for the job named `job`, refused when empty or only white
/// space, the rule of `ServerBuilder::queues`: no server could serve it.
pub(crate) fn checked_queue(job: &str, queue: &str) -> Result<String> {
    if queue.trim().is_empty() {
        return Err(Error::Config(format!(
            "job `{job}` cannot be enqueued on queue {queue:?}: a queue name must not be empty, no server can serve it"
        )));
    }
    Ok(queue.to_owned())
}

impl EnqueueOptions {
    /// The queue to store the job named `job` on: the one set, else
    /// `default` (the job's own); see [`checked_queue`].
    fn queue_or(&self, job: &str, default: &str) -> Result<String> {
        checked_queue(job, self.queue.as_deref().unwrap_or(default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_options_leave_the_jobs_own_values() {
        let options = EnqueueOptions::new();
        assert_eq!(options, EnqueueOptions::default());
        assert_eq!(options.queue_or("ping", "pings").unwrap(), "pings");
        assert_eq!(options.schedule, Schedule::Now);
        assert_eq!(options.max_attempts, None);
    }

    #[test]
    fn setters_set_one_option_each() {
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let options = EnqueueOptions::new()
            .queue("critical")
            .max_attempts(7)
            .delay(Duration::from_secs(5));
        assert_eq!(options.queue_or("ping", "pings").unwrap(), "critical");
        assert_eq!(options.max_attempts, Some(7));
        assert_eq!(options.schedule, Schedule::In(Duration::from_secs(5)));
        // A job has one due time: the last one set.
        assert_eq!(options.at(at).schedule, Schedule::At(at));
    }

    #[test]
    fn an_empty_queue_name_is_refused() {
        for (set, default) in [(Some(""), "pings"), (Some(" \t"), "pings"), (None, "")] {
            let mut options = EnqueueOptions::new();
            if let Some(queue) = set {
                options = options.queue(queue);
            }
            let error = options.queue_or("ping", default).unwrap_err();
            assert!(
                matches!(&error, Error::Config(message) if message.contains("job `ping`")),
                "{error}"
            );
        }
    }
}
