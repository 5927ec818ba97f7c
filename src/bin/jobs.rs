//! `jobs`: the command-line tool. Looks at and controls the jobs of a
//! storage, as the dashboard does, from a terminal or a script:
//!
//! ```text
//! jobs --database postgres://app@db/app status
//! jobs list --state failed --queue mail
//! jobs show 1017
//! jobs retry 1017 1018
//! jobs pause mail
//! jobs recurring trigger nightly-report
//! jobs dashboard --bind 127.0.0.1:9090
//! ```
//!
//! The database comes from `--database` or `DATABASE_URL`. Output is for a
//! person; `--json` prints one JSON document for scripts. An error is
//! printed with what to do, and the exit status is 1 (2 for a usage
//! error, as clap's).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jobs::storage::PostgresStorage;
use jobs::{JobId, JobQuery, JobRecord, State, Storage};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "jobs",
    version,
    about = "Look at and control the jobs of a storage"
)]
struct Cli {
    /// The storage: `sqlite://jobs.db`, `postgres://user@host/database`.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database: Option<String>,
    /// The PostgreSQL schema holding the jobs' tables (default: `public`).
    #[arg(long, global = true)]
    schema: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates or updates the storage's tables (every other command does
    /// too, on its first connection).
    Migrate,
    /// Jobs per state (`Succeeded`: all that ever succeeded), per queue,
    /// the paused queues and the servers.
    Status,
    /// One page of jobs, newest first.
    List {
        /// Only jobs in this state (`failed`, `Scheduled`, ...).
        #[arg(long, value_parser = parse_state)]
        state: Option<State>,
        /// Only jobs of this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only jobs older than this id (the last id of the previous page).
        #[arg(long)]
        before: Option<i64>,
        /// The most jobs to list.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// A job: its arguments, state and history with reasons.
    Show {
        /// The job's id.
        id: i64,
    },
    /// Enqueues jobs again now (failed, succeeded, deleted, scheduled).
    Retry {
        /// The jobs' ids.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Deletes jobs (moved to `Deleted`; a running one stops).
    Delete {
        /// The jobs' ids.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Pauses a queue: its jobs wait until it is resumed.
    Pause {
        /// The queue.
        queue: String,
    },
    /// Resumes a paused queue.
    Resume {
        /// The queue.
        queue: String,
    },
    /// Recurring jobs.
    #[command(subcommand)]
    Recurring(Recurring),
    /// Serves the dashboard until Ctrl-C (to loopback clients only).
    Dashboard {
        /// The address to serve on.
        #[arg(long, default_value = "127.0.0.1:9090")]
        bind: String,
    },
}

#[derive(Subcommand)]
enum Recurring {
    /// Every recurring job, with its schedule and next run.
    List,
    /// Enqueues a run now, off schedule.
    Trigger {
        /// The recurring job's id.
        id: String,
    },
    /// Stops its runs until resumed.
    Pause {
        /// The recurring job's id.
        id: String,
    },
    /// Resumes its runs from the next tick.
    Resume {
        /// The recurring job's id.
        id: String,
    },
}

/// `text` as a state, whatever its case.
fn parse_state(text: &str) -> Result<State, String> {
    State::ALL
        .into_iter()
        .find(|state| state.as_str().eq_ignore_ascii_case(text))
        .ok_or_else(|| {
            let names: Vec<&str> = State::ALL.into_iter().map(State::as_str).collect();
            format!("no state named {text:?}; one of {}", names.join(", "))
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the runtime: {error}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// The storage the options name.
async fn open(cli: &Cli) -> Result<Storage, String> {
    let Some(url) = cli.database.as_deref() else {
        return Err("no database: give --database URL or set DATABASE_URL \
                    (sqlite://jobs.db, postgres://user@host/database)"
            .to_owned());
    };
    let opened = match &cli.schema {
        Some(schema) if url.starts_with("postgres") => {
            PostgresStorage::connect_with_schema(url, schema)
                .await
                .map(Storage::new)
        }
        Some(_) => return Err("--schema is for PostgreSQL only".to_owned()),
        None => Storage::connect(url).await,
    };
    opened.map_err(|error| format!("cannot open the storage: {error}"))
}

async fn run(cli: Cli) -> Result<(), String> {
    let storage = open(&cli).await?;
    let json = cli.json;
    match cli.command {
        Command::Migrate => print(json, json!({"migrated": true}), "the storage is up to date"),
        Command::Status => status(&storage, json).await,
        Command::List {
            state,
            queue,
            before,
            limit,
        } => {
            let mut query = JobQuery::new().limit(limit);
            if let Some(state) = state {
                query = query.state(state);
            }
            if let Some(queue) = queue {
                query = query.queue(queue);
            }
            if let Some(before) = before {
                query = query.before(JobId(before));
            }
            let jobs = storage.list_jobs(query).await.map_err(storage_error)?;
            list(&jobs, json)
        }
        Command::Show { id } => show(&storage, JobId(id), json).await,
        Command::Retry { ids } => moved(&storage, ids, "requeued", json).await,
        Command::Delete { ids } => moved(&storage, ids, "deleted", json).await,
        Command::Pause { queue } => pause_or_resume(&storage, queue, true, json).await,
        Command::Resume { queue } => pause_or_resume(&storage, queue, false, json).await,
        Command::Recurring(command) => recurring(&storage, command, json).await,
        Command::Dashboard { bind } => jobs::dashboard::Dashboard::new(storage)
            .serve(
                &bind,
                |address| {
                    println!("dashboard at http://{address} (Ctrl-C to stop)");
                },
                async {
                    let _ = tokio::signal::ctrl_c().await;
                },
            )
            .await
            .map_err(|error| error.to_string()),
    }
}

/// Pauses or resumes `queue`, saying whether it was so already.
async fn pause_or_resume(
    storage: &Storage,
    queue: String,
    pause: bool,
    json: bool,
) -> Result<(), String> {
    let changed = if pause {
        storage.pause_queue(&queue).await
    } else {
        storage.resume_queue(&queue).await
    }
    .map_err(storage_error)?;
    let text = match (pause, changed) {
        (true, true) => format!("paused queue {queue}"),
        (true, false) => format!("queue {queue} was paused already"),
        (false, true) => format!("resumed queue {queue}"),
        (false, false) => format!("queue {queue} was not paused"),
    };
    print(
        json,
        json!({"queue": queue, "paused": pause, "changed": changed}),
        &text,
    )
}

/// A storage error, with what to do about the usual ones.
fn storage_error(error: jobs::Error) -> String {
    match error {
        jobs::Error::JobNotFound(id) => format!("no job with id {id} (see `jobs list`)"),
        jobs::Error::RecurringJobNotFound(id) => {
            format!("no recurring job with id {id:?} (see `jobs recurring list`)")
        }
        other => other.to_string(),
    }
}

fn print(json: bool, value: Value, text: &str) -> Result<(), String> {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
    Ok(())
}

async fn status(storage: &Storage, json: bool) -> Result<(), String> {
    // As the dashboard counts: `Succeeded` is all that ever succeeded.
    let ((counts, statistics), queues, paused, servers) = tokio::try_join!(
        storage.counts_shown(),
        storage.queue_counts(),
        storage.paused(),
        storage.servers()
    )
    .map_err(storage_error)?;
    let paused: Vec<String> = paused
        .into_iter()
        .filter_map(|paused| match paused.target {
            jobs::PauseTarget::Queue(queue) => Some(queue),
            _ => None,
        })
        .collect();
    if json {
        let by_state = |counts: &jobs::StateCounts| -> Value {
            State::ALL
                .into_iter()
                .map(|state| (state.to_string(), json!(counts.get(state))))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let value = json!({
            "counts": by_state(&counts),
            "succeeded_ever": statistics.total.succeeded,
            "failed_ever": statistics.total.failed,
            "queues": queues.iter().map(|queue| json!({
                "queue": queue.queue,
                "counts": by_state(&queue.counts),
                "paused": paused.contains(&queue.queue),
            })).collect::<Vec<_>>(),
            "paused_queues": paused,
            "servers": servers.iter().map(|server| json!({
                "id": server.id,
                "workers": server.workers,
                "queues": server.queues,
                "started_at": server.started_at.to_rfc3339(),
            })).collect::<Vec<_>>(),
        });
        println!("{value}");
        return Ok(());
    }
    println!("jobs");
    for state in State::ALL {
        let note = if state == State::Succeeded {
            "  (all that ever succeeded)"
        } else {
            ""
        };
        println!("  {:<12} {:>10}{note}", state.as_str(), counts.get(state));
    }
    println!("queues (unfinished and failed jobs)");
    for queue in &queues {
        let mark = if paused.contains(&queue.queue) {
            "  paused"
        } else {
            ""
        };
        println!(
            "  {:<20} enqueued {:>8}  scheduled {:>8}  processing {:>6}  failed {:>8}{mark}",
            queue.queue,
            queue.counts.get(State::Enqueued),
            queue.counts.get(State::Scheduled),
            queue.counts.get(State::Processing),
            queue.counts.get(State::Failed),
        );
    }
    for queue in paused
        .iter()
        .filter(|q| !queues.iter().any(|c| &c.queue == *q))
    {
        println!("  {queue:<20} (no job)  paused");
    }
    println!("servers");
    if servers.is_empty() {
        println!("  none");
    }
    for server in &servers {
        println!(
            "  {}  {} workers  queues {}  started {}",
            server.id,
            server.workers,
            server.queues.join(","),
            server.started_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    Ok(())
}

fn job_json(job: &JobRecord) -> Value {
    json!({
        "id": job.id.0,
        "name": job.name,
        "queue": job.queue,
        "state": job.state.as_str(),
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "priority": job.priority,
        "created_at": job.created_at.to_rfc3339(),
        "state_changed_at": job.state_changed_at.to_rfc3339(),
        "reason": job.reason,
        "args": serde_json::from_str::<Value>(&job.args).unwrap_or(Value::String(job.args.clone())),
    })
}

fn list(jobs: &[JobRecord], json: bool) -> Result<(), String> {
    if json {
        println!("{}", Value::Array(jobs.iter().map(job_json).collect()));
        return Ok(());
    }
    if jobs.is_empty() {
        println!("no job");
    }
    for job in jobs {
        let reason: String = job
            .reason
            .as_deref()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(80)
            .collect();
        println!(
            "{:>10}  {:<10}  {:<24}  {:<12}  {}/{}  {}",
            job.id,
            job.state.as_str(),
            job.name,
            job.queue,
            job.attempt,
            job.max_attempts,
            reason
        );
    }
    if let Some(last) = jobs.last() {
        println!("(older: --before {})", last.id);
    }
    Ok(())
}

async fn show(storage: &Storage, id: JobId, json: bool) -> Result<(), String> {
    let job = storage
        .job(id)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| format!("no job with id {id} (see `jobs list`)"))?;
    let history = storage.history(id).await.map_err(storage_error)?;
    if json {
        let mut value = job_json(&job);
        value["result"] = job.result.as_deref().map_or(Value::Null, |result| {
            serde_json::from_str(result).unwrap_or(Value::String(result.to_owned()))
        });
        value["history"] = history
            .iter()
            .map(|change| {
                json!({
                    "state": change.state.as_str(),
                    "at": change.at.to_rfc3339(),
                    "reason": change.reason,
                    "data": change.data,
                })
            })
            .collect();
        println!("{value}");
        return Ok(());
    }
    println!("job {}: {}", job.id, job.name);
    println!("  queue     {}", job.queue);
    println!(
        "  state     {} since {}",
        job.state,
        job.state_changed_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!("  attempt   {} of {}", job.attempt, job.max_attempts);
    let args = serde_json::from_str::<Value>(&job.args)
        .and_then(|args| serde_json::to_string_pretty(&args))
        .unwrap_or_else(|_| job.args.clone());
    println!("  arguments {}", args.replace('\n', "\n            "));
    if let Some(reason) = &job.reason {
        println!("  reason    {}", reason.replace('\n', "\n            "));
    }
    if let Some(result) = &job.result {
        println!("  result    {result}");
    }
    println!("history");
    for change in &history {
        println!(
            "  {}  {:<10}  {}",
            change.at.format("%Y-%m-%d %H:%M:%S%.3f"),
            change.state.as_str(),
            change
                .reason
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    Ok(())
}

/// Requeues or deletes each job; a job that cannot move is reported and
/// the others still move. Fails when any could not.
async fn moved(storage: &Storage, ids: Vec<i64>, done: &str, json: bool) -> Result<(), String> {
    let mut results = Vec::new();
    let mut refused = 0;
    for id in ids {
        let moved = match done {
            "requeued" => storage.requeue(JobId(id)).await,
            _ => storage.delete(JobId(id)).await,
        };
        match moved {
            Ok(()) => {
                if !json {
                    println!("{done} job {id}");
                }
                results.push(json!({"id": id, "moved": true}));
            }
            Err(error @ (jobs::Error::JobNotFound(_) | jobs::Error::MoveRefused { .. })) => {
                refused += 1;
                let why = storage_error(error);
                if !json {
                    eprintln!("not {done}: {why}");
                }
                results.push(json!({"id": id, "moved": false, "error": why}));
            }
            Err(error) => return Err(storage_error(error)),
        }
    }
    if json {
        println!("{}", Value::Array(results));
    }
    if refused > 0 {
        return Err(format!("{refused} job(s) could not be {done}"));
    }
    Ok(())
}

async fn recurring(storage: &Storage, command: Recurring, json: bool) -> Result<(), String> {
    match command {
        Recurring::List => {
            let jobs = storage.recurring_jobs().await.map_err(storage_error)?;
            if json {
                let value: Vec<Value> = jobs
                    .iter()
                    .map(|job| {
                        json!({
                            "id": job.definition.id,
                            "job": job.definition.job_name,
                            "cron": job.definition.cron,
                            "time_zone": job.definition.time_zone,
                            "queue": job.definition.queue,
                            "next_run_at": job.next_run_at.map(|at| at.to_rfc3339()),
                            "last_run_at": job.last_run_at.map(|at| at.to_rfc3339()),
                            "paused": job.paused,
                        })
                    })
                    .collect();
                println!("{}", Value::Array(value));
                return Ok(());
            }
            if jobs.is_empty() {
                println!("no recurring job");
            }
            for job in &jobs {
                let next = job.next_run_at.map_or("-".to_owned(), |at| {
                    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
                });
                let paused = if job.paused { "  paused" } else { "" };
                println!(
                    "{:<24}  {:<24}  {:<16}  {}  next {next}{paused}",
                    job.definition.id,
                    job.definition.job_name,
                    job.definition.cron,
                    job.definition.time_zone
                );
            }
            Ok(())
        }
        Recurring::Trigger { id } => {
            let job = storage
                .trigger_recurring(&id)
                .await
                .map_err(storage_error)?;
            print(
                json,
                json!({"recurring": id, "job": job.0}),
                &format!("triggered {id}: job {job}"),
            )
        }
        Recurring::Pause { id } => {
            storage.pause_recurring(&id).await.map_err(storage_error)?;
            print(
                json,
                json!({"recurring": id, "paused": true}),
                &format!("paused {id}"),
            )
        }
        Recurring::Resume { id } => {
            storage.resume_recurring(&id).await.map_err(storage_error)?;
            print(
                json,
                json!({"recurring": id, "paused": false}),
                &format!("resumed {id}"),
            )
        }
    }
}
