//! Conformance cases for job control: priority within a queue, paused
//! queues and job names, and moves limited to some states (a cancel).

use jobs_core::{MoveParams, PauseTarget, SetPausedParams, State, decide};

use super::{enqueue, fetch, ids_of, new_job, record, state};
use crate::Storage;

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
/// unfinished ones), and refuses a source the state machine forbids.
pub async fn move_jobs_takes_only_the_states_it_names(storage: &Storage) {
    let ids = enqueue(storage, vec![new_job("waits", "q"), new_job("runs", "r")]).await;
    let running = fetch(storage, &["r"], 1).await;
    super::finish(
        storage,
        running[0].held(),
        jobs_core::Outcome::Succeeded { result: None },
    )
    .await;
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
    assert_eq!(moved, [ids[0]], "the succeeded job is left alone");
    assert_eq!(state(storage, ids[1]).await, State::Succeeded);
    let cancelled = record(storage, ids[0]).await;
    assert_eq!(cancelled.state, State::Deleted);
    assert_eq!(cancelled.reason.as_deref(), Some(decide::CANCELLED));

    let forbidden = MoveParams {
        ids,
        to: State::Enqueued,
        from: vec![State::Enqueued],
        reason: "x".into(),
    };
    assert!(matches!(
        storage.backend().move_jobs(forbidden).await,
        Err(jobs_core::Error::Config(_))
    ));
}
