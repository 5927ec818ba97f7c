//! Conformance cases for what running jobs record and carry: job
//! parameters, log lines and progress.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::{
    Attempt, ContinueOn, EnqueueParams, Error, ExpireParams, JobId, JobLogQuery, JobParameters,
    JobProgress, LogLine, MAX_PARAMETER_LEN, NewJob, Outcome, SetParametersParams, State,
    WriteLogParams,
};

use super::continuations::continuation;
use super::{close_to, enqueue, fetch, finish, new_job, record};
use crate::Storage;

fn with_parameters(mut job: NewJob, parameters: &[(&str, &str)]) -> NewJob {
    job.parameters = parameters
        .iter()
        .map(|(name, json)| ((*name).to_owned(), (*json).to_owned()))
        .collect();
    job
}

fn parameters(pairs: &[(&str, &str)]) -> JobParameters {
    pairs
        .iter()
        .map(|(name, json)| ((*name).to_owned(), (*json).to_owned()))
        .collect()
}

async fn parameters_of(storage: &Storage, id: JobId) -> JobParameters {
    storage
        .backend()
        .job_parameters(id)
        .await
        .expect("job_parameters")
}

async fn write_log(storage: &Storage, lines: Vec<LogLine>, progress: Vec<JobProgress>) {
    storage
        .backend()
        .write_log(WriteLogParams { lines, progress })
        .await
        .expect("write_log");
}

fn line(job: Attempt, age_ms: u64, text: &str) -> LogLine {
    LogLine {
        job,
        age: Duration::from_millis(age_ms),
        text: text.to_owned(),
    }
}

/// The parameters of each job stored by an enqueue are stored with it, on
/// every path (plain jobs, a continuation, unique jobs); a unique job's
/// duplicate, given its key's holder's id, adds none of its own. A refused
/// parameter stores nothing of the call.
pub async fn parameters_are_stored_with_new_jobs_not_with_duplicates(storage: &Storage) {
    let ids = enqueue(
        storage,
        vec![
            with_parameters(new_job("a", "q"), &[("tenant", r#""acme""#), ("n", "1")]),
            new_job("b", "q"),
            with_parameters(new_job("c", "q"), &[("tenant", r#""globex""#)]),
        ],
    )
    .await;
    assert_eq!(
        parameters_of(storage, ids[0]).await,
        parameters(&[("n", "1"), ("tenant", r#""acme""#)])
    );
    assert!(parameters_of(storage, ids[1]).await.is_empty());
    assert_eq!(
        parameters_of(storage, ids[2]).await,
        parameters(&[("tenant", r#""globex""#)])
    );

    let child = enqueue(
        storage,
        vec![with_parameters(
            continuation("q", ids[0], ContinueOn::Succeeded),
            &[("trace", r#""t-1""#)],
        )],
    )
    .await[0];
    assert_eq!(
        parameters_of(storage, child).await,
        parameters(&[("trace", r#""t-1""#)])
    );

    let unique = |tag: &str| {
        let mut job = new_job("report", "q");
        job.unique = Some(jobs_core::Uniqueness::new().key("report", "day-1"));
        with_parameters(job, &[("tag", tag)])
    };
    let first = enqueue(
        storage,
        vec![unique(r#""first""#), unique(r#""same-call""#)],
    )
    .await;
    assert_eq!(first[0], first[1]);
    let later = enqueue(storage, vec![unique(r#""later""#)]).await[0];
    assert_eq!(later, first[0]);
    assert_eq!(
        parameters_of(storage, first[0]).await,
        parameters(&[("tag", r#""first""#)]),
        "a duplicate adds no parameter to its key's holder"
    );

    let before = storage.counts().await.expect("counts").total();
    let refused = storage
        .enqueue(EnqueueParams::jobs(vec![
            new_job("fine", "q"),
            with_parameters(new_job("bad", "q"), &[("", "1")]),
        ]))
        .await;
    assert!(matches!(refused, Err(Error::Config(_))), "{refused:?}");
    let too_long = "x".repeat(MAX_PARAMETER_LEN + 1);
    let refused = storage
        .enqueue(EnqueueParams::jobs(vec![with_parameters(
            new_job("bad", "q"),
            &[("big", &too_long)],
        )]))
        .await;
    assert!(matches!(refused, Err(Error::Config(_))), "{refused:?}");
    assert_eq!(
        storage.counts().await.expect("counts").total(),
        before,
        "nothing of a refused call is stored"
    );
}

/// `set_parameters` adds names and replaces the values of names set; an
/// unknown job is `JobNotFound`, a refused parameter `Config`, and neither
/// changes anything.
pub async fn set_parameters_adds_and_replaces(storage: &Storage) {
    let id = enqueue(
        storage,
        vec![with_parameters(
            new_job("a", "q"),
            &[("kept", "1"), ("replaced", "1")],
        )],
    )
    .await[0];
    let set = |job: JobId, pairs: &[(&str, &str)]| {
        storage.backend().set_parameters(SetParametersParams {
            job,
            parameters: parameters(pairs),
        })
    };
    set(id, &[("replaced", "2"), ("added", r#"{"x":[1,2]}"#)])
        .await
        .expect("set_parameters");
    assert_eq!(
        parameters_of(storage, id).await,
        parameters(&[
            ("added", r#"{"x":[1,2]}"#),
            ("kept", "1"),
            ("replaced", "2")
        ])
    );
    let unknown = JobId(id.0 + 1_000_000);
    let result = set(unknown, &[("a", "1")]).await;
    assert!(
        matches!(result, Err(Error::JobNotFound(job)) if job == unknown),
        "{result:?}"
    );
    assert!(parameters_of(storage, unknown).await.is_empty());
    let result = set(id, &[("ok", "1"), ("nul\0name", "1")]).await;
    assert!(matches!(result, Err(Error::Config(_))), "{result:?}");
    let result = set(id, &[("raw", "acme")]).await;
    assert!(
        matches!(&result, Err(Error::Config(message)) if message.contains("not JSON")),
        "{result:?}"
    );
    assert_eq!(parameters_of(storage, id).await.len(), 3, "nothing set");
}

/// Log lines are appended in the order written, each at the storage's now
/// minus its age; a line of a job that does not exist is dropped. The log
/// pages by line id. Progress is stored for a job's latest attempt only,
/// also when it arrives after the attempt ended; a new attempt starts
/// without one.
pub async fn write_log_appends_lines_and_current_progress(storage: &Storage) {
    let ids = enqueue(storage, vec![new_job("a", "q"), new_job("b", "q")]).await;
    let taken = fetch(storage, &["q"], 2).await;
    let (a, b) = (taken[0].held(), taken[1].held());
    let unknown = Attempt {
        id: JobId(ids[1].0 + 1_000_000),
        attempt: 1,
    };
    write_log(
        storage,
        vec![
            line(a, 5_000, "first, logged 5 s ago"),
            line(unknown, 0, "of no job"),
            line(b, 0, "b's line"),
            line(a, 0, "second \u{2400} with a NUL made storable"),
        ],
        vec![
            JobProgress {
                job: a,
                progress: 0.5,
            },
            JobProgress {
                job: b,
                progress: 0.7,
            },
        ],
    )
    .await;
    let now = storage.backend().clock().await.expect("clock");
    let log = storage
        .backend()
        .job_log(JobLogQuery::new(a.id))
        .await
        .expect("job_log");
    let texts: Vec<&str> = log.iter().map(|line| line.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "first, logged 5 s ago",
            "second \u{2400} with a NUL made storable"
        ]
    );
    assert!(log.iter().all(|line| line.attempt == a.attempt));
    let within = chrono::Duration::seconds(2);
    let five_s_ago: DateTime<Utc> = now - chrono::Duration::seconds(5);
    assert!(
        close_to(log[0].at, five_s_ago, within),
        "{:?} vs {five_s_ago:?}",
        log[0].at
    );
    assert!(
        close_to(log[1].at, now, within),
        "{:?} vs {now:?}",
        log[1].at
    );
    let next = storage
        .backend()
        .job_log(JobLogQuery::new(a.id).after(log[0].id).limit(1))
        .await
        .expect("job_log");
    assert_eq!(next, log[1..]);
    assert!(
        storage
            .backend()
            .job_log(JobLogQuery::new(unknown.id))
            .await
            .expect("job_log")
            .is_empty()
    );

    assert_eq!(record(storage, a.id).await.progress, Some(0.5));
    assert_eq!(record(storage, b.id).await.progress, Some(0.7));

    // b is given back and fetched again: its new attempt starts without
    // progress, and the old attempt's progress is not stored any more.
    let requeue = Outcome::Requeue {
        reason: "given back".into(),
        forgive: false,
    };
    finish(storage, b, requeue).await;
    let again = fetch(storage, &["q"], 1).await;
    let b2 = again[0].held();
    assert_eq!((b2.id, b2.attempt), (b.id, b.attempt + 1));
    assert_eq!(record(storage, b.id).await.progress, None);
    write_log(
        storage,
        Vec::new(),
        vec![
            JobProgress {
                job: b2,
                progress: 0.3,
            },
            JobProgress {
                job: b,
                progress: 0.9,
            },
        ],
    )
    .await;
    assert_eq!(
        record(storage, b.id).await.progress,
        Some(0.3),
        "an earlier attempt's progress is not stored"
    );
    finish(storage, a, Outcome::Succeeded { result: None }).await;
    write_log(
        storage,
        vec![line(a, 0, "after the end")],
        vec![JobProgress {
            job: a,
            progress: 1.0,
        }],
    )
    .await;
    let a_record = record(storage, a.id).await;
    assert_eq!(a_record.state, State::Succeeded);
    assert_eq!(
        a_record.progress,
        Some(1.0),
        "the last progress of the latest attempt, written after its end"
    );
    let log = storage
        .backend()
        .job_log(JobLogQuery::new(a.id))
        .await
        .expect("job_log");
    assert_eq!(
        log.last().map(|line| line.text.as_str()),
        Some("after the end"),
        "a line written late is kept: it reached the writer before the end"
    );
}

/// A finished job's log and parameters expire with it.
pub async fn a_jobs_log_and_parameters_expire_with_it(storage: &Storage) {
    let id = enqueue(
        storage,
        vec![with_parameters(
            new_job("a", "q"),
            &[("tenant", r#""acme""#)],
        )],
    )
    .await[0];
    let taken = fetch(storage, &["q"], 1).await;
    write_log(
        storage,
        vec![line(taken[0].held(), 0, "working")],
        Vec::new(),
    )
    .await;
    finish(
        storage,
        taken[0].held(),
        Outcome::Succeeded { result: None },
    )
    .await;
    // The job finished at least 50 ms ago by the storage's clock.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let expired = storage
        .backend()
        .expire(ExpireParams {
            older_than: Duration::from_millis(10),
            limit: 100,
        })
        .await
        .expect("expire");
    assert_eq!(expired, 1);
    assert!(storage.job(id).await.expect("job").is_none());
    assert!(parameters_of(storage, id).await.is_empty());
    assert!(
        storage
            .backend()
            .job_log(JobLogQuery::new(id))
            .await
            .expect("job_log")
            .is_empty()
    );
}
