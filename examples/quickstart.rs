//! The quickstart: hash every file of a directory with background jobs.
//!
//! ```text
//! cargo run --example quickstart                 # this repository
//! cargo run --example quickstart -- ~/src/other  # another directory
//! ```
//!
//! Enqueues one `hash_file` job per file (respecting `.gitignore`), runs them
//! on a server with a few workers, and stores each file's SHA-256, size and
//! line count in a table of the same SQLite database. It also shows a delayed
//! job and a job that fails twice before it succeeds. Unreadable files become
//! Failed jobs carrying the OS error. Ends with a summary and exits 0.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use jobs::prelude::*;
use jobs::storage::{PostgresStorage, SqliteStorage};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, SqlitePool};

/// Where the jobs store their results: the application's own database.
static RESULTS: OnceLock<Results> = OnceLock::new();

/// The application's table of results, in the same database as the jobs.
enum Results {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One statement for both databases (`$n` parameters work in SQLite too).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS quickstart_file_digest (
    path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, bytes BIGINT NOT NULL,
    lines BIGINT NOT NULL, job_id BIGINT NOT NULL)";
const STORE: &str = "INSERT INTO quickstart_file_digest (path, sha256, bytes, lines, job_id)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes,
        lines = excluded.lines, job_id = excluded.job_id";
const COUNT_SINCE: &str = "SELECT count(*) FROM quickstart_file_digest WHERE job_id >= $1";

impl Results {
    async fn create_table(&self) -> Result<(), sqlx::Error> {
        match self {
            Results::Sqlite(pool) => sqlx::query(CREATE_TABLE).execute(pool).await.map(drop),
            Results::Postgres(pool) => sqlx::query(CREATE_TABLE).execute(pool).await.map(drop),
        }
    }

    async fn store(
        &self,
        path: String,
        sha256: String,
        bytes: i64,
        lines: i64,
        job: i64,
    ) -> Result<(), sqlx::Error> {
        match self {
            Results::Sqlite(pool) => {
                let query = sqlx::query(STORE)
                    .bind(path)
                    .bind(sha256)
                    .bind(bytes)
                    .bind(lines)
                    .bind(job);
                query.execute(pool).await.map(drop)
            }
            Results::Postgres(pool) => {
                let query = sqlx::query(STORE)
                    .bind(path)
                    .bind(sha256)
                    .bind(bytes)
                    .bind(lines)
                    .bind(job);
                query.execute(pool).await.map(drop)
            }
        }
    }

    /// Results stored by jobs with this id or a later one (this run's).
    async fn count_since(&self, first: i64) -> Result<i64, sqlx::Error> {
        match self {
            Results::Sqlite(pool) => {
                sqlx::query_scalar(COUNT_SINCE)
                    .bind(first)
                    .fetch_one(pool)
                    .await
            }
            Results::Postgres(pool) => {
                sqlx::query_scalar(COUNT_SINCE)
                    .bind(first)
                    .fetch_one(pool)
                    .await
            }
        }
    }
}

/// Reads a file and stores its SHA-256, size in bytes and line count.
#[job(queue = "files", retries = 1, backoff = "200ms")]
async fn hash_file(ctx: JobContext, path: PathBuf) -> Result<(), std::io::Error> {
    let bytes = tokio::fs::read(&path).await?;
    let sha256 = format!("{:x}", Sha256::digest(&bytes));
    let lines = bytes.iter().filter(|&&b| b == b'\n').count()
        + usize::from(bytes.last().is_some_and(|&b| b != b'\n'));
    let results = RESULTS.get().expect("set before the server starts");
    let (bytes, lines) = (bytes.len() as i64, lines as i64);
    results
        .store(
            path.display().to_string(),
            sha256,
            bytes,
            lines,
            ctx.id().get(),
        )
        .await
        .map_err(std::io::Error::other)
}

/// Announces itself: enqueued with a delay, it shows when it really ran.
#[job]
async fn delayed_hello(scheduled_at_ms: i64) {
    let late = chrono::Utc::now().timestamp_millis() - scheduled_at_ms;
    println!(
        "  delayed job ran {:.1}s after it was scheduled",
        late as f64 / 1000.0
    );
}

/// Fails with a transient error until its third attempt, like a flaky API.
#[job(retries = 3, backoff = "300ms")]
async fn flaky_upload(ctx: JobContext, name: String) -> Result<(), String> {
    if ctx.attempt() < 3 {
        return Err(format!(
            "upload of {name} timed out (attempt {})",
            ctx.attempt()
        ));
    }
    println!("  flaky job succeeded on attempt {}", ctx.attempt());
    Ok(())
}

/// Fires every second while a server runs: stored by every server at
/// start, enqueued by the maintenance leader on each tick.
#[recurring(cron = "* * * * * *")]
async fn heartbeat() {
    println!(
        "  recurring heartbeat at {}",
        chrono::Utc::now().format("%H:%M:%S%.3f")
    );
}

/// A report with an argument, made recurring through the API.
#[job]
async fn nightly_report(recipient: String) {
    println!("  nightly report sent to {recipient}");
}

#[derive(Parser)]
#[command(about = "Hash every file of a directory with background jobs")]
struct Args {
    /// The directory to hash (default: this repository).
    dir: Option<PathBuf>,
    /// The storage: sqlite://PATH or postgres://USER@HOST/DB (default: a new
    /// SQLite file in a temporary directory).
    #[arg(long)]
    database: Option<String>,
    /// Jobs run at once.
    #[arg(long, default_value_t = 8)]
    workers: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let dir = args
        .dir
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let temp = tempfile::tempdir()?;
    let url = args
        .database
        .unwrap_or_else(|| format!("sqlite://{}", temp.path().join("quickstart.db").display()));

    let (storage, results) = if url.starts_with("postgres") {
        let postgres = PostgresStorage::connect(&url)
            .await
            .with_context(|| format!("opening {url}"))?;
        let results = Results::Postgres(postgres.pool().clone());
        (Storage::new(postgres), results)
    } else {
        let sqlite = SqliteStorage::connect(&url)
            .await
            .with_context(|| format!("opening {url}"))?;
        let results = Results::Sqlite(sqlite.pool().clone());
        (Storage::new(sqlite), results)
    };
    results.create_table().await?;
    let results = RESULTS.get_or_init(|| results);
    let client = Client::new(storage.clone());

    println!("jobs quickstart: hashing the files of {}", dir.display());
    println!("  storage: {url}");
    let files: Vec<PathBuf> = ignore::WalkBuilder::new(&dir)
        .build()
        .filter_map(Result::ok)
        // Symlinks too: a dangling one shows an unreadable file failing.
        .filter(|entry| {
            entry
                .file_type()
                .is_some_and(|t| t.is_file() || t.is_symlink())
        })
        .map(|entry| entry.into_path())
        .collect();
    anyhow::ensure!(!files.is_empty(), "no files found under {}", dir.display());

    let started = Instant::now();
    let ids = client
        .enqueue_many(files.iter().cloned().map(|path| HashFile { path }))
        .await?;
    println!(
        "  enqueued {} hash_file jobs in {:.0?}",
        ids.len(),
        started.elapsed()
    );
    let delayed = delayed_hello::schedule_in(
        &client,
        Duration::from_secs(2),
        chrono::Utc::now().timestamp_millis(),
    )
    .await?;
    let flaky = flaky_upload::enqueue(&client, "report.pdf".into()).await?;
    println!("  scheduled delayed job {delayed} in 2s; enqueued flaky job {flaky}");
    // Every night at 02:00 Berlin time, and once now, by hand.
    nightly_report::recurring_with(
        &client,
        "nightly-report",
        RecurringOptions::cron("0 0 2 * * *").time_zone("Europe/Berlin"),
        "ops@example.com".into(),
    )
    .await?;
    let report = client.trigger_recurring("nightly-report").await?;

    let server = Server::builder(storage.clone())
        .workers(args.workers)
        .queues(["files", "default"])
        .schedule_interval(Duration::from_millis(100))
        .start()?;

    let mut last_report = Instant::now();
    let mut files_done: Option<Duration> = None;
    let summary = loop {
        let summary = Summary::read(&storage, &ids).await?;
        if summary.finished() == ids.len() && files_done.is_none() {
            files_done = Some(started.elapsed());
        }
        if files_done.is_some()
            && is_final(&storage, delayed).await?
            && is_final(&storage, flaky).await?
            && is_final(&storage, report).await?
            && heartbeat_succeeded(&storage).await?
        {
            break summary;
        }
        if last_report.elapsed() >= Duration::from_millis(500) {
            println!(
                "  progress: {}/{} files done ({} succeeded, {} failed)",
                summary.finished(),
                ids.len(),
                summary.succeeded,
                summary.failed.len()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = files_done.expect("set before the loop ends");
    server.shutdown().await;

    println!("  flaky job's history:");
    for change in storage.history(flaky).await? {
        let reason = change.reason.map(|r| format!(" ({r})")).unwrap_or_default();
        println!("    {}{reason}", change.state);
    }
    println!("  recurring jobs:");
    for job in storage.recurring_jobs().await? {
        let next = job
            .next_run_at
            .map_or("never".to_owned(), |at| at.to_rfc3339());
        let last = job
            .last_job_state
            .map_or("none".to_owned(), |state| state.to_string());
        println!(
            "    {} ({} {}): next {next}, last run {last}",
            job.definition.id, job.definition.cron, job.definition.time_zone
        );
    }
    for (path, reason) in &summary.failed {
        println!("  FAILED {path}: {reason}");
    }
    let stored = results.count_since(ids[0].get()).await?;
    println!(
        "summary: files {}, succeeded {}, failed {}, results stored {stored}, elapsed {:.2}s, {:.0} jobs/s",
        ids.len(),
        summary.succeeded,
        summary.failed.len(),
        elapsed.as_secs_f64(),
        ids.len() as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Whether the `#[recurring]` heartbeat has run once, successfully.
async fn heartbeat_succeeded(storage: &Storage) -> anyhow::Result<bool> {
    let job = storage.recurring_job("heartbeat").await?;
    Ok(job.is_some_and(|job| job.last_job_state == Some(State::Succeeded)))
}

async fn is_final(storage: &Storage, id: impl Into<JobId>) -> anyhow::Result<bool> {
    let job = storage.job(id).await?.context("job exists")?;
    Ok(job.state.is_final())
}

/// The hash jobs' states.
struct Summary {
    succeeded: usize,
    /// `(path, reason)` of each failed job.
    failed: Vec<(String, String)>,
}

impl Summary {
    async fn read(storage: &Storage, ids: &[JobId]) -> anyhow::Result<Summary> {
        let mut summary = Summary {
            succeeded: 0,
            failed: Vec::new(),
        };
        for &id in ids {
            let job = storage.job(id).await?.context("job exists")?;
            match job.state {
                State::Succeeded => summary.succeeded += 1,
                State::Failed => {
                    let args: serde_json::Value = serde_json::from_str(&job.args)?;
                    summary.failed.push((
                        args["path"].as_str().unwrap_or("?").to_owned(),
                        job.reason.unwrap_or_default(),
                    ));
                }
                _ => {}
            }
        }
        Ok(summary)
    }

    fn finished(&self) -> usize {
        self.succeeded + self.failed.len()
    }
}
