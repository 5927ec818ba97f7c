use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::State;

/// One move in a job's state history, as the storage recorded it.
///
/// Every move a storage makes is recorded, oldest first: a job that ran
/// once has the history `Enqueued`, `Processing`, `Succeeded`; a retry shows
/// as `Processing`, `Scheduled` (reason `"retry attempt 1 of 10"`), `Enqueued`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    /// The state the job moved into.
    pub state: State,
    /// When the move was committed (UTC, millisecond precision).
    pub at: DateTime<Utc>,
    /// Why it moved, for people: `"retry attempt 2 of 5"`, the error of a
    /// failed attempt, `"server stopping"`... `None` for ordinary moves.
    pub reason: Option<String>,
    /// Details of the move as a JSON object, e.g. `{"server": "...",
    /// "attempt": 1}` for `Processing` or `{"error": "..."}` for a retry.
    pub data: Option<serde_json::Value>,
}
