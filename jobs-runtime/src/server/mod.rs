//! The server: fetches jobs from the storage and runs them on its workers.
//!
//! One server is a set of tasks sharing one `Shared` state:
//! - the fetcher (`fetcher.rs`) takes jobs when workers are free, queues in
//!   priority order, several per round trip, and spawns one task per job;
//! - the executor (`executor.rs`) runs one attempt: decode, run, catch a
//!   panic;
//! - the completer (`completer.rs`) records outcomes, successes in batches,
//!   and decides retry or failure from the job's retry policy;
//! - the lease keeper (`lease_keeper.rs`) extends the leases of running jobs;
//! - the notifier (`notifier.rs`) wakes the fetcher on the storage's
//!   notifications (PostgreSQL `LISTEN`/`NOTIFY`);
//! - the heartbeat (`heartbeat.rs`) registers the server and keeps it alive;
//! - the elector (`elector.rs`) keeps one server of the storage leader, and
//!   only the leader runs the maintenance:
//!   - the scheduler (`scheduler.rs`) enqueues due `Scheduled` jobs;
//!   - the rescuer (`rescuer.rs`) gives back jobs whose server died;
//!   - the expirer (`expirer.rs`) deletes old finished jobs and silent servers.
//!
//! Shutdown is graceful: stop fetching, let running jobs finish within the
//! shutdown timeout, requeue those that did not, record every outcome.

mod builder;
mod completer;
mod elector;
mod executor;
mod expirer;
mod fetcher;
mod heartbeat;
mod lease_keeper;
mod notifier;
mod rescuer;
mod scheduler;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs_core::{Completion, JobId, Registry, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

pub use builder::{
    DEFAULT_FETCH_BATCH, DEFAULT_LEASE, DEFAULT_POLL_INTERVAL, DEFAULT_RESCUE_INTERVAL,
    DEFAULT_SCHEDULE_INTERVAL, DEFAULT_SHUTDOWN_TIMEOUT, ServerBuilder, ServerConfig,
    default_workers,
};

use crate::Storage;

/// Runs jobs. Build one with [`Server::builder`].
///
/// ```no_run
/// # async fn demo(storage: jobs_runtime::Storage) -> jobs_core::Result<()> {
/// jobs_runtime::Server::builder(storage)
///     .workers(8)
///     .queues(["critical", "default", "mail"])
///     .run_until(async { tokio::signal::ctrl_c().await.ok(); })
///     .await
/// # }
/// ```
pub struct Server;

impl Server {
    /// A builder for a server over `storage`, with the defaults of
    /// [`ServerConfig`].
    pub fn builder(storage: Storage) -> ServerBuilder {
        ServerBuilder::new(storage)
    }
}

/// A running server, from [`ServerBuilder::start`].
///
/// Dropping the handle asks the server to stop; [`shutdown`](Self::shutdown)
/// also waits until it has.
pub struct ServerHandle {
    id: String,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The server's id, as recorded on the jobs it runs (`host:pid:random`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops gracefully: no more fetching; running jobs get the shutdown
    /// timeout to finish, then are interrupted and requeued; every outcome
    /// is recorded before this returns.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            warn!(server = %self.id, %error, "the server task ended abnormally");
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the tasks of one server share.
pub(crate) struct Shared {
    pub storage: Storage,
    pub registry: Registry,
    pub config: ServerConfig,
    pub id: String,
    /// The attempts this server runs now; the lease keeper extends them.
    pub in_flight: Mutex<HashMap<JobId, u32>>,
    /// Whether this server is the maintenance leader (set by the elector).
    pub leader: AtomicBool,
}

impl Shared {
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> Vec<Completion> {
        let in_flight = self.in_flight.lock().expect("in-flight lock");
        in_flight
            .iter()
            .map(|(&id, &attempt)| Completion { id, attempt })
            .collect()
    }
}

/// Sleeps `duration` unless `cancel` fires first; returns whether it fired.
pub(crate) async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => false,
        _ = cancel.cancelled() => true,
    }
}

fn start(shared: Shared) -> ServerHandle {
    let stop = CancellationToken::new();
    let id = shared.id.clone();
    let span = info_span!("server", server = %id);
    let task = tokio::spawn(run(Arc::new(shared), stop.clone()).instrument(span));
    ServerHandle {
        id,
        stop,
        task: Some(task),
    }
}

async fn run_until(shared: Shared, signal: impl Future) -> Result<()> {
    let handle = start(shared);
    signal.await;
    info!(server = %handle.id, "stopping");
    handle.shutdown().await;
    Ok(())
}

async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    info!(
        workers = shared.config.workers,
        queues = ?shared.config.queues,
        jobs = shared.registry.len(),
        "server started"
    );
    let services = TaskTracker::new();
    let stop_services = CancellationToken::new();
    let (outcomes, outcome_rx) = mpsc::unbounded_channel();
    let completer = services.spawn(completer::run(shared.clone(), outcome_rx));
    services.spawn(scheduler::run(shared.clone(), stop_services.clone()));
    services.spawn(rescuer::run(shared.clone(), stop_services.clone()));
    services.spawn(expirer::run(shared.clone(), stop_services.clone()));
    services.spawn(lease_keeper::run(shared.clone(), stop_services.clone()));
    services.spawn(notifier::run(shared.clone(), stop_services.clone()));
    services.spawn(heartbeat::run(shared.clone(), stop_services.clone()));
    services.spawn(elector::run(shared.clone(), stop_services.clone()));

    let jobs = TaskTracker::new();
    let interrupt = CancellationToken::new();
    fetcher::run(&shared, &jobs, outcomes, &interrupt, &stop).await;

    jobs.close();
    let timeout = shared.config.shutdown_timeout;
    if tokio::time::timeout(timeout, jobs.wait()).await.is_err() {
        warn!(
            running = jobs.len(),
            ?timeout,
            "jobs did not finish within the shutdown timeout; interrupting and requeueing them"
        );
        interrupt.cancel();
        jobs.wait().await;
    }
    // Every job task has sent its outcome and dropped its sender: the
    // completer records what is left and ends.
    if let Err(error) = completer.await {
        warn!(%error, "the completer ended abnormally");
    }
    stop_services.cancel();
    services.close();
    services.wait().await;
    info!("server stopped");
}
