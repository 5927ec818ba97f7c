//! The attribute macros of the `jobs` framework: `#[job]` and `#[recurring]`.
//!
//! Use them through the `jobs` crate (`use jobs::prelude::*;`); the generated
//! code names only `::jobs::__private::...` (or the path given with
//! `crate = "..."`), never a crate the user did not add.
#![warn(missing_docs)]

mod internals;
mod job;
mod recurring;

use proc_macro::TokenStream;

/// Turns an `async fn` into a background job.
///
/// ```ignore
/// /// Sends the welcome mail.
/// #[job(queue = "mail", retries = 5)]
/// async fn send_welcome_email(ctx: JobContext, user_id: i64, template: String) -> Result<(), MailError> {
///     Ok(())
/// }
///
/// let id = send_welcome_email::enqueue(&client, 42, "welcome".into()).await?;
/// let options = EnqueueOptions::new().queue("critical").max_attempts(1);
/// send_welcome_email::enqueue_with(&client, options, 42, "welcome".into()).await?;
/// ```
///
/// Generates, next to the unchanged function:
/// - `SendWelcomeEmail`, the argument struct (UpperCamelCase of the function's
///   name) with one public field per argument, deriving `Serialize` and
///   `Deserialize`, implementing `Debug` and `Clone` when every argument
///   does, implementing `Job`, with methods `enqueue`, `schedule_in` and
///   `schedule_at`;
/// - `send_welcome_email::{enqueue_with, enqueue, schedule_in, schedule_at}`,
///   helpers taking the arguments one by one, type-checked against the
///   function: `enqueue_with(&client, options, ...)` takes this call's
///   `EnqueueOptions` (queue, delay or time, attempts), and the other three
///   are shorthands for it;
/// - the job's registration, so that every server of the binary finds it.
///
/// Keys, all optional:
/// - `name = "..."`: the stable stored name (default: the function's name);
/// - `queue = "..."`: the default queue (default `"default"`);
/// - `retries = N`: retries after a failed attempt (default 10, as Hangfire);
/// - `backoff = ...`: the delay before each retry (default: Hangfire's
///   growing delay), one of
///   - `"30s"`: the same delay before every retry, in `ms`, `s`, `m`, `h`
///     or `d`;
///   - `["1s", "30s", "5m"]`: one delay per retry, the last one repeated
///     for the retries past the list;
///   - `my_backoff` (a path): a function `fn(u32) -> Duration` that gives
///     the delay before retry `n` (1-based);
/// - `timeout = "30s"`: the longest one attempt may run, longer than zero;
///   past it, the attempt is cancelled, fails and follows the retry policy
///   (default: the server's default timeout, if it has one);
/// - `priority = N`: the job's priority within its queue, from -32768 to
///   32767; lower numbers are fetched first (default 0);
/// - `unique`: at most one job of a key while one waits or runs
///   (`Scheduled`, `Enqueued`, `Processing`, `Awaiting`); an enqueue that
///   would make a second returns the existing job's id instead. The key is
///   the job's name and its arguments; `unique(...)` takes, in any
///   combination:
///   - `by = [customer_id, region]`: the key is made of these arguments
///     only (each a stored argument of the function, not its `JobContext`
///     nor its `#[parent]`);
///   - `within = "1h"`: the key holds within periods of this length,
///     longer than zero, counted from the Unix epoch on the storage's clock
///     (hourly periods start on the hour), and a success counts too: at
///     most one success per period;
///   - `states = ["Scheduled", "Enqueued"]`: the states in which a job of
///     the key blocks another, among `Scheduled`, `Enqueued`,
///     `Processing`, `Succeeded`, `Failed`, `Deleted` and `Awaiting`
///     (exact case);
/// - `concurrency = N`: at most N (1 or more) jobs of this name run at
///   once, across every server; the others stay `Enqueued` meanwhile;
///   `concurrency(limit = N, by = [customer_id])`: at most N at once per
///   value of these arguments (`by` as for `unique`; without it, per
///   name);
/// - `crate = "path"`: where the `jobs` facade is, when re-exported.
///
/// The function may take a `JobContext` as its first parameter; every other
/// parameter is an owned, serializable argument, not named like a helper's
/// own parameters (`client`, `options`, `delay`, `at`, `recurring_id`,
/// `cron_expression`). It returns `()` or
/// `Result<(), E>` with `E: Display`.
#[proc_macro_attribute]
pub fn job(args: TokenStream, item: TokenStream) -> TokenStream {
    job::expand(args.into(), item.into()).into()
}

/// Turns an `async fn` with no arguments (besides an optional
/// `JobContext`) into a recurring job: a `#[job]` that every server stores
/// with its schedule when it starts, and that fires on each tick.
///
/// ```ignore
/// /// Deletes expired sessions every five minutes, Berlin time.
/// #[recurring(cron = "0 */5 * * * *", tz = "Europe/Berlin")]
/// async fn purge_expired_sessions() -> anyhow::Result<()> {
///     Ok(())
/// }
/// ```
///
/// Keys:
/// - `cron = "..."` (required): 5 fields (minute hour day-of-month month
///   day-of-week) or 6 with seconds first; `@daily` and the like, `L`, `W`
///   and `#` too. Checked at compile time by the parser the scheduler uses:
///   an invalid expression, or one that never fires, is a compile error on
///   the string;
/// - `tz = "..."`: the IANA time zone of the wall clock (default `"UTC"`),
///   checked at compile time; daylight-saving transitions follow Cronos'
///   rules (a fixed time in the skipped hour fires after the jump, a fixed
///   time in the repeated hour fires once);
/// - `misfire = "once" | "skip" | "each" | "each:N"`: what to do with ticks
///   missed while no server ran: one catch-up run (default, Hangfire's
///   "relaxed"), none, or one per tick for the last N (default 100);
/// - `skip_if_running = true`: skip a tick while the previous run has not
///   finished;
/// - every key of `#[job]` (`name`, `queue`, `retries`, `backoff`,
///   `timeout`, `priority`, `crate`) but `unique` (a recurring job fires
///   once per tick already) and `concurrency` (use `skip_if_running`).
///   The recurring job's id is its job name.
///
/// A recurring job that disappears from the code stops firing and is shown
/// as missing from code, with its history kept, until removed.
#[proc_macro_attribute]
pub fn recurring(args: TokenStream, item: TokenStream) -> TokenStream {
    recurring::expand(args.into(), item.into()).into()
}
