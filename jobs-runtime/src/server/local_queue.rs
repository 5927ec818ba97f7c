//! How many jobs a server fetches ahead of its free workers.
//!
//! Jobs fetched ahead wait in the server's local queue, leased and with an
//! attempt counted, where no other server can take them and where a job of
//! a higher-priority queue enqueued later cannot pass them. So they are
//! fetched only as far ahead as the workers will start them within
//! [`PREFETCH_HORIZON`], by the recent time of an attempt: thousands of
//! no-op jobs, one or two per worker for jobs of 50 ms, none for jobs of
//! seconds; never more than the configured prefetch.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The longest a job fetched ahead should wait in the local queue for a
/// worker, at the recent pace of the workers.
pub const PREFETCH_HORIZON: Duration = Duration::from_millis(50);

/// The accounting of the local queue, shared by the fetcher (which fills
/// it) and the dispatcher and job tasks (which empty it).
#[derive(Debug, Default)]
pub(crate) struct LocalQueue {
    /// Jobs fetched and not started yet.
    queued: AtomicUsize,
    /// Notified whenever a job leaves the queue or a worker frees up.
    changed: Notify,
    /// A moving average of an attempt's duration in microseconds; 0 until
    /// the first attempt ends.
    attempt_micros: AtomicU64,
}

impl LocalQueue {
    /// Counts `jobs` put in the queue.
    pub fn put(&self, jobs: usize) {
        self.queued.fetch_add(jobs, Ordering::SeqCst);
    }

    /// Counts one job taken out of the queue, and wakes a waiting fetcher.
    pub fn take(&self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Wakes a waiting fetcher: a worker is free.
    pub fn worker_freed(&self) {
        self.changed.notify_waiters();
    }

    /// The notification [`take`](Self::take) and
    /// [`worker_freed`](Self::worker_freed) send.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    /// Records how long an attempt ran (a moving average over about the
    /// last eight).
    pub fn record_attempt(&self, duration: Duration) {
        let sample = u64::try_from(duration.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self
            .attempt_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |average| {
                Some(if average == 0 {
                    sample
                } else {
                    average - average / 8 + sample / 8
                })
            });
    }

    /// How many more jobs to fetch now, given the free workers: those the
    /// workers can start at once plus those they will start within
    /// [`PREFETCH_HORIZON`], at most `prefetch` ahead, less what already
    /// waits in the queue.
    pub fn room(&self, workers: usize, free_workers: usize, prefetch: usize) -> usize {
        let ahead = match self.attempt_micros.load(Ordering::Relaxed) {
            // Nothing ran yet: one job ahead per worker.
            0 => workers,
            micros => {
                let horizon = u64::try_from(PREFETCH_HORIZON.as_micros()).unwrap_or(u64::MAX);
                let per_worker = usize::try_from(horizon / micros).unwrap_or(usize::MAX);
                workers.saturating_mul(per_worker)
            }
        }
        .min(prefetch);
        (free_workers + ahead).saturating_sub(self.queued.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_jobs_are_fetched_far_ahead_long_ones_not_at_all() {
        let queue = LocalQueue::default();
        assert_eq!(
            queue.room(4, 4, 100),
            8,
            "nothing ran yet: a worker's worth ahead"
        );
        for _ in 0..50 {
            queue.record_attempt(Duration::from_micros(10));
        }
        assert_eq!(queue.room(4, 0, 100), 100, "no-op jobs: the whole prefetch");
        for _ in 0..50 {
            queue.record_attempt(Duration::from_millis(25));
        }
        assert_eq!(
            queue.room(4, 0, 100),
            8,
            "25 ms jobs: two per worker within 50 ms"
        );
        for _ in 0..50 {
            queue.record_attempt(Duration::from_secs(3));
        }
        assert_eq!(queue.room(4, 1, 100), 1, "long jobs: only for free workers");
    }

    #[test]
    fn what_waits_in_the_queue_counts() {
        let queue = LocalQueue::default();
        queue.record_attempt(Duration::from_millis(25));
        queue.put(6);
        assert_eq!(queue.room(4, 0, 100), 2);
        queue.put(2);
        assert_eq!(queue.room(4, 0, 100), 0);
        queue.take();
        assert_eq!(queue.room(4, 0, 100), 1);
    }
}
