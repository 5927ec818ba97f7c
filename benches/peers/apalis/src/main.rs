//! apalis 1.x with apalis-postgres, set up as apalis-postgres's own
//! examples do for a busy queue (examples/basic.rs of the crate):
//! `Config::batch_size(100)`, `lock_tasks(false)`, `with_pubsub()` (a
//! LISTEN/NOTIFY wake-up when a job is inserted) with a 500 ms polling
//! fallback (its README's pubsub example), `parallelize(tokio::spawn)`
//! (apalis's README: multi-threaded execution); `concurrency(W)` limits the
//! jobs in flight to the same worker count as the other systems.

use anyhow::Result;
use apalis::prelude::*;
use apalis_postgres::{Config, PgPool, PostgresStorage};
use peers_common::{Args, Description, System};
use std::time::Duration;

use tokio::sync::oneshot;

const QUEUE: &str = "noop";

/// The no-op job: counts its execution, nothing else.
async fn noop(n: u64) {
    peers_common::ran(n);
}

fn config() -> Config {
    Config::default().queue(QUEUE).batch_size(100).lock_tasks(false)
}

struct Apalis {
    pool: PgPool,
    storage: PostgresStorage<u64>,
    stop: Option<oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<()>>,
    count: PgPool,
}

impl System for Apalis {
    async fn open(url: &str, _args: &Args) -> Result<Self> {
        let pool = PgPool::connect(url).await?;
        PostgresStorage::setup(&pool).await?;
        let storage = PostgresStorage::<u64>::new(&pool).with_config(config());
        Ok(Apalis { pool, storage, stop: None, running: None, count: peers_common::count_pool(url).await? })
    }

    async fn insert_finished(&mut self, url: &str, count: u64) -> Result<()> {
        // Rows as a finished job leaves them: status Done, one attempt, the
        // JSON argument as bytes, `{"Ok": null}` as the result, locked by a
        // worker (one that stopped an hour ago) and done within the last hour.
        let sql = format!(
            "INSERT INTO apalis.workers (id, worker_type, storage_name, layers, last_seen)
             VALUES ('retired-worker', '{QUEUE}', 'PgStorage', '', now() - interval '1 hour');
             INSERT INTO apalis.jobs (job, id, job_type, status, attempts, max_attempts, run_at,
                                      lock_at, lock_by, done_at, last_result, priority)
             SELECT convert_to(g::text, 'UTF8'), apalis.generate_ulid(), '{QUEUE}', 'Done', 1, 25,
                    now() - interval '1 hour' + g * interval '1 ms',
                    now() - interval '1 hour' + g * interval '1 ms', 'retired-worker',
                    now() - interval '1 hour' + g * interval '1 ms', '{{\"Ok\": null}}'::jsonb, 0
             FROM generate_series(1, {count}) AS g"
        );
        peers_common::execute(url, &sql).await
    }

    async fn enqueue_bulk(&mut self, range: std::ops::Range<u64>) -> Result<()> {
        self.storage.push_bulk(range.collect()).await?;
        Ok(())
    }

    async fn enqueue_one(&mut self, n: u64) -> Result<()> {
        self.storage.push(n).await?;
        Ok(())
    }

    async fn start(&mut self, workers: usize) -> Result<()> {
        // LISTEN/NOTIFY as the wake-up, with polling as the fallback, the
        // shape of apalis-postgres's README "Pubsub listener example"
        // (`with_pubsub().poll_with_strategy(Strategy::new().interval(..))`),
        // at graphile_worker's 500 ms. Without the fallback a wake-up can be
        // lost: a notification that arrives while a fetch is in flight is
        // consumed, the fetch (begun before the insert committed) comes back
        // empty, and the worker parks until the next notification: a latency
        // run once waited over 10 s for its job.
        let fallback = Strategy::new().interval(Duration::from_millis(500));
        let backend = PostgresStorage::<u64>::new(&self.pool)
            .with_config(config())
            .with_pubsub()
            .poll_with_strategy(fallback);
        let worker = WorkerBuilder::new("peers-apalis")
            .backend(backend)
            .concurrency(workers)
            .parallelize(tokio::spawn)
            .build(noop);
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop = Some(stop);
        // The worker's own loop runs on a LocalSet: spawned onto the runtime,
        // its future does not pass rustc's Send check ("implementation of
        // FnOnce is not general enough") once `parallelize(tokio::spawn)`
        // is in it. The jobs themselves run on the runtime's threads.
        self.running = Some(tokio::task::spawn_local(async move {
            let signal = async move {
                let _ = stopped.await;
                Ok::<(), std::io::Error>(())
            };
            if let Err(e) = worker.run_until(signal).await {
                eprintln!("apalis: worker failed: {e}");
            }
        }));
        Ok(())
    }

    async fn finished(&mut self, expected: u64) -> Result<u64> {
        let left = peers_common::count(&self.count, "SELECT count(*) FROM apalis.jobs WHERE status <> 'Done'").await?;
        Ok(expected.saturating_sub(left))
    }

    async fn stop(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            running.await?;
        }
        self.count.close().await;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let local = tokio::task::LocalSet::new();
    local.run_until(peers_common::main::<Apalis>(Description {
        system: "apalis".into(),
        tuning: "as apalis-postgres's examples/basic.rs: `Config::batch_size(100)`, `lock_tasks(false)`, \
                 `with_pubsub()` (LISTEN/NOTIFY) with `poll_with_strategy(Strategy::new().interval(500 ms))` as the fallback, as its README's pubsub example; `parallelize(tokio::spawn)` as apalis's README; \
                 `concurrency(W)`; bulk enqueue with `push_bulk` (one multi-row INSERT per call), \
                 one job with `push`"
            .into(),
        retained_na: None,
    }))
    .await
}
