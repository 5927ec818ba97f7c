//! Continuations, batches and transactional enqueue end to end, on every
//! storage: real servers run typed chains (each link receives its parent's
//! result), a batch's continuation receives every member's result, and a
//! job enqueued in the application's transaction exists only once it
//! commits.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use common::*;
use jobs::prelude::*;
use jobs::{BatchState, ContinueOn};
use serde::{Deserialize, Serialize};

/// What each job saw, by key, across the tests of this binary.
static SEEN: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Default::default);

fn saw(key: &str, what: String) {
    SEEN.lock().unwrap().insert(key.to_owned(), what);
}

fn seen(key: &str) -> Option<String> {
    SEEN.lock().unwrap().get(key).cloned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Page {
    url: String,
    words: usize,
}

/// The first link: returns a page.
#[job]
async fn fetch_page(url: String, text: String) -> Result<Page, String> {
    Ok(Page {
        words: text.split_whitespace().count(),
        url,
    })
}

/// The second link: gets the page, returns a count.
#[job]
async fn count_words(#[parent] page: Page, key: String) -> Result<usize, String> {
    saw(&key, format!("{} has {} words", page.url, page.words));
    Ok(page.words * 10)
}

/// The third link: runs whatever its parent's outcome, so takes an `Option`.
#[job]
async fn store_count(key: String, #[parent] count: Option<usize>) {
    saw(&key, format!("{count:?}"));
}

/// Fails for good.
#[job(retries = 0)]
async fn broken_page(url: String) -> Result<Page, String> {
    Err(format!("{url} is unreachable"))
}

/// A batch member: its square.
#[job]
async fn square(n: u64) -> Result<u64, String> {
    Ok(n * n)
}

/// The batch continuation: every member's result, in member order.
#[job]
async fn sum_squares(key: String, #[parent] squares: Vec<u64>) {
    saw(&key, format!("{squares:?}"));
}

/// Records that it ran.
#[job]
async fn record(key: String) {
    saw(&key, "ran".to_owned());
}

/// A chain of three typed links: each receives its parent's result; the
/// last runs on any outcome and gets `Some` of the count. A chain whose
/// first link fails deletes the link awaiting success and runs the one
/// awaiting any outcome with `None`.
async fn a_typed_chain_passes_results(fx: &Fixture) {
    let client = Client::new(fx.storage.clone());
    let (counted, stored) = (fx.key("counted"), fx.key("stored"));
    let page = fetch_page::enqueue(&client, "a".into(), "one two three".into())
        .await
        .unwrap();
    let count = count_words::continue_after(&client, page, counted.clone())
        .await
        .unwrap();
    let any = EnqueueOptions::new().continue_on(ContinueOn::Finished);
    let last = store_count::continue_after_with(&client, count, any.clone(), stored.clone())
        .await
        .unwrap();

    let (broken_stored, never) = (fx.key("broken-stored"), fx.key("never"));
    let broken = broken_page::enqueue(&client, "b".into()).await.unwrap();
    let skipped = count_words::continue_after(&client, broken, never.clone())
        .await
        .unwrap();
    let after_skip = store_count::continue_after_with(&client, skipped, any, broken_stored.clone())
        .await
        .unwrap();
    assert_eq!(job(&fx.storage, last).await.state, State::Awaiting);

    let server = fast_server(&fx.storage).start().unwrap();
    wait_for_state(&fx.storage, last, State::Succeeded).await;
    wait_for_state(&fx.storage, after_skip, State::Succeeded).await;
    server.shutdown().await;

    assert_eq!(seen(&counted).as_deref(), Some("a has 3 words"));
    assert_eq!(seen(&stored).as_deref(), Some("Some(30)"));
    assert_eq!(fx.storage.job_result(count).await.unwrap(), Some(30));
    assert_eq!(
        fx.storage.job_result(page).await.unwrap(),
        Some(Page {
            url: "a".into(),
            words: 3
        })
    );
    assert_eq!(job(&fx.storage, skipped).await.state, State::Deleted);
    assert_eq!(seen(&never), None);
    assert_eq!(seen(&broken_stored).as_deref(), Some("None"));
}

/// Fan-out, fan-in: a batch of twenty members and a continuation that gets
/// their twenty results in member order once all succeeded; the batch's
/// progress reads all of them succeeded.
async fn a_batch_continuation_gets_every_result(fx: &Fixture) {
    let client = Client::new(fx.storage.clone());
    let key = fx.key("sum");
    let mut batch = Batch::new().description("squares");
    for n in 1..=20 {
        square::add_to_batch(&mut batch, n).unwrap();
    }
    batch.then(SumSquares { key: key.clone() }).unwrap();
    let id = client.enqueue_batch(batch).await.unwrap();
    assert_eq!(fx.storage.batch(&id).await.unwrap().unwrap().pending(), 20);

    let server = fast_server(&fx.storage).start().unwrap();
    wait_until("the batch continuation to run", || async {
        seen(&key).is_some()
    })
    .await;
    server.shutdown().await;

    let expected: Vec<u64> = (1..=20).map(|n| n * n).collect();
    assert_eq!(seen(&key), Some(format!("{expected:?}")));
    let finished = fx.storage.batch(&id).await.unwrap().unwrap();
    assert_eq!(finished.state, BatchState::Succeeded);
    assert_eq!(finished.jobs.get(State::Succeeded), 20);
    assert_eq!(finished.description.as_deref(), Some("squares"));
}

/// A job enqueued in the application's transaction, beside the
/// application's own row: after a rollback neither exists; after a commit
/// both do and the job runs.
async fn enqueue_in_tx_follows_the_transaction(fx: &Fixture) {
    let (rolled_back, committed) = (fx.key("rolled-back"), fx.key("committed"));
    let (gone, kept) = if let Some(pg) = fx.postgres_storage() {
        let pool = pg.pool();
        let schema = pg.schema();
        let table = format!("{schema}.signup");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {table} (name TEXT)"
        )))
        .execute(pool)
        .await
        .unwrap();
        let mut ids = Vec::new();
        for (key, commit) in [(&rolled_back, false), (&committed, true)] {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} VALUES ($1)"
            )))
            .bind(key)
            .execute(&mut *tx)
            .await
            .unwrap();
            let mut target = jobs::storage::InSchema::new(&mut tx, schema);
            ids.push(
                record::enqueue_in_tx(&mut target, key.clone())
                    .await
                    .unwrap(),
            );
            if commit {
                tx.commit().await.unwrap()
            } else {
                tx.rollback().await.unwrap()
            }
        }
        let rows: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT name FROM {table}")))
                .fetch_all(pool)
                .await
                .unwrap();
        assert_eq!(rows, std::slice::from_ref(&committed));
        (ids[0], ids[1])
    } else {
        let url = fx.sqlite_url().unwrap();
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE signup (name TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for (key, commit) in [(&rolled_back, false), (&committed, true)] {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            sqlx::query("INSERT INTO signup VALUES (?1)")
                .bind(key)
                .execute(&mut *tx)
                .await
                .unwrap();
            ids.push(record::enqueue_in_tx(&mut tx, key.clone()).await.unwrap());
            if commit {
                tx.commit().await.unwrap()
            } else {
                tx.rollback().await.unwrap()
            }
        }
        let rows: Vec<String> = sqlx::query_scalar("SELECT name FROM signup")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(rows, std::slice::from_ref(&committed));
        (ids[0], ids[1])
    };
    // SQLite may give the committed job the id the rolled-back one had:
    // the rolled-back job is missing if the storage holds one job, the
    // committed one.
    let stored = fx.storage.list_jobs(jobs::JobQuery::new()).await.unwrap();
    assert_eq!(stored.len(), 1, "only the committed job exists: {stored:?}");
    assert_eq!(stored[0].id, kept);
    assert!(stored[0].args.contains(&committed), "{stored:?}");
    let _ = gone;
    let server = fast_server(&fx.storage).start().unwrap();
    wait_for_state(&fx.storage, kept, State::Succeeded).await;
    server.shutdown().await;
    assert_eq!(seen(&committed).as_deref(), Some("ran"));
    assert_eq!(seen(&rolled_back), None);
}

on_every_storage!(
    a_typed_chain_passes_results,
    a_batch_continuation_gets_every_result,
    enqueue_in_tx_follows_the_transaction,
);

/// On PostgreSQL a running server does not see a job enqueued in a
/// transaction that is still open: a job enqueued after it, outside the
/// transaction, runs first; the transaction's job runs once it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_sees_a_transactions_job_only_after_commit() {
    let Some(fx) = Fixture::postgres().await else {
        return;
    };
    let pg = fx.postgres_storage().unwrap();
    let client = Client::new(fx.storage.clone());
    let server = fast_server(&fx.storage).start().unwrap();
    let (inside, marker) = ("tx-inside".to_owned(), "tx-marker".to_owned());

    let mut tx = pg.pool().begin().await.unwrap();
    let mut target = jobs::storage::InSchema::new(&mut tx, pg.schema());
    let id = record::enqueue_in_tx(&mut target, inside.clone())
        .await
        .unwrap();
    let after = record::enqueue(&client, marker.clone()).await.unwrap();
    wait_for_state(&fx.storage, after, State::Succeeded).await;
    assert_eq!(seen(&inside), None, "not run before the commit");
    assert!(
        fx.storage.job(id).await.unwrap().is_none(),
        "not visible before the commit"
    );

    tx.commit().await.unwrap();
    wait_for_state(&fx.storage, id, State::Succeeded).await;
    server.shutdown().await;
    assert_eq!(seen(&inside).as_deref(), Some("ran"));
}

/// On PostgreSQL, a job joining a batch inside the application's open
/// transaction holds the batch's row: the leader's check skips that batch
/// rather than waiting for the transaction (it returns at once, the batch
/// still `Started`), and once the transaction commits the joined job holds
/// the batch open until it finishes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_joining_a_batch_holds_back_no_check() {
    use jobs::storage::{FetchParams, FinishParams, JobOutcome, Outcome, ResolveAwaitingParams};

    let Some(fx) = Fixture::postgres().await else {
        return;
    };
    let pg = fx.postgres_storage().unwrap();
    let backend = fx.backend().await;
    let client = Client::new(fx.storage.clone());
    let resolve = || async {
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            backend.resolve_awaiting(ResolveAwaitingParams { limit: 100 }),
        )
        .await
        .expect("the check does not wait for the open transaction")
        .expect("resolve_awaiting")
    };
    // A batch whose only member finished, not yet checked (no server runs).
    let mut batch = Batch::new();
    record::add_to_batch(&mut batch, "batch-first".into()).unwrap();
    let id = client.enqueue_batch(batch).await.unwrap();
    let taken = backend
        .fetch(FetchParams {
            queues: vec!["default".into()],
            limit: 1,
            server: "test".into(),
            lease: std::time::Duration::from_secs(60),
        })
        .await
        .unwrap();
    let outcome = JobOutcome {
        job: taken[0].held(),
        outcome: Outcome::Succeeded { result: None },
    };
    backend
        .finish(FinishParams {
            jobs: vec![outcome],
        })
        .await
        .unwrap();

    let mut tx = pg.pool().begin().await.unwrap();
    let mut target = jobs::storage::InSchema::new(&mut tx, pg.schema());
    let joined = record::enqueue_in_tx_with(
        &mut target,
        EnqueueOptions::new().batch(id.clone()),
        "batch-joined".into(),
    )
    .await
    .unwrap();
    resolve().await;
    let open = fx.storage.batch(&id).await.unwrap().unwrap();
    assert_eq!(open.state, BatchState::Started, "skipped, not finished");
    tx.commit().await.unwrap();
    resolve().await;
    assert_eq!(
        fx.storage.batch(&id).await.unwrap().unwrap().state,
        BatchState::Started,
        "the joined job holds it open"
    );

    let server = fast_server(&fx.storage).start().unwrap();
    wait_for_state(&fx.storage, joined, State::Succeeded).await;
    wait_until("the batch to finish", || async {
        fx.storage.batch(&id).await.unwrap().unwrap().state == BatchState::Succeeded
    })
    .await;
    server.shutdown().await;
}

/// On PostgreSQL, a continuation enqueued inside the application's open
/// transaction holds back nothing of its running parent: the parent's
/// lease renewal and its finish go through at once. The finish cannot see
/// the uncommitted continuation; once committed, the leader's check
/// enqueues it with the parent's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_adding_a_continuation_holds_back_no_parent() {
    use jobs::storage::{
        ExtendLeasesParams, FetchParams, FinishParams, JobOutcome, Outcome, ResolveAwaitingParams,
    };
    use std::time::Duration;

    let Some(fx) = Fixture::postgres().await else {
        return;
    };
    let pg = fx.postgres_storage().unwrap();
    let backend = fx.backend().await;
    let client = Client::new(fx.storage.clone());
    let within = |what: &'static str| {
        move |result: Result<jobs::Result<Vec<jobs::JobId>>, tokio::time::error::Elapsed>| {
            result.unwrap_or_else(|_| panic!("{what} waited for the open transaction"))
        }
    };
    let parent = fetch_page::enqueue(&client, "p".into(), "one two".into())
        .await
        .unwrap();
    let taken = backend
        .fetch(FetchParams {
            queues: vec!["default".into()],
            limit: 1,
            server: "test".into(),
            lease: Duration::from_secs(60),
        })
        .await
        .unwrap();
    assert_eq!(taken[0].id, parent);

    let mut tx = pg.pool().begin().await.unwrap();
    let mut target = jobs::storage::InSchema::new(&mut tx, pg.schema());
    let options = EnqueueOptions::new().after(parent);
    let child = count_words::enqueue_in_tx_with(&mut target, options, "in-tx-child".into())
        .await
        .unwrap();

    let renewed = tokio::time::timeout(
        Duration::from_secs(5),
        backend.extend_leases(ExtendLeasesParams {
            jobs: vec![taken[0].held()],
            lease: Duration::from_secs(60),
        }),
    )
    .await;
    assert_eq!(within("the lease renewal")(renewed).unwrap(), [parent.id()]);
    let page = r#"{"url":"p","words":2}"#.to_owned();
    let finished = tokio::time::timeout(
        Duration::from_secs(5),
        backend.finish(FinishParams {
            jobs: vec![JobOutcome {
                job: taken[0].held(),
                outcome: Outcome::Succeeded { result: Some(page) },
            }],
        }),
    )
    .await;
    assert_eq!(within("the finish")(finished).unwrap(), [parent.id()]);
    tx.commit().await.unwrap();

    assert_eq!(job(&fx.storage, child).await.state, State::Awaiting);
    backend
        .resolve_awaiting(ResolveAwaitingParams { limit: 100 })
        .await
        .unwrap();
    assert_eq!(job(&fx.storage, child).await.state, State::Enqueued);
    let server = fast_server(&fx.storage).start().unwrap();
    wait_for_state(&fx.storage, child, State::Succeeded).await;
    server.shutdown().await;
    assert_eq!(seen("in-tx-child").as_deref(), Some("p has 2 words"));
}
