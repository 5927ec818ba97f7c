//! Plan tests: the hot statements read the indexes they are written for,
//! on tables full of finished jobs with statistics (`ANALYZE`).

use super::job_log::WRITE_LOG;
use super::jobs::{EXTEND_LEASES, fetch_sql, finish_sql};
use super::monitoring::list_sql;
use crate::testing::fresh_postgres;
use sqlx::Row;

/// The real fetch statement reads the partial index of enqueued jobs,
/// whatever the number of finished jobs kept.
#[tokio::test]
async fn fetch_reads_the_partial_index_among_many_finished_jobs() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let storage = &pg.storage;
    sqlx::query(storage.sql(
        "INSERT INTO {s}.jobs_job (name, queue, args, state, max_attempts, created_at, state_changed_at)
         SELECT 'done', 'default', '{}', 'Succeeded', 1, now(), now() FROM generate_series(1, 20000)",
    ))
    .execute(storage.pool())
    .await
    .unwrap();
    sqlx::query(storage.sql("ANALYZE {s}.jobs_job"))
        .execute(storage.pool())
        .await
        .unwrap();
    let plan: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "EXPLAIN {}",
        storage.sql(&fetch_sql()).0
    )))
    .bind(vec!["default".to_owned()])
    .bind(10_i64)
    .bind("server")
    .bind(1000.0_f64)
    .fetch_all(storage.pool())
    .await
    .unwrap();
    let plan: Vec<_> = plan.into_iter().map(|row| row.0).collect();
    assert!(
        plan.iter().any(|line| line.contains("jobs_job_enqueued")),
        "{plan:#?}"
    );
    assert!(
        !plan
            .iter()
            .any(|line| line.contains("Seq Scan on jobs_job ")),
        "{plan:#?}"
    );
}

// The hot statements EXPLAINed as the storage sends them, both with the
// values bound (a custom plan) and as the generic plan a prepared
// statement switches to after five runs, on tables whose statistics
// could mislead the planner.

async fn explain(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    arguments: &[&str],
) -> Vec<String> {
    // `PREPARE` with the statement's own types, then `EXPLAIN EXECUTE`
    // with literal arguments: the plan the server would run.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "held_jobs_{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PREPARE {name} AS {statement}"
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "EXPLAIN EXECUTE {name}({})",
        arguments.join(", ")
    )))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.iter().map(|row| row.get::<String, _>(0)).collect()
}

async fn set_plan_cache_mode(conn: &mut sqlx::PgConnection, mode: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// The final states, as the finish binds them for its continuations.
const FINALS: &str = "'{Succeeded,Failed,Deleted}'";

fn assert_primary_key(what: &str, plan: &[String]) {
    let text = plan.join("\n");
    assert!(text.contains("jobs_job_pkey"), "{what}:\n{text}");
    assert!(!text.contains("jobs_job_processing"), "{what}:\n{text}");
    assert!(!text.contains("Seq Scan on jobs_job "), "{what}:\n{text}");
}

/// The finish finds the continuations of the jobs it moved through the
/// index of continuations by parent (empty on the hot path).
fn assert_continuations_by_parent(what: &str, plan: &[String]) {
    let text = plan.join("\n");
    assert!(text.contains("jobs_job_parent"), "{what}:\n{text}");
}

/// On an ANALYZEd table of 20,000 `Processing` and 500,000 `Succeeded`
/// jobs, the finish (succeeded and requeued outcomes) and lease-renewal
/// statements, and the write of job logs and progress, find their rows
/// through the primary key, and the finish looks for continuations
/// without a sequential scan.
#[tokio::test]
async fn held_attempts_are_found_by_primary_key_on_a_full_analyzed_table() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let storage = &pg.storage;
    sqlx::raw_sql(storage.sql(
        "INSERT INTO {s}.jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, server)
         SELECT 'done', 'default', '{}', 'Succeeded', 1, 1, now(), now(), 'old' FROM generate_series(1, 500000);
         INSERT INTO {s}.jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, server, lease_expires_at)
         SELECT 'held', 'default', '{}', 'Processing', 1, 5, now(), now(), 'me', now() + interval '1 hour'
         FROM generate_series(1, 20000);
         ANALYZE {s}.jobs_job;",
    ))
    .execute(storage.pool())
    .await
    .unwrap();
    let ids: Vec<i64> = sqlx::query_scalar(
        storage
            .sql("SELECT id FROM {s}.jobs_job WHERE state = 'Processing' ORDER BY id LIMIT 1000"),
    )
    .fetch_all(storage.pool())
    .await
    .unwrap();
    let n = ids.len();
    let list = |values: String| format!("'{{{values}}}'");
    let ids = list(ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
    let ones = list(vec!["1"; n].join(","));
    let zeros = list(vec!["0"; n].join(","));
    let nulls = list(vec!["NULL"; n].join(","));
    let falses = list(vec!["false"; n].join(","));
    let trues = list(vec!["true"; n].join(","));
    let texts = |text: &str| list(vec![text; n].join(","));
    let processing = texts("Processing");
    let succeeded = texts("Succeeded");
    let enqueued = texts("Enqueued");
    let reasons = texts("\"server stopping\"");
    let finish = storage.sql(&finish_sql("")).0;
    let extend = storage.sql(EXTEND_LEASES).0;
    let write_log = storage.sql(WRITE_LOG).0;
    let mut conn = storage.pool().acquire().await.unwrap();
    for mode in ["auto", "force_generic_plan"] {
        set_plan_cache_mode(&mut conn, mode).await;
        let completed = [
            ids.as_str(),
            &ones,
            &succeeded,
            &nulls,
            &nulls,
            &nulls,
            &zeros,
            &falses,
            &processing,
            "'chan'",
            &nulls,
            FINALS,
            "'met'",
            "'not met'",
            "'Awaiting'",
        ];
        let plan = explain(&mut conn, &finish, &completed).await;
        assert_primary_key(&format!("finish, succeeded ({mode})"), &plan);
        assert_continuations_by_parent(&format!("finish, succeeded ({mode})"), &plan);
        let requeued = [
            ids.as_str(),
            &ones,
            &enqueued,
            &reasons,
            &nulls,
            &nulls,
            &ones,
            &trues,
            &processing,
            "'chan'",
            &nulls,
            FINALS,
            "'met'",
            "'not met'",
            "'Awaiting'",
        ];
        let plan = explain(&mut conn, &finish, &requeued).await;
        assert_primary_key(&format!("finish, requeued ({mode})"), &plan);
        assert_continuations_by_parent(&format!("finish, requeued ({mode})"), &plan);
        let renewed = [ids.as_str(), &ones, &processing, "30000"];
        assert_primary_key(
            &format!("extend_leases ({mode})"),
            &explain(&mut conn, &extend, &renewed).await,
        );
        let halves = list(vec!["0.5"; n].join(","));
        let logged = [
            ids.as_str(),
            &ones,
            &zeros,
            &texts("line"),
            ids.as_str(),
            &ones,
            &halves,
        ];
        assert_primary_key(
            &format!("write_log ({mode})"),
            &explain(&mut conn, &write_log, &logged).await,
        );
    }
}

/// Statistics taken while a backlog was enqueued, then most of it done:
/// the fetch still reads the partial index, not the primary key past
/// every finished job.
#[tokio::test]
async fn fetch_reads_the_partial_index_with_statistics_of_a_backlog() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let storage = &pg.storage;
    sqlx::raw_sql(storage.sql(
        "INSERT INTO {s}.jobs_job (name, queue, args, state, max_attempts, created_at, state_changed_at)
         SELECT 'backlog', 'default', '{}', 'Enqueued', 1, now(), now() FROM generate_series(1, 100000);
         ANALYZE {s}.jobs_job;
         UPDATE {s}.jobs_job SET state = 'Succeeded' WHERE id <= (SELECT min(id) + 60000 FROM {s}.jobs_job);",
    ))
    .execute(storage.pool())
    .await
    .unwrap();
    let fetch = storage.sql(&fetch_sql()).0;
    let mut conn = storage.pool().acquire().await.unwrap();
    for mode in ["auto", "force_generic_plan"] {
        set_plan_cache_mode(&mut conn, mode).await;
        let arguments = ["ARRAY['default']", "100", "'server'", "30000"];
        let plan = explain(&mut conn, &fetch, &arguments).await;
        // The scan of the jobs (the paused queues and names are scanned
        // too, by their primary key).
        let picked = plan
            .iter()
            .find(|line| {
                (line.contains("Index Scan") || line.contains("Seq Scan"))
                    && line.contains(" on jobs_job ")
            })
            .cloned()
            .unwrap_or_default();
        assert!(picked.contains("jobs_job_enqueued"), "{mode}: {plan:#?}");
    }
}

/// A page of `Failed` jobs reads the index of rarely listed states, not
/// the primary key back through every retained `Succeeded` job, once the
/// table's statistics know how few failed jobs there are.
#[tokio::test]
async fn a_page_of_failed_jobs_reads_the_index_of_listed_states() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let storage = &pg.storage;
    sqlx::raw_sql(storage.sql(
        "INSERT INTO {s}.jobs_job (name, queue, args, state, max_attempts, created_at, state_changed_at)
         SELECT 'done', 'default', '{}', CASE WHEN i % 2000 = 0 THEN 'Failed' ELSE 'Succeeded' END,
                1, now(), now()
         FROM generate_series(1, 100000) AS i;
         ANALYZE {s}.jobs_job;",
    ))
    .execute(storage.pool())
    .await
    .unwrap();
    let mut conn = storage.pool().acquire().await.unwrap();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        set_plan_cache_mode(&mut conn, mode).await;
        let plan = explain(
            &mut conn,
            &storage
                .sql(&list_sql(Some(jobs_core::State::Failed), false))
                .0,
            &["9223372036854775807", "50"],
        )
        .await;
        let text = plan.join("\n");
        assert!(text.contains("jobs_job_listed"), "{mode}:\n{text}");
    }
}
