use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The identifier of a stored job.
///
/// Assigned by the storage when the job is enqueued; positive, increasing in
/// enqueue order within one storage, never reused. Displayed as its number
/// (`JobId(42)` prints `42`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl JobId {
    /// The raw number as stored in the database.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<i64> for JobId {
    fn from(id: i64) -> Self {
        JobId(id)
    }
}

impl FromStr for JobId {
    type Err = std::num::ParseIntError;

    /// Parses the decimal form that [`Display`](fmt::Display) prints.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(JobId)
    }
}
