//! Throughput and latency of no-op jobs on a fresh storage.
//!
//! ```text
//! cargo run --release --example bench -- --jobs 100000
//! cargo run --release --example bench -- --jobs 100000 --database postgres://postgres@127.0.0.1/test
//! cargo run --release --example bench -- --retained 500000 --database postgres://...
//! ```
//!
//! Prints enqueue throughput (batched with `enqueue_many`, and one job per
//! call), processing throughput (enqueued no-op jobs until every one is
//! recorded `Succeeded`, with how many ran more than once), and the latency
//! from `enqueue` to the job's start with idle workers: p50 and p99, for a
//! client in the server's process and for a client with a storage handle of
//! its own (as in another process: PostgreSQL wakes the server with
//! `NOTIFY`, SQLite by its change check). `--retained N` first stores N
//! finished jobs and runs `ANALYZE`, as a table looks after a day of work.
//! On PostgreSQL the run uses a new schema, dropped at the end.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use jobs::prelude::*;
use jobs::storage::{PostgresStorage, SqliteStorage};

static RAN: AtomicUsize = AtomicUsize::new(0);
/// Executions per job, indexed by its argument (sized in `main`).
static EXECUTIONS: OnceLock<Vec<AtomicU8>> = OnceLock::new();
static LATENCIES: LazyLock<Mutex<Vec<Duration>>> = LazyLock::new(Default::default);
static CLOCK: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Does nothing: measures the framework alone.
#[job(name = "bench.noop")]
async fn noop(n: u64) {
    let executions = EXECUTIONS.get().map(Vec::as_slice).unwrap_or_default();
    if let Some(count) = usize::try_from(n).ok().and_then(|n| executions.get(n)) {
        count.fetch_add(1, Ordering::Relaxed);
    }
    RAN.fetch_add(1, Ordering::Relaxed);
}

/// Records how long after `sent_at_nanos` (on [`CLOCK`]) it started.
#[job(name = "bench.latency")]
async fn latency_probe(sent_at_nanos: u64) {
    let sent = *CLOCK + Duration::from_nanos(sent_at_nanos);
    LATENCIES.lock().unwrap().push(sent.elapsed());
}

#[derive(Parser)]
#[command(about = "Throughput and latency of no-op jobs")]
struct Args {
    /// Jobs to enqueue and process.
    #[arg(long, default_value_t = 100_000)]
    jobs: u64,
    /// Jobs enqueued one per call (each call its own transaction).
    #[arg(long, default_value_t = 2_000)]
    single: u64,
    /// Jobs per `enqueue_many` call.
    #[arg(long, default_value_t = 1_000)]
    batch: u64,
    /// Tasks calling `enqueue_many` at once (each call its own
    /// transaction), as an import spread over several tasks would.
    #[arg(long, default_value_t = 1)]
    enqueuers: u64,
    /// Server workers (jobs run at once).
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// Jobs fetched ahead of free workers (default: the server's default).
    #[arg(long)]
    prefetch: Option<usize>,
    /// Most jobs per fetch (default: the server's default).
    #[arg(long)]
    fetch_batch: Option<usize>,
    /// Finished jobs stored (and analyzed) before the run.
    #[arg(long, default_value_t = 0)]
    retained: u64,
    /// Latency samples per client kind.
    #[arg(long, default_value_t = 500)]
    latency_samples: usize,
    /// The storage: sqlite://PATH or postgres://USER@HOST/DB (default: a
    /// new SQLite file in a temporary directory).
    #[arg(long)]
    database: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // `RUST_LOG=jobs_runtime=debug` shows each storage call with its time.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    let counters = (0..args.jobs + args.single).map(|_| AtomicU8::new(0));
    let _ = EXECUTIONS.set(counters.collect());
    let temp = tempfile::tempdir()?;
    let url = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", temp.path().join("bench.db").display()));
    let schema = format!("bench_{:08x}", std::process::id());
    let open = || async {
        if url.starts_with("postgres") {
            let postgres = PostgresStorage::connect_with_schema(&url, &schema).await?;
            anyhow::Ok(Storage::new(postgres))
        } else {
            anyhow::Ok(Storage::new(SqliteStorage::connect(&url).await?))
        }
    };
    let storage = open().await?;
    println!("storage: {url}");
    if args.retained > 0 {
        let started = Instant::now();
        retain(&url, &schema, args.retained).await?;
        println!(
            "stored {} finished jobs and analyzed in {:.1}s",
            args.retained,
            started.elapsed().as_secs_f64()
        );
    }
    let result = run(&args, &storage, open().await?).await;
    if url.starts_with("postgres") {
        let postgres = PostgresStorage::connect_with_schema(&url, &schema).await?;
        let drop = format!("DROP SCHEMA {schema} CASCADE");
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(postgres.pool())
            .await?;
    }
    result
}

async fn run(args: &Args, storage: &Storage, other_handle: Storage) -> anyhow::Result<()> {
    let client = Client::new(storage.clone());

    let started = Instant::now();
    for n in 0..args.single {
        noop::enqueue(&client, n).await?;
    }
    report("enqueue, one job per call", args.single, started.elapsed());

    let started = Instant::now();
    let next = std::sync::atomic::AtomicU64::new(0);
    let enqueuer = || async {
        loop {
            let n = next.fetch_add(args.batch, Ordering::Relaxed);
            if n >= args.jobs {
                return Ok::<_, jobs::Error>(());
            }
            let end = (n + args.batch).min(args.jobs);
            client
                .enqueue_many((n..end).map(|n| Noop { n: args.single + n }))
                .await?;
        }
    };
    futures_util::future::try_join_all((0..args.enqueuers.max(1)).map(|_| enqueuer())).await?;
    let (batch, enqueuers) = (args.batch, args.enqueuers.max(1));
    let label = if enqueuers == 1 {
        format!("enqueue_many, {batch} per call")
    } else {
        format!("enqueue_many, {batch} per call, {enqueuers} tasks")
    };
    report(&label, args.jobs, started.elapsed());

    let total = args.jobs + args.single;
    let started = Instant::now();
    let mut builder = Server::builder(storage.clone()).workers(args.workers);
    if let Some(prefetch) = args.prefetch {
        builder = builder.prefetch(prefetch);
    }
    if let Some(fetch_batch) = args.fetch_batch {
        builder = builder.fetch_batch(fetch_batch);
    }
    let server = builder.start()?;
    while RAN.load(Ordering::Relaxed) < total as usize {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ran = started.elapsed();
    // Timed when the first count that sees every job recorded started: a
    // count over many retained jobs is slow, and not the server's time.
    let recorded = loop {
        let polled = started.elapsed();
        if storage.counts().await?.get(State::Succeeded) >= total + args.retained {
            break polled;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    report("processing, until every job ran", total, ran);
    report(
        "processing, until every job is recorded Succeeded",
        total,
        recorded,
    );
    let twice = EXECUTIONS
        .get()
        .expect("sized in main")
        .iter()
        .filter(|count| count.load(Ordering::Relaxed) > 1)
        .count();
    let executions = RAN.load(Ordering::Relaxed);
    println!(
        "{:<52} {executions} executions for {total} jobs; {twice} jobs ran more than once",
        "executions"
    );

    let same_process = Client::new(storage.clone());
    latency(
        "latency, client in the server's process",
        &same_process,
        args.latency_samples,
    )
    .await?;
    let other_process = Client::new(other_handle);
    latency(
        "latency, client with its own handle",
        &other_process,
        args.latency_samples,
    )
    .await?;
    server.shutdown().await;
    Ok(())
}

/// Enqueues probes one at a time, each once the last one started, with a
/// pause between so that the workers are idle; prints p50 and p99.
async fn latency(what: &str, client: &Client, samples: usize) -> anyhow::Result<()> {
    LATENCIES.lock().unwrap().clear();
    for sample in 0..samples {
        let sent_at = CLOCK.elapsed().as_nanos() as u64;
        latency_probe::enqueue(client, sent_at).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while LATENCIES.lock().unwrap().len() <= sample {
            anyhow::ensure!(
                Instant::now() < deadline,
                "probe {sample} did not start within 10 s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut latencies = LATENCIES.lock().unwrap().clone();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{what:<52} p50 {:>8.2} ms   p99 {:>8.2} ms   ({samples} samples)",
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0
    );
    Ok(())
}

/// Stores `count` finished (`Succeeded`) jobs, then `ANALYZE`.
async fn retain(url: &str, schema: &str, count: u64) -> anyhow::Result<()> {
    let count = i64::try_from(count)?;
    if url.starts_with("postgres") {
        let postgres = PostgresStorage::connect_with_schema(url, schema).await?;
        let insert = format!(
            "INSERT INTO {schema}.jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, server)
             SELECT 'bench.noop', 'default', '{{\"n\":0}}', 'Succeeded', 1, 1, now(), now(), 'old'
             FROM generate_series(1, $1)"
        );
        sqlx::query(sqlx::AssertSqlSafe(insert))
            .bind(count)
            .execute(postgres.pool())
            .await?;
        let analyze = format!("ANALYZE {schema}.jobs_job; ANALYZE {schema}.jobs_job_state");
        sqlx::raw_sql(sqlx::AssertSqlSafe(analyze))
            .execute(postgres.pool())
            .await?;
    } else {
        let sqlite = SqliteStorage::connect(url).await?;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, server)
             SELECT 'bench.noop', 'default', '{\"n\":0}', 'Succeeded', 1, 1, ?2, ?2, 'old' FROM n",
        )
        .bind(count)
        // Finished now, as on PostgreSQL: at 0 (1970) the expirer would
        // delete them all while the drain runs.
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(sqlite.pool())
        .await?;
        sqlx::query("ANALYZE").execute(sqlite.pool()).await?;
    }
    Ok(())
}

fn report(what: &str, jobs: u64, elapsed: Duration) {
    println!(
        "{what:<52} {jobs:>8} jobs in {:>7.3}s = {:>9.0} jobs/s",
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64()
    );
}
