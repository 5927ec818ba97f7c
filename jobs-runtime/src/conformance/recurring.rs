//! Conformance cases for recurring jobs: stored definitions, the claim of
//! a tick (compare-and-set, one winner), due lists, pause, trigger, remove
//! and the sync of the jobs defined in code.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::recurring::{Misfire, tick_job};
use jobs_core::{
    DueRecurring, DueRecurringParams, Error, FireRecurringParams, PauseRecurringParams,
    RecurringDefinition, RecurringJob, SaveRecurringParams, State, SyncRecurringParams,
};

use super::{DEADLINE, history, record};
use crate::Storage;

fn definition(id: &str, cron: &str) -> RecurringDefinition {
    RecurringDefinition {
        id: id.to_owned(),
        job_name: "report".to_owned(),
        args: format!(r#"{{"id":"{id}"}}"#),
        queue: "reports".to_owned(),
        max_attempts: 2,
        cron: cron.to_owned(),
        time_zone: "Europe/Berlin".to_owned(),
        misfire: Misfire::run_each(5),
        skip_if_running: true,
    }
}

async fn stored(storage: &Storage, id: &str) -> RecurringJob {
    storage
        .recurring_job(id)
        .await
        .expect("read recurring job")
        .unwrap_or_else(|| panic!("recurring job {id} exists"))
}

async fn due(storage: &Storage) -> DueRecurring {
    storage
        .due_recurring(DueRecurringParams {
            limit: 100,
            after: None,
        })
        .await
        .expect("due recurring jobs")
}

async fn clock(storage: &Storage) -> DateTime<Utc> {
    storage.backend().clock().await.expect("clock")
}

/// A saved job reads back whole, its next run the first tick after the
/// storage's clock; saving it unchanged changes nothing (version
/// included); a changed definition keeps the next run unless the schedule
/// changed.
pub async fn recurring_jobs_are_saved_and_listed(storage: &Storage) {
    let before = clock(storage).await;
    storage
        .save_recurring(definition("nightly", "0 30 2 * * *"), false)
        .await
        .expect("save");
    let job = stored(storage, "nightly").await;
    assert_eq!(job.definition, definition("nightly", "0 30 2 * * *"));
    assert!(!job.in_code && !job.paused && !job.missing_from_code);
    assert_eq!(
        (job.last_run_at, job.last_job_id, job.last_job_state),
        (None, None, None)
    );
    let next = job.next_run_at.expect("a next run");
    assert!(
        next > before && next - before <= chrono::Duration::hours(25),
        "{next}"
    );

    storage
        .save_recurring(definition("nightly", "0 30 2 * * *"), false)
        .await
        .expect("save unchanged");
    assert_eq!(
        stored(storage, "nightly").await,
        job,
        "an unchanged save changes nothing"
    );

    let mut changed = definition("nightly", "0 30 2 * * *");
    changed.args = r#"{"id":"changed"}"#.to_owned();
    storage
        .save_recurring(changed.clone(), false)
        .await
        .expect("save");
    let after = stored(storage, "nightly").await;
    assert_eq!(after.definition, changed);
    assert_eq!(
        after.next_run_at, job.next_run_at,
        "same schedule, same next run"
    );
    assert!(after.version > job.version);

    storage
        .save_recurring(definition("nightly", "0 0 0 1 1 *"), false)
        .await
        .expect("save");
    let yearly = stored(storage, "nightly").await;
    assert_ne!(
        yearly.next_run_at, job.next_run_at,
        "a new schedule, a new next run"
    );

    storage
        .save_recurring(definition("another", "0 * * * *"), false)
        .await
        .expect("save");
    let ids: Vec<String> = storage
        .recurring_jobs()
        .await
        .expect("list")
        .into_iter()
        .map(|job| job.definition.id)
        .collect();
    assert_eq!(ids, ["another", "nightly"]);

    let mut bad = definition("bad", "0 0 30 2 *");
    assert!(matches!(
        storage.save_recurring(bad.clone(), false).await,
        Err(Error::InvalidSchedule { .. })
    ));
    bad.cron = "* * * * *".to_owned();
    bad.time_zone = "Nowhere/Special".to_owned();
    assert!(matches!(
        storage.save_recurring(bad, false).await,
        Err(Error::InvalidSchedule { .. })
    ));
    assert!(storage.recurring_job("bad").await.unwrap().is_none());
}

/// However many schedulers claim one tick at once with the version they
/// read, one wins: one run is enqueued, with the tick in its history, and
/// recorded as the last run.
pub async fn a_tick_is_claimed_once(storage: &Storage) {
    storage
        .save_recurring(definition("every-second", "* * * * * *"), false)
        .await
        .expect("save");
    let job = stored(storage, "every-second").await;
    let tick = job.next_run_at.expect("a next run");
    let next = tick + chrono::Duration::seconds(1);
    let claims = (0..8).map(|_| {
        let storage = storage.clone();
        let params = FireRecurringParams {
            id: "every-second".to_owned(),
            version: job.version,
            next_run_at: Some(next),
            jobs: vec![tick_job(&job.definition, tick)],
            last_run_at: Some(tick),
        };
        tokio::spawn(async move { storage.fire_recurring(params).await.expect("fire") })
    });
    let mut won = Vec::new();
    for claim in claims {
        if let Some(ids) = claim.await.expect("claim task") {
            won.push(ids);
        }
    }
    assert_eq!(won.len(), 1, "one claim wins: {won:?}");
    let ids = &won[0];
    assert_eq!(ids.len(), 1);
    let run = record(storage, ids[0]).await;
    assert_eq!(
        (run.name.as_str(), run.queue.as_str()),
        ("report", "reports")
    );
    assert_eq!((run.state, run.max_attempts), (State::Enqueued, 2));
    assert_eq!(run.args, job.definition.args);
    let first = &history(storage, ids[0]).await[0];
    let tick_text = tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(first.state, State::Enqueued);
    assert_eq!(
        first.reason.as_deref(),
        Some(format!("recurring job `every-second`, tick {tick_text}").as_str())
    );
    let data = first.data.clone().expect("the tick's data");
    assert_eq!(data["recurring_job"], "every-second");
    assert_eq!(data["tick"], tick_text.as_str());

    let after = stored(storage, "every-second").await;
    assert_eq!(after.next_run_at, Some(next));
    assert_eq!(after.last_run_at, Some(tick));
    assert_eq!(after.last_job_id, Some(ids[0]));
    assert_eq!(after.last_job_state, Some(State::Enqueued));
    assert!(after.last_run_unfinished());
    assert!(after.version > job.version);

    // A claim with the old version writes nothing, even without runs.
    let stale = FireRecurringParams {
        id: "every-second".to_owned(),
        version: job.version,
        next_run_at: None,
        jobs: Vec::new(),
        last_run_at: None,
    };
    assert_eq!(storage.fire_recurring(stale).await.expect("fire"), None);
    assert_eq!(stored(storage, "every-second").await, after);

    // A tick skipped (no runs) moves the next run and keeps the last run.
    let skipped = FireRecurringParams {
        id: "every-second".to_owned(),
        version: after.version,
        next_run_at: Some(next + chrono::Duration::seconds(1)),
        jobs: Vec::new(),
        last_run_at: None,
    };
    assert_eq!(
        storage.fire_recurring(skipped).await.expect("fire"),
        Some(Vec::new())
    );
    let skipped = stored(storage, "every-second").await;
    assert_eq!(skipped.last_job_id, after.last_job_id);
    assert_eq!(skipped.last_run_at, after.last_run_at);
    assert_eq!(
        skipped.next_run_at,
        Some(next + chrono::Duration::seconds(1))
    );
}

/// Due lists hold the jobs whose next run has come by the storage's
/// clock, neither paused nor missing from code, by next run then id, a
/// page at a time; `next_due_at` is the earliest of the others.
pub async fn due_lists_only_jobs_whose_tick_came(storage: &Storage) {
    // Due one second ago, both: the order between them is by id.
    let due_at = clock(storage).await - chrono::Duration::seconds(1);
    for id in ["soon-b", "soon-a"] {
        storage
            .backend()
            .save_recurring(SaveRecurringParams {
                definition: definition(id, "* * * * * *"),
                in_code: false,
                next_run_at: Some(due_at),
            })
            .await
            .expect("save");
    }
    storage
        .save_recurring(definition("yearly", "0 0 0 1 1 *"), false)
        .await
        .expect("save");
    let yearly = stored(storage, "yearly").await.next_run_at;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let found = loop {
        let found = due(storage).await;
        if found.due.len() == 2 {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not due within {DEADLINE:?}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ids: Vec<&str> = found
        .due
        .iter()
        .map(|job| job.definition.id.as_str())
        .collect();
    assert_eq!(ids, ["soon-a", "soon-b"], "same next run: by id");
    assert!(found.due[0].next_run_at.unwrap() <= found.now);
    assert_eq!(found.next_due_at, yearly);

    let page = |after: Option<(DateTime<Utc>, String)>| {
        storage.due_recurring(DueRecurringParams { limit: 1, after })
    };
    let first = page(None).await.expect("first page");
    assert_eq!(first.due.len(), 1);
    let last = &first.due[0];
    let second = page(Some((
        last.next_run_at.unwrap(),
        last.definition.id.clone(),
    )))
    .await
    .expect("second page");
    let ids: Vec<&str> = second
        .due
        .iter()
        .map(|job| job.definition.id.as_str())
        .collect();
    assert_eq!(ids, ["soon-b"]);

    storage.pause_recurring("soon-a").await.expect("pause");
    storage.pause_recurring("soon-b").await.expect("pause");
    let found = due(storage).await;
    assert!(found.due.is_empty(), "a paused job is not due: {found:?}");
    assert_eq!(found.next_due_at, yearly);
}

/// Pausing, resuming, triggering and removing; each refuses an unknown id.
pub async fn recurring_jobs_pause_resume_trigger_and_remove(storage: &Storage) {
    storage
        .save_recurring(definition("daily", "0 0 8 * * *"), false)
        .await
        .expect("save");
    let saved = stored(storage, "daily").await;
    storage.pause_recurring("daily").await.expect("pause");
    assert!(stored(storage, "daily").await.paused);
    // Saving again keeps the pause.
    storage
        .save_recurring(definition("daily", "0 0 9 * * *"), false)
        .await
        .expect("save");
    assert!(stored(storage, "daily").await.paused);

    let triggered = storage.trigger_recurring("daily").await.expect("trigger");
    let after = stored(storage, "daily").await;
    assert_eq!(after.last_job_id, Some(triggered));
    assert!(after.last_run_at.is_some());
    let first = &history(storage, triggered).await[0];
    assert_eq!(
        first.reason.as_deref(),
        Some("recurring job `daily`, triggered")
    );
    assert_eq!(first.data.as_ref().unwrap()["triggered"], true);
    assert_eq!(record(storage, triggered).await.state, State::Enqueued);

    let before = clock(storage).await;
    storage.resume_recurring("daily").await.expect("resume");
    let resumed = stored(storage, "daily").await;
    assert!(!resumed.paused);
    assert!(resumed.next_run_at.unwrap() > before);
    assert_ne!(resumed.version, saved.version);
    // A pause or resume tied to a version read earlier changes nothing.
    let stale = PauseRecurringParams {
        id: "daily".to_owned(),
        paused: true,
        next_run_at: None,
        version: saved.version,
    };
    assert!(
        !storage
            .backend()
            .pause_recurring(stale)
            .await
            .expect("pause")
    );
    assert_eq!(stored(storage, "daily").await, resumed);

    storage.remove_recurring("daily").await.expect("remove");
    assert!(storage.recurring_job("daily").await.unwrap().is_none());
    assert!(
        storage.job(triggered).await.unwrap().is_some(),
        "its runs stay"
    );

    for result in [
        storage.pause_recurring("nope").await,
        storage.resume_recurring("nope").await,
        storage.remove_recurring("nope").await,
        storage.trigger_recurring("nope").await.map(|_| ()),
    ] {
        assert!(
            matches!(&result, Err(Error::RecurringJobNotFound(id)) if id == "nope"),
            "{result:?}"
        );
    }
}

/// A sync saves the jobs defined in code and marks the stored ones it
/// lacks as missing (they leave the due lists), unless their job is one
/// that another binary's live server runs; a later sync that has them
/// again brings them back. Jobs added through the API are untouched.
pub async fn sync_marks_jobs_missing_from_code(storage: &Storage) {
    let in_code = |id: &str| {
        let mut definition = definition(id, "* * * * * *");
        definition.job_name = format!("job-{id}");
        SaveRecurringParams {
            definition,
            in_code: true,
            next_run_at: Some(Utc::now() - chrono::Duration::seconds(5)),
        }
    };
    storage
        .save_recurring(definition("from-api", "* * * * * *"), false)
        .await
        .expect("save");
    let sync = |ids: &[&str], others: &[&str]| SyncRecurringParams {
        jobs: ids.iter().map(|id| in_code(id)).collect(),
        other_job_names: others.iter().map(|name| (*name).to_owned()).collect(),
    };
    let backend = storage.backend();
    assert_eq!(
        backend
            .sync_recurring(sync(&["a", "b"], &[]))
            .await
            .unwrap(),
        0
    );
    assert!(stored(storage, "a").await.in_code);
    let b_before = stored(storage, "b").await;
    assert_eq!(
        backend
            .sync_recurring(sync(&["a"], &["job-b"]))
            .await
            .unwrap(),
        0,
        "another binary's live server runs b's job"
    );
    assert!(!stored(storage, "b").await.missing_from_code);
    assert_eq!(backend.sync_recurring(sync(&["a"], &[])).await.unwrap(), 1);
    let b = stored(storage, "b").await;
    assert!(b.missing_from_code && b.in_code);
    assert!(!stored(storage, "from-api").await.missing_from_code);
    let ids: Vec<String> = due(storage)
        .await
        .due
        .into_iter()
        .map(|job| job.definition.id)
        .collect();
    assert!(
        ids.contains(&"a".to_owned()) && !ids.contains(&"b".to_owned()),
        "{ids:?}"
    );
    assert_eq!(
        backend.sync_recurring(sync(&["a"], &[])).await.unwrap(),
        0,
        "marked once"
    );
    assert_eq!(
        backend
            .sync_recurring(sync(&["a", "b"], &[]))
            .await
            .unwrap(),
        0
    );
    let back = stored(storage, "b").await;
    assert!(!back.missing_from_code);
    assert_eq!(
        back.next_run_at, b_before.next_run_at,
        "its ticks are its misfire policy's"
    );
}

/// Saves a recurring job and fires its first tick (for the notification
/// case: a tick's run wakes the servers watching, as an enqueue does).
pub(super) async fn fire_one_tick(storage: &Storage) {
    storage
        .save_recurring(definition("wake", "* * * * * *"), false)
        .await
        .expect("save");
    let job = stored(storage, "wake").await;
    let tick = job.next_run_at.expect("a next run");
    let fired = storage
        .backend()
        .fire_recurring(FireRecurringParams {
            id: "wake".to_owned(),
            version: job.version,
            next_run_at: Some(tick + chrono::Duration::seconds(1)),
            jobs: vec![tick_job(&job.definition, tick)],
            last_run_at: Some(tick),
        })
        .await
        .expect("fire");
    assert_eq!(fired.map(|ids| ids.len()), Some(1));
}
