//! Throughput and latency of no-op jobs on a fresh storage.
//!
//! ```text
//! cargo run --release --example bench -- --jobs 100000
//! cargo run --release --example bench -- --jobs 100000 --database postgres://postgres@127.0.0.1/test
//! ```
//!
//! Prints enqueue throughput (batched with `enqueue_many`, and one job per
//! call), processing throughput (enqueued no-op jobs until every one is
//! recorded `Succeeded`), and the latency from `enqueue` to the job's start
//! with idle workers: p50 and p99, for a client in the server's process and
//! for a client with a storage handle of its own (as in another process;
//! PostgreSQL wakes the server with `NOTIFY`, SQLite leaves it to polling).
//! On PostgreSQL the run uses a new schema, dropped at the end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use jobs::prelude::*;
use jobs::storage::{PostgresStorage, SqliteStorage};

static RAN: AtomicUsize = AtomicUsize::new(0);
static LATENCIES: LazyLock<Mutex<Vec<Duration>>> = LazyLock::new(Default::default);
static CLOCK: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Does nothing: measures the framework alone.
#[job(name = "bench.noop")]
async fn noop(n: u64) {
    let _ = n;
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
    /// Server workers (jobs run at once).
    #[arg(long, default_value_t = 256)]
    workers: usize,
    /// Most jobs per fetch.
    #[arg(long, default_value_t = 256)]
    fetch_batch: usize,
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
    let mut n = 0;
    while n < args.jobs {
        let end = (n + args.batch).min(args.jobs);
        client.enqueue_many((n..end).map(|n| Noop { n })).await?;
        n = end;
    }
    let batch = args.batch;
    report(
        &format!("enqueue_many, {batch} per call"),
        args.jobs,
        started.elapsed(),
    );

    let total = args.jobs + args.single;
    let started = Instant::now();
    let server = Server::builder(storage.clone())
        .workers(args.workers)
        .fetch_batch(args.fetch_batch)
        .start()?;
    while RAN.load(Ordering::Relaxed) < total as usize {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ran = started.elapsed();
    while storage.counts().await?.get(State::Succeeded) < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recorded = started.elapsed();
    report("processing, until every job ran", total, ran);
    report(
        "processing, until every job is recorded Succeeded",
        total,
        recorded,
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

fn report(what: &str, jobs: u64, elapsed: Duration) {
    println!(
        "{what:<52} {jobs:>8} jobs in {:>7.3}s = {:>9.0} jobs/s",
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64()
    );
}
