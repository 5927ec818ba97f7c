//! graphile_worker (the Rust crate), tuned for throughput as its guide's
//! "Throughput-oriented worker" shows (docs/src/configuration/worker-options.md
//! of the crate): a local queue of 100 jobs with a 60 s ttl, completion and
//! failure batching with a 5 ms delay, polling every 500 ms as the fallback
//! to LISTEN/NOTIFY. Finished jobs are deleted, so `drain_retained` does not
//! apply.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use graphile_worker::{
    IntoTaskHandlerResult, JobSpec, LocalQueueConfig, TaskHandler, Worker, WorkerContext, WorkerOptions,
    WorkerUtils,
};
use peers_common::{Args, Description, System};
use serde::{Deserialize, Serialize};
use peers_common::PgPool;

#[derive(Clone, Serialize, Deserialize)]
struct Noop {
    n: u64,
}

impl TaskHandler for Noop {
    const IDENTIFIER: &'static str = "noop";

    async fn run(self, _ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        peers_common::ran(self.n);
        Ok::<(), String>(())
    }
}

struct Graphile {
    worker: Arc<Worker>,
    utils: WorkerUtils,
    running: Option<tokio::task::JoinHandle<()>>,
    count: PgPool,
}

impl System for Graphile {
    async fn open(url: &str, args: &Args) -> Result<Self> {
        // The worker is built (and migrates) before the jobs are enqueued;
        // it fetches nothing until `run`.
        let worker = WorkerOptions::default()
            .database_url(url)
            .concurrency(args.workers)
            .poll_interval(Duration::from_millis(500))
            .complete_job_batch_delay(Duration::from_millis(5))
            .fail_job_batch_delay(Duration::from_millis(5))
            .local_queue(LocalQueueConfig::default().with_size(100).with_ttl(Duration::from_secs(60)))
            .define_job::<Noop>()
            .init()
            .await?;
        let utils = worker.create_utils();
        Ok(Graphile {
            worker: Arc::new(worker),
            utils,
            running: None,
            count: peers_common::count_pool(url).await?,
        })
    }

    async fn insert_finished(&mut self, _url: &str, _count: u64) -> Result<()> {
        unreachable!("graphile_worker deletes finished jobs")
    }

    async fn enqueue_bulk(&mut self, range: std::ops::Range<u64>) -> Result<()> {
        let spec = JobSpec::default();
        let jobs: Vec<(Noop, &JobSpec)> = range.map(|n| (Noop { n }, &spec)).collect();
        self.utils.add_jobs::<Noop>(&jobs).await?;
        Ok(())
    }

    async fn enqueue_one(&mut self, n: u64) -> Result<()> {
        self.utils.add_job(Noop { n }, JobSpec::default()).await?;
        Ok(())
    }

    async fn start(&mut self, _workers: usize) -> Result<()> {
        let worker = self.worker.clone();
        self.running = Some(tokio::spawn(async move {
            if let Err(e) = worker.run().await {
                eprintln!("graphile_worker: run failed: {e}");
            }
        }));
        Ok(())
    }

    async fn finished(&mut self, expected: u64) -> Result<u64> {
        // A finished job is deleted: done when no job is left.
        let left = peers_common::count(&self.count, "SELECT count(*) FROM graphile_worker._private_jobs").await?;
        Ok(expected.saturating_sub(left))
    }

    async fn stop(&mut self) -> Result<()> {
        self.worker.request_shutdown();
        if let Some(running) = self.running.take() {
            running.await?;
        }
        self.count.close().await;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    peers_common::main::<Graphile>(Description {
        system: "graphile_worker".into(),
        tuning: "as the guide's \"Throughput-oriented worker\": `local_queue(size 100, ttl 60 s)`, \
                 `complete_job_batch_delay(5 ms)`, `fail_job_batch_delay(5 ms)`, \
                 `poll_interval(500 ms)`, LISTEN/NOTIFY on (default), pool of 20 (default); \
                 `concurrency(W)`; bulk enqueue with `WorkerUtils::add_jobs`, one job with `add_job`"
            .into(),
        retained_na: Some("n/a (deletes finished jobs)".into()),
    })
    .await
}
