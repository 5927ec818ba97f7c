//! The server: fetches jobs from the storage and runs them on its workers.
//!
//! One server is a set of tasks, one file each:
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
//! - the job log writer (`job_log_writer.rs`) writes what running jobs
//!   log and their progress, gathered, in one storage call;
//! - the dashboard, when asked for (`ServerBuilder::dashboard`), served
//!   until the server stops;
//! - the heartbeat (`heartbeat.rs`) registers the server and keeps it alive;
//! - the elector (`elector.rs`) keeps one server of the storage leader, and
//!   starts the leader-only services (`maintenance.rs`) when this server
//!   leads and stops them when it does not; none of them asks:
//!   - the scheduler (`scheduler.rs`) enqueues due `Scheduled` jobs;
//!   - the rescuer (`rescuer.rs`) gives back jobs whose server died;
//!   - the expirer (`expirer.rs`) deletes old finished jobs;
//!   - the server pruner (`server_pruner.rs`) forgets silent servers.
//!
//! The hot path (fetcher, dispatcher, executor, completer) shares one
//! `Shared` value: the attempts held (`held.rs`), the capacity and the
//! local queue. Every other service is given only the storage and its own
//! settings, and runs the loop of `periodic.rs`.
//!
//! Capacity: a job counts against the server from its fetch until its
//! outcome is recorded, not only while it runs. At most `workers` jobs run
//! and at most `workers + prefetch` are held, so a slow database slows the
//! fetching instead of piling up leases the server cannot renew in time.
//!
//! Shutdown is graceful: stop fetching, give back the jobs fetched ahead
//! that did not start, fire the running jobs' cancellation tokens and let
//! them finish within the shutdown timeout, requeue those that did not,
//! record every outcome.

mod builder;
mod completer;
mod continuation_check;
mod counters_aggregator;
mod dispatcher;
mod elector;
mod executor;
mod expirer;
mod fetcher;
mod heartbeat;
mod held;
mod job_log_writer;
mod lease_keeper;
mod local_queue;
mod maintenance;
mod notifier;
mod panic_trace;
mod periodic;
mod queue_metrics;
mod recurring_scheduler;
mod recurring_sync;
mod rescuer;
mod scheduler;
mod server_pruner;

use std::future::Future;
use std::sync::Arc;

use jobs_core::{CancelReason, Registry, Result, ServerInfo};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

pub use builder::{
    DEFAULT_CANCEL_GRACE, DEFAULT_CLEANUP_INTERVAL, DEFAULT_CONTINUATION_CHECK_INTERVAL,
    DEFAULT_FETCH_BATCH, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_LEADER_TTL, DEFAULT_LEASE,
    DEFAULT_POLL_INTERVAL, DEFAULT_QUEUE_METRICS_INTERVAL, DEFAULT_RECURRING_CHECK_INTERVAL,
    DEFAULT_RESCUE_INTERVAL, DEFAULT_RETENTION, DEFAULT_SCHEDULE_INTERVAL, DEFAULT_SERVER_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT, ServerBuilder, ServerConfig, default_prefetch, default_workers,
};
pub use completer::UNKNOWN_JOB_DELAY;
pub use local_queue::PREFETCH_HORIZON;

use crate::Storage;
use crate::filters::{ServerFilter, StateFilters, StateReceiver, StateTeller};

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
    dashboard: Option<std::net::SocketAddr>,
}

impl ServerHandle {
    /// Where the dashboard listens, when the server serves one
    /// ([`ServerBuilder::dashboard`]): the port bound, also when 0 was
    /// asked for.
    pub fn dashboard_address(&self) -> Option<std::net::SocketAddr> {
        self.dashboard
    }

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

/// What the tasks of the hot path (fetcher, dispatcher, executor,
/// completer) share; the other services get only what they need.
pub(crate) struct Shared {
    pub storage: Storage,
    pub registry: Registry,
    pub config: ServerConfig,
    pub id: String,
    /// The attempts this server holds now, from fetch until their outcome
    /// is recorded; the lease keeper renews their leases.
    pub held: Arc<held::Held>,
    /// One permit per job held, from fetch until its outcome is recorded:
    /// `workers + prefetch` in all.
    pub capacity: Arc<Semaphore>,
    /// One permit per job running: `workers` in all.
    pub workers: Arc<Semaphore>,
    /// How far ahead of the free workers to fetch.
    pub local: local_queue::LocalQueue,
    /// The server filters, in the order registered.
    pub filters: Vec<Arc<dyn ServerFilter>>,
    /// Where the attempts' contexts send their log, progress and
    /// parameters.
    pub log_sink: Arc<job_log_writer::JobLogSink>,
    /// Tells the state filters of the moves this server makes.
    pub states: StateTeller,
}

/// What the server's background tasks read, made with [`Shared`].
pub(crate) struct Background {
    pub log: job_log_writer::Receiver,
    pub state_filters: StateFilters,
    pub states: StateReceiver,
    /// The dashboard's listener, bound, and its routes.
    pub dashboard: Option<(std::net::TcpListener, axum::Router)>,
}

impl Shared {
    /// How this server announces itself in the registry.
    fn info(&self) -> ServerInfo {
        ServerInfo {
            id: self.id.clone(),
            workers: u32::try_from(self.config.workers).unwrap_or(u32::MAX),
            queues: self.config.queues.clone(),
            jobs: self
                .registry
                .iter()
                .map(|job| job.name.to_owned())
                .collect(),
        }
    }
}

fn start((shared, background): (Shared, Background)) -> ServerHandle {
    panic_trace::install();
    let stop = CancellationToken::new();
    let id = shared.id.clone();
    let span = info_span!("server", server = %id);
    let dashboard = background
        .dashboard
        .as_ref()
        .and_then(|(listener, _)| listener.local_addr().ok());
    let task = tokio::spawn(run(Arc::new(shared), background, stop.clone()).instrument(span));
    ServerHandle {
        id,
        stop,
        task: Some(task),
        dashboard,
    }
}

async fn run_until(server: (Shared, Background), signal: impl Future) -> Result<()> {
    let handle = start(server);
    signal.await;
    info!(server = %handle.id, "stopping");
    handle.shutdown().await;
    Ok(())
}

async fn run(shared: Arc<Shared>, background: Background, stop: CancellationToken) {
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
    let storage = &shared.storage;
    services.spawn(lease_keeper::run(
        storage.clone(),
        shared.held.clone(),
        shared.config.lease,
        stop_services.clone(),
    ));
    services.spawn(notifier::run(storage.clone(), stop_services.clone()));
    services.spawn(recurring_sync::run(
        storage.clone(),
        shared.registry.iter().map(|job| job.name).collect(),
        shared.config.server_timeout,
        stop_services.clone(),
    ));
    services.spawn(heartbeat::run(
        storage.clone(),
        shared.info(),
        shared.config.heartbeat_interval,
        stop_services.clone(),
    ));
    services.spawn(elector::run(
        storage.clone(),
        shared.id.clone(),
        shared.config.clone(),
        shared.states.clone(),
        stop_services.clone(),
    ));
    services.spawn(job_log_writer::run(
        storage.clone(),
        background.log,
        stop_services.clone(),
    ));
    if let Some((listener, routes)) = background.dashboard {
        services.spawn(crate::dashboard::listener::serve(
            listener,
            routes,
            crate::dashboard::listener::Limits::default(),
            stop_services.clone(),
        ));
    }
    services.spawn(crate::filters::tell_state_filters(
        background.state_filters,
        background.states,
        stop_services.clone(),
    ));

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
    // Graceful shutdown fires every attempt's cancellation token, so
    // that a job watching it can stop cleanly and be requeued.
    shared.held.cancel_all(CancelReason::Shutdown);
    let timeout = shared.config.shutdown_timeout;
    if tokio::time::timeout(timeout, jobs.wait()).await.is_err() {
        warn!(
            running = jobs.len(),
            ?timeout,
            "jobs did not finish within the shutdown timeout; interrupting and requeueing them"
        );
        interrupt.cancel();
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
    // The services end; the log writer writes what the last attempts
    // logged, the state filters hear of the last moves.
    stop_services.cancel();
    services.close();
    if tokio::time::timeout(timeout, services.wait())
        .await
        .is_err()
    {
        warn!(
            "the server's services did not end within the shutdown timeout (a state filter still running?); leaving them"
        );
    }
    info!("server stopped");
}
