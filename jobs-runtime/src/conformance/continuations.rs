//! Conformance cases for continuations: a job that awaits a parent job,
//! is decided when the parent finishes (in the finishing statement, or by
//! `resolve_awaiting`), and receives the parent's result.

use jobs_core::{
    Continuation, ContinueOn, EnqueueParams, Error, JobId, NewJob, Outcome, Parent,
    ResolveAwaitingParams, State, decide,
};

use super::{enqueue, fetch, finish, history, ids_of, new_job, record, state, states};
use crate::Storage;

/// A continuation of `parent` in `queue`, awaiting `on`.
pub(super) fn continuation(queue: &str, parent: JobId, on: ContinueOn) -> NewJob {
    let mut job = new_job("continuation", queue);
    job.continuation = Some(Continuation {
        parent: Parent::Job(parent),
        on,
    });
    job
}

/// Fetches the one job of `queue` and records `outcome` for it.
pub(super) async fn run_one(storage: &Storage, queue: &str, outcome: Outcome) -> JobId {
    let taken = fetch(storage, &[queue], 1).await;
    assert_eq!(taken.len(), 1, "one job in {queue}");
    let id = taken[0].id;
    assert_eq!(finish(storage, taken[0].held(), outcome).await, [id]);
    id
}

pub(super) async fn resolve(storage: &Storage) -> u64 {
    storage
        .backend()
        .resolve_awaiting(ResolveAwaitingParams { limit: 1000 })
        .await
        .expect("resolve_awaiting")
}

fn succeeded(result: &str) -> Outcome {
    Outcome::Succeeded {
        result: Some(result.to_owned()),
    }
}

/// A continuation is stored `Awaiting` and is not fetched; when its
/// parent succeeds, the same `finish` enqueues it with the reason and data
/// the contract gives, and its fetch carries the parent's result, which
/// the parent's record keeps too.
pub async fn a_continuation_waits_and_gets_its_parents_result(storage: &Storage) {
    let parent = enqueue(storage, vec![new_job("parent", "p")]).await[0];
    let child = enqueue(
        storage,
        vec![continuation("c", parent, ContinueOn::Succeeded)],
    )
    .await[0];
    assert_eq!(state(storage, child).await, State::Awaiting);
    let awaiting = record(storage, child).await;
    assert_eq!(awaiting.parent, Some(parent));
    assert!(
        fetch(storage, &["c"], 10).await.is_empty(),
        "an awaiting job is not fetched"
    );

    run_one(storage, "p", succeeded(r#"{"rows":[1,2]}"#)).await;
    assert_eq!(
        record(storage, parent).await.result.as_deref(),
        Some(r#"{"rows":[1,2]}"#)
    );
    assert_eq!(state(storage, child).await, State::Enqueued);
    let moves = history(storage, child).await;
    assert_eq!(
        moves.iter().map(|m| m.state).collect::<Vec<_>>(),
        [State::Awaiting, State::Enqueued]
    );
    assert_eq!(moves[1].reason.as_deref(), Some(decide::PARENT_AS_AWAITED));
    assert_eq!(
        moves[1].data,
        Some(serde_json::json!({"parent": parent.0, "parent_state": "Succeeded"}))
    );
    let taken = fetch(storage, &["c"], 10).await;
    assert_eq!(ids_of(&taken), [child]);
    assert_eq!(taken[0].parent_result.as_deref(), Some(r#"{"rows":[1,2]}"#));

    // Requeued, the parent loses the result of its earlier run.
    storage.requeue(parent).await.expect("requeue");
    assert_eq!(record(storage, parent).await.result, None);
}

/// Each [`ContinueOn`] enqueues its continuation on its parent states and
/// deletes it on the others, with the reason saying so: parents that
/// succeeded, failed (both through `finish`) and were deleted (an
/// operator's move), three continuations each.
pub async fn continue_on_decides_enqueued_or_deleted(storage: &Storage) {
    let options = [
        ContinueOn::Succeeded,
        ContinueOn::Finished,
        ContinueOn::Deleted,
    ];
    for (queue, parent_state) in [
        ("ok", State::Succeeded),
        ("bad", State::Failed),
        ("gone", State::Deleted),
    ] {
        let parent = enqueue(storage, vec![new_job("parent", queue)]).await[0];
        let children = enqueue(
            storage,
            options
                .iter()
                .map(|on| continuation("children", parent, *on))
                .collect(),
        )
        .await;
        match parent_state {
            State::Succeeded => {
                run_one(storage, queue, Outcome::Succeeded { result: None }).await;
            }
            State::Failed => {
                let failed = Outcome::Failed {
                    reason: "broken".into(),
                };
                run_one(storage, queue, failed).await;
            }
            _ => storage.delete(parent).await.expect("delete"),
        }
        assert_eq!(state(storage, parent).await, parent_state);
        for (child, on) in children.iter().zip(options) {
            let expected = on.next_state(parent_state);
            let child = record(storage, *child).await;
            assert_eq!(
                child.state, expected,
                "{on:?} after a parent {parent_state}"
            );
            assert_eq!(
                child.reason.as_deref(),
                Some(decide::awaited_reason(expected)),
                "{on:?} after a parent {parent_state}"
            );
        }
    }
}

/// A continuation of a parent that has finished already is stored decided
/// (never `Awaiting`), with the parent's result; one whose condition the
/// parent did not meet is stored `Deleted`.
pub async fn a_continuation_of_a_finished_parent_is_decided_at_once(storage: &Storage) {
    let parent = enqueue(storage, vec![new_job("parent", "p")]).await[0];
    run_one(storage, "p", succeeded("42")).await;
    let ids = enqueue(
        storage,
        vec![
            continuation("c", parent, ContinueOn::Succeeded),
            continuation("c", parent, ContinueOn::Deleted),
        ],
    )
    .await;
    assert_eq!(states(storage, ids[0]).await, [State::Enqueued]);
    assert_eq!(states(storage, ids[1]).await, [State::Deleted]);
    let moves = history(storage, ids[0]).await;
    assert_eq!(moves[0].reason.as_deref(), Some(decide::PARENT_AS_AWAITED));
    assert_eq!(
        moves[0].data,
        Some(serde_json::json!({"parent": parent.0, "parent_state": "Succeeded"}))
    );
    let taken = fetch(storage, &["c"], 10).await;
    assert_eq!(ids_of(&taken), [ids[0]]);
    assert_eq!(taken[0].parent_result.as_deref(), Some("42"));
}

/// A continuation of a job that does not exist is refused with
/// `JobNotFound`, and nothing of the call is stored.
pub async fn a_continuation_of_an_unknown_parent_is_refused(storage: &Storage) {
    let before = storage.counts().await.expect("counts").total();
    let missing = JobId(i64::MAX - 7);
    let refused = storage
        .enqueue(EnqueueParams::jobs(vec![
            new_job("plain", "q"),
            continuation("c", missing, ContinueOn::Finished),
        ]))
        .await;
    assert!(
        matches!(refused, Err(Error::JobNotFound(id)) if id == missing),
        "{refused:?}"
    );
    assert_eq!(storage.counts().await.expect("counts").total(), before);
}

/// Chains: a continuation deleted because its parent failed is a final
/// parent in its turn. `finish` decides the first link; the next ones are
/// decided by the time `resolve_awaiting` returned (a storage may decide
/// them in the finish already, as SQLite does): the grandchild awaits
/// `Deleted`, so it is enqueued; its own continuation waits for it. Then
/// nothing is left to decide. An operator's delete decides the
/// continuations of the deleted job.
pub async fn resolve_awaiting_decides_chains_of_continuations(storage: &Storage) {
    let a = enqueue(storage, vec![new_job("a", "chain")]).await[0];
    let b = enqueue(storage, vec![continuation("b", a, ContinueOn::Succeeded)]).await[0];
    let c = enqueue(storage, vec![continuation("c", b, ContinueOn::Deleted)]).await[0];
    let d = enqueue(storage, vec![continuation("d", c, ContinueOn::Succeeded)]).await[0];
    let failed = Outcome::Failed {
        reason: "broken".into(),
    };
    run_one(storage, "chain", failed).await;
    assert_eq!(state(storage, b).await, State::Deleted);
    resolve(storage).await;
    assert_eq!(state(storage, c).await, State::Enqueued);
    let moves = history(storage, c).await;
    assert_eq!(moves[1].reason.as_deref(), Some(decide::PARENT_AS_AWAITED));
    assert_eq!(
        moves[1].data,
        Some(serde_json::json!({"parent": b.0, "parent_state": "Deleted"}))
    );
    assert_eq!(state(storage, d).await, State::Awaiting);
    assert_eq!(resolve(storage).await, 0, "nothing left to decide");

    storage.delete(c).await.expect("delete");
    assert_eq!(state(storage, d).await, State::Deleted);
    assert_eq!(
        record(storage, d).await.reason.as_deref(),
        Some(decide::PARENT_NOT_AS_AWAITED)
    );

    // An operator deleting a parent and its continuation at once: the
    // continuation is the operator's, not decided by its parent's move.
    let parent = enqueue(storage, vec![new_job("parent", "both")]).await[0];
    let child = enqueue(
        storage,
        vec![continuation("e", parent, ContinueOn::Deleted)],
    )
    .await[0];
    let moved = storage
        .move_jobs(
            jobs_core::MoveParams::new(
                vec![child, parent],
                State::Deleted,
                decide::DELETED_BY_OPERATOR,
            )
            .expect("an operator's move"),
        )
        .await
        .expect("move");
    assert_eq!(moved.len(), 2);
    let child = record(storage, child).await;
    assert_eq!(child.state, State::Deleted);
    assert_eq!(child.reason.as_deref(), Some(decide::DELETED_BY_OPERATOR));
}

/// A continuation stored while its parent is finishing is never left
/// `Awaiting`: either the finish decides it, or it is stored decided, or
/// `resolve_awaiting` decides it; in every case it ends `Enqueued` with
/// the parent's result. Fifty races, each on a fresh parent.
pub async fn a_continuation_racing_its_parents_finish_is_never_stranded(storage: &Storage) {
    for round in 0..50 {
        let queue = format!("race-{round}");
        let parent = enqueue(storage, vec![new_job("parent", &queue)]).await[0];
        let taken = fetch(storage, &[&queue], 1).await;
        let (finished, child) = tokio::join!(
            finish(storage, taken[0].held(), succeeded(&round.to_string())),
            storage.enqueue(EnqueueParams::jobs(vec![continuation(
                "raced",
                parent,
                ContinueOn::Succeeded
            )])),
        );
        assert_eq!(finished, [parent]);
        let child = child.expect("enqueue the continuation")[0];
        resolve(storage).await;
        assert_eq!(
            state(storage, child).await,
            State::Enqueued,
            "round {round}"
        );
    }
    let taken = fetch(storage, &["raced"], 100).await;
    assert_eq!(taken.len(), 50);
    for job in taken {
        assert!(
            job.parent_result.is_some(),
            "job {} got its parent's result",
            job.id
        );
    }
}
