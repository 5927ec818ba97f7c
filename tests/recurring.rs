//! Recurring jobs run by real servers: `#[recurring]` jobs are stored at
//! start and fire on their ticks, on time; a recurring job on three
//! PostgreSQL servers, one stopped midway, enqueues each tick exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

mod common;

use chrono::{DateTime, Utc};
use common::*;
use jobs::prelude::*;
use jobs::recurring::Misfire;
use jobs::{JobQuery, JobRecord};

/// Fires every second; every server of this binary stores it at start.
#[recurring(cron = "* * * * * *")]
async fn every_second() {}

/// A job with an argument, made recurring through the API.
#[job]
async fn count_tick(label: String) {
    let _ = label;
}

/// Every job named `name`, newest first.
async fn jobs_named(storage: &Storage, name: &str) -> Vec<JobRecord> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let mut query = JobQuery::new().limit(500);
        if let Some(id) = before {
            query = query.before(id);
        }
        let page = storage.list_jobs(query).await.expect("list jobs");
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        all.extend(page.into_iter().filter(|job| job.name == name));
    }
    all
}

/// The tick a recurring run was enqueued for, from its first history entry.
async fn tick_of(storage: &Storage, job: &JobRecord) -> DateTime<Utc> {
    let history = storage.history(job.id).await.expect("history");
    let data = history[0].data.as_ref().expect("the tick's data");
    DateTime::parse_from_rfc3339(data["tick"].as_str().expect("a tick"))
        .expect("an RFC 3339 tick")
        .to_utc()
}

/// An every-second `#[recurring]` job is stored at start as defined in
/// code, fires on every tick, and starts close to it: the scheduler sleeps
/// until the tick rather than polling. Delays are measured by the storage's clock (the
/// tick in the run's history, and when it moved to `Processing`).
async fn recurring_job_starts_close_to_its_tick(fx: &Fixture) {
    let server = fast_server(&fx.storage).start().expect("server");
    wait_until("six runs of every_second succeeded", || async {
        let runs = jobs_named(&fx.storage, "every_second").await;
        runs.iter()
            .filter(|job| job.state == State::Succeeded)
            .count()
            >= 6
    })
    .await;
    server.shutdown().await;

    let stored = fx
        .storage
        .recurring_job("every_second")
        .await
        .unwrap()
        .expect("stored at start");
    assert!(stored.in_code && !stored.missing_from_code);
    assert_eq!(stored.definition.cron, "* * * * * *");
    assert_eq!(stored.definition.time_zone, "UTC");
    assert!(stored.last_job_id.is_some());

    let mut delays = Vec::new();
    let mut ticks = Vec::new();
    for job in jobs_named(&fx.storage, "every_second").await {
        if job.state != State::Succeeded {
            continue;
        }
        let tick = tick_of(&fx.storage, &job).await;
        ticks.push(tick);
        let history = fx.storage.history(job.id).await.unwrap();
        let started = history
            .iter()
            .find(|change| change.state == State::Processing)
            .expect("it ran")
            .at;
        delays.push((started - tick).to_std().unwrap_or_default());
    }
    // Every tick fires, not one per check of the schedule: the runs' ticks
    // are one second apart (one gap allowed, for a machine that stalled).
    ticks.sort();
    let gaps = ticks
        .windows(2)
        .filter(|pair| pair[1] - pair[0] != chrono::Duration::seconds(1))
        .count();
    assert!(gaps <= 1, "ticks without a run between runs: {ticks:?}");
    delays.sort();
    let median = delays[delays.len() / 2];
    eprintln!("start delays after the tick: {delays:?}");
    assert!(
        median < Duration::from_millis(100),
        "median start delay {median:?}: {delays:?}"
    );
    assert!(
        delays.iter().all(|delay| *delay < Duration::from_secs(1)),
        "{delays:?}"
    );
}

/// Takes longer than the one second between its ticks.
#[job]
async fn slow_tick(millis: u64) {
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// An every-second job that runs 2.5 s and skips ticks while it runs: its
/// runs never overlap, although free workers could take them.
async fn skip_if_running_never_overlaps(fx: &Fixture) {
    let client = Client::new(fx.storage.clone());
    slow_tick::recurring_with(
        &client,
        "slow",
        RecurringOptions::cron("* * * * * *").skip_if_running(true),
        2500,
    )
    .await
    .expect("add the recurring job");
    let server = fast_server(&fx.storage).start().expect("server");
    wait_until("three runs of slow_tick succeeded", || async {
        let runs = jobs_named(&fx.storage, "slow_tick").await;
        runs.iter()
            .filter(|job| job.state == State::Succeeded)
            .count()
            >= 3
    })
    .await;
    server.shutdown().await;

    let mut runs = Vec::new();
    for job in jobs_named(&fx.storage, "slow_tick").await {
        let history = fx.storage.history(job.id).await.unwrap();
        let at = |state| {
            history
                .iter()
                .find(|change| change.state == state)
                .map(|change| change.at)
        };
        runs.push((at(State::Processing), at(State::Succeeded)));
    }
    runs.sort();
    for pair in runs.windows(2) {
        let (Some(_), Some(finished)) = pair[0] else {
            panic!("an earlier run did not finish before a later one: {runs:?}")
        };
        let started = pair[1].0.expect("a later run started");
        assert!(started >= finished, "runs overlap: {runs:?}");
    }
}

/// (enqueued at, tick) of each run, by recurring job id.
type RunsById = BTreeMap<String, Vec<(DateTime<Utc>, DateTime<Utc>)>>;

/// Enqueued by the misfire test's recurring jobs.
#[job]
async fn catch_up(policy: String) {
    let _ = policy;
}

/// Recurring jobs whose ticks passed while no server ran: when a server
/// starts, `once` enqueues one run for all the missed ticks, `each:4` one
/// run for each of the last four, and `skip` none for ticks half an hour
/// and more late; then each goes on from its next tick.
async fn missed_ticks_follow_the_misfire_policy(fx: &Fixture) {
    use jobs::storage::{RecurringDefinition, SaveRecurringParams};
    let backend = fx.backend().await;
    let clock = backend.clock().await.unwrap();
    let now = DateTime::from_timestamp(clock.timestamp(), 0).unwrap();
    let hour = DateTime::from_timestamp(clock.timestamp() / 3600 * 3600, 0).unwrap();
    for (id, cron, misfire, due) in [
        (
            "once",
            "* * * * * *",
            Misfire::RunOnce,
            now - chrono::Duration::seconds(10),
        ),
        (
            "each",
            "* * * * * *",
            Misfire::run_each(4),
            now - chrono::Duration::seconds(10),
        ),
        (
            "skip",
            "0 0 * * * *",
            Misfire::Skip,
            hour - chrono::Duration::hours(2),
        ),
    ] {
        let definition = RecurringDefinition {
            id: id.to_owned(),
            job_name: "catch_up".to_owned(),
            args: format!(r#"{{"policy":"{id}"}}"#),
            queue: "default".to_owned(),
            max_attempts: 1,
            cron: cron.to_owned(),
            time_zone: "UTC".to_owned(),
            misfire,
            skip_if_running: false,
        };
        backend
            .save_recurring(SaveRecurringParams {
                definition,
                in_code: false,
                next_run_at: Some(due),
            })
            .await
            .unwrap();
    }
    let server = fast_server(&fx.storage).start().expect("server");
    wait_until("the missed ticks were handled", || async {
        let mut handled = true;
        for id in ["once", "each", "skip"] {
            let job = fx.storage.recurring_job(id).await.unwrap().unwrap();
            handled &= job.next_run_at.is_some_and(|next| next > now);
        }
        handled
    })
    .await;
    server.shutdown().await;

    // The runs of the first pass, per recurring job: they share the
    // earliest enqueue time.
    let mut runs: RunsById = BTreeMap::new();
    for job in jobs_named(&fx.storage, "catch_up").await {
        let history = fx.storage.history(job.id).await.unwrap();
        let data = history[0].data.as_ref().unwrap();
        let id = data["recurring_job"].as_str().unwrap().to_owned();
        runs.entry(id)
            .or_default()
            .push((job.created_at, tick_of(&fx.storage, &job).await));
    }
    let first_pass = |id: &str| -> Vec<DateTime<Utc>> {
        let runs = runs.get(id).cloned().unwrap_or_default();
        let Some(first) = runs.iter().map(|(created, _)| *created).min() else {
            return Vec::new();
        };
        let mut ticks: Vec<_> = runs
            .iter()
            .filter(|(created, _)| *created == first)
            .map(|(_, tick)| *tick)
            .collect();
        ticks.sort();
        ticks
    };
    let once = first_pass("once");
    assert_eq!(once.len(), 1, "one run for all the missed ticks: {runs:?}");
    assert!(once[0] >= now, "for the latest tick due: {once:?}");
    let each = first_pass("each");
    assert_eq!(each.len(), 4, "one run for each of the last four: {runs:?}");
    assert!(
        each.windows(2)
            .all(|pair| pair[1] - pair[0] == chrono::Duration::seconds(1))
    );
    assert!(
        each[0] > now - chrono::Duration::seconds(10),
        "older ticks dropped: {each:?}"
    );
    assert!(
        !runs.contains_key("skip"),
        "a tick two hours late is skipped: {runs:?}"
    );
    let skip = fx.storage.recurring_job("skip").await.unwrap().unwrap();
    assert_eq!(skip.next_run_at, Some(hour + chrono::Duration::hours(1)));
    assert_eq!(skip.last_job_id, None);
}

on_every_storage!(
    recurring_job_starts_close_to_its_tick,
    skip_if_running_never_overlaps,
    missed_ticks_follow_the_misfire_policy
);

/// Three servers on one PostgreSQL schema, an every-second schedule with
/// a catch-up run per missed tick; the first server stops after 30 ticks
/// and a fourth starts. Over at least 60 ticks, every tick from the first
/// to the last has exactly one run: none twice, none missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tick_is_enqueued_once_on_three_postgres_servers() {
    let Some(fx) = Fixture::postgres().await else {
        return;
    };
    let client = Client::new(fx.storage.clone());
    count_tick::recurring_with(
        &client,
        "exactly-once",
        RecurringOptions::cron("* * * * * *").misfire(Misfire::run_each(1000)),
        "tick".to_owned(),
    )
    .await
    .expect("add the recurring job");

    let start = |storage: Storage| {
        fast_server(&storage)
            .recurring_check_interval(Duration::from_millis(200))
            .start()
            .expect("server")
    };
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(start(fx.reopen().await));
    }
    let runs = || async { jobs_named(&fx.storage, "count_tick").await.len() };
    wait_within("30 ticks", Duration::from_secs(60), || async {
        runs().await >= 30
    })
    .await;
    servers.remove(0).shutdown().await;
    servers.push(start(fx.reopen().await));
    wait_within("65 ticks", Duration::from_secs(90), || async {
        runs().await >= 65
    })
    .await;
    for server in servers {
        server.shutdown().await;
    }

    let mut per_tick: BTreeMap<DateTime<Utc>, usize> = BTreeMap::new();
    for job in jobs_named(&fx.storage, "count_tick").await {
        *per_tick
            .entry(tick_of(&fx.storage, &job).await)
            .or_default() += 1;
    }
    let twice: Vec<_> = per_tick.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ticks enqueued more than once: {twice:?}");
    let first = *per_tick.keys().next().unwrap();
    let last = *per_tick.keys().last().unwrap();
    let expected = (last - first).num_seconds() + 1;
    assert!(expected >= 60, "{expected} ticks");
    assert_eq!(
        per_tick.len() as i64,
        expected,
        "every tick from {first} to {last} has a run"
    );
}
