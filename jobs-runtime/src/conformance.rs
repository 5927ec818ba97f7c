//! The conformance suite that every storage runs: one `async fn` per
//! behaviour of [`StorageBackend`], split by area like River's
//! `riverdrivertest`, and [`storage_conformance_tests!`](crate::storage_conformance_tests)
//! to turn them into `#[tokio::test]`s for one storage.
//!
//! Each case gets a fresh, empty, migrated storage and panics on a breach.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;

use crate::{
    CompleteParams, Completion, EnqueueParams, ExpireParams, ExtendLeasesParams, FailParams,
    FetchParams, FetchedJob, JobId, LeadParams, NewJob, PromoteParams, PruneServersParams,
    RequeueParams, RescueParams, RetryParams, ServerInfo, State, StorageBackend,
};

/// Generates one `#[tokio::test]` per conformance case.
///
/// `$make` is an async fn returning `Option<T>` where `T` dereferences to a
/// `dyn StorageBackend` (or a type implementing it): a fresh storage, or
/// `None` to skip (say why on stderr).
#[macro_export]
macro_rules! storage_conformance_tests {
    ($make:path) => {
        $crate::__storage_conformance_cases!($make;
            enqueue_returns_ids_in_order,
            enqueue_with_run_at_schedules,
            enqueue_many_is_one_transaction,
            fetch_takes_queues_in_priority_then_fifo,
            fetch_respects_the_limit,
            fetch_skips_jobs_of_other_states,
            concurrent_fetches_never_share_a_job,
            complete_moves_to_succeeded_with_history,
            complete_is_fenced_by_attempt,
            fail_records_the_reason,
            retry_schedules_after_the_delay,
            a_forgiven_retry_does_not_count,
            promote_moves_only_due_jobs,
            requeue_gives_back_the_attempt,
            extend_leases_keeps_jobs_from_rescue,
            rescue_enqueues_or_fails_expired_jobs,
            counts_by_state,
            unknown_job_reads_as_none,
            servers_register_heartbeat_and_are_pruned,
            one_leader_at_a_time,
            expire_deletes_only_old_finished_jobs,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __storage_conformance_cases {
    ($make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(storage) = $make().await else { return };
                $crate::conformance::$case(&*storage).await;
            }
        )*
    };
}

fn new_job(name: &str, queue: &str) -> NewJob {
    NewJob {
        name: name.to_owned(),
        queue: queue.to_owned(),
        args: format!(r#"{{"name":"{name}"}}"#),
        max_attempts: 3,
        run_at: None,
    }
}

async fn enqueue(storage: &dyn StorageBackend, jobs: Vec<NewJob>) -> Vec<JobId> {
    storage
        .enqueue(EnqueueParams { jobs })
        .await
        .expect("enqueue")
}

async fn fetch(storage: &dyn StorageBackend, queues: &[&str], limit: usize) -> Vec<FetchedJob> {
    fetch_with_lease(storage, queues, limit, Duration::from_secs(30)).await
}

async fn fetch_with_lease(
    storage: &dyn StorageBackend,
    queues: &[&str],
    limit: usize,
    lease: Duration,
) -> Vec<FetchedJob> {
    storage
        .fetch(FetchParams {
            queues: queues.iter().map(|q| (*q).to_owned()).collect(),
            limit,
            server: "conformance-server".to_owned(),
            lease,
        })
        .await
        .expect("fetch")
}

async fn state(storage: &dyn StorageBackend, id: JobId) -> State {
    storage
        .job(id)
        .await
        .expect("read job")
        .expect("job exists")
        .state
}

async fn states(storage: &dyn StorageBackend, id: JobId) -> Vec<State> {
    storage
        .history(id)
        .await
        .expect("history")
        .into_iter()
        .map(|change| change.state)
        .collect()
}

fn held(job: &FetchedJob) -> Completion {
    Completion {
        id: job.id,
        attempt: job.attempt,
    }
}

// ---- enqueue -------------------------------------------------------------

/// Ids grow in enqueue order; the stored job is what was enqueued.
pub async fn enqueue_returns_ids_in_order(storage: &dyn StorageBackend) {
    let ids = enqueue(
        storage,
        vec![new_job("a", "q"), new_job("b", "q"), new_job("c", "q")],
    )
    .await;
    assert_eq!(ids.len(), 3);
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
    let b = storage.job(ids[1]).await.unwrap().unwrap();
    assert_eq!((b.name.as_str(), b.queue.as_str()), ("b", "q"));
    assert_eq!(b.args, r#"{"name":"b"}"#);
    assert_eq!(
        (b.state, b.attempt, b.max_attempts),
        (State::Enqueued, 0, 3)
    );
    assert_eq!(states(storage, ids[1]).await, [State::Enqueued]);
    let again = enqueue(storage, vec![new_job("d", "q")]).await;
    assert!(again[0] > ids[2]);
}

/// A job with `run_at` is `Scheduled` with that due time and not fetched.
pub async fn enqueue_with_run_at_schedules(storage: &dyn StorageBackend) {
    let at = Utc::now() + chrono::Duration::hours(1);
    let mut job = new_job("later", "q");
    job.run_at = Some(at);
    let id = enqueue(storage, vec![job]).await[0];
    let stored = storage.job(id).await.unwrap().unwrap();
    assert_eq!(stored.state, State::Scheduled);
    let due = stored.run_at.expect("due time");
    assert!((due - at).num_milliseconds().abs() <= 1, "{due} vs {at}");
    assert!(fetch(storage, &["q"], 10).await.is_empty());
}

/// A batch is stored whole, or not at all.
pub async fn enqueue_many_is_one_transaction(storage: &dyn StorageBackend) {
    let broken = vec![
        new_job("fine", "bulk"),
        new_job("", "bulk"),
        new_job("fine too", "bulk"),
    ];
    let refused = storage.enqueue(EnqueueParams { jobs: broken }).await;
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
    let last = storage.job(ids[499]).await.unwrap().unwrap();
    assert_eq!(last.name, "j499");
}

// ---- fetch ---------------------------------------------------------------

/// Earlier queues first; within a queue, enqueue order.
pub async fn fetch_takes_queues_in_priority_then_fifo(storage: &dyn StorageBackend) {
    let low = enqueue(storage, vec![new_job("l1", "low"), new_job("l2", "low")]).await;
    let high = enqueue(storage, vec![new_job("h1", "high"), new_job("h2", "high")]).await;
    enqueue(storage, vec![new_job("other", "unserved")]).await;
    let fetched = fetch(storage, &["high", "low"], 3).await;
    let ids: Vec<_> = fetched.iter().map(|job| job.id).collect();
    assert_eq!(ids, [high[0], high[1], low[0]]);
    for job in &fetched {
        assert_eq!(job.attempt, 1);
        assert_eq!(state(storage, job.id).await, State::Processing);
    }
    let rest: Vec<_> = fetch(storage, &["high", "low"], 10)
        .await
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(rest, [low[1]], "the unserved queue is left alone");
}

/// Never more than `limit` jobs.
pub async fn fetch_respects_the_limit(storage: &dyn StorageBackend) {
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
pub async fn fetch_skips_jobs_of_other_states(storage: &dyn StorageBackend) {
    let mut scheduled = new_job("scheduled", "q");
    scheduled.run_at = Some(Utc::now() + chrono::Duration::hours(1));
    enqueue(storage, vec![scheduled]).await;
    let done = enqueue(storage, vec![new_job("done", "q")]).await[0];
    let taken = fetch(storage, &["q"], 1).await;
    storage
        .complete(CompleteParams {
            jobs: vec![held(&taken[0])],
        })
        .await
        .unwrap();
    assert_eq!(state(storage, done).await, State::Succeeded);
    assert!(fetch(storage, &["q"], 10).await.is_empty());
}

/// Many fetches at once: each job goes to exactly one.
pub async fn concurrent_fetches_never_share_a_job(storage: &dyn StorageBackend) {
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

/// `complete` moves to `Succeeded`; history Enqueued, Processing, Succeeded.
pub async fn complete_moves_to_succeeded_with_history(storage: &dyn StorageBackend) {
    let ids = enqueue(storage, vec![new_job("a", "q"), new_job("b", "q")]).await;
    let taken = fetch(storage, &["q"], 2).await;
    let done = storage
        .complete(CompleteParams {
            jobs: taken.iter().map(held).collect(),
        })
        .await
        .unwrap();
    assert_eq!(done, 2);
    for id in ids {
        assert_eq!(
            states(storage, id).await,
            [State::Enqueued, State::Processing, State::Succeeded]
        );
        let history = storage.history(id).await.unwrap();
        assert!(
            history.windows(2).all(|pair| pair[0].at <= pair[1].at),
            "{history:?}"
        );
        let processing = history[1].data.clone().expect("Processing has data");
        assert_eq!(processing["server"], "conformance-server");
        assert_eq!(processing["attempt"], 1);
    }
}

/// A server whose lease expired cannot finish the attempt another server
/// took over: its late calls change nothing (fencing).
pub async fn complete_is_fenced_by_attempt(storage: &dyn StorageBackend) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let first = fetch_with_lease(storage, &["q"], 1, Duration::from_millis(100))
        .await
        .remove(0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(storage.rescue(RescueParams { limit: 10 }).await.unwrap(), 1);
    let second = fetch(storage, &["q"], 1).await.remove(0);
    assert_eq!((first.attempt, second.attempt), (1, 2));

    let late = held(&first);
    assert_eq!(
        storage
            .complete(CompleteParams { jobs: vec![late] })
            .await
            .unwrap(),
        0
    );
    let late_fail = FailParams {
        job: late,
        reason: "late".into(),
    };
    assert!(!storage.fail(late_fail).await.unwrap());
    let late_retry = RetryParams {
        job: late,
        delay: Duration::ZERO,
        reason: "late".into(),
        error: "late".into(),
        forgive: false,
    };
    assert!(!storage.retry(late_retry).await.unwrap());
    assert_eq!(state(storage, id).await, State::Processing);

    assert_eq!(
        storage
            .complete(CompleteParams {
                jobs: vec![held(&second)]
            })
            .await
            .unwrap(),
        1
    );
    assert_eq!(state(storage, id).await, State::Succeeded);
}

/// `fail` moves to `Failed` with the reason.
pub async fn fail_records_the_reason(storage: &dyn StorageBackend) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let job = fetch(storage, &["q"], 1).await.remove(0);
    let moved = storage
        .fail(FailParams {
            job: held(&job),
            reason: "disk full".into(),
        })
        .await
        .unwrap();
    assert!(moved);
    let failed = storage.job(id).await.unwrap().unwrap();
    assert_eq!(failed.state, State::Failed);
    assert_eq!(failed.reason.as_deref(), Some("disk full"));
    let last = storage.history(id).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.state, last.reason.as_deref()),
        (State::Failed, Some("disk full"))
    );
}

/// `retry` moves to `Scheduled` due after the delay, with reason and error.
pub async fn retry_schedules_after_the_delay(storage: &dyn StorageBackend) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let job = fetch(storage, &["q"], 1).await.remove(0);
    let before = Utc::now();
    let moved = storage
        .retry(RetryParams {
            job: held(&job),
            delay: Duration::from_secs(60),
            reason: "retry attempt 1 of 2".into(),
            error: "timeout".into(),
            forgive: false,
        })
        .await
        .unwrap();
    assert!(moved);
    let scheduled = storage.job(id).await.unwrap().unwrap();
    assert_eq!(scheduled.state, State::Scheduled);
    assert_eq!(scheduled.max_attempts, 3, "the attempt counts");
    let due = scheduled.run_at.unwrap();
    assert!(due >= before + chrono::Duration::seconds(59), "{due}");
    let last = storage.history(id).await.unwrap().pop().unwrap();
    assert_eq!(last.reason.as_deref(), Some("retry attempt 1 of 2"));
    assert_eq!(last.data.unwrap()["error"], "timeout");
    assert_eq!(
        storage
            .promote_scheduled(PromoteParams { limit: 10 })
            .await
            .unwrap(),
        0
    );
}

/// A forgiven failure gives the job one more attempt.
pub async fn a_forgiven_retry_does_not_count(storage: &dyn StorageBackend) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let job = fetch(storage, &["q"], 1).await.remove(0);
    let moved = storage
        .retry(RetryParams {
            job: held(&job),
            delay: Duration::ZERO,
            reason: "another server knows it".into(),
            error: "unknown here".into(),
            forgive: true,
        })
        .await
        .unwrap();
    assert!(moved);
    let deferred = storage.job(id).await.unwrap().unwrap();
    assert_eq!(
        (deferred.state, deferred.attempt, deferred.max_attempts),
        (State::Scheduled, 1, 4)
    );
}

/// Only due jobs are promoted, oldest due first, within the limit.
pub async fn promote_moves_only_due_jobs(storage: &dyn StorageBackend) {
    let now = Utc::now();
    let at = |secs: i64| {
        let mut job = new_job("s", "q");
        job.run_at = Some(now + chrono::Duration::seconds(secs));
        job
    };
    let ids = enqueue(storage, vec![at(-10), at(-20), at(-5), at(3600)]).await;
    assert_eq!(
        storage
            .promote_scheduled(PromoteParams { limit: 2 })
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        state(storage, ids[1]).await,
        State::Enqueued,
        "oldest due first"
    );
    assert_eq!(state(storage, ids[0]).await, State::Enqueued);
    assert_eq!(state(storage, ids[2]).await, State::Scheduled);
    assert_eq!(
        storage
            .promote_scheduled(PromoteParams { limit: 10 })
            .await
            .unwrap(),
        1
    );
    assert_eq!(state(storage, ids[3]).await, State::Scheduled, "not due");
    assert_eq!(
        states(storage, ids[0]).await,
        [State::Scheduled, State::Enqueued]
    );
}

/// `requeue` puts the job back without counting the attempt against it;
/// attempt numbers only grow, so the requeued attempt stays fenced.
pub async fn requeue_gives_back_the_attempt(storage: &dyn StorageBackend) {
    let id = enqueue(storage, vec![new_job("a", "q")]).await[0];
    let job = fetch(storage, &["q"], 1).await.remove(0);
    let requeue = RequeueParams {
        jobs: vec![held(&job)],
        reason: "server stopping".into(),
    };
    assert_eq!(storage.requeue(requeue.clone()).await.unwrap(), 1);
    let requeued = storage.job(id).await.unwrap().unwrap();
    assert_eq!((requeued.state, requeued.attempt), (State::Enqueued, 1));
    assert_eq!(requeued.max_attempts, 4, "one more attempt in exchange");
    assert_eq!(requeued.reason.as_deref(), Some("server stopping"));

    let again = fetch(storage, &["q"], 1).await.remove(0);
    assert_eq!(again.attempt, 2);
    // The same requeue, delivered twice (a lost reply, retried), does not
    // touch the new holder's attempt; nor does a stale completion.
    assert_eq!(storage.requeue(requeue).await.unwrap(), 0);
    assert_eq!(
        storage
            .complete(CompleteParams {
                jobs: vec![held(&job)]
            })
            .await
            .unwrap(),
        0
    );
    assert_eq!(state(storage, id).await, State::Processing);
}

// ---- leases and rescue ---------------------------------------------------

/// A renewed lease is not rescued; an expired one is.
pub async fn extend_leases_keeps_jobs_from_rescue(storage: &dyn StorageBackend) {
    enqueue(storage, vec![new_job("kept", "q"), new_job("lost", "q")]).await;
    let taken = fetch_with_lease(storage, &["q"], 2, Duration::from_millis(300)).await;
    let (kept, lost) = (&taken[0], &taken[1]);
    let extended = storage
        .extend_leases(ExtendLeasesParams {
            jobs: vec![held(kept)],
            lease: Duration::from_secs(60),
        })
        .await
        .unwrap();
    assert_eq!(extended, [kept.id]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(storage.rescue(RescueParams { limit: 10 }).await.unwrap(), 1);
    assert_eq!(state(storage, kept.id).await, State::Processing);
    assert_eq!(state(storage, lost.id).await, State::Enqueued);
    let stale = storage
        .extend_leases(ExtendLeasesParams {
            jobs: vec![held(kept), held(lost)],
            lease: Duration::from_secs(60),
        })
        .await
        .unwrap();
    assert_eq!(
        stale,
        [kept.id],
        "a rescued attempt's lease cannot be renewed"
    );
}

/// Expired jobs with attempts left are enqueued again; the others fail.
pub async fn rescue_enqueues_or_fails_expired_jobs(storage: &dyn StorageBackend) {
    let mut last_chance = new_job("last", "q");
    last_chance.max_attempts = 1;
    let ids = enqueue(storage, vec![new_job("again", "q"), last_chance]).await;
    fetch_with_lease(storage, &["q"], 2, Duration::from_millis(100)).await;
    assert_eq!(
        storage.rescue(RescueParams { limit: 10 }).await.unwrap(),
        0,
        "not expired yet"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(storage.rescue(RescueParams { limit: 10 }).await.unwrap(), 2);
    let again = storage.job(ids[0]).await.unwrap().unwrap();
    assert_eq!(again.state, State::Enqueued);
    assert!(again.reason.unwrap().contains("conformance-server"));
    let failed = storage.job(ids[1]).await.unwrap().unwrap();
    assert_eq!(failed.state, State::Failed);
    assert!(failed.reason.unwrap().contains("no attempts left"));
    assert_eq!(
        fetch(storage, &["q"], 10).await[0].attempt,
        2,
        "the lost attempt counts"
    );
}

// ---- reads ---------------------------------------------------------------

/// Counts follow the states.
pub async fn counts_by_state(storage: &dyn StorageBackend) {
    let mut later = new_job("later", "q");
    later.run_at = Some(Utc::now() + chrono::Duration::hours(1));
    enqueue(storage, vec![new_job("a", "q"), new_job("b", "q"), later]).await;
    let job = fetch(storage, &["q"], 1).await.remove(0);
    let counts = storage.counts().await.unwrap();
    assert_eq!(counts.get(State::Enqueued), 1);
    assert_eq!(counts.get(State::Processing), 1);
    assert_eq!(counts.get(State::Scheduled), 1);
    assert_eq!(counts.total(), 3);
    storage
        .complete(CompleteParams {
            jobs: vec![held(&job)],
        })
        .await
        .unwrap();
    assert_eq!(storage.counts().await.unwrap().get(State::Succeeded), 1);
}

/// An id no job has reads as nothing, not an error.
pub async fn unknown_job_reads_as_none(storage: &dyn StorageBackend) {
    assert!(storage.job(JobId(987_654_321)).await.unwrap().is_none());
    assert!(
        storage
            .history(JobId(987_654_321))
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- servers, leadership, expiry ------------------------------------------

/// Servers register, heartbeat, and are pruned once silent.
pub async fn servers_register_heartbeat_and_are_pruned(storage: &dyn StorageBackend) {
    let info = |id: &str| ServerInfo {
        id: id.to_owned(),
        workers: 8,
        queues: vec!["critical".to_owned(), "default".to_owned()],
        jobs: vec!["mail".to_owned(), "report".to_owned()],
    };
    storage.register_server(info("a")).await.unwrap();
    storage.register_server(info("b")).await.unwrap();
    storage.register_server(info("a")).await.unwrap();
    let servers = storage.servers().await.unwrap();
    let ids: Vec<_> = servers.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(servers[0].queues, ["critical", "default"]);
    assert_eq!(servers[0].jobs, ["mail", "report"]);
    assert_eq!(servers[0].workers, 8);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(storage.heartbeat("a").await.unwrap());
    let pruned = storage
        .prune_servers(PruneServersParams {
            silent_for: Duration::from_millis(200),
        })
        .await
        .unwrap();
    assert_eq!(pruned, 1, "b is silent, a just beat");
    assert!(
        !storage.heartbeat("b").await.unwrap(),
        "a pruned server must register again"
    );
    storage.unregister_server("a").await.unwrap();
    assert!(storage.servers().await.unwrap().is_empty());
}

/// At most one leader; it renews; when it stops, another takes over after
/// the ttl; resigning hands over at once.
pub async fn one_leader_at_a_time(storage: &dyn StorageBackend) {
    let lead = |server: &str, ttl_ms: u64| LeadParams {
        server: server.to_owned(),
        ttl: Duration::from_millis(ttl_ms),
    };
    assert!(storage.try_lead(lead("a", 300)).await.unwrap());
    assert!(!storage.try_lead(lead("b", 300)).await.unwrap());
    assert!(
        storage.try_lead(lead("a", 300)).await.unwrap(),
        "the leader renews"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        storage.try_lead(lead("b", 60_000)).await.unwrap(),
        "a's ttl ran out"
    );
    assert!(!storage.try_lead(lead("a", 300)).await.unwrap());
    storage.resign("a").await.unwrap();
    assert!(
        !storage.try_lead(lead("a", 300)).await.unwrap(),
        "a cannot resign b's leadership"
    );
    storage.resign("b").await.unwrap();
    assert!(
        storage.try_lead(lead("a", 300)).await.unwrap(),
        "free after b resigned"
    );

    let contenders = (0..8).map(|n| storage.try_lead(lead(&format!("c{n}"), 60_000)));
    storage.resign("a").await.unwrap();
    let won = futures_util::future::join_all(contenders)
        .await
        .into_iter()
        .filter(|won| *won.as_ref().unwrap())
        .count();
    assert_eq!(won, 1, "exactly one of eight contenders leads");
}

/// Succeeded jobs past the retention go, with their history; failed,
/// waiting and recent jobs stay.
pub async fn expire_deletes_only_old_finished_jobs(storage: &dyn StorageBackend) {
    let ids = enqueue(
        storage,
        vec![
            new_job("ok", "q"),
            new_job("bad", "q"),
            new_job("wait", "q"),
        ],
    )
    .await;
    let taken = fetch(storage, &["q"], 2).await;
    storage
        .complete(CompleteParams {
            jobs: vec![held(&taken[0])],
        })
        .await
        .unwrap();
    let failed = FailParams {
        job: held(&taken[1]),
        reason: "bad".into(),
    };
    storage.fail(failed).await.unwrap();
    let expire = |ms: u64| ExpireParams {
        older_than: Duration::from_millis(ms),
        limit: 100,
    };
    assert_eq!(
        storage.expire(expire(60_000)).await.unwrap(),
        0,
        "too recent"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(storage.expire(expire(10)).await.unwrap(), 1);
    assert!(storage.job(ids[0]).await.unwrap().is_none());
    assert!(
        storage.history(ids[0]).await.unwrap().is_empty(),
        "history goes with the job"
    );
    assert_eq!(state(storage, ids[1]).await, State::Failed);
    assert_eq!(state(storage, ids[2]).await, State::Enqueued);
}
