use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The state of a job, named as Hangfire names them.
///
/// The allowed moves between states are given by [`State::can_move_to`]; every
/// storage refuses any other move, and records each move it makes in the job's
/// state history (see [`StateChange`](crate::StateChange)).
///
/// ```text
///  Awaiting ──► Enqueued ◄──── Scheduled ◄──┐ (retry)
///                  │  ▲            ▲         │
///                  ▼  │ (requeue,  │         │
///               Processing ─ rescue)┘         │
///                  │  └──────────────────────┘
///                  ▼
///          Succeeded / Failed  ──► Deleted
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Waits for its time (`schedule_in`, `schedule_at`, or a retry's backoff).
    Scheduled,
    /// Waits in its queue for a worker.
    Enqueued,
    /// Held by a worker of a server, under a lease.
    Processing,
    /// Ran to completion.
    Succeeded,
    /// Ended in failure: attempts exhausted, a panic on the last attempt,
    /// arguments that no longer decode, or a job name no server knows.
    Failed,
    /// Removed by an operator; kept for the record until it expires.
    Deleted,
    /// Waits for a parent job to finish (a continuation).
    Awaiting,
}

impl State {
    /// Every state, in the order above.
    pub const ALL: [State; 7] = [
        State::Scheduled,
        State::Enqueued,
        State::Processing,
        State::Succeeded,
        State::Failed,
        State::Deleted,
        State::Awaiting,
    ];

    /// The name stored in the database and shown to people (`"Enqueued"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Scheduled => "Scheduled",
            State::Enqueued => "Enqueued",
            State::Processing => "Processing",
            State::Succeeded => "Succeeded",
            State::Failed => "Failed",
            State::Deleted => "Deleted",
            State::Awaiting => "Awaiting",
        }
    }

    /// Whether a job in this state has finished its life: `Succeeded`,
    /// `Failed` or `Deleted`. Finished jobs are kept for the record and expire.
    pub const fn is_final(self) -> bool {
        matches!(self, State::Succeeded | State::Failed | State::Deleted)
    }

    /// Whether a job in this state waits to run: `Scheduled`, `Enqueued` or
    /// `Awaiting` (neither running nor finished). Cancelling a batch
    /// deletes its waiting members.
    pub const fn is_waiting(self) -> bool {
        matches!(self, State::Scheduled | State::Enqueued | State::Awaiting)
    }

    /// Whether a job may move from `self` to `to`.
    ///
    /// The moves follow Hangfire's state machine:
    /// - `Scheduled` -> `Enqueued` (its time came), `Deleted`;
    /// - `Enqueued` -> `Processing` (a worker fetched it), `Scheduled`, `Deleted`;
    /// - `Processing` -> `Succeeded`, `Failed`, `Scheduled` (a retry),
    ///   `Enqueued` (requeued at shutdown or rescued after a lost lease), `Deleted`;
    /// - `Succeeded`, `Failed`, `Deleted` -> `Enqueued` or `Scheduled` (requeued
    ///   by an operator); `Succeeded` and `Failed` -> `Deleted`;
    /// - `Awaiting` -> `Enqueued` (its parent finished), `Deleted`.
    ///
    /// A state never moves to itself.
    pub const fn can_move_to(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Scheduled, Enqueued | Deleted)
                | (Enqueued, Processing | Scheduled | Deleted)
                | (
                    Processing,
                    Succeeded | Failed | Scheduled | Enqueued | Deleted
                )
                | (Succeeded | Failed, Enqueued | Scheduled | Deleted)
                | (Deleted, Enqueued | Scheduled)
                | (Awaiting, Enqueued | Deleted)
        )
    }

    /// The states a job may move to `self` from ([`can_move_to`](Self::can_move_to)),
    /// in the order of [`State::ALL`]. A storage binds this list when it
    /// moves jobs for an operator, so that it refuses every other move.
    pub fn sources(self) -> Vec<State> {
        State::ALL
            .into_iter()
            .filter(|from| from.can_move_to(self))
            .collect()
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`State`] from a name that is none of the seven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown job state `{0}`: expected one of Scheduled, Enqueued, Processing, Succeeded, Failed, Deleted, Awaiting"
)]
pub struct ParseStateError(pub String);

impl FromStr for State {
    type Err = ParseStateError;

    /// Parses the name [`State::as_str`] gives, exactly (case-sensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| ParseStateError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::State::{self, *};

    #[test]
    fn names_round_trip() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
        }
        assert!("enqueued".parse::<State>().is_err());
    }

    #[test]
    fn no_state_moves_to_itself() {
        for state in State::ALL {
            assert!(!state.can_move_to(state), "{state} -> {state}");
        }
    }

    #[test]
    fn the_life_of_a_job_is_allowed() {
        let path = [
            Scheduled, Enqueued, Processing, Scheduled, Enqueued, Processing, Succeeded,
        ];
        for pair in path.windows(2) {
            assert!(pair[0].can_move_to(pair[1]), "{} -> {}", pair[0], pair[1]);
        }
        assert!(Processing.can_move_to(Failed));
        assert!(Awaiting.can_move_to(Enqueued));
    }

    #[test]
    fn shortcuts_are_refused() {
        assert!(!Enqueued.can_move_to(Succeeded), "must be processed first");
        assert!(!Scheduled.can_move_to(Processing), "must be enqueued first");
        assert!(!Succeeded.can_move_to(Processing));
        assert!(!Awaiting.can_move_to(Processing));
        assert!(!Deleted.can_move_to(Succeeded));
    }

    #[test]
    fn sources_are_the_allowed_moves() {
        assert_eq!(
            Deleted.sources(),
            [Scheduled, Enqueued, Processing, Succeeded, Failed, Awaiting]
        );
        assert_eq!(
            Enqueued.sources(),
            [Scheduled, Processing, Succeeded, Failed, Deleted, Awaiting]
        );
    }

    #[test]
    fn final_states() {
        let finals: Vec<_> = State::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [Succeeded, Failed, Deleted]);
    }
}
