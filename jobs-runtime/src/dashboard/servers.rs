//! Servers: each registered server's workers, queues, jobs it knows, when
//! it started and when it was last heard of.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State as Page;
use axum::response::{Html, IntoResponse, Response};
use jobs_core::ServerRecord;

use super::{Base, State as Dashboard, html, unavailable};

pub(super) async fn page(Page(dashboard): Page<Arc<Dashboard>>, base: Base) -> Response {
    let servers = match dashboard.storage.servers().await {
        Ok(servers) => servers,
        Err(error) => return unavailable(&error),
    };
    let base = base.href;
    let mut body = html::nav(&base);
    body.push_str(&table(&servers));
    if servers.is_empty() {
        body.push_str("<p>No server is running.</p>");
    }
    Html(html::page("Servers", &body)).into_response()
}

/// The servers as a table: id, workers, queues, started, last heartbeat,
/// the jobs each runs. The overview shows it too.
pub(super) fn table(servers: &[ServerRecord]) -> String {
    let mut table = String::from(
        "<table><tr><th>Server</th><th>Workers</th><th>Queues</th><th>Started</th><th>Last heartbeat</th><th>Jobs it runs</th></tr>",
    );
    for server in servers {
        let _ = write!(
            table,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{:.1} s ago</td><td>{}</td></tr>",
            html::escape(&server.id),
            server.workers,
            html::escape(&server.queues.join(", ")),
            server.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            server.silent_for.as_secs_f64(),
            html::escape(&server.jobs.join(", ")),
        );
    }
    table.push_str("</table>");
    table
}
