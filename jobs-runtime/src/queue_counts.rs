//! Counts per queue and state, from the rows both storages read.

use jobs_core::{Error, QueueCounts, Result, State};

/// Folds `(queue, state, count)` rows, sorted by queue, into one
/// [`QueueCounts`] per queue.
///
/// # Errors
/// [`Error::Storage`] when a state's name does not decode.
pub(crate) fn by_queue(rows: Vec<(String, String, i64)>) -> Result<Vec<QueueCounts>> {
    let mut queues: Vec<QueueCounts> = Vec::new();
    for (queue, state, count) in rows {
        let state: State = state
            .parse()
            .map_err(|e| Error::storage("counting jobs by queue", e))?;
        if queues.last().is_none_or(|last| last.queue != queue) {
            queues.push(QueueCounts {
                queue,
                ..QueueCounts::default()
            });
        }
        let counts = &mut queues.last_mut().expect("pushed above").counts;
        counts.set(state, u64::try_from(count).unwrap_or(0));
    }
    Ok(queues)
}
