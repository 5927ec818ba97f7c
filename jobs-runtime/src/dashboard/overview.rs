//! The overview: how many jobs are in each state, and the servers.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State as Page;
use axum::response::{Html, IntoResponse, Response};
use jobs_core::State;

use super::{Base, State as Dashboard, html, unavailable};

pub(super) async fn page(Page(dashboard): Page<Arc<Dashboard>>, base: Base) -> Response {
    let storage = &dashboard.storage;
    let (counts, servers) = match tokio::try_join!(storage.counts(), storage.servers()) {
        Ok(read) => read,
        Err(error) => return unavailable(&error),
    };
    let base = base.href;
    let nav = html::nav(&base);
    let mut body = format!("{nav}<h2>Jobs</h2><table><tr><th>State</th><th>Jobs</th></tr>");
    for state in State::ALL {
        let _ = write!(
            body,
            "<tr><td><a href=\"{base}/jobs/{state}\">{state}</a></td><td class=\"n\" data-state=\"{state}\">{}</td></tr>",
            counts.get(state)
        );
    }
    let _ = write!(
        body,
        "<tr><th>All</th><td class=\"n\">{}</td></tr></table>",
        counts.total()
    );
    body.push_str("<h2>Servers</h2>");
    body.push_str(&super::servers::table(&servers));
    Html(html::page("Overview", &body)).into_response()
}
