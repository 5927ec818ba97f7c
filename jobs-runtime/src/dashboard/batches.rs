//! Batches: the started ones (newest first) and the finished outermost
//! ones (most recently finished first), each with its progress; a
//! batch's page with its members by state, nested batches and
//! continuations, and the button that cancels a started batch.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State as Page};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use jobs_core::{BatchId, BatchQuery, BatchRecord, BatchState, Parent, State};
use serde::Deserialize;

use super::{Base, State as Dashboard, html, unavailable};

/// The batches on a page.
const PAGE_SIZE: usize = 20;

/// The query string of the list: `?finished=1&before=ID`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    finished: Option<String>,
    before: Option<String>,
}

/// A batch's progress: its members in a final state of all, as a bar and
/// figures.
fn progress(batch: &BatchRecord) -> String {
    let total = batch.jobs.total();
    let done = total - batch.pending();
    let value = if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    };
    format!("<progress max=\"1\" value=\"{value:.3}\"></progress> {done} of {total}")
}

pub(super) async fn list(
    Page(dashboard): Page<Arc<Dashboard>>,
    base: Base,
    Query(filter): Query<Filter>,
) -> Response {
    let finished = filter.finished.as_deref().is_some_and(|f| !f.is_empty());
    let mut query = if finished {
        BatchQuery::finished()
    } else {
        BatchQuery::started()
    }
    .limit(PAGE_SIZE);
    if let Some(before) = filter.before.filter(|before| !before.is_empty()) {
        query = query.before(BatchId(before));
    }
    let batches = match dashboard.storage.list_batches(query).await {
        Ok(batches) => batches,
        Err(error) => return unavailable(&error),
    };
    let base = base.href;
    let mut body = html::nav(&base);
    let _ = write!(
        body,
        "<p><a href=\"{base}/batches\">Started</a> · <a href=\"{base}/batches?finished=1\">Finished</a></p>\
         <table><tr><th>Batch</th><th>Description</th><th>State</th><th>Progress</th><th>Created</th><th>Finished</th></tr>"
    );
    for batch in &batches {
        let id = html::escape(batch.id.as_str());
        let link = html::escape(&html::url_component(batch.id.as_str()));
        let _ = write!(
            body,
            "<tr data-batch=\"{id}\"><td><a href=\"{base}/batch/{link}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html::escape(batch.description.as_deref().unwrap_or("")),
            batch.state,
            progress(batch),
            batch.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            batch
                .finished_at
                .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
        );
    }
    body.push_str("</table>");
    if batches.is_empty() {
        body.push_str("<p>No batch.</p>");
    }
    if let Some(last) = batches.last().filter(|_| batches.len() == PAGE_SIZE) {
        let finished = if finished { "finished=1&amp;" } else { "" };
        let _ = write!(
            body,
            "<p><a rel=\"next\" href=\"{base}/batches?{finished}before={}\">Older</a></p>",
            html::escape(&html::url_component(last.id.as_str()))
        );
    }
    let title = if finished {
        "Finished batches"
    } else {
        "Started batches"
    };
    Html(html::page(title, &body)).into_response()
}

pub(super) async fn page(
    Page(dashboard): Page<Arc<Dashboard>>,
    base: Base,
    Path(id): Path<String>,
) -> Response {
    let storage = &dashboard.storage;
    let id = BatchId(id);
    let read = tokio::try_join!(
        storage.batch(&id),
        storage.continuations(Parent::Batch(id.clone()))
    );
    let (batch, continuations) = match read {
        Ok(read) => read,
        Err(error) => return unavailable(&error),
    };
    let Some(batch) = batch else {
        let body = format!("<p>No batch {}.</p>", html::escape(id.as_str()));
        return (StatusCode::NOT_FOUND, Html(html::page("Not found", &body))).into_response();
    };
    let base = base.href;
    let link = |id: &BatchId| {
        format!(
            "<a href=\"{base}/batch/{}\">{}</a>",
            html::escape(&html::url_component(id.as_str())),
            html::escape(id.as_str())
        )
    };
    let mut body = html::nav(&base);
    if batch.state == BatchState::Started {
        body.push_str(&dashboard.button(
            &format!(
                "{base}/batch/{}/cancel",
                html::escape(&html::url_component(batch.id.as_str()))
            ),
            "cancel",
            "Cancel the batch",
            &[],
        ));
    }
    let _ = write!(
        body,
        "<table><tr><th>Description</th><td>{}</td></tr><tr><th>State</th><td data-field=\"state\">{}</td></tr>\
         <tr><th>Progress</th><td>{}</td></tr><tr><th>Created</th><td>{}</td></tr>",
        html::escape(batch.description.as_deref().unwrap_or("")),
        batch.state,
        progress(&batch),
        batch.created_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
    );
    if let Some(at) = batch.finished_at {
        let _ = write!(
            body,
            "<tr><th>Finished</th><td>{}</td></tr>",
            at.format("%Y-%m-%d %H:%M:%S%.3f UTC")
        );
    }
    if let Some(parent) = &batch.parent {
        let _ = write!(body, "<tr><th>Nested in</th><td>{}</td></tr>", link(parent));
    }
    body.push_str("</table><h2>Members</h2><table><tr><th>State</th><th>Jobs</th></tr>");
    for state in State::ALL {
        let count = batch.jobs.get(state);
        if count > 0 {
            let _ = write!(
                body,
                "<tr><td>{state}</td><td class=\"n\">{count}</td></tr>"
            );
        }
    }
    body.push_str("</table>");
    if !batch.batches.is_empty() {
        body.push_str("<h2>Nested batches</h2><ul>");
        for nested in &batch.batches {
            let _ = write!(body, "<li>{}</li>", link(nested));
        }
        body.push_str("</ul>");
    }
    if !continuations.is_empty() {
        body.push_str("<h2>Continuations</h2>");
        body.push_str(&super::jobs::table(&base, &continuations, false));
    }
    let title = format!("Batch {}", batch.id.as_str());
    Html(html::page(&title, &body)).into_response()
}
