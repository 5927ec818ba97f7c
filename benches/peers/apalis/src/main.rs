//! apalis 1.x with apalis-postgres, set up as apalis-postgres's own
//! examples do for a busy queue (examples/basic.rs of the crate):
//! `Config::batch_size(100)`, `lock_tasks(false)`, `with_pubsub()` (a
//! LISTEN/NOTIFY wake-up when a job is inserted), `parallelize(tokio::spawn)`
//! (apalis's README: multi-threaded execution); `concurrency(W)` limits the
//! jobs in flight to the same worker count as the other systems.

use anyhow::Result;
use apalis::prelude::*;
use apalis_postgres::{Config, PgPool, PostgresStorage};
use futures::stream;
use peers_common::{Args, Description, System};
use tokio::sync::oneshot;

const QUEUE: &str = "noop";

/// The no-op job: counts its execution, nothing else.
async fn noop(n: u64) -> Result<(), BoxDynError> {
    peers_common::ran(n);
    Ok(())
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
        // Rows as a finished job leaves them: status Done, one attempt,
        // the JSON argument as bytes, done within the last hour.
        let sql = format!(
            "INSERT INTO apalis.jobs (job, id, job_type, status, attempts, max_attempts, run_at,
                                      done_at, last_result, priority)
             SELECT convert_to(g::text, 'UTF8'), apalis.generate_ulid(), '{QUEUE}', 'Done', 1, 25,
                    now() - interval '1 hour' + g * interval '1 ms',
                    now() - interval '1 hour' + g * interval '1 ms', 'null'::jsonb, 0
             FROM generate_series(1, {count}) AS g"
        );
        peers_common::execute(url, &sql).await
    }

    async fn enqueue_bulk(&mut self, range: std::ops::Range<u64>) -> Result<()> {
        let mut items = stream::iter(range);
        self.storage.push_all(&mut items).await?;
        Ok(())
    }

    async fn enqueue_one(&mut self, n: u64) -> Result<()> {
        self.storage.push(n).await?;
        Ok(())
    }

    async fn start(&mut self, workers: usize) -> Result<()> {
        let backend = PostgresStorage::<u64>::new(&self.pool).with_config(config()).with_pubsub();
        let worker = WorkerBuilder::new("peers-apalis")
            .backend(backend)
            .concurrency(workers)
            .parallelize(tokio::spawn)
            .build(noop);
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop = Some(stop);
        self.running = Some(tokio::spawn(async move {
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
    peers_common::main::<Apalis>(Description {
        system: "apalis".into(),
        tuning: "as apalis-postgres's examples/basic.rs: `Config::batch_size(100)`, `lock_tasks(false)`, \
                 `with_pubsub()` (LISTEN/NOTIFY); `parallelize(tokio::spawn)` as apalis's README; \
                 `concurrency(W)`; bulk enqueue with `push_all` (one multi-row INSERT per call), \
                 one job with `push`"
            .into(),
        retained_na: None,
    })
    .await
}
