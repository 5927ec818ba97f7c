//! The `web_app` example, run as a process on every storage and asked over
//! real HTTP: a signup stores its row and its welcome mail's job in one
//! transaction and the job then succeeds; a duplicate signup is refused
//! with `409` and leaves no job behind; bad input gets `400`/`415` with a
//! message; the dashboard is served under `/jobs`; Ctrl-C stops it cleanly.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::*;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jobs::prelude::*;
use jobs::{JobQuery, JobRecord};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    let fixture = Fixture::sqlite().await;
    signs_up_in_one_transaction_and_serves_the_dashboard(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let Some(fixture) = Fixture::postgres().await else {
        return;
    };
    signs_up_in_one_transaction_and_serves_the_dashboard(&fixture).await;
}

async fn signs_up_in_one_transaction_and_serves_the_dashboard(fx: &Fixture) {
    let app = WebApp::start(&app_args(fx)).await;

    // A signup: its row and its job, committed together; the job runs.
    let (status, _, body) = app
        .request(
            Method::POST,
            "/signup",
            Some("application/json"),
            r#"{"email": " Ann@Example.com ", "name": "Ann"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created = json(&body);
    let job = JobId(created["job"].as_i64().expect("a job id"));
    let signup = created["signup"].as_i64().expect("a signup id");
    assert_eq!(created["email"], "ann@example.com", "{body}");
    assert_eq!(created["job_url"], format!("/jobs/job/{job}"), "{body}");
    let record = wait_for_state(&fx.storage, job, State::Succeeded).await;
    assert_eq!(record.name, "send_welcome_mail");
    assert_eq!(record.queue, "mail");
    // The job wrote to the application's row before it succeeded.
    let (status, _, body) = app
        .request(Method::GET, &format!("/signups/{signup}"), None, "")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown = json(&body);
    assert_eq!(shown["signup"]["name"], "Ann", "{body}");
    assert_eq!(shown["signup"]["welcome_job"], job.0, "{body}");
    assert!(shown["signup"]["welcomed_at"].is_string(), "{body}");
    assert_eq!(shown["welcome_mail"]["state"], "Succeeded", "{body}");

    // The same address again, as a form: the insert fails after the job
    // was enqueued in the transaction, and the rollback takes the job too.
    let (status, _, body) = app
        .request(
            Method::POST,
            "/signup",
            Some("application/x-www-form-urlencoded"),
            "email=ann%40example.com&name=Ann+again",
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let error = json(&body)["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("signed up already"), "{body}");
    assert_eq!(all_jobs(fx).await.len(), 1, "no second job");
    // Another signup after it commits, and its job runs: the refused one
    // left nothing behind that a server could pick up.
    let (status, _, body) = app
        .request(
            Method::POST,
            "/signup",
            Some("application/x-www-form-urlencoded"),
            "email=bob%40example.com&name=Bob",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let bob = JobId(json(&body)["job"].as_i64().expect("a job id"));
    wait_for_state(&fx.storage, bob, State::Succeeded).await;
    let ids: Vec<JobId> = all_jobs(fx).await.iter().map(|job| job.id).collect();
    assert_eq!(ids, [bob, job], "exactly the two signups' jobs");
    let (_, _, body) = app
        .request(Method::GET, &format!("/signups/{signup}"), None, "")
        .await;
    assert_eq!(json(&body)["signup"]["name"], "Ann", "the row is unchanged");

    // Bad input: a status and a message, never a panic, and no job.
    for (content_type, body, expected, mentions) in [
        (
            "application/json",
            r#"{"email": "cy@example.com"}"#,
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            "application/json",
            r#"{"email": "#,
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "application/x-www-form-urlencoded",
            "email=not-an-address&name=Cy",
            StatusCode::BAD_REQUEST,
            "email must be an address",
        ),
        (
            "application/x-www-form-urlencoded",
            "email=cy%40example.com&name=",
            StatusCode::BAD_REQUEST,
            "name must be",
        ),
        (
            "text/plain",
            "cy@example.com",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        ),
    ] {
        let (status, _, answer) = app
            .request(Method::POST, "/signup", Some(content_type), body)
            .await;
        assert_eq!(status, expected, "{content_type} {body:?}: {answer}");
        let error = json(&answer)["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains(mentions),
            "{content_type} {body:?}: {answer}"
        );
    }
    let (status, _, body) = app.request(Method::GET, "/signups/abc", None, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = app.request(Method::GET, "/signups/999999", None, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(all_jobs(fx).await.len(), 2, "bad input enqueued nothing");

    // The dashboard, nested under /jobs.
    let (status, headers, page) = app.request(Method::GET, "/jobs", None, "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(is_html(&headers), "{headers:?}");
    assert!(page.contains("<h1>Overview</h1>"), "{page}");
    let (status, headers, _) = app.request(Method::GET, "/jobs/", None, "").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/jobs");
    let (status, headers, page) = app
        .request(Method::GET, &format!("/jobs/job/{job}"), None, "")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(is_html(&headers), "{headers:?}");
    assert!(page.contains("send_welcome_mail"), "{page}");
    assert!(page.contains("Succeeded"), "{page}");
    assert!(page.contains("ann@example.com"), "the arguments: {page}");

    // Ctrl-C: stops serving and the server, and exits successfully.
    app.interrupt_and_wait().await;
}

/// The example's options for the fixture's storage. On PostgreSQL the
/// application's own table goes into the test's schema too (its
/// `search_path`), so that it is dropped with it.
fn app_args(fx: &Fixture) -> Vec<String> {
    let mut args = fx.cli_storage_args();
    if let Some(postgres) = fx.postgres_storage() {
        let url = &mut args[1];
        let separator = if url.contains('?') { '&' } else { '?' };
        url.push_str(&format!(
            "{separator}options[search_path]={}",
            postgres.schema()
        ));
    }
    args.extend(["--bind".to_owned(), "127.0.0.1:0".to_owned()]);
    args
}

/// Every job of the storage, newest first.
async fn all_jobs(fx: &Fixture) -> Vec<JobRecord> {
    fx.storage
        .list_jobs(JobQuery::new().limit(100))
        .await
        .expect("list jobs")
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {body}"))
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"))
}

/// The example's executable, built once per run of this test binary with
/// the profile this test was built with (`cargo test` builds examples only
/// when it runs them all; `--test web_app_example` does not).
async fn example_binary() -> PathBuf {
    static BUILT: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            tokio::task::spawn_blocking(build_example)
                .await
                .expect("build the example")
        })
        .await
        .clone()
}

/// `cargo build --example web_app`; the executable's path, as cargo
/// reports it (wherever the target directory is).
fn build_example() -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args([
        "build",
        "--example",
        "web_app",
        "--message-format=json-render-diagnostics",
        "--manifest-path",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    ]);
    // This test runs from `<target>/<profile>/deps/`.
    let exe = std::env::current_exe().expect("the test's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .and_then(|dir| dir.file_name())
        .and_then(|name| name.to_str())
        .unwrap_or("debug");
    match profile {
        "debug" => {}
        "release" => {
            cargo.arg("--release");
        }
        other => {
            cargo.args(["--profile", other]);
        }
    }
    let output = cargo
        .stdin(Stdio::null())
        .output()
        .expect("run cargo build");
    assert!(
        output.status.success(),
        "cargo build --example web_app failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "web_app"
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reports the example's executable")
}

/// The example running as a child process; killed on drop (also when the
/// test panics), printing what it wrote when the test failed.
struct WebApp {
    child: Child,
    /// `127.0.0.1:PORT`, from its `listening on http://...` line.
    address: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    http: HttpClient<HttpConnector, Body>,
}

impl WebApp {
    /// Starts the example and waits for the address it serves on.
    async fn start(args: &[String]) -> WebApp {
        let binary = example_binary().await;
        let mut child = Command::new(&binary)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", binary.display()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        let out = child.stdout.take().expect("piped stdout");
        let seen = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                seen.lock().unwrap().push(line.clone());
                let _ = lines_tx.send(line);
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let written = stderr.clone();
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = err.read(&mut buffer) {
                written
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let mut app = WebApp {
            child,
            address: String::new(),
            stdout,
            stderr,
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
        };
        let listening = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.recv().await {
                if let Some(address) = line.strip_prefix("listening on http://") {
                    return Some(address.trim().to_owned());
                }
            }
            None
        })
        .await;
        app.address = match listening {
            Ok(Some(address)) => address,
            Ok(None) => panic!(
                "the example exited ({:?}) without printing `listening on http://...`",
                app.child.wait()
            ),
            Err(_) => panic!("the example printed no `listening on` line within {DEADLINE:?}"),
        };
        app
    }

    /// `method path` with `body`; the status, headers and body.
    async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("http://{}{path}", self.address));
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request
            .body(Body::from(body.to_owned()))
            .expect("a request");
        let answer = async {
            let response = self.http.request(request).await.expect("an answer");
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(Body::new(body), 1 << 22)
                .await
                .expect("the body");
            (
                parts.status,
                parts.headers,
                String::from_utf8_lossy(&body).into_owned(),
            )
        };
        tokio::time::timeout(DEADLINE, answer)
            .await
            .unwrap_or_else(|_| panic!("no answer to {method} {path} within {DEADLINE:?}"))
    }

    /// Sends SIGINT (Ctrl-C) and waits for a successful exit.
    async fn interrupt_and_wait(mut self) {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -INT");
        let mut status = None;
        wait_until("the example to exit after SIGINT", || {
            let exited = self.child.try_wait().expect("the example's status");
            status = exited;
            std::future::ready(exited.is_some())
        })
        .await;
        let status = status.expect("exited");
        assert!(
            status.success(),
            "exit {status}; stderr:\n{}",
            self.stderr.lock().unwrap()
        );
        // Its last line comes after the server stopped.
        wait_until("the example's last line", || {
            let stopped = self.stdout.lock().unwrap().iter().any(|l| l == "stopped");
            std::future::ready(stopped)
        })
        .await;
    }
}

impl Drop for WebApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "the example's stdout:\n{}\nits stderr:\n{}",
                self.stdout.lock().map(|l| l.join("\n")).unwrap_or_default(),
                self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
            );
        }
    }
}
