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
    client: Client,
    server: Option<jobs::ServerHandle>,
}

impl System for Jobs {
    async fn open(url: &str, _args: &Args) -> Result<Self> {
        let storage = Storage::connect(url).await?;
        let client = Client::new(storage.clone());
        Ok(Jobs { storage, client, server: None })
    }

    async fn insert_finished(&mut self, url: &str, count: u64) -> Result<()> {
        // Rows as a finished `noop` leaves them (state Succeeded, attempt 1),
        // finished within the last hour so that expiration (after a day)
        // leaves them be. The history table stays empty for them: the
        // triggers that record it are skipped for this one insert.
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

    async fn finished(&mut self, _expected: u64) -> Result<u64> {
        Ok(self.storage.counts().await?.get(State::Succeeded))
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
