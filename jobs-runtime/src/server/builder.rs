use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::{Error, Registry, Result};
use tokio::sync::Semaphore;

use super::job_log_writer::JobLogSink;
use super::{Background, ServerHandle, Shared};
use crate::Storage;
use crate::dashboard::Dashboard;
use crate::filters::{ServerFilter, StateFilter, StateFilters};

/// How many jobs one fetch takes at most (fewer when fewer workers are free).
pub const DEFAULT_FETCH_BATCH: usize = 200;
/// How long an idle fetcher waits before it looks again when nothing woke it
/// (an enqueue through a client of this process wakes it at once).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often due `Scheduled` jobs are enqueued.
pub const DEFAULT_SCHEDULE_INTERVAL: Duration = Duration::from_secs(1);

/// The longest the recurring scheduler sleeps before it reads the
/// recurring jobs again: it sleeps until the next tick, and changes made
/// through the server's `Storage` handle (or a clone) wake it at once;
/// this bounds how late it sees a job added or changed elsewhere.
pub const DEFAULT_RECURRING_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// How often the leader decides what waits on finished parents: batches
/// whose members all finished, and continuations the finishing statement
/// did not decide (see [`ServerConfig::continuation_check_interval`]).
pub const DEFAULT_CONTINUATION_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long a server holds a job before another may rescue it, unless it
/// renews the lease (it does, every third of this, while the job runs).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How often jobs whose lease expired are looked for.
pub const DEFAULT_RESCUE_INTERVAL: Duration = Duration::from_secs(15);
/// How long running jobs get to finish at shutdown before they are
/// interrupted and requeued.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a server records that it lives.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// How long a server may be silent before it is forgotten (its jobs are
/// rescued through their leases, independently of this).
pub const DEFAULT_SERVER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the maintenance leadership lasts unless renewed (the leader
/// renews every third of it); when a leader dies another takes over within it.
pub const DEFAULT_LEADER_TTL: Duration = Duration::from_secs(15);
/// How long succeeded and deleted jobs are kept (Hangfire: one day).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How often expired jobs and silent servers are deleted.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);
/// How often the leader reads the queues' lengths and latencies for the
/// metrics ([`metrics::QUEUE_LENGTH`](crate::metrics::QUEUE_LENGTH)).
pub const DEFAULT_QUEUE_METRICS_INTERVAL: Duration = Duration::from_secs(10);
/// How long an attempt asked to stop (cancelled, timed out, its lease
/// lost) may take to return before its future is dropped: long enough for
/// a job watching its token to finish a step cleanly, short enough that a
/// job ignoring it does little more work that another server may be
/// doing again.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(1);

/// The default for [`ServerConfig::prefetch`]: eight jobs per worker at
/// most, fetched ahead so that a worker finds its next job in memory while
/// fetches and outcomes travel in large batches (graphile_worker's local
/// queue does the same). Measured with 32 workers and no-op jobs on
/// PostgreSQL: 21,000 jobs/s with a prefetch of 32, 25,000 with 128, 30,000
/// with 256. The server fetches that far ahead only for short jobs: no
/// further than its workers start within
/// [`PREFETCH_HORIZON`](super::PREFETCH_HORIZON).
pub fn default_prefetch(workers: usize) -> usize {
    workers.saturating_mul(8)
}

/// The default number of workers: five per core, at most 20 (Hangfire's
/// `Math.Min(Environment.ProcessorCount * 5, 20)`).
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 5).min(20)
}

/// A server's settings, each with a `DEFAULT_*` constant: build one with
/// its setters (their docs say what each setting does) and hand it to
/// [`ServerBuilder::config`], or set them on the builder directly (the
/// builder's setters are the same).
///
/// ```
/// use std::time::Duration;
/// use jobs_runtime::server::ServerConfig;
/// let config = ServerConfig::default()
///     .workers(16)
///     .queues(["critical", "default"])
///     .lease(Duration::from_secs(60));
/// ```
///
/// Values are checked when the server starts ([`ServerBuilder::start`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Jobs run at once, at least 1 (default [`default_workers`]).
    pub(crate) workers: usize,
    /// Jobs fetched ahead of free workers, at most.
    pub(crate) prefetch: usize,
    /// Queues in priority order (default `["default"]`).
    pub(crate) queues: Vec<String>,
    /// Jobs taken per fetch at most ([`DEFAULT_FETCH_BATCH`]).
    pub(crate) fetch_batch: usize,
    /// Idle wait between fetches ([`DEFAULT_POLL_INTERVAL`]).
    pub(crate) poll_interval: Duration,
    /// Period of the scheduler ([`DEFAULT_SCHEDULE_INTERVAL`]).
    pub(crate) schedule_interval: Duration,
    /// Longest sleep of the recurring scheduler ([`DEFAULT_RECURRING_CHECK_INTERVAL`]).
    pub(crate) recurring_check_interval: Duration,
    /// Period of the continuation check ([`DEFAULT_CONTINUATION_CHECK_INTERVAL`]).
    pub(crate) continuation_check_interval: Duration,
    /// Lease on a running job ([`DEFAULT_LEASE`]).
    pub(crate) lease: Duration,
    /// Period of the rescuer ([`DEFAULT_RESCUE_INTERVAL`]).
    pub(crate) rescue_interval: Duration,
    /// Grace period at shutdown ([`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub(crate) shutdown_timeout: Duration,
    /// Period of the heartbeat ([`DEFAULT_HEARTBEAT_INTERVAL`]).
    pub(crate) heartbeat_interval: Duration,
    /// Silence after which a server is forgotten ([`DEFAULT_SERVER_TIMEOUT`]).
    pub(crate) server_timeout: Duration,
    /// Term of the maintenance leadership ([`DEFAULT_LEADER_TTL`]).
    pub(crate) leader_ttl: Duration,
    /// How long finished jobs are kept ([`DEFAULT_RETENTION`]).
    pub(crate) retention: Duration,
    /// Period of the expirer ([`DEFAULT_CLEANUP_INTERVAL`]).
    pub(crate) cleanup_interval: Duration,
    /// Period of the queue metrics ([`DEFAULT_QUEUE_METRICS_INTERVAL`]).
    pub(crate) queue_metrics_interval: Duration,
    /// Longest attempt of a job that sets no timeout (none by default).
    pub(crate) job_timeout: Option<Duration>,
    /// Time an attempt asked to stop gets to return ([`DEFAULT_CANCEL_GRACE`]).
    pub(crate) cancel_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let workers = default_workers();
        ServerConfig {
            workers,
            prefetch: default_prefetch(workers),
            queues: vec!["default".to_owned()],
            fetch_batch: DEFAULT_FETCH_BATCH,
            poll_interval: DEFAULT_POLL_INTERVAL,
            schedule_interval: DEFAULT_SCHEDULE_INTERVAL,
            recurring_check_interval: DEFAULT_RECURRING_CHECK_INTERVAL,
            continuation_check_interval: DEFAULT_CONTINUATION_CHECK_INTERVAL,
            lease: DEFAULT_LEASE,
            rescue_interval: DEFAULT_RESCUE_INTERVAL,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            server_timeout: DEFAULT_SERVER_TIMEOUT,
            leader_ttl: DEFAULT_LEADER_TTL,
            retention: DEFAULT_RETENTION,
            cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
            queue_metrics_interval: DEFAULT_QUEUE_METRICS_INTERVAL,
            job_timeout: None,
            cancel_grace: DEFAULT_CANCEL_GRACE,
        }
    }
}

impl ServerConfig {
    /// How many jobs run at once (default [`default_workers`]). Also sets
    /// the prefetch to [`default_prefetch`] of it, unless
    /// [`prefetch`](Self::prefetch) is called after.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self.prefetch = default_prefetch(workers);
        self
    }

    /// How many jobs may wait fetched ahead of free workers, at most
    /// (default [`default_prefetch`] of the workers). A job counts against
    /// the server from its fetch until its outcome is recorded, so a server
    /// holds at most `workers + prefetch` jobs in `Processing`. Jobs
    /// fetched ahead are leased like running ones and given back at
    /// shutdown; the server fetches ahead only as many as its workers start
    /// within [`PREFETCH_HORIZON`](super::PREFETCH_HORIZON) at their recent
    /// pace, so long jobs are not held where another server could start
    /// them. 0 fetches for free workers only.
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// The queues to serve, highest priority first (default `["default"]`):
    /// a job waiting in an earlier queue is always taken before one in a
    /// later queue.
    pub fn queues<I, Q>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = Q>,
        Q: Into<String>,
    {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// The most jobs taken per fetch ([`DEFAULT_FETCH_BATCH`]).
    pub fn fetch_batch(mut self, fetch_batch: usize) -> Self {
        self.fetch_batch = fetch_batch;
        self
    }

    /// The idle wait between fetches ([`DEFAULT_POLL_INTERVAL`]); it bounds
    /// the delay before a job enqueued by another process starts.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How often due scheduled jobs are enqueued ([`DEFAULT_SCHEDULE_INTERVAL`]).
    pub fn schedule_interval(mut self, interval: Duration) -> Self {
        self.schedule_interval = interval;
        self
    }

    /// The longest the recurring scheduler sleeps between reads
    /// ([`DEFAULT_RECURRING_CHECK_INTERVAL`]); ticks themselves fire on
    /// time whatever this is.
    pub fn recurring_check_interval(mut self, interval: Duration) -> Self {
        self.recurring_check_interval = interval;
        self
    }

    /// How often the leader finishes batches whose members all finished
    /// and decides their continuations
    /// ([`DEFAULT_CONTINUATION_CHECK_INTERVAL`]): a batch continuation runs
    /// within about this after the batch's last member finished. A job's
    /// own continuations are decided when it finishes; this check also
    /// catches one stored while its parent was finishing.
    pub fn continuation_check_interval(mut self, interval: Duration) -> Self {
        self.continuation_check_interval = interval;
        self
    }

    /// The lease on each running job ([`DEFAULT_LEASE`]); after a crash,
    /// jobs are rescued within about this plus the rescue interval.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often expired leases are looked for ([`DEFAULT_RESCUE_INTERVAL`]).
    pub fn rescue_interval(mut self, interval: Duration) -> Self {
        self.rescue_interval = interval;
        self
    }

    /// How long running jobs get to finish at shutdown
    /// ([`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How often the server records that it lives
    /// ([`DEFAULT_HEARTBEAT_INTERVAL`]).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// How long a silent server stays listed ([`DEFAULT_SERVER_TIMEOUT`]).
    pub fn server_timeout(mut self, timeout: Duration) -> Self {
        self.server_timeout = timeout;
        self
    }

    /// The term of the maintenance leadership ([`DEFAULT_LEADER_TTL`]).
    pub fn leader_ttl(mut self, ttl: Duration) -> Self {
        self.leader_ttl = ttl;
        self
    }

    /// How long succeeded and deleted jobs are kept ([`DEFAULT_RETENTION`]).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How often expired jobs are deleted ([`DEFAULT_CLEANUP_INTERVAL`]).
    pub fn cleanup_interval(mut self, interval: Duration) -> Self {
        self.cleanup_interval = interval;
        self
    }

    /// How often the server that leads maintenance reads each queue's
    /// length and latency into the metrics' gauges
    /// ([`DEFAULT_QUEUE_METRICS_INTERVAL`]; see [`crate::metrics`]): one
    /// [`Storage::queue_counts`](crate::Storage::queue_counts) each time.
    pub fn queue_metrics_interval(mut self, interval: Duration) -> Self {
        self.queue_metrics_interval = interval;
        self
    }

    /// The longest one attempt of a job may run when the job sets no
    /// timeout of its own (`#[job(timeout = "30s")]` wins); none unless
    /// set. Past it, the attempt's cancellation token fires
    /// ([`CancelReason::TimedOut`](jobs_core::CancelReason::TimedOut)),
    /// and the attempt fails with "timed out after 30s" and follows the
    /// job's retry policy: at once when it returns an error, or after the
    /// [`cancel_grace`](Self::cancel_grace) when it does not return (its
    /// future is dropped). One that returns `Ok` within the grace
    /// succeeded.
    pub fn job_timeout(mut self, timeout: Duration) -> Self {
        self.job_timeout = Some(timeout);
        self
    }

    /// How long an attempt asked to stop (cancelled, timed out, or its
    /// lease lost) gets to see its cancellation token and return, before
    /// its future is dropped ([`DEFAULT_CANCEL_GRACE`]); zero drops it
    /// after one more poll. A cancelled job stays `Deleted` whatever it
    /// returns; a timed out one succeeds if it returns `Ok`, keeps an
    /// outcome it chose ([`JobError::permanent`](jobs_core::JobError::permanent),
    /// a snooze), and otherwise fails as timed out. At shutdown the
    /// shutdown timeout applies instead.
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    fn validate(&self) -> Result<()> {
        let problem = if self.workers == 0 {
            "workers must be at least 1"
        } else if self.workers.saturating_add(self.prefetch) > Semaphore::MAX_PERMITS {
            "workers + prefetch is too large"
        } else if self.fetch_batch == 0 {
            "fetch_batch must be at least 1"
        } else if self.queues.is_empty() {
            "a server needs at least one queue"
        } else if self.queues.iter().any(|queue| queue.trim().is_empty()) {
            "queue names must not be empty"
        } else if self.lease < Duration::from_secs(1) || self.leader_ttl < Duration::from_secs(1) {
            "the lease and the leader ttl must be at least 1 second"
        } else if self.poll_interval.is_zero()
            || self.schedule_interval.is_zero()
            || self.recurring_check_interval.is_zero()
            || self.continuation_check_interval.is_zero()
            || self.rescue_interval.is_zero()
            || self.heartbeat_interval.is_zero()
            || self.cleanup_interval.is_zero()
            || self.queue_metrics_interval.is_zero()
        {
            "intervals must be longer than zero"
        } else if self.job_timeout.is_some_and(|timeout| timeout.is_zero()) {
            "the job timeout must be longer than zero"
        } else {
            return Ok(());
        };
        Err(Error::Config(problem.to_owned()))
    }
}

/// Builds a server: [`Server::builder`](super::Server::builder).
pub struct ServerBuilder {
    storage: Storage,
    config: ServerConfig,
    filters: Vec<Arc<dyn ServerFilter>>,
    state_filters: Vec<Arc<dyn StateFilter>>,
    dashboard: Option<(String, Option<Dashboard>)>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("storage", &self.storage)
            .field("config", &self.config)
            .field("filters", &self.filters.len())
            .field("state_filters", &self.state_filters.len())
            .field(
                "dashboard",
                &self.dashboard.as_ref().map(|(address, _)| address),
            )
            .finish()
    }
}

impl ServerBuilder {
    pub(super) fn new(storage: Storage) -> Self {
        ServerBuilder {
            storage,
            config: ServerConfig::default(),
            filters: Vec::new(),
            state_filters: Vec::new(),
            dashboard: None,
        }
    }

    /// Serves the [dashboard](crate::dashboard) of the server's storage on
    /// `address` (`"127.0.0.1:9090"`; port 0 picks a free one, see
    /// [`ServerHandle::dashboard_address`]) while the server runs, to
    /// loopback clients only. The address is bound when the server
    /// starts.
    pub fn dashboard(mut self, address: impl Into<String>) -> Self {
        self.dashboard = Some((address.into(), None));
        self
    }

    /// As [`dashboard`](Self::dashboard), with a [`Dashboard`] configured
    /// by the application (its authorization): serve others than loopback
    /// clients.
    pub fn dashboard_with(mut self, address: impl Into<String>, dashboard: Dashboard) -> Self {
        self.dashboard = Some((address.into(), Some(dashboard)));
        self
    }

    /// Adds a [`ServerFilter`], run around each attempt inside the
    /// filters added before it, all inside the attempt's `job` span.
    pub fn filter(mut self, filter: impl ServerFilter) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// Adds a [`StateFilter`], told of each move this server makes, after
    /// the filters added before it.
    pub fn state_filter(mut self, filter: impl StateFilter) -> Self {
        self.state_filters.push(Arc::new(filter));
        self
    }

    /// [`ServerConfig::workers`].
    pub fn workers(mut self, workers: usize) -> Self {
        self.config = self.config.workers(workers);
        self
    }

    /// [`ServerConfig::prefetch`].
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.config = self.config.prefetch(prefetch);
        self
    }

    /// [`ServerConfig::fetch_batch`].
    pub fn fetch_batch(mut self, fetch_batch: usize) -> Self {
        self.config = self.config.fetch_batch(fetch_batch);
        self
    }

    /// [`ServerConfig::poll_interval`].
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config = self.config.poll_interval(interval);
        self
    }

    /// [`ServerConfig::schedule_interval`].
    pub fn schedule_interval(mut self, interval: Duration) -> Self {
        self.config = self.config.schedule_interval(interval);
        self
    }

    /// [`ServerConfig::recurring_check_interval`].
    pub fn recurring_check_interval(mut self, interval: Duration) -> Self {
        self.config = self.config.recurring_check_interval(interval);
        self
    }

    /// [`ServerConfig::continuation_check_interval`].
    pub fn continuation_check_interval(mut self, interval: Duration) -> Self {
        self.config = self.config.continuation_check_interval(interval);
        self
    }

    /// [`ServerConfig::lease`].
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config = self.config.lease(lease);
        self
    }

    /// [`ServerConfig::rescue_interval`].
    pub fn rescue_interval(mut self, interval: Duration) -> Self {
        self.config = self.config.rescue_interval(interval);
        self
    }

    /// [`ServerConfig::shutdown_timeout`].
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.shutdown_timeout(timeout);
        self
    }

    /// [`ServerConfig::heartbeat_interval`].
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config = self.config.heartbeat_interval(interval);
        self
    }

    /// [`ServerConfig::server_timeout`].
    pub fn server_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.server_timeout(timeout);
        self
    }

    /// [`ServerConfig::leader_ttl`].
    pub fn leader_ttl(mut self, ttl: Duration) -> Self {
        self.config = self.config.leader_ttl(ttl);
        self
    }

    /// [`ServerConfig::retention`].
    pub fn retention(mut self, retention: Duration) -> Self {
        self.config = self.config.retention(retention);
        self
    }

    /// [`ServerConfig::cleanup_interval`].
    pub fn cleanup_interval(mut self, interval: Duration) -> Self {
        self.config = self.config.cleanup_interval(interval);
        self
    }

    /// [`ServerConfig::queue_metrics_interval`].
    pub fn queue_metrics_interval(mut self, interval: Duration) -> Self {
        self.config = self.config.queue_metrics_interval(interval);
        self
    }

    /// [`ServerConfig::job_timeout`].
    pub fn job_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.job_timeout(timeout);
        self
    }

    /// [`ServerConfig::cancel_grace`].
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.config = self.config.cancel_grace(grace);
        self
    }

    /// [`ServerConfig::queues`].
    pub fn queues<I, Q>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = Q>,
        Q: Into<String>,
    {
        self.config = self.config.queues(queues);
        self
    }

    /// Replaces every setting with `config`'s (settings made on the
    /// builder before are dropped; those after apply on top).
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The settings so far (shown by their `Debug` output).
    pub fn settings(&self) -> &ServerConfig {
        &self.config
    }

    /// Starts the server on the current tokio runtime and returns at once.
    ///
    /// # Errors
    /// [`Error::DuplicateJobName`] when two `#[job]`s share a name;
    /// [`Error::Config`] for a setting out of range, or a dashboard
    /// address that cannot be resolved or bound.
    pub fn start(self) -> Result<ServerHandle> {
        Ok(super::start(self.into_shared()?))
    }

    /// Runs the server until `signal` completes, then shuts down gracefully
    /// (see [`ServerHandle::shutdown`]).
    ///
    /// # Errors
    /// As [`start`](Self::start), before anything runs.
    pub async fn run_until(self, signal: impl Future) -> Result<()> {
        super::run_until(self.into_shared()?, signal).await
    }

    fn into_shared(self) -> Result<(Shared, Background)> {
        self.config.validate()?;
        let registry = Registry::from_inventory()?;
        let (log_sink, log) = JobLogSink::new(self.storage.clone());
        let state_filters = StateFilters::new(self.state_filters);
        let (states, state_receiver) = state_filters.channel();
        let shared = Shared {
            storage: self.storage,
            registry,
            capacity: Arc::new(Semaphore::new(self.config.workers + self.config.prefetch)),
            workers: Arc::new(Semaphore::new(self.config.workers)),
            local: Default::default(),
            config: self.config,
            id: server_id(),
            held: Default::default(),
            filters: self.filters,
            log_sink,
            states,
        };
        let dashboard = match self.dashboard {
            None => None,
            Some((address, dashboard)) => {
                let listener = bind(&address)?;
                let dashboard = dashboard.unwrap_or_else(|| Dashboard::new(shared.storage.clone()));
                Some((listener, dashboard.router()))
            }
        };
        let background = Background {
            log,
            state_filters,
            states: state_receiver,
            dashboard,
        };
        Ok((shared, background))
    }
}

/// A listener on `address`, ready for tokio.
fn bind(address: &str) -> Result<std::net::TcpListener> {
    let refused = |error: std::io::Error| {
        Error::Config(format!(
            "the dashboard cannot listen on {address:?}: {error}"
        ))
    };
    let listener = std::net::TcpListener::bind(address).map_err(refused)?;
    listener.set_nonblocking(true).map_err(refused)?;
    Ok(listener)
}

/// `host:pid:random`, unique among the servers of a storage.
fn server_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}:{:016x}", std::process::id(), fastrand::u64(..))
}
