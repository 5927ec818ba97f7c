//! Enqueueing inside the application's own database transaction: the job
//! exists if and only if the transaction commits (no lost job when the
//! application's write fails after the enqueue, no phantom job run for a
//! row that was rolled back), and no server sees it before the commit.

use std::future::Future;

use jobs_core::{EnqueueParams, Job, JobId, Result};

use crate::EnqueueOptions;
use crate::client::new_job;

/// A connection in the application's own transaction that jobs can be
/// enqueued on: `sqlx`'s [`Transaction`](sqlx::Transaction) (or its
/// connection) on PostgreSQL, with the jobs' tables in the schema
/// [`DEFAULT_SCHEMA`](crate::postgres::DEFAULT_SCHEMA) (see
/// [`InSchema`](crate::postgres::InSchema) for another), or on SQLite, in
/// the database file the storage uses.
///
/// The jobs' rows are written in the transaction, inside a savepoint; on
/// PostgreSQL the servers' `NOTIFY` goes out at commit, on SQLite the
/// commit itself wakes them. A call that fails rolls back to its
/// savepoint: what it wrote is gone and the transaction goes on. A job's
/// `max_attempts` of 0 counts as 1, as through the `Storage` handle.
///
/// On SQLite, begin the transaction with `BEGIN IMMEDIATE`
/// (`pool.begin_with("BEGIN IMMEDIATE")`) when it reads before it writes:
/// a deferred transaction that read while another process wrote cannot
/// write afterwards (`SQLITE_BUSY_SNAPSHOT`).
pub trait EnqueueInTransaction: Send {
    /// Stores `params` in the transaction, as
    /// [`JobStorage::enqueue`](jobs_core::JobStorage::enqueue) does.
    ///
    /// # Errors
    /// As [`JobStorage::enqueue`](jobs_core::JobStorage::enqueue).
    fn enqueue_jobs(
        &mut self,
        params: EnqueueParams,
    ) -> impl Future<Output = Result<Vec<JobId>>> + Send;
}

impl EnqueueInTransaction for sqlx::PgConnection {
    fn enqueue_jobs(
        &mut self,
        params: EnqueueParams,
    ) -> impl Future<Output = Result<Vec<JobId>>> + Send {
        crate::postgres::enqueue_in_savepoint(self, crate::postgres::DEFAULT_SCHEMA, params)
    }
}

impl EnqueueInTransaction for sqlx::SqliteConnection {
    fn enqueue_jobs(
        &mut self,
        params: EnqueueParams,
    ) -> impl Future<Output = Result<Vec<JobId>>> + Send {
        crate::sqlite::enqueue_in_savepoint(self, params)
    }
}

impl<DB> EnqueueInTransaction for sqlx::Transaction<'_, DB>
where
    DB: sqlx::Database,
    DB::Connection: EnqueueInTransaction,
{
    fn enqueue_jobs(
        &mut self,
        params: EnqueueParams,
    ) -> impl Future<Output = Result<Vec<JobId>>> + Send {
        (**self).enqueue_jobs(params)
    }
}

/// Enqueues `job` with `options` in the application's transaction `tx`;
/// what the generated `enqueue_in_tx` helpers call.
///
/// # Errors
/// [`Error::Config`](jobs_core::Error::Config) for an empty queue name,
/// [`Error::Serialize`](jobs_core::Error::Serialize) when the arguments do
/// not serialize, else as [`EnqueueInTransaction::enqueue_jobs`].
pub async fn enqueue_in_tx<J: Job>(
    tx: &mut impl EnqueueInTransaction,
    job: J,
    options: EnqueueOptions,
) -> Result<JobId> {
    let job = new_job(&job, options)?;
    let counted = crate::metrics::Enqueueing::of(std::slice::from_ref(&job));
    let ids = tx.enqueue_jobs(EnqueueParams::jobs(vec![job])).await?;
    // Counted when stored in the transaction: a rollback does not uncount.
    counted.stored();
    Ok(ids[0])
}
