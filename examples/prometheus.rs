//! Metrics for Prometheus: the `metrics` facade's Prometheus exporter
//! installed as the process's recorder, served at `/metrics` beside the
//! dashboard, while a server runs jobs.
//!
//! ```text
//! cargo run --example prometheus                    # http://127.0.0.1:9091/metrics and /jobs/
//! cargo run --example prometheus -- --check         # runs 50 jobs, prints the jobs_* lines, exits
//! curl -s http://127.0.0.1:9091/metrics | grep '^jobs_'
//! ```
//!
//! Every name, unit and label is listed in `jobs::metrics`. `jobs` never
//! installs a recorder itself: the application picks its exporter
//! (`metrics-exporter-prometheus` here, any other `metrics` exporter
//! alike) and calls [`jobs::metrics::describe`] once to give each metric
//! its unit and help text.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use jobs::prelude::*;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Works for a few milliseconds; one in ten fails and is retried.
#[job(retries = 2, backoff = "100ms")]
async fn resize_image(ctx: JobContext, image: u32) -> Result<(), JobError> {
    tokio::time::sleep(Duration::from_millis(u64::from(image % 7) * 3)).await;
    if image % 10 == 3 && ctx.attempt() == 1 {
        return Err(JobError::new("the image store was busy"));
    }
    Ok(())
}

#[derive(Parser)]
struct Args {
    /// Where the metrics and the dashboard are served.
    #[arg(long, default_value = "127.0.0.1:9091")]
    bind: String,
    /// The storage (default: a SQLite file in a temporary directory).
    #[arg(long, env = "DATABASE_URL")]
    database: Option<String>,
    /// Run 50 jobs, print the scrape's `jobs_*` lines, check them, exit.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let metrics: PrometheusHandle = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    jobs::metrics::describe();
    // The exporter's upkeep: drains the histograms' samples between scrapes.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    let dir = tempfile::tempdir()?;
    let url = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("jobs.db").display()));
    let storage = Storage::connect(&url)
        .await
        .context("opening the storage")?;
    let server = Server::builder(storage.clone())
        .workers(8)
        .queue_metrics_interval(Duration::from_secs(1))
        .start()?;
    let client = Client::new(storage.clone());
    for image in 0..50 {
        resize_image::enqueue(&client, image).await?;
    }

    if args.check {
        let result = check(&storage, &metrics).await;
        server.shutdown().await;
        return result;
    }

    let render = metrics.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || std::future::ready(render.render())),
        )
        .nest("/jobs", jobs::dashboard::router(storage));
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    println!(
        "metrics at http://{0}/metrics, dashboard at http://{0}/jobs/ (Ctrl-C stops)",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    server.shutdown().await;
    Ok(())
}

/// Waits until the 50 jobs succeeded and the scrape counts them (the
/// counters follow the storage's record, a moment later), then prints the
/// `jobs_*` lines of the scrape and checks the counts in them.
async fn check(storage: &Storage, metrics: &PrometheusHandle) -> anyhow::Result<()> {
    let labels = r#"{job="resize_image",queue="default"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let scrape = loop {
        let counts = storage.counts().await?;
        let scrape = metrics.render();
        let counted = value(&scrape, &format!("jobs_succeeded_total{labels}"));
        if counts.get(State::Succeeded) == 50 && counted == Some(50.0) {
            break scrape;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the jobs were not all succeeded and counted within 60 s: {counts:?}, counted {counted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for line in scrape
        .lines()
        .filter(|line| line.starts_with("jobs_") || line.starts_with("# HELP jobs_"))
    {
        println!("{line}");
    }
    for (name, wanted) in [
        ("jobs_enqueued_total", 50.0),
        ("jobs_retried_total", 5.0),
        ("jobs_started_total", 55.0),
    ] {
        let got = value(&scrape, &format!("{name}{labels}"));
        anyhow::ensure!(got == Some(wanted), "{name}: {got:?}, not {wanted}");
    }
    println!("check: ok");
    Ok(())
}

/// The value of the scrape's sample named `sample` (name and labels).
fn value(scrape: &str, sample: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
}
