//!
//! Every example here is a doctest of this crate, compiled with it; those
//! that need no PostgreSQL and do not run until Ctrl-C also run, on an
//! in-memory SQLite database.
//!
//! Read the first three chapters in order; the others stand alone.
//!
//! 1. [Getting started](crate::guide::getting_started): the crate, a first
//!    job, a server, what happens to a job, and the mistakes newcomers
//!    make.
//! 2. [Jobs and arguments](crate::guide::jobs_and_arguments): what
//!    `#[job]` generates, how arguments are stored, results, enqueueing
//!    (delayed, in bulk, in your own transaction), unique jobs.
//! 3. [Queues and priorities](crate::guide::queues_and_priorities): queues
//!    in priority order, priorities within a queue, workers and prefetch,
//!    pausing, concurrency limits.
//! 4. [Retries, timeouts and cancellation](crate::guide::retries):
//!    backoff, attempts, permanent errors, snoozing, timeouts, cancelling
//!    a job.
//! 5. [Recurring jobs](crate::guide::recurring_jobs): cron, time zones,
//!    misfires.
//! 6. [Workflows](crate::guide::workflows): continuations and batches.
//! 7. [Many servers](crate::guide::many_servers): PostgreSQL, leases, the
//!    rescue of jobs whose server died, the maintenance leader.
//! 8. [Deploying and upgrading](crate::guide::deploying_and_upgrading):
//!    migrations, graceful shutdown, jobs whose code changed or went away,
//!    rolling deploys.
//! 9. [The dashboard](crate::guide::dashboard): serving it, nesting it in
//!    your app, authorization, read-only mode, its rules against forged
//!    requests.
//! 10. [Security](crate::guide::security): what the dashboard shows and
//!     lets people do, and how to expose it.
//! 11. [Observability](crate::guide::observability): tracing spans and
//!     metrics.
//! 12. [Benchmarks](crate::guide::benchmarks): measuring `jobs`, and
//!     `jobs` beside its peers.
//! 13. [The command line](crate::guide::command_line): the `jobs` tool.
//!
//! # Coming from another job queue
//!
//! | you know | in `jobs` |
//! | --- | --- |
//! | Sidekiq `perform_async`, Hangfire `BackgroundJob.Enqueue`, River `Insert` | `my_job::enqueue(&client, args...)` ([`Client::enqueue`](crate::Client::enqueue)) |
//! | Sidekiq `perform_in`, Hangfire `BackgroundJob.Schedule` | `my_job::schedule_in(&client, delay, args...)` |
//! | River `InsertTx`, Oban `Oban.insert` in an `Ecto.Multi` | `my_job::enqueue_in_tx(&mut tx, args...)` |
//! | Hangfire `ContinueJobWith`, batch continuations | `my_job::continue_after(&client, parent, args...)`, [`Batch`](crate::Batch) |
//! | Hangfire `RecurringJob.AddOrUpdate`, Oban's cron plugin | `#[recurring(cron = "...")]`, `my_job::recurring(&client, id, cron, args...)` |
//! | Oban `{:snooze, seconds}`, River `JobSnooze` | [`JobError::snooze`](crate::JobError::snooze) |
//! | Oban `{:cancel, reason}`, River `JobCancel` | [`JobError::permanent`](crate::JobError::permanent) |
//! | Sidekiq `retry: 5`, Hangfire `[AutomaticRetry(Attempts = 5)]` | `#[job(retries = 5)]` |
//! | a worker process | a [`Server`](crate::Server) with its workers |
//!
//! The states are Hangfire's: `Scheduled`, `Enqueued`, `Processing`,
//! `Succeeded`, `Failed`, `Deleted` and `Awaiting` ([`State`](crate::State)).

// The chapters' doctests are merged into one binary (edition 2024), so
// every `#[job]` in them shares one registry: give each job a name no
// other chapter uses, or every server started in them fails with
// `Error::DuplicateJobName`.

#[doc = include_str!("getting_started.md")]
pub mod getting_started {}

#[doc = include_str!("jobs_and_arguments.md")]
pub mod jobs_and_arguments {}

#[doc = include_str!("queues_and_priorities.md")]
pub mod queues_and_priorities {}

#[doc = include_str!("retries.md")]
pub mod retries {}

#[doc = include_str!("recurring_jobs.md")]
pub mod recurring_jobs {}

#[doc = include_str!("workflows.md")]
pub mod workflows {}

#[doc = include_str!("many_servers.md")]
pub mod many_servers {}

#[doc = include_str!("deploying_and_upgrading.md")]
pub mod deploying_and_upgrading {}

#[doc = include_str!("dashboard.md")]
pub mod dashboard {}

#[doc = include_str!("security.md")]
pub mod security {}

#[doc = include_str!("observability.md")]
pub mod observability {}

#[doc = include_str!("benchmarks.md")]
pub mod benchmarks {}

#[doc = include_str!("command_line.md")]
pub mod command_line {}
