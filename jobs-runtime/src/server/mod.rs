//! The server: fetches jobs from the storage and runs them on its workers.
//!
//! One server is a set of tasks sharing one `Shared` state:
//! - the fetcher (`fetcher.rs`) takes jobs while the server has capacity,
//!   queues in priority order, several per round trip, into a local queue;
//! - the dispatcher (`dispatcher.rs`) hands them to free workers in fetch
//!   order, one task per job;
//! - the executor (`executor.rs`) runs one attempt: decode, run, catch a
//!   panic;
//! - the completer (`completer.rs`) decides retry or failure from the job's
//!   retry policy and records a batch of outcomes in one storage call; a
//!   job's outcome that cannot be stored is recorded alone with a fallback
//!   reason, so it never holds back the others;
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
//! Capacity: a job counts against the server from its fetch until its
//! outcome is recorded, not only while it runs. At most `workers` jobs run
//! and at most `workers + prefetch` are held, so a slow database slows the
//! fetching instead of piling up leases the server cannot renew in time.
//!
//! Shutdown is graceful: stop fetching, give back the jobs fetched ahead
//! that did not start, let running jobs finish within the shutdown timeout,
//! requeue those that did not, record every outcome.

mod builder;
mod completer;
mod dispatcher;
mod elector;
mod executor;
mod expirer;
mod fetcher;
mod heartbeat;
mod lease_keeper;
mod local_queue;
mod notifier;
mod rescuer;
mod scheduler;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{Attempt, JobId, Registry, Result};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

pub use builder::{
    DEFAULT_CLEANUP_INTERVAL, DEFAULT_FETCH_BATCH, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_LEADER_TTL,
    DEFAULT_LEASE, DEFAULT_POLL_INTERVAL, DEFAULT_RESCUE_INTERVAL, DEFAULT_RETENTION,
    DEFAULT_SCHEDULE_INTERVAL, DEFAULT_SERVER_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, ServerBuilder,
    ServerConfig, default_prefetch, default_workers,
};
pub use completer::UNKNOWN_JOB_DELAY;
pub use local_queue::PREFETCH_HORIZON;

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
    /// The attempts this server holds now, from fetch until their outcome
    /// is recorded; the lease keeper renews their leases.
    pub in_flight: Mutex<HashMap<JobId, InFlight>>,
    /// One permit per job held, from fetch until its outcome is recorded:
    /// `workers + prefetch` in all.
    pub capacity: Arc<Semaphore>,
    /// One permit per job running: `workers` in all.
    pub workers: Arc<Semaphore>,
    /// How far ahead of the free workers to fetch.
    pub local: local_queue::LocalQueue,
    /// Until when this server leads the maintenance, if it does (set by the
    /// elector; counted from before it asked, so never past the real term).
    pub leader_until: Mutex<Option<Instant>>,
}

/// An attempt this server holds.
pub(crate) struct InFlight {
    pub attempt: u32,
    /// Cancelled to stop the attempt: at shutdown (see [`Shared::interrupt`])
    /// or when its lease was lost.
    pub cancel: CancellationToken,
    /// Set when the attempt ended and the completer is recording its
    /// outcome: a renewal that no longer finds the job `Processing` then
    /// saw the outcome, not a lost lease.
    pub recording: bool,
}

impl Shared {
    pub fn is_leader(&self) -> bool {
        let until = *self.leader_until.lock().expect("leader lock");
        until.is_some_and(|until| Instant::now() < until)
    }

    /// The attempts held now, sorted by id (so that every storage call locks
    /// rows in one order).
    pub fn in_flight(&self) -> Vec<Attempt> {
        let in_flight = self.in_flight.lock().expect("in-flight lock");
        let mut held: Vec<_> = in_flight
            .iter()
            .map(|(&id, held)| Attempt {
                id,
                attempt: held.attempt,
            })
            .collect();
        held.sort_unstable_by_key(|job| job.id);
        held
    }

    /// Stops every attempt held (shutdown: `interrupt` is cancelled first,
    /// so that they are requeued rather than dropped).
    pub fn interrupt(&self, interrupt: &CancellationToken) {
        interrupt.cancel();
        let in_flight = self.in_flight.lock().expect("in-flight lock");
        for held in in_flight.values() {
            held.cancel.cancel();
        }
    }

    /// Forgets an attempt, unless the job was fetched again since (a newer
    /// attempt is held under the same id).
    pub fn release(&self, job: Attempt) {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        if in_flight
            .get(&job.id)
            .is_some_and(|held| held.attempt == job.attempt)
        {
            in_flight.remove(&job.id);
        }
    }

    /// Marks attempts whose outcome is being recorded (see
    /// [`InFlight::recording`]).
    pub fn mark_recording(&self, jobs: impl IntoIterator<Item = Attempt>) {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        for job in jobs {
            if let Some(held) = in_flight.get_mut(&job.id)
                && held.attempt == job.attempt
            {
                held.recording = true;
            }
        }
    }

    /// Forgets an attempt whose lease the storage no longer holds for this
    /// server, and returns its cancel token to stop it; `None` when the
    /// attempt is gone already or its outcome is being recorded (then the
    /// storage saw the outcome: no lease was lost).
    pub fn lose(&self, job: Attempt) -> Option<CancellationToken> {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        match in_flight.get(&job.id) {
            Some(held) if held.attempt == job.attempt && !held.recording => {
                in_flight.remove(&job.id).map(|held| held.cancel)
            }
            _ => None,
        }
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
    // The fetcher fills the local queue, the dispatcher empties it into
    // free workers; at `stop` both end, and the jobs still in the local
    // queue are given back. Running jobs go on.
    let (local, local_rx) = mpsc::unbounded_channel();
    tokio::join!(
        fetcher::run(&shared, local, outcomes.clone(), &stop),
        dispatcher::run(&shared, &jobs, local_rx, outcomes, &interrupt, &stop),
    );

    jobs.close();
    let timeout = shared.config.shutdown_timeout;
    if tokio::time::timeout(timeout, jobs.wait()).await.is_err() {
        warn!(
            running = jobs.len(),
            ?timeout,
            "jobs did not finish within the shutdown timeout; interrupting and requeueing them"
        );
        shared.interrupt(&interrupt);
        if tokio::time::timeout(timeout, jobs.wait()).await.is_err() {
            warn!(
                running = jobs.len(),
                "jobs ignore their interruption (blocking their thread?); leaving them to be rescued when their lease expires"
            );
        }
    }
    // Every job task that ended has sent its outcome: the completer records
    // what is left and ends, unless the storage stays away.
    let mut completer = completer;
    match tokio::time::timeout(timeout, &mut completer).await {
        Ok(Err(error)) => warn!(%error, "the completer ended abnormally"),
        Ok(Ok(())) => {}
        Err(_) => {
            warn!(
                "outcomes could not be recorded within the shutdown timeout; their jobs will be rescued"
            );
            completer.abort();
        }
    }
    stop_services.cancel();
    services.close();
    services.wait().await;
    info!("server stopped");
}
