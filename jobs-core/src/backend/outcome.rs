//! How an attempt ended, and the columns a storage writes for it.

use std::time::Duration;

use super::jobs::Attempt;
use crate::State;

/// How an attempt ended, as [`JobStorage::finish`](super::JobStorage::finish) records it.
///
/// Texts (reasons, errors) may come from user code: storages keep them
/// through [`storable_text`](crate::storable_text) (NUL replaced, cut at
/// [`MAX_TEXT_LEN`](crate::MAX_TEXT_LEN)), so any text can be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The job ran to completion: `Succeeded`, keeping its result.
    Succeeded {
        /// What the job returned, as JSON (at most
        /// [`MAX_RESULT_LEN`](crate::MAX_RESULT_LEN)); `None` for nothing.
        result: Option<String>,
    },
    /// The job failed for good: `Failed`, with the reason (the job's error
    /// text, or what the server could not do, e.g. "no job named `x` is
    /// registered").
    Failed {
        /// Why, recorded as the history's reason.
        reason: String,
    },
    /// The attempt failed and the job gets another: `Scheduled`, due after
    /// `delay` (a retry, as Hangfire records one).
    Retry {
        /// How long from now the job waits in `Scheduled`.
        delay: Duration,
        /// The history's reason, e.g. `"retry attempt 1 of 10"`.
        reason: String,
        /// The failed attempt's error, kept in the history's data as
        /// `{"error": ...}`.
        error: String,
        /// Whether the failed attempt is forgiven: then the job's
        /// `max_attempts` grows by one, so it does not count against the job
        /// (used when this server cannot run the job but another can).
        forgive: bool,
    },
    /// The attempt ends unfinished and the job waits in its queue again:
    /// `Enqueued`. A server giving an attempt back (shutdown, or fetched
    /// ahead and never started) forgives it; a rescue after a lost lease
    /// does not.
    Requeue {
        /// The history's reason, e.g. `"server stopping"`.
        reason: String,
        /// Whether the attempt is forgiven: then the job's `max_attempts`
        /// grows by one (the attempt number, which fences, only ever grows).
        forgive: bool,
    },
    /// The attempt's lease expired (its server died or lost the database):
    /// `Enqueued` again when attempts are left, else `Failed`; the lost
    /// attempt counts. Made by [`decide::rescued`](crate::decide::rescued).
    Rescued {
        /// The history's reason, naming the server.
        reason: String,
        /// The server whose lease expired, kept in the history's data with
        /// the attempt: `{"server": ..., "attempt": ...}`.
        server: Option<String>,
        /// The attempt that was lost.
        attempt: u32,
        /// Whether the job may run again (`Enqueued`) or not (`Failed`).
        attempts_left: bool,
    },
}

/// The longest a job waits in `Scheduled` after an [`Outcome::Retry`]: a
/// longer delay (a backoff grown past any sense, `Duration::MAX`) is stored
/// as this, 100 years, so that every storage can add it to its clock.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The columns a storage writes for an [`Outcome`]: the decision is made
/// here once, in Rust, and each storage binds these values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOutcome {
    /// The job's new state.
    pub state: State,
    /// The move's reason, storable (see [`storable_text`](crate::storable_text)).
    pub reason: Option<String>,
    /// The move's data, a JSON object as text, storable.
    pub data: Option<String>,
    /// For `Scheduled`: due this long after the storage's now, at most
    /// [`MAX_RETRY_DELAY`].
    pub run_after: Option<Duration>,
    /// Whether the job's `max_attempts` grows by one (a forgiven attempt).
    pub grant_attempt: bool,
    /// Whether the job's `server` is cleared (it waits again), rather than
    /// kept as the server that finished it.
    pub release_server: bool,
    /// The job's result (JSON) to keep: a success's; `None` clears it.
    pub result: Option<String>,
}

impl Outcome {
    /// The state the job moves to, as [`stored`](Self::stored) says,
    /// without making the stored texts.
    pub fn state(&self) -> State {
        match self {
            Outcome::Succeeded { .. } => State::Succeeded,
            Outcome::Failed { .. } => State::Failed,
            Outcome::Retry { .. } => State::Scheduled,
            Outcome::Requeue { .. } => State::Enqueued,
            Outcome::Rescued { attempts_left, .. } => {
                if *attempts_left {
                    State::Enqueued
                } else {
                    State::Failed
                }
            }
        }
    }

    /// The move's reason, as given (not yet made storable); `None` for a
    /// success.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Succeeded { .. } => None,
            Outcome::Failed { reason }
            | Outcome::Retry { reason, .. }
            | Outcome::Requeue { reason, .. }
            | Outcome::Rescued { reason, .. } => Some(reason),
        }
    }

    /// What a storage writes for this outcome.
    pub fn stored(&self) -> StoredOutcome {
        let text = |text: &str| crate::storable_text(text).into_owned();
        match self {
            Outcome::Succeeded { result } => StoredOutcome {
                state: State::Succeeded,
                reason: None,
                data: None,
                run_after: None,
                grant_attempt: false,
                release_server: false,
                result: result.clone(),
            },
            Outcome::Failed { reason } => StoredOutcome {
                state: State::Failed,
                reason: Some(text(reason)),
                data: None,
                run_after: None,
                grant_attempt: false,
                release_server: false,
                result: None,
            },
            Outcome::Retry {
                delay,
                reason,
                error,
                forgive,
            } => StoredOutcome {
                state: State::Scheduled,
                reason: Some(text(reason)),
                data: Some(serde_json::json!({ "error": text(error) }).to_string()),
                run_after: Some((*delay).min(MAX_RETRY_DELAY)),
                grant_attempt: *forgive,
                release_server: true,
                result: None,
            },
            Outcome::Requeue { reason, forgive } => StoredOutcome {
                state: State::Enqueued,
                reason: Some(text(reason)),
                data: None,
                run_after: None,
                grant_attempt: *forgive,
                release_server: true,
                result: None,
            },
            Outcome::Rescued {
                reason,
                server,
                attempt,
                attempts_left,
            } => StoredOutcome {
                state: if *attempts_left {
                    State::Enqueued
                } else {
                    State::Failed
                },
                reason: Some(text(reason)),
                data: Some(
                    serde_json::json!({
                        "server": server.as_deref().map(text),
                        "attempt": attempt,
                    })
                    .to_string(),
                ),
                run_after: None,
                grant_attempt: false,
                release_server: true,
                result: None,
            },
        }
    }

    /// Whether the outcome puts the job back in its queue (`Enqueued`),
    /// so that idle servers should look.
    pub fn requeues(&self) -> bool {
        matches!(
            self,
            Outcome::Requeue { .. }
                | Outcome::Rescued {
                    attempts_left: true,
                    ..
                }
        )
    }
}

/// One attempt's outcome, for [`JobStorage::finish`](super::JobStorage::finish).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOutcome {
    /// The attempt that ended.
    pub job: Attempt,
    /// How it ended.
    pub outcome: Outcome,
}

/// The arguments of [`JobStorage::finish`](super::JobStorage::finish).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinishParams {
    /// The outcomes, at most one per job; all are recorded in one statement.
    pub jobs: Vec<JobOutcome>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every outcome moves a `Processing` job by a move the state machine
    /// allows, so `finish` never makes a forbidden one.
    #[test]
    fn every_outcome_is_an_allowed_move_from_processing() {
        let outcomes = [
            Outcome::Succeeded { result: None },
            Outcome::Succeeded {
                result: Some("[1]".into()),
            },
            Outcome::Failed { reason: "x".into() },
            Outcome::Retry {
                delay: Duration::MAX,
                reason: "r".into(),
                error: "e".into(),
                forgive: false,
            },
            Outcome::Requeue {
                reason: "r".into(),
                forgive: true,
            },
            Outcome::Rescued {
                reason: "r".into(),
                server: None,
                attempt: 1,
                attempts_left: true,
            },
            Outcome::Rescued {
                reason: "r".into(),
                server: Some("s".into()),
                attempt: 2,
                attempts_left: false,
            },
        ];
        for outcome in outcomes {
            let stored = outcome.stored();
            assert!(
                State::Processing.can_move_to(stored.state),
                "{outcome:?} -> {}",
                stored.state
            );
        }
        let retry = Outcome::Retry {
            delay: Duration::MAX,
            reason: String::new(),
            error: String::new(),
            forgive: false,
        };
        assert_eq!(retry.stored().run_after, Some(MAX_RETRY_DELAY));
    }
}
