//! When a storage looks for jobs under a concurrency limit: they wait
//! apart from the others (an index of their own), and looking for them
//! costs a statement or two, so a fetch does it only when some were
//! waiting at the last look, when the last look is old, or when the other
//! jobs did not fill the fetch.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a server busy with other jobs looks for limited ones when
/// the last look found none: a limited job enqueued meanwhile starts
/// within about this (at once on an idle server, which looks whenever
/// its fetch comes back short).
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// When to look for limited jobs.
#[derive(Debug)]
pub(crate) struct Probe {
    /// Whether the last look found limited jobs waiting.
    waiting: AtomicBool,
    /// When the last look was.
    last: Mutex<Option<Instant>>,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            waiting: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }
}

impl Probe {
    /// Whether to look now: limited jobs were waiting at the last look,
    /// or it is [`PROBE_INTERVAL`] old.
    pub(crate) fn is_due(&self) -> bool {
        self.waiting.load(Ordering::Relaxed)
            || self
                .last
                .lock()
                .map(|last| last.is_none_or(|last| last.elapsed() >= PROBE_INTERVAL))
                .unwrap_or(true)
    }

    pub(crate) fn looked(&self, waiting: bool) {
        self.waiting.store(waiting, Ordering::Relaxed);
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Instant::now());
        }
    }
}
