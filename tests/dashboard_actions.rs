//! What the dashboard changes, on every storage: requeue, delete and
//! cancel of one job or of the jobs ticked on a page, pause and resume of
//! queues, trigger, pause, resume and removal of recurring jobs; each a
//! POST answered with a redirect back. Forged requests (another site's
//! page, by `Sec-Fetch-Site` or `Origin`) and every change in read-only
//! mode are refused and change nothing; bad input gets a clear status.

#[macro_use]
mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use jobs::dashboard::Dashboard;
use jobs::prelude::*;
use jobs::{JobQuery, PauseTarget, RecurringOptions};
use tower::ServiceExt;

#[job]
async fn later(n: u32) {
    let _ = n;
}

/// The answer to a request: status, `Location`, body.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

/// A request from a loopback client with `Host: localhost`, a browser's
/// same-origin `Sec-Fetch-Site` unless `headers` say otherwise.
async fn send(
    app: &axum::Router,
    method: Method,
    path: &str,
    form: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if !headers.iter().any(|(name, _)| *name == "sec-fetch-site") {
        request = request.header("sec-fetch-site", "same-origin");
    }
    for (name, value) in headers {
        if !value.is_empty() {
            request = request.header(*name, *value);
        }
    }
    let mut request = request.body(Body::from(form.to_owned())).unwrap();
    let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|value| value.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        location,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn post(app: &axum::Router, path: &str, form: &str) -> Answer {
    send(app, Method::POST, path, form, &[]).await
}

async fn get(app: &axum::Router, path: &str) -> Answer {
    send(app, Method::GET, path, "", &[]).await
}

/// The dashboard nested under `/jobs`, as an application nests it.
fn nested(dashboard: Dashboard) -> axum::Router {
    axum::Router::new().nest("/jobs", dashboard.router())
}

/// `count` jobs scheduled an hour from now.
async fn scheduled_jobs(storage: &Storage, count: u32) -> Vec<JobId> {
    let client = Client::new(storage.clone());
    let mut ids = Vec::new();
    for n in 0..count {
        let id = later::schedule_in(&client, Duration::from_secs(3600), n)
            .await
            .unwrap();
        ids.push(JobId::from(id));
    }
    ids
}

async fn state_of(storage: &Storage, id: JobId) -> State {
    storage.job(id).await.unwrap().expect("the job").state
}

/// Ticked jobs are moved together and the page says how many; a job
/// that moved on meanwhile is counted apart, not an error; one job is
/// requeued, cancelled and deleted from its own page.
async fn jobs_are_moved_from_their_pages(fx: &Fixture) {
    let storage = &fx.storage;
    let app = nested(Dashboard::new(storage.clone()));
    let ids = scheduled_jobs(storage, 3).await;

    let page = get(&app, "/jobs/jobs/Scheduled").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for id in &ids {
        assert!(
            page.body
                .contains(&format!(r#"name="id" value="{id}" form="bulk""#)),
            "a box to tick per job: {}",
            page.body
        );
    }
    assert!(page.body.contains(r#"data-action="requeue">Enqueue now<"#));

    let form = format!("id={}&id={}", ids[0], ids[1]);
    let done = post(&app, "/jobs/jobs/Scheduled/requeue", &form).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("/jobs/jobs/Scheduled?done=requeue&moved=2&skipped=0")
    );
    assert_eq!(state_of(storage, ids[0]).await, State::Enqueued);
    assert_eq!(state_of(storage, ids[1]).await, State::Enqueued);
    assert_eq!(state_of(storage, ids[2]).await, State::Scheduled);
    let notice = get(&app, done.location.as_deref().unwrap()).await;
    assert!(notice.body.contains("Requeued 2 jobs."), "{}", notice.body);

    let form = format!("id={}&id={}", ids[0], ids[2]);
    let again = post(&app, "/jobs/jobs/Scheduled/delete", &form).await;
    assert_eq!(
        again.location.as_deref(),
        Some("/jobs/jobs/Scheduled?done=delete&moved=2&skipped=0"),
        "an Enqueued job may be deleted too"
    );
    let form = format!("id={}&id={}", ids[0], ids[1]);
    let refused = post(&app, "/jobs/jobs/Deleted/delete", &form).await;
    assert_eq!(
        refused.location.as_deref(),
        Some("/jobs/jobs/Deleted?done=delete&moved=1&skipped=1"),
        "the Deleted job is skipped, the Enqueued one moved"
    );
    let notice = get(&app, refused.location.as_deref().unwrap()).await;
    assert!(
        notice.body.contains("Deleted 1 job. 1 had moved on"),
        "{}",
        notice.body
    );

    let id = ids[1];
    let page = get(&app, &format!("/jobs/job/{id}")).await;
    assert!(
        page.body.contains(r#"<td data-field="state">Deleted</td>"#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!(r#"action="/jobs/job/{id}/requeue""#)),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(r#"data-action="delete""#),
        "{}",
        page.body
    );
    let requeued = post(&app, &format!("/jobs/job/{id}/requeue"), "").await;
    assert_eq!(requeued.status, StatusCode::SEE_OTHER, "{}", requeued.body);
    assert_eq!(requeued.location, Some(format!("/jobs/job/{id}")));
    assert_eq!(state_of(storage, id).await, State::Enqueued);
    let cancelled = post(&app, &format!("/jobs/job/{id}/cancel"), "").await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    assert_eq!(state_of(storage, id).await, State::Deleted);
    // A bulk action goes back to the page it came from, filters kept;
    // a `back` elsewhere than the dashboard is not followed.
    let form = format!("id={id}&back=%2Fretries%3Fqueue%3Da");
    let back = post(&app, "/jobs/jobs/Deleted/requeue", &form).await;
    assert_eq!(
        back.location.as_deref(),
        Some("/jobs/retries?queue=a&done=requeue&moved=1&skipped=0")
    );
    for elsewhere in [
        "%2F%2Fevil.example%2F",
        "http%3A%2F%2Fevil.example",
        "%2Fa%20b",
    ] {
        let form = format!("id={id}&back={elsewhere}");
        let refused = post(&app, "/jobs/jobs/Enqueued/requeue", &form).await;
        assert_eq!(
            refused.location.as_deref(),
            Some("/jobs/jobs/Enqueued?done=requeue&moved=0&skipped=1"),
            "{elsewhere}"
        );
    }
    storage.delete(id).await.unwrap();
    let finished = post(&app, &format!("/jobs/job/{id}/cancel"), "").await;
    assert_eq!(finished.status, StatusCode::CONFLICT, "{}", finished.body);
    assert!(
        finished.body.contains("nothing to cancel"),
        "{}",
        finished.body
    );
}

/// Refusals say what is wrong and change nothing: an Enqueued job cannot
/// be requeued (409), an unknown job or action is 404, an id that is no
/// number 400.
async fn bad_changes_get_clear_statuses(fx: &Fixture) {
    let storage = &fx.storage;
    let app = nested(Dashboard::new(storage.clone()));
    let id = scheduled_jobs(storage, 1).await[0];
    storage.requeue(id).await.unwrap();

    let conflict = post(&app, &format!("/jobs/job/{id}/requeue"), "").await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.body);
    assert!(
        conflict.body.contains("cannot move from Enqueued"),
        "{}",
        conflict.body
    );
    let missing = post(&app, &format!("/jobs/job/{}/delete", id.0 + 1_000_000), "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    let unknown = post(&app, &format!("/jobs/job/{id}/explode"), "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let bad = post(&app, "/jobs/jobs/Enqueued/delete", "id=12x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("12x"), "{}", bad.body);
    let no_state = post(&app, "/jobs/jobs/Nope/delete", &format!("id={id}")).await;
    assert_eq!(no_state.status, StatusCode::NOT_FOUND);
    let no_queue = post(&app, "/jobs/queues/pause", "").await;
    assert_eq!(no_queue.status, StatusCode::BAD_REQUEST);
    assert_eq!(state_of(storage, id).await, State::Enqueued);
    assert!(storage.paused().await.unwrap().is_empty());
}

/// A queue is paused and resumed from the queues page, which lists it
/// with its jobs and says whether it is paused.
async fn queues_are_paused_and_resumed(fx: &Fixture) {
    let storage = &fx.storage;
    let app = nested(Dashboard::new(storage.clone()));
    scheduled_jobs(storage, 2).await;

    let page = get(&app, "/jobs/queues").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains(r#"<tr data-queue="default">"#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"href="/jobs/jobs/Scheduled?queue=default">2<"#),
        "{}",
        page.body
    );

    let paused = post(&app, "/jobs/queues/pause", "queue=a+%3Cqueue%3E").await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER, "{}", paused.body);
    assert_eq!(paused.location.as_deref(), Some("/jobs/queues"));
    let listed = storage.paused().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].target, PauseTarget::Queue("a <queue>".into()));
    let page = get(&app, "/jobs/queues").await;
    assert!(
        page.body
            .contains(r#"<tr data-queue="a &lt;queue&gt;"><td>a &lt;queue&gt;</td>"#),
        "a paused queue with no job is listed: {}",
        page.body
    );
    assert!(page.body.contains(r#"data-field="paused">yes<"#));
    assert!(page.body.contains(r#"data-action="resume""#));

    let resumed = post(&app, "/jobs/queues/resume", "queue=a+%3Cqueue%3E").await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER);
    assert!(storage.paused().await.unwrap().is_empty());
}

/// A recurring job is triggered, paused, resumed and removed from the
/// recurring jobs page; an unknown one is 404.
async fn recurring_jobs_are_controlled(fx: &Fixture) {
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    later::recurring_with(&client, "nightly", RecurringOptions::cron("0 0 3 * * *"), 7)
        .await
        .unwrap();
    let app = nested(Dashboard::new(storage.clone()));

    let page = get(&app, "/jobs/recurring").await;
    assert!(
        page.body.contains(r#"data-action="trigger""#),
        "{}",
        page.body
    );
    let before = storage.counts().await.unwrap().get(State::Enqueued);
    let triggered = post(&app, "/jobs/recurring/trigger", "id=nightly").await;
    assert_eq!(
        triggered.status,
        StatusCode::SEE_OTHER,
        "{}",
        triggered.body
    );
    assert_eq!(triggered.location.as_deref(), Some("/jobs/recurring"));
    assert_eq!(
        storage.counts().await.unwrap().get(State::Enqueued),
        before + 1
    );

    post(&app, "/jobs/recurring/pause", "id=nightly").await;
    let job = storage.recurring_job("nightly").await.unwrap().unwrap();
    assert!(job.paused);
    let page = get(&app, "/jobs/recurring").await;
    assert!(
        page.body.contains(r#"data-action="resume""#),
        "{}",
        page.body
    );
    post(&app, "/jobs/recurring/resume", "id=nightly").await;
    assert!(
        !storage
            .recurring_job("nightly")
            .await
            .unwrap()
            .unwrap()
            .paused
    );
    let removed = post(&app, "/jobs/recurring/remove", "id=nightly").await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert!(storage.recurring_job("nightly").await.unwrap().is_none());
    let gone = post(&app, "/jobs/recurring/trigger", "id=nightly").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
}

/// A POST another site's page makes the browser send is refused and
/// changes nothing, whether the browser marks it with `Sec-Fetch-Site` or
/// only with `Origin`; one from the dashboard's own origin is served, as
/// is one from no browser (neither header).
async fn forged_changes_are_refused(fx: &Fixture) {
    let storage = &fx.storage;
    let app = nested(Dashboard::new(storage.clone()));
    let id = scheduled_jobs(storage, 1).await[0];
    let path = format!("/jobs/job/{id}/delete");
    for headers in [
        [("sec-fetch-site", "cross-site"), ("origin", "")],
        [("sec-fetch-site", "same-site"), ("origin", "")],
        [("sec-fetch-site", ""), ("origin", "http://evil.example")],
        [("sec-fetch-site", ""), ("origin", "null")],
    ] {
        let forged = send(&app, Method::POST, &path, "", &headers).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(state_of(storage, id).await, State::Scheduled);
    }
    let own = [("sec-fetch-site", ""), ("origin", "http://localhost")];
    let served = send(&app, Method::POST, &path, "", &own).await;
    assert_eq!(served.status, StatusCode::SEE_OTHER, "{}", served.body);
    assert_eq!(state_of(storage, id).await, State::Deleted);
    let path = format!("/jobs/job/{id}/requeue");
    let no_browser = [("sec-fetch-site", ""), ("origin", "")];
    let served = send(&app, Method::POST, &path, "", &no_browser).await;
    assert_eq!(served.status, StatusCode::SEE_OTHER, "{}", served.body);
}

/// In read-only mode no page offers a change and every change is
/// refused with 403, changing nothing.
async fn read_only_mode_changes_nothing(fx: &Fixture) {
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    later::recurring_with(&client, "nightly", RecurringOptions::cron("0 0 3 * * *"), 7)
        .await
        .unwrap();
    let id = scheduled_jobs(storage, 1).await[0];
    let app = nested(Dashboard::new(storage.clone()).read_only());
    for page in [
        "/jobs".to_owned(),
        "/jobs/jobs/Scheduled".to_owned(),
        format!("/jobs/job/{id}"),
        "/jobs/recurring".to_owned(),
        "/jobs/queues".to_owned(),
    ] {
        let shown = get(&app, &page).await;
        assert_eq!(shown.status, StatusCode::OK, "{page}: {}", shown.body);
        assert!(!shown.body.contains("<form method=\"post\""), "{page}");
        assert!(
            !shown.body.contains("data-action"),
            "{page}: {}",
            shown.body
        );
        assert!(!shown.body.contains("type=\"checkbox\""), "{page}");
    }
    for (path, form) in [
        (format!("/jobs/job/{id}/requeue"), String::new()),
        ("/jobs/jobs/Scheduled/delete".to_owned(), format!("id={id}")),
        ("/jobs/queues/pause".to_owned(), "queue=default".to_owned()),
        ("/jobs/recurring/remove".to_owned(), "id=nightly".to_owned()),
    ] {
        let refused = post(&app, &path, &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(refused.body.contains("read-only"), "{}", refused.body);
    }
    assert_eq!(state_of(storage, id).await, State::Scheduled);
    assert!(storage.paused().await.unwrap().is_empty());
    assert!(storage.recurring_job("nightly").await.unwrap().is_some());
}

/// Batches are listed with their progress, started and finished apart;
/// a batch's page shows its members and is cancelled from there; a job's
/// page links to its batch and lists its continuations.
async fn batches_are_shown_and_cancelled(fx: &Fixture) {
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    let mut batch = jobs::Batch::new().description("<nightly>");
    later::add_to_batch(&mut batch, 1).unwrap();
    later::add_to_batch(&mut batch, 2).unwrap();
    let id = client.enqueue_batch(batch).await.unwrap();
    let member = storage
        .list_jobs(JobQuery::new().limit(1))
        .await
        .unwrap()
        .remove(0);
    let continuation = later::enqueue_with(&client, EnqueueOptions::new().after(member.id), 3)
        .await
        .unwrap();
    let app = nested(Dashboard::new(storage.clone()));

    let list = get(&app, "/jobs/batches").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains(&format!(r#"<tr data-batch="{id}">"#)),
        "{}",
        list.body
    );
    assert!(list.body.contains("&lt;nightly&gt;"), "{}", list.body);
    assert!(list.body.contains("0 of 2"), "{}", list.body);

    let page = get(&app, &format!("/jobs/batch/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains(r#"<td data-field="state">Started</td>"#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"data-action="cancel""#),
        "{}",
        page.body
    );
    let job_page = get(&app, &format!("/jobs/job/{}", member.id)).await;
    assert!(
        job_page
            .body
            .contains(&format!(r#"href="/jobs/batch/{id}""#)),
        "{}",
        job_page.body
    );
    assert!(
        job_page
            .body
            .contains(&format!(r#"data-job="{}""#, JobId::from(continuation))),
        "the continuation is listed: {}",
        job_page.body
    );

    let cancelled = post(&app, &format!("/jobs/batch/{id}/cancel"), "").await;
    assert_eq!(
        cancelled.status,
        StatusCode::SEE_OTHER,
        "{}",
        cancelled.body
    );
    assert_eq!(cancelled.location, Some(format!("/jobs/batch/{id}")));
    let stored = storage.batch(&id).await.unwrap().unwrap();
    assert_eq!(stored.state, jobs::BatchState::Deleted);
    let finished = get(&app, "/jobs/batches?finished=1").await;
    assert!(
        finished
            .body
            .contains(&format!(r#"<tr data-batch="{id}">"#)),
        "{}",
        finished.body
    );
    let again = post(&app, &format!("/jobs/batch/{id}/cancel"), "").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let unknown = get(&app, "/jobs/batch/no-such-batch").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

on_every_storage!(
    batches_are_shown_and_cancelled,
    jobs_are_moved_from_their_pages,
    bad_changes_get_clear_statuses,
    queues_are_paused_and_resumed,
    recurring_jobs_are_controlled,
    forged_changes_are_refused,
    read_only_mode_changes_nothing,
);
