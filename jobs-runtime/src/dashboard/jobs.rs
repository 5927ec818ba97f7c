//! Jobs by state: one keyset page at a time, newest first, filtered by
//! queue; each job links to its detail page.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State as Page};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use jobs_core::{JobId, JobQuery, State};
use serde::Deserialize;

use super::{Base, State as Dashboard, html, unavailable};

/// The most jobs on a page.
pub const PAGE_SIZE: usize = 50;

/// The query string of a page: `?queue=mail&before=1234`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    queue: Option<String>,
    before: Option<i64>,
}

pub(super) async fn page(
    Page(dashboard): Page<Arc<Dashboard>>,
    base: Base,
    Path(state): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    let Ok(state) = state.parse::<State>() else {
        let body = format!("<p>No state named “{}”.</p>", html::escape(&state));
        return (StatusCode::NOT_FOUND, Html(html::page("Not found", &body))).into_response();
    };
    let mut query = JobQuery::new().state(state).limit(PAGE_SIZE);
    let queue = filter.queue.filter(|queue| !queue.is_empty());
    if let Some(queue) = &queue {
        query = query.queue(queue.clone());
    }
    if let Some(before) = filter.before {
        query = query.before(JobId(before));
    }
    let jobs = match dashboard.storage.list_jobs(query).await {
        Ok(jobs) => jobs,
        Err(error) => return unavailable(&error),
    };
    let base = base.0;
    let mut body = format!(
        "<p><a href=\"{base}/\">Overview</a></p><form method=\"get\">Queue <input name=\"queue\" value=\"{}\"> <button>Filter</button></form>",
        html::escape(queue.as_deref().unwrap_or(""))
    );
    body.push_str(
        "<table><tr><th>Job</th><th>Name</th><th>Queue</th><th>Attempt</th><th>Since</th><th>Reason</th></tr>",
    );
    for job in &jobs {
        let reason = job.reason.as_deref().unwrap_or("");
        let reason: String = reason.chars().take(200).collect();
        let _ = write!(
            body,
            "<tr><td><a href=\"{base}/job/{id}\">{id}</a></td><td>{}</td><td>{}</td><td class=\"n\">{} of {}</td><td>{}</td><td>{}</td></tr>",
            html::escape(&job.name),
            html::escape(&job.queue),
            job.attempt,
            job.max_attempts,
            job.state_changed_at.format("%Y-%m-%d %H:%M:%S UTC"),
            html::escape(&reason),
            id = job.id,
        );
    }
    body.push_str("</table>");
    if jobs.is_empty() {
        body.push_str("<p>No job.</p>");
    }
    if let Some(last) = jobs.last().filter(|_| jobs.len() == PAGE_SIZE) {
        let queue = queue
            .as_deref()
            .map(|queue| format!("&amp;queue={}", html::escape(&percent_encode(queue))))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<p><a rel=\"next\" href=\"{base}/jobs/{state}?before={}{queue}\">Older</a></p>",
            last.id
        );
    }
    Html(html::page(&format!("{state} jobs"), &body)).into_response()
}

/// `text` for a query string: every byte but unreserved ones escaped.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}
