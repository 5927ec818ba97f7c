//! Plan tests: the hot statements read the indexes they are written for,
//! on files full of finished jobs with statistics (`ANALYZE`).

use super::SqliteStorage;
use super::jobs::{
    CONTINUE, EXTEND_LEASES, FINISH, PICK, PICK_LIMITED, attempts_json, final_states,
};
use jobs_core::{Attempt, JobId};

/// A new migrated file, deleted with its directory.
async fn temp_file() -> (tempfile::TempDir, SqliteStorage) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let storage = SqliteStorage::connect(&url).await.unwrap();
    (dir, storage)
}

/// Fetching among finished jobs.
mod fetch {
    use super::*;

    /// The real fetch statement reads the partial index of enqueued jobs,
    /// whatever the number of finished jobs kept.
    #[tokio::test]
    async fn fetch_reads_the_partial_index_among_many_finished_jobs() {
        let (_dir, storage) = temp_file().await;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO jobs_job (name, queue, args, state, max_attempts, created_at, state_changed_at)
             SELECT 'done', 'default', '{}', 'Succeeded', 1, 0, 0 FROM n",
        )
        .execute(storage.pool())
        .await
        .unwrap();
        sqlx::query("ANALYZE")
            .execute(storage.pool())
            .await
            .unwrap();
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {PICK}")))
                .bind("default")
                .bind(10_i64)
                .fetch_all(storage.pool())
                .await
                .unwrap();
        let plan: Vec<_> = plan.into_iter().map(|row| row.3).collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("INDEX jobs_job_enqueued")),
            "{plan:#?}"
        );
        let limited: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {PICK_LIMITED}"
        )))
        .bind("default")
        .bind(10_i64)
        .bind(1000_i64)
        .fetch_all(storage.pool())
        .await
        .unwrap();
        let limited: Vec<_> = limited.into_iter().map(|row| row.3).collect();
        assert!(
            limited
                .iter()
                .any(|step| step.contains("INDEX jobs_job_limited ")),
            "{limited:#?}"
        );
        assert!(
            limited
                .iter()
                .any(|step| step.contains("INDEX jobs_job_processing")),
            "{limited:#?}"
        );
        // The running jobs are read once, through their partial index (at
        // most the workers and prefetch of all servers), never per job.
        assert!(
            !limited
                .iter()
                .any(|step| step.starts_with("SCAN jobs_job")
                    && !step.contains("jobs_job_processing")),
            "{limited:#?}"
        );
        assert!(
            !limited.iter().any(|step| step.contains("CORRELATED")),
            "{limited:#?}"
        );

        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN jobs_job")),
            "{plan:#?}"
        );
    }
}

/// The statements that change held attempts, EXPLAINed as the storage
/// sends them, on an ANALYZEd file of 20,000 `Processing` and 500,000
/// `Succeeded` jobs: each must find its rows by primary key.
mod held_attempts {
    use super::*;

    #[tokio::test]
    async fn held_attempts_are_found_by_primary_key_on_a_full_analyzed_table() {
        let (_dir, storage) = temp_file().await;
        sqlx::raw_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500000)
             INSERT INTO jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, server)
             SELECT 'done', 'default', '{}', 'Succeeded', 1, 1, 0, 0, 'old' FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, server, lease_expires_at)
             SELECT 'held', 'default', '{}', 'Processing', 1, 5, 0, 0, 'me', 9000000000000 FROM n;
             ANALYZE;",
        )
        .execute(storage.pool())
        .await
        .unwrap();
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs_job WHERE state = 'Processing' ORDER BY id LIMIT 1000",
        )
        .fetch_all(storage.pool())
        .await
        .unwrap();
        let held: Vec<Attempt> = ids
            .iter()
            .map(|&id| Attempt {
                id: JobId(id),
                attempt: 1,
            })
            .collect();
        let outcomes: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| {
                serde_json::json!([id, 1, "Succeeded", null, null, null, 0, false, "Processing"])
            })
            .collect();
        for (what, statement, rows) in [
            ("finish", FINISH, serde_json::to_string(&outcomes).unwrap()),
            ("extend_leases", EXTEND_LEASES, attempts_json(&held)),
        ] {
            let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN {statement}"
            )))
            .bind(0_i64)
            .bind(rows)
            .bind(1000_i64)
            .fetch_all(storage.pool())
            .await
            .unwrap();
            let plan: Vec<_> = plan.into_iter().map(|row| row.3).collect();
            assert!(
                plan.iter()
                    .any(|step| step.contains("SEARCH jobs_job USING INTEGER PRIMARY KEY")),
                "{what}: {plan:#?}"
            );
            assert!(
                !plan.iter().any(|step| step.contains("jobs_job_processing")
                    || step.starts_with("SCAN jobs_job")),
                "{what}: {plan:#?}"
            );
        }
    }
}

/// The statement that decides the continuations of finished jobs, run
/// after every finish, EXPLAINed on an ANALYZEd file of 500,000 finished
/// jobs, 20,000 of them continuations: it must find the continuations
/// through the parent index, from the finished jobs' ids, never by a scan.
mod continuations {
    use super::*;

    #[tokio::test]
    async fn continuations_are_found_by_their_parent() {
        let (_dir, storage) = temp_file().await;
        sqlx::raw_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500000)
             INSERT INTO jobs_job (name, queue, args, state, attempt, max_attempts, created_at, state_changed_at, parent_id, continue_on)
             SELECT 'done', 'default', '{}', 'Succeeded', 1, 1, 0, 0,
                    CASE WHEN i % 25 = 0 THEN i - 1 END, CASE WHEN i % 25 = 0 THEN 'Succeeded' END
             FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
             INSERT INTO jobs_job (name, queue, args, state, max_attempts, created_at, state_changed_at, parent_id, continue_on)
             SELECT 'waits', 'default', '{}', 'Awaiting', 1, 0, 0, i, 'Succeeded' FROM n;
             ANALYZE;",
        )
        .execute(storage.pool())
        .await
        .unwrap();
        let ids: Vec<i64> = (1..=1000).collect();
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {CONTINUE}"
        )))
        .bind(0_i64)
        .bind(serde_json::to_string(&ids).unwrap())
        .bind(final_states())
        .bind("met")
        .bind("not met")
        .fetch_all(storage.pool())
        .await
        .unwrap();
        let plan: Vec<_> = plan.into_iter().map(|row| row.3).collect();
        assert!(
            plan.iter().any(|step| step.contains("jobs_job_parent")),
            "{plan:#?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN jobs_job")
                || step.starts_with("SCAN c")
                || step.starts_with("SCAN p")),
            "{plan:#?}"
        );
    }
}
