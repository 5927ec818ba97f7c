//! Recurring jobs: schedule, time zone, next and last run, last state.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State as Page;
use axum::response::{Html, IntoResponse, Response};

use super::{Base, State as Dashboard, html, unavailable};

pub(super) async fn page(Page(dashboard): Page<Arc<Dashboard>>, base: Base) -> Response {
    let recurring = match dashboard.storage.recurring_jobs().await {
        Ok(recurring) => recurring,
        Err(error) => return unavailable(&error),
    };
    let base = base.href;
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or("—".to_owned(), |at| {
            at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        })
    };
    let nav = html::nav(&base);
    let mut body = format!(
        "{nav}<table><tr><th>Id</th><th>Job</th><th>Cron</th><th>Time zone</th><th>Queue</th><th>Next run</th><th>Last run</th><th>Last state</th><th>Paused</th><th></th></tr>"
    );
    for job in &recurring {
        let definition = &job.definition;
        let last_state = match (job.last_job_id, job.last_job_state) {
            (Some(id), Some(state)) => format!("<a href=\"{base}/job/{id}\">{state}</a>"),
            (Some(id), None) => format!("<a href=\"{base}/job/{id}\">job {id}</a>"),
            _ => "—".to_owned(),
        };
        let id = [("id", definition.id.as_str())];
        let action = |name: &str| format!("{base}/recurring/{name}");
        let mut buttons = dashboard.button(&action("trigger"), "trigger", "Trigger now", &id);
        buttons += &if job.paused {
            dashboard.button(&action("resume"), "resume", "Resume", &id)
        } else {
            dashboard.button(&action("pause"), "pause", "Pause", &id)
        };
        buttons += &dashboard.button(&action("remove"), "remove", "Remove", &id);
        let _ = write!(
            body,
            "<tr data-recurring=\"{}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{last_state}</td><td data-field=\"paused\">{}</td><td>{buttons}</td></tr>",
            html::escape(&definition.id),
            html::escape(&definition.id),
            html::escape(&definition.job_name),
            html::escape(&definition.cron),
            html::escape(&definition.time_zone),
            html::escape(&definition.queue),
            time(job.next_run_at),
            time(job.last_run_at),
            if job.paused { "yes" } else { "no" },
        );
    }
    body.push_str("</table>");
    if recurring.is_empty() {
        body.push_str("<p>No recurring job.</p>");
    }
    Html(html::page("Recurring jobs", &body)).into_response()
}
