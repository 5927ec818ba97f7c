//! `jobs` (this repository, by path) as a user runs it: `Storage::connect`,
//! `Client::enqueue_many`, `Server::builder(..).workers(W).start()`, all
//! other settings at their defaults.

use anyhow::Result;
use jobs::prelude::*;
use peers_common::{Args, Description, System};

/// The no-op job: counts its execution, nothing else.
#[job(name = "peers.noop")]
async fn noop(n: u64) {
    peers_common::ran(n);
}

struct Jobs {
    storage: Storage,
    count: peers_common::PgPool,
    client: Client,
    server: Option<jobs::ServerHandle>,
}

impl System for Jobs {
    async fn open(url: &str, _args: &Args) -> Result<Self> {
        let storage = Storage::connect(url).await?;
        let client = Client::new(storage.clone());
        let count = peers_common::count_pool(url).await?;
        Ok(Jobs { storage, count, client, server: None })
    }

    async fn insert_finished(&mut self, url: &str, count: u64) -> Result<()> {
        // Rows as a finished `noop` leaves them (state Succeeded, attempt 1),
        // finished within the last hour so that expiration (after a day)
        // leaves them be. No history rows are written for them: the insert
        // runs with `session_replication_role = replica`, so that no
        // trigger fires (migrations before 0003 recorded history by trigger).
        let sql = format!(
            "SET session_replication_role = replica;
             INSERT INTO jobs.jobs_job (name, queue, args, state, attempt, max_attempts,
                                        created_at, state_changed_at, server)
             SELECT 'peers.noop', 'default', '{{\"n\":' || g || '}}', 'Succeeded', 1, 11,
                    now() - interval '1 hour' + g * interval '1 ms',
                    now() - interval '1 hour' + g * interval '2 ms', 'retained'
             FROM generate_series(1, {count}) AS g;
             SET session_replication_role = DEFAULT;"
        );
        peers_common::execute(url, &sql).await
    }

    async fn enqueue_bulk(&mut self, range: std::ops::Range<u64>) -> Result<()> {
        self.client.enqueue_many(range.map(|n| Noop { n })).await?;
        Ok(())
    }

    async fn enqueue_one(&mut self, n: u64) -> Result<()> {
        noop::enqueue(&self.client, n).await?;
        Ok(())
    }

    async fn start(&mut self, workers: usize) -> Result<()> {
        self.server = Some(Server::builder(self.storage.clone()).workers(workers).start()?);
        Ok(())
    }

    async fn finished(&mut self, expected: u64) -> Result<u64> {
        // Jobs still waiting or held, each state through its partial index
        // (as cheap as the peers' counts, whatever is retained).
        let left = peers_common::count(
            &self.count,
            "SELECT (SELECT count(*) FROM jobs.jobs_job WHERE state = 'Enqueued')
                  + (SELECT count(*) FROM jobs.jobs_job WHERE state = 'Processing')
                  + (SELECT count(*) FROM jobs.jobs_job WHERE state = 'Scheduled')",
        )
        .await?;
        Ok(expected.saturating_sub(left))
    }

    async fn stop(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    peers_common::main::<Jobs>(Description {
        system: "jobs".into(),
        tuning: "defaults (`Storage::connect`, `Server::builder(storage).workers(W).start()`); \
                 bulk enqueue with `Client::enqueue_many`, one job with `noop::enqueue`"
            .into(),
        retained_na: None,
    })
    .await
}
