//! The jobs a recurring job enqueues: one per tick, or one triggered by
//! hand, each saying where it came from in its first history entry.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::backend::{NewJob, RecurringDefinition};

/// The run of `definition` for `tick`: `Enqueued` at once, with the reason
/// "recurring job `id`, tick `time`" and the data
/// `{"recurring_job": id, "tick": time}` (RFC 3339, UTC).
pub fn tick_job(definition: &RecurringDefinition, tick: DateTime<Utc>) -> NewJob {
    let tick = tick.to_rfc3339_opts(SecondsFormat::Secs, true);
    run(
        definition,
        format!("recurring job `{}`, tick {tick}", definition.id),
        serde_json::json!({ "recurring_job": definition.id, "tick": tick }),
    )
}

/// A run of `definition` triggered by hand, off its schedule: the reason
/// "recurring job `id`, triggered" and the data
/// `{"recurring_job": id, "triggered": true}`.
pub fn triggered_job(definition: &RecurringDefinition) -> NewJob {
    run(
        definition,
        format!("recurring job `{}`, triggered", definition.id),
        serde_json::json!({ "recurring_job": definition.id, "triggered": true }),
    )
}

fn run(definition: &RecurringDefinition, reason: String, data: serde_json::Value) -> NewJob {
    NewJob {
        reason: Some(reason),
        data: Some(data.to_string()),
        ..NewJob::new(
            definition.job_name.clone(),
            definition.queue.clone(),
            definition.args.clone(),
            definition.max_attempts,
        )
    }
}
