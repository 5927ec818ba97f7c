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

/// The query string of a page: `?queue=mail&before=1234`, and after a
/// bulk action what it did: `done=requeue&moved=3&skipped=1`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    queue: Option<String>,
    before: Option<i64>,
    done: Option<String>,
    moved: Option<usize>,
    skipped: Option<usize>,
}

/// What a bulk action did, as a notice; empty when none was done.
fn notice(filter: &Filter) -> String {
    let (Some(done), Some(moved)) = (filter.done.as_deref(), filter.moved) else {
        return String::new();
    };
    let done = match done {
        "requeue" => "Requeued",
        "delete" => "Deleted",
        _ => return String::new(),
    };
    let jobs = if moved == 1 { "job" } else { "jobs" };
    let mut notice = format!("<p class=\"notice\" role=\"status\">{done} {moved} {jobs}.");
    match filter.skipped.unwrap_or(0) {
        0 => {}
        1 => notice.push_str(" 1 had moved on or was gone already."),
        skipped => {
            let _ = write!(notice, " {skipped} had moved on or were gone already.");
        }
    }
    notice.push_str("</p>");
    notice
}

/// The bulk actions of a page of jobs in `state`: the form the ticked
/// jobs' boxes belong to, with its buttons; empty in read-only mode.
fn bulk_form(dashboard: &Dashboard, base: &str, state: State) -> String {
    if dashboard.read_only {
        return String::new();
    }
    let action = |name: &str| format!("{base}/jobs/{state}/{name}");
    let mut form = format!(
        "<form id=\"bulk\" method=\"post\" action=\"{}\">",
        action("requeue")
    );
    match state {
        State::Enqueued => {}
        State::Scheduled | State::Awaiting => {
            form.push_str("<button type=\"submit\" data-action=\"requeue\">Enqueue now</button> ")
        }
        _ => form.push_str("<button type=\"submit\" data-action=\"requeue\">Requeue</button> "),
    }
    if state != State::Deleted {
        let _ = write!(
            form,
            "<button type=\"submit\" formaction=\"{}\" data-action=\"delete\">Delete</button>",
            action("delete")
        );
    }
    form.push_str(" the jobs ticked</form>");
    form
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
    let queue = filter.queue.clone().filter(|queue| !queue.is_empty());
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
    let base = base.href;
    let nav = html::nav(&base);
    let mut body = format!(
        "{nav}{}<form method=\"get\">Queue <input name=\"queue\" value=\"{}\"> <button>Filter</button></form>",
        notice(&filter),
        html::escape(queue.as_deref().unwrap_or(""))
    );
    let bulk = bulk_form(&dashboard, &base, state);
    body.push_str(&bulk);
    body.push_str(
        "<table><tr><th></th><th>Job</th><th>Name</th><th>Queue</th><th>Attempt</th><th>Since</th><th>Reason</th></tr>",
    );
    for job in &jobs {
        let tick = if bulk.is_empty() {
            String::new()
        } else {
            format!(
                "<input type=\"checkbox\" name=\"id\" value=\"{}\" form=\"bulk\" aria-label=\"job {}\">",
                job.id, job.id
            )
        };
        let reason = job.reason.as_deref().unwrap_or("");
        let reason: String = reason.chars().take(200).collect();
        let _ = write!(
            body,
            "<tr data-job=\"{id}\"><td>{tick}</td><td><a href=\"{base}/job/{id}\">{id}</a></td><td>{}</td><td>{}</td><td class=\"n\">{} of {}</td><td>{}</td><td>{}</td></tr>",
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
            .map(|queue| format!("&amp;queue={}", html::escape(&html::url_component(queue))))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<p><a rel=\"next\" href=\"{base}/jobs/{state}?before={}{queue}\">Older</a></p>",
            last.id
        );
    }
    Html(html::page(&format!("{state} jobs"), &body)).into_response()
}
