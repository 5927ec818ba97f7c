//! The overview: the jobs in each state, the realtime graph (jobs
//! succeeded and failed per second, drawn live), the history graphs (per
//! hour over a day, per day over a month), and the servers.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State as Page;
use axum::response::{Html, IntoResponse, Response};
use chrono::Duration;
use jobs_core::State;

use super::{Base, State as Dashboard, graphs, html, live, unavailable};

pub(super) async fn page(Page(dashboard): Page<Arc<Dashboard>>, base: Base) -> Response {
    let read = tokio::try_join!(live::read(&dashboard), dashboard.storage.servers());
    let ((counts, statistics), servers) = match read {
        Ok(read) => read,
        Err(error) => return unavailable(&error),
    };
    let base = base.href;
    let nav = html::nav(&base);
    let mut body = format!("{nav}<h2>Jobs</h2><table><tr><th>State</th><th>Jobs</th></tr>");
    for state in State::ALL {
        let note = if state == State::Succeeded {
            " <small>(all that ever succeeded)</small>"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr><td><a href=\"{base}/jobs/{state}\">{state}</a>{note}</td><td class=\"n\" data-count=\"{state}\" data-state=\"{state}\">{}</td></tr>",
            counts.get(state)
        );
    }
    let _ = write!(
        body,
        "</table><p><small>Failed jobs ever: {}.</small></p>",
        statistics.total.failed
    );
    body.push_str(
        "<h2>Realtime</h2><p><small>Jobs <span class=\"succeeded\">succeeded</span> and <span class=\"failed\">failed</span> per second, over the last two minutes.</small></p>",
    );
    body.push_str(&graphs::realtime());
    let now = chrono::Utc::now();
    let hours = graphs::buckets(&statistics, now, Duration::hours(1), 24);
    let days = graphs::buckets(&statistics, now, Duration::days(1), 30);
    body.push_str("<h2>History</h2><p><small>Per hour, the last day (UTC)</small></p>");
    body.push_str(&graphs::history("history-hours", &hours, |at| {
        at.format("%H:00").to_string()
    }));
    body.push_str("<p><small>Per day, the last 30 days (UTC)</small></p>");
    body.push_str(&graphs::history("history-days", &days, |at| {
        at.format("%m-%d").to_string()
    }));
    body.push_str("<h2>Servers</h2>");
    body.push_str(&super::servers::table(&servers));
    Html(html::page("Overview", &body)).into_response()
}
