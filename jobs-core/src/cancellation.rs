//! Why and when a running attempt is asked to stop: the signal behind
//! [`JobContext::cancellation_token`](crate::JobContext::cancellation_token).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

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
    /// or the server's default): unless it returns `Ok` (it succeeded) or
    /// an outcome it chose ([`JobError::permanent`](crate::JobError::permanent),
    /// a snooze), it fails with "timed out after 30s" and follows the
    /// retry policy.
    TimedOut,
    /// The server is shutting down gracefully. A job that returns a plain
    /// error now is requeued without counting the attempt (as Hangfire
    /// does with its shutdown token); one that returns `Ok` succeeded,
    /// and one that returns an outcome it chose keeps it.
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
/// through its [`JobContext`](crate::JobContext), whose token is a child
/// that the job may cancel itself without stopping the attempt. The first reason given
/// is kept, except that [`CancelReason::Cancelled`] replaces any other:
/// an attempt that is no longer this server's must stop whatever else
/// asked it to first (a cancel during a shutdown).
#[derive(Clone, Debug, Default)]
pub struct Cancellation {
    token: CancellationToken,
    inner: Arc<Inner>,
}

/// What the clones of a [`Cancellation`] share beside the token.
#[derive(Debug, Default)]
struct Inner {
    /// The reason kept, [`NO_REASON`] while none.
    reason: AtomicU8,
    /// Notified when the reason becomes [`CancelReason::Cancelled`].
    revoked: Notify,
}

/// The stored reason before the signal fired.
const NO_REASON: u8 = 0;

impl CancelReason {
    fn code(self) -> u8 {
        match self {
            CancelReason::Cancelled => 1,
            CancelReason::TimedOut => 2,
            CancelReason::Shutdown => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(CancelReason::Cancelled),
            2 => Some(CancelReason::TimedOut),
            3 => Some(CancelReason::Shutdown),
            _ => None,
        }
    }
}

impl Cancellation {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal for `reason` (see the type's docs for which
    /// reason is kept).
    pub fn cancel(&self, reason: CancelReason) {
        if reason == CancelReason::Cancelled {
            self.inner.reason.store(reason.code(), Ordering::SeqCst);
            self.inner.revoked.notify_waiters();
        } else {
            let _ = self.inner.reason.compare_exchange(
                NO_REASON,
                reason.code(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
        self.token.cancel();
    }

    /// Why the signal fired; `None` while it has not.
    pub fn reason(&self) -> Option<CancelReason> {
        CancelReason::from_code(self.inner.reason.load(Ordering::SeqCst))
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

    /// Completes when the signal fires for [`CancelReason::Cancelled`];
    /// at once if it has.
    pub async fn revoked(&self) {
        loop {
            let notified = self.inner.revoked.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.reason() == Some(CancelReason::Cancelled) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_replaces_an_earlier_reason() {
        let signal = Cancellation::new();
        signal.cancel(CancelReason::Shutdown);
        signal.cancel(CancelReason::Cancelled);
        signal.cancel(CancelReason::TimedOut);
        assert_eq!(signal.reason(), Some(CancelReason::Cancelled));
    }

    #[test]
    fn the_job_cancelling_its_token_does_not_fire_the_signal() {
        let signal = Cancellation::new();
        let ctx = crate::JobContext::new(
            crate::JobId(1),
            "job",
            "default".into(),
            1,
            1,
            chrono::Utc::now(),
        )
        .with_cancellation(signal.clone());
        ctx.cancellation_token().cancel();
        assert!(!signal.is_cancelled());
        assert!(!ctx.is_cancelled(), "the attempt goes on");
        assert_eq!(signal.reason(), None);
        signal.cancel(CancelReason::TimedOut);
        assert!(ctx.is_cancelled());
        assert_eq!(ctx.cancel_reason(), Some(CancelReason::TimedOut));
    }

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
