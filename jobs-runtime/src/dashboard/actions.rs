//! What the dashboard changes: every change is a `POST` of a form, checked
//! against cross-site forgery ([`csrf`](super::csrf)) and refused in
//! read-only mode, that answers `303 See Other` back to the page it came
//! from (so a reload does not send it again).
//!
//! - `POST /job/{id}/{requeue|delete|cancel}`: one job;
//! - `POST /jobs/{state}/{requeue|delete}` with `id=..&id=..`: the jobs
//!   ticked on a page of jobs (at most [`JobQuery::MAX_LIMIT`]), and
//!   `back=..`, the page to come back to (a path within the dashboard);
//! - `POST /batch/{id}/cancel`: a started batch and its nested ones;
//! - `POST /recurring/{trigger|pause|resume|remove}` with `id=..`;
//! - `POST /queues/{pause|resume}` with `queue=..`.

use std::sync::Arc;

use axum::extract::{Form, Path, Request, State as Page};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::post;
use axum::{Router, middleware};
use jobs_core::{Error, JobId, JobQuery, State};

use super::{Base, State as Dashboard, csrf, html, unavailable};

/// The routes that change something, behind [`guard`].
pub(super) fn routes(dashboard: Arc<Dashboard>) -> Router<Arc<Dashboard>> {
    Router::new()
        .route("/job/{id}/{action}", post(job))
        .route("/jobs/{state}/{action}", post(jobs))
        .route("/batch/{id}/cancel", post(cancel_batch))
        .route("/recurring/{action}", post(recurring))
        .route("/queues/{action}", post(queue))
        .route_layer(middleware::from_fn_with_state(dashboard, guard))
}

/// Refuses every change in read-only mode, and forged requests.
async fn guard(Page(dashboard): Page<Arc<Dashboard>>, request: Request, next: Next) -> Response {
    if dashboard.read_only {
        return refused(
            StatusCode::FORBIDDEN,
            "Read-only",
            "This dashboard is read-only: it changes nothing.",
        );
    }
    let (parts, body) = request.into_parts();
    if let Some(why) = csrf::refusal(&parts) {
        tracing::warn!(uri = %parts.uri, why, "the dashboard refused a cross-origin request");
        return refused(
            StatusCode::FORBIDDEN,
            "Refused",
            &format!("The request was refused: {why}."),
        );
    }
    next.run(Request::from_parts(parts, body)).await
}

/// A page that says why nothing was changed (`message` is escaped here).
fn refused(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!("<p>{}</p>", html::escape(message));
    (status, Html(html::page(title, &body))).into_response()
}

/// `303 See Other` to `path` within the dashboard.
fn back_to(base: &Base, path: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("{}{path}", base.path))],
    )
        .into_response()
}

/// The page for an error of a change: what the operator can fix is said,
/// a storage failure is logged and not shown.
fn failed(error: &Error) -> Response {
    match error {
        Error::JobNotFound(_) | Error::RecurringJobNotFound(_) | Error::BatchNotFound(_) => {
            refused(StatusCode::NOT_FOUND, "Not found", &error.to_string())
        }
        Error::MoveRefused { .. }
        | Error::InvalidSchedule { .. }
        | Error::Config(_)
        | Error::BatchFinished { .. } => {
            refused(StatusCode::CONFLICT, "Not changed", &error.to_string())
        }
        _ => unavailable(error),
    }
}

/// The move an action names, on one job.
async fn apply(dashboard: &Dashboard, action: &str, id: JobId) -> Option<Result<(), Error>> {
    let storage = &dashboard.storage;
    Some(match action {
        "requeue" => storage.requeue(id).await,
        "delete" => storage.delete(id).await,
        _ => return None,
    })
}

fn no_such_action(action: &str) -> Response {
    refused(
        StatusCode::NOT_FOUND,
        "Not found",
        &format!("No action named “{action}”."),
    )
}

async fn job(
    Page(dashboard): Page<Arc<Dashboard>>,
    base: Base,
    Path((id, action)): Path<(i64, String)>,
) -> Response {
    if action == "cancel" {
        return match dashboard.storage.cancel(JobId(id)).await {
            Ok(true) => back_to(&base, &format!("/job/{id}")),
            Ok(false) => refused(
                StatusCode::CONFLICT,
                "Not changed",
                &format!("Job {id} had finished already: there was nothing to cancel."),
            ),
            Err(error) => failed(&error),
        };
    }
    match apply(&dashboard, &action, JobId(id)).await {
        None => no_such_action(&action),
        Some(Ok(())) => back_to(&base, &format!("/job/{id}")),
        Some(Err(error)) => failed(&error),
    }
}

async fn jobs(
    Page(dashboard): Page<Arc<Dashboard>>,
    base: Base,
    Path((state, action)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Ok(state) = state.parse::<State>() else {
        return refused(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("No state named “{state}”."),
        );
    };
    if !matches!(action.as_str(), "requeue" | "delete") {
        return no_such_action(&action);
    }
    let mut ids = Vec::new();
    for (name, value) in fields.iter().filter(|(name, _)| name == "id") {
        match value.parse::<i64>() {
            Ok(id) => ids.push(JobId(id)),
            Err(_) => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    &format!("“{value}” in the field {name} is not a job id."),
                );
            }
        }
    }
    if ids.len() > JobQuery::MAX_LIMIT {
        return refused(
            StatusCode::BAD_REQUEST,
            "Bad request",
            &format!(
                "{} jobs at once are too many; at most {} are moved at once.",
                ids.len(),
                JobQuery::MAX_LIMIT
            ),
        );
    }
    let (mut moved, mut skipped) = (0usize, 0usize);
    for id in ids {
        match apply(&dashboard, &action, id).await {
            Some(Ok(())) => moved += 1,
            // Moved or removed by someone else since the page was shown.
            Some(Err(Error::MoveRefused { .. } | Error::JobNotFound(_))) => skipped += 1,
            Some(Err(error)) => return failed(&error),
            None => return no_such_action(&action),
        }
    }
    // Back to the page the form came from (its filters kept), told what
    // was done; a `back` that is not a path within the dashboard is not
    // followed.
    let page = field(&fields, "back")
        .filter(|back| within_dashboard(back))
        .map_or_else(|| format!("/jobs/{state}"), str::to_owned);
    let separator = if page.contains('?') { '&' } else { '?' };
    back_to(
        &base,
        &format!("{page}{separator}done={action}&moved={moved}&skipped={skipped}"),
    )
}

/// Whether `path` is a path within the dashboard that a `Location` can
/// carry: it starts with one `/` (not `//`, another host), and holds only
/// visible ASCII (a query string percent-encoded), no `\`.
fn within_dashboard(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 2048
        && path
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b'\\')
}

async fn cancel_batch(
    Page(dashboard): Page<Arc<Dashboard>>,
    base: Base,
    Path(id): Path<String>,
) -> Response {
    let batch = jobs_core::BatchId(id);
    match dashboard.storage.cancel_batch(&batch).await {
        Ok(_) => back_to(
            &base,
            &format!("/batch/{}", html::url_component(batch.as_str())),
        ),
        Err(error) => failed(&error),
    }
}

async fn recurring(
    Page(dashboard): Page<Arc<Dashboard>>,
    base: Base,
    Path(action): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = field(&fields, "id") else {
        return missing_field("id");
    };
    let storage = &dashboard.storage;
    let done = match action.as_str() {
        "trigger" => storage.trigger_recurring(id).await.map(|_| ()),
        "pause" => storage.pause_recurring(id).await,
        "resume" => storage.resume_recurring(id).await,
        "remove" => storage.remove_recurring(id).await,
        _ => return no_such_action(&action),
    };
    match done {
        Ok(()) => back_to(&base, "/recurring"),
        Err(error) => failed(&error),
    }
}

async fn queue(
    Page(dashboard): Page<Arc<Dashboard>>,
    base: Base,
    Path(action): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(queue) = field(&fields, "queue") else {
        return missing_field("queue");
    };
    let storage = &dashboard.storage;
    let done = match action.as_str() {
        "pause" => storage.pause_queue(queue).await,
        "resume" => storage.resume_queue(queue).await,
        _ => return no_such_action(&action),
    };
    match done {
        Ok(_) => back_to(&base, "/queues"),
        Err(error) => failed(&error),
    }
}

/// The first value of the form field `name`.
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.as_str())
}

fn missing_field(name: &str) -> Response {
    refused(
        StatusCode::BAD_REQUEST,
        "Bad request",
        &format!("The form has no field {name}."),
    )
}
