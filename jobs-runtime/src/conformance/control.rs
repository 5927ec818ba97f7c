//! Conformance cases for job control: priority within a queue, paused
//! queues and job names, and moves limited to some states (a cancel).

use jobs_core::{MoveParams, PauseTarget, SetPausedParams, State, decide};

use super::continuations::run_one;
use super::{enqueue, fetch, ids_of, new_job, record, state};
use crate::Storage;

const SUCCEEDED: jobs_core::Outcome = jobs_core::Outcome::Succeeded { result: None };

fn failed() -> jobs_core::Outcome {
    jobs_core::Outcome::Failed {
        reason: "boom".into(),
    }
}

fn with_priority(name: &str, queue: &str, priority: i16) -> jobs_core::NewJob {
    let mut job = new_job(name, queue);
    job.priority = priority;
    job
}

async fn set_paused(storage: &Storage, target: PauseTarget, paused: bool) -> bool {
    storage
        .backend()
        .set_paused(SetPausedParams { target, paused })
        .await
        .expect("set_paused")
}

/// Within a queue, lower priority numbers first, then enqueue order;
/// queues keep their own order over any priority. The priority is stored
/// on the job.
pub async fn fetch_orders_a_queue_by_priority_then_enqueue_order(storage: &Storage) {
    let ids = enqueue(
        storage,
        vec![
            with_priority("p5", "q", 5),
            with_priority("p0-first", "q", 0),
            with_priority("n3", "q", -3),
            with_priority("p0-second", "q", 0),
            with_priority("low-queue-urgent", "low", i16::MIN),
        ],
    )
    .await;
    assert_eq!(record(storage, ids[2]).await.priority, -3);
    let fetched = fetch(storage, &["q", "low"], 10).await;
    assert_eq!(
        ids_of(&fetched),
        [ids[2], ids[1], ids[3], ids[0], ids[4]],
        "by queue, then priority, then enqueue order"
    );
}

/// A paused queue gives no job to any fetch, and a paused job name none
/// of its jobs, in every queue; other jobs are fetched past them. Pausing
/// twice or resuming what is not paused changes nothing and says so; the
/// list shows queues first, with the time of the pause.
pub async fn paused_queues_and_job_names_are_not_fetched(storage: &Storage) {
    let queue = PauseTarget::Queue("paused-q".into());
    let name = PauseTarget::Job("paused-name".into());
    assert!(set_paused(storage, name.clone(), true).await);
    assert!(set_paused(storage, queue.clone(), true).await);
    assert!(
        !set_paused(storage, queue.clone(), true).await,
        "already paused"
    );
    let paused = storage.paused().await.expect("paused");
    let targets: Vec<_> = paused.iter().map(|paused| paused.target.clone()).collect();
    assert_eq!(targets, [queue.clone(), name.clone()]);
    let now = storage.backend().clock().await.expect("clock");
    assert!(paused.iter().all(|paused| paused.paused_at <= now));

    let in_paused_queue = enqueue(storage, vec![new_job("other", "paused-q")]).await;
    let of_paused_name = enqueue(
        storage,
        vec![
            new_job("paused-name", "open"),
            new_job("paused-name", "open2"),
        ],
    )
    .await;
    let free = enqueue(storage, vec![new_job("free", "open")]).await;
    let fetched = fetch(storage, &["paused-q", "open", "open2"], 10).await;
    assert_eq!(ids_of(&fetched), free, "only the job neither paused");
    assert_eq!(state(storage, in_paused_queue[0]).await, State::Enqueued);
    assert_eq!(state(storage, of_paused_name[0]).await, State::Enqueued);

    assert!(set_paused(storage, queue.clone(), false).await);
    assert!(!set_paused(storage, queue, false).await, "not paused");
    assert_eq!(
        ids_of(&fetch(storage, &["paused-q", "open", "open2"], 10).await),
        in_paused_queue
    );
    assert!(set_paused(storage, name, false).await);
    assert_eq!(
        ids_of(&fetch(storage, &["paused-q", "open", "open2"], 10).await),
        of_paused_name,
        "resumed, in queue order"
    );
    assert!(storage.paused().await.expect("paused").is_empty());
}

/// A move takes jobs only from the states it names (a cancel: the
/// unfinished ones), and refuses a source the state machine forbids. A
/// running job it moves keeps the attempt it stopped as the move's data.
pub async fn move_jobs_takes_only_the_states_it_names(storage: &Storage) {
    let ids = enqueue(
        storage,
        vec![
            new_job("waits", "q"),
            new_job("ran", "r"),
            new_job("runs", "s"),
        ],
    )
    .await;
    run_one(storage, "r", SUCCEEDED).await;
    let running = fetch(storage, &["s"], 1).await;
    assert_eq!(ids_of(&running), [ids[2]]);
    let unfinished: Vec<State> = State::ALL
        .into_iter()
        .filter(|state| !state.is_final())
        .collect();
    let cancel = MoveParams {
        ids: ids.clone(),
        to: State::Deleted,
        from: unfinished,
        reason: decide::CANCELLED.into(),
    };
    let moved = storage.backend().move_jobs(cancel).await.expect("move");
    assert_eq!(moved, [ids[0], ids[2]], "the succeeded job is left alone");
    assert_eq!(state(storage, ids[1]).await, State::Succeeded);
    let cancelled = record(storage, ids[0]).await;
    assert_eq!(cancelled.state, State::Deleted);
    assert_eq!(cancelled.reason.as_deref(), Some(decide::CANCELLED));
    let stopped = super::history(storage, ids[2]).await;
    let last = stopped.last().expect("a history");
    assert_eq!(last.state, State::Deleted);
    let data = last.data.as_ref().expect("the stopped attempt");
    assert_eq!(data["attempt"], 1);
    assert_eq!(data["server"], super::SERVER);
    let waited = super::history(storage, ids[0]).await;
    assert_eq!(waited.last().unwrap().data, None, "no attempt was stopped");

    let forbidden = MoveParams {
        ids: ids.clone(),
        to: State::Enqueued,
        from: vec![State::Enqueued],
        reason: "x".into(),
    };
    assert!(matches!(
        storage.backend().move_jobs(forbidden).await,
        Err(jobs_core::Error::Config(_))
    ));
}

fn unique(name: &str, queue: &str, key: &str) -> jobs_core::NewJob {
    let mut job = new_job(name, queue);
    job.unique = Some(jobs_core::Uniqueness::new().key(name, key));
    job
}

fn limited(name: &str, queue: &str, key: &str, limit: u32) -> jobs_core::NewJob {
    let mut job = new_job(name, queue);
    job.concurrency = Some(jobs_core::ConcurrencyKey {
        key: key.to_owned(),
        limit,
    });
    job
}

/// A unique job whose key another job holds (in the key's states) is not
/// stored: the enqueue returns the holder's id, in the call's order,
/// also for two jobs of one key in one call. Once the holder finished
/// (out of the default states), the key is free again.
pub async fn a_unique_job_returns_the_holder_of_its_key(storage: &Storage) {
    let first = enqueue(storage, vec![unique("report", "q", "day-1")]).await[0];
    let ids = enqueue(
        storage,
        vec![
            unique("report", "q", "day-1"),
            new_job("plain", "q"),
            unique("report", "q", "day-2"),
            unique("report", "q", "day-2"),
        ],
    )
    .await;
    assert_eq!(ids[0], first, "the holder's id");
    assert_ne!(ids[1], first);
    assert_eq!(ids[2], ids[3], "one job for one key in one call");
    assert_ne!(ids[2], first);
    let counts = storage.counts().await.expect("counts");
    assert_eq!(counts.get(State::Enqueued), 3, "no duplicate was stored");

    let taken = fetch(storage, &["q"], 1).await;
    assert_eq!(ids_of(&taken), [first]);
    let again = enqueue(storage, vec![unique("report", "q", "day-1")]).await[0];
    assert_eq!(again, first, "a running job holds its key");
    super::finish(storage, taken[0].held(), SUCCEEDED).await;
    let after = enqueue(storage, vec![unique("report", "q", "day-1")]).await[0];
    assert_ne!(after, first, "a finished job holds its key no more");
}

/// Many concurrent enqueues of one unique key store exactly one job, and
/// every caller gets its id.
pub async fn concurrent_enqueues_of_a_unique_key_store_one_job(storage: &Storage) {
    let calls = (0..16).map(|_| {
        let storage = storage.clone();
        tokio::spawn(async move { enqueue(&storage, vec![unique("once", "q", "k")]).await[0] })
    });
    let mut ids = Vec::new();
    for call in calls {
        ids.push(call.await.expect("enqueue task"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every caller got the one job's id: {ids:?}");
    let counts = storage.counts().await.expect("counts");
    assert_eq!(counts.get(State::Enqueued), 1);
}

/// A unique job may not be a continuation or join a batch.
pub async fn a_unique_continuation_is_refused(storage: &Storage) {
    let parent = enqueue(storage, vec![new_job("parent", "q")]).await[0];
    let mut job = unique("child", "q", "k");
    job.continuation = Some(jobs_core::Continuation {
        parent: jobs_core::Parent::Job(parent),
        on: jobs_core::ContinueOn::Succeeded,
    });
    let refused = storage
        .enqueue(jobs_core::EnqueueParams::jobs(vec![job]))
        .await;
    assert!(
        matches!(&refused, Err(jobs_core::Error::Config(message)) if message.contains("unique")),
        "{refused:?}"
    );
}

/// A fetch takes no more jobs of a key than its limit less its running
/// jobs, and takes the other jobs past those over their limit; a finish
/// frees room for the next.
pub async fn a_fetch_keeps_each_key_within_its_limit(storage: &Storage) {
    let mut jobs: Vec<_> = (0..5).map(|_| limited("sync", "q", "sync", 2)).collect();
    jobs.extend((0..3).map(|_| limited("charge", "q", "charge#42", 1)));
    jobs.push(new_job("free", "q"));
    let ids = enqueue(storage, jobs).await;
    let taken = fetch(storage, &["q"], 10).await;
    assert_eq!(
        ids_of(&taken),
        [ids[0], ids[1], ids[5], ids[8]],
        "two of sync, one of charge#42, and the free job"
    );
    assert!(
        fetch(storage, &["q"], 10).await.is_empty(),
        "all at their limits"
    );
    super::finish(storage, taken[0].held(), SUCCEEDED).await;
    assert_eq!(ids_of(&fetch(storage, &["q"], 10).await), [ids[2]]);
}

/// Concurrent fetches, as many servers make them, never run more jobs of
/// a key than its limit between them.
pub async fn concurrent_fetches_never_exceed_a_limit(storage: &Storage) {
    enqueue(
        storage,
        (0..40)
            .map(|_| limited("limited", "q", "limited", 2))
            .collect(),
    )
    .await;
    let fetches = (0..8).map(|_| {
        let storage = storage.clone();
        tokio::spawn(async move { fetch(&storage, &["q"], 5).await.len() })
    });
    let mut taken = 0;
    for fetch in fetches {
        taken += fetch.await.expect("fetch task");
    }
    assert_eq!(taken, 2, "the limit held across concurrent fetches");
    let counts = storage.counts().await.expect("counts");
    assert_eq!(counts.get(State::Processing), 2);
}

/// An operator's move never breaks a key: a unique job that would move
/// into its key's states while another job holds the key is left alone,
/// the other jobs of the move are moved, and no error stops the move.
pub async fn a_move_leaves_alone_a_unique_job_whose_key_is_held(storage: &Storage) {
    let first = enqueue(storage, vec![unique("report", "q", "k")]).await[0];
    run_one(storage, "q", failed()).await;
    let second = enqueue(storage, vec![unique("report", "q", "k")]).await[0];
    assert_ne!(second, first, "a failed job holds its key no more");
    let other = enqueue(storage, vec![new_job("other", "r")]).await[0];
    run_one(storage, "r", failed()).await;
    let requeue = MoveParams::new(
        vec![first, other],
        State::Enqueued,
        decide::REQUEUED_BY_OPERATOR,
    )
    .expect("an operator's move");
    let moved = storage.backend().move_jobs(requeue).await.expect("move");
    assert_eq!(moved, [other], "the job whose key is held is left alone");
    assert_eq!(state(storage, first).await, State::Failed);
    let refused = storage.requeue(first).await;
    assert!(
        matches!(&refused, Err(jobs_core::Error::Config(message)) if message.contains("holds its key")),
        "{refused:?}"
    );
    let delete = MoveParams::new(vec![first], State::Deleted, decide::DELETED_BY_OPERATOR)
        .expect("an operator's move");
    assert_eq!(
        storage.backend().move_jobs(delete).await.expect("move"),
        [first],
        "out of the key's states, it moves"
    );
}
