use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::{EnqueueParams, Error, Job, JobId, NewJob, Result, Schedule};

use crate::Storage;

/// Enqueues and schedules jobs.
///
/// Cheap to clone. `#[job]` generates typed helpers that call it
/// (`send_welcome_email::enqueue(&client, 42, "welcome".into())`); it can
/// also be called with the argument struct (`client.enqueue(SendWelcomeEmail
/// { .. })`).
#[derive(Clone, Debug)]
pub struct Client {
    storage: Storage,
}

impl Client {
    /// A client over a storage.
    pub fn new(storage: Storage) -> Self {
        Client { storage }
    }

    /// The storage this client writes to.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Enqueues a job on its queue ([`Job::QUEUE`]); returns its id.
    ///
    /// # Errors
    /// [`Error::Serialize`] when the arguments do not serialize;
    /// [`Error::Storage`] when the storage fails (nothing is stored then).
    pub async fn enqueue<J: Job>(&self, job: J) -> Result<JobId> {
        self.store(vec![new_job(&job, Schedule::Now)?]).await.map(first)
    }

    /// Schedules a job to be enqueued once `delay` has passed, counted from
    /// the storage's clock when the job is stored (not this machine's);
    /// returns its id.
    ///
    /// # Errors
    /// As [`enqueue`](Self::enqueue).
    pub async fn schedule_in<J: Job>(&self, job: J, delay: Duration) -> Result<JobId> {
        self.store(vec![new_job(&job, Schedule::In(delay))?])
            .await
            .map(first)
    }

    /// Schedules a job to be enqueued at `at` (UTC); a time in the past
    /// enqueues it at the next promotion. Returns its id.
    ///
    /// # Errors
    /// As [`enqueue`](Self::enqueue).
    pub async fn schedule_at<J: Job>(&self, job: J, at: DateTime<Utc>) -> Result<JobId> {
        self.store(vec![new_job(&job, Schedule::At(at))?])
            .await
            .map(first)
    }

    /// Enqueues many jobs of one type in one transaction: all are stored or
    /// none. Returns their ids in order.
    ///
    /// # Errors
    /// As [`enqueue`](Self::enqueue).
    pub async fn enqueue_many<J: Job>(
        &self,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<Vec<JobId>> {
        let jobs = jobs
            .into_iter()
            .map(|job| new_job(&job, Schedule::Now))
            .collect::<Result<Vec<_>>>()?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.store(jobs).await
    }

    async fn store(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        self.storage.enqueue(EnqueueParams { jobs }).await
    }
}

fn first(ids: Vec<JobId>) -> JobId {
    ids[0]
}

fn new_job<J: Job>(job: &J, schedule: Schedule) -> Result<NewJob> {
    let args = serde_json::to_string(job).map_err(|source| Error::Serialize {
        job: J::NAME,
        source,
    })?;
    Ok(NewJob {
        name: J::NAME.to_owned(),
        queue: J::QUEUE.to_owned(),
        args,
        max_attempts: J::RETRY_POLICY.max_attempts(),
        schedule,
    })
}
