//! Jobs by state, and the Retries page (the `Scheduled` jobs that ran
//! before): one keyset page at a time, newest first; filtered by queue,
//! job name and text in the arguments through a bounded search (see
//! [`JobSearch`]); each job links to its detail page, and the jobs ticked
//! are requeued or deleted together.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State as Page};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use jobs_core::{JobId, JobQuery, JobRecord, JobSearch, State};
use serde::Deserialize;

use super::{Base, State as Dashboard, html, unavailable};

/// The most jobs on a page.
pub const PAGE_SIZE: usize = 50;

/// The query string of a page: the filters (`?queue=mail&name=send&text=ann%40`),
/// where the page starts (`before=1234`), and after a bulk action what it
/// did: `done=requeue&moved=3&skipped=1`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    queue: Option<String>,
    name: Option<String>,
    text: Option<String>,
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
/// `back` is the page to come back to, within the dashboard (its path
/// and filters, not escaped yet).
fn bulk_form(dashboard: &Dashboard, base: &str, state: State, back: &str) -> String {
    if dashboard.read_only {
        return String::new();
    }
    let action = |name: &str| format!("{base}/jobs/{state}/{name}");
    let mut form = format!(
        "<form id=\"bulk\" method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"back\" value=\"{}\">",
        action("requeue"),
        html::escape(back)
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
    let listing = Listing {
        state,
        retries: false,
    };
    listing.page(&dashboard, &base, filter).await
}

/// `/retries`: the `Scheduled` jobs that ran before, waiting for their
/// next attempt, as Hangfire's Retries page.
pub(super) async fn retries(
    Page(dashboard): Page<Arc<Dashboard>>,
    base: Base,
    Query(filter): Query<Filter>,
) -> Response {
    let listing = Listing {
        state: State::Scheduled,
        retries: true,
    };
    listing.page(&dashboard, &base, filter).await
}

/// A page of jobs: of a state, or the retries.
struct Listing {
    state: State,
    retries: bool,
}

/// A filter's text, `None` when empty.
fn given(text: &Option<String>) -> Option<String> {
    text.clone().filter(|text| !text.is_empty())
}

impl Listing {
    fn title(&self) -> String {
        if self.retries {
            "Retries".to_owned()
        } else {
            format!("{} jobs", self.state)
        }
    }

    /// Where this page is, within the dashboard.
    fn path(&self) -> String {
        if self.retries {
            "/retries".to_owned()
        } else {
            format!("/jobs/{}", self.state)
        }
    }

    async fn page(&self, dashboard: &Dashboard, base: &Base, filter: Filter) -> Response {
        let (queue, name, text) = (
            given(&filter.queue),
            given(&filter.name),
            given(&filter.text),
        );
        let mut query = JobQuery::new().state(self.state).limit(PAGE_SIZE);
        if let Some(before) = filter.before {
            query = query.before(JobId(before));
        }
        let searched = queue.is_some() || name.is_some() || text.is_some() || self.retries;
        let (jobs, next) = if searched {
            let mut search = JobSearch::new(query);
            search.jobs.queue = queue.clone();
            search.name = name.clone();
            search.text = text.clone();
            search.attempted = self.retries;
            match dashboard.storage.search_jobs(search).await {
                Ok(page) => (page.jobs, page.next),
                Err(error) => return unavailable(&error),
            }
        } else {
            match dashboard.storage.list_jobs(query).await {
                Ok(jobs) => {
                    let next = jobs
                        .last()
                        .filter(|_| jobs.len() == PAGE_SIZE)
                        .map(|job| job.id);
                    (jobs, next)
                }
                Err(error) => return unavailable(&error),
            }
        };
        let href = &base.href;
        let path = self.path();
        let field = |label: &str, name: &str, value: &Option<String>| {
            format!(
                "<label>{label} <input name=\"{name}\" value=\"{}\"></label> ",
                html::escape(value.as_deref().unwrap_or(""))
            )
        };
        let mut body = format!(
            "{}{}<form method=\"get\" class=\"filters\">{}{}{}<button>Filter</button></form>",
            html::nav(href),
            notice(&filter),
            field("Queue", "queue", &queue),
            field("Job name", "name", &name),
            field("Text in the arguments", "text", &text),
        );
        let mut back = path.clone();
        let mut separator = '?';
        for (name, value) in [("queue", &queue), ("name", &name), ("text", &text)] {
            if let Some(value) = value {
                let _ = write!(back, "{separator}{name}={}", html::url_component(value));
                separator = '&';
            }
        }
        let bulk = bulk_form(dashboard, href, self.state, &back);
        body.push_str(&bulk);
        body.push_str(&table(href, &jobs, !bulk.is_empty()));
        if jobs.is_empty() {
            body.push_str("<p>No job.</p>");
        }
        if let Some(next) = next {
            let mut query = format!("before={next}");
            for (name, value) in [("queue", &queue), ("name", &name), ("text", &text)] {
                if let Some(value) = value {
                    let _ = write!(
                        query,
                        "&amp;{name}={}",
                        html::escape(&html::url_component(value))
                    );
                }
            }
            let older = if jobs.len() < PAGE_SIZE {
                format!("Searched down to job {next}: search older jobs")
            } else {
                "Older".to_owned()
            };
            let _ = write!(
                body,
                "<p><a rel=\"next\" href=\"{href}{path}?{query}\">{older}</a></p>"
            );
        }
        Html(html::page(&self.title(), &body)).into_response()
    }
}

/// The jobs as a table, each linked to its page, with a box to tick when
/// `ticks` (for the bulk actions).
pub(super) fn table(base: &str, jobs: &[JobRecord], ticks: bool) -> String {
    let all = if ticks {
        "<input type=\"checkbox\" data-tick-all aria-label=\"all jobs\">"
    } else {
        ""
    };
    let mut table = format!(
        "<table><tr><th>{all}</th><th>Job</th><th>Name</th><th>Queue</th><th>Attempt</th><th>Since</th><th>Reason</th></tr>"
    );
    for job in jobs {
        let tick = if ticks {
            format!(
                "<input type=\"checkbox\" name=\"id\" value=\"{}\" form=\"bulk\" aria-label=\"job {}\">",
                job.id, job.id
            )
        } else {
            String::new()
        };
        let reason = job.reason.as_deref().unwrap_or("");
        let reason: String = reason.chars().take(200).collect();
        let _ = write!(
            table,
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
    table.push_str("</table>");
    table
}
