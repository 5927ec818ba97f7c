//! Decisions about a job's next state, and the reasons recorded with them:
//! made here once for the server and every storage (which bind the
//! results as parameters), never in a storage's SQL.

use crate::{Error, ExpiredLease, JobError, Outcome, Parent, Result, RetryPolicy, State};

/// The history's reason when a `Scheduled` job's time came.
pub const SCHEDULED_TIME_REACHED: &str = "scheduled time reached";

/// The history's reason when an operator requeues a job.
pub const REQUEUED_BY_OPERATOR: &str = "requeued by an operator";

/// The history's reason when an operator deletes a job.
pub const DELETED_BY_OPERATOR: &str = "deleted by an operator";

/// The history's reason when a job is cancelled (`Client::cancel`).
pub const CANCELLED: &str = "cancelled";

/// The history's reason when a continuation's parent (a job or a batch)
/// reached a final state it awaits: it is enqueued.
pub const PARENT_AS_AWAITED: &str = "its parent finished as awaited";

/// The history's reason when a continuation's parent reached a final
/// state it does not await: it is deleted.
pub const PARENT_NOT_AS_AWAITED: &str = "its parent did not finish as awaited";

/// The history's reason when a continuation's parent job no longer exists
/// (it expired or was removed): it is deleted.
pub const PARENT_GONE: &str = "its parent no longer exists";

/// The history's reason when a batch's waiting member is deleted because
/// the batch was cancelled.
pub const BATCH_CANCELLED: &str = "its batch was cancelled";

/// The history's reason of a continuation decided when its parent
/// finished: [`PARENT_AS_AWAITED`] when it moves to `Enqueued`, else
/// [`PARENT_NOT_AS_AWAITED`].
pub fn awaited_reason(next: State) -> &'static str {
    if next == State::Enqueued {
        PARENT_AS_AWAITED
    } else {
        PARENT_NOT_AS_AWAITED
    }
}

/// The history's data of a continuation decided when its parent finished
/// as `parent_state`: `{"parent": 12, "parent_state": "Succeeded"}`, or
/// `{"parent_batch": "…", "parent_state": …}` for a batch. Storages that
/// decide continuations in SQL build the same object.
pub fn awaited_data(parent: &Parent, parent_state: State) -> String {
    let parent = match parent {
        Parent::Job(id) => ("parent", serde_json::json!(id.0)),
        Parent::Batch(id) => ("parent_batch", serde_json::json!(id.as_str())),
    };
    let mut data = serde_json::Map::new();
    data.insert(parent.0.to_owned(), parent.1);
    data.insert(
        "parent_state".to_owned(),
        serde_json::json!(parent_state.as_str()),
    );
    serde_json::Value::Object(data).to_string()
}

/// The states an operator's move to `to` takes jobs from (the moves
/// [`State::can_move_to`] allows): a storage's
/// [`move_jobs`](crate::JobStorage::move_jobs) binds this list and leaves
/// every other job alone.
///
/// # Errors
/// [`Error::Config`] when `to` is not a state an operator moves jobs to:
/// only `Enqueued` (requeue) and `Deleted` are.
pub fn operator_sources(to: State) -> Result<Vec<State>> {
    match to {
        State::Enqueued | State::Deleted => Ok(to.sources()),
        _ => Err(Error::Config(format!(
            "an operator moves jobs to Enqueued or Deleted, not to {to}"
        ))),
    }
}

/// Whether a job whose attempt number `attempt` ended unfinished may run
/// again: it has used fewer than `max_attempts`. The one rule behind both
/// [`failed_attempt`] and [`rescued`].
pub const fn has_attempts_left(attempt: u32, max_attempts: u32) -> bool {
    attempt < max_attempts
}

/// What follows a failed attempt, as the job's error chose
/// ([`JobError`]):
/// - a snooze: `Scheduled` after its delay, the attempt forgiven (its
///   `max_attempts` grows by one), with the reason "snoozed for 5m";
/// - a retryable failure while attempts are left: a retry after the
///   delay the error chose ([`JobError::retry_after`]) or else the
///   policy's backoff, as Hangfire's `AutomaticRetry` does (reason
///   `"retry attempt 2 of 10"`);
/// - otherwise `Failed` with the error as the reason. A job this server
///   cannot run has no policy here (`None`): it fails (a snooze is not a
///   failure: it is kept).
pub fn failed_attempt(
    policy: Option<RetryPolicy>,
    attempt: u32,
    max_attempts: u32,
    error: &JobError,
) -> Outcome {
    if let Some(delay) = error.snoozed_for() {
        return Outcome::Retry {
            delay,
            reason: error.message().to_owned(),
            error: error.message().to_owned(),
            forgive: true,
        };
    }
    match policy {
        Some(policy) if error.is_retryable() && has_attempts_left(attempt, max_attempts) => {
            Outcome::Retry {
                delay: error.retry_delay().unwrap_or_else(|| policy.delay(attempt)),
                reason: format!("retry attempt {attempt} of {}", max_attempts - 1),
                error: error.message().to_owned(),
                forgive: false,
            }
        }
        _ => Outcome::Failed {
            reason: error.message().to_owned(),
        },
    }
}

/// What a rescue records for an attempt whose lease expired: `Enqueued`
/// again when attempts are left (the lost attempt counts), else `Failed`;
/// the reason names the server (River's rescuer, Hangfire's invisibility
/// timeout).
pub fn rescued(lease: &ExpiredLease) -> Outcome {
    let server = lease.server.as_deref().unwrap_or("?");
    let attempts_left = has_attempts_left(lease.job.attempt, lease.max_attempts);
    let reason = format!(
        "rescued: the lease of server {server} expired (the server stopped renewing it: it died, or lost the database for longer than the lease){}",
        if attempts_left {
            ""
        } else {
            "; no attempts left"
        }
    );
    Outcome::Rescued {
        reason,
        server: lease.server.clone(),
        attempt: lease.job.attempt,
        attempts_left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attempt, Backoff, JobId, State};
    use std::time::Duration;

    fn lease(attempt: u32, max_attempts: u32) -> ExpiredLease {
        ExpiredLease {
            job: Attempt {
                id: JobId(1),
                attempt,
            },
            name: "job".into(),
            queue: "default".into(),
            max_attempts,
            server: Some("host:1:ab".into()),
        }
    }

    #[test]
    fn a_failed_attempt_is_retried_while_attempts_are_left() {
        let policy = RetryPolicy::retries(2).with_backoff(Backoff::Fixed(Duration::from_secs(7)));
        let boom = JobError::new("boom");
        let retry = failed_attempt(Some(policy), 1, 3, &boom);
        assert_eq!(
            retry,
            Outcome::Retry {
                delay: Duration::from_secs(7),
                reason: "retry attempt 1 of 2".into(),
                error: "boom".into(),
                forgive: false
            }
        );
        let last = failed_attempt(Some(policy), 3, 3, &boom);
        assert_eq!(
            last,
            Outcome::Failed {
                reason: "boom".into()
            }
        );
        let hopeless = failed_attempt(Some(policy), 1, 3, &JobError::permanent("bad args"));
        assert_eq!(hopeless.stored().state, State::Failed);
        assert_eq!(
            failed_attempt(None, 1, 3, &boom).stored().state,
            State::Failed
        );
    }

    #[test]
    fn the_job_may_choose_its_retry_delay_or_snooze() {
        let policy = RetryPolicy::retries(2).with_backoff(Backoff::Fixed(Duration::from_secs(7)));
        let soon = JobError::new("busy").retry_after(Duration::from_secs(2));
        match failed_attempt(Some(policy), 1, 3, &soon) {
            Outcome::Retry { delay, forgive, .. } => {
                assert_eq!(delay, Duration::from_secs(2));
                assert!(!forgive, "a chosen delay still counts the attempt");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            failed_attempt(Some(policy), 3, 3, &soon).stored().state,
            State::Failed,
            "no attempt left"
        );
        let snooze = JobError::snooze(Duration::from_secs(300));
        // Even on the last attempt: a snooze is not a failure.
        let stored = failed_attempt(Some(policy), 3, 3, &snooze).stored();
        assert_eq!(stored.state, State::Scheduled);
        assert!(stored.grant_attempt, "a snooze does not count the attempt");
        assert_eq!(stored.run_after, Some(Duration::from_secs(300)));
        assert_eq!(stored.reason.as_deref(), Some("snoozed for 5m"));
    }

    #[test]
    fn a_rescue_enqueues_while_attempts_are_left_and_names_the_server() {
        let again = rescued(&lease(1, 2)).stored();
        assert_eq!(again.state, State::Enqueued);
        assert!(!again.grant_attempt, "the lost attempt counts");
        assert!(again.release_server);
        assert!(again.reason.unwrap().contains("server host:1:ab expired"));
        let data: serde_json::Value = serde_json::from_str(&again.data.unwrap()).unwrap();
        assert_eq!(
            data,
            serde_json::json!({"server": "host:1:ab", "attempt": 1})
        );
        let failed = rescued(&lease(2, 2)).stored();
        assert_eq!(failed.state, State::Failed);
        assert!(failed.release_server);
        assert!(failed.reason.unwrap().ends_with("; no attempts left"));
    }
}
