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

fn main() {}
