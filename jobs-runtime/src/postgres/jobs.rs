//! [`JobStorage`] for PostgreSQL: lists of jobs travel as arrays read with
//! `unnest`, so a batch is one statement whatever its size; every
//! statement is a transaction of its own and records its moves in the
//! history in a CTE beside its `UPDATE`.

use jobs_core::{
    Attempt, BatchId, EnqueueParams, ExtendLeasesParams, FetchParams, FetchedJob, FinishParams,
    JobId, JobOutcome, JobStorage, MoveParams, NewJob, Result, SetParametersParams,
    SetPausedParams, State, WriteLogParams, decide,
};
use sqlx::Arguments;
use sqlx::postgres::PgRow;
use tracing::warn;

use super::PostgresStorage;
use super::decode::{fetched, limit, millis};
use crate::related::JobRow;
use crate::sorted_ids::sorted_ids;

/// The ids and attempts of `jobs`, as two arrays for `unnest($1, $2)`.
fn held(jobs: &[Attempt]) -> (Vec<i64>, Vec<i32>) {
    jobs.iter()
        .map(|job| (job.id.0, i32::try_from(job.attempt).unwrap_or(i32::MAX)))
        .unzip()
}

/// Takes up to `$2` enqueued jobs under no concurrency limit of the queues
/// `$1` (in priority order) for server `$3` with a lease of `$4` ms (see
/// [`take_sql`]): queues in priority order, each read through its partial
/// index by job priority then id; rows another server holds are skipped,
/// never waited for.
///
/// Paused queues are left out. The jobs of paused job names are read past
/// (each fetch skips them again: a long backlog of a paused job name
/// slows every fetch of its queue in proportion); a job's name is looked
/// up only while some job name is paused (one look at `jobs_paused` per
/// statement says whether any is). The look-up is a correlated `NOT
/// EXISTS`, not `name <> ALL(ARRAY(...))`: the planner estimates the
/// latter from the names' statistics as if every job were paused, and
/// once a backlog of one name was analyzed it sorted a sequential scan
/// instead of reading the index (the plan test).
///
/// `queue = ANY(ARRAY[q.name])` and `ORDER BY queue, priority, id`
/// (rather than `queue = q.name` and `ORDER BY priority, id`) leave only
/// the partial index `(queue, priority, id)` able to give the order: with
/// `queue = q.name`, the primary key gives it too, and once statistics
/// were taken while a backlog was enqueued the planner walks the primary
/// key past every job already done (measured: 62 ms a fetch after 60,000
/// of 100,000 were drained, 3 ms through the partial index). See the plan
/// tests.
pub(super) fn fetch_sql() -> String {
    take_sql(&format!(
        "picked AS (
         SELECT job.id
         FROM {SERVED_QUEUES}
         CROSS JOIN LATERAL (
             SELECT id, priority FROM {{s}}.jobs_job AS j
             WHERE state = 'Enqueued' AND concurrency_key IS NULL AND queue = ANY(ARRAY[q.name])
               AND {NAME_NOT_PAUSED}
             ORDER BY queue, priority, id LIMIT $2
             FOR UPDATE SKIP LOCKED
         ) AS job
         ORDER BY q.rank, job.priority, job.id
         LIMIT $2
     )"
    ))
}

/// The queues of `$1` that are not paused, as `q(name, rank)`, `rank`
/// their order in `$1` (1 first): what every fetch reads from.
pub(super) const SERVED_QUEUES: &str = "(
             SELECT name, rank FROM unnest($1::text[]) WITH ORDINALITY AS q(name, rank)
             WHERE NOT EXISTS (SELECT FROM {s}.jobs_paused AS p
                               WHERE p.kind = 'queue' AND p.name = q.name)
         ) AS q";

/// The condition that the job `j`'s name is not paused, looked up only
/// while some job name is (see [`fetch_sql`]).
pub(super) const NAME_NOT_PAUSED: &str =
    "(NOT (SELECT EXISTS (SELECT FROM {s}.jobs_paused WHERE kind = 'job'))
                    OR NOT EXISTS (SELECT FROM {s}.jobs_paused AS p
                                   WHERE p.kind = 'job' AND p.name = j.name))";

/// A fetch of the jobs that the CTE `picked` gives (its `id`s, locked):
/// moves them to `Processing` for server `$3` with a lease of `$4` ms,
/// records each move in the history with the server and the attempt as
/// its data (kept in the history only, not on the job's row), clears the
/// progress an earlier attempt reported, and returns them.
pub(super) fn take_sql(picked: &str) -> String {
    format!(
        "WITH {picked}
     , moved AS (
         UPDATE {{s}}.jobs_job AS j
         SET state = 'Processing', attempt = j.attempt + 1, server = $3,
             lease_expires_at = now() + $4 * interval '1 millisecond',
             state_changed_at = now(), run_at = NULL, reason = NULL, state_data = NULL,
             progress = NULL
         FROM picked WHERE j.id = picked.id
         RETURNING j.id, j.name, j.queue, j.args, j.attempt, j.max_attempts, j.priority,
                   j.created_at, j.state, j.state_changed_at, j.parent_result, j.trace_context
     ), recorded AS (
         INSERT INTO {{s}}.jobs_job_state (job_id, state, at, data)
         SELECT id, state, state_changed_at,
                jsonb_build_object('server', $3::text, 'attempt', attempt)
         FROM moved
     )
     SELECT id, name, queue, args, attempt, max_attempts, priority, created_at, parent_result,
            trace_context
     FROM moved"
    )
}

/// The CTEs `inserted`, `recorded` and `notified` that store new jobs
/// (bound by [`NewJobColumns::arguments`] as `$1` to `$13`; with `related`
/// their parents' and batches' columns as the next five, `$14` to `$18`;
/// with `control` their unique keys and concurrency limits as the next
/// four) with their first history entry, and wake the listening servers
/// on commit when one is `Enqueued`. A delay is added to the database's
/// clock, not the client's. `condition` (empty, or `AND ...`) gates the
/// insert: a recurring tick inserts only once its claim holds.
///
/// With `control`, a unique job whose key another job holds (in the
/// key's states) is not inserted (`ON CONFLICT ... DO NOTHING` on
/// `jobs_job_unique`, waiting for a concurrent insert of the key to
/// commit or roll back); `inserted` returns each stored job's
/// `unique_key` so that the caller can tell which were.
pub(super) fn insert_jobs(condition: &str, related: bool, control: bool) -> String {
    let mut columns = String::new();
    let mut arrays = String::new();
    let mut next = 14;
    let mut add = |names: &[&str], types: &[&str]| {
        for (name, kind) in names.iter().zip(types) {
            columns.push_str(", ");
            columns.push_str(name);
            arrays.push_str(&format!(", ${next}::{kind}[]"));
            next += 1;
        }
    };
    if related {
        add(
            &[
                "parent_id",
                "parent_batch_id",
                "continue_on",
                "parent_result",
                "batch_id",
            ],
            &["bigint", "text", "text", "text", "text"],
        );
    }
    if control {
        add(
            &[
                "unique_key",
                "unique_states",
                "concurrency_key",
                "concurrency_limit",
            ],
            &["text", "text", "text", "int"],
        );
    }
    let on_conflict = if control {
        "ON CONFLICT (unique_key)
                 WHERE unique_key IS NOT NULL AND strpos(unique_states, ',' || state || ',') > 0
             DO NOTHING"
    } else {
        ""
    };
    let returned_key = if control { ", unique_key" } else { "" };
    format!(
        "inserted AS (
             INSERT INTO {{s}}.jobs_job (name, queue, args, state, max_attempts, created_at,
                                        state_changed_at, run_at, reason, state_data,
                                        priority, trace_context{columns})
             SELECT name, queue, args, state, max_attempts, now(), now(),
                    coalesce(run_at, now() + run_in_ms * interval '1 millisecond'),
                    reason, data::jsonb, priority, trace_context{columns}
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[],
                         $6::timestamptz[], $7::float8[], $8::text[], $9::text[],
                         $10::smallint[], $13::text[]{arrays})
                  WITH ORDINALITY AS new(name, queue, args, max_attempts, state, run_at,
                                         run_in_ms, reason, data, priority, trace_context{columns}, n)
             WHERE true {condition}
             ORDER BY n
             {on_conflict}
             RETURNING id, state, state_changed_at, reason, state_data{returned_key}
         ), recorded AS (
             INSERT INTO {{s}}.jobs_job_state (job_id, state, at, reason, data)
             SELECT id, state, state_changed_at, reason, state_data FROM inserted
         ), notified AS (
             SELECT pg_notify($11, '') WHERE $12 AND EXISTS (SELECT FROM inserted)
         )"
    )
}

/// New jobs as the arrays [`insert_jobs`] reads.
pub(super) struct NewJobColumns<'a> {
    names: Vec<&'a str>,
    queues: Vec<&'a str>,
    args: Vec<&'a str>,
    max_attempts: Vec<i32>,
    states: Vec<&'static str>,
    run_at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    run_in_ms: Vec<Option<f64>>,
    reasons: Vec<Option<&'a str>>,
    data: Vec<Option<&'a str>>,
    priorities: Vec<i16>,
    trace_contexts: Vec<Option<&'a str>>,
    notify: bool,
    related: Option<RelatedColumns<'a>>,
    control: Option<ControlColumns>,
}

/// The unique keys' and concurrency limits' columns of [`insert_jobs`]
/// with `control`.
struct ControlColumns {
    unique_keys: Vec<Option<String>>,
    unique_states: Vec<Option<String>>,
    concurrency_keys: Vec<Option<String>>,
    concurrency_limits: Vec<Option<i32>>,
}

/// The parents' and batches' columns of [`insert_jobs`] with `related`.
struct RelatedColumns<'a> {
    parent_ids: Vec<Option<i64>>,
    parent_batches: Vec<Option<&'a str>>,
    continue_on: Vec<Option<String>>,
    parent_results: Vec<Option<&'a str>>,
    batches: Vec<Option<&'a str>>,
}

impl<'a> NewJobColumns<'a> {
    /// Jobs with neither parent nor batch, stored as their schedule says.
    pub(super) fn of(jobs: &'a [NewJob]) -> Self {
        NewJobColumns {
            names: jobs.iter().map(|job| job.name.as_str()).collect(),
            queues: jobs.iter().map(|job| job.queue.as_str()).collect(),
            args: jobs.iter().map(|job| job.args.as_str()).collect(),
            max_attempts: jobs
                .iter()
                .map(|job| i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
                .collect(),
            states: jobs
                .iter()
                .map(|job| job.schedule.state().as_str())
                .collect(),
            run_at: jobs.iter().map(|job| job.schedule.at()).collect(),
            run_in_ms: jobs
                .iter()
                .map(|job| job.schedule.delay().map(millis))
                .collect(),
            reasons: jobs.iter().map(|job| job.reason.as_deref()).collect(),
            data: jobs.iter().map(|job| job.data.as_deref()).collect(),
            priorities: jobs.iter().map(|job| job.priority).collect(),
            trace_contexts: jobs
                .iter()
                .map(|job| job.trace_context.as_deref())
                .collect(),
            notify: jobs.iter().any(|job| job.schedule.is_now()),
            related: None,
            control: None,
        }
    }

    /// These jobs with their unique keys as stored (`unique_keys`, see
    /// [`stored_keys`](crate::unique::stored_keys)) and their
    /// concurrency limits: bind them to [`insert_jobs`] with `control`.
    pub(super) fn with_control<'j>(
        mut self,
        jobs: impl Iterator<Item = &'j NewJob> + Clone,
        unique_keys: Vec<Option<String>>,
    ) -> Self {
        self.control = Some(ControlColumns {
            unique_keys,
            unique_states: jobs
                .clone()
                .map(|job| job.unique.as_ref().map(jobs_core::UniqueKey::stored_states))
                .collect(),
            concurrency_keys: jobs
                .clone()
                .map(|job| job.concurrency.as_ref().map(|limit| limit.key.clone()))
                .collect(),
            concurrency_limits: jobs
                .map(|job| {
                    job.concurrency
                        .as_ref()
                        .map(|limit| i32::try_from(limit.limit).unwrap_or(i32::MAX))
                })
                .collect(),
        });
        self
    }

    /// Jobs as [`plan`](crate::related::plan) decided them, with their
    /// parents and batches; bind them to [`insert_jobs`] with `related`.
    pub(super) fn planned(rows: &'a [JobRow<'a>]) -> Self {
        let waits = |row: &JobRow<'_>| row.state == State::Scheduled;
        NewJobColumns {
            names: rows.iter().map(|row| row.job.name.as_str()).collect(),
            queues: rows.iter().map(|row| row.job.queue.as_str()).collect(),
            args: rows.iter().map(|row| row.job.args.as_str()).collect(),
            max_attempts: rows
                .iter()
                .map(|row| i32::try_from(row.job.max_attempts).unwrap_or(i32::MAX))
                .collect(),
            states: rows.iter().map(|row| row.state.as_str()).collect(),
            run_at: rows
                .iter()
                .map(|row| row.job.schedule.at().filter(|_| waits(row)))
                .collect(),
            run_in_ms: rows
                .iter()
                .map(|row| row.job.schedule.delay().filter(|_| waits(row)).map(millis))
                .collect(),
            reasons: rows.iter().map(|row| row.reason.as_deref()).collect(),
            data: rows.iter().map(|row| row.data.as_deref()).collect(),
            priorities: rows.iter().map(|row| row.job.priority).collect(),
            trace_contexts: rows
                .iter()
                .map(|row| row.job.trace_context.as_deref())
                .collect(),
            notify: rows.iter().any(|row| row.state == State::Enqueued),
            related: Some(RelatedColumns {
                parent_ids: rows.iter().map(JobRow::parent_id).collect(),
                parent_batches: rows.iter().map(JobRow::parent_batch).collect(),
                continue_on: rows.iter().map(JobRow::continue_on).collect(),
                parent_results: rows
                    .iter()
                    .map(|row| row.parent_result.as_deref())
                    .collect(),
                batches: rows.iter().map(JobRow::batch).collect(),
            }),
            control: None,
        }
    }

    /// The arguments of [`insert_jobs`]: `$1` to `$13`, then the related
    /// columns of [`planned`](Self::planned) jobs, then the control
    /// columns of [`with_control`](Self::with_control); `channel` is the
    /// one the servers listen on. A statement's own parameters follow:
    /// add them to the arguments returned.
    pub(super) fn arguments(
        self,
        channel: &str,
    ) -> std::result::Result<sqlx::postgres::PgArguments, sqlx::error::BoxDynError> {
        let mut arguments = sqlx::postgres::PgArguments::default();
        arguments.add(self.names)?;
        arguments.add(self.queues)?;
        arguments.add(self.args)?;
        arguments.add(self.max_attempts)?;
        arguments.add(self.states)?;
        arguments.add(self.run_at)?;
        arguments.add(self.run_in_ms)?;
        arguments.add(self.reasons)?;
        arguments.add(self.data)?;
        arguments.add(self.priorities)?;
        arguments.add(channel)?;
        arguments.add(self.notify)?;
        arguments.add(self.trace_contexts)?;
        if let Some(related) = self.related {
            arguments.add(related.parent_ids)?;
            arguments.add(related.parent_batches)?;
            arguments.add(related.continue_on)?;
            arguments.add(related.parent_results)?;
            arguments.add(related.batches)?;
        }
        if let Some(control) = self.control {
            arguments.add(control.unique_keys)?;
            arguments.add(control.unique_states)?;
            arguments.add(control.concurrency_keys)?;
            arguments.add(control.concurrency_limits)?;
        }
        Ok(arguments)
    }
}

/// How statements that change held attempts find their rows: each job by
/// its primary key (`j.id = ANY($1)`, joined to the per-job values of the
/// `unnest`), never through a partial index. The state a job must be in
/// comes from the `unnest` too (`from_state`), not as a literal: with
/// `state = 'Processing'` written out, the planner may prove the predicate
/// of `jobs_job_processing` and, once statistics exist, read 20,000
/// processing rows against the id list for every batch (seconds instead
/// of milliseconds). A column cannot prove it, so the plan stays on the
/// primary key whatever the table holds (see the plan tests below).
///
/// Records outcomes: `$1` ids, `$2` attempts, `$3` new states, `$4`
/// reasons, `$5` data (JSON text), `$6` delays in ms for `Scheduled`, `$7`
/// attempts granted back (0 or 1), `$8` whether the server is cleared, `$9`
/// the state each job must be in (`Processing`), `$10` the channel to
/// notify when a job became `Enqueued`, `$11` the results to keep, and
/// `$12` to `$15` those of [`continue_awaiting`]. Records each move in the
/// history; the move's data (a retry's error) goes there only, not on the
/// job's row, so a text is kept once. Decides the continuations of the
/// jobs that reached a final state in the same statement, and appends how
/// many jobs succeeded and failed to the statistics' counters
/// (`jobs_counter`: one row per statement and state, nothing updated, so
/// completers never wait on each other there).
/// `{lease_expired}` is empty for [`JobStorage::finish`]; a rescue adds
/// that the lease must have expired ([`RESCUE_GUARD`]).
/// Returns the ids that moved.
pub(super) fn finish_sql(lease_expired: &str) -> String {
    format!(
        "WITH o AS (
         SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[],
                              $6::float8[], $7::int[], $8::bool[], $9::text[], $11::text[])
                AS o(id, attempt, state, reason, data, run_after_ms, grant_attempt, release,
                     from_state, result)
     ), moved AS (
         UPDATE {{s}}.jobs_job AS j
         SET state = o.state, state_changed_at = now(), lease_expires_at = NULL,
             run_at = now() + o.run_after_ms * interval '1 millisecond',
             max_attempts = j.max_attempts + o.grant_attempt,
             server = CASE WHEN o.release THEN NULL ELSE j.server END,
             reason = o.reason, state_data = NULL, result = o.result
         FROM o
         WHERE j.id = ANY($1) AND j.id = o.id AND j.attempt = o.attempt AND j.state = o.from_state
               {lease_expired}
         RETURNING j.id, j.state, j.state_changed_at, j.reason, o.data, j.result,
                   $15::text AS awaiting
     ), {continued}, recorded AS (
         INSERT INTO {{s}}.jobs_job_state (job_id, state, at, reason, data)
         SELECT id, state, state_changed_at, reason, data::jsonb FROM moved
         UNION ALL
         SELECT id, state, state_changed_at, reason, data FROM continued
     ), counted AS (
         INSERT INTO {{s}}.jobs_counter (name, hour, value)
         SELECT state, date_trunc('hour', now(), 'UTC'), count(*) FROM moved
         WHERE state IN ('Succeeded', 'Failed') GROUP BY state
     ), notified AS (
         SELECT pg_notify($10, '')
         WHERE EXISTS (SELECT FROM moved WHERE state = 'Enqueued')
            OR EXISTS (SELECT FROM continued WHERE state = 'Enqueued')
     )
     SELECT id FROM moved LEFT JOIN notified ON true",
        continued = continue_awaiting(12)
    )
}

/// The CTE `continued`: decides the `Awaiting` continuations of the jobs
/// of the CTE `moved` (its `id`, `state` and `result`) that reached a
/// final state (`$first`, [`final_states`]): each moves to `Enqueued` when
/// that state is one it awaits (its stored `continue_on`, written by
/// [`ContinueOn::stored`](jobs_core::ContinueOn::stored)), with the
/// reason `$first + 1`, else to `Deleted` with the reason `$first + 2`,
/// and keeps the parent's result. Returns the moves to record. A job the
/// statement moves itself (`$1`, an operator deleting a continuation with
/// its parent) is left to that move: a row is updated once per statement.
///
/// Found through `jobs_job_parent`, which holds only continuations: the
/// hot path's jobs have none, and this costs it one probe of an empty
/// index. The state a continuation must be in, `Awaiting`, comes from
/// `moved` (its column `awaiting`, the statement's `$first + 3`), never as
/// a literal or a parameter of this CTE: the planner substitutes those in
/// custom plans, proves the predicate of `jobs_job_listed` and reads every
/// awaiting job for each batch of outcomes (the plan test saw it do so).
/// Guarded by one uncorrelated `EXISTS` (evaluated once per statement,
/// through `jobs_job_listed`): while no continuation awaits a job, the
/// join is skipped, and the hot path pays one probe per statement rather
/// than one per job (measured: the unguarded CTE cost PostgreSQL's drain
/// about 3-4%).
pub(super) fn continue_awaiting(first: usize) -> String {
    let (finals, met, not_met) = (first, first + 1, first + 2);
    format!(
        "continued AS (
         UPDATE {{s}}.jobs_job AS c
         SET state = CASE WHEN m.state = ANY(string_to_array(c.continue_on, ','))
                          THEN 'Enqueued' ELSE 'Deleted' END,
             reason = CASE WHEN m.state = ANY(string_to_array(c.continue_on, ','))
                           THEN ${met} ELSE ${not_met} END,
             state_changed_at = now(), parent_result = m.result
         FROM moved AS m
         WHERE c.parent_id = m.id AND c.state = m.awaiting AND m.state = ANY(${finals}::text[])
           AND c.id <> ALL($1)
           AND EXISTS (SELECT FROM {{s}}.jobs_job w
                       WHERE w.state = 'Awaiting' AND w.parent_id IS NOT NULL)
         RETURNING c.id, c.state, c.state_changed_at, c.reason,
                   jsonb_build_object('parent', m.id, 'parent_state', m.state) AS data
     )"
    )
}

/// The final states, as [`continue_awaiting`] binds them.
pub(super) fn final_states() -> Vec<&'static str> {
    State::ALL
        .into_iter()
        .filter(|state| state.is_final())
        .map(State::as_str)
        .collect()
}

/// What a rescue adds to [`finish_sql`]: only while the lease is still expired.
pub(super) const RESCUE_GUARD: &str = "AND j.lease_expires_at < now()";

/// Renews the leases of held attempts: `$1` ids, `$2` attempts, `$3` the
/// state each must be in (`Processing`), `$4` the lease in ms. Planned
/// through the primary key as [`finish_sql`] is. Returns the ids still held.
pub(super) const EXTEND_LEASES: &str = "UPDATE {s}.jobs_job AS j
     SET lease_expires_at = now() + $4 * interval '1 millisecond'
     FROM unnest($1::bigint[], $2::int[], $3::text[]) AS held(id, attempt, from_state)
     WHERE j.id = ANY($1) AND j.id = held.id AND j.attempt = held.attempt
       AND j.state = held.from_state
     RETURNING j.id";

/// Moves jobs for an operator: `$1` ids, `$2` the new state, `$3` the
/// states a job may move from ([`State::sources`]), `$4` the reason,
/// `$5` the channel to notify when jobs became `Enqueued`. A requeued job
/// gets at least one attempt more than it used, and loses the result of
/// its earlier run. A unique job is left alone when the move would take it
/// into its key's states while another job holds the key.
/// `$6` to `$9` are those of [`continue_awaiting`]: a deleted job's
/// continuations are decided in the same statement. `$10`: whether the
/// move may take running jobs. A running job moved keeps, as the move's
/// data, the attempt it stopped (`{"server": ..., "attempt": ...}`), and
/// then the servers are told to renew their leases at once
/// ([`REVOKED`](super::notifications::REVOKED)), which stops the attempts
/// they no longer hold; a move of waiting jobs tells them nothing.
fn move_sql() -> String {
    format!(
        "WITH moved AS (
         UPDATE {{s}}.jobs_job AS j
         SET state = $2, state_changed_at = now(), lease_expires_at = NULL, server = NULL,
             run_at = NULL, reason = $4,
             state_data = CASE WHEN j.state = 'Processing'
                               THEN jsonb_build_object('server', j.server, 'attempt', j.attempt)
                          END,
             max_attempts = CASE WHEN $2 = 'Enqueued' THEN greatest(j.max_attempts, j.attempt + 1)
                                 ELSE j.max_attempts END,
             result = CASE WHEN $2 = 'Enqueued' THEN NULL ELSE j.result END
         WHERE j.id = ANY($1) AND j.state = ANY($3)
           AND (j.unique_key IS NULL
                OR strpos(j.unique_states, ',' || $2 || ',') = 0
                OR NOT EXISTS (SELECT FROM {{s}}.jobs_job AS holder
                               WHERE holder.unique_key = j.unique_key AND holder.id <> j.id
                                 AND strpos(holder.unique_states, ',' || holder.state || ',') > 0))
         RETURNING j.id, j.state, j.state_changed_at, j.reason, j.state_data, j.result,
                   $9::text AS awaiting
     ), {continued}, recorded AS (
         INSERT INTO {{s}}.jobs_job_state (job_id, state, at, reason, data)
         SELECT id, state, state_changed_at, reason, state_data FROM moved
         UNION ALL
         SELECT id, state, state_changed_at, reason, data FROM continued
     ), notified AS (
         SELECT pg_notify($5, '')
         WHERE EXISTS (SELECT FROM moved WHERE state = 'Enqueued')
            OR EXISTS (SELECT FROM continued WHERE state = 'Enqueued')
     ), revoked AS (
         SELECT pg_notify($5, '{revoked}')
         WHERE $10 AND EXISTS (SELECT FROM moved WHERE state_data IS NOT NULL)
     )
     SELECT id FROM moved LEFT JOIN notified ON true LEFT JOIN revoked ON true",
        continued = continue_awaiting(6),
        revoked = super::notifications::REVOKED,
    )
}

/// The per-job columns of [`finish_sql`], as arrays.
struct OutcomeRows {
    ids: Vec<i64>,
    attempts: Vec<i32>,
    states: Vec<&'static str>,
    reasons: Vec<Option<String>>,
    data: Vec<Option<String>>,
    run_after_ms: Vec<Option<f64>>,
    grant: Vec<i32>,
    release: Vec<bool>,
    from_state: Vec<&'static str>,
    results: Vec<Option<String>>,
}

impl OutcomeRows {
    fn new(jobs: &[JobOutcome]) -> Self {
        let mut rows = OutcomeRows {
            ids: Vec::with_capacity(jobs.len()),
            attempts: Vec::with_capacity(jobs.len()),
            states: Vec::with_capacity(jobs.len()),
            reasons: Vec::with_capacity(jobs.len()),
            data: Vec::with_capacity(jobs.len()),
            run_after_ms: Vec::with_capacity(jobs.len()),
            grant: Vec::with_capacity(jobs.len()),
            release: Vec::with_capacity(jobs.len()),
            from_state: Vec::with_capacity(jobs.len()),
            results: Vec::with_capacity(jobs.len()),
        };
        for job in jobs {
            let stored = job.outcome.stored();
            rows.ids.push(job.job.id.0);
            rows.attempts
                .push(i32::try_from(job.job.attempt).unwrap_or(i32::MAX));
            rows.states.push(stored.state.as_str());
            rows.reasons.push(stored.reason);
            rows.data.push(stored.data);
            rows.run_after_ms.push(stored.run_after.map(millis));
            rows.grant.push(i32::from(stored.grant_attempt));
            rows.release.push(stored.release_server);
            rows.from_state.push(State::Processing.as_str());
            rows.results.push(stored.result);
        }
        rows
    }
}

impl PostgresStorage {
    /// Records outcomes with [`finish_sql`], `guard` added to its condition.
    pub(super) async fn record_outcomes(
        &self,
        operation: &'static str,
        params: FinishParams,
        guard: &str,
    ) -> Result<Vec<JobId>> {
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = OutcomeRows::new(&params.jobs);
        let moved: Vec<i64> = self
            .run(
                operation,
                sqlx::query_scalar(self.sql(&finish_sql(guard)))
                    .bind(rows.ids)
                    .bind(rows.attempts)
                    .bind(rows.states)
                    .bind(rows.reasons)
                    .bind(rows.data)
                    .bind(rows.run_after_ms)
                    .bind(rows.grant)
                    .bind(rows.release)
                    .bind(rows.from_state)
                    .bind(&self.channel)
                    .bind(rows.results)
                    .bind(final_states())
                    .bind(decide::PARENT_AS_AWAITED)
                    .bind(decide::PARENT_NOT_AS_AWAITED)
                    .bind(State::Awaiting.as_str())
                    .fetch_all(&self.pool),
            )
            .await?;
        Ok(sorted_ids(moved))
    }
}

#[async_trait::async_trait]
impl JobStorage for PostgresStorage {
    async fn enqueue(&self, params: EnqueueParams) -> Result<Vec<JobId>> {
        let mut conn = self.run("enqueueing jobs", self.pool.acquire()).await?;
        super::related::enqueue_on(&mut conn, &self.schema, params).await
    }

    async fn fetch(&self, params: FetchParams) -> Result<Vec<FetchedJob>> {
        if params.limit == 0 || params.queues.is_empty() {
            return Ok(Vec::new());
        }
        // Jobs under a concurrency limit first, when some may wait, in at
        // most half the room (a limit per customer may leave much room:
        // the other jobs of earlier queues must not wait behind them);
        // the others fill the rest, and limited jobs what is left after.
        // A step that failed after an earlier one committed is logged and
        // the jobs taken are returned: they are Processing already.
        let half = params.limit.div_ceil(2);
        let mut jobs = Vec::new();
        // Whether limited jobs may be left after the others were taken:
        // not when this fetch looked and found fewer than it could take.
        let mut limited_left = true;
        if self.limited.is_due() {
            match self.fetch_limited(&params, half).await {
                Ok(limited) => {
                    limited_left = limited.len() == half;
                    jobs = limited;
                }
                Err(error) => {
                    warn!(%error, "fetching jobs under a concurrency limit failed; fetching the others")
                }
            }
        }
        let wanted = params.limit - jobs.len();
        let others = self
            .run(
                "fetching jobs",
                sqlx::query(self.sql(&fetch_sql()))
                    .bind(&params.queues)
                    .bind(limit(wanted))
                    .bind(&params.server)
                    .bind(millis(params.lease))
                    .try_map(|row: PgRow| fetched(&row))
                    .fetch_all(&self.pool),
            )
            .await;
        match others {
            Ok(others) => jobs.extend(others),
            Err(error) if jobs.is_empty() => return Err(error),
            Err(error) => {
                warn!(%error, taken = jobs.len(), "fetching jobs failed after jobs under a concurrency limit were taken; returning those");
                FetchedJob::sort_for(&mut jobs, &params.queues);
                return Ok(jobs);
            }
        }
        let room = params.limit - jobs.len();
        if room > 0 && limited_left {
            match self.fetch_limited(&params, room).await {
                Ok(limited) => jobs.extend(limited),
                Err(error) if jobs.is_empty() => return Err(error),
                Err(error) => warn!(%error, "fetching jobs under a concurrency limit failed"),
            }
        }
        FetchedJob::sort_for(&mut jobs, &params.queues);
        Ok(jobs)
    }

    async fn finish(&self, params: FinishParams) -> Result<Vec<JobId>> {
        self.record_outcomes("recording outcomes", params, "").await
    }

    async fn extend_leases(&self, params: ExtendLeasesParams) -> Result<Vec<JobId>> {
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, attempts) = held(&params.jobs);
        let from_state = vec![State::Processing.as_str(); ids.len()];
        let held: Vec<i64> = self
            .run(
                "extending leases",
                sqlx::query_scalar(self.sql(EXTEND_LEASES))
                    .bind(ids)
                    .bind(attempts)
                    .bind(from_state)
                    .bind(millis(params.lease))
                    .fetch_all(&self.pool),
            )
            .await?;
        Ok(sorted_ids(held))
    }

    async fn cancel_batch(&self, id: BatchId) -> Result<Vec<JobId>> {
        self.batch_cancel(id).await
    }

    async fn set_paused(&self, params: SetPausedParams) -> Result<bool> {
        self.paused_set(params).await
    }

    async fn write_log(&self, params: WriteLogParams) -> Result<()> {
        self.log_write(params).await
    }

    async fn set_parameters(&self, params: SetParametersParams) -> Result<()> {
        self.parameters_set(params).await
    }

    async fn move_jobs(&self, params: MoveParams) -> Result<Vec<JobId>> {
        let sources = params.sources()?;
        let ids: Vec<i64> = params.ids.iter().map(|id| id.0).collect();
        let moved: Vec<i64> = self
            .run(
                "moving jobs",
                sqlx::query_scalar(self.sql(&move_sql()))
                    .bind(ids)
                    .bind(params.to.as_str())
                    .bind(sources)
                    .bind(jobs_core::storable_text(&params.reason).as_ref())
                    .bind(&self.channel)
                    .bind(final_states())
                    .bind(decide::PARENT_AS_AWAITED)
                    .bind(decide::PARENT_NOT_AS_AWAITED)
                    .bind(State::Awaiting.as_str())
                    .bind(params.stops_running())
                    .fetch_all(&self.pool),
            )
            .await?;
        Ok(sorted_ids(moved))
    }
}
