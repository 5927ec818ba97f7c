//! Writes what running jobs record through their `JobContext`: log lines
//! and progress, gathered for up to [`GATHER`] and written in one storage
//! call ([`JobStorage::write_log`](jobs_core::JobStorage::write_log)), so
//! that a job logging in a loop costs its worker nothing but a channel
//! send. Parameters are read and written at once, through the storage.
//!
//! Nothing here holds back a job or an outcome: while the storage is away
//! the lines wait (at most [`MAX_PENDING`], the oldest dropped past it)
//! with a doubling backoff that is logged; a write the storage refuses
//! loses its own lines only, with a warning. At shutdown what is left is
//! written once more. Progress is kept per attempt, the latest value
//! only, so a job reporting it in a hot loop sends nothing more than one
//! wake-up per write. Lines are written at least once: a write whose
//! commit went through but whose answer was lost is written again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{
    Attempt, BoxFuture, ContextSink, JobId, JobParameters, JobProgress, LogLine, Result,
    SetParametersParams, WriteLogParams,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::Storage;

/// How long lines are gathered after the first one before they are
/// written: a line reaches the storage within about this.
pub const GATHER: Duration = Duration::from_millis(500);
/// Lines and progress values written in one call at most.
const MAX_BATCH: usize = 5000;
/// The most lines kept waiting while the storage is away; past it the
/// oldest are dropped.
const MAX_PENDING: usize = 100_000;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One thing a running job recorded.
enum Entry {
    Line {
        job: Attempt,
        at: Instant,
        text: String,
    },
    /// Progress was reported: it waits in [`JobLogSink::progress`].
    Progress,
}

/// The server's [`ContextSink`]: given to every attempt's context.
pub(crate) struct JobLogSink {
    entries: mpsc::UnboundedSender<Entry>,
    /// The latest progress of each attempt that reported one since the
    /// writer last took them.
    progress: Arc<Mutex<HashMap<Attempt, f64>>>,
    storage: Storage,
}

impl JobLogSink {
    /// The sink, and the receiver that [`run`] drains.
    pub(crate) fn new(storage: Storage) -> (Arc<Self>, Receiver) {
        let (entries, receiver) = mpsc::unbounded_channel();
        let progress = Arc::new(Mutex::new(HashMap::new()));
        let sink = JobLogSink {
            entries,
            progress: progress.clone(),
            storage,
        };
        let receiver = Receiver {
            entries: receiver,
            progress,
        };
        (Arc::new(sink), receiver)
    }
}

/// What [`run`] reads.
pub(crate) struct Receiver {
    entries: mpsc::UnboundedReceiver<Entry>,
    progress: Arc<Mutex<HashMap<Attempt, f64>>>,
}

impl ContextSink for JobLogSink {
    fn log(&self, job: Attempt, text: String) {
        // The writer outlives every job task; once it has gone, the
        // line has nowhere to go.
        let _ = self.entries.send(Entry::Line {
            job,
            at: Instant::now(),
            text,
        });
    }

    fn progress(&self, job: Attempt, progress: f64) {
        let first = self
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(job, progress)
            .is_none();
        if first {
            let _ = self.entries.send(Entry::Progress);
        }
    }

    fn parameters(&self, id: JobId) -> BoxFuture<'_, Result<JobParameters>> {
        Box::pin(self.storage.backend().job_parameters(id))
    }

    fn set_parameters(&self, id: JobId, parameters: JobParameters) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.storage.backend().set_parameters(SetParametersParams {
            job: id,
            parameters,
        }))
    }
}

/// Writes what arrives until `stop`, then what is left, once.
pub(crate) async fn run(storage: Storage, receiver: Receiver, stop: CancellationToken) {
    let Receiver {
        entries: mut receiver,
        progress: reported,
    } = receiver;
    let mut pending = Pending {
        reported,
        ..Pending::default()
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        if pending.is_empty() {
            let mut first = Vec::new();
            tokio::select! {
                received = receiver.recv_many(&mut first, MAX_BATCH) => {
                    if received == 0 { break; }
                    pending.extend(first);
                }
                () = stop.cancelled() => break,
            }
            // Gather a while: one write for many lines.
            let gathering = tokio::time::sleep(GATHER);
            tokio::pin!(gathering);
            while pending.len() < MAX_BATCH {
                let mut more = Vec::new();
                tokio::select! {
                    received = receiver.recv_many(&mut more, MAX_BATCH) => {
                        if received == 0 { break; }
                        pending.extend(more);
                    }
                    () = &mut gathering => break,
                    () = stop.cancelled() => break,
                }
            }
        }
        match write(&storage, &mut pending).await {
            Ok(()) => backoff = FIRST_BACKOFF,
            Err(error) if error.is_transient() => {
                warn!(%error, lines = pending.lines.len(), retry_in = ?backoff, "waiting for the storage to write job logs");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                let mut more = Vec::new();
                while receiver.try_recv().map(|entry| more.push(entry)).is_ok() {}
                pending.extend(more);
            }
            Err(error) => {
                let lines = pending.lines.len().min(MAX_BATCH);
                warn!(%error, lines, "the storage refused a write of job log lines and progress; dropping them");
                pending.lines.drain(..lines);
                pending.progress.clear();
            }
        }
    }
    // Shutdown: what the last attempts logged, once.
    let mut rest = Vec::new();
    while receiver.try_recv().map(|entry| rest.push(entry)).is_ok() {}
    pending.extend(rest);
    while !pending.is_empty() {
        if let Err(error) = write(&storage, &mut pending).await {
            warn!(%error, lines = pending.lines.len(), "job log lines could not be written at shutdown; dropping them");
            break;
        }
    }
}

/// Lines and progress waiting to be written.
#[derive(Default)]
struct Pending {
    lines: Vec<(Attempt, Instant, String)>,
    /// The latest value of each attempt, taken from `reported`.
    progress: HashMap<Attempt, f64>,
    /// Where the sink keeps the progress reported since the last take.
    reported: Arc<Mutex<HashMap<Attempt, f64>>>,
    dropped: usize,
}

impl Pending {
    /// Takes the progress reported since the last take.
    fn take_reported(&mut self) {
        let taken = std::mem::take(
            &mut *self
                .reported
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.progress.extend(taken);
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.progress.is_empty()
    }

    fn len(&self) -> usize {
        self.lines.len() + self.progress.len()
    }

    fn extend(&mut self, entries: Vec<Entry>) {
        let mut reported = false;
        for entry in entries {
            match entry {
                Entry::Line { job, at, text } => self.lines.push((job, at, text)),
                Entry::Progress => reported = true,
            }
        }
        if reported {
            self.take_reported();
        }
        if self.lines.len() > MAX_PENDING {
            let over = self.lines.len() - MAX_PENDING;
            self.lines.drain(..over);
            self.dropped += over;
            warn!(
                dropped = self.dropped,
                "job log lines wait for the storage beyond the most kept; dropping the oldest"
            );
        }
    }
}

/// Writes up to [`MAX_BATCH`] of `pending`, and takes them off it once
/// written.
async fn write(storage: &Storage, pending: &mut Pending) -> Result<()> {
    pending.take_reported();
    let now = Instant::now();
    let take = pending.lines.len().min(MAX_BATCH);
    let lines = pending.lines[..take]
        .iter()
        .map(|(job, at, text)| LogLine {
            job: *job,
            age: now.saturating_duration_since(*at),
            text: text.clone(),
        })
        .collect();
    let progress = pending
        .progress
        .iter()
        .map(|(job, progress)| JobProgress {
            job: *job,
            progress: *progress,
        })
        .collect();
    storage
        .backend()
        .write_log(WriteLogParams { lines, progress })
        .await?;
    pending.lines.drain(..take);
    pending.progress.clear();
    Ok(())
}
