//! Runs every system x scenario, interleaved over several rounds, each run
//! a process of its own on a fresh database, and writes BENCHMARKS.md.
//!
//! Called by `benches/peers/run.sh`, which builds everything in release first.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde::Deserialize;

/// The systems, in their default order: (name, binary).
const SYSTEMS: &[(&str, &str)] = &[("jobs", "peer-jobs"), ("graphile_worker", "peer-graphile"), ("apalis", "peer-apalis")];
const SCENARIOS: &[&str] = &["drain", "drain_retained", "latency"];

#[derive(Parser, Debug)]
#[command(about = "Benchmarks jobs side by side with peer job queues on one PostgreSQL")]
struct Args {
    /// Rounds; each runs every system in every scenario once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Jobs per drain.
    #[arg(long, default_value_t = 20_000)]
    jobs: u64,
    /// Workers of every system.
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// Finished jobs in the table before `drain_retained`.
    #[arg(long, default_value_t = 500_000)]
    retained: u64,
    /// Latency samples per run.
    #[arg(long, default_value_t = 500)]
    samples: usize,
    /// Systems, comma-separated (jobs, graphile_worker, apalis).
    #[arg(long, value_delimiter = ',', default_value = "jobs,graphile_worker,apalis")]
    systems: Vec<String>,
    /// Scenarios, comma-separated (drain, drain_retained, latency).
    #[arg(long, value_delimiter = ',', default_value = "drain,drain_retained,latency")]
    scenarios: Vec<String>,
    /// The PostgreSQL server, without a database name.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Keep the same system order in every round (default: rotate it by one
    /// each round, so that no system always runs first).
    #[arg(long)]
    no_rotate: bool,
    /// Where to write the report.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../BENCHMARKS.md"))]
    output: PathBuf,
    /// Give up on one drain after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Deserialize, Debug, Clone)]
struct Description {
    tuning: String,
}

#[derive(Deserialize, Debug, Clone)]
struct Outcome {
    postgres: String,
    not_applicable: Option<String>,
    seconds: Option<f64>,
    jobs_per_second: Option<f64>,
    ran_seconds: Option<f64>,
    executions: u64,
    extra_executions: u64,
    jobs_run_twice: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    setup_seconds: Option<f64>,
}

/// One run: its round and what came of it.
struct Run {
    round: usize,
    /// Its place in the order the runs ran.
    seq: usize,
    result: Result<Outcome, String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin_dir = std::env::current_exe()?.parent().context("no binary folder")?.to_path_buf();
    let mut systems = Vec::new();
    for name in &args.systems {
        let name = if name == "graphile" { "graphile_worker" } else { name.as_str() };
        let Some(&(name, binary)) = SYSTEMS.iter().find(|(n, _)| *n == name) else {
            bail!("unknown system {name:?}; known: jobs, graphile_worker, apalis");
        };
        systems.push((name, bin_dir.join(binary)));
    }
    for scenario in &args.scenarios {
        if !SCENARIOS.contains(&scenario.as_str()) {
            bail!("unknown scenario {scenario:?}; known: {}", SCENARIOS.join(", "));
        }
    }
    let mut descriptions = BTreeMap::new();
    for (name, binary) in &systems {
        let out = Command::new(binary)
            .arg("--describe")
            .output()
            .with_context(|| format!("running {}", binary.display()))?;
        let description: Description = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("{} --describe", binary.display()))?;
        descriptions.insert(name.to_string(), description);
    }

    let started = Instant::now();
    let log_path = bin_dir.join("peers-results.jsonl");
    let mut log = String::new();
    let mut runs: BTreeMap<(String, String), Vec<Run>> = BTreeMap::new();
    let mut seq = 0;
    for round in 1..=args.rounds {
        let mut order = systems.clone();
        if !args.no_rotate {
            let by = (round - 1) % order.len();
            order.rotate_left(by);
        }
        for scenario in &args.scenarios {
            for (name, binary) in &order {
                eprint!("round {round}/{}: {name} {scenario} ... ", args.rounds);
                let result = run_one(binary, scenario, &args);
                match &result {
                    Ok((line, outcome)) => {
                        eprintln!("{}", summary(scenario, outcome));
                        log.push_str(line);
                        log.push('\n');
                    }
                    Err(e) => eprintln!("FAILED: {e}"),
                }
                seq += 1;
                runs.entry((scenario.clone(), name.to_string())).or_default().push(Run {
                    round,
                    seq,
                    result: result.map(|(_, o)| o).map_err(|e| format!("{e:#}")),
                });
            }
        }
    }
    std::fs::write(&log_path, log)?;
    let report = report(&args, &systems, &descriptions, &runs, started.elapsed().as_secs_f64())?;
    std::fs::write(&args.output, report).with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "wrote {} (raw results: {}) in {:.0} s",
        std::fs::canonicalize(&args.output).unwrap_or_else(|_| args.output.clone()).display(),
        log_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_one(binary: &Path, scenario: &str, args: &Args) -> Result<(String, Outcome)> {
    let out = Command::new(binary)
        .args(["--scenario", scenario])
        .args(["--jobs", &args.jobs.to_string()])
        .args(["--workers", &args.workers.to_string()])
        .args(["--retained", &args.retained.to_string()])
        .args(["--samples", &args.samples.to_string()])
        .args(["--server", &args.server])
        .args(["--timeout", &args.timeout.to_string()])
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT "));
    match (out.status.success(), line) {
        (true, Some(line)) => Ok((line.to_owned(), serde_json::from_str(line)?)),
        _ => {
            // anyhow's "Error: ..." and its causes, else the last lines.
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let from = lines.iter().position(|l| l.starts_with("Error:")).unwrap_or(lines.len().saturating_sub(5));
            let name = binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            bail!("{name} exited with {}: {}", out.status, lines[from..].join(" "))
        }
    }
}

fn summary(scenario: &str, o: &Outcome) -> String {
    if let Some(na) = &o.not_applicable {
        return na.clone();
    }
    if scenario == "latency" {
        format!("p50 {:.2} ms, p99 {:.2} ms", o.p50_ms.unwrap_or(f64::NAN), o.p99_ms.unwrap_or(f64::NAN))
    } else {
        format!(
            "{:.0} jobs/s ({:.2} s; {} executions, {} jobs ran twice)",
            o.jobs_per_second.unwrap_or(f64::NAN),
            o.seconds.unwrap_or(f64::NAN),
            o.executions,
            o.jobs_run_twice
        )
    }
}

/// (median, min, max) of `values`, which is not empty.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    (median, values[0], values[n - 1])
}

fn shell(command: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(command).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The versions Cargo.lock of this workspace pins, by package name.
fn locked_versions() -> BTreeMap<String, String> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap_or_default();
    let mut versions = BTreeMap::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("version = ")
            && let Some(n) = name.take()
        {
            versions.insert(n, v.trim_matches('"').to_owned());
        }
    }
    versions
}

fn jobs_version() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../..");
    let toml = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap_or_default();
    let version = toml
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "?".into());
    let rev = shell("git", &["-C", root, "rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "?".into());
    let dirty = shell("git", &["-C", root, "status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    format!("{version} (this repository at {rev}{})", if dirty { ", with uncommitted changes" } else { "" })
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({model}), {:.1} GiB memory, Linux {}",
        mem_kib / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn fmt_rate(v: f64) -> String {
    let v = v.round() as u64;
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn report(
    args: &Args,
    systems: &[(&str, PathBuf)],
    descriptions: &BTreeMap<String, Description>,
    runs: &BTreeMap<(String, String), Vec<Run>>,
    elapsed: f64,
) -> Result<String> {
    let mut md = String::new();
    let command = std::iter::once("benches/peers/run.sh".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let date = shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "?".into());
    let postgres = runs
        .values()
        .flatten()
        .find_map(|r| r.result.as_ref().ok().map(|o| o.postgres.clone()).filter(|p| !p.is_empty()))
        .unwrap_or_else(|| "?".into());
    let versions = locked_versions();

    writeln!(md, "# jobs side by side with peer job queues\n")?;
    writeln!(
        md,
        "No-op jobs on one local PostgreSQL, every system with the same number of workers, \
         each run a process of its own on a fresh database (created for the run, dropped after). \
         The runs are interleaved: each round runs every system in every scenario once, the \
         systems' order rotated by one each round. Made by `benches/peers/run.sh`; \
         see [benches/peers/README.md](benches/peers/README.md) for what each scenario measures \
         and why each peer is tuned as it is.\n"
    )?;
    writeln!(md, "- Command: `{command}`")?;
    writeln!(md, "- Date: {date}; the whole run took {:.0} s", elapsed)?;
    writeln!(md, "- Machine: {}", machine())?;
    writeln!(md, "- PostgreSQL {postgres}, local (127.0.0.1), settings as installed")?;
    writeln!(
        md,
        "- {} rounds, {} workers, drains of {} jobs, {} finished jobs retained, {} latency samples per run",
        args.rounds,
        args.workers,
        fmt_rate(args.jobs as f64),
        fmt_rate(args.retained as f64),
        args.samples
    )?;
    writeln!(md, "\n## Systems\n")?;
    writeln!(md, "| system | version | tuning |")?;
    writeln!(md, "| --- | --- | --- |")?;
    for (name, _) in systems {
        let version = match *name {
            "jobs" => jobs_version(),
            "graphile_worker" => format!("graphile_worker {}", versions.get("graphile_worker").map_or("?", |v| v)),
            "apalis" => format!(
                "apalis {}, apalis-postgres {}",
                versions.get("apalis").map_or("?", |v| v),
                versions.get("apalis-postgres").map_or("?", |v| v)
            ),
            _ => "?".into(),
        };
        let tuning = descriptions.get(*name).map_or("?", |d| d.tuning.as_str());
        writeln!(md, "| {name} | {version} | {tuning} |")?;
    }

    for scenario in &args.scenarios {
        writeln!(md)?;
        match scenario.as_str() {
            "drain" | "drain_retained" => {
                if scenario == "drain" {
                    writeln!(
                        md,
                        "## drain: {} jobs enqueued in bulk, then {} workers started\n\n\
                         Time from starting the workers until every job ran and is recorded \
                         finished in the database (for a system that deletes finished jobs: \
                         until none is left). Jobs/s over the rounds.\n",
                        fmt_rate(args.jobs as f64),
                        args.workers
                    )?;
                } else {
                    writeln!(
                        md,
                        "## drain_retained: the same drain beside {} finished jobs\n\n\
                         The finished jobs are inserted with SQL in each system's own finished \
                         state, then `ANALYZE`, before the drain's jobs are enqueued.\n",
                        fmt_rate(args.retained as f64)
                    )?;
                }
                writeln!(
                    md,
                    "| system | median jobs/s | min | max | median s | executions beyond one per job | jobs run twice | runs |"
                )?;
                writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")?;
                for (name, _) in systems {
                    let list = runs.get(&(scenario.clone(), name.to_string()));
                    let list = list.map(Vec::as_slice).unwrap_or_default();
                    let ok: Vec<&Outcome> = list.iter().filter_map(|r| r.result.as_ref().ok()).collect();
                    let failed = list.len() - ok.len();
                    if let Some(na) = ok.iter().find_map(|o| o.not_applicable.clone()) {
                        writeln!(md, "| {name} | {na} | | | | | | |")?;
                        continue;
                    }
                    if ok.is_empty() {
                        writeln!(md, "| {name} | failed | | | | | | {failed} failed |")?;
                        continue;
                    }
                    let (med, min, max) = spread(ok.iter().filter_map(|o| o.jobs_per_second).collect());
                    let (secs, _, _) = spread(ok.iter().filter_map(|o| o.seconds).collect());
                    let extra: Vec<String> = ok.iter().map(|o| o.extra_executions.to_string()).collect();
                    let twice: Vec<String> = ok.iter().map(|o| o.jobs_run_twice.to_string()).collect();
                    let runs_note = if failed > 0 { format!("{} ok, {failed} failed", ok.len()) } else { ok.len().to_string() };
                    writeln!(
                        md,
                        "| {name} | {} | {} | {} | {secs:.2} | {} | {} | {runs_note} |",
                        fmt_rate(med),
                        fmt_rate(min),
                        fmt_rate(max),
                        extra.join(", "),
                        twice.join(", ")
                    )?;
                }
                writeln!(md, "\n(\"executions beyond one per job\" and \"jobs run twice\" are per round.)")?;
            }
            "latency" => {
                writeln!(
                    md,
                    "## latency: idle workers, one job at a time\n\n\
                     {} workers idle; one job enqueued, waited for until it started, a 2 ms \
                     pause, and again: {} samples per run (after 5 not counted). Time from the \
                     start of the enqueue call to the start of the job, in the same process. \
                     Milliseconds: median over the rounds of each run's p50 and p99, with the \
                     rounds' min-max.\n",
                    args.workers, args.samples
                )?;
                writeln!(md, "| system | p50 ms (median) | p50 min-max | p99 ms (median) | p99 min-max | jobs run twice | runs |")?;
                writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | --- |")?;
                for (name, _) in systems {
                    let list = runs.get(&(scenario.clone(), name.to_string()));
                    let list = list.map(Vec::as_slice).unwrap_or_default();
                    let ok: Vec<&Outcome> = list.iter().filter_map(|r| r.result.as_ref().ok()).collect();
                    let failed = list.len() - ok.len();
                    if ok.is_empty() {
                        writeln!(md, "| {name} | failed | | | | | {failed} failed |")?;
                        continue;
                    }
                    let (p50, p50min, p50max) = spread(ok.iter().filter_map(|o| o.p50_ms).collect());
                    let (p99, p99min, p99max) = spread(ok.iter().filter_map(|o| o.p99_ms).collect());
                    let twice: Vec<String> = ok.iter().map(|o| o.jobs_run_twice.to_string()).collect();
                    let runs_note = if failed > 0 { format!("{} ok, {failed} failed", ok.len()) } else { ok.len().to_string() };
                    writeln!(
                        md,
                        "| {name} | {p50:.2} | {p50min:.2}-{p50max:.2} | {p99:.2} | {p99min:.2}-{p99max:.2} | {} | {runs_note} |",
                        twice.join(", ")
                    )?;
                }
            }
            _ => {}
        }
    }

    writeln!(md, "\n## Every run, in the order they ran\n")?;
    writeln!(md, "| round | scenario | system | result |")?;
    writeln!(md, "| ---: | --- | --- | --- |")?;
    let mut all: Vec<(usize, &str, &str, &Run)> = runs
        .iter()
        .flat_map(|((scenario, system), list)| list.iter().map(move |r| (r.round, scenario.as_str(), system.as_str(), r)))
        .collect();
    all.sort_by_key(|(_, _, _, run)| run.seq);
    for (round, scenario, system, run) in all {
        let text = match &run.result {
            Ok(o) => {
                let mut t = summary(scenario, o);
                if let (Some(ran), None) = (o.ran_seconds, &o.not_applicable) {
                    write!(t, "; all ran after {ran:.2} s")?;
                }
                if let Some(setup) = o.setup_seconds {
                    write!(t, "; retained rows inserted and analyzed in {setup:.1} s")?;
                }
                if let Some(max) = o.max_ms {
                    write!(t, ", max {max:.2} ms")?;
                }
                t
            }
            Err(e) => format!("failed: {}", e.replace('|', "/")),
        };
        writeln!(md, "| {round} | {scenario} | {system} | {text} |")?;
    }
    Ok(md)
}
