//! Batches in the contract: a set of jobs, and of nested batches, created
//! together and followed as one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::monitoring::StateCounts;
use crate::{BatchId, State};

/// The state of a batch. A batch is `Started` until every member job has
/// reached a final state and every nested batch has finished; it then
/// finishes as `Succeeded` when all of them succeeded, else as `Failed`.
/// Cancelling it makes it `Deleted`. Its continuations await these final
/// states as a job's await the job's ([`ContinueOn`](super::ContinueOn)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchState {
    /// Members are still to finish; jobs may be added.
    Started,
    /// Every member job and nested batch succeeded.
    Succeeded,
    /// Every member finished, and at least one did not succeed (failed or
    /// was deleted).
    Failed,
    /// Cancelled: its waiting members were deleted.
    Deleted,
}

impl BatchState {
    /// Every batch state.
    pub const ALL: [BatchState; 4] = [
        BatchState::Started,
        BatchState::Succeeded,
        BatchState::Failed,
        BatchState::Deleted,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            BatchState::Started => "Started",
            BatchState::Succeeded => "Succeeded",
            BatchState::Failed => "Failed",
            BatchState::Deleted => "Deleted",
        }
    }

    /// The job state a continuation of the batch sees as its parent's
    /// final state; `None` while `Started`.
    pub const fn as_parent_state(self) -> Option<State> {
        match self {
            BatchState::Started => None,
            BatchState::Succeeded => Some(State::Succeeded),
            BatchState::Failed => Some(State::Failed),
            BatchState::Deleted => Some(State::Deleted),
        }
    }
}

impl fmt::Display for BatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BatchState {
    type Err = crate::ParseStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BatchState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| crate::ParseStateError(s.to_owned()))
    }
}

/// A batch to create, on [`EnqueueParams::batches`](super::EnqueueParams::batches):
/// stored `Started` in the same transaction as the call's jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBatch {
    /// Its id, chosen by the client ([`BatchId::new`]).
    pub id: BatchId,
    /// The batch it is nested in: one created by the same call, or an
    /// existing `Started` one.
    pub parent: Option<BatchId>,
    /// Words for people (the dashboard).
    pub description: Option<String>,
}

/// A stored batch and its progress, as
/// [`MonitoringStorage::batch`](super::MonitoringStorage::batch) reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    /// Its id.
    pub id: BatchId,
    /// The batch it is nested in.
    pub parent: Option<BatchId>,
    /// Its description.
    pub description: Option<String>,
    /// Its state.
    pub state: BatchState,
    /// Its member jobs by state (nested batches' members not included):
    /// pending are those not in a final state.
    pub jobs: StateCounts,
    /// Its nested batches, in creation order.
    pub batches: Vec<BatchId>,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When it finished or was cancelled (UTC).
    pub finished_at: Option<DateTime<Utc>>,
}

impl BatchRecord {
    /// Member jobs not yet in a final state.
    pub fn pending(&self) -> u64 {
        State::ALL
            .into_iter()
            .filter(|state| !state.is_final())
            .map(|state| self.jobs.get(state))
            .sum()
    }
}

/// Which batches [`list_batches`](super::MonitoringStorage::list_batches)
/// reads: the started ones (nested ones too), newest first, or the
/// finished outermost ones (succeeded, failed or cancelled), most recently
/// finished first; one keyset page at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchQuery {
    /// Finished batches rather than started ones.
    pub finished: bool,
    /// Only batches listed after this one: the last of the previous page.
    pub before: Option<BatchId>,
    /// The most batches to read (at most [`BatchQuery::MAX_LIMIT`]).
    pub limit: usize,
}

impl BatchQuery {
    /// The largest page read at once.
    pub const MAX_LIMIT: usize = 100;

    /// The first page of started batches, 20 of them.
    pub fn started() -> Self {
        BatchQuery {
            finished: false,
            before: None,
            limit: 20,
        }
    }

    /// The first page of finished outermost batches, 20 of them.
    pub fn finished() -> Self {
        BatchQuery {
            finished: true,
            ..Self::started()
        }
    }

    /// The page after the one whose last batch is `id`.
    pub fn before(mut self, id: BatchId) -> Self {
        self.before = Some(id);
        self
    }

    /// At most `limit` batches (capped at [`BatchQuery::MAX_LIMIT`]).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.min(Self::MAX_LIMIT);
        self
    }
}
