//! The attempts a server holds, from fetch until their outcome is
//! recorded: what the lease keeper renews, what shutdown interrupts, and
//! how a lost lease stops its attempt.

use std::collections::HashMap;
use std::sync::Mutex;

use jobs_core::{Attempt, CancelReason, Cancellation, FetchedJob, JobId};

/// The attempts held, by job.
#[derive(Default)]
pub(crate) struct Held {
    attempts: Mutex<HashMap<JobId, HeldAttempt>>,
}

/// An attempt this server holds.
struct HeldAttempt {
    attempt: u32,
    /// Fired to ask the attempt to stop: at shutdown (see
    /// [`Held::cancel_all`]), or when its lease was lost (see
    /// [`Held::lose`]); the job sees it through its `JobContext`.
    cancel: Cancellation,
    /// Set when the attempt ended and the completer is recording its
    /// outcome: a renewal that no longer finds the job `Processing` then
    /// saw the outcome, not a lost lease.
    recording: bool,
}

impl Held {
    /// Holds fetched jobs; returns the signal that stops each. A job
    /// fetched again while an older attempt of it is still held here stops
    /// that attempt: its lease is gone.
    pub fn hold(&self, fetched: &[FetchedJob]) -> Vec<Cancellation> {
        let mut attempts = self.attempts.lock().expect("held lock");
        fetched
            .iter()
            .map(|job| {
                let cancel = Cancellation::new();
                let held = HeldAttempt {
                    attempt: job.attempt,
                    cancel: cancel.clone(),
                    recording: false,
                };
                if let Some(older) = attempts.insert(job.id, held) {
                    older.cancel.cancel(CancelReason::Cancelled);
                }
                cancel
            })
            .collect()
    }

    /// The attempts held now, sorted by id (so that every storage call locks
    /// rows in one order).
    pub fn attempts(&self) -> Vec<Attempt> {
        let attempts = self.attempts.lock().expect("held lock");
        let mut held: Vec<_> = attempts
            .iter()
            .map(|(&id, held)| Attempt {
                id,
                attempt: held.attempt,
            })
            .collect();
        held.sort_unstable_by_key(|job| job.id);
        held
    }

    /// Asks every attempt held to stop, for `reason` (a shutdown).
    pub fn cancel_all(&self, reason: CancelReason) {
        let attempts = self.attempts.lock().expect("held lock");
        for held in attempts.values() {
            held.cancel.cancel(reason);
        }
    }

    /// Forgets an attempt, unless the job was fetched again since (a newer
    /// attempt is held under the same id).
    pub fn release(&self, job: Attempt) {
        let mut attempts = self.attempts.lock().expect("held lock");
        if attempts
            .get(&job.id)
            .is_some_and(|held| held.attempt == job.attempt)
        {
            attempts.remove(&job.id);
        }
    }

    /// Marks attempts whose outcome is being recorded (see
    /// [`HeldAttempt::recording`]).
    pub fn mark_recording(&self, jobs: impl IntoIterator<Item = Attempt>) {
        let mut attempts = self.attempts.lock().expect("held lock");
        for job in jobs {
            if let Some(held) = attempts.get_mut(&job.id)
                && held.attempt == job.attempt
            {
                held.recording = true;
            }
        }
    }

    /// Forgets an attempt whose lease the storage no longer holds for this
    /// server, and returns its signal to stop it; `None` when the attempt
    /// is gone already or its outcome is being recorded (then the storage
    /// saw the outcome: no lease was lost).
    pub fn lose(&self, job: Attempt) -> Option<Cancellation> {
        let mut attempts = self.attempts.lock().expect("held lock");
        match attempts.get(&job.id) {
            Some(held) if held.attempt == job.attempt && !held.recording => {
                attempts.remove(&job.id).map(|held| held.cancel)
            }
            _ => None,
        }
    }
}
