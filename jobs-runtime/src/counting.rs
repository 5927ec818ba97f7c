//! How both storages count jobs: each state apart, through the state's
//! own partial indexes (one literal condition per index, since a planner
//! proves an index's predicate from literals only), never a scan of every
//! job kept. `Succeeded` has no index of its own to count with: it is the
//! bulk of a table that keeps finished jobs.

use jobs_core::{Error, QueueCounts, Result, State};

/// The conditions whose counts add up to the jobs in `state`, one per
/// partial index that holds them (migrations 0001, 0004 and 0007).
pub(crate) fn conditions(state: State) -> &'static [&'static str] {
    match state {
        // Jobs under a concurrency limit wait in an index of their own.
        State::Enqueued => &[
            "state = 'Enqueued' AND concurrency_key IS NULL",
            "state = 'Enqueued' AND concurrency_key IS NOT NULL",
        ],
        State::Scheduled => &["state = 'Scheduled'"],
        State::Processing => &["state = 'Processing'"],
        State::Succeeded => &["state = 'Succeeded'"],
        State::Failed => &["state = 'Failed'"],
        State::Deleted => &["state = 'Deleted'"],
        State::Awaiting => &["state = 'Awaiting'"],
    }
}

/// The newest `limit` jobs of `table` below the id `before` (a
/// placeholder of the caller's dialect), in `state` when given: a
/// `SELECT` of `columns`, newest first. The limit is written out: with a
/// parameter, PostgreSQL's generic plan cannot tell that the newest few
/// jobs of a rare state are best read from its partial index, and walks
/// the primary key past every other job instead (160 ms against 15 ms for
/// a window of 5,000 of 10,000 enqueued jobs among 1,000,000). A state
/// held by two partial indexes (`Enqueued`) is read from each apart.
pub(crate) fn newest_sql(
    table: &str,
    columns: &str,
    state: Option<State>,
    before: &str,
    limit: usize,
) -> String {
    let Some(state) = state else {
        return format!(
            "SELECT {columns} FROM {table} WHERE id < {before} ORDER BY id DESC LIMIT {limit}"
        );
    };
    let parts: Vec<String> = conditions(state)
        .iter()
        .map(|condition| {
            format!(
                "SELECT {columns} FROM {table} WHERE id < {before} AND {condition} ORDER BY id DESC LIMIT {limit}"
            )
        })
        .collect();
    if parts.len() == 1 {
        return parts.into_iter().next().expect("one part");
    }
    // Each part a subquery: SQLite takes no parenthesized member of a
    // compound `SELECT`, nor an `ORDER BY` inside one.
    let parts: Vec<String> = parts
        .into_iter()
        .enumerate()
        .map(|(n, part)| format!("SELECT * FROM ({part}) AS part{n}"))
        .collect();
    format!(
        "SELECT * FROM ({}) AS newest ORDER BY id DESC LIMIT {limit}",
        parts.join(" UNION ALL ")
    )
}

/// Counts each of `states` in `table` (`{s}.jobs_job` or `jobs_job`):
/// rows of (state, count), a state's rows to be added up. `None` for no
/// state.
pub(crate) fn counts_of_sql(table: &str, states: &[State]) -> Option<String> {
    let counts: Vec<String> = states
        .iter()
        .flat_map(|state| {
            conditions(*state).iter().map(move |condition| {
                format!("SELECT '{state}', count(*) FROM {table} WHERE {condition}")
            })
        })
        .collect();
    (!counts.is_empty()).then(|| counts.join(" UNION ALL "))
}

/// The states [`queue_counts_sql`] counts: all but the finished bulk.
pub(crate) const BY_QUEUE: [State; 5] = [
    State::Enqueued,
    State::Scheduled,
    State::Processing,
    State::Awaiting,
    State::Failed,
];

/// Counts the jobs of [`BY_QUEUE`] in `table` by queue: rows of (queue,
/// state, count) sorted by queue, a queue and state's rows to be added up.
pub(crate) fn queue_counts_sql(table: &str) -> String {
    let counts: Vec<String> = BY_QUEUE
        .iter()
        .flat_map(|state| {
            conditions(*state).iter().map(move |condition| {
                format!(
                    "SELECT queue, '{state}' AS state, count(*) AS jobs FROM {table} WHERE {condition} GROUP BY queue"
                )
            })
        })
        .collect();
    format!("{} ORDER BY 1", counts.join(" UNION ALL "))
}

/// Adds up `(state, count)` rows into counts.
///
/// # Errors
/// [`Error::Storage`] when a state's name does not decode.
pub(crate) fn by_state(rows: Vec<(String, i64)>) -> Result<jobs_core::StateCounts> {
    let mut counts = jobs_core::StateCounts::default();
    for (state, count) in rows {
        let state: State = state
            .parse()
            .map_err(|e| Error::storage("counting jobs", e))?;
        counts.set(state, counts.get(state) + u64::try_from(count).unwrap_or(0));
    }
    Ok(counts)
}

/// For each queue of `queues` (a `FROM` item of one column `queue`), when
/// the job at its head in each `Enqueued` index became `Enqueued`: rows of
/// (queue, time in the first index, time in the second), each read as the
/// first entry of the index's `(queue, priority, id)` order. The earlier
/// of the two is the queue's head (see
/// [`QueueCounts::oldest_enqueued_at`]).
pub(crate) fn queue_heads_sql(table: &str, queues: &str) -> String {
    let heads: Vec<String> = conditions(State::Enqueued)
        .iter()
        .map(|condition| {
            format!(
                "(SELECT state_changed_at FROM {table} AS j
                  WHERE {condition} AND j.queue = q.queue
                  ORDER BY j.queue, j.priority, j.id LIMIT 1)"
            )
        })
        .collect();
    format!("SELECT q.queue, {} FROM {queues}", heads.join(", "))
}

/// Sets each queue's [`QueueCounts::oldest_enqueued_at`] from its heads'
/// times (rows of queue, then one time per `Enqueued` index, as
/// [`queue_heads_sql`] reads them): the earliest.
pub(crate) fn with_heads<T>(
    queues: &mut [QueueCounts],
    heads: Vec<(String, Option<T>, Option<T>)>,
    time: impl Fn(T) -> chrono::DateTime<chrono::Utc>,
) {
    for (queue, first, second) in heads {
        let Some(counts) = queues.iter_mut().find(|counts| counts.queue == queue) else {
            continue;
        };
        counts.oldest_enqueued_at = [first, second].into_iter().flatten().map(&time).min();
    }
}

/// The queues of `queues` with jobs waiting: those whose head
/// [`queue_heads_sql`] reads.
pub(crate) fn waiting(queues: &[QueueCounts]) -> Vec<String> {
    queues
        .iter()
        .filter(|counts| counts.counts.get(State::Enqueued) > 0)
        .map(|counts| counts.queue.clone())
        .collect()
}

/// Adds up `(queue, state, count)` rows, sorted by queue, into one
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
        counts.set(state, counts.get(state) + u64::try_from(count).unwrap_or(0));
    }
    Ok(queues)
}
