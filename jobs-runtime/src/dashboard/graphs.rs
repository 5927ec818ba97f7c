//! The overview's graphs, as inline SVG (no script library, no asset from
//! elsewhere): the history of jobs succeeded and failed per hour and per
//! day, drawn here from the statistics, and the frame of the realtime
//! graph, which the page's script draws into (see [`live`](super::live)).

use std::fmt::Write as _;

use chrono::{DateTime, Duration, DurationRound, Utc};
use jobs_core::{Finished, Statistics};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 150.0;
const SUCCEEDED: &str = "#3c9a4b";
const FAILED: &str = "#c8423b";

/// The frame of the realtime graph: two empty polylines the script fills.
pub(super) fn realtime() -> String {
    format!(
        "<svg id=\"realtime\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"jobs succeeded and failed per second\">\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fafafa\" stroke=\"#ddd\"/>\
         <text id=\"realtime-top\" x=\"4\" y=\"12\" font-size=\"10\" fill=\"#666\"></text>\
         <polyline id=\"realtime-succeeded\" fill=\"none\" stroke=\"{SUCCEEDED}\" stroke-width=\"2\" points=\"\"/>\
         <polyline id=\"realtime-failed\" fill=\"none\" stroke=\"{FAILED}\" stroke-width=\"2\" points=\"\"/></svg>"
    )
}

/// Jobs finished in each of the `count` buckets of `step` that end with
/// the one holding `now`, oldest first, from the statistics' hours.
pub(super) fn buckets(
    statistics: &Statistics,
    now: DateTime<Utc>,
    step: Duration,
    count: usize,
) -> Vec<(DateTime<Utc>, Finished)> {
    let last = now.duration_trunc(step).unwrap_or(now);
    let first = last - step * (count.saturating_sub(1) as i32);
    let mut buckets: Vec<(DateTime<Utc>, Finished)> = (0..count)
        .map(|n| (first + step * n as i32, Finished::default()))
        .collect();
    for hour in &statistics.hours {
        if hour.hour < first || hour.hour >= last + step {
            continue;
        }
        let n = ((hour.hour - first).num_seconds() / step.num_seconds()) as usize;
        if let Some((_, finished)) = buckets.get_mut(n) {
            finished.succeeded += hour.finished.succeeded;
            finished.failed += hour.finished.failed;
        }
    }
    buckets
}

/// A bar graph of `buckets`: each bar the jobs succeeded with those that
/// failed stacked on top, its tooltip the figures; `label` names a
/// bucket's start on the axis (every few bars).
pub(super) fn history(
    id: &str,
    buckets: &[(DateTime<Utc>, Finished)],
    label: impl Fn(DateTime<Utc>) -> String,
) -> String {
    let top = buckets
        .iter()
        .map(|(_, f)| f.succeeded + f.failed)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot = HEIGHT - 20.0;
    let slot = WIDTH / buckets.len().max(1) as f64;
    let mut svg = format!(
        "<svg id=\"{id}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\">\
         <rect width=\"{WIDTH}\" height=\"{plot}\" fill=\"#fafafa\" stroke=\"#ddd\"/>\
         <text x=\"4\" y=\"12\" font-size=\"10\" fill=\"#666\">{}</text>",
        top as u64
    );
    let every = (buckets.len() / 6).max(1);
    for (n, (at, finished)) in buckets.iter().enumerate() {
        let x = n as f64 * slot + slot * 0.1;
        let width = slot * 0.8;
        let succeeded = finished.succeeded as f64 / top * (plot - 16.0);
        let failed = finished.failed as f64 / top * (plot - 16.0);
        let title = format!(
            "{}: {} succeeded, {} failed",
            label(*at),
            finished.succeeded,
            finished.failed
        );
        let _ = write!(
            svg,
            "<g><title>{title}</title>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{succeeded:.1}\" fill=\"{SUCCEEDED}\"/>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{failed:.1}\" fill=\"{FAILED}\"/></g>",
            plot - succeeded,
            plot - succeeded - failed,
        );
        if n % every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#666\">{}</text>",
                HEIGHT - 5.0,
                label(*at)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs_core::HourStatistics;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn hours_fall_into_their_buckets() {
        let finished = |succeeded, failed| Finished { succeeded, failed };
        let statistics = Statistics {
            total: finished(10, 3),
            hours: vec![
                HourStatistics {
                    hour: at("2026-11-29T10:00:00Z"),
                    finished: finished(4, 0),
                },
                HourStatistics {
                    hour: at("2026-11-30T23:00:00Z"),
                    finished: finished(5, 2),
                },
                HourStatistics {
                    hour: at("2026-12-01T05:00:00Z"),
                    finished: finished(1, 1),
                },
            ],
        };
        let now = at("2026-12-01T05:42:00Z");
        let hours = buckets(&statistics, now, Duration::hours(1), 24);
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[23], (at("2026-12-01T05:00:00Z"), finished(1, 1)));
        assert_eq!(hours[17], (at("2026-11-30T23:00:00Z"), finished(5, 2)));
        assert_eq!(
            hours.iter().map(|(_, f)| f.succeeded).sum::<u64>(),
            6,
            "the hour of the 29th is older than a day"
        );
        let days = buckets(&statistics, now, Duration::days(1), 30);
        assert_eq!(days[29], (at("2026-12-01T00:00:00Z"), finished(1, 1)));
        assert_eq!(days[28], (at("2026-11-30T00:00:00Z"), finished(5, 2)));
        assert_eq!(days[27], (at("2026-11-29T00:00:00Z"), finished(4, 0)));
        let svg = history("days", &days, |at| at.format("%m-%d").to_string());
        assert!(svg.contains("11-30: 5 succeeded, 2 failed"), "{svg}");
    }
}
