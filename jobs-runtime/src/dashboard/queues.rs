//! Queues: every queue that holds jobs, is paused, or that a server
//! fetches from; its jobs waiting, running and failed; paused or not,
//! with the button that pauses or resumes it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State as Page;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use jobs_core::{PauseTarget, State, StateCounts};

use super::{Base, State as Dashboard, html, unavailable};

/// What the page shows of one queue.
#[derive(Default)]
struct Queue {
    counts: StateCounts,
    paused_at: Option<DateTime<Utc>>,
    servers: usize,
}

pub(super) async fn page(Page(dashboard): Page<Arc<Dashboard>>, base: Base) -> Response {
    let storage = &dashboard.storage;
    let read = tokio::try_join!(storage.queue_counts(), storage.paused(), storage.servers());
    let (counts, paused, servers) = match read {
        Ok(read) => read,
        Err(error) => return unavailable(&error),
    };
    let mut queues: BTreeMap<String, Queue> = BTreeMap::new();
    for queue in counts {
        queues.entry(queue.queue).or_default().counts = queue.counts;
    }
    for paused in paused {
        if let PauseTarget::Queue(name) = paused.target {
            queues.entry(name).or_default().paused_at = Some(paused.paused_at);
        }
    }
    for server in &servers {
        for queue in &server.queues {
            queues.entry(queue.clone()).or_default().servers += 1;
        }
    }
    let base = base.href;
    let nav = html::nav(&base);
    let mut body = format!(
        "{nav}<table><tr><th>Queue</th><th>Enqueued</th><th>Scheduled</th><th>Processing</th><th>Failed</th><th>Servers</th><th>Paused</th><th>Since</th><th></th></tr>"
    );
    for (name, queue) in &queues {
        let escaped = html::escape(name);
        let link = html::escape(&html::url_component(name));
        let count = |state: State| {
            let count = queue.counts.get(state);
            format!("<a href=\"{base}/jobs/{state}?queue={link}\">{count}</a>")
        };
        let (paused, button) = match queue.paused_at {
            Some(at) => (
                format!(
                    "<td data-field=\"paused\">yes</td><td>{}</td>",
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                dashboard.button(
                    &format!("{base}/queues/resume"),
                    "resume",
                    "Resume",
                    &[("queue", name)],
                ),
            ),
            None => (
                "<td data-field=\"paused\">no</td><td></td>".to_owned(),
                dashboard.button(
                    &format!("{base}/queues/pause"),
                    "pause",
                    "Pause",
                    &[("queue", name)],
                ),
            ),
        };
        let _ = write!(
            body,
            "<tr data-queue=\"{escaped}\"><td>{escaped}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{paused}<td>{button}</td></tr>",
            count(State::Enqueued),
            count(State::Scheduled),
            count(State::Processing),
            count(State::Failed),
            queue.servers,
        );
    }
    body.push_str("</table>");
    if queues.is_empty() {
        body.push_str("<p>No queue.</p>");
    }
    Html(html::page("Queues", &body)).into_response()
}
