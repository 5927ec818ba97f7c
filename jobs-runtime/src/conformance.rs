//! The conformance suite that every storage runs, through the handle users
//! get: one `async fn` per behaviour of the storage contract
//! ([`StorageBackend`](jobs_core::StorageBackend)), split by area like
//! River's `riverdrivertest`, and
//! [`storage_conformance_tests!`](crate::storage_conformance_tests) to turn
//! them into tests for one storage.
//!
//! Every case takes a [`Storage`], the handle applications hold, and reaches
//! the backend only through it: its public methods (`job`, `history`,
//! `counts`, `list_jobs`, `servers`, `requeue`, `delete`) where they exist,
//! and for the server's calls (fetch, finish, leases, maintenance, the
//! registry, notifications) the backend the handle wraps, as the server
//! itself reaches it. So the suite also checks the handle: a call its
//! tracing wrapper failed to forward fails a case.
//!
//! Each case gets a fresh, empty, migrated storage and panics on a breach.
//! A case that waits for something to happen (a lease to expire, a
//! leadership to run out, a notification to arrive) waits on the condition
//! itself, up to a deadline of ten seconds, never on a sleep that hopes it
//! was long enough; the few that need time to have passed (a server silent,
//! a finished job old enough to expire) sleep well past the threshold they
//! test.
//!
//! # Running it against a storage of your own
//!
//! In an integration test of your crate (the macro needs only
//! `jobs-runtime`, or the `jobs` facade, as a dependency: not `tokio`),
//! give it an `async fn` that opens a fresh, empty storage for each test
//! and wraps it in the handle:
//!
//! ```no_run
//! // tests/conformance.rs of the crate `my_storage`
//! # mod my_storage {
//! #     pub struct MyBackend;
//! #     impl MyBackend {
//! #         pub async fn open_empty() -> jobs_core::Result<jobs_runtime::sqlite::SqliteStorage> {
//! #             jobs_runtime::sqlite::SqliteStorage::connect("sqlite::memory:").await
//! #         }
//! #     }
//! # }
//! use jobs_runtime::Storage;
//! use my_storage::MyBackend; // implements the five traits of the contract
//!
//! /// A fresh, empty storage per test; `None` skips the test (say why on
//! /// stderr), e.g. when its database server is not reachable.
//! async fn fresh() -> Option<Storage> {
//!     let backend = MyBackend::open_empty().await.expect("a fresh storage");
//!     Some(Storage::new(backend))
//! }
//!
//! jobs_runtime::storage_conformance_tests!(fresh);
//! # fn main() {}
//! ```
//!
//! `cargo test --test conformance` then runs one test per case, named after
//! it. The function may return, instead of `Storage`, any type that
//! dereferences to it (`Deref<Target = Storage>`): a struct holding the
//! handle and whatever must live as long as the test (a temporary
//! directory, a schema dropped at the end), as our own SQLite and
//! PostgreSQL tests do.
//!
//! A storage without notifications (its
//! [`listen`](jobs_core::NotificationStorage::listen) stays
//! pending, so servers poll) says so with
//! `storage_conformance_tests!(fresh, notifications = false)`; the
//! notification case then checks that it indeed stays pending and never
//! wakes. Without the flag, that case expects notifications and its failure
//! says to pass the flag.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::{AggregateCountersParams, Continuation, ContinueOn, JobSearch, Parent};
use jobs_core::{
    Attempt, EnqueueParams, Error, ExpireParams, ExpiredLease, ExpiredLeasesParams,
    ExtendLeasesParams, FetchParams, FetchedJob, FinishParams, JobId, JobOutcome, JobQuery,
    JobRecord, LeadParams, MAINTENANCE_LEADERSHIP, MoveParams, NewJob, Notification, Outcome,
    PromoteParams, PruneServersParams, Schedule, ServerInfo, State, StateChange, decide,
};

use crate::Storage;

mod batches;
mod continuations;
mod control;
mod job_data;
mod recurring;
pub use batches::*;
pub use continuations::*;
pub use control::*;
pub use job_data::*;
pub use recurring::*;

/// Generates one test per conformance case, each run on a Tokio runtime of
/// two worker threads (as `#[tokio::test(flavor = "multi_thread",
/// worker_threads = 2)]` would, but without needing `tokio` as a
/// dependency of the crate that calls the macro).
///
/// `$make` is an `async fn() -> Option<T>`, where `T` is [`Storage`](crate::Storage)
/// or dereferences to it: a fresh, empty storage per test, or `None` to
/// skip the test (say why on stderr). See the [module](crate::conformance)
/// for an example.
///
/// `notifications = false` declares a storage whose `listen` stays
/// pending (polling alone); by default the suite expects notifications.
#[macro_export]
macro_rules! storage_conformance_tests {
    ($make:path $(,)?) => {
        $crate::storage_conformance_tests!($make, notifications = true);
    };
    ($make:path, notifications = $notifies:expr $(,)?) => {
        $crate::__storage_conformance_cases!($make;
            enqueue_returns_ids_in_order,
            enqueue_refuses_zero_attempts,
            enqueue_at_a_time_schedules,
            schedule_in_is_due_its_delay_after_it_is_stored,
            enqueue_many_is_one_transaction,
            fetch_takes_queues_in_priority_then_fifo,
            fetch_respects_the_limit,
            fetch_skips_jobs_of_other_states,
            concurrent_fetches_never_share_a_job,
            finish_succeeded_records_the_history,
            finish_records_every_kind_of_outcome_at_once,
            finish_is_fenced_by_attempt,
            finish_refuses_jobs_not_processing,
            finish_failed_records_the_reason,
            finish_retry_schedules_after_the_delay,
            a_forgiven_retry_does_not_count,
            finish_requeue_gives_back_the_attempt,
            promote_moves_only_due_jobs,
            operator_moves_follow_can_move_to,
            requeue_and_delete_report_refusals,
            move_jobs_elsewhere_is_a_config_error,
            requeue_gives_an_exhausted_job_one_more_attempt,
            requeue_fences_the_running_attempt,
            extend_leases_keeps_jobs_from_rescue,
            expired_leases_lists_only_expired_attempts,
            rescue_enqueues_or_fails_expired_jobs,
            rescue_skips_a_lease_renewed_meanwhile,
            counts_by_state,
            statistics_count_finished_jobs,
            search_jobs_filters_a_bounded_window,
            unknown_job_reads_as_none,
            list_jobs_pages_newest_first,
            servers_register_heartbeat_and_are_pruned,
            one_leader_at_a_time,
            leaderships_are_held_by_name,
            unregister_server_frees_its_leaderships,
            expire_deletes_only_old_finished_jobs,
            recurring_jobs_are_saved_and_listed,
            a_tick_is_claimed_once,
            due_lists_only_jobs_whose_tick_came,
            recurring_jobs_pause_resume_trigger_and_remove,
            sync_marks_jobs_missing_from_code,
            a_continuation_waits_and_gets_its_parents_result,
            continue_on_decides_enqueued_or_deleted,
            a_continuation_of_a_finished_parent_is_decided_at_once,
            a_continuation_of_an_unknown_parent_is_refused,
            resolve_awaiting_decides_chains_of_continuations,
            a_continuation_racing_its_parents_finish_is_never_stranded,
            batch_and_its_jobs_are_created_together,
            batches_are_listed_by_state_in_pages,
            continuations_are_read_by_parent,
            batch_finishes_when_every_member_has,
            batch_with_a_failed_member_finishes_failed,
            nested_batches_finish_inside_out,
            jobs_join_only_a_started_batch,
            cancel_deletes_a_batchs_waiting_members,
            batches_expire_with_their_members,
            a_batch_never_finishes_over_a_member_joining,
            fetch_orders_a_queue_by_priority_then_enqueue_order,
            paused_queues_and_job_names_are_not_fetched,
            move_jobs_takes_only_the_states_it_names,
            a_unique_job_returns_the_holder_of_its_key,
            concurrent_enqueues_of_a_unique_key_store_one_job,
            a_unique_continuation_is_refused,
            a_fetch_keeps_each_key_within_its_limit,
            concurrent_fetches_never_exceed_a_limit,
            a_move_leaves_alone_a_unique_job_whose_key_is_held,
            parameters_are_stored_with_new_jobs_not_with_duplicates,
            set_parameters_adds_and_replaces,
            write_log_appends_lines_and_current_progress,
            a_jobs_log_and_parameters_expire_with_it,
        );

        #[test]
        fn listen_notifies_enqueued_jobs() {
            $crate::conformance::run(async {
                let Some(storage) = $make().await else { return };
                $crate::conformance::listen_notifies_enqueued_jobs(&storage, $notifies).await;
            });
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __storage_conformance_cases {
    ($make:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run(async {
                    let Some(storage) = $make().await else { return };
                    $crate::conformance::$case(&storage).await;
                });
            }
        )*
    };
}

/// Runs one case on a Tokio runtime of two worker threads. For the macro.
#[doc(hidden)]
pub fn run(case: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime for the conformance case")
        .block_on(case);
}

// ---- helpers ---------------------------------------------------------------

/// How long a case waits for a condition (a lease to expire, a wake-up)
/// before it fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// The server the suite fetches for.
const SERVER: &str = "conformance-server";

/// The states a job reaches through the API alone: all of them.
fn reachable() -> impl Iterator<Item = State> {
    State::ALL.into_iter()
}

fn new_job(name: &str, queue: &str) -> NewJob {
    NewJob::new(name, queue, format!(r#"{{"name":"{name}"}}"#), 3)
}

fn scheduled(mut job: NewJob, schedule: Schedule) -> NewJob {
    job.schedule = schedule;
    job
}

const AN_HOUR: Duration = Duration::from_secs(3600);

async fn enqueue(storage: &Storage, jobs: Vec<NewJob>) -> Vec<JobId> {
    storage
        .enqueue(EnqueueParams::jobs(jobs))
        .await
        .expect("enqueue")
}

async fn fetch(storage: &Storage, queues: &[&str], limit: usize) -> Vec<FetchedJob> {
    fetch_with_lease(storage, queues, limit, Duration::from_secs(60)).await
}

async fn fetch_with_lease(
    storage: &Storage,
    queues: &[&str],
    limit: usize,
    lease: Duration,
) -> Vec<FetchedJob> {
    storage
        .backend()
        .fetch(FetchParams {
            queues: queues.iter().map(|q| (*q).to_owned()).collect(),
            limit,
            server: SERVER.to_owned(),
            lease,
        })
        .await
        .expect("fetch")
}

fn ids_of(jobs: &[FetchedJob]) -> Vec<JobId> {
    jobs.iter().map(|job| job.id).collect()
}

/// Finishes one attempt; the ids that moved.
async fn finish(storage: &Storage, job: Attempt, outcome: Outcome) -> Vec<JobId> {
    finish_all(storage, vec![(job, outcome)]).await
}

async fn finish_all(storage: &Storage, outcomes: Vec<(Attempt, Outcome)>) -> Vec<JobId> {
    storage
        .finish(FinishParams {
            jobs: outcomes
                .into_iter()
                .map(|(job, outcome)| JobOutcome { job, outcome })
                .collect(),
        })
        .await
        .expect("finish")
}

async fn extend(storage: &Storage, jobs: Vec<Attempt>, lease: Duration) -> Vec<JobId> {
    storage
        .backend()
        .extend_leases(ExtendLeasesParams { jobs, lease })
        .await
        .expect("extend leases")
}

async fn expired_leases(storage: &Storage) -> Vec<ExpiredLease> {
    storage
        .backend()
        .expired_leases(ExpiredLeasesParams { limit: 100 })
        .await
        .expect("expired leases")
}

/// Waits until every attempt of `jobs` shows as expired; the whole list
/// then.
async fn wait_for_expired(storage: &Storage, jobs: &[JobId]) -> Vec<ExpiredLease> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let expired = expired_leases(storage).await;
        let listed: HashSet<JobId> = expired.iter().map(|lease| lease.job.id).collect();
        if jobs.iter().all(|id| listed.contains(id)) {
            return expired;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leases of {jobs:?} did not show as expired within {DEADLINE:?}: {expired:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Rescues these expired attempts with the outcomes the server decides.
async fn rescue(storage: &Storage, leases: &[ExpiredLease]) -> Vec<JobId> {
    storage
        .rescue(FinishParams {
            jobs: leases
                .iter()
                .map(|lease| JobOutcome {
                    job: lease.job,
                    outcome: decide::rescued(lease),
                })
                .collect(),
        })
        .await
        .expect("rescue")
}

/// Waits until `check` holds; fails with `what` after the deadline.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn record(storage: &Storage, id: JobId) -> JobRecord {
    storage
        .job(id)
        .await
        .expect("read job")
        .unwrap_or_else(|| panic!("job {id} exists"))
}

async fn state(storage: &Storage, id: JobId) -> State {
    record(storage, id).await.state
}

async fn history(storage: &Storage, id: JobId) -> Vec<StateChange> {
    storage.history(id).await.expect("history")
}

async fn states(storage: &Storage, id: JobId) -> Vec<State> {
    history(storage, id)
        .await
        .into_iter()
        .map(|change| change.state)
        .collect()
}

async fn promote(storage: &Storage, limit: usize) -> u64 {
    storage
        .promote_scheduled(PromoteParams { limit })
        .await
        .expect("promote")
}

/// A job in `state`, one the API reaches ([`reachable`]), alone in `queue`.
async fn job_in(storage: &Storage, state_wanted: State, queue: &str) -> JobId {
    let mut job = new_job("mover", queue);
    if state_wanted == State::Scheduled {
        job.schedule = Schedule::In(AN_HOUR);
    }
    if state_wanted == State::Awaiting {
        let parent_queue = format!("parent-of-{queue}");
        let parent = enqueue(storage, vec![new_job("parent", &parent_queue)]).await[0];
        job.continuation = Some(Continuation {
            parent: Parent::Job(parent),
            on: ContinueOn::Succeeded,
        });
    }
    let id = enqueue(storage, vec![job]).await[0];
    match state_wanted {
        State::Scheduled | State::Enqueued | State::Awaiting => {}
        State::Processing | State::Succeeded | State::Failed => {
            let taken = fetch(storage, &[queue], 1).await;
            assert_eq!(ids_of(&taken), [id]);
            let outcome = match state_wanted {
                State::Succeeded => Some(Outcome::Succeeded { result: None }),
                State::Failed => Some(Outcome::Failed {
                    reason: "broken".into(),
                }),
                _ => None,
            };
            if let Some(outcome) = outcome {
                assert_eq!(finish(storage, taken[0].held(), outcome).await, [id]);
            }
        }
        State::Deleted => storage.delete(id).await.expect("delete"),
    }
    assert_eq!(state(storage, id).await, state_wanted);
    id
}

fn lead(name: &str, server: &str, ttl_ms: u64) -> LeadParams {
    LeadParams {
        name: name.to_owned(),
        server: server.to_owned(),
        ttl: Duration::from_millis(ttl_ms),
    }
}

async fn leads(storage: &Storage, name: &str, server: &str) -> bool {
    storage
        .backend()
        .try_lead(lead(name, server, 60_000))
        .await
        .expect("try_lead")
}

fn server_info(id: &str) -> ServerInfo {
    ServerInfo {
        id: id.to_owned(),
        workers: 8,
        queues: vec!["critical".to_owned(), "default".to_owned()],
        jobs: vec!["mail".to_owned(), "report".to_owned()],
    }
}

fn close_to(actual: DateTime<Utc>, expected: DateTime<Utc>, within: chrono::Duration) -> bool {
    (actual - expected).abs() <= within
}

// ---- enqueue -------------------------------------------------------------

/// Ids grow in enqueue order; the stored job is what was enqueued.
pub async fn enqueue_returns_ids_in_order(storage: &Storage) {
    let ids = enqueue(
        storage,
        vec![new_job("a", "q"), new_job("b", "q"), new_job("c", "q")],
    )
    .await;
    assert_eq!(ids.len(), 3);
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
    let b = record(storage, ids[1]).await;
    assert_eq!((b.name.as_str(), b.queue.as_str()), ("b", "q"));
    assert_eq!(b.args, r#"{"name":"b"}"#);
    assert_eq!(
        (b.state, b.attempt, b.max_attempts),
        (State::Enqueued, 0, 3)
    );
    assert_eq!(b.run_at, None);
    assert_eq!(states(storage, ids[1]).await, [State::Enqueued]);
    let again = enqueue(storage, vec![new_job("d", "q")]).await;
    assert!(again[0] > ids[2]);
}

/// A job that could never run (`max_attempts` 0) is refused, and nothing
/// of its batch is stored. The `Storage` handle raises 0 to 1 before a
/// storage sees it; the backend itself must not store it.
pub async fn enqueue_refuses_zero_attempts(storage: &Storage) {
    let mut never = new_job("never", "q");
    never.max_attempts = 0;
    let refused = storage
        .backend()
        .enqueue(EnqueueParams::jobs(vec![
            new_job("fine", "q"),
            never.clone(),
        ]))
        .await;
    assert!(refused.is_err(), "max_attempts 0 stored: {refused:?}");
    assert_eq!(storage.counts().await.expect("counts").total(), 0);
    let raised = enqueue(storage, vec![never]).await;
    assert_eq!(record(storage, raised[0]).await.max_attempts, 1);
}

/// A job with `Schedule::At` is `Scheduled` with that due time (to the
/// millisecond), neither fetched nor promoted before it.
pub async fn enqueue_at_a_time_schedules(storage: &Storage) {
    let at = Utc::now() + chrono::Duration::hours(1);
    let id = enqueue(
        storage,
        vec![scheduled(new_job("later", "q"), Schedule::At(at))],
    )
    .await[0];
    let stored = record(storage, id).await;
    assert_eq!(stored.state, State::Scheduled);
    let due = stored.run_at.expect("due time");
    assert!(
        close_to(due, at, chrono::Duration::milliseconds(1)),
        "{due} vs {at}"
    );
    assert_eq!(states(storage, id).await, [State::Scheduled]);
    assert!(fetch(storage, &["q"], 10).await.is_empty());
    assert_eq!(promote(storage, 10).await, 0, "not due");
}

/// `Schedule::In(d)` is due `d` after the job is stored (the job's
/// `run_at - created_at` is `d`, within a second); `Schedule::At(t)`
/// stores `t` to the millisecond; `Schedule::In(0)` is due at once.
pub async fn schedule_in_is_due_its_delay_after_it_is_stored(storage: &Storage) {
    // A time with a fraction of a millisecond, which no storage keeps.
    let at = Utc::now() + chrono::Duration::hours(2) + chrono::Duration::microseconds(123_456);
    let ids = enqueue(
        storage,
        vec![
            scheduled(new_job("in", "q"), Schedule::In(AN_HOUR)),
            scheduled(new_job("at", "q"), Schedule::At(at)),
            scheduled(new_job("now", "q"), Schedule::In(Duration::ZERO)),
        ],
    )
    .await;

    let within = record(storage, ids[0]).await;
    assert_eq!(within.state, State::Scheduled);
    let delay = within.run_at.expect("due time") - within.created_at;
    assert!(
        (delay - chrono::Duration::hours(1)).abs() <= chrono::Duration::seconds(1),
        "run_at - created_at = {delay}, expected 1 h"
    );

    let fixed = record(storage, ids[1]).await;
    let due = fixed.run_at.expect("due time");
    assert!(
        (due - at).abs() < chrono::Duration::milliseconds(1),
        "{due} vs {at}"
    );

    assert_eq!(promote(storage, 10).await, 1, "only the job due now");
    assert_eq!(state(storage, ids[2]).await, State::Enqueued);
    assert_eq!(state(storage, ids[0]).await, State::Scheduled);
}

/// A batch is stored whole, or not at all.
pub async fn enqueue_many_is_one_transaction(storage: &Storage) {
    let broken = vec![
        new_job("fine", "bulk"),
        new_job("", "bulk"),
        new_job("fine too", "bulk"),
    ];
    let refused = storage.enqueue(EnqueueParams::jobs(broken)).await;
    assert!(refused.is_err(), "a job without a name is refused");
    assert_eq!(
        storage.counts().await.unwrap().total(),
        0,
        "and nothing of its batch is stored"
    );

    let jobs: Vec<_> = (0..500)
        .map(|n| new_job(&format!("j{n}"), "bulk"))
        .collect();
    let ids = enqueue(storage, jobs).await;
    assert_eq!(ids.len(), 500);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 500);
    assert_eq!(storage.counts().await.unwrap().get(State::Enqueued), 500);
    let last = record(storage, ids[499]).await;
    assert_eq!(last.name, "j499");
}

// ---- fetch ---------------------------------------------------------------

/// Earlier queues first; within a queue, enqueue order.
pub async fn fetch_takes_queues_in_priority_then_fifo(storage: &Storage) {
    let low = enqueue(storage, vec![new_job("l1", "low"), new_job("l2", "low")]).await;
    let high = enqueue(storage, vec![new_job("h1", "high"), new_job("h2", "high")]).await;
    enqueue(storage, vec![new_job("other", "unserved")]).await;
    let fetched = fetch(storage, &["high", "low"], 3).await;
    assert_eq!(ids_of(&fetched), [high[0], high[1], low[0]]);
    for job in &fetched {
        assert_eq!(job.attempt, 1);
        assert_eq!(job.max_attempts, 3);
        assert_eq!(state(storage, job.id).await, State::Processing);
    }
    assert_eq!(fetched[0].name, "h1");
    assert_eq!(fetched[0].queue, "high");
    assert_eq!(fetched[0].args, r#"{"name":"h1"}"#);
    let rest = fetch(storage, &["high", "low"], 10).await;
    assert_eq!(ids_of(&rest), [low[1]], "the unserved queue is left alone");
}

/// Never more than `limit` jobs.
pub async fn fetch_respects_the_limit(storage: &Storage) {
    enqueue(
        storage,
        (0..10).map(|n| new_job(&format!("{n}"), "q")).collect(),
    )
    .await;
    assert_eq!(fetch(storage, &["q"], 4).await.len(), 4);
    assert_eq!(fetch(storage, &["q"], 0).await.len(), 0);
    assert_eq!(fetch(storage, &["q"], 100).await.len(), 6);
    assert!(fetch(storage, &["q"], 100).await.is_empty());
}

/// Only `Enqueued` jobs are fetched.
pub async fn fetch_skips_jobs_of_other_states(storage: &Storage) {
    enqueue(
        storage,
        vec![scheduled(new_job("scheduled", "q"), Schedule::In(AN_HOUR))],
    )
    .await;
    let done = enqueue(storage, vec![new_job("done", "q")]).await[0];
    let deleted = enqueue(storage, vec![new_job("deleted", "q")]).await[0];
    let taken = fetch(storage, &["q"], 1).await;
    assert_eq!(ids_of(&taken), [done]);
    assert_eq!(
        finish(
            storage,
            taken[0].held(),
            Outcome::Succeeded { result: None }
        )
        .await,
        [done]
    );
    storage.delete(deleted).await.unwrap();
    assert_eq!(state(storage, done).await, State::Succeeded);
    assert!(fetch(storage, &["q"], 10).await.is_empty());
}

/// Many fetches at once: each job goes to exactly one.
pub async fn concurrent_fetches_never_share_a_job(storage: &Storage) {
    let ids = enqueue(
        storage,
        (0..400).map(|n| new_job(&format!("{n}"), "q")).collect(),
    )
    .await;
    let mut seen = HashSet::new();
    let fetches = (0..8).map(|_| async {
        let mut mine = Vec::new();
        loop {
            let batch = fetch(storage, &["q"], 7).await;
            if batch.is_empty() {
                return mine;
            }
            mine.extend(batch.into_iter().map(|job| job.id));
        }
    });
    for batch in futures_util::future::join_all(fetches).await {
        for id in batch {
            assert!(seen.insert(id), "job {id} was fetched twice");
        }
    }
    assert_eq!(seen, ids.into_iter().collect());
}

// ---- finishing attempts --------------------------------------------------

/// `Succeeded` outcomes move their jobs; the history is Enqueued,
/// Processing (with the server and attempt as its data), Succeeded, in
/// time order.
pub async fn finish_succeeded_records_the_history(storage: &Storage) {
    let ids = enqueue(storage, vec![new_job("a", "q"), new_job("b", "q")]).await;
    let taken = fetch(storage, &["q"], 2).await;
    // Given in reverse: the answer is sorted.
    let done = finish_all(
        storage,
        taken
            .iter()
            .rev()
            .map(|job| (job.held(), Outcome::Succeeded { result: None }))
            .collect(),
    )
    .await;
    assert_eq!(done, ids);
    for id in ids {
        assert_eq!(
            states(storage, id).await,
            [State::Enqueued, State::Processing, State::Succeeded]
        );
        let history = history(storage, id).await;
        assert!(
            history.windows(2).all(|pair| pair[0].at <= pair[1].at),
            "{history:?}"
        );
        let processing = history[1].data.clone().expect("Processing has data");
        assert_eq!(processing["server"], SERVER);
        assert_eq!(processing["attempt"], 1);
        let job = record(storage, id).await;
        assert_eq!(job.state_changed_at, history[2].at);
    }
}

/// One `finish` records outcomes of every kind together.
pub async fn finish_records_every_kind_of_outcome_at_once(storage: &Storage) {
    let ids = enqueue(
        storage,
        (0..4).map(|n| new_job(&format!("{n}"), "q")).collect(),
    )
    .await;
    let taken = fetch(storage, &["q"], 4).await;
    assert_eq!(ids_of(&taken), ids);
    let moved = finish_all(
        storage,
        vec![
            (taken[0].held(), Outcome::Succeeded { result: None }),
            (
                taken[1].held(),
                Outcome::Failed {
                    reason: "bad".into(),
                },
            ),
            (
                taken[2].held(),
                Outcome::Retry {
                    delay: AN_HOUR,
                    reason: "retry attempt 1 of 2".into(),
                    error: "timeout".into(),
                    forgive: false,
                },
            ),
            (
                taken[3].held(),
                Outcome::Requeue {
                    reason: "server stopping".into(),
                    forgive: true,
                },
            ),
        ],
    )
    .await;
    assert_eq!(moved, ids);
    let mut got = Vec::new();
    for id in &ids {
        got.push(state(storage, *id).await);
    }
    assert_eq!(
        got,
        [
            State::Succeeded,
            State::Failed,
            State::Scheduled,
            State::Enqueued
        ]
    );
}

/// A server whose lease expired cannot finish the attempt another server
/// took over: its late calls change nothing (fencing).
pub async fn finish_is_fenced_by_attempt(storage: &Storage) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let first = fetch_with_lease(storage, &["q"], 1, Duration::from_millis(100))
        .await
        .remove(0);
    let expired = wait_for_expired(storage, &[id]).await;
    assert_eq!(rescue(storage, &expired).await, [id]);
    let second = fetch(storage, &["q"], 1).await.remove(0);
    assert_eq!((first.attempt, second.attempt), (1, 2));

    let late = first.held();
    let late_outcomes = [
        Outcome::Succeeded { result: None },
        Outcome::Failed {
            reason: "late".into(),
        },
        Outcome::Retry {
            delay: Duration::ZERO,
            reason: "late".into(),
            error: "late".into(),
            forgive: false,
        },
        Outcome::Requeue {
            reason: "late".into(),
            forgive: true,
        },
    ];
    for outcome in late_outcomes {
        assert!(
            finish(storage, late, outcome.clone()).await.is_empty(),
            "{outcome:?}"
        );
    }
    assert!(
        extend(storage, vec![late], Duration::from_secs(60))
            .await
            .is_empty()
    );
    let job = record(storage, id).await;
    assert_eq!((job.state, job.attempt), (State::Processing, 2));

    assert_eq!(
        finish(storage, second.held(), Outcome::Succeeded { result: None }).await,
        [id]
    );
    assert_eq!(state(storage, id).await, State::Succeeded);
}

/// A finish of a job that is not `Processing` (still `Enqueued` or
/// `Scheduled`, or finished already) moves nothing and changes nothing.
pub async fn finish_refuses_jobs_not_processing(storage: &Storage) {
    let waiting = enqueue(storage, vec![new_job("waiting", "a")]).await[0];
    let later = enqueue(
        storage,
        vec![scheduled(new_job("later", "a"), Schedule::In(AN_HOUR))],
    )
    .await[0];
    let done = enqueue(storage, vec![new_job("done", "b")]).await[0];
    let taken = fetch(storage, &["b"], 1).await.remove(0);
    assert_eq!(
        finish(storage, taken.held(), Outcome::Succeeded { result: None }).await,
        [done]
    );

    let mut before = HashMap::new();
    for id in [waiting, later, done] {
        before.insert(id, (record(storage, id).await, history(storage, id).await));
    }
    let outcomes = || {
        [
            Outcome::Succeeded { result: None },
            Outcome::Failed {
                reason: "no".into(),
            },
            Outcome::Retry {
                delay: Duration::ZERO,
                reason: "no".into(),
                error: "no".into(),
                forgive: true,
            },
            Outcome::Requeue {
                reason: "no".into(),
                forgive: true,
            },
        ]
    };
    for (id, attempt) in [
        (waiting, 0),
        (waiting, 1),
        (later, 0),
        (later, 1),
        (done, 1),
    ] {
        for outcome in outcomes() {
            let moved = finish(storage, Attempt { id, attempt }, outcome.clone()).await;
            assert!(moved.is_empty(), "job {id}, attempt {attempt}: {outcome:?}");
        }
    }
    for (id, (job, moves)) in before {
        assert_eq!(record(storage, id).await, job, "job {id} is unchanged");
        assert_eq!(history(storage, id).await, moves, "job {id}'s history");
    }
}

/// A `Failed` outcome moves to `Failed` with the reason.
pub async fn finish_failed_records_the_reason(storage: &Storage) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let job = fetch(storage, &["q"], 1).await.remove(0);
    let failed = Outcome::Failed {
        reason: "disk full".into(),
    };
    assert_eq!(finish(storage, job.held(), failed).await, [id]);
    let failed = record(storage, id).await;
    assert_eq!(failed.state, State::Failed);
    assert_eq!(failed.reason.as_deref(), Some("disk full"));
    let last = history(storage, id).await.pop().unwrap();
    assert_eq!(
        (last.state, last.reason.as_deref()),
        (State::Failed, Some("disk full"))
    );
}

/// A `Retry` moves to `Scheduled`, due the delay after the move by the
/// storage's clock, with the reason and the error.
pub async fn finish_retry_schedules_after_the_delay(storage: &Storage) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let job = fetch(storage, &["q"], 1).await.remove(0);
    let retry = Outcome::Retry {
        delay: Duration::from_secs(60),
        reason: "retry attempt 1 of 2".into(),
        error: "timeout".into(),
        forgive: false,
    };
    assert_eq!(finish(storage, job.held(), retry).await, [id]);
    let scheduled = record(storage, id).await;
    assert_eq!(scheduled.state, State::Scheduled);
    assert_eq!(scheduled.max_attempts, 3, "the attempt counts");
    let delay = scheduled.run_at.unwrap() - scheduled.state_changed_at;
    assert!(
        (delay - chrono::Duration::seconds(60)).abs() <= chrono::Duration::seconds(1),
        "due {delay} after the move"
    );
    let last = history(storage, id).await.pop().unwrap();
    assert_eq!(last.reason.as_deref(), Some("retry attempt 1 of 2"));
    assert_eq!(last.data.unwrap()["error"], "timeout");
    assert_eq!(promote(storage, 10).await, 0);
}

/// A forgiven failure gives the job one more attempt.
pub async fn a_forgiven_retry_does_not_count(storage: &Storage) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let job = fetch(storage, &["q"], 1).await.remove(0);
    let retry = Outcome::Retry {
        delay: Duration::ZERO,
        reason: "another server knows it".into(),
        error: "unknown here".into(),
        forgive: true,
    };
    assert_eq!(finish(storage, job.held(), retry).await, [id]);
    let deferred = record(storage, id).await;
    assert_eq!(
        (deferred.state, deferred.attempt, deferred.max_attempts),
        (State::Scheduled, 1, 4)
    );
}

/// A forgiven `Requeue` puts the job back without counting the attempt
/// against it; attempt numbers only grow, so the requeued attempt stays
/// fenced.
pub async fn finish_requeue_gives_back_the_attempt(storage: &Storage) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let job = fetch(storage, &["q"], 1).await.remove(0);
    let requeue = Outcome::Requeue {
        reason: "server stopping".into(),
        forgive: true,
    };
    assert_eq!(finish(storage, job.held(), requeue.clone()).await, [id]);
    let requeued = record(storage, id).await;
    assert_eq!((requeued.state, requeued.attempt), (State::Enqueued, 1));
    assert_eq!(requeued.max_attempts, 4, "one more attempt in exchange");
    assert_eq!(requeued.reason.as_deref(), Some("server stopping"));

    let again = fetch(storage, &["q"], 1).await.remove(0);
    assert_eq!(again.attempt, 2);
    // The same requeue, delivered twice (a lost reply, retried), does not
    // touch the new holder's attempt; nor does a stale success.
    assert!(finish(storage, job.held(), requeue).await.is_empty());
    assert!(
        finish(storage, job.held(), Outcome::Succeeded { result: None })
            .await
            .is_empty()
    );
    assert_eq!(state(storage, id).await, State::Processing);
}

/// Only due jobs are promoted, oldest due first, within the limit, with
/// the reason [`decide::SCHEDULED_TIME_REACHED`].
pub async fn promote_moves_only_due_jobs(storage: &Storage) {
    let now = Utc::now();
    let at = |secs: i64| {
        scheduled(
            new_job("s", "q"),
            Schedule::At(now + chrono::Duration::seconds(secs)),
        )
    };
    let ids = enqueue(storage, vec![at(-10), at(-20), at(-5), at(3600)]).await;
    assert_eq!(promote(storage, 2).await, 2);
    assert_eq!(
        state(storage, ids[1]).await,
        State::Enqueued,
        "oldest due first"
    );
    assert_eq!(state(storage, ids[0]).await, State::Enqueued);
    assert_eq!(state(storage, ids[2]).await, State::Scheduled);
    assert_eq!(promote(storage, 10).await, 1);
    assert_eq!(state(storage, ids[3]).await, State::Scheduled, "not due");
    let moves = history(storage, ids[0]).await;
    let moves: Vec<_> = moves
        .iter()
        .map(|change| (change.state, change.reason.as_deref()))
        .collect();
    assert_eq!(
        moves,
        [
            (State::Scheduled, None),
            (State::Enqueued, Some(decide::SCHEDULED_TIME_REACHED))
        ]
    );
    let promoted = record(storage, ids[0]).await;
    assert_eq!(promoted.run_at, None);
}

// ---- operators' moves ----------------------------------------------------

/// `move_jobs` to `Enqueued` and to `Deleted` moves a job iff
/// [`State::can_move_to`] allows it from the job's state, recording the
/// move with its reason; a refused job is left exactly as it was. A
/// requeued job can be fetched again.
pub async fn operator_moves_follow_can_move_to(storage: &Storage) {
    for to in [State::Enqueued, State::Deleted] {
        let reason = format!("moved to {to} by the conformance suite");
        let mut jobs = Vec::new();
        let mut queues = Vec::new();
        for from in reachable() {
            let queue = format!("{to}-from-{from}");
            let id = job_in(storage, from, &queue).await;
            let before = (record(storage, id).await, history(storage, id).await);
            jobs.push((from, id, before));
            queues.push(queue);
        }
        let moved = storage
            .backend()
            .move_jobs(
                MoveParams::new(jobs.iter().map(|(_, id, _)| *id).collect(), to, &reason)
                    .expect("an operator's move"),
            )
            .await
            .expect("move_jobs");
        let allowed: Vec<JobId> = jobs
            .iter()
            .filter(|(from, _, _)| from.can_move_to(to))
            .map(|(_, id, _)| *id)
            .collect();
        assert_eq!(moved, allowed, "the moves to {to}");

        for (from, id, (job, moves)) in &jobs {
            let after = record(storage, *id).await;
            let moves_after = history(storage, *id).await;
            if !from.can_move_to(to) {
                assert_eq!(&after, job, "a refused {from} -> {to} changes nothing");
                assert_eq!(&moves_after, moves, "nor the history ({from} -> {to})");
                continue;
            }
            assert_eq!(after.state, to, "{from} -> {to}");
            assert_eq!(after.reason.as_deref(), Some(reason.as_str()));
            assert_eq!(after.run_at, None, "{from} -> {to}: no due time");
            assert_eq!(after.attempt, job.attempt, "{from} -> {to}");
            if to == State::Enqueued {
                assert!(
                    after.max_attempts > after.attempt,
                    "{from} -> {to}: at least one attempt more ({after:?})"
                );
            }
            assert_eq!(moves_after.len(), moves.len() + 1, "{from} -> {to}");
            assert_eq!(&moves_after[..moves.len()], &moves[..]);
            let last = moves_after.last().unwrap();
            assert_eq!(
                (last.state, last.reason.as_deref()),
                (to, Some(reason.as_str())),
                "{from} -> {to}"
            );
        }

        let queues: Vec<&str> = queues.iter().map(String::as_str).collect();
        let fetched = fetch(storage, &queues, 100).await;
        let mut fetched = ids_of(&fetched);
        fetched.sort_unstable();
        let fetchable: Vec<JobId> = jobs
            .iter()
            .filter(|(from, _, _)| {
                if to == State::Enqueued {
                    true // every job is Enqueued now, moved or not
                } else {
                    !from.can_move_to(to) && *from == State::Enqueued
                }
            })
            .map(|(_, id, _)| *id)
            .collect();
        assert_eq!(
            fetched, fetchable,
            "the jobs fetchable after the moves to {to}"
        );
    }
}

/// [`Storage::requeue`] and [`Storage::delete`] record their reasons, and
/// report what they refuse: [`Error::MoveRefused`] for a move the job's
/// state forbids, [`Error::JobNotFound`] for an id no job has.
pub async fn requeue_and_delete_report_refusals(storage: &Storage) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    match storage.requeue(id).await {
        Err(Error::MoveRefused {
            id: refused,
            from: State::Enqueued,
            to: State::Enqueued,
        }) if refused == id => {}
        other => panic!("requeue of an Enqueued job: {other:?}"),
    }
    assert_eq!(states(storage, id).await, [State::Enqueued]);

    storage.delete(id).await.expect("delete");
    let last = history(storage, id).await.pop().unwrap();
    assert_eq!(
        (last.state, last.reason.as_deref()),
        (State::Deleted, Some(decide::DELETED_BY_OPERATOR))
    );
    match storage.delete(id).await {
        Err(Error::MoveRefused {
            id: refused,
            from: State::Deleted,
            to: State::Deleted,
        }) if refused == id => {}
        other => panic!("delete of a Deleted job: {other:?}"),
    }

    storage.requeue(id).await.expect("requeue");
    let last = history(storage, id).await.pop().unwrap();
    assert_eq!(
        (last.state, last.reason.as_deref()),
        (State::Enqueued, Some(decide::REQUEUED_BY_OPERATOR))
    );
    assert_eq!(
        states(storage, id).await,
        [State::Enqueued, State::Deleted, State::Enqueued]
    );

    let missing = JobId(987_654_321);
    match storage.requeue(missing).await {
        Err(Error::JobNotFound(not_found)) if not_found == missing => {}
        other => panic!("requeue of no job: {other:?}"),
    }
    match storage.delete(missing).await {
        Err(Error::JobNotFound(not_found)) if not_found == missing => {}
        other => panic!("delete of no job: {other:?}"),
    }
}

/// An operator moves jobs to `Enqueued` or `Deleted` only: `move_jobs` to
/// any other state is an [`Error::Config`] and moves nothing.
pub async fn move_jobs_elsewhere_is_a_config_error(storage: &Storage) {
    let waiting = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let running = job_in(storage, State::Processing, "running").await;
    let before = (
        record(storage, waiting).await,
        record(storage, running).await,
    );
    for to in State::ALL {
        if matches!(to, State::Enqueued | State::Deleted) {
            continue;
        }
        let refused = storage
            .backend()
            .move_jobs(MoveParams {
                ids: vec![waiting, running],
                to,
                from: State::ALL.to_vec(),
                reason: "nowhere".into(),
            })
            .await;
        assert!(
            matches!(refused, Err(Error::Config(_))),
            "move_jobs to {to}: {refused:?}"
        );
    }
    let after = (
        record(storage, waiting).await,
        record(storage, running).await,
    );
    assert_eq!(after, before);
}

/// A requeue gives a `Failed` job whose attempts are exhausted one more
/// attempt: it is fetched again, and its attempt is within its
/// `max_attempts`.
pub async fn requeue_gives_an_exhausted_job_one_more_attempt(storage: &Storage) {
    let mut once = new_job("once", "q");
    once.max_attempts = 1;
    let id = enqueue(storage, vec![once]).await[0];
    let first = fetch(storage, &["q"], 1).await.remove(0);
    let failed = Outcome::Failed {
        reason: "no luck".into(),
    };
    assert_eq!(finish(storage, first.held(), failed).await, [id]);

    storage.requeue(id).await.expect("requeue");
    let requeued = record(storage, id).await;
    assert_eq!((requeued.state, requeued.attempt), (State::Enqueued, 1));
    assert!(requeued.max_attempts >= 2, "{requeued:?}");
    assert_eq!(
        requeued.reason.as_deref(),
        Some(decide::REQUEUED_BY_OPERATOR)
    );

    let again = fetch(storage, &["q"], 1).await;
    assert_eq!(ids_of(&again), [id], "fetched again");
    assert_eq!(again[0].attempt, 2);
    assert!(
        again[0].max_attempts >= again[0].attempt,
        "attempt {} of {}",
        again[0].attempt,
        again[0].max_attempts
    );
    assert_eq!(
        finish(
            storage,
            again[0].held(),
            Outcome::Succeeded { result: None }
        )
        .await,
        [id]
    );
    assert_eq!(
        states(storage, id).await,
        [
            State::Enqueued,
            State::Processing,
            State::Failed,
            State::Enqueued,
            State::Processing,
            State::Succeeded
        ]
    );
}

/// Requeueing (or deleting) a `Processing` job fences the running attempt:
/// its outcome is skipped and its lease is not extended.
pub async fn requeue_fences_the_running_attempt(storage: &Storage) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let running = fetch(storage, &["q"], 1).await.remove(0);
    storage.requeue(id).await.expect("requeue a running job");
    assert!(
        extend(storage, vec![running.held()], Duration::from_secs(60))
            .await
            .is_empty(),
        "the requeued attempt's lease is not extended"
    );
    assert!(
        finish(storage, running.held(), Outcome::Succeeded { result: None })
            .await
            .is_empty(),
        "the requeued attempt's outcome is skipped"
    );
    assert_eq!(state(storage, id).await, State::Enqueued);

    let next = fetch(storage, &["q"], 1).await.remove(0);
    assert_eq!(next.attempt, 2);
    assert_eq!(
        extend(
            storage,
            vec![running.held(), next.held()],
            Duration::from_secs(60)
        )
        .await,
        [id],
        "only the current attempt is held"
    );

    storage.delete(id).await.expect("delete a running job");
    assert!(
        extend(storage, vec![next.held()], Duration::from_secs(60))
            .await
            .is_empty()
    );
    assert!(
        finish(storage, next.held(), Outcome::Succeeded { result: None })
            .await
            .is_empty()
    );
    assert_eq!(state(storage, id).await, State::Deleted);
}

// ---- leases and rescue ---------------------------------------------------

/// A renewed lease is not rescued; an expired one is, and cannot be
/// renewed afterwards.
pub async fn extend_leases_keeps_jobs_from_rescue(storage: &Storage) {
    enqueue(storage, vec![new_job("kept", "q"), new_job("lost", "q")]).await;
    let taken = fetch_with_lease(storage, &["q"], 2, Duration::from_millis(300)).await;
    let (kept, lost) = (&taken[0], &taken[1]);
    let extended = extend(storage, vec![kept.held()], Duration::from_secs(60)).await;
    assert_eq!(extended, [kept.id]);
    let expired = wait_for_expired(storage, &[lost.id]).await;
    let expired_ids: Vec<_> = expired.iter().map(|lease| lease.job.id).collect();
    assert_eq!(expired_ids, [lost.id], "the renewed lease has not expired");
    assert_eq!(rescue(storage, &expired).await, [lost.id]);
    assert_eq!(state(storage, kept.id).await, State::Processing);
    assert_eq!(state(storage, lost.id).await, State::Enqueued);
    let stale = extend(
        storage,
        vec![kept.held(), lost.held()],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        stale,
        [kept.id],
        "a rescued attempt's lease cannot be renewed"
    );
}

/// `expired_leases` lists the `Processing` attempts whose lease expired,
/// and only those (not one on a running lease, nor jobs in other states);
/// a rescue skips an attempt whose lease has not expired.
pub async fn expired_leases_lists_only_expired_attempts(storage: &Storage) {
    enqueue(
        storage,
        vec![
            new_job("waiting", "waiting"),
            scheduled(new_job("later", "waiting"), Schedule::In(AN_HOUR)),
        ],
    )
    .await;
    let ids = enqueue(
        storage,
        vec![
            new_job("long", "long"),
            new_job("short", "short"),
            new_job("done", "done"),
        ],
    )
    .await;
    let long = fetch(storage, &["long"], 1).await.remove(0);
    let short = fetch_with_lease(storage, &["short"], 1, Duration::from_millis(150))
        .await
        .remove(0);
    let done = fetch_with_lease(storage, &["done"], 1, Duration::from_millis(1))
        .await
        .remove(0);
    assert_eq!(
        finish(storage, done.held(), Outcome::Succeeded { result: None }).await,
        [ids[2]]
    );

    let expired = wait_for_expired(storage, &[short.id]).await;
    assert_eq!(
        expired,
        [ExpiredLease {
            job: short.held(),
            name: short.name.clone(),
            queue: short.queue.clone(),
            max_attempts: 3,
            server: Some(SERVER.to_owned()),
        }]
    );

    // A rescue that names the running lease too moves only the expired one.
    let not_expired = ExpiredLease {
        job: long.held(),
        name: long.name.clone(),
        queue: long.queue.clone(),
        max_attempts: 3,
        server: Some(SERVER.to_owned()),
    };
    let moved = rescue(storage, &[expired[0].clone(), not_expired]).await;
    assert_eq!(moved, [short.id]);
    assert_eq!(state(storage, long.id).await, State::Processing);
    assert_eq!(state(storage, short.id).await, State::Enqueued);
    assert!(expired_leases(storage).await.is_empty());
}

/// Expired attempts with attempts left are enqueued again (the lost
/// attempt counts); the others fail. The reasons name the server.
pub async fn rescue_enqueues_or_fails_expired_jobs(storage: &Storage) {
    let mut last_chance = new_job("last", "q");
    last_chance.max_attempts = 1;
    let ids = enqueue(storage, vec![new_job("again", "q"), last_chance]).await;
    fetch_with_lease(storage, &["q"], 2, Duration::from_millis(100)).await;
    let expired = wait_for_expired(storage, &ids).await;
    let mut seen: Vec<_> = expired
        .iter()
        .map(|lease| (lease.job.id, lease.job.attempt, lease.max_attempts))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, [(ids[0], 1, 3), (ids[1], 1, 1)]);
    assert_eq!(rescue(storage, &expired).await, ids);
    let again = record(storage, ids[0]).await;
    assert_eq!(again.state, State::Enqueued);
    assert!(again.reason.unwrap().contains(SERVER));
    let failed = record(storage, ids[1]).await;
    assert_eq!(failed.state, State::Failed);
    assert!(failed.reason.unwrap().contains("no attempts left"));
    for id in &ids {
        let rescue = history(storage, *id)
            .await
            .pop()
            .expect("the rescue is recorded");
        assert_eq!(
            rescue.data,
            Some(serde_json::json!({"server": SERVER, "attempt": 1})),
            "the rescue records the lost attempt and its server"
        );
    }
    let refetched = fetch(storage, &["q"], 10).await;
    assert_eq!(ids_of(&refetched), [ids[0]]);
    assert_eq!(refetched[0].attempt, 2, "the lost attempt counts");
    assert_eq!(refetched[0].max_attempts, 3);
}

/// A lease renewed between `expired_leases` and `rescue` is not rescued:
/// the server that renewed it still holds the attempt.
pub async fn rescue_skips_a_lease_renewed_meanwhile(storage: &Storage) {
    let id = enqueue(storage, vec![new_job("slow", "q")]).await[0];
    let job = fetch_with_lease(storage, &["q"], 1, Duration::from_millis(200))
        .await
        .remove(0);
    let expired = wait_for_expired(storage, &[id]).await;
    let before = history(storage, id).await;
    assert_eq!(
        extend(storage, vec![job.held()], Duration::from_secs(60)).await,
        [id],
        "an expired lease not yet rescued can still be renewed"
    );
    assert!(
        rescue(storage, &expired).await.is_empty(),
        "the renewed lease is not rescued"
    );
    let held = record(storage, id).await;
    assert_eq!((held.state, held.attempt), (State::Processing, 1));
    assert_eq!(history(storage, id).await, before);
    assert!(expired_leases(storage).await.is_empty());
    assert_eq!(
        finish(storage, job.held(), Outcome::Succeeded { result: None }).await,
        [id]
    );
}

// ---- reads ---------------------------------------------------------------

/// Counts follow the states: in all, of some states, and per queue.
pub async fn counts_by_state(storage: &Storage) {
    let ids = enqueue(
        storage,
        vec![
            new_job("a", "q"),
            new_job("b", "q"),
            scheduled(new_job("later", "q"), Schedule::In(AN_HOUR)),
            new_job("c", "another"),
        ],
    )
    .await;
    let queues = storage.queue_counts().await.unwrap();
    let names: Vec<&str> = queues.iter().map(|q| q.queue.as_str()).collect();
    assert_eq!(names, ["another", "q"], "sorted by name");
    assert_eq!(queues[0].counts.get(State::Enqueued), 1);
    assert_eq!(queues[0].counts.total(), 1);
    assert_eq!(queues[1].counts.get(State::Enqueued), 2);
    assert_eq!(queues[1].counts.get(State::Scheduled), 1);
    assert_eq!(queues[1].counts.total(), 3);
    let (a, b, c) = (ids[0], ids[1], ids[3]);
    let enqueued_at = async |id| Some(record(storage, id).await.state_changed_at);
    assert_eq!(
        queues[1].oldest_enqueued_at,
        enqueued_at(a).await,
        "the head of a queue is the job fetched next"
    );
    assert_eq!(queues[0].oldest_enqueued_at, enqueued_at(c).await);
    let job = fetch(storage, &["q"], 1).await.remove(0);
    assert_eq!(job.id, a);
    let queues = storage.queue_counts().await.unwrap();
    assert_eq!(queues[1].oldest_enqueued_at, enqueued_at(b).await);
    let counts = storage.counts().await.unwrap();
    assert_eq!(counts.get(State::Enqueued), 2);
    assert_eq!(counts.get(State::Processing), 1);
    assert_eq!(counts.get(State::Scheduled), 1);
    assert_eq!(counts.total(), 4);
    finish(storage, job.held(), Outcome::Succeeded { result: None }).await;
    let counts = storage.counts().await.unwrap();
    assert_eq!(counts.get(State::Succeeded), 1);
    assert_eq!(counts.get(State::Processing), 0);
    assert_eq!(counts.total(), 4);
    let queues = storage.queue_counts().await.unwrap();
    assert_eq!(
        queues[1].counts.get(State::Succeeded),
        0,
        "finished jobs are not counted by queue"
    );
    assert_eq!(queues[1].counts.get(State::Enqueued), 1);
    let some = storage
        .counts_of(&[State::Enqueued, State::Succeeded])
        .await
        .unwrap();
    assert_eq!(some.get(State::Enqueued), 2);
    assert_eq!(some.get(State::Succeeded), 1);
    assert_eq!(some.total(), 3, "the states not asked for read 0");
    assert_eq!(storage.counts_of(&[]).await.unwrap().total(), 0);
    fetch(storage, &["q"], 1).await;
    let queues = storage.queue_counts().await.unwrap();
    assert_eq!(
        queues[1].oldest_enqueued_at, None,
        "no job waits in the queue"
    );
}

/// The statistics count each job that reaches `Succeeded` or `Failed`,
/// in all and in the current hour; a job run again counts again; folding
/// the counters changes no total, and folds old hours into the totals.
pub async fn statistics_count_finished_jobs(storage: &Storage) {
    let before = storage.statistics().await.unwrap();
    assert_eq!(before, jobs_core::Statistics::default(), "a new storage");
    enqueue(
        storage,
        vec![new_job("a", "q"), new_job("b", "q"), new_job("c", "q")],
    )
    .await;
    let jobs = fetch(storage, &["q"], 3).await;
    let failed = jobs[2].id;
    let outcomes = vec![
        (jobs[0].held(), Outcome::Succeeded { result: None }),
        (jobs[1].held(), Outcome::Succeeded { result: None }),
        (
            jobs[2].held(),
            Outcome::Failed {
                reason: "no".into(),
            },
        ),
    ];
    let before = storage.backend().clock().await.unwrap();
    finish_all(storage, outcomes).await;
    let after = storage.backend().clock().await.unwrap();
    let stats = storage.statistics().await.unwrap();
    assert_eq!(stats.total.succeeded, 2);
    assert_eq!(stats.total.failed, 1);
    // One statement recorded them: one hour, that of a time between the
    // two clock readings.
    assert_eq!(stats.hours.len(), 1, "{stats:?}");
    let hour = stats.hours[0].hour;
    let hour_of = |at: chrono::DateTime<chrono::Utc>| {
        chrono::DurationRound::duration_trunc(at, chrono::Duration::hours(1)).unwrap()
    };
    assert!(
        hour_of(before) <= hour && hour <= hour_of(after),
        "{hour} is an hour from {before} to {after}"
    );
    assert_eq!(stats.hours[0].finished, stats.total);

    storage.requeue(failed).await.unwrap();
    let again = fetch(storage, &["q"], 1).await.remove(0);
    finish(storage, again.held(), Outcome::Succeeded { result: None }).await;
    let stats = storage.statistics().await.unwrap();
    assert_eq!((stats.total.succeeded, stats.total.failed), (3, 1));

    let kept = AggregateCountersParams {
        keep: jobs_core::STATISTICS_KEPT,
    };
    storage.backend().aggregate_counters(kept).await.unwrap();
    assert_eq!(
        storage.statistics().await.unwrap(),
        stats,
        "folding keeps all"
    );
    let none_kept = AggregateCountersParams {
        keep: Duration::ZERO,
    };
    storage
        .backend()
        .aggregate_counters(none_kept)
        .await
        .unwrap();
    let folded = storage.statistics().await.unwrap();
    assert_eq!(folded.total, stats.total, "old hours go to the totals");
    assert!(folded.hours.is_empty(), "{folded:?}");
}

/// A search reads at most [`JobSearch::WINDOW`] jobs of the state, newest
/// first, and returns the matches of its queue, name, text and attempted
/// filters among them, with where to go on: after a full page's last
/// match, below the window when it ran out, nowhere at the oldest job.
pub async fn search_jobs_filters_a_bounded_window(storage: &Storage) {
    let count = JobSearch::WINDOW + 10;
    let jobs = (0..count)
        .map(|n| {
            let name = if n % 2 == 0 { "mail" } else { "report" };
            let queue = if n % 3 == 0 { "a" } else { "b" };
            NewJob::new(name, queue, format!(r#"{{"to":"user{n}@x"}}"#), 3)
        })
        .collect();
    let ids = enqueue(storage, jobs).await;
    let enqueued = || JobQuery::new().state(State::Enqueued);

    let page = storage
        .search_jobs(JobSearch::new(enqueued().limit(3)).name("mail"))
        .await
        .unwrap();
    let found: Vec<JobId> = page.jobs.iter().map(|job| job.id).collect();
    let n = count - 2; // the newest mail job
    assert_eq!(found, [ids[n], ids[n - 2], ids[n - 4]]);
    assert!(page.jobs.iter().all(|job| job.name == "mail"));
    assert_eq!(page.next, Some(ids[n - 4]), "after the page's last match");

    let mut both = JobSearch::new(enqueued().queue("a").limit(1)).name("report");
    let page = storage.search_jobs(both.clone()).await.unwrap();
    let newest = (0..count).rev().find(|n| n % 3 == 0 && n % 2 == 1).unwrap();
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.jobs[0].id, ids[newest]);
    assert_eq!(page.jobs[0].queue, "a");
    both.jobs = both.jobs.before(ids[newest]);
    let older = storage.search_jobs(both).await.unwrap();
    assert_eq!(older.jobs[0].id, ids[newest - 6], "the next page goes on");

    // The window holds the newest WINDOW jobs; job 7 is older.
    let text = JobSearch::new(enqueued()).text("\"user7@");
    let page = storage.search_jobs(text.clone()).await.unwrap();
    assert!(page.jobs.is_empty(), "{:?}", page.jobs);
    assert_eq!(page.next, Some(ids[10]), "below the window");
    let mut on = text;
    on.jobs = on.jobs.before(ids[10]);
    let page = storage.search_jobs(on).await.unwrap();
    let found: Vec<JobId> = page.jobs.iter().map(|job| job.id).collect();
    assert_eq!(found, [ids[7]]);
    assert_eq!(page.next, None, "no older job is left");

    let retried = fetch(storage, &["a"], 1).await.remove(0);
    let retry = Outcome::Retry {
        delay: AN_HOUR,
        reason: "retry".into(),
        error: "no".into(),
        forgive: false,
    };
    finish(storage, retried.held(), retry).await;
    enqueue(
        storage,
        vec![scheduled(new_job("later", "a"), Schedule::In(AN_HOUR))],
    )
    .await;
    let scheduled_jobs = JobQuery::new().state(State::Scheduled);
    let page = storage
        .search_jobs(JobSearch::new(scheduled_jobs).attempted())
        .await
        .unwrap();
    let found: Vec<JobId> = page.jobs.iter().map(|job| job.id).collect();
    assert_eq!(found, [retried.id], "only the job that ran before");
}

/// An id no job has reads as nothing, not an error.
pub async fn unknown_job_reads_as_none(storage: &Storage) {
    assert!(storage.job(JobId(987_654_321)).await.unwrap().is_none());
    assert!(
        storage
            .history(JobId(987_654_321))
            .await
            .unwrap()
            .is_empty()
    );
}

/// `list_jobs` reads jobs newest first, filtered by state and by queue,
/// at most `limit` at once; following `before` pages through every job
/// exactly once.
pub async fn list_jobs_pages_newest_first(storage: &Storage) {
    let jobs = (0..12)
        .map(|n| {
            let job = new_job(&format!("j{n}"), if n % 2 == 0 { "a" } else { "b" });
            if n % 3 == 0 {
                scheduled(job, Schedule::In(AN_HOUR))
            } else {
                job
            }
        })
        .collect();
    let ids = enqueue(storage, jobs).await;
    let taken = fetch(storage, &["a"], 2).await;
    finish(
        storage,
        taken[0].held(),
        Outcome::Succeeded { result: None },
    )
    .await;

    let all = storage.list_jobs(JobQuery::new()).await.unwrap();
    let newest_first: Vec<JobId> = ids.iter().rev().copied().collect();
    assert_eq!(
        all.iter().map(|job| job.id).collect::<Vec<_>>(),
        newest_first
    );
    for job in &all {
        assert_eq!(job, &record(storage, job.id).await, "as job() reads it");
    }

    let expect = |keep: &dyn Fn(&JobRecord) -> bool| -> Vec<JobId> {
        all.iter()
            .filter(|job| keep(job))
            .map(|job| job.id)
            .collect()
    };
    let listed = |query: JobQuery| async move {
        storage
            .list_jobs(query)
            .await
            .expect("list_jobs")
            .into_iter()
            .map(|job| job.id)
            .collect::<Vec<_>>()
    };
    for state_wanted in State::ALL {
        assert_eq!(
            listed(JobQuery::new().state(state_wanted)).await,
            expect(&|job| job.state == state_wanted),
            "{state_wanted}"
        );
    }
    for queue in ["a", "b"] {
        assert_eq!(
            listed(JobQuery::new().queue(queue)).await,
            expect(&|job| job.queue == queue),
            "queue {queue}"
        );
    }
    assert!(listed(JobQuery::new().queue("none")).await.is_empty());
    let both = JobQuery::new().state(State::Enqueued).queue("b");
    let enqueued_b = expect(&|job| job.state == State::Enqueued && job.queue == "b");
    assert!(enqueued_b.len() >= 2);
    assert_eq!(listed(both.clone()).await, enqueued_b);
    assert_eq!(listed(JobQuery::new().limit(5)).await, newest_first[..5]);

    let pages = |query: JobQuery, limit: usize| async move {
        let mut seen = Vec::new();
        let mut query = query.limit(limit);
        for _ in 0..100 {
            let page = listed(query.clone()).await;
            assert!(
                page.len() <= limit,
                "{} jobs in a page of {limit}",
                page.len()
            );
            let Some(last) = page.last().copied() else {
                return seen;
            };
            let short = page.len() < limit;
            seen.extend(page);
            if short {
                assert!(listed(query.clone().before(last)).await.is_empty());
                return seen;
            }
            query = query.before(last);
        }
        panic!("paging never ended");
    };
    for limit in [1, 5, 12, 13] {
        assert_eq!(
            pages(JobQuery::new(), limit).await,
            newest_first,
            "pages of {limit}"
        );
    }
    assert_eq!(pages(both, 1).await, enqueued_b, "filtered pages");
    assert!(
        listed(JobQuery::new().before(ids[0])).await.is_empty(),
        "nothing before the first job"
    );
}

// ---- servers, leadership, expiry ------------------------------------------

/// Servers register, heartbeat, and are pruned once silent.
pub async fn servers_register_heartbeat_and_are_pruned(storage: &Storage) {
    let registry = storage.backend();
    registry.register_server(server_info("a")).await.unwrap();
    registry.register_server(server_info("b")).await.unwrap();
    registry.register_server(server_info("a")).await.unwrap();
    let servers = storage.servers().await.unwrap();
    let ids: Vec<_> = servers.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(servers[0].queues, ["critical", "default"]);
    assert_eq!(servers[0].jobs, ["mail", "report"]);
    assert_eq!(servers[0].workers, 8);

    // Let b fall silent for 600 ms by the storage's clock, then prune what
    // has been silent for 300 ms: b, not a, which beats just before.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(registry.heartbeat("a").await.unwrap());
    let pruned = registry
        .prune_servers(PruneServersParams {
            silent_for: Duration::from_millis(300),
        })
        .await
        .unwrap();
    assert_eq!(pruned, 1, "b is silent, a just beat");
    assert!(
        !registry.heartbeat("b").await.unwrap(),
        "a pruned server must register again"
    );
    registry.unregister_server("a").await.unwrap();
    assert!(storage.servers().await.unwrap().is_empty());
}

/// At most one leader of a name; it renews; when it stops, another takes
/// over after the ttl; resigning hands over at once.
pub async fn one_leader_at_a_time(storage: &Storage) {
    let name = MAINTENANCE_LEADERSHIP;
    let backend = storage.backend();
    let try_lead = |server: &str, ttl_ms: u64| backend.try_lead(lead(name, server, ttl_ms));
    assert!(try_lead("a", 300).await.unwrap());
    assert!(!try_lead("b", 300).await.unwrap());
    assert!(try_lead("a", 300).await.unwrap(), "the leader renews");
    // b takes over once a's ttl has run out by the storage's clock.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !try_lead("b", 60_000).await.unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a's ttl of 300 ms never ran out"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!try_lead("a", 300).await.unwrap());
    backend.resign(name, "a").await.unwrap();
    assert!(
        !try_lead("a", 300).await.unwrap(),
        "a cannot resign b's leadership"
    );
    backend.resign(name, "b").await.unwrap();
    assert!(try_lead("a", 300).await.unwrap(), "free after b resigned");

    let contenders = (0..8).map(|n| backend.try_lead(lead(name, &format!("c{n}"), 60_000)));
    backend.resign(name, "a").await.unwrap();
    let won = futures_util::future::join_all(contenders)
        .await
        .into_iter()
        .filter(|won| *won.as_ref().unwrap())
        .count();
    assert_eq!(won, 1, "exactly one of eight contenders leads");
}

/// Leaderships are held by name: two names can be led by two servers at
/// once, one name by one server only; `resign(name, server)` frees only
/// that name, and only if that server holds it.
pub async fn leaderships_are_held_by_name(storage: &Storage) {
    let backend = storage.backend();
    let (maintenance, first, second) = (MAINTENANCE_LEADERSHIP, "first", "second");
    assert!(leads(storage, maintenance, "a").await);
    assert!(leads(storage, first, "a").await, "one server, two names");
    assert!(leads(storage, second, "b").await, "two names, two servers");
    for name in [maintenance, first, second] {
        assert!(!leads(storage, name, "c").await, "{name} is led already");
    }
    assert!(!leads(storage, maintenance, "b").await);
    assert!(!leads(storage, second, "a").await);

    backend.resign(maintenance, "b").await.unwrap();
    assert!(
        !leads(storage, maintenance, "c").await,
        "b cannot resign a's leadership"
    );
    backend.resign(maintenance, "a").await.unwrap();
    assert!(
        leads(storage, maintenance, "c").await,
        "free after a resigned"
    );
    assert!(!leads(storage, first, "c").await, "a still leads {first}");
    assert!(leads(storage, first, "a").await, "and renews it");
    assert!(!leads(storage, second, "c").await, "b still leads {second}");
}

/// Unregistering a server frees every leadership it holds, and only its.
pub async fn unregister_server_frees_its_leaderships(storage: &Storage) {
    let backend = storage.backend();
    backend.register_server(server_info("a")).await.unwrap();
    backend.register_server(server_info("b")).await.unwrap();
    assert!(leads(storage, MAINTENANCE_LEADERSHIP, "a").await);
    assert!(leads(storage, "first", "a").await);
    assert!(leads(storage, "second", "b").await);
    backend.unregister_server("a").await.unwrap();
    assert!(leads(storage, MAINTENANCE_LEADERSHIP, "c").await);
    assert!(leads(storage, "first", "c").await);
    assert!(!leads(storage, "second", "c").await, "b still leads");
    let servers = storage.servers().await.unwrap();
    let ids: Vec<_> = servers.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["b"]);
}

/// `Succeeded` and `Deleted` jobs past the retention go, with their
/// history; `Failed`, waiting and recent jobs stay.
pub async fn expire_deletes_only_old_finished_jobs(storage: &Storage) {
    let ids = enqueue(
        storage,
        vec![
            new_job("ok", "q"),
            new_job("bad", "q"),
            new_job("wait", "w"),
            new_job("gone", "w"),
        ],
    )
    .await;
    let taken = fetch(storage, &["q"], 2).await;
    finish(
        storage,
        taken[0].held(),
        Outcome::Succeeded { result: None },
    )
    .await;
    let failed = Outcome::Failed {
        reason: "bad".into(),
    };
    finish(storage, taken[1].held(), failed).await;
    storage.delete(ids[3]).await.unwrap();
    let expire = |ms: u64| {
        storage.backend().expire(ExpireParams {
            older_than: Duration::from_millis(ms),
            limit: 100,
        })
    };
    assert_eq!(expire(60_000).await.unwrap(), 0, "too recent");
    // The jobs finished at least 50 ms ago by the storage's clock.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(expire(10).await.unwrap(), 2);
    for gone in [ids[0], ids[3]] {
        assert!(storage.job(gone).await.unwrap().is_none());
        assert!(
            history(storage, gone).await.is_empty(),
            "history goes with the job"
        );
    }
    assert_eq!(state(storage, ids[1]).await, State::Failed);
    assert_eq!(state(storage, ids[2]).await, State::Enqueued);
}

// ---- notifications -------------------------------------------------------

/// A storage with notifications (`notifies`): its `listen` calls
/// `notify` with [`Notification::JobsAvailable`] once it listens, and
/// again, within the deadline, after a job is enqueued through another
/// handle; it runs until it fails, so it must not return meanwhile. The
/// listener is the backend's own, so the handle's in-process wake-up of
/// servers cannot make this pass: only the storage's notification path
/// (PostgreSQL's `NOTIFY` on commit, SQLite's `data_version` read on a
/// connection of its own), the same path another process's enqueue takes.
///
/// A storage without notifications (`!notifies`, e.g. an in-memory
/// SQLite, which no other process can write): `listen` stays pending and
/// never notifies, even after an enqueue.
pub async fn listen_notifies_enqueued_jobs(storage: &Storage, notifies: bool) {
    let wakes = AtomicUsize::new(0);
    let notify = |notification: Notification| {
        if notification == Notification::JobsAvailable {
            wakes.fetch_add(1, Ordering::SeqCst);
        }
    };
    let listen = storage.backend().listen(&notify);
    let other = storage.clone();
    let check = async {
        if notifies {
            eventually(
                "listen notifies once it listens (for a storage without \
                 notifications, pass `notifications = false` to the macro)",
                || wakes.load(Ordering::SeqCst) >= 1,
            )
            .await;
            let seen = wakes.load(Ordering::SeqCst);
            enqueue(&other, vec![new_job("wake", "q")]).await;
            eventually(
                "an enqueue through another handle notifies the listener",
                || wakes.load(Ordering::SeqCst) > seen,
            )
            .await;
            let seen = wakes.load(Ordering::SeqCst);
            recurring::fire_one_tick(&other).await;
            eventually(
                "a recurring tick fired through another handle notifies the listener",
                || wakes.load(Ordering::SeqCst) > seen,
            )
            .await;
        } else {
            enqueue(&other, vec![new_job("wake", "q")]).await;
            // Absence can only be checked for a while: long enough for a
            // polling listener (SQLite's checks every 10 ms) to have woken.
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(
                wakes.load(Ordering::SeqCst),
                0,
                "a storage declared without notifications never notifies"
            );
        }
    };
    tokio::select! {
        result = listen => panic!(
            "listen returned {result:?}: it runs until it fails, or stays pending without notifications"
        ),
        () = check => {}
    }
}

/// A storage that tells servers of revoked leases (PostgreSQL): after an
/// operator's move that may take running jobs (a delete, a cancel), its
/// `listen` calls `notify` with [`Notification::LeasesRevoked`] within
/// the deadline, so that the job's server stops it at once. Not in the
/// macro: a storage may leave it to the lease renewal (SQLite's does).
pub async fn listen_notifies_revoked_leases(storage: &Storage) {
    let revoked = AtomicUsize::new(0);
    let notify = |notification: Notification| {
        if notification == Notification::LeasesRevoked {
            revoked.fetch_add(1, Ordering::SeqCst);
        }
    };
    let listen = storage.backend().listen(&notify);
    let other = storage.clone();
    let check = async {
        eventually("listen notifies once it listens", || {
            revoked.load(Ordering::SeqCst) >= 1
        })
        .await;
        let id = enqueue(&other, vec![new_job("revoke", "q")]).await[0];
        let fetched = fetch(&other, &["q"], 1).await;
        assert_eq!(fetched.len(), 1);
        let seen = revoked.load(Ordering::SeqCst);
        let params = MoveParams::new(vec![id], State::Deleted, decide::DELETED_BY_OPERATOR)
            .expect("an operator's move");
        let moved = other.backend().move_jobs(params).await.expect("move");
        assert_eq!(moved, [id]);
        eventually(
            "deleting a running job through another handle notifies LeasesRevoked",
            || revoked.load(Ordering::SeqCst) > seen,
        )
        .await;
    };
    tokio::select! {
        result = listen => panic!("listen returned {result:?}: it runs until it fails"),
        () = check => {}
    }
}
