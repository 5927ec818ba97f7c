//! Generated code under strict lints: `missing_docs` must not fire on the
//! generated struct, module-like enum or helpers, nor clippy or `unused` on
//! anything the macro adds.
#![deny(clippy::all, missing_docs, unused)]
#![deny(missing_debug_implementations, unused_lifetimes, unused_qualifications)]

use jobs::prelude::*;

/// Sends the welcome mail.
#[job(queue = "mail", retries = 5, backoff = "1m")]
pub async fn send_welcome_email(
    ctx: JobContext,
    user_id: i64,
    template: String,
) -> Result<(), String> {
    let _ = (ctx.attempt(), user_id, template);
    Ok(())
}

/// Needs no arguments.
#[job]
pub async fn nightly_cleanup() {}

/// The delay before retry `retry`: 1s, 2s, 4s, ...
pub fn doubling(retry: u32) -> Duration {
    Duration::from_secs(1 << retry.min(10))
}

/// Every form of every key that takes an expression.
#[job(timeout = "30s", priority = -5, backoff = doubling)]
pub async fn with_custom_backoff() {}

/// A list of delays.
#[job(priority = 3, backoff = ["1s", "30s"])]
pub async fn with_listed_backoff() {}

/// Unique per user within an hour, one per user at once.
#[job(
    unique(by = [user_id], within = "1h", states = ["Scheduled", "Enqueued", "Processing", "Awaiting"]),
    concurrency(limit = 1, by = [user_id])
)]
pub async fn with_unique_and_concurrency(user_id: i64, note: String) {
    let _ = (user_id, note);
}

/// Unique by every argument, two at once.
#[job(unique, concurrency = 2)]
pub async fn with_unique_flag(user_id: i64) {
    let _ = user_id;
}

fn main() {}
