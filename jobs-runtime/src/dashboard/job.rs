//! One job: its arguments, state, history with reasons, parameters, log
//! lines and progress, result, parent and batch.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State as Page};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use jobs_core::{JobId, JobLogQuery, Parent, State};

use super::{Base, State as Dashboard, html, unavailable};

/// JSON text indented for reading; as stored when it does not parse.
fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| json.to_owned())
}

/// The buttons of the moves an operator may make from `state`: requeue
/// ("Enqueue now" for a job that waits) unless it is enqueued, cancel a
/// running job, delete unless it is deleted.
fn actions(dashboard: &Dashboard, base: &str, id: JobId, state: State) -> String {
    let action = |name: &str| format!("{base}/job/{id}/{name}");
    let mut buttons = String::new();
    match state {
        State::Enqueued => {}
        State::Scheduled | State::Awaiting => {
            buttons += &dashboard.button(&action("requeue"), "requeue", "Enqueue now", &[]);
        }
        _ => buttons += &dashboard.button(&action("requeue"), "requeue", "Requeue", &[]),
    }
    if state == State::Processing {
        buttons += &dashboard.button(&action("cancel"), "cancel", "Cancel", &[]);
    }
    if state != State::Deleted {
        buttons += &dashboard.button(&action("delete"), "delete", "Delete", &[]);
    }
    buttons
}

pub(super) async fn page(
    Page(dashboard): Page<Arc<Dashboard>>,
    base: Base,
    Path(id): Path<i64>,
) -> Response {
    let storage = &dashboard.storage;
    let id = JobId(id);
    let read = tokio::try_join!(
        storage.job(id),
        storage.history(id),
        storage.job_parameters(id),
        storage.job_log(JobLogQuery::new(id)),
        storage.continuations(Parent::Job(id)),
    );
    let (job, history, parameters, log, continuations) = match read {
        Ok(read) => read,
        Err(error) => return unavailable(&error),
    };
    let Some(job) = job else {
        let body = format!("<p>No job {id}.</p>");
        return (StatusCode::NOT_FOUND, Html(html::page("Not found", &body))).into_response();
    };
    let base = base.href;
    let mut body = format!(
        "{nav}<p>{actions}</p><table>",
        nav = html::nav(&base),
        actions = actions(&dashboard, &base, id, job.state),
    );
    let mut row = |name: &str, value: String| {
        let field = name.to_ascii_lowercase();
        let _ = write!(
            body,
            "<tr><th>{name}</th><td data-field=\"{field}\">{value}</td></tr>"
        );
    };
    row("Name", html::escape(&job.name));
    row("Queue", html::escape(&job.queue));
    row("State", job.state.to_string());
    row(
        "Attempt",
        format!("{} of {}", job.attempt, job.max_attempts),
    );
    row("Priority", job.priority.to_string());
    row(
        "Created",
        job.created_at
            .format("%Y-%m-%d %H:%M:%S%.3f UTC")
            .to_string(),
    );
    if let Some(progress) = job.progress {
        row(
            "Progress",
            format!(
                "<progress max=\"1\" value=\"{progress}\"></progress> {:.0}%",
                progress * 100.0
            ),
        );
    }
    if let Some(reason) = &job.reason {
        row("Reason", format!("<pre>{}</pre>", html::escape(reason)));
    }
    if let Some(result) = &job.result {
        row(
            "Result",
            format!("<pre>{}</pre>", html::escape(&pretty(result))),
        );
    }
    if let Some(parent) = job.parent {
        row(
            "Continues",
            format!("<a href=\"{base}/job/{parent}\">job {parent}</a>"),
        );
    }
    let batch_link = |batch: &jobs_core::BatchId| {
        format!(
            "<a href=\"{base}/batch/{}\">{}</a>",
            html::escape(&html::url_component(batch.as_str())),
            html::escape(batch.as_str())
        )
    };
    if let Some(batch) = &job.batch {
        row("Batch", batch_link(batch));
    }
    if let Some(batch) = &job.parent_batch {
        row("Continues batch", batch_link(batch));
    }
    body.push_str("</table><h2>Arguments</h2>");
    let _ = write!(body, "<pre>{}</pre>", html::escape(&pretty(&job.args)));
    if !parameters.is_empty() {
        body.push_str("<h2>Parameters</h2><table>");
        for (name, value) in &parameters {
            let _ = write!(
                body,
                "<tr><th>{}</th><td><pre>{}</pre></td></tr>",
                html::escape(name),
                html::escape(&pretty(value))
            );
        }
        body.push_str("</table>");
    }
    body.push_str(
        "<h2>History</h2><table><tr><th>State</th><th>At</th><th>Reason</th><th>Data</th></tr>",
    );
    for change in history.iter().rev() {
        let data = change
            .data
            .as_ref()
            .map(|data| serde_json::to_string_pretty(data).unwrap_or_default())
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
            change.state,
            change.at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
            html::escape(change.reason.as_deref().unwrap_or("")),
            html::escape(&data),
        );
    }
    body.push_str("</table>");
    if !continuations.is_empty() {
        body.push_str("<h2>Continuations</h2>");
        body.push_str(&super::jobs::table(&base, &continuations, false));
    }
    if !log.is_empty() {
        body.push_str("<h2>Log</h2><table>");
        for line in &log {
            let _ = write!(
                body,
                "<tr><td>{}</td><td class=\"n\">{}</td><td><pre>{}</pre></td></tr>",
                line.at.format("%H:%M:%S%.3f"),
                line.attempt,
                html::escape(&line.text),
            );
        }
        body.push_str("</table>");
    }
    Html(html::page(&format!("Job {id}"), &body)).into_response()
}
