//! Server time of every dashboard page on PostgreSQL with many jobs
//! stored (by default 1,000,000), against the goal "every page renders in
//! under 100 ms of server time".
//!
//! ```text
//! cargo run --release --example dashboard_bench
//! cargo run --release --example dashboard_bench -- --jobs 1000000 --rounds 20 --keep
//! cargo run --release --example dashboard_bench -- --schema dashbench_1a2b
//! cargo run --release --example dashboard_bench -- --database postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! Fills a new schema `dashbench_<pid in hex>` (created by the storage's
//! own migrations) with SQL, 100,000 jobs a statement: about 94%
//! `Succeeded`, 2% `Failed` (with a reason of some 300 bytes, a history
//! of three attempts, log lines and parameters), 1% each `Scheduled` (run
//! in the future), `Enqueued` and `Deleted`, 0.5% each `Awaiting` (the
//! continuation of a `Processing` job) and `Processing` (leased by a
//! server), over five queues of uneven size, created over the last seven
//! days, newest with the highest ids, with the hourly statistics of the
//! succeeded and failed ones. Then through the public API: a few
//! recurring jobs (one triggered), a registered server, a paused queue.
//! Then `VACUUM (ANALYZE)` on every table of the schema: statistics as
//! `ANALYZE` gives them, and the visibility map a table autovacuum has
//! visited has, so that no autovacuum of the new rows runs during the
//! timing.
//!
//! Every page (`GET`, through `jobs::dashboard::router` on a storage of
//! that schema, from a loopback client, as `tests/dashboard.rs` sends
//! them) gets one warm-up request, then `--rounds` timed ones, each from
//! sending the request to the whole body read. Prints the median, p95 and
//! most time of each page and its body's size, then `SLOW: ...` for each
//! page whose median is over 100 ms. A page that does not answer `200 OK`
//! is an error (its body's start is printed); slow pages are not: the
//! exit status is 0, this is a measurement.
//!
//! The schema is dropped at the end, unless `--keep` (its name is
//! printed) or it was given with `--schema NAME`, which reuses a kept
//! schema and skips the fill.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use clap::Parser;
use jobs::prelude::*;
use jobs::storage::{PostgresStorage, ServerInfo, ServerStorage};
use sqlx::PgPool;
use tower::ServiceExt as _;

/// A page over this many milliseconds (median) misses the goal.
const GOAL_MS: f64 = 100.0;
/// Jobs inserted by one statement.
const CHUNK: i64 = 100_000;

/// Sends a nightly report (a recurring job of the fill).
#[job(name = "reports.nightly", queue = "reports")]
async fn nightly_report(region: String) {
    let _ = region;
}

/// Cleans up old uploads (a recurring job of the fill).
#[job(name = "default.cleanup")]
async fn cleanup(older_than_days: u32) {
    let _ = older_than_days;
}

#[derive(Parser)]
#[command(about = "Server time of every dashboard page on PostgreSQL with many jobs")]
struct Args {
    /// The PostgreSQL database.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    database: String,
    /// Jobs stored before the timing.
    #[arg(long, default_value_t = 1_000_000)]
    jobs: i64,
    /// Timed requests per page (after one warm-up request).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Keeps the schema (prints its name) for `--schema NAME`.
    #[arg(long)]
    keep: bool,
    /// Times the pages on this schema, filled by an earlier `--keep` run:
    /// no fill, and the schema is kept.
    #[arg(long)]
    schema: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let (schema, created) = match &args.schema {
        Some(schema) => (schema.clone(), false),
        None => (format!("dashbench_{:x}", std::process::id()), true),
    };
    let postgres = PostgresStorage::connect_with_schema(&args.database, &schema).await?;
    let pool = postgres.pool().clone();
    let storage = Storage::new(postgres);
    println!("database: {}  schema: {schema}", args.database);
    let result = async {
        if created {
            fill(&pool, &storage, &schema, args.jobs).await?;
        }
        time_pages(&pool, &storage, &schema, args.rounds).await
    }
    .await;
    if created && !args.keep {
        let drop = format!("DROP SCHEMA {schema} CASCADE");
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&pool)
            .await?;
        println!("dropped schema {schema}");
    } else {
        println!("kept schema {schema} (reuse: --schema {schema})");
    }
    result
}

/// Stores `jobs` jobs of every state, their history, recurring jobs, a
/// server and a paused queue, then vacuums and analyzes every table.
async fn fill(pool: &PgPool, storage: &Storage, schema: &str, jobs: i64) -> anyhow::Result<()> {
    let started = Instant::now();
    // The state is chosen by `g % 1000` (so every 1000 jobs hold the
    // same mix, all through the seven days), the queue by `(g * 37) %
    // 100` (uneven: mail 40%, webhooks 25%, default 20%, reports 10%,
    // billing 5%). In a new schema a job's id is its `g`.
    let insert = format!(
        r#"INSERT INTO {schema}.jobs_job
             (name, queue, args, state, attempt, max_attempts, priority, created_at,
              state_changed_at, run_at, lease_expires_at, server, reason, result)
         SELECT queue || '.' || (ARRAY['send', 'render', 'charge', 'deliver', 'run'])[g % 5 + 1],
                queue,
                format('{{"user_id":%s,"account":"acct-%s","template":"welcome-%s"}}', g, g % 9973, g % 17),
                state,
                CASE state WHEN 'Failed' THEN 3 WHEN 'Succeeded' THEN 1 + (g % 50 = 0)::int
                           WHEN 'Processing' THEN 1 WHEN 'Deleted' THEN 1 ELSE 0 END,
                3,
                0,
                created,
                CASE WHEN state IN ('Scheduled', 'Enqueued', 'Awaiting') THEN created
                     ELSE created + (g % 30 + 1) * interval '1 second' END,
                CASE WHEN state = 'Scheduled' THEN now() + (g % 86400 + 60) * interval '1 second' END,
                CASE WHEN state = 'Processing' THEN now() + interval '1 hour' END,
                CASE WHEN state IN ('Processing', 'Succeeded', 'Failed')
                     THEN 'dashbench-host:4242:' || (g % 4) END,
                CASE state
                    WHEN 'Failed' THEN format(
                        'jobs::JobError: the payment provider answered 502 Bad Gateway for charge %s '
                        'of account acct-%s after 3 attempts; upstream said: <html><body>upstream '
                        'connect error or disconnect/reset before headers. reset reason: connection '
                        'termination</body></html>; retry policy exhausted (max_attempts = 3), '
                        'last attempt on dashbench-host:4242:%s',
                        g, g % 9973, g % 4)
                    WHEN 'Deleted' THEN 'Deleted from the dashboard'
                END,
                CASE WHEN state = 'Succeeded' THEN '{{"ok":true}}' END
         FROM (
             SELECT g,
                    now() - interval '7 days' * (1 - g::float8 / $3::float8) AS created,
                    CASE WHEN (g * 37) % 100 < 40 THEN 'mail'
                         WHEN (g * 37) % 100 < 65 THEN 'webhooks'
                         WHEN (g * 37) % 100 < 85 THEN 'default'
                         WHEN (g * 37) % 100 < 95 THEN 'reports'
                         ELSE 'billing' END AS queue,
                    CASE WHEN g % 1000 < 20 THEN 'Failed'
                         WHEN g % 1000 < 30 THEN 'Scheduled'
                         WHEN g % 1000 < 40 THEN 'Enqueued'
                         WHEN g % 1000 < 50 THEN 'Deleted'
                         WHEN g % 1000 < 55 THEN 'Awaiting'
                         WHEN g % 1000 < 60 THEN 'Processing'
                         ELSE 'Succeeded' END AS state
             FROM generate_series($1::bigint, $2::bigint) AS g
         ) AS j
         ORDER BY g"#
    );
    let mut first = 1;
    while first <= jobs {
        let last = (first + CHUNK - 1).min(jobs);
        sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
            .bind(first)
            .bind(last)
            .bind(jobs.max(1))
            .execute(pool)
            .await?;
        println!(
            "  inserted {last:>9} of {jobs} jobs  ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
        first = last + 1;
    }

    // Each Awaiting job continues the Processing job five ids above it.
    let awaiting = format!(
        "UPDATE {schema}.jobs_job a SET parent_id = p.id, continue_on = 'Succeeded'
         FROM {schema}.jobs_job p
         WHERE a.state = 'Awaiting' AND p.id = a.id + 5 AND p.state = 'Processing'"
    );
    let linked = sqlx::query(sqlx::AssertSqlSafe(awaiting))
        .execute(pool)
        .await?;
    println!(
        "  linked {} awaiting jobs to their parent",
        linked.rows_affected()
    );

    // A failed job's history: three attempts, two retries.
    let history = format!(
        r#"INSERT INTO {schema}.jobs_job_state (job_id, state, at, reason, data)
         SELECT j.id, s.state,
                j.created_at + (j.state_changed_at - j.created_at) * (s.step - 1) / 8,
                CASE s.state
                    WHEN 'Scheduled' THEN format('Retry %s of 2 after: %s', s.step / 3, left(j.reason, 160))
                    WHEN 'Failed' THEN j.reason
                END,
                CASE WHEN s.state = 'Processing'
                     THEN jsonb_build_object('server', j.server, 'attempt', (s.step + 1) / 3) END
         FROM {schema}.jobs_job j
         CROSS JOIN (VALUES (1, 'Enqueued'), (2, 'Processing'), (3, 'Scheduled'),
                            (4, 'Enqueued'), (5, 'Processing'), (6, 'Scheduled'),
                            (7, 'Enqueued'), (8, 'Processing'), (9, 'Failed')) AS s(step, state)
         WHERE j.state = 'Failed'
         ORDER BY j.id, s.step"#
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(history))
        .execute(pool)
        .await?;
    println!(
        "  stored {} history rows of failed jobs",
        rows.rows_affected()
    );
    let log = format!(
        "INSERT INTO {schema}.jobs_job_log (job_id, attempt, logged_at, line)
         SELECT j.id, a.attempt, j.created_at + a.attempt * interval '1 second',
                format('attempt %s: charging account acct-%s', a.attempt, j.id % 9973)
         FROM {schema}.jobs_job j CROSS JOIN generate_series(1, 3) AS a(attempt)
         WHERE j.state = 'Failed'
         ORDER BY j.id, a.attempt"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(log)).execute(pool).await?;
    println!("  stored {} log lines of failed jobs", rows.rows_affected());
    let parameters = format!(
        r#"INSERT INTO {schema}.jobs_job_parameter (job_id, name, value)
         SELECT j.id, p.name, p.value
         FROM {schema}.jobs_job j
         CROSS JOIN (VALUES ('culture', '"en-US"'), ('tenant', '"acme"')) AS p(name, value)
         WHERE j.state = 'Failed'"#
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(parameters))
        .execute(pool)
        .await?;
    println!(
        "  stored {} parameters of failed jobs",
        rows.rows_affected()
    );

    // The statistics of finished jobs (migration 0009), as the leader's
    // fold of the outcome statements' counts leaves them: per name and
    // hour (UTC).
    let counters = format!(
        "INSERT INTO {schema}.jobs_counter_hour (name, hour, value)
         SELECT state, date_trunc('hour', state_changed_at, 'UTC'), count(*)
         FROM {schema}.jobs_job WHERE state IN ('Succeeded', 'Failed')
         GROUP BY 1, 2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(counters))
        .execute(pool)
        .await?;
    println!("  stored {} hourly counters", rows.rows_affected());

    // Through the public API: recurring jobs, a server, a paused queue.
    let client = Client::new(storage.clone());
    for region in ["eu", "us", "apac"] {
        let options = RecurringOptions::cron("0 0 3 * * *").time_zone("Europe/Berlin");
        nightly_report::recurring_with(
            &client,
            &format!("report-{region}"),
            options,
            region.into(),
        )
        .await?;
    }
    cleanup::recurring(&client, "cleanup-uploads", "*/15 * * * *", 30).await?;
    storage.trigger_recurring("report-eu").await?;
    let server = ServerInfo {
        id: "dashbench-host:4242:0".to_owned(),
        workers: 20,
        queues: ["billing", "mail", "default", "reports", "webhooks"]
            .map(String::from)
            .to_vec(),
        jobs: vec![
            "default.cleanup".to_owned(),
            "mail.send".to_owned(),
            "reports.nightly".to_owned(),
        ],
    };
    // The server table's only writer in the public API is the storage
    // contract's `ServerStorage` (a `Server` unregisters when it stops).
    let backend = PostgresStorage::from_pool(pool.clone(), schema).await?;
    backend.register_server(server).await?;
    storage.pause_queue("reports").await?;

    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = $1")
            .bind(schema)
            .fetch_all(pool)
            .await?;
    for table in &tables {
        let vacuum = format!("VACUUM (ANALYZE) {schema}.{table}");
        sqlx::query(sqlx::AssertSqlSafe(vacuum))
            .execute(pool)
            .await?;
    }
    println!(
        "filled {jobs} jobs, vacuumed and analyzed {} tables in {:.1}s",
        tables.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Times every page and prints the table, then the slow pages.
async fn time_pages(
    pool: &PgPool,
    storage: &Storage,
    schema: &str,
    rounds: usize,
) -> anyhow::Result<()> {
    let scalar = |sql: String| async move {
        let value: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await?;
        value.ok_or_else(|| anyhow::anyhow!("the schema {schema} holds no jobs to time"))
    };
    let total = scalar(format!("SELECT count(*) FROM {schema}.jobs_job")).await?;
    let middle = scalar(format!(
        "SELECT (min(id) + max(id)) / 2 FROM {schema}.jobs_job"
    ))
    .await?;
    let failed = scalar(format!(
        "SELECT max(id) FROM {schema}.jobs_job WHERE state = 'Failed'"
    ))
    .await?;
    let succeeded = scalar(format!(
        "SELECT max(id) FROM {schema}.jobs_job WHERE state = 'Succeeded' AND id < {middle}"
    ))
    .await?;
    println!("timing the pages over {total} jobs, {rounds} rounds each after one warm-up");

    let pages = [
        "/".to_owned(),
        "/jobs/Succeeded".to_owned(),
        "/jobs/Failed".to_owned(),
        "/jobs/Enqueued".to_owned(),
        "/jobs/Scheduled".to_owned(),
        "/jobs/Processing".to_owned(),
        "/jobs/Deleted".to_owned(),
        "/jobs/Awaiting".to_owned(),
        format!("/jobs/Succeeded?before={middle}"),
        format!("/jobs/Failed?before={middle}"),
        "/jobs/Failed?queue=billing".to_owned(),
        "/jobs/Enqueued?queue=billing".to_owned(),
        "/jobs/Succeeded?queue=billing".to_owned(),
        "/jobs/Processing?queue=billing".to_owned(),
        // A filter that matches nothing (a typo): the most rows read.
        "/jobs/Succeeded?queue=no-such-queue".to_owned(),
        "/jobs/Succeeded?name=no-such-job".to_owned(),
        "/jobs/Succeeded?text=no-such-text".to_owned(),
        "/jobs/Failed?text=%22n%22".to_owned(),
        "/retries".to_owned(),
        "/batches".to_owned(),
        "/batches?finished=1".to_owned(),
        format!("/job/{failed}"),
        format!("/job/{succeeded}"),
        "/recurring".to_owned(),
        "/queues".to_owned(),
        "/servers".to_owned(),
        "/stats.json".to_owned(),
    ];
    // A new router for each request: the dashboard keeps the counts it
    // read for a second (every open page polls them), and a timing of
    // that cache would not be the storage's.
    let fresh = || jobs::dashboard::router(storage.clone());
    let width = pages.iter().map(String::len).max().unwrap_or(0).max(4);
    println!(
        "{:<width$}  {:>9}  {:>9}  {:>9}  {:>9}",
        "page", "median ms", "p95 ms", "max ms", "body B"
    );
    let mut slow = Vec::new();
    for page in &pages {
        get(&fresh(), page).await?;
        let mut times = Vec::with_capacity(rounds);
        let mut size = 0;
        for _ in 0..rounds.max(1) {
            let app = fresh();
            let started = Instant::now();
            size = get(&app, page).await?;
            times.push(started.elapsed());
        }
        times.sort();
        let ms = |time: Duration| time.as_secs_f64() * 1000.0;
        let at =
            |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        let (median, p95, max) = (ms(at(0.5)), ms(at(0.95)), ms(times[times.len() - 1]));
        println!("{page:<width$}  {median:>9.2}  {p95:>9.2}  {max:>9.2}  {size:>9}");
        if median > GOAL_MS {
            slow.push(format!(
                "SLOW: {page}: median {median:.1} ms, p95 {p95:.1} ms (goal {GOAL_MS} ms)"
            ));
        }
    }
    for line in &slow {
        println!("{line}");
    }
    if slow.is_empty() {
        println!("every page's median is under {GOAL_MS} ms");
    }
    Ok(())
}

/// `GET path` from a loopback client through `app`; the body's size.
/// Anything but `200 OK` is an error that shows the body's start.
async fn get(app: &axum::Router, path: &str) -> anyhow::Result<usize> {
    let mut request = Request::builder()
        .uri(path)
        .header(header::HOST, "localhost")
        .body(Body::empty())?;
    let peer: SocketAddr = "127.0.0.1:5000".parse()?;
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.clone().oneshot(request).await?;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(&body);
        let start: String = text.chars().take(500).collect();
        anyhow::bail!("GET {path} answered {status}: {start}");
    }
    Ok(body.len())
}
