use jobs_core::{BatchId, EnqueueParams, Job, NewBatch, NewJob, Result};

use crate::client::new_job;
use crate::{Client, EnqueueOptions};

/// A batch to enqueue: jobs, nested batches and continuations stored
/// together, in one transaction, by [`Client::enqueue_batch`]: all of it
/// is visible, or none.
///
/// A batch is `Started` until every member job has reached a final state
/// and every nested batch has finished; it then finishes `Succeeded` (all
/// succeeded) or `Failed`, and its continuations run (on success by
/// default; see [`then_with`](Self::then_with)). A batch continuation
/// receives the results of the member jobs that succeeded and returned
/// one (not those of nested batches), as a JSON array in member order:
/// take it as `#[parent] results: Vec<T>`. Follow it with
/// [`Storage::batch`](crate::Storage::batch), cancel it with
/// [`Storage::cancel_batch`](crate::Storage::cancel_batch). It expires
/// with its members after the retention, counted from when it finished.
///
/// ```no_run
/// # use jobs_core::Job;
/// # async fn demo<J: Job + Clone, S: Job>(client: jobs_runtime::Client, files: Vec<J>, summary: S) -> jobs_core::Result<()> {
/// use jobs_runtime::Batch;
///
/// let mut batch = Batch::new().description("hash the uploads");
/// for file in files {
///     batch.push(file)?;
/// }
/// batch.then(summary)?; // runs once every file is hashed
/// let id = client.enqueue_batch(batch).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Batch {
    id: BatchId,
    /// Whether the batch is stored already ([`Batch::attach`]).
    stored: bool,
    description: Option<String>,
    jobs: Vec<NewJob>,
    nested: Vec<Batch>,
    continuations: Vec<NewJob>,
}

impl Batch {
    /// A new, empty batch with a new id.
    pub fn new() -> Self {
        Batch {
            id: BatchId::new(),
            stored: false,
            description: None,
            jobs: Vec::new(),
            nested: Vec::new(),
            continuations: Vec::new(),
        }
    }

    /// Jobs, nested batches and continuations to add to the stored batch
    /// `id`, as Hangfire Pro's `BatchJob.Attach`. [`Client::enqueue_batch`]
    /// fails with [`Error::BatchFinished`](jobs_core::Error::BatchFinished)
    /// when it is no longer `Started` (the continuations excepted: they
    /// may await a finished batch, and are decided at once).
    pub fn attach(id: BatchId) -> Self {
        Batch {
            id,
            stored: true,
            ..Batch::new()
        }
    }

    /// The batch's id.
    pub fn id(&self) -> &BatchId {
        &self.id
    }

    /// Words for people, shown with the batch.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a job, on its own queue with its own attempts.
    ///
    /// # Errors
    /// As [`push_with`](Self::push_with).
    pub fn push<J: Job>(&mut self, job: J) -> Result<&mut Self> {
        self.push_with(job, EnqueueOptions::new())
    }

    /// Adds a job with per-job options (queue, delay, attempts). A parent
    /// or batch set in `options` is not used: the job belongs to this
    /// batch.
    ///
    /// # Errors
    /// [`Error::Config`](jobs_core::Error::Config) for an empty queue name,
    /// [`Error::Serialize`](jobs_core::Error::Serialize) when the arguments
    /// do not serialize; the batch is unchanged then.
    pub fn push_with<J: Job>(&mut self, job: J, options: EnqueueOptions) -> Result<&mut Self> {
        let mut job = new_job(&job, options)?;
        job.continuation = None;
        job.batch = Some(self.id.clone());
        self.jobs.push(job);
        Ok(self)
    }

    /// Nests `batch` in this one: this batch finishes once it has.
    pub fn nest(&mut self, batch: Batch) -> &mut Self {
        self.nested.push(batch);
        self
    }

    /// Adds a continuation of the batch, enqueued once every member
    /// succeeded (else deleted).
    ///
    /// # Errors
    /// As [`push_with`](Self::push_with).
    pub fn then<J: Job>(&mut self, job: J) -> Result<&mut Self> {
        self.then_with(job, EnqueueOptions::new())
    }

    /// Adds a continuation of the batch with its options; its
    /// [`continue_on`](EnqueueOptions::continue_on) says on which outcome
    /// of the batch it runs (`ContinueOn::Finished`: whatever the outcome).
    ///
    /// # Errors
    /// As [`push_with`](Self::push_with).
    pub fn then_with<J: Job>(&mut self, job: J, options: EnqueueOptions) -> Result<&mut Self> {
        let mut job = new_job(&job, options.after_batch(self.id.clone()))?;
        job.batch = None;
        self.continuations.push(job);
        Ok(self)
    }

    /// The member jobs and continuations added so far, nested batches'
    /// included.
    pub fn len(&self) -> usize {
        self.jobs.len()
            + self.continuations.len()
            + self.nested.iter().map(Batch::len).sum::<usize>()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The storage call's parameters: this batch (unless stored) and its
    /// nested ones, parents first, with their members, then every
    /// continuation.
    pub(crate) fn into_params(self) -> EnqueueParams {
        let mut params = EnqueueParams::default();
        let mut continuations = Vec::new();
        self.collect(None, &mut params, &mut continuations);
        params.jobs.extend(continuations);
        params
    }

    fn collect(
        self,
        parent: Option<&BatchId>,
        params: &mut EnqueueParams,
        continuations: &mut Vec<NewJob>,
    ) {
        if !self.stored {
            params.batches.push(NewBatch {
                id: self.id.clone(),
                parent: parent.cloned(),
                description: self.description,
            });
        }
        params.jobs.extend(self.jobs);
        continuations.extend(self.continuations);
        for nested in self.nested {
            nested.collect(Some(&self.id), params, continuations);
        }
    }
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// Stores a batch ([`Batch::new`]) with its members, nested batches
    /// and continuations, or adds them to a stored one ([`Batch::attach`]),
    /// in one transaction: all of it, or nothing. Returns the batch's id.
    ///
    /// A new batch with no member finishes (`Succeeded`) at the servers'
    /// next check.
    ///
    /// # Errors
    /// [`Error::BatchNotFound`](jobs_core::Error::BatchNotFound) when an
    /// attached batch does not exist;
    /// [`Error::BatchFinished`](jobs_core::Error::BatchFinished) when
    /// members are added to a batch that finished or was cancelled;
    /// [`Error::Storage`](jobs_core::Error::Storage) when the storage fails;
    /// what a [client filter](crate::ClientFilter) returns when it rejects
    /// a member.
    pub async fn enqueue_batch(&self, batch: Batch) -> Result<BatchId> {
        let id = batch.id.clone();
        let params = self.filtered(batch.into_params()).await?;
        if !params.jobs.is_empty() || !params.batches.is_empty() {
            self.storage().enqueue(params).await?;
        }
        Ok(id)
    }
}
