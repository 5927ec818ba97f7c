//! Continuations in the contract: a new job that awaits a parent (a job or
//! a batch) and is decided when the parent finishes.

use std::fmt;

use crate::{BatchId, JobId, State};

/// When a continuation runs, as Hangfire's `JobContinuationOptions`: it
/// waits in `Awaiting` until its parent reaches a final state
/// (`Succeeded`, `Failed` or `Deleted`; for a batch, see
/// [`BatchState`](super::BatchState)), then moves to `Enqueued` if that
/// state is one it awaits, else to `Deleted` with the reason
/// [`PARENT_NOT_AS_AWAITED`](crate::decide::PARENT_NOT_AS_AWAITED).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContinueOn {
    /// Only when the parent succeeded (the default; Hangfire's
    /// `OnlyOnSucceededState`). For a batch: every member succeeded.
    #[default]
    Succeeded,
    /// Whatever final state the parent reached (`OnAnyFinishedState`).
    Finished,
    /// Only when the parent was deleted (`OnlyOnDeletedState`); for a
    /// batch: cancelled.
    Deleted,
}

impl ContinueOn {
    /// The parent's final states that enqueue the continuation.
    pub const fn parent_states(self) -> &'static [State] {
        match self {
            ContinueOn::Succeeded => &[State::Succeeded],
            ContinueOn::Finished => &[State::Succeeded, State::Failed, State::Deleted],
            ContinueOn::Deleted => &[State::Deleted],
        }
    }

    /// [`parent_states`](Self::parent_states) as a storage keeps them on
    /// the continuation's row: the names, comma-separated
    /// (`"Succeeded,Failed,Deleted"`), so that SQL matches the parent's
    /// state against them without deciding anything itself.
    pub fn stored(self) -> String {
        let names: Vec<&str> = self.parent_states().iter().map(|s| s.as_str()).collect();
        names.join(",")
    }

    /// The continuation's next state once its parent reached the final
    /// state `parent`: `Enqueued` when awaited, else `Deleted`.
    pub fn next_state(self, parent: State) -> State {
        if self.parent_states().contains(&parent) {
            State::Enqueued
        } else {
            State::Deleted
        }
    }
}

/// What a continuation awaits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Parent {
    /// A job: the continuation receives its result.
    Job(JobId),
    /// A batch: decided when every member (and nested batch) finished.
    Batch(BatchId),
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parent::Job(id) => write!(f, "job {id}"),
            Parent::Batch(id) => write!(f, "batch {id}"),
        }
    }
}

/// A new job's parent and when it runs after it, on
/// [`NewJob::continuation`](super::NewJob::continuation).
///
/// A storage stores the job `Awaiting` while the parent has not finished;
/// when the parent already has, it stores it decided at once (`Enqueued`
/// or `Deleted`, as [`ContinueOn::next_state`] says). An unknown parent is
/// [`Error::JobNotFound`](crate::Error::JobNotFound) or
/// [`Error::BatchNotFound`](crate::Error::BatchNotFound), and nothing of
/// the call is stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Continuation {
    /// What it awaits.
    pub parent: Parent,
    /// Which of the parent's final states enqueue it.
    pub on: ContinueOn,
}

/// The arguments of
/// [`MaintenanceStorage::resolve_awaiting`](super::MaintenanceStorage::resolve_awaiting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveAwaitingParams {
    /// The most continuations to decide in one call.
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_option_enqueues_on_its_states_and_deletes_otherwise() {
        use State::*;
        let cases = [
            (ContinueOn::Succeeded, [Enqueued, Deleted, Deleted]),
            (ContinueOn::Finished, [Enqueued, Enqueued, Enqueued]),
            (ContinueOn::Deleted, [Deleted, Deleted, Enqueued]),
        ];
        for (on, expected) in cases {
            let next: Vec<State> = [Succeeded, Failed, Deleted]
                .into_iter()
                .map(|parent| on.next_state(parent))
                .collect();
            assert_eq!(next, expected, "{on:?}");
            for state in on.parent_states() {
                assert!(
                    state.is_final(),
                    "{on:?} awaits {state}, which is not final"
                );
            }
        }
        assert_eq!(ContinueOn::Finished.stored(), "Succeeded,Failed,Deleted");
        assert_eq!(ContinueOn::default(), ContinueOn::Succeeded);
    }
}
