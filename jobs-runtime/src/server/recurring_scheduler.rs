//! Enqueues recurring jobs on their ticks. Leader-only: started and
//! stopped with the leadership (see `maintenance.rs`).
//!
//! It sleeps until the next due tick, by the storage's clock, rather than
//! polling at a fixed period; a change made through the same `Storage`
//! handle (or a clone) wakes it at once, one made elsewhere is seen within
//! the check interval. Each due job's tick is claimed and its run enqueued
//! in one transaction, by compare-and-set on the job's version: however
//! many schedulers read a tick, one run is enqueued for it.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use jobs_core::recurring::{CronSchedule, plan_ticks, tick_job};
use jobs_core::{DueRecurringParams, FireRecurringParams, RecurringJob, Result};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::Storage;
use crate::storage::parse_schedule;

/// The most due jobs read per storage call; more take several.
pub const DUE_BATCH: usize = 100;

/// The longest wait after a failed pass; failures back off from 100 ms.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How soon a job whose fire failed (the storage refused or went away) is
/// tried again, at most.
const RETRY_FAILED_FIRE: Duration = Duration::from_secs(1);

/// Runs passes until `cancel`: each enqueues what is due, then sleeps until
/// the next tick, a change through this handle, or `check_interval`,
/// whichever is first.
pub(crate) async fn run(storage: Storage, check_interval: Duration, cancel: CancellationToken) {
    let mut failures: u32 = 0;
    let mut pass = Pass::default();
    loop {
        // Armed before the pass, so that a change during it is not missed.
        let changed = storage.recurring_changed().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let wait = tokio::select! {
            result = pass.run(&storage) => match result {
                Ok(until_next) => {
                    failures = 0;
                    until_next.unwrap_or(check_interval).min(check_interval)
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let backoff = (Duration::from_millis(100) * 2u32.saturating_pow(failures.min(10)))
                        .min(MAX_BACKOFF);
                    warn!(%error, ?backoff, "reading the due recurring jobs failed; trying again");
                    backoff
                }
            },
            _ = cancel.cancelled() => return,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut changed => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// What the scheduler remembers from pass to pass: the jobs it left alone
/// because their schedule does not parse here, so that each is reported
/// once, not on every pass.
#[derive(Default)]
pub(crate) struct Pass {
    left_alone: HashSet<String>,
}

impl Pass {
    /// One pass: fires every due job, reading them a page at a time (so
    /// that jobs left alone do not hide the others). Returns how long until
    /// the next tick of any job, counted from now (zero when a claim was
    /// lost and the job must be read again; at most [`RETRY_FAILED_FIRE`]
    /// when a fire failed), `None` when no job will fire.
    ///
    /// # Errors
    /// When the due jobs cannot be read.
    pub(crate) async fn run(&mut self, storage: &Storage) -> Result<Option<Duration>> {
        let mut after = None;
        let mut until_next: Option<Duration> = None;
        loop {
            let due = storage
                .due_recurring(DueRecurringParams {
                    limit: DUE_BATCH,
                    after: after.clone(),
                })
                .await?;
            let read_at = Instant::now();
            // The earliest next run: of the jobs not due, and of those fired.
            let mut next_due_at = due.next_due_at;
            let mut retry_soon = false;
            for job in &due.due {
                match self.fire(storage, job, due.now).await {
                    Ok(Fired::Claimed { next_run_at }) => {
                        next_due_at = earliest(next_due_at, next_run_at);
                    }
                    Ok(Fired::Lost) => return Ok(Some(Duration::ZERO)),
                    Ok(Fired::LeftAlone) => {}
                    // One job that cannot be written does not hold back the
                    // others; it is tried again soon.
                    Err(error) => {
                        warn!(recurring.id = %job.definition.id, %error, "a recurring job could not be fired");
                        retry_soon = true;
                    }
                }
            }
            // Measured from the clock read with the due jobs; firing them
            // took some of that wait.
            let mut wait = next_due_at.map(|at| {
                (at - due.now)
                    .to_std()
                    .unwrap_or_default()
                    .saturating_sub(read_at.elapsed())
            });
            if retry_soon {
                wait = Some(wait.map_or(RETRY_FAILED_FIRE, |wait| wait.min(RETRY_FAILED_FIRE)));
            }
            until_next = earliest(until_next, wait);
            match due.due.last() {
                Some(last) if due.due.len() == DUE_BATCH => {
                    after = Some((
                        last.next_run_at.unwrap_or(due.now),
                        last.definition.id.clone(),
                    ));
                }
                _ => return Ok(until_next),
            }
        }
    }

    /// Fires one due job at `now` (the storage's clock).
    async fn fire(
        &mut self,
        storage: &Storage,
        job: &RecurringJob,
        now: DateTime<Utc>,
    ) -> Result<Fired> {
        let definition = &job.definition;
        let schedule = match parse_schedule(definition) {
            Ok(schedule) => {
                self.left_alone.remove(&definition.id);
                schedule
            }
            Err(error) => {
                if self.left_alone.insert(definition.id.clone()) {
                    warn!(recurring.id = %definition.id, %error, "recurring job not fired: its schedule does not parse here; left for a server that can run it");
                }
                return Ok(Fired::LeftAlone);
            }
        };
        let params = plan(&schedule, job, now);
        let (runs, next_run_at) = (params.jobs.len(), params.next_run_at);
        let fired = storage.fire_recurring(params).await?;
        match &fired {
            Some(ids) if runs > 0 => {
                debug!(recurring.id = %definition.id, jobs = ?ids, "recurring job fired")
            }
            Some(_) => {}
            None => {
                debug!(recurring.id = %definition.id, "tick claimed elsewhere, or the job changed")
            }
        }
        Ok(match fired {
            Some(_) => Fired::Claimed { next_run_at },
            None => Fired::Lost,
        })
    }
}

/// What [`Pass::fire`] did with one due job.
enum Fired {
    /// The tick was claimed, its runs enqueued; the job is next due then.
    Claimed { next_run_at: Option<DateTime<Utc>> },
    /// The version moved: another scheduler claimed the tick, or the job
    /// changed or was removed.
    Lost,
    /// Its schedule does not parse here (stored by a newer version, or a
    /// time zone this build does not know): it stays as it is, for a
    /// server that can run it.
    LeftAlone,
}

/// The earlier of two optional times (or waits); `None` for neither.
fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The fire of `job` at `now`: the runs to enqueue, its next run and its
/// last run, claimed with the version read.
fn plan(schedule: &CronSchedule, job: &RecurringJob, now: DateTime<Utc>) -> FireRecurringParams {
    let definition = &job.definition;
    let due = job.next_run_at.unwrap_or(now);
    let running = definition.skip_if_running && job.last_run_unfinished();
    let plan = plan_ticks(schedule, due, now, definition.misfire, running);
    if plan.missed > 0 {
        info!(
            recurring.id = %definition.id,
            missed = plan.missed,
            runs = plan.run.len(),
            previous_running = running,
            misfire = %definition.misfire,
            "recurring job: ticks without a run of their own"
        );
    }
    FireRecurringParams {
        id: definition.id.clone(),
        version: job.version,
        next_run_at: plan.next_run_at,
        jobs: plan
            .run
            .iter()
            .map(|tick| tick_job(definition, *tick))
            .collect(),
        last_run_at: plan.run.last().copied(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use jobs_core::{JobQuery, RecurringDefinition, SaveRecurringParams};

    use super::*;
    use crate::postgres::PostgresStorage;
    use crate::testing::fresh_postgres;

    /// Schedulers that ignore the leadership and race for the same ticks,
    /// as a partitioned old leader and a new one might: three of them, each
    /// with its own pool, pass after pass for three seconds over 600 ticks
    /// already due and the live ones that follow. Each tick is enqueued
    /// once, and none is missed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_schedulers_enqueue_each_tick_once() {
        let Some(pg) = fresh_postgres().await else {
            return;
        };
        let mut schedulers = Vec::new();
        for _ in 0..3 {
            let storage = PostgresStorage::connect_with_schema(pg.url(), pg.storage.schema())
                .await
                .expect("connect");
            schedulers.push(Storage::new(storage));
        }
        let storage = &schedulers[0];
        let now = storage.backend().clock().await.unwrap();
        let first = chrono::DateTime::from_timestamp(now.timestamp() - 600, 0).unwrap();
        let definition = RecurringDefinition {
            id: "race".to_owned(),
            job_name: "race".to_owned(),
            args: "{}".to_owned(),
            queue: "default".to_owned(),
            max_attempts: 1,
            cron: "* * * * * *".to_owned(),
            time_zone: "UTC".to_owned(),
            misfire: jobs_core::recurring::Misfire::run_each(1000),
            skip_if_running: false,
        };
        storage
            .backend()
            .save_recurring(SaveRecurringParams {
                definition,
                in_code: false,
                next_run_at: Some(first),
            })
            .await
            .unwrap();

        let until = Instant::now() + Duration::from_secs(3);
        let passes = schedulers.iter().map(|storage| async move {
            let mut pass = Pass::default();
            while Instant::now() < until {
                pass.run(storage).await.expect("a pass");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        futures_util::future::join_all(passes).await;

        let mut per_tick: BTreeMap<String, usize> = BTreeMap::new();
        let mut query = JobQuery::new().limit(1000);
        loop {
            let page = storage.list_jobs(query.clone()).await.unwrap();
            let Some(last) = page.last() else { break };
            query = query.before(last.id);
            for job in page {
                let history = storage.history(job.id).await.unwrap();
                let tick = history[0].data.as_ref().unwrap()["tick"].to_string();
                *per_tick.entry(tick).or_default() += 1;
            }
        }
        let twice: Vec<_> = per_tick.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{} ticks enqueued more than once, first {:?}",
            twice.len(),
            twice.iter().take(3).collect::<Vec<_>>()
        );
        let fired = storage.recurring_job("race").await.unwrap().unwrap();
        let next = fired.next_run_at.unwrap();
        let expected = (next - first).num_seconds();
        assert!(expected >= 602, "{expected}");
        assert_eq!(
            per_tick.len() as i64,
            expected,
            "every tick before {next} has a run"
        );
    }

    /// More due jobs than a page whose schedules do not parse here (a
    /// time zone this build does not know), sorted before a good one: the
    /// pass pages past them, fires the good one, and reports each once.
    #[tokio::test]
    async fn jobs_left_alone_do_not_hide_the_others() {
        let storage = Storage::connect("sqlite::memory:").await.unwrap();
        let clock = storage.backend().clock().await.unwrap();
        let now = chrono::DateTime::from_timestamp(clock.timestamp(), 0).unwrap();
        let save = |id: String, time_zone: &str, due: chrono::Duration| {
            let params = SaveRecurringParams {
                definition: RecurringDefinition {
                    id: id.clone(),
                    job_name: id,
                    args: "{}".to_owned(),
                    queue: "default".to_owned(),
                    max_attempts: 1,
                    cron: "* * * * * *".to_owned(),
                    time_zone: time_zone.to_owned(),
                    misfire: jobs_core::recurring::Misfire::RunOnce,
                    skip_if_running: false,
                },
                in_code: false,
                next_run_at: Some(now - due),
            };
            let storage = storage.clone();
            async move { storage.backend().save_recurring(params).await.unwrap() }
        };
        for n in 0..DUE_BATCH + 5 {
            save(
                format!("bad-{n:03}"),
                "Mars/Olympus_Mons",
                chrono::Duration::seconds(10),
            )
            .await;
        }
        save("good".to_owned(), "UTC", chrono::Duration::seconds(1)).await;

        let mut pass = Pass::default();
        pass.run(&storage).await.expect("a pass");
        let good = storage.recurring_job("good").await.unwrap().unwrap();
        assert!(good.last_job_id.is_some(), "the good job fired");
        assert_eq!(pass.left_alone.len(), DUE_BATCH + 5);
        let bad = storage.recurring_job("bad-000").await.unwrap().unwrap();
        assert_eq!(
            bad.next_run_at,
            Some(now - chrono::Duration::seconds(10)),
            "left as it was"
        );
    }
}
