//! Conformance cases for batches: created with their jobs in one
//! transaction, finished by `resolve_awaiting` once every member has (nested
//! batches first), continued, joined while `Started` only, cancelled, and
//! expired with their members.

use std::time::Duration;

use jobs_core::{
    BatchId, BatchRecord, BatchState, Continuation, ContinueOn, EnqueueParams, Error, ExpireParams,
    NewBatch, NewJob, Outcome, Parent, State, decide,
};

use super::continuations::{resolve, run_one};
use super::{fetch, finish, new_job, record, state};
use crate::Storage;
use jobs_core::BatchQuery;

fn new_batch(parent: Option<&BatchId>) -> NewBatch {
    NewBatch {
        id: BatchId::new(),
        parent: parent.cloned(),
        description: Some("conformance".to_owned()),
    }
}

fn member(batch: &BatchId, queue: &str) -> NewJob {
    let mut job = new_job("member", queue);
    job.batch = Some(batch.clone());
    job
}

fn after_batch(batch: &BatchId, on: ContinueOn) -> NewJob {
    let mut job = new_job("after", "after");
    job.continuation = Some(Continuation {
        parent: Parent::Batch(batch.clone()),
        on,
    });
    job
}

async fn store(
    storage: &Storage,
    batches: Vec<NewBatch>,
    jobs: Vec<NewJob>,
) -> Vec<jobs_core::JobId> {
    storage
        .enqueue(EnqueueParams { jobs, batches })
        .await
        .expect("enqueue")
}

async fn batch(storage: &Storage, id: &BatchId) -> BatchRecord {
    storage
        .batch(id)
        .await
        .expect("read batch")
        .unwrap_or_else(|| panic!("batch {id} exists"))
}

fn succeeded(result: &str) -> Outcome {
    Outcome::Succeeded {
        result: Some(result.to_owned()),
    }
}

/// A batch is stored with its jobs in one call: `Started`, its members
/// counted as pending and naming it; a call that fails stores neither.
pub async fn batch_and_its_jobs_are_created_together(storage: &Storage) {
    let created = new_batch(None);
    let id = created.id.clone();
    let ids = store(
        storage,
        vec![created],
        vec![member(&id, "m"), member(&id, "m"), member(&id, "m")],
    )
    .await;
    let stored = batch(storage, &id).await;
    assert_eq!(stored.state, BatchState::Started);
    assert_eq!(stored.description.as_deref(), Some("conformance"));
    assert_eq!(stored.jobs.get(State::Enqueued), 3);
    assert_eq!(stored.pending(), 3);
    assert_eq!(stored.finished_at, None);
    for job in ids {
        assert_eq!(record(storage, job).await.batch, Some(id.clone()));
    }

    let refused = new_batch(None);
    let refused_id = refused.id.clone();
    let mut broken = member(&refused_id, "m");
    broken.name = String::new();
    let result = storage
        .enqueue(EnqueueParams {
            jobs: vec![member(&refused_id, "m"), broken],
            batches: vec![refused],
        })
        .await;
    assert!(result.is_err(), "a job without a name is refused");
    assert!(
        storage.batch(&refused_id).await.unwrap().is_none(),
        "all or nothing"
    );
    assert_eq!(batch(storage, &id).await.jobs.total(), 3);
}

/// A batch stays `Started` while a member is pending, then finishes
/// `Succeeded`; its continuation awaiting success is enqueued with the
/// members' results (a JSON array in member order), the one awaiting a
/// cancel is deleted.
pub async fn batch_finishes_when_every_member_has(storage: &Storage) {
    let created = new_batch(None);
    let id = created.id.clone();
    let ids = store(
        storage,
        vec![created],
        vec![
            member(&id, "m"),
            member(&id, "m"),
            after_batch(&id, ContinueOn::Succeeded),
            after_batch(&id, ContinueOn::Deleted),
        ],
    )
    .await;
    assert_eq!(state(storage, ids[2]).await, State::Awaiting);
    let taken = fetch(storage, &["m"], 2).await;
    assert_eq!(taken.len(), 2);
    finish(storage, taken[0].held(), succeeded(r#""first""#)).await;
    resolve(storage).await;
    assert_eq!(batch(storage, &id).await.state, BatchState::Started);
    assert_eq!(state(storage, ids[2]).await, State::Awaiting);

    finish(storage, taken[1].held(), succeeded(r#"{"n":2}"#)).await;
    assert_eq!(
        resolve(storage).await,
        3,
        "the batch and its two continuations"
    );
    let finished = batch(storage, &id).await;
    assert_eq!(finished.state, BatchState::Succeeded);
    assert!(finished.finished_at.is_some());
    assert_eq!(finished.jobs.get(State::Succeeded), 2);
    assert_eq!(finished.pending(), 0);
    assert_eq!(state(storage, ids[2]).await, State::Enqueued);
    assert_eq!(state(storage, ids[3]).await, State::Deleted);
    let moves = storage.history(ids[2]).await.unwrap();
    assert_eq!(
        moves[1].data,
        Some(serde_json::json!({"parent_batch": id.as_str(), "parent_state": "Succeeded"}))
    );
    let after = fetch(storage, &["after"], 10).await;
    assert_eq!(after.len(), 1);
    let results: serde_json::Value =
        serde_json::from_str(after[0].parent_result.as_deref().expect("results")).unwrap();
    assert_eq!(results, serde_json::json!(["first", {"n": 2}]));

    // A continuation added once the batch finished is decided at once.
    let late = storage
        .enqueue(EnqueueParams::jobs(vec![after_batch(
            &id,
            ContinueOn::Succeeded,
        )]))
        .await
        .expect("a continuation of a finished batch");
    assert_eq!(state(storage, late[0]).await, State::Enqueued);
    assert_eq!(resolve(storage).await, 0);
}

/// A member that fails makes the batch `Failed` once all finished: the
/// continuation awaiting success is deleted, the one awaiting any outcome
/// is enqueued.
pub async fn batch_with_a_failed_member_finishes_failed(storage: &Storage) {
    let created = new_batch(None);
    let id = created.id.clone();
    let ids = store(
        storage,
        vec![created],
        vec![
            member(&id, "m"),
            member(&id, "m"),
            after_batch(&id, ContinueOn::Succeeded),
            after_batch(&id, ContinueOn::Finished),
        ],
    )
    .await;
    let taken = fetch(storage, &["m"], 2).await;
    finish(
        storage,
        taken[0].held(),
        Outcome::Succeeded { result: None },
    )
    .await;
    let failed = Outcome::Failed {
        reason: "broken".into(),
    };
    finish(storage, taken[1].held(), failed).await;
    resolve(storage).await;
    assert_eq!(batch(storage, &id).await.state, BatchState::Failed);
    assert_eq!(state(storage, ids[2]).await, State::Deleted);
    assert_eq!(state(storage, ids[3]).await, State::Enqueued);
}

/// A batch with a nested batch finishes only after it: its own members all
/// finished, it waits for the nested one; once that one's member finishes,
/// one `resolve_awaiting` finishes both.
pub async fn nested_batches_finish_inside_out(storage: &Storage) {
    let outer = new_batch(None);
    let inner = new_batch(Some(&outer.id));
    let (outer_id, inner_id) = (outer.id.clone(), inner.id.clone());
    store(
        storage,
        vec![outer, inner],
        vec![
            member(&outer_id, "outer"),
            member(&inner_id, "inner"),
            after_batch(&outer_id, ContinueOn::Succeeded),
        ],
    )
    .await;
    assert_eq!(
        batch(storage, &outer_id).await.batches,
        std::slice::from_ref(&inner_id)
    );
    assert_eq!(
        batch(storage, &inner_id).await.parent,
        Some(outer_id.clone())
    );
    run_one(storage, "outer", Outcome::Succeeded { result: None }).await;
    resolve(storage).await;
    assert_eq!(batch(storage, &outer_id).await.state, BatchState::Started);
    run_one(storage, "inner", Outcome::Succeeded { result: None }).await;
    resolve(storage).await;
    assert_eq!(batch(storage, &inner_id).await.state, BatchState::Succeeded);
    assert_eq!(batch(storage, &outer_id).await.state, BatchState::Succeeded);
    assert_eq!(fetch(storage, &["after"], 10).await.len(), 1);
}

/// Jobs and nested batches join a `Started` batch and hold it open; a
/// batch that finished refuses them with `BatchFinished` (nothing is
/// stored), an unknown one with `BatchNotFound`.
pub async fn jobs_join_only_a_started_batch(storage: &Storage) {
    let created = new_batch(None);
    let id = created.id.clone();
    store(storage, vec![created], vec![member(&id, "m")]).await;
    let joined = store(storage, Vec::new(), vec![member(&id, "late")]).await;
    let nested = new_batch(Some(&id));
    store(storage, vec![nested], Vec::new()).await;
    assert_eq!(batch(storage, &id).await.jobs.total(), 2);
    assert_eq!(batch(storage, &id).await.batches.len(), 1);
    run_one(storage, "m", Outcome::Succeeded { result: None }).await;
    resolve(storage).await;
    assert_eq!(
        batch(storage, &id).await.state,
        BatchState::Started,
        "the joined job holds it open"
    );
    assert_eq!(state(storage, joined[0]).await, State::Enqueued);
    run_one(storage, "late", Outcome::Succeeded { result: None }).await;
    resolve(storage).await;
    assert_eq!(batch(storage, &id).await.state, BatchState::Succeeded);

    let before = storage.counts().await.unwrap().total();
    let refused = storage
        .enqueue(EnqueueParams::jobs(vec![
            new_job("plain", "q"),
            member(&id, "m"),
        ]))
        .await;
    assert!(
        matches!(&refused, Err(Error::BatchFinished { id: got, state: BatchState::Succeeded }) if *got == id),
        "{refused:?}"
    );
    // A job of a batch awaiting that batch, or one it is nested in,
    // would wait forever.
    let outer = new_batch(None);
    let inner = new_batch(Some(&outer.id));
    let mut waits_for_itself = after_batch(&outer.id, ContinueOn::Finished);
    waits_for_itself.batch = Some(inner.id.clone());
    let refused = storage
        .enqueue(EnqueueParams {
            jobs: vec![waits_for_itself],
            batches: vec![outer, inner],
        })
        .await;
    assert!(matches!(&refused, Err(Error::Config(_))), "{refused:?}");

    let unknown = BatchId::new();
    let refused = storage
        .enqueue(EnqueueParams::jobs(vec![member(&unknown, "m")]))
        .await;
    assert!(
        matches!(&refused, Err(Error::BatchNotFound(got)) if *got == unknown),
        "{refused:?}"
    );
    assert_eq!(storage.counts().await.unwrap().total(), before);
}

/// Cancelling a batch deletes the waiting members of it and of its nested
/// batches, with the reason; a running member runs on; both batches are
/// `Deleted`, and a continuation awaiting that is enqueued. Cancelling it
/// again is `BatchFinished`; an unknown batch is `BatchNotFound`.
pub async fn cancel_deletes_a_batchs_waiting_members(storage: &Storage) {
    let outer = new_batch(None);
    let inner = new_batch(Some(&outer.id));
    let (outer_id, inner_id) = (outer.id.clone(), inner.id.clone());
    let mut scheduled = member(&outer_id, "later");
    scheduled.schedule = jobs_core::Schedule::In(Duration::from_secs(3600));
    let ids = store(
        storage,
        vec![outer, inner],
        vec![
            member(&outer_id, "run"),
            member(&outer_id, "wait"),
            scheduled,
            member(&inner_id, "inner"),
            after_batch(&outer_id, ContinueOn::Deleted),
        ],
    )
    .await;
    let running = fetch(storage, &["run"], 1).await;
    assert_eq!(running[0].id, ids[0]);
    let mut deleted = storage.cancel_batch(&outer_id).await.expect("cancel");
    deleted.sort();
    assert_eq!(deleted, [ids[1], ids[2], ids[3]]);
    for id in &deleted {
        let job = record(storage, *id).await;
        assert_eq!(job.state, State::Deleted);
        assert_eq!(job.reason.as_deref(), Some(decide::BATCH_CANCELLED));
    }
    assert_eq!(state(storage, ids[0]).await, State::Processing);
    assert_eq!(batch(storage, &outer_id).await.state, BatchState::Deleted);
    assert_eq!(batch(storage, &inner_id).await.state, BatchState::Deleted);
    resolve(storage).await;
    assert_eq!(state(storage, ids[4]).await, State::Enqueued);

    let again = storage.cancel_batch(&outer_id).await;
    assert!(
        matches!(
            &again,
            Err(Error::BatchFinished {
                state: BatchState::Deleted,
                ..
            })
        ),
        "{again:?}"
    );
    let unknown = storage.cancel_batch(&BatchId::new()).await;
    assert!(
        matches!(unknown, Err(Error::BatchNotFound(_))),
        "{unknown:?}"
    );
}

/// Members of a batch do not expire alone, even when finished long ago:
/// they expire with the batch, all together, once it finished longer than
/// the retention ago; the batch's record goes too.
pub async fn batches_expire_with_their_members(storage: &Storage) {
    let outer = new_batch(None);
    let inner = new_batch(Some(&outer.id));
    let (outer_id, inner_id) = (outer.id.clone(), inner.id.clone());
    let ids = store(
        storage,
        vec![outer, inner],
        vec![member(&outer_id, "first"), member(&inner_id, "second")],
    )
    .await;
    let expire = |ms: u64| {
        storage.backend().expire(ExpireParams {
            older_than: Duration::from_millis(ms),
            limit: 100,
        })
    };
    run_one(storage, "first", Outcome::Succeeded { result: None }).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(expire(10).await.unwrap(), 0, "the batch is still open");
    assert_eq!(state(storage, ids[0]).await, State::Succeeded);

    run_one(storage, "second", Outcome::Succeeded { result: None }).await;
    resolve(storage).await;
    assert_eq!(batch(storage, &outer_id).await.state, BatchState::Succeeded);
    assert_eq!(expire(60_000).await.unwrap(), 0, "finished too recently");
    // The batch finished at least 50 ms ago by the storage's clock.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(expire(10).await.unwrap(), 2);
    for id in ids {
        assert!(storage.job(id).await.unwrap().is_none());
    }
    assert!(storage.batch(&outer_id).await.unwrap().is_none());
    assert!(storage.batch(&inner_id).await.unwrap().is_none());
}

/// A job joining a batch while the batch is being finished either joins
/// it (and the batch stays `Started`) or is refused with `BatchFinished`
/// (and nothing is stored): never a finished batch with a pending member.
/// Thirty races, each on a fresh batch whose only member has finished.
pub async fn a_batch_never_finishes_over_a_member_joining(storage: &Storage) {
    for round in 0..30 {
        let queue = format!("race-{round}");
        let created = new_batch(None);
        let id = created.id.clone();
        store(storage, vec![created], vec![member(&id, &queue)]).await;
        run_one(storage, &queue, Outcome::Succeeded { result: None }).await;
        let (_, joined) = tokio::join!(
            resolve(storage),
            storage.enqueue(EnqueueParams::jobs(vec![member(&id, "joined")])),
        );
        resolve(storage).await;
        let stored = batch(storage, &id).await;
        match joined {
            Ok(_) => {
                assert_eq!(stored.state, BatchState::Started, "round {round}");
                assert_eq!(stored.pending(), 1, "round {round}");
                run_one(storage, "joined", Outcome::Succeeded { result: None }).await;
            }
            Err(Error::BatchFinished { .. }) => {
                assert_eq!(stored.state, BatchState::Succeeded, "round {round}");
                assert_eq!(stored.jobs.total(), 1, "round {round}");
            }
            Err(error) => panic!("round {round}: {error}"),
        }
    }
}

/// Started batches (nested ones too) are listed newest first, finished
/// outermost ones most recently finished first, each with its progress,
/// one keyset page at a time.
pub async fn batches_are_listed_by_state_in_pages(storage: &Storage) {
    let mut started = Vec::new();
    for _ in 0..3 {
        let created = new_batch(None);
        let id = created.id.clone();
        store(storage, vec![created], vec![member(&id, "list")]).await;
        started.push(id);
    }
    let nested = new_batch(Some(&started[0]));
    let nested_id = nested.id.clone();
    store(storage, vec![nested], vec![member(&nested_id, "list")]).await;
    let cancelled = started.remove(1);
    storage.cancel_batch(&cancelled).await.expect("cancel");

    let ids = |batches: &[BatchRecord]| -> Vec<BatchId> {
        batches.iter().map(|batch| batch.id.clone()).collect()
    };
    // Newest first; batches created in the same instant by id, descending.
    let mut expected = Vec::new();
    for id in [&started[0], &started[1], &nested_id] {
        expected.push(batch(storage, id).await);
    }
    expected.sort_by(|a, b| (b.created_at, &b.id.0).cmp(&(a.created_at, &a.id.0)));
    let page = storage
        .list_batches(BatchQuery::started().limit(2))
        .await
        .expect("list");
    assert_eq!(page, expected[..2]);
    let next = storage
        .list_batches(BatchQuery::started().limit(2).before(page[1].id.clone()))
        .await
        .expect("list");
    assert_eq!(next, expected[2..]);
    let listed = page.iter().chain(&next);
    let nested = listed.clone().find(|b| b.id == nested_id).expect("listed");
    assert_eq!(nested.jobs.get(State::Enqueued), 1, "with its progress");
    assert_eq!(nested.parent.as_ref(), Some(&started[0]));

    let finished = storage
        .list_batches(BatchQuery::finished())
        .await
        .expect("list");
    assert_eq!(ids(&finished), [cancelled]);
    assert_eq!(finished[0].state, BatchState::Deleted);
}

/// The continuations of a job and of a batch are read by their parent,
/// oldest first; a parent with none reads none.
pub async fn continuations_are_read_by_parent(storage: &Storage) {
    let created = new_batch(None);
    let id = created.id.clone();
    let ids = store(
        storage,
        vec![created],
        vec![
            member(&id, "m"),
            after_batch(&id, ContinueOn::Succeeded),
            after_batch(&id, ContinueOn::Deleted),
        ],
    )
    .await;
    let mut after_job = new_job("after", "after");
    after_job.continuation = Some(Continuation {
        parent: Parent::Job(ids[0]),
        on: ContinueOn::Finished,
    });
    let after_job = store(storage, Vec::new(), vec![after_job]).await[0];

    let of_batch = storage
        .continuations(Parent::Batch(id))
        .await
        .expect("read");
    let found: Vec<_> = of_batch.iter().map(|job| job.id).collect();
    assert_eq!(found, [ids[1], ids[2]]);
    assert!(of_batch.iter().all(|job| job.state == State::Awaiting));
    let of_job = storage
        .continuations(Parent::Job(ids[0]))
        .await
        .expect("read");
    assert_eq!(of_job.len(), 1);
    assert_eq!(of_job[0].id, after_job);
    assert_eq!(of_job[0].parent, Some(ids[0]));
    let none = storage
        .continuations(Parent::Job(after_job))
        .await
        .expect("read");
    assert!(none.is_empty());
}
