//! Paused queues and job names: their jobs stay `Enqueued` and no server
//! fetches them until they are resumed (Sidekiq's and Oban's queue pause,
//! and the same for one job name).

use std::fmt;

use chrono::{DateTime, Utc};

/// What is paused: a queue, or a job name (in every queue).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PauseTarget {
    /// Every job of this queue.
    Queue(String),
    /// Every job of this name ([`Job::NAME`](crate::Job::NAME)).
    Job(String),
}

impl PauseTarget {
    /// The kind stored: `"queue"` or `"job"`.
    pub fn kind(&self) -> &'static str {
        match self {
            PauseTarget::Queue(_) => "queue",
            PauseTarget::Job(_) => "job",
        }
    }

    /// The queue's or the job's name.
    pub fn name(&self) -> &str {
        match self {
            PauseTarget::Queue(name) | PauseTarget::Job(name) => name,
        }
    }

    /// The target of a stored `kind` and `name`; `None` for an unknown
    /// kind.
    pub fn from_stored(kind: &str, name: String) -> Option<Self> {
        match kind {
            "queue" => Some(PauseTarget::Queue(name)),
            "job" => Some(PauseTarget::Job(name)),
            _ => None,
        }
    }
}

impl fmt::Display for PauseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind(), self.name())
    }
}

/// A paused queue or job name, as listed by
/// [`MonitoringStorage::paused`](super::MonitoringStorage::paused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paused {
    /// What is paused.
    pub target: PauseTarget,
    /// Since when (UTC, the storage's clock).
    pub paused_at: DateTime<Utc>,
}

/// The arguments of [`JobStorage::set_paused`](super::JobStorage::set_paused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetPausedParams {
    /// The queue or job name.
    pub target: PauseTarget,
    /// `true` to pause, `false` to resume.
    pub paused: bool,
}
