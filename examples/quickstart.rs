//! The quickstart: hash every file of a directory with background jobs.
//!
//! ```text
//! cargo run --example quickstart                 # this repository
//! cargo run --example quickstart -- ~/src/other  # another directory
//! cargo run --example quickstart -- --serve      # then keeps running, dashboard at http://127.0.0.1:9090
//! ```
//!
//! Enqueues one `hash_file` job per file (respecting `.gitignore`) as one
//! batch, runs them on a server with a few workers, and stores each file's
//! SHA-256, size and line count in a table of the same database. When
//! every file is done, the batch's continuation receives every digest,
//! typed, and writes a summary report: fan-out, fan-in, and `main` only
//! waits for the report. It also shows a delayed job, a job enqueued in
//! the application's own transaction that fails twice before it succeeds,
//! and recurring jobs. Unreadable files become Failed jobs carrying the OS
//! error. Ends with a summary and exits 0.

use std::path::{Path, PathBuf};
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
const CREATE_UPLOADS: &str = "CREATE TABLE IF NOT EXISTS quickstart_upload (name TEXT NOT NULL)";
const STORE_UPLOAD: &str = "INSERT INTO quickstart_upload (name) VALUES ($1)";

impl Results {
    async fn create_tables(&self) -> Result<(), sqlx::Error> {
        for table in [CREATE_TABLE, CREATE_UPLOADS] {
            match self {
                Results::Sqlite(pool) => sqlx::query(table).execute(pool).await.map(drop)?,
                Results::Postgres(pool) => sqlx::query(table).execute(pool).await.map(drop)?,
            }
        }
        Ok(())
    }

    /// Records an upload and enqueues the job that performs it, in one
    /// transaction of the application: both exist, or neither.
    async fn record_upload(&self, name: &str) -> anyhow::Result<TypedJobId<()>> {
        Ok(match self {
            Results::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query(STORE_UPLOAD)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                let id = flaky_upload::enqueue_in_tx(&mut tx, name.into()).await?;
                tx.commit().await?;
                id
            }
            Results::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(STORE_UPLOAD)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                let id = flaky_upload::enqueue_in_tx(&mut tx, name.into()).await?;
                tx.commit().await?;
                id
            }
        })
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

/// What `hash_file` returns: stored as the job's result, and handed to the
/// batch's continuation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct FileDigest {
    path: String,
    sha256: String,
    bytes: u64,
    lines: u64,
}

/// Reads a file, stores its SHA-256, size in bytes and line count in the
/// application's table, and returns them.
#[job(queue = "files", retries = 1, backoff = "200ms")]
async fn hash_file(ctx: JobContext, path: PathBuf) -> Result<FileDigest, std::io::Error> {
    let bytes = tokio::fs::read(&path).await?;
    let digest = FileDigest {
        path: path.display().to_string(),
        sha256: format!("{:x}", Sha256::digest(&bytes)),
        bytes: bytes.len() as u64,
        lines: (bytes.iter().filter(|&&b| b == b'\n').count()
            + usize::from(bytes.last().is_some_and(|&b| b != b'\n'))) as u64,
    };
    let results = RESULTS.get().expect("set before the server starts");
    results
        .store(
            digest.path.clone(),
            digest.sha256.clone(),
            digest.bytes as i64,
            digest.lines as i64,
            ctx.id().get(),
        )
        .await
        .map_err(std::io::Error::other)?;
    Ok(digest)
}

/// The batch's continuation: runs once every file is hashed, whatever the
/// outcome, with the digests of the files that were, in enqueue order, and
/// writes the summary report.
#[job]
async fn write_report(
    #[parent] digests: Vec<FileDigest>,
    report: PathBuf,
) -> Result<ReportTotals, std::io::Error> {
    let totals = ReportTotals {
        files: digests.len() as u64,
        bytes: digests.iter().map(|d| d.bytes).sum(),
        lines: digests.iter().map(|d| d.lines).sum(),
    };
    let mut largest = digests.clone();
    largest.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    let mut text = format!(
        "{} files, {} bytes, {} lines\nlargest:\n",
        totals.files, totals.bytes, totals.lines
    );
    for digest in largest.iter().take(3) {
        text.push_str(&format!(
            "  {} bytes  {}  {}\n",
            digest.bytes,
            &digest.sha256[..12],
            digest.path
        ));
    }
    tokio::fs::write(&report, text).await?;
    Ok(totals)
}

/// What the report job returns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ReportTotals {
    files: u64,
    bytes: u64,
    lines: u64,
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
    /// After the summary, keep running and serve the dashboard on this
    /// address (loopback clients only) until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9090")]
    serve: Option<String>,
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
    results.create_tables().await?;
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

    // Fan-out: one job per file, and the report after them, stored at once.
    let newest_before = storage.list_jobs(jobs::JobQuery::new().limit(1)).await?;
    let first_id = newest_before.first().map_or(1, |job| job.id.get() + 1);
    let started = Instant::now();
    let report_path = temp.path().join("report.txt");
    let mut batch = Batch::new().description(format!("hash {}", dir.display()));
    for path in &files {
        hash_file::add_to_batch(&mut batch, path.clone())?;
    }
    // Fan-in: on any outcome, so that unreadable files do not stop the report.
    let on_any = EnqueueOptions::new().continue_on(ContinueOn::Finished);
    batch.then_with(
        WriteReport {
            report: report_path.clone(),
        },
        on_any,
    )?;
    let batch = client.enqueue_batch(batch).await?;
    println!(
        "  enqueued {} hash_file jobs as batch {batch} in {:.0?}",
        files.len(),
        started.elapsed()
    );
    let delayed = delayed_hello::schedule_in(
        &client,
        Duration::from_secs(2),
        chrono::Utc::now().timestamp_millis(),
    )
    .await?;
    let flaky = results.record_upload("report.pdf").await?;
    println!(
        "  scheduled delayed job {delayed} in 2s; enqueued flaky job {flaky} with its upload row"
    );
    // Every night at 02:00 Berlin time, and once now, by hand.
    nightly_report::recurring_with(
        &client,
        "nightly-report",
        RecurringOptions::cron("0 0 2 * * *").time_zone("Europe/Berlin"),
        "ops@example.com".into(),
    )
    .await?;
    let report = client.trigger_recurring("nightly-report").await?;

    let mut server = Server::builder(storage.clone())
        .workers(args.workers)
        .queues(["files", "default"])
        .schedule_interval(Duration::from_millis(100))
        .continuation_check_interval(Duration::from_millis(100));
    if let Some(address) = &args.serve {
        server = server.dashboard(address.as_str());
    }
    let server = server.start()?;

    // `main` only watches: the report is written by the batch's continuation.
    let mut last_report = Instant::now();
    let mut files_done: Option<Duration> = None;
    let progress = loop {
        let progress = storage.batch(&batch).await?.context("the batch exists")?;
        if progress.state != jobs::BatchState::Started && files_done.is_none() {
            files_done = Some(started.elapsed());
        }
        if files_done.is_some()
            && report_written(&storage, &batch).await?
            && is_final(&storage, delayed).await?
            && is_final(&storage, flaky).await?
            && is_final(&storage, report).await?
            && heartbeat_succeeded(&storage).await?
        {
            break progress;
        }
        if last_report.elapsed() >= Duration::from_millis(500) {
            println!(
                "  progress: {} of {} files pending ({} succeeded, {} failed)",
                progress.pending(),
                files.len(),
                progress.jobs.get(State::Succeeded),
                progress.jobs.get(State::Failed),
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = files_done.expect("set before the loop ends");
    let server = match server.dashboard_address() {
        Some(_) => Some(server),
        None => {
            server.shutdown().await;
            None
        }
    };

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
    println!("  the batch's report ({}):", report_path.display());
    for line in tokio::fs::read_to_string(&report_path).await?.lines() {
        println!("    {line}");
    }
    for (path, reason) in failed_files(&storage, &batch).await? {
        println!("  FAILED {path}: {reason}");
    }
    let (succeeded, failed) = (
        progress.jobs.get(State::Succeeded),
        progress.jobs.get(State::Failed),
    );
    let stored = results.count_since(first_id).await?;
    println!(
        "summary: files {}, succeeded {succeeded}, failed {failed}, results stored {stored}, batch {}, elapsed {:.2}s, {:.0} jobs/s",
        files.len(),
        progress.state,
        elapsed.as_secs_f64(),
        files.len() as f64 / elapsed.as_secs_f64()
    );
    if let Some(server) = server {
        if let Some(address) = server.dashboard_address() {
            println!("dashboard at http://{address}/ (Ctrl-C to stop)");
        }
        tokio::signal::ctrl_c().await?;
        server.shutdown().await;
    }
    Ok(())
}

/// Whether the batch's continuation (the report) has finished.
async fn report_written(storage: &Storage, batch: &jobs::BatchId) -> anyhow::Result<bool> {
    let reports = storage
        .list_jobs(jobs::JobQuery::new().queue("default").limit(50))
        .await?;
    Ok(reports.iter().any(|job| {
        job.name == "write_report"
            && job.parent_batch.as_ref() == Some(batch)
            && job.state.is_final()
    }))
}

/// `(path, reason)` of each file of the batch whose job failed.
async fn failed_files(
    storage: &Storage,
    batch: &jobs::BatchId,
) -> anyhow::Result<Vec<(String, String)>> {
    let failed = storage
        .list_jobs(
            jobs::JobQuery::new()
                .state(State::Failed)
                .queue("files")
                .limit(1000),
        )
        .await?;
    failed
        .into_iter()
        .filter(|job| job.batch.as_ref() == Some(batch))
        .map(|job| {
            let args: serde_json::Value = serde_json::from_str(&job.args)?;
            let path = args["path"]
                .as_str()
                .map(Path::new)
                .unwrap_or(Path::new("?"));
            Ok((path.display().to_string(), job.reason.unwrap_or_default()))
        })
        .collect()
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
