//! Why and when a running attempt is asked to stop: the signal behind
//! [`JobContext::cancellation_token`](crate::JobContext::cancellation_token).

use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

/// Why a running attempt was asked to stop.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The job was cancelled (`Client::cancel`), deleted or requeued by an
    /// operator, or this server lost its lease: the attempt is no longer
    /// this server's, and whatever it returns now is not recorded. The
    /// job's history holds the reason of the move.
    Cancelled,
    /// The attempt ran past the job's timeout (`#[job(timeout = "30s")]`,
    /// or the server's default): it fails with "timed out after 30s" and
    /// follows the retry policy.
    TimedOut,
    /// The server is shutting down gracefully. A job that returns an
    /// error now is requeued without counting the attempt (as Hangfire
    /// does with its shutdown token); one that returns `Ok` succeeded.
    Shutdown,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelReason::Cancelled => "cancelled",
            CancelReason::TimedOut => "timed out",
            CancelReason::Shutdown => "server shutting down",
        })
    }
}

/// The stop signal of one attempt: a [`CancellationToken`] and the
/// reason it fired. Cheap to clone; every clone sees the same signal.
///
/// The server holds one per running attempt and fires it; the job sees it
/// through its [`JobContext`](crate::JobContext). The first reason given
/// is kept: a timeout that fires after a shutdown began stays a shutdown.
#[derive(Clone, Debug, Default)]
pub struct Cancellation {
    token: CancellationToken,
    reason: Arc<OnceLock<CancelReason>>,
}

impl Cancellation {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal for `reason`; a signal fired already keeps its
    /// first reason.
    pub fn cancel(&self, reason: CancelReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Why the signal fired; `None` while it has not.
    pub fn reason(&self) -> Option<CancelReason> {
        self.reason.get().copied()
    }

    /// Whether the signal fired.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The token that fires with the signal: pass it to code that takes a
    /// `CancellationToken`, or `select!` on
    /// [`cancelled`](CancellationToken::cancelled).
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Completes when the signal fires; at once if it has.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_is_kept() {
        let signal = Cancellation::new();
        assert_eq!(signal.reason(), None);
        assert!(!signal.is_cancelled());
        let seen_by_the_job = signal.clone();
        signal.cancel(CancelReason::Shutdown);
        signal.cancel(CancelReason::TimedOut);
        assert!(seen_by_the_job.is_cancelled());
        assert!(seen_by_the_job.token().is_cancelled());
        assert_eq!(seen_by_the_job.reason(), Some(CancelReason::Shutdown));
    }
}
