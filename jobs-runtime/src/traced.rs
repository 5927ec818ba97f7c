//! Tracing for every storage, in one place: a wrapper around the backend
//! that runs each call in a `debug` span named after it (`storage.fetch`,
//! ...) with its main figures, and records a failed call's error there.
//! Backends trace nothing themselves.

use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, Utc};
use jobs_core::{AggregateCountersParams, JobSearch, SearchPage, State, Statistics};
use jobs_core::{
    BatchId, BatchRecord, Notification, Paused, QueueCounts, ResolveAwaitingParams, SetPausedParams,
};
use jobs_core::{
    DueRecurring, DueRecurringParams, FireRecurringParams, PauseRecurringParams, RecurringJob,
    SaveRecurringParams, SyncRecurringParams,
};
use jobs_core::{
    EnqueueParams, ExpireParams, ExpiredLease, ExpiredLeasesParams, ExtendLeasesParams,
    FetchParams, FetchedJob, FinishParams, JobId, JobQuery, JobRecord, JobStorage, LeadParams,
    MaintenanceStorage, MonitoringStorage, MoveParams, NotificationStorage, PromoteParams,
    PruneServersParams, Result, ServerInfo, ServerRecord, ServerStorage, StateChange, StateCounts,
};
use jobs_core::{JobLogQuery, JobParameters, LogRecord, SetParametersParams, WriteLogParams};
use tracing::{Instrument, Span, debug, debug_span};

use crate::metrics;

/// A backend whose every call is traced.
pub(crate) struct Traced<B> {
    inner: B,
}

impl<B> Traced<B> {
    pub(crate) fn new(inner: B) -> Self {
        Traced { inner }
    }
}

/// Runs the storage call `name` in `span`, and records how long it took
/// ([`metrics::STORAGE_CALL_DURATION`]).
async fn traced<T>(
    name: &'static str,
    span: Span,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let started = Instant::now();
    let result = call.instrument(span.clone()).await;
    metrics::storage_call(name, result.is_ok(), started.elapsed());
    if let Err(error) = &result {
        span.in_scope(|| debug!(%error, "storage call failed"));
    }
    result
}

#[async_trait::async_trait]
impl<B: JobStorage> JobStorage for Traced<B> {
    async fn enqueue(&self, params: EnqueueParams) -> Result<Vec<JobId>> {
        let span = debug_span!(
            "storage.enqueue",
            jobs = params.jobs.len(),
            batches = params.batches.len()
        );
        traced("enqueue", span, self.inner.enqueue(params)).await
    }

    async fn fetch(&self, params: FetchParams) -> Result<Vec<FetchedJob>> {
        let span = debug_span!("storage.fetch", limit = params.limit);
        traced("fetch", span, self.inner.fetch(params)).await
    }

    async fn finish(&self, params: FinishParams) -> Result<Vec<JobId>> {
        let span = debug_span!("storage.finish", jobs = params.jobs.len());
        traced("finish", span, self.inner.finish(params)).await
    }

    async fn extend_leases(&self, params: ExtendLeasesParams) -> Result<Vec<JobId>> {
        let span = debug_span!("storage.extend_leases", jobs = params.jobs.len());
        traced("extend_leases", span, self.inner.extend_leases(params)).await
    }

    async fn move_jobs(&self, params: MoveParams) -> Result<Vec<JobId>> {
        let span = debug_span!("storage.move_jobs", jobs = params.ids.len(), to = %params.to);
        traced("move_jobs", span, self.inner.move_jobs(params)).await
    }

    async fn cancel_batch(&self, id: BatchId) -> Result<Vec<JobId>> {
        let span = debug_span!("storage.cancel_batch", batch = %id);
        traced("cancel_batch", span, self.inner.cancel_batch(id)).await
    }

    async fn set_paused(&self, params: SetPausedParams) -> Result<bool> {
        let span =
            debug_span!("storage.set_paused", target = %params.target, paused = params.paused);
        traced("set_paused", span, self.inner.set_paused(params)).await
    }

    async fn write_log(&self, params: WriteLogParams) -> Result<()> {
        let span = debug_span!(
            "storage.write_log",
            lines = params.lines.len(),
            progress = params.progress.len()
        );
        traced("write_log", span, self.inner.write_log(params)).await
    }

    async fn set_parameters(&self, params: SetParametersParams) -> Result<()> {
        let span = debug_span!("storage.set_parameters", job.id = %params.job);
        traced("set_parameters", span, self.inner.set_parameters(params)).await
    }
}

#[async_trait::async_trait]
impl<B: MaintenanceStorage> MaintenanceStorage for Traced<B> {
    async fn promote_scheduled(&self, params: PromoteParams) -> Result<u64> {
        let span = debug_span!("storage.promote_scheduled", limit = params.limit);
        traced(
            "promote_scheduled",
            span,
            self.inner.promote_scheduled(params),
        )
        .await
    }

    async fn expired_leases(&self, params: ExpiredLeasesParams) -> Result<Vec<ExpiredLease>> {
        let span = debug_span!("storage.expired_leases", limit = params.limit);
        traced("expired_leases", span, self.inner.expired_leases(params)).await
    }

    async fn resolve_awaiting(&self, params: ResolveAwaitingParams) -> Result<u64> {
        let span = debug_span!("storage.resolve_awaiting", limit = params.limit);
        traced(
            "resolve_awaiting",
            span,
            self.inner.resolve_awaiting(params),
        )
        .await
    }

    async fn rescue(&self, params: FinishParams) -> Result<Vec<JobId>> {
        let span = debug_span!("storage.rescue", jobs = params.jobs.len());
        traced("rescue", span, self.inner.rescue(params)).await
    }

    async fn aggregate_counters(&self, params: AggregateCountersParams) -> Result<u64> {
        traced(
            "aggregate_counters",
            debug_span!("storage.aggregate_counters"),
            self.inner.aggregate_counters(params),
        )
        .await
    }

    async fn expire(&self, params: ExpireParams) -> Result<u64> {
        let span = debug_span!("storage.expire", older_than = ?params.older_than);
        traced("expire", span, self.inner.expire(params)).await
    }

    async fn try_lead(&self, params: LeadParams) -> Result<bool> {
        let span = debug_span!("storage.try_lead", name = %params.name);
        traced("try_lead", span, self.inner.try_lead(params)).await
    }

    async fn resign(&self, name: &str, server: &str) -> Result<()> {
        let span = debug_span!("storage.resign", name);
        traced("resign", span, self.inner.resign(name, server)).await
    }

    async fn clock(&self) -> Result<DateTime<Utc>> {
        traced("clock", debug_span!("storage.clock"), self.inner.clock()).await
    }

    async fn save_recurring(&self, params: SaveRecurringParams) -> Result<()> {
        let span = debug_span!("storage.save_recurring", recurring.id = %params.definition.id);
        traced("save_recurring", span, self.inner.save_recurring(params)).await
    }

    async fn sync_recurring(&self, params: SyncRecurringParams) -> Result<u64> {
        let span = debug_span!("storage.sync_recurring", jobs = params.jobs.len());
        traced("sync_recurring", span, self.inner.sync_recurring(params)).await
    }

    async fn pause_recurring(&self, params: PauseRecurringParams) -> Result<bool> {
        let span = debug_span!("storage.pause_recurring", recurring.id = %params.id, paused = params.paused);
        traced("pause_recurring", span, self.inner.pause_recurring(params)).await
    }

    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        let span = debug_span!("storage.remove_recurring", recurring.id = %id);
        traced("remove_recurring", span, self.inner.remove_recurring(id)).await
    }

    async fn due_recurring(&self, params: DueRecurringParams) -> Result<DueRecurring> {
        let span = debug_span!("storage.due_recurring", limit = params.limit);
        traced("due_recurring", span, self.inner.due_recurring(params)).await
    }

    async fn fire_recurring(&self, params: FireRecurringParams) -> Result<Option<Vec<JobId>>> {
        let span = debug_span!("storage.fire_recurring", recurring.id = %params.id, jobs = params.jobs.len());
        traced("fire_recurring", span, self.inner.fire_recurring(params)).await
    }
}

#[async_trait::async_trait]
impl<B: MonitoringStorage> MonitoringStorage for Traced<B> {
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        traced(
            "job",
            debug_span!("storage.job", job.id = %id),
            self.inner.job(id),
        )
        .await
    }

    async fn history(&self, id: JobId) -> Result<Vec<StateChange>> {
        traced(
            "history",
            debug_span!("storage.history", job.id = %id),
            self.inner.history(id),
        )
        .await
    }

    async fn search_jobs(&self, search: JobSearch) -> Result<SearchPage> {
        let span = debug_span!("storage.search_jobs", state = ?search.jobs.state);
        traced("search_jobs", span, self.inner.search_jobs(search)).await
    }

    async fn continuations(&self, parent: jobs_core::Parent) -> Result<Vec<JobRecord>> {
        traced(
            "continuations",
            debug_span!("storage.continuations"),
            self.inner.continuations(parent),
        )
        .await
    }

    async fn list_batches(&self, query: jobs_core::BatchQuery) -> Result<Vec<BatchRecord>> {
        let span = debug_span!("storage.list_batches", finished = query.finished);
        traced("list_batches", span, self.inner.list_batches(query)).await
    }

    async fn statistics(&self) -> Result<Statistics> {
        traced(
            "statistics",
            debug_span!("storage.statistics"),
            self.inner.statistics(),
        )
        .await
    }

    async fn queue_counts(&self) -> Result<Vec<QueueCounts>> {
        traced(
            "queue_counts",
            debug_span!("storage.queue_counts"),
            self.inner.queue_counts(),
        )
        .await
    }

    async fn counts_of(&self, states: &[State]) -> Result<StateCounts> {
        traced(
            "counts_of",
            debug_span!("storage.counts_of"),
            self.inner.counts_of(states),
        )
        .await
    }

    async fn counts(&self) -> Result<StateCounts> {
        traced("counts", debug_span!("storage.counts"), self.inner.counts()).await
    }

    async fn list_jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>> {
        let span = debug_span!("storage.list_jobs", state = ?query.state, limit = query.limit);
        traced("list_jobs", span, self.inner.list_jobs(query)).await
    }

    async fn recurring_jobs(&self) -> Result<Vec<RecurringJob>> {
        traced(
            "recurring_jobs",
            debug_span!("storage.recurring_jobs"),
            self.inner.recurring_jobs(),
        )
        .await
    }

    async fn recurring_job(&self, id: &str) -> Result<Option<RecurringJob>> {
        let span = debug_span!("storage.recurring_job", recurring.id = %id);
        traced("recurring_job", span, self.inner.recurring_job(id)).await
    }

    async fn batch(&self, id: &BatchId) -> Result<Option<BatchRecord>> {
        let span = debug_span!("storage.batch", batch = %id);
        traced("batch", span, self.inner.batch(id)).await
    }

    async fn paused(&self) -> Result<Vec<Paused>> {
        traced("paused", debug_span!("storage.paused"), self.inner.paused()).await
    }

    async fn job_parameters(&self, id: JobId) -> Result<JobParameters> {
        let span = debug_span!("storage.job_parameters", job.id = %id);
        traced("job_parameters", span, self.inner.job_parameters(id)).await
    }

    async fn job_log(&self, query: JobLogQuery) -> Result<Vec<LogRecord>> {
        let span = debug_span!("storage.job_log", job.id = %query.job);
        traced("job_log", span, self.inner.job_log(query)).await
    }
}

#[async_trait::async_trait]
impl<B: ServerStorage> ServerStorage for Traced<B> {
    async fn register_server(&self, server: ServerInfo) -> Result<()> {
        let span = debug_span!("storage.register_server", server = %server.id);
        traced("register_server", span, self.inner.register_server(server)).await
    }

    async fn heartbeat(&self, server: &str) -> Result<bool> {
        traced(
            "heartbeat",
            debug_span!("storage.heartbeat"),
            self.inner.heartbeat(server),
        )
        .await
    }

    async fn unregister_server(&self, server: &str) -> Result<()> {
        let span = debug_span!("storage.unregister_server", server);
        traced(
            "unregister_server",
            span,
            self.inner.unregister_server(server),
        )
        .await
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        traced(
            "servers",
            debug_span!("storage.servers"),
            self.inner.servers(),
        )
        .await
    }

    async fn prune_servers(&self, params: PruneServersParams) -> Result<u64> {
        let span = debug_span!("storage.prune_servers", silent_for = ?params.silent_for);
        traced("prune_servers", span, self.inner.prune_servers(params)).await
    }
}

#[async_trait::async_trait]
impl<B: NotificationStorage> NotificationStorage for Traced<B> {
    async fn listen(&self, notify: &(dyn Fn(Notification) + Send + Sync)) -> Result<()> {
        // Not timed: it lasts as long as the listening does.
        self.inner
            .listen(notify)
            .instrument(debug_span!("storage.listen"))
            .await
    }
}
