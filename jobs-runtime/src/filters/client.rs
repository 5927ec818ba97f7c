//! Client filters: run on each job before it is stored.

use jobs_core::{NewJob, Result};

/// Runs on each job a [`Client`](crate::Client) is about to store, in the
/// order the filters were registered, before anything is written (as
/// Hangfire's `IClientFilter.OnCreating`).
///
/// A filter may change the job: add parameters
/// ([`NewJob::parameters`], read by the job with
/// [`JobContext::parameter`](jobs_core::JobContext::parameter)), move it
/// to another queue (checked again after the filters), raise its
/// priority. Its unique and concurrency keys were computed from its
/// arguments before the filters ran: a filter that changes the arguments
/// changes no key. It rejects the job by returning
/// an error, best [`Error::Rejected`](jobs_core::Error::Rejected): the
/// enqueue call returns that error and stores nothing (in
/// [`Client::enqueue_many`](crate::Client::enqueue_many) and a batch,
/// none of the call's jobs).
///
/// ```
/// use jobs_core::{Error, NewJob, Result};
/// use jobs_runtime::ClientFilter;
///
/// /// Tags each job with the tenant it was enqueued for; refuses jobs of
/// /// a tenant that is shut down.
/// struct Tenant(&'static str);
///
/// #[async_trait::async_trait]
/// impl ClientFilter for Tenant {
///     async fn on_enqueue(&self, job: &mut NewJob) -> Result<()> {
///         if self.0 == "closed" {
///             return Err(Error::rejected(&job.name, "the tenant is closed"));
///         }
///         job.parameters.insert("tenant".into(), serde_json::to_string(self.0).unwrap());
///         Ok(())
///     }
/// }
/// ```
///
/// Jobs enqueued with the generated `enqueue_in_tx` helpers (which take
/// the application's transaction, not a client) and the servers' own
/// enqueues (recurring jobs' runs, continuations released) pass no
/// client filter; [`Client::enqueue_in_tx`](crate::Client::enqueue_in_tx)
/// does.
#[async_trait::async_trait]
pub trait ClientFilter: Send + Sync + 'static {
    /// Looks at, changes, or rejects `job` before it is stored.
    ///
    /// # Errors
    /// Any [`Error`](jobs_core::Error) rejects the job; the enqueue call
    /// returns it unchanged.
    async fn on_enqueue(&self, job: &mut NewJob) -> Result<()>;
}
