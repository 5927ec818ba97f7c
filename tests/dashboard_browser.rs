//! The dashboard in a real browser: headless Chromium, driven through
//! chromedriver (WebDriver), loads every page of a server's dashboard over
//! SQLite (each with its heading, none an error page, a screenshot of each
//! saved to `target/dashboard-screenshots/`), requeues a failed job by
//! clicking its button until the job's page reads `Succeeded`, and pauses
//! then resumes a queue from the queues page, each action checked in the
//! storage too. This proves the pages render, and that the action forms
//! work as a person uses them: a same-origin POST from a click, past the
//! CSRF check, redirected back to the page.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs): without
//! them the test fails under `CI=true` and is skipped elsewhere.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::error::CmdError;
use fantoccini::wd::Capabilities;
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use jobs::prelude::*;
use jobs::{JobId, PauseTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The queue no server of this test serves: its jobs wait there, and it is
/// the one paused and resumed.
const WAITING_QUEUE: &str = "reports";
/// How long a page, a redirect or a job run seen through the page may take.
const BROWSER_DEADLINE: Duration = Duration::from_secs(20);
/// How often a waiting test looks again.
const POLL: Duration = Duration::from_millis(200);

/// While set, [`charge_card`] fails.
static CARD_DECLINED: AtomicBool = AtomicBool::new(true);

/// Fails while [`CARD_DECLINED`] is set; no retries, so it is `Failed` at
/// once, and succeeds when requeued after the flag is cleared.
#[job(retries = 0)]
async fn charge_card(order: u32) -> Result<(), JobError> {
    if CARD_DECLINED.load(Ordering::SeqCst) {
        Err(JobError::new(format!("card declined for order {order}")))
    } else {
        Ok(())
    }
}

/// Succeeds at once.
#[job]
async fn send_receipt(order: u32) {
    let _ = order;
}

/// Waits in [`WAITING_QUEUE`], which no server of this test serves.
#[job(queue = "reports")]
async fn build_report(month: u32) {
    let _ = month;
}

/// A recurring job for the recurring page (its cron never fires during the
/// test).
#[recurring(cron = "0 0 3 * * *")]
async fn nightly_cleanup() {}

/// Where the screenshots go.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots")
}

/// `true` when the browser and its driver are installed; when not, fails
/// under `CI=true` and says the test is skipped elsewhere.
fn browser_installed() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {} missing: .ci/run installs Debian's chromium and chromium-driver",
        missing.join(" and ")
    );
    // Straight to stderr, past the test harness's capture, so that a plain
    // `cargo test` shows it.
    let _ = writeln!(
        std::io::stderr(),
        "skipping: chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
    );
    false
}

/// A chromedriver this test started, in a process group of its own: the
/// whole group (chromedriver and the Chromium it launched) is killed on
/// drop, also when the test panics.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    /// Starts chromedriver on a free loopback port and waits until its
    /// `/status` says it is ready.
    async fn start() -> Chromedriver {
        use std::os::unix::process::CommandExt as _;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let log = screenshot_dir().join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("start {CHROMEDRIVER}: {error}"));
        let mut driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            if let Some(status) = driver.child.try_wait().expect("chromedriver's status") {
                panic!(
                    "chromedriver exited at start with {status}; see {}",
                    log.display()
                );
            }
            if let Some(body) = http_get(port, "/status").await
                && body.contains(r#""ready":true"#)
            {
                return driver;
            }
            assert!(
                started.elapsed() < BROWSER_DEADLINE,
                "chromedriver was not ready on port {port} within {BROWSER_DEADLINE:?}; see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (process_group(0)).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` from 127.0.0.1:`port`: the body of a 200 answer, or `None`
/// (chromedriver keeps the connection open: the body ends at its
/// `Content-Length`).
async fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    let read_all = async {
        let mut chunk = [0; 4096];
        loop {
            let read = stream.read(&mut chunk).await.ok()?;
            response.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&response);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                });
                if read == 0 || length.is_some_and(|length| body.len() >= length) {
                    return head.starts_with("HTTP/1.1 200").then(|| body.to_owned());
                }
            } else if read == 0 {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read_all)
        .await
        .ok()?
}

/// A headless Chromium session on the dashboard at `base`.
struct Browser {
    client: fantoccini::Client,
    base: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(driver: &Chromedriver, base: String) -> Browser {
        let profile = tempfile::tempdir().expect("a profile dir");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            "--window-size=1280,900".to_owned(),
        ];
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            // Every page load and script has a deadline.
            "timeouts": { "pageLoad": 20_000, "script": 10_000, "implicit": 0 },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let capabilities: Capabilities = capabilities;
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let connecting = builder.connect(&driver.url);
        let client = tokio::time::timeout(Duration::from_secs(60), connecting)
            .await
            .expect("a WebDriver session within 60 s")
            .unwrap_or_else(|error| panic!("start Chromium through chromedriver: {error}"));
        Browser {
            client,
            base,
            _profile: profile,
        }
    }

    /// Saves `failure.png` and returns `what` with the page's URL and the
    /// first 2000 characters of its source, to panic with.
    async fn failure(&self, what: &str) -> String {
        let shot = screenshot_dir().join("failure.png");
        let saved = match self.client.screenshot().await {
            Ok(png) => match std::fs::write(&shot, png) {
                Ok(()) => format!("screenshot in {}", shot.display()),
                Err(error) => format!("no screenshot: {error}"),
            },
            Err(error) => format!("no screenshot: {error}"),
        };
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(error) => format!("(no URL: {error})"),
        };
        let source = match self.client.source().await {
            Ok(source) => source.chars().take(2000).collect(),
            Err(error) => format!("(no source: {error})"),
        };
        format!("{what}\nat {url} ({saved})\npage source:\n{source}")
    }

    /// The value of a WebDriver command, or a panic with the page.
    async fn ok<T>(&self, result: Result<T, CmdError>, what: &str) -> T {
        match result {
            Ok(value) => value,
            Err(error) => panic!("{}", self.failure(&format!("{what}: {error}")).await),
        }
    }

    /// Panics with the page unless `condition`.
    async fn check(&self, condition: bool, what: &str) {
        if !condition {
            panic!("{}", self.failure(what).await);
        }
    }

    /// Opens `path` and checks its heading is `heading` (an error page has
    /// another).
    async fn visit(&self, path: &str, heading: &str) {
        let url = format!("{}{path}", self.base);
        self.ok(self.client.goto(&url).await, &format!("load {url}"))
            .await;
        self.expect_heading(heading).await;
    }

    /// Checks the page's `<h1>` and `<title>`.
    async fn expect_heading(&self, heading: &str) {
        let h1 = self
            .ok(self.client.find(Locator::Css("h1")).await, "find the h1")
            .await;
        let text = self.ok(h1.text().await, "read the h1").await;
        self.check(
            text == heading,
            &format!("the heading is {text:?}, not {heading:?}"),
        )
        .await;
        let title = self.ok(self.client.title().await, "read the title").await;
        self.check(
            title == format!("{heading} · jobs"),
            &format!("the title is {title:?}"),
        )
        .await;
    }

    /// Saves a screenshot of the window as `<name>.png` and checks it is a
    /// PNG with something on it.
    async fn screenshot(&self, name: &str) {
        let png = self
            .ok(self.client.screenshot().await, "take a screenshot")
            .await;
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        self.check(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            &format!("{} is not a PNG", path.display()),
        )
        .await;
        self.check(
            png.len() > 5 * 1024,
            &format!("{} is only {} bytes", path.display(), png.len()),
        )
        .await;
    }

    /// The text of the first element `css` finds, if any yet.
    async fn text_of(&self, css: &str) -> Result<String, CmdError> {
        self.client.find(Locator::Css(css)).await?.text().await
    }

    /// Polls until the element `css` reads `expected`, reloading the page
    /// before the next look when `reload` says so for the text just read
    /// (`None`: no such element); panics with the page after
    /// [`BROWSER_DEADLINE`].
    async fn wait_for_text(
        &self,
        css: &str,
        expected: &str,
        reload: impl Fn(Option<&str>) -> bool,
    ) {
        let started = Instant::now();
        loop {
            // Between two pages, the element may be gone or stale.
            let read = self.text_of(css).await;
            let text = read.as_deref().ok();
            if text == Some(expected) {
                return;
            }
            if started.elapsed() > BROWSER_DEADLINE {
                let last = match &read {
                    Ok(text) => format!("{text:?}"),
                    Err(error) => format!("nothing ({error})"),
                };
                let what = format!(
                    "{css} did not read {expected:?} within {BROWSER_DEADLINE:?}; it read {last}"
                );
                panic!("{}", self.failure(&what).await);
            }
            tokio::time::sleep(POLL).await;
            if reload(text) {
                self.ok(self.client.refresh().await, "reload").await;
            }
        }
    }

    /// Checks that the browser is at `path` of the dashboard.
    async fn expect_path(&self, path: &str) {
        let url = self
            .ok(self.client.current_url().await, "read the URL")
            .await;
        self.check(
            url.path() == path,
            &format!("expected to be at {path}, at {url}"),
        )
        .await;
    }

    /// Clicks the `button[data-action=action]` inside `scope`.
    async fn click_action(&self, scope: &str, action: &str) {
        let css = format!(r#"{scope} button[data-action="{action}"]"#);
        let button = self
            .ok(
                self.client.find(Locator::Css(&css)).await,
                &format!("find {css}"),
            )
            .await;
        self.ok(button.click().await, &format!("click {css}")).await;
    }
}

/// Every page loads with its heading and a screenshot; the overview's
/// counts follow the storage live; a failed job is
/// requeued and a queue paused and resumed by clicks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_browser() {
    if !browser_installed() {
        return;
    }
    std::fs::create_dir_all(screenshot_dir()).expect("the screenshot folder");
    // A failure.png left there is then this run's.
    let _ = std::fs::remove_file(screenshot_dir().join("failure.png"));

    let fixture = Fixture::sqlite().await;
    let storage = &fixture.storage;
    let client = Client::new(storage.clone());
    CARD_DECLINED.store(true, Ordering::SeqCst);
    let failed = JobId::from(charge_card::enqueue(&client, 1017).await.unwrap());
    let succeeded = JobId::from(send_receipt::enqueue(&client, 1017).await.unwrap());
    for month in 1..=3 {
        build_report::enqueue(&client, month).await.unwrap();
    }
    let server = fast_server(storage)
        .queues(["default"])
        .dashboard("127.0.0.1:0")
        .start()
        .unwrap();
    wait_for_state(storage, failed, State::Failed).await;
    wait_for_state(storage, succeeded, State::Succeeded).await;
    wait_until("the server to register", || async {
        !storage.servers().await.unwrap().is_empty()
    })
    .await;
    let address = server.dashboard_address().expect("a dashboard address");

    let driver = Chromedriver::start().await;
    let browser = Browser::open(&driver, format!("http://{address}")).await;

    // Every page, with its heading and a screenshot.
    let job_path = format!("/job/{failed}");
    let job_heading = format!("Job {failed}");
    let pages = [
        ("/", "Overview", "overview"),
        ("/jobs/Failed", "Failed jobs", "failed"),
        ("/jobs/Succeeded", "Succeeded jobs", "succeeded"),
        (job_path.as_str(), job_heading.as_str(), "job"),
        ("/recurring", "Recurring jobs", "recurring"),
        ("/servers", "Servers", "servers"),
        ("/queues", "Queues", "queues"),
    ];
    for (path, heading, name) in pages {
        browser.visit(path, heading).await;
        browser.screenshot(name).await;
    }
    // Live: the overview's counts, and the menu's, follow the storage
    // without a reload.
    browser.visit("/", "Overview").await;
    let succeeded_cell = r#"td[data-count="Succeeded"]"#;
    browser.wait_for_text(succeeded_cell, "1", |_| false).await;
    let another = JobId::from(send_receipt::enqueue(&client, 1018).await.unwrap());
    wait_for_state(storage, another, State::Succeeded).await;
    browser.wait_for_text(succeeded_cell, "2", |_| false).await;
    browser
        .wait_for_text(r#"nav [data-count="Succeeded"]"#, "2", |_| false)
        .await;

    browser.visit("/jobs/Failed", "Failed jobs").await;
    let listed = browser
        .ok(browser.client.source().await, "read the source")
        .await;
    browser
        .check(
            listed.contains(&format!(r#"href="/job/{failed}""#)),
            "the failed jobs list links to the failed job",
        )
        .await;

    // Requeue the failed job, which now succeeds.
    CARD_DECLINED.store(false, Ordering::SeqCst);
    browser.visit(&job_path, &job_heading).await;
    let state = r#"[data-field="state"]"#;
    browser.wait_for_text(state, "Failed", |_| false).await;
    browser.click_action("form", "requeue").await;
    // The click posts and is redirected back here. Until this page shows
    // the job moved on, the post may still be on its way (or was refused,
    // and a reload would post again): reload only once the job's page
    // shows a state other than Failed, to see the job run.
    browser
        .wait_for_text(state, "Succeeded", |read| {
            read.is_some_and(|state| state != "Failed")
        })
        .await;
    browser.expect_path(&job_path).await;
    browser.expect_heading(&job_heading).await;
    browser.screenshot("job-requeued").await;
    assert_eq!(job(storage, failed).await.state, State::Succeeded);

    // Pause the waiting queue, then resume it.
    let row = format!(r#"tr[data-queue="{WAITING_QUEUE}"]"#);
    let paused_cell = format!(r#"{row} [data-field="paused"]"#);
    let queue_paused = || async {
        storage
            .paused()
            .await
            .expect("read the paused")
            .iter()
            .any(|paused| paused.target == PauseTarget::Queue(WAITING_QUEUE.to_owned()))
    };
    browser.visit("/queues", "Queues").await;
    browser.wait_for_text(&paused_cell, "no", |_| false).await;
    browser.click_action(&row, "pause").await;
    browser.wait_for_text(&paused_cell, "yes", |_| false).await;
    browser.expect_path("/queues").await;
    browser.expect_heading("Queues").await;
    browser.screenshot("queues-paused").await;
    assert!(
        queue_paused().await,
        "{WAITING_QUEUE} is paused in the storage"
    );

    browser.click_action(&row, "resume").await;
    browser.wait_for_text(&paused_cell, "no", |_| false).await;
    browser.expect_path("/queues").await;
    browser.expect_heading("Queues").await;
    assert!(
        !queue_paused().await,
        "{WAITING_QUEUE} is resumed in the storage"
    );

    browser
        .client
        .close()
        .await
        .expect("end the WebDriver session");
    drop(driver);
    server.shutdown().await;
}
