//! The completer against a storage that refuses some writes: a wrapper
//! around a real SQLite storage that refuses, for good, any batch holding
//! an outcome whose text contains `POISON`, and that is "away" (transient
//! errors) for its first few writes. One refused outcome must not hold back
//! the others; the refused job ends with a fallback reason; nothing is lost
//! while the storage is away.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use common::*;
use jobs::prelude::*;
use jobs::storage::*;
use jobs::{BatchId, Error, JobQuery, JobRecord, StateChange, StateCounts};

/// SQLite, but `finish` refuses batches with `POISON` in a text (an error
/// that would repeat) and fails its first `away` calls as if the database
/// were unreachable.
struct Refusing {
    inner: SqliteStorage,
    away: AtomicUsize,
}

fn poisoned(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Succeeded { result } => result.as_deref().is_some_and(|r| r.contains("POISON")),
        Outcome::Failed { reason }
        | Outcome::Requeue { reason, .. }
        | Outcome::Rescued { reason, .. } => reason.contains("POISON"),
        Outcome::Retry { reason, error, .. } => {
            reason.contains("POISON") || error.contains("POISON")
        }
    }
}

#[async_trait::async_trait]
impl JobStorage for Refusing {
    async fn finish(&self, params: FinishParams) -> jobs::Result<Vec<JobId>> {
        if self
            .away
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::transient_storage(
                "recording outcomes",
                "the database is away",
            ));
        }
        if params.jobs.iter().any(|job| poisoned(&job.outcome)) {
            return Err(Error::storage(
                "recording outcomes",
                "value refused by the test",
            ));
        }
        self.inner.finish(params).await
    }
    async fn enqueue(&self, p: EnqueueParams) -> jobs::Result<Vec<JobId>> {
        self.inner.enqueue(p).await
    }
    async fn fetch(&self, p: FetchParams) -> jobs::Result<Vec<FetchedJob>> {
        self.inner.fetch(p).await
    }
    async fn extend_leases(&self, p: ExtendLeasesParams) -> jobs::Result<Vec<JobId>> {
        self.inner.extend_leases(p).await
    }
    async fn move_jobs(&self, p: MoveParams) -> jobs::Result<Vec<JobId>> {
        self.inner.move_jobs(p).await
    }
    async fn cancel_batch(&self, id: BatchId) -> jobs::Result<Vec<JobId>> {
        self.inner.cancel_batch(id).await
    }
    async fn set_paused(&self, p: SetPausedParams) -> jobs::Result<bool> {
        self.inner.set_paused(p).await
    }
    async fn write_log(&self, p: WriteLogParams) -> jobs::Result<()> {
        self.inner.write_log(p).await
    }
    async fn set_parameters(&self, p: SetParametersParams) -> jobs::Result<()> {
        self.inner.set_parameters(p).await
    }
}

#[async_trait::async_trait]
impl MaintenanceStorage for Refusing {
    async fn promote_scheduled(&self, p: PromoteParams) -> jobs::Result<u64> {
        self.inner.promote_scheduled(p).await
    }
    async fn expired_leases(&self, p: ExpiredLeasesParams) -> jobs::Result<Vec<ExpiredLease>> {
        self.inner.expired_leases(p).await
    }
    async fn rescue(&self, p: FinishParams) -> jobs::Result<Vec<JobId>> {
        self.inner.rescue(p).await
    }
    async fn aggregate_counters(&self, p: AggregateCountersParams) -> jobs::Result<u64> {
        self.inner.aggregate_counters(p).await
    }
    async fn expire(&self, p: ExpireParams) -> jobs::Result<u64> {
        self.inner.expire(p).await
    }
    async fn try_lead(&self, p: LeadParams) -> jobs::Result<bool> {
        self.inner.try_lead(p).await
    }
    async fn resign(&self, name: &str, server: &str) -> jobs::Result<()> {
        self.inner.resign(name, server).await
    }
    async fn clock(&self) -> jobs::Result<chrono::DateTime<chrono::Utc>> {
        self.inner.clock().await
    }
    async fn save_recurring(&self, p: SaveRecurringParams) -> jobs::Result<()> {
        self.inner.save_recurring(p).await
    }
    async fn sync_recurring(&self, p: SyncRecurringParams) -> jobs::Result<u64> {
        self.inner.sync_recurring(p).await
    }
    async fn pause_recurring(&self, p: PauseRecurringParams) -> jobs::Result<bool> {
        self.inner.pause_recurring(p).await
    }
    async fn remove_recurring(&self, id: &str) -> jobs::Result<bool> {
        self.inner.remove_recurring(id).await
    }
    async fn due_recurring(&self, p: DueRecurringParams) -> jobs::Result<DueRecurring> {
        self.inner.due_recurring(p).await
    }
    async fn fire_recurring(&self, p: FireRecurringParams) -> jobs::Result<Option<Vec<JobId>>> {
        self.inner.fire_recurring(p).await
    }
    async fn resolve_awaiting(&self, p: ResolveAwaitingParams) -> jobs::Result<u64> {
        self.inner.resolve_awaiting(p).await
    }
}

#[async_trait::async_trait]
impl MonitoringStorage for Refusing {
    async fn job(&self, id: JobId) -> jobs::Result<Option<JobRecord>> {
        self.inner.job(id).await
    }
    async fn history(&self, id: JobId) -> jobs::Result<Vec<StateChange>> {
        self.inner.history(id).await
    }
    async fn search_jobs(&self, search: JobSearch) -> jobs::Result<SearchPage> {
        self.inner.search_jobs(search).await
    }
    async fn continuations(&self, parent: Parent) -> jobs::Result<Vec<JobRecord>> {
        self.inner.continuations(parent).await
    }
    async fn list_batches(&self, query: BatchQuery) -> jobs::Result<Vec<BatchRecord>> {
        self.inner.list_batches(query).await
    }
    async fn statistics(&self) -> jobs::Result<Statistics> {
        self.inner.statistics().await
    }
    async fn queue_counts(&self) -> jobs::Result<Vec<jobs::QueueCounts>> {
        self.inner.queue_counts().await
    }
    async fn counts_of(&self, states: &[State]) -> jobs::Result<StateCounts> {
        self.inner.counts_of(states).await
    }
    async fn counts(&self) -> jobs::Result<StateCounts> {
        self.inner.counts().await
    }
    async fn list_jobs(&self, query: JobQuery) -> jobs::Result<Vec<JobRecord>> {
        self.inner.list_jobs(query).await
    }
    async fn recurring_jobs(&self) -> jobs::Result<Vec<RecurringJob>> {
        self.inner.recurring_jobs().await
    }
    async fn recurring_job(&self, id: &str) -> jobs::Result<Option<RecurringJob>> {
        self.inner.recurring_job(id).await
    }
    async fn batch(&self, id: &BatchId) -> jobs::Result<Option<BatchRecord>> {
        self.inner.batch(id).await
    }
    async fn paused(&self) -> jobs::Result<Vec<Paused>> {
        self.inner.paused().await
    }
    async fn job_parameters(&self, id: JobId) -> jobs::Result<JobParameters> {
        self.inner.job_parameters(id).await
    }
    async fn job_log(&self, q: JobLogQuery) -> jobs::Result<Vec<LogRecord>> {
        self.inner.job_log(q).await
    }
}

#[async_trait::async_trait]
impl ServerStorage for Refusing {
    async fn register_server(&self, s: ServerInfo) -> jobs::Result<()> {
        self.inner.register_server(s).await
    }
    async fn heartbeat(&self, s: &str) -> jobs::Result<bool> {
        self.inner.heartbeat(s).await
    }
    async fn unregister_server(&self, s: &str) -> jobs::Result<()> {
        self.inner.unregister_server(s).await
    }
    async fn servers(&self) -> jobs::Result<Vec<ServerRecord>> {
        self.inner.servers().await
    }
    async fn prune_servers(&self, p: PruneServersParams) -> jobs::Result<u64> {
        self.inner.prune_servers(p).await
    }
}

#[async_trait::async_trait]
impl NotificationStorage for Refusing {
    async fn listen(&self, notify: &(dyn Fn(Notification) + Send + Sync)) -> jobs::Result<()> {
        self.inner.listen(notify).await
    }
}

static RUNS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

/// Records that it ran.
#[job(name = "refused.counted")]
async fn counted(key: String) {
    *RUNS.lock().unwrap().entry(key).or_default() += 1;
}

/// Fails for good with this text.
#[job(name = "refused.fails_with", retries = 0)]
async fn fails_with(text: String) -> Result<(), String> {
    Err(text)
}

/// Fails with this text on its first attempt, then succeeds.
#[job(name = "refused.fails_once_with", retries = 1, backoff = "10ms")]
async fn fails_once_with(ctx: JobContext, text: String) -> Result<(), String> {
    if ctx.attempt() == 1 {
        Err(text)
    } else {
        Ok(())
    }
}

async fn refusing_storage(away: usize) -> (tempfile::TempDir, Storage, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let inner = SqliteStorage::connect(&url).await.unwrap();
    let storage = Storage::new(Refusing {
        inner,
        away: AtomicUsize::new(away),
    });
    // Reads go straight to the file, through a handle of their own.
    let reader = Storage::connect(&url).await.unwrap();
    (dir, storage, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_outcome_gets_a_fallback_reason_and_holds_back_no_other() {
    let (_dir, storage, reader) = refusing_storage(0).await;
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).workers(4).start().unwrap();
    let failed = fails_with::enqueue(&client, "POISON in a failure".into())
        .await
        .unwrap();
    let retried = fails_once_with::enqueue(&client, "POISON in a retry".into())
        .await
        .unwrap();
    let mut good = Vec::new();
    for n in 0..50 {
        let key = format!("refused-{n}");
        good.push((counted::enqueue(&client, key.clone()).await.unwrap(), key));
    }
    let failed = wait_for_state(&reader, failed, State::Failed).await;
    wait_for_state(&reader, retried, State::Succeeded).await;
    for (id, key) in &good {
        wait_for_state(&reader, *id, State::Succeeded).await;
        assert_eq!(RUNS.lock().unwrap().get(key), Some(&1), "{key}");
    }
    server.shutdown().await;
    let reason = failed.reason.unwrap();
    assert!(
        reason.starts_with("the job failed (the original text could not be stored"),
        "{reason}"
    );
    assert!(reason.contains("value refused by the test"), "{reason}");
    let history = reader.history(retried).await.unwrap();
    let retry = history
        .iter()
        .find(|c| c.state == State::Scheduled)
        .unwrap();
    let error = retry.data.as_ref().unwrap()["error"].as_str().unwrap();
    assert!(error.contains("could not be stored"), "{error}");
    for change in history
        .iter()
        .chain(reader.history(failed.id).await.unwrap().iter())
    {
        let reason = change.reason.as_deref().unwrap_or_default();
        assert!(!reason.contains("rescued"), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_wait_while_the_storage_is_away_and_are_all_recorded() {
    let (_dir, storage, reader) = refusing_storage(4).await;
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).workers(4).start().unwrap();
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            counted::enqueue(&client, format!("away-{n}"))
                .await
                .unwrap(),
        );
    }
    for id in &ids {
        wait_for_state(&reader, *id, State::Succeeded).await;
    }
    server.shutdown().await;
    for n in 0..20 {
        assert_eq!(RUNS.lock().unwrap().get(&format!("away-{n}")), Some(&1));
    }
}
