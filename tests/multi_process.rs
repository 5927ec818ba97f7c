//! Three server processes on one PostgreSQL schema work 10,000 jobs; the
//! maintenance leader is killed with SIGKILL while jobs run. Every job ends
//! Succeeded, and only the jobs the killed server was running ran twice.
//!
//! The test binary runs itself as the server processes: the ignored test
//! `server_process` is the child's entry point.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

mod common;

use common::wait_within;
use jobs::prelude::*;
use jobs::storage::PostgresStorage;
use jobs_runtime::testing::fresh_postgres;
use sqlx::PgPool;

const JOBS: i64 = 10_000;
const SCHEMA_VAR: &str = "JOBS_CHILD_SCHEMA";
const URL_VAR: &str = "JOBS_CHILD_URL";

/// The child's pool and schema, for the side effects.
static SIDE_EFFECTS: OnceLock<(PgPool, String)> = OnceLock::new();

/// Records that it ran (the side effect), then works a little, so that a
/// kill can land between the side effect and the completion.
#[job(retries = 5, backoff = "100ms")]
async fn record_side_effect(ctx: JobContext, n: i64) -> Result<(), sqlx::Error> {
    let (pool, schema) = SIDE_EFFECTS.get().expect("set before the server starts");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.side_effect (job_id, n, pid) VALUES ($1, $2, $3)"
    )))
    .bind(ctx.id().get())
    .bind(n)
    .bind(i32::try_from(std::process::id()).unwrap_or(-1))
    .execute(pool)
    .await?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(())
}

/// The server process. Runs until killed, or until its standard input
/// closes (the parent is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the server process of `three_servers_lose_nothing_when_the_leader_is_killed`"]
async fn server_process() {
    let schema = std::env::var(SCHEMA_VAR).expect("run by the multi-process test");
    let url = std::env::var(URL_VAR).expect("run by the multi-process test");
    let storage = PostgresStorage::connect_with_schema(&url, &schema)
        .await
        .unwrap();
    SIDE_EFFECTS.set((storage.pool().clone(), schema)).unwrap();
    let parent_gone = tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    });
    Server::builder(Storage::new(storage))
        .workers(8)
        .lease(Duration::from_secs(2))
        .rescue_interval(Duration::from_millis(500))
        .leader_ttl(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(500))
        .poll_interval(Duration::from_millis(200))
        .run_until(async {
            let _ = parent_gone.await;
        })
        .await
        .unwrap();
}

fn spawn_server(url: &str, schema: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "server_process", "--ignored", "--nocapture"])
        .env(URL_VAR, url)
        .env(SCHEMA_VAR, schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn a server process")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_lose_nothing_when_the_leader_is_killed() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let schema = pg.storage.schema().to_owned();
    let pool = pg.storage.pool().clone();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {schema}.side_effect (job_id BIGINT NOT NULL, n BIGINT NOT NULL, pid INT NOT NULL)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let storage = Storage::new(pg.storage.clone());
    let client = Client::new(storage.clone());
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(1000) {
        client
            .enqueue_many(chunk.iter().map(|&n| RecordSideEffect { n }))
            .await
            .unwrap();
    }

    let mut children: Vec<Child> = (0..3).map(|_| spawn_server(pg.url(), &schema)).collect();
    let count_effects = || async {
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {schema}.side_effect"
        )))
        .fetch_one(&pool)
        .await
        .unwrap();
        count
    };
    wait_within(
        "a quarter of the jobs to run",
        Duration::from_secs(120),
        || async { count_effects().await >= JOBS / 4 },
    )
    .await;

    // Kill the maintenance leader: its running jobs must be rescued and the
    // maintenance must move to another server.
    let (leader,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT server FROM {schema}.jobs_leader"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    let leader_pid: u32 = leader.split(':').nth(1).unwrap().parse().unwrap();
    let victim = children
        .iter()
        .position(|child| child.id() == leader_pid)
        .expect("the leader is one of the three");
    let mut killed = children.remove(victim);
    killed.kill().unwrap(); // SIGKILL
    killed.wait().unwrap();
    let killed_at = count_effects().await;

    wait_within("every job to succeed", Duration::from_secs(180), || async {
        storage.counts().await.unwrap().get(State::Succeeded) == JOBS as u64
    })
    .await;
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }

    let counts = storage.counts().await.unwrap();
    assert_eq!(counts.get(State::Succeeded), JOBS as u64, "{counts:?}");
    assert_eq!(counts.total(), JOBS as u64, "{counts:?}");

    let rows: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT n, count(*) FROM {schema}.side_effect GROUP BY n"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    let runs: HashMap<i64, i64> = rows.into_iter().collect();
    assert_eq!(runs.len(), JOBS as usize, "every job ran");
    let twice: HashSet<i64> = runs
        .iter()
        .filter(|(_, runs)| **runs > 1)
        .map(|(n, _)| *n)
        .collect();

    // The jobs rescued from the killed server: their history says so.
    let marker = format!("%:{leader_pid}:%");
    let rescued: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT (j.args::jsonb ->> 'n')::bigint
         FROM {schema}.jobs_job_state s JOIN {schema}.jobs_job j ON j.id = s.job_id
         WHERE s.reason LIKE 'rescued%' AND s.reason LIKE $1"
    )))
    .bind(&marker)
    .fetch_all(&pool)
    .await
    .unwrap();
    let rescued: HashSet<i64> = rescued.into_iter().map(|row| row.0).collect();
    assert!(
        !rescued.is_empty(),
        "the kill hit running jobs, which were rescued"
    );
    assert!(
        twice.is_subset(&rescued),
        "only jobs running at the kill may run twice: {:?} ran twice without a rescue",
        twice.difference(&rescued).collect::<Vec<_>>()
    );
    eprintln!(
        "killed leader {leader} after {killed_at} side effects; {} jobs rescued, {} ran twice",
        rescued.len(),
        twice.len()
    );
}
