//! What every peer binary shares: the command line, a fresh database per
//! run, the execution counters the no-op job bumps, the scenario loops and
//! the one-line JSON result the driver reads.
//!
//! A peer binary implements [`System`] (how to set up its tables, enqueue
//! jobs, start and stop its workers, and tell when every job is recorded
//! finished) and calls [`main`]; the scenarios themselves live here, so that
//! every system runs exactly the same loop.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
pub use sqlx::PgPool;
use sqlx::Row;

/// The scenarios, as the driver names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Scenario {
    /// Enqueue N no-op jobs in bulk, start the workers, time until every job
    /// ran and is recorded finished.
    Drain,
    /// As `drain`, with many finished jobs already in the system's table.
    DrainRetained,
    /// Idle workers; enqueue one job at a time, enqueue-call to job start.
    Latency,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Drain => "drain",
            Scenario::DrainRetained => "drain_retained",
            Scenario::Latency => "latency",
        }
    }
}

/// One run of one scenario on a fresh database.
#[derive(Parser, Debug, Clone)]
pub struct Args {
    /// The scenario to run.
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// Jobs to drain.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: u64,
    /// Workers (jobs run at once).
    #[arg(long, default_value_t = 32)]
    pub workers: usize,
    /// Finished jobs put in the table first (`drain_retained`).
    #[arg(long, default_value_t = 500_000)]
    pub retained: u64,
    /// Latency samples.
    #[arg(long, default_value_t = 500)]
    pub samples: usize,
    /// Jobs per bulk enqueue call.
    #[arg(long, default_value_t = 1_000)]
    pub batch: u64,
    /// The PostgreSQL server, without a database name.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pub server: String,
    /// Give up on a drain after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Keep the run's database (for a look at it afterwards).
    #[arg(long)]
    pub keep_database: bool,
    /// Print the system's version and tuning as JSON and exit.
    #[arg(long)]
    pub describe: bool,
}

/// What a peer binary prints about itself for BENCHMARKS.md.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Description {
    pub system: String,
    /// How it is set up, in a sentence or two.
    pub tuning: String,
    /// Why `drain_retained` does not apply, if it does not.
    pub retained_na: Option<String>,
}

/// One run's outcome: one line `RESULT {json}` on stdout.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Outcome {
    pub system: String,
    pub scenario: String,
    pub workers: usize,
    pub jobs: u64,
    pub retained: u64,
    pub postgres: String,
    /// Why the scenario does not apply to this system.
    pub not_applicable: Option<String>,
    /// Drain: seconds from starting the workers to every job recorded finished.
    pub seconds: Option<f64>,
    pub jobs_per_second: Option<f64>,
    /// Drain: seconds until the last job had run (before it was recorded).
    pub ran_seconds: Option<f64>,
    /// Executions counted in the job, in all.
    pub executions: u64,
    /// Executions beyond one per job.
    pub extra_executions: u64,
    /// Distinct jobs that ran more than once.
    pub jobs_run_twice: u64,
    /// Latency: p50, p99 and max in milliseconds.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub samples: Option<usize>,
    /// Seconds spent putting the retained jobs in and analyzing.
    pub setup_seconds: Option<f64>,
}

/// The no-op job's bookkeeping: every system's job calls [`ran`] with its
/// argument `n`.
struct Tracker {
    executions: AtomicU64,
    /// Executions per job, saturating at 255.
    per_job: Vec<AtomicU8>,
    /// When each job first started, in nanoseconds on [`CLOCK`] (+1; 0 = not yet).
    started: Vec<AtomicU64>,
}

static TRACKER: OnceLock<Tracker> = OnceLock::new();
static CLOCK: LazyLock<Instant> = LazyLock::new(Instant::now);

fn tracker() -> &'static Tracker {
    TRACKER.get().expect("peers_common::main sets up the tracker")
}

/// Called by the no-op job of every system, first thing, with its argument.
pub fn ran(n: u64) {
    let now = CLOCK.elapsed().as_nanos() as u64 + 1;
    let t = tracker();
    t.executions.fetch_add(1, Ordering::Relaxed);
    if let Some(slot) = t.per_job.get(n as usize) {
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1));
    }
    if let Some(slot) = t.started.get(n as usize) {
        let _ = slot.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }
}

fn executions() -> u64 {
    tracker().executions.load(Ordering::Relaxed)
}

/// A fresh database for one run.
pub struct Database {
    pub name: String,
    /// `postgres://.../NAME?sslmode=disable`
    pub url: String,
    admin: PgPool,
}

impl Database {
    async fn create(server: &str, system: &str) -> Result<Database> {
        let server = server.trim_end_matches('/');
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&format!("{server}/postgres"))
            .await
            .with_context(|| format!("connecting to {server}/postgres"))?;
        let name = format!("peers_{system}_{:08x}", fastrand::u32(..));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        // Plain TCP on loopback for every system: the peers' dependencies
        // turn on sqlx's TLS for the whole workspace, and a server with
        // `ssl = on` (Debian's default) would then encrypt every round trip,
        // which measures TLS rather than the queue.
        Ok(Database { url: format!("{server}/{name}?sslmode=disable"), name, admin })
    }

    async fn drop(self) -> Result<()> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&self.admin).await?;
        self.admin.close().await;
        Ok(())
    }
}

/// Runs `sql` (one or more statements) on `url` over a connection of its own.
pub async fn execute(url: &str, sql: &str) -> Result<()> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .with_context(|| format!("running {sql}"))?;
    pool.close().await;
    Ok(())
}

/// A pool of one connection to count rows with, for systems whose own API
/// has no count.
pub async fn count_pool(url: &str) -> Result<PgPool> {
    Ok(PgPoolOptions::new().max_connections(1).connect(url).await?)
}

/// `SELECT count(*) ...` as a number.
pub async fn count(pool: &PgPool, sql: &str) -> Result<u64> {
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .with_context(|| format!("running {sql}"))?;
    Ok(row.try_get::<i64, _>(0)? as u64)
}

/// One system under test, set up on one fresh database.
pub trait System: Sized {
    /// Connects, creates the system's tables; no worker runs yet.
    fn open(url: &str, args: &Args) -> impl Future<Output = Result<Self>>;
    /// Puts `count` finished jobs straight into the system's tables with SQL
    /// (as its own finished state), so that the drain runs beside them.
    fn insert_finished(&mut self, url: &str, count: u64) -> impl Future<Output = Result<()>>;
    /// Enqueues the no-op jobs with arguments `range`, in one bulk call
    /// (the system's bulk API).
    fn enqueue_bulk(&mut self, range: std::ops::Range<u64>) -> impl Future<Output = Result<()>>;
    /// Enqueues one no-op job with argument `n`, one call.
    fn enqueue_one(&mut self, n: u64) -> impl Future<Output = Result<()>>;
    /// Starts `workers` workers in this process.
    fn start(&mut self, workers: usize) -> impl Future<Output = Result<()>>;
    /// How many jobs are recorded finished. Must count the `retained` rows
    /// too when the system keeps finished jobs; a system that deletes finished
    /// jobs returns `expected` once no job is left.
    fn finished(&mut self, expected: u64) -> impl Future<Output = Result<u64>>;
    /// Stops the workers gracefully.
    fn stop(&mut self) -> impl Future<Output = Result<()>>;
}

/// The entry point of every peer binary.
pub async fn main<S: System>(description: Description) -> Result<()> {
    let args = Args::parse();
    if args.describe {
        println!("{}", serde_json::to_string(&description)?);
        return Ok(());
    }
    let Some(scenario) = args.scenario else {
        bail!("--scenario drain|drain_retained|latency (or --describe)");
    };
    let size = match scenario {
        Scenario::Latency => args.samples + WARMUP,
        _ => args.jobs as usize,
    };
    let _ = TRACKER.set(Tracker {
        executions: AtomicU64::new(0),
        per_job: (0..size).map(|_| AtomicU8::new(0)).collect(),
        started: (0..size).map(|_| AtomicU64::new(0)).collect(),
    });
    LazyLock::force(&CLOCK);

    let mut outcome = Outcome {
        system: description.system.clone(),
        scenario: scenario.name().to_owned(),
        workers: args.workers,
        jobs: if scenario == Scenario::Latency { 0 } else { args.jobs },
        retained: if scenario == Scenario::DrainRetained { args.retained } else { 0 },
        ..Outcome::default()
    };
    if scenario == Scenario::DrainRetained
        && let Some(why) = &description.retained_na
    {
        outcome.not_applicable = Some(why.clone());
        println!("RESULT {}", serde_json::to_string(&outcome)?);
        return Ok(());
    }

    let database = Database::create(&args.server, &description.system).await?;
    eprintln!("{}: {} on database {}", description.system, scenario.name(), database.name);
    let result = run::<S>(&args, scenario, &database.url, &mut outcome).await;
    if args.keep_database {
        eprintln!("kept database {}", database.name);
    } else {
        database.drop().await?;
    }
    result?;
    println!("RESULT {}", serde_json::to_string(&outcome)?);
    Ok(())
}

/// Latency samples run first and not counted (connections, caches).
const WARMUP: usize = 5;

async fn run<S: System>(args: &Args, scenario: Scenario, url: &str, outcome: &mut Outcome) -> Result<()> {
    let pool = count_pool(url).await?;
    outcome.postgres = sqlx::query("SHOW server_version").fetch_one(&pool).await?.try_get(0)?;
    pool.close().await;

    let mut system = S::open(url, args).await?;
    match scenario {
        Scenario::Drain | Scenario::DrainRetained => {
            let retained = if scenario == Scenario::DrainRetained { args.retained } else { 0 };
            if retained > 0 {
                let started = Instant::now();
                system.insert_finished(url, retained).await?;
                execute(url, "ANALYZE").await?;
                outcome.setup_seconds = Some(started.elapsed().as_secs_f64());
            }
            drain(&mut system, args, retained, outcome).await?;
        }
        Scenario::Latency => latency(&mut system, args, outcome).await?,
    }
    Ok(())
}

async fn drain<S: System>(system: &mut S, args: &Args, retained: u64, outcome: &mut Outcome) -> Result<()> {
    let n = args.jobs;
    let mut next = 0;
    while next < n {
        let end = (next + args.batch).min(n);
        system.enqueue_bulk(next..end).await?;
        next = end;
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let started = Instant::now();
    system.start(args.workers).await?;
    // The in-process counter first (free), the database only once every job
    // ran, so that polling does not load the database during the drain.
    while executions() < n {
        if Instant::now() > deadline {
            bail!("drain: only {} of {n} jobs ran within {} s", executions(), args.timeout);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ran = started.elapsed();
    let expected = n + retained;
    // The time is taken when the first poll that sees every job finished
    // *started*: a count that is slow on a big table (500,000 retained
    // rows) is not charged to the system.
    let recorded = loop {
        let polled = started.elapsed();
        let finished = system.finished(expected).await?;
        if finished >= expected {
            break polled;
        }
        if Instant::now() > deadline {
            bail!("drain: only {finished} of {expected} jobs recorded finished within {} s", args.timeout);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    system.stop().await?;
    count_repeats(outcome, n);
    outcome.ran_seconds = Some(ran.as_secs_f64());
    outcome.seconds = Some(recorded.as_secs_f64());
    outcome.jobs_per_second = Some(n as f64 / recorded.as_secs_f64());
    Ok(())
}

fn count_repeats(outcome: &mut Outcome, expected: u64) {
    let t = tracker();
    outcome.executions = executions();
    outcome.extra_executions = outcome.executions.saturating_sub(expected);
    outcome.jobs_run_twice = t.per_job.iter().filter(|c| c.load(Ordering::Relaxed) > 1).count() as u64;
}

async fn latency<S: System>(system: &mut S, args: &Args, outcome: &mut Outcome) -> Result<()> {
    system.start(args.workers).await?;
    // Let the workers settle into idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = tracker();
    let mut latencies = Vec::with_capacity(args.samples);
    for i in 0..(args.samples + WARMUP) {
        let sent = CLOCK.elapsed().as_nanos() as u64 + 1;
        system.enqueue_one(i as u64).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let started = loop {
            let at = t.started[i].load(Ordering::Relaxed);
            if at != 0 {
                break at;
            }
            if Instant::now() > deadline {
                bail!("latency: job {i} did not start within 10 s");
            }
            tokio::time::sleep(Duration::from_micros(100)).await;
        };
        if i >= WARMUP {
            latencies.push(started.saturating_sub(sent));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // A moment for late duplicates to show, then stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    system.stop().await?;
    count_repeats(outcome, (args.samples + WARMUP) as u64);
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1e6
    };
    outcome.p50_ms = Some(at(0.50));
    outcome.p99_ms = Some(at(0.99));
    outcome.max_ms = Some(at(1.0));
    outcome.samples = Some(args.samples);
    Ok(())
}
