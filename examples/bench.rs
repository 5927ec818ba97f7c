//! Throughput of no-op jobs: enqueue, then processing, on a fresh storage.
//!
//! ```text
//! cargo run --release --example bench -- --jobs 100000
//! ```
//!
//! Prints enqueue throughput (batched with `enqueue_many`, and one job per
//! call) and processing throughput (enqueued no-op jobs until every one is
//! recorded `Succeeded`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use jobs::prelude::*;

static RAN: AtomicUsize = AtomicUsize::new(0);

/// Does nothing: measures the framework alone.
#[job(name = "bench.noop")]
async fn noop(n: u64) {
    let _ = n;
    RAN.fetch_add(1, Ordering::Relaxed);
}

#[derive(Parser)]
#[command(about = "Throughput of no-op jobs")]
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
    /// The storage (default: a new SQLite file in a temporary directory).
    #[arg(long)]
    database: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let url = args
        .database
        .unwrap_or_else(|| format!("sqlite://{}", temp.path().join("bench.db").display()));
    let storage = Storage::connect(&url).await?;
    let client = Client::new(storage.clone());
    println!("storage: {url}");

    // Enqueue, one job per call.
    let started = Instant::now();
    for n in 0..args.single {
        noop::enqueue(&client, n).await?;
    }
    report("enqueue, one job per call", args.single, started.elapsed());

    // Enqueue, batched.
    let started = Instant::now();
    let mut n = 0;
    while n < args.jobs {
        let end = (n + args.batch).min(args.jobs);
        client.enqueue_many((n..end).map(|n| Noop { n })).await?;
        n = end;
    }
    report(
        &format!("enqueue_many, {} per call", args.batch),
        args.jobs,
        started.elapsed(),
    );

    // Process everything enqueued.
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
    server.shutdown().await;
    report("processing, until every job ran", total, ran);
    report(
        "processing, until every job is recorded Succeeded",
        total,
        recorded,
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
