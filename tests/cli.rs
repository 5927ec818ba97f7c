//! The `jobs` command-line tool, run as a process against every storage:
//! `status`, `list`, `show`, `retry`, `delete`, `pause`/`resume`,
//! `recurring list/trigger/pause/resume`, `migrate`, `dashboard`, in text
//! and `--json`; errors that say what to do, with a failing exit status.

#[macro_use]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};

use common::*;
use jobs::prelude::*;
use jobs::{JobId, PauseTarget, RecurringOptions};
use serde_json::Value;

#[job]
async fn later(n: u32) {
    let _ = n;
}

/// Runs `jobs` with the fixture's storage and `args`; its output.
async fn jobs_cli(fx: &Fixture, args: &[&str]) -> Output {
    let mut all = fx.cli_storage_args();
    all.extend(args.iter().map(|arg| (*arg).to_owned()));
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_jobs"))
            .args(&all)
            .env_remove("DATABASE_URL")
            .output()
            .expect("run jobs")
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON a successful `--json` run printed.
fn json_of(output: &Output) -> Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

async fn scheduled(storage: &Storage, count: u32) -> Vec<JobId> {
    let client = Client::new(storage.clone());
    let mut ids = Vec::new();
    for n in 0..count {
        let id = later::schedule_in(&client, Duration::from_secs(3600), n)
            .await
            .unwrap();
        ids.push(JobId::from(id));
    }
    ids
}

/// `status` counts jobs per state and per queue; `list` pages jobs by
/// state and queue, newest first.
async fn status_and_list_read_the_storage(fx: &Fixture) {
    let ids = scheduled(&fx.storage, 2).await;
    let client = Client::new(fx.storage.clone());
    later::enqueue_with(&client, EnqueueOptions::new().queue("mail"), 9)
        .await
        .unwrap();
    let done = later::enqueue(&client, 8).await.unwrap();
    let server = fast_server(&fx.storage)
        .queues(["default"])
        .start()
        .unwrap();
    wait_for_state(&fx.storage, done, State::Succeeded).await;
    server.shutdown().await;

    let status = json_of(&jobs_cli(fx, &["--json", "status"]).await);
    assert_eq!(status["counts"]["Scheduled"], 2, "{status}");
    assert_eq!(status["counts"]["Enqueued"], 1, "{status}");
    assert_eq!(status["counts"]["Succeeded"], 1, "{status}");
    assert_eq!(status["succeeded_ever"], 1, "{status}");
    let mail = status["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|queue| queue["queue"] == "mail")
        .expect("the mail queue");
    assert_eq!(mail["counts"]["Enqueued"], 1, "{status}");
    let text = jobs_cli(fx, &["status"]).await;
    assert!(text.status.success());
    assert!(stdout(&text).contains("Scheduled"), "{}", stdout(&text));

    let listed = json_of(&jobs_cli(fx, &["--json", "list", "--state", "scheduled"]).await);
    let listed: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, [ids[1].0, ids[0].0], "newest first");
    let page = jobs_cli(fx, &["list", "--queue", "mail", "--limit", "1"]).await;
    let page = stdout(&page);
    assert!(page.contains("Enqueued") && page.contains("mail"), "{page}");
    assert!(page.contains("(older: --before"), "{page}");
}

/// `show` prints a job with its history; `retry` and `delete` move jobs
/// and report the ones that cannot move, failing.
async fn show_retry_and_delete_jobs(fx: &Fixture) {
    let id = scheduled(&fx.storage, 1).await[0];
    let shown = json_of(&jobs_cli(fx, &["--json", "show", &id.to_string()]).await);
    assert_eq!(shown["name"], "later");
    assert_eq!(shown["args"]["n"], 0, "{shown}");
    assert_eq!(shown["history"][0]["state"], "Scheduled", "{shown}");
    let text = stdout(&jobs_cli(fx, &["show", &id.to_string()]).await);
    assert!(text.contains(&format!("job {id}: later")), "{text}");

    let retried = jobs_cli(fx, &["retry", &id.to_string()]).await;
    assert!(retried.status.success(), "{}", stderr(&retried));
    assert!(stdout(&retried).contains(&format!("requeued job {id}")));
    assert_eq!(
        fx.storage.job(id).await.unwrap().unwrap().state,
        State::Enqueued
    );
    let again = jobs_cli(fx, &["retry", &id.to_string()]).await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("cannot move from Enqueued"),
        "{}",
        stderr(&again)
    );

    let missing = (id.0 + 1_000_000).to_string();
    let deleted = jobs_cli(fx, &["delete", &id.to_string(), &missing]).await;
    assert!(!deleted.status.success(), "one of the two is no job");
    assert!(stdout(&deleted).contains(&format!("deleted job {id}")));
    assert!(
        stderr(&deleted).contains(&format!("no job with id {missing}")),
        "{}",
        stderr(&deleted)
    );
    assert_eq!(
        fx.storage.job(id).await.unwrap().unwrap().state,
        State::Deleted,
        "the job that exists moved"
    );
    let unknown = jobs_cli(fx, &["show", &missing]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("jobs list"),
        "{}",
        stderr(&unknown)
    );
}

/// Queues pause and resume; recurring jobs are listed, triggered, paused
/// and resumed; an unknown one is an error naming the command to look.
async fn queues_and_recurring_jobs_are_controlled(fx: &Fixture) {
    let storage = &fx.storage;
    let paused = jobs_cli(fx, &["pause", "mail"]).await;
    assert!(paused.status.success(), "{}", stderr(&paused));
    let listed = storage.paused().await.unwrap();
    assert_eq!(listed[0].target, PauseTarget::Queue("mail".into()));
    let status = json_of(&jobs_cli(fx, &["--json", "status"]).await);
    assert_eq!(status["paused_queues"][0], "mail", "{status}");
    jobs_cli(fx, &["resume", "mail"]).await;
    assert!(storage.paused().await.unwrap().is_empty());

    let client = Client::new(storage.clone());
    later::recurring_with(&client, "nightly", RecurringOptions::cron("0 0 3 * * *"), 7)
        .await
        .unwrap();
    let list = json_of(&jobs_cli(fx, &["--json", "recurring", "list"]).await);
    assert_eq!(list[0]["id"], "nightly", "{list}");
    assert_eq!(list[0]["cron"], "0 0 3 * * *");
    let triggered = json_of(&jobs_cli(fx, &["--json", "recurring", "trigger", "nightly"]).await);
    let job = JobId(triggered["job"].as_i64().unwrap());
    assert_eq!(
        storage.job(job).await.unwrap().unwrap().state,
        State::Enqueued
    );
    jobs_cli(fx, &["recurring", "pause", "nightly"]).await;
    assert!(
        storage
            .recurring_job("nightly")
            .await
            .unwrap()
            .unwrap()
            .paused
    );
    jobs_cli(fx, &["recurring", "resume", "nightly"]).await;
    assert!(
        !storage
            .recurring_job("nightly")
            .await
            .unwrap()
            .unwrap()
            .paused
    );
    let unknown = jobs_cli(fx, &["recurring", "trigger", "weekly"]).await;
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("jobs recurring list"),
        "{}",
        stderr(&unknown)
    );
}

/// `dashboard` serves the dashboard on the address it prints.
async fn the_dashboard_is_served(fx: &Fixture) {
    let mut args = fx.cli_storage_args();
    args.extend([
        "dashboard".to_owned(),
        "--bind".to_owned(),
        "127.0.0.1:0".to_owned(),
    ]);
    let answer = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jobs"))
            .args(&args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run jobs dashboard");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .strip_prefix("dashboard at http://")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("printed {line:?}"))
            .to_owned();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("<h1>Overview</h1>"), "{answer}");
}

/// Without a database the tool says how to give one; `--schema` is for
/// PostgreSQL only; `migrate` succeeds on a migrated storage.
async fn errors_say_what_to_do(fx: &Fixture) {
    let none = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_jobs"))
            .arg("status")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(stderr(&none).contains("--database"), "{}", stderr(&none));
    let bad_state = jobs_cli(fx, &["list", "--state", "nope"]).await;
    assert_eq!(bad_state.status.code(), Some(2));
    assert!(
        stderr(&bad_state).contains("Scheduled, Enqueued"),
        "{}",
        stderr(&bad_state)
    );
    let migrated = jobs_cli(fx, &["migrate"]).await;
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    if fx.storage_kind() == "sqlite" {
        let schema = jobs_cli(fx, &["--schema", "x", "status"]).await;
        assert!(
            stderr(&schema).contains("PostgreSQL only"),
            "{}",
            stderr(&schema)
        );
    }
}

on_every_storage!(
    status_and_list_read_the_storage,
    show_retry_and_delete_jobs,
    queues_and_recurring_jobs_are_controlled,
    the_dashboard_is_served,
    errors_say_what_to_do,
);
