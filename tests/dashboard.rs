//! The dashboard served by a server and nested in an application, on every
//! storage: the overview over real HTTP, and who is served (loopback
//! clients only by default; basic auth and bearer tokens; a closure).

#[macro_use]
mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::*;
use jobs::dashboard::{BasicAuth, BearerToken, Dashboard};
use jobs::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

#[job]
async fn waits_here(n: u32) {
    let _ = n;
}

/// Logs, reports progress, then fails for good with markup in its error.
#[job(retries = 0)]
async fn fails_with_markup(ctx: JobContext, note: String) -> Result<(), JobError> {
    ctx.log(format!("working on <{note}>"));
    ctx.progress(0.5);
    Err(JobError::permanent("<b>card declined</b>"))
}

/// Fails its first attempt, to be retried in an hour.
#[job(retries = 2)]
async fn retried_later(ctx: JobContext) -> Result<(), JobError> {
    let _ = ctx;
    Err(JobError::new("try again").retry_after(Duration::from_secs(3600)))
}

/// `GET path` from a loopback client through `app`; the status and body.
async fn get_from(app: &axum::Router, path: &str) -> (StatusCode, String) {
    let mut request = Request::builder()
        .uri(path)
        .header(header::HOST, "localhost")
        .body(Body::empty())
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// `GET path` over a new TCP connection; the status and the body.
async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A server started with `.dashboard("127.0.0.1:0")` serves the overview
/// on the port it bound: the jobs per state and itself among the servers,
/// its queue's name escaped.
async fn a_server_serves_the_overview(fx: &Fixture) {
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    for n in 0..3 {
        waits_here::schedule_in(&client, Duration::from_secs(3600), n)
            .await
            .unwrap();
    }
    let server = fast_server(storage)
        .queues(["<script>alert(1)</script>"])
        .dashboard("127.0.0.1:0")
        .start()
        .unwrap();
    let address = server.dashboard_address().expect("a dashboard address");
    assert_ne!(address.port(), 0);
    wait_until("the server to register", || async {
        !storage.servers().await.unwrap().is_empty()
    })
    .await;
    let (status, body) = get(address, "/").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#"data-state="Scheduled">3<"#),
        "three scheduled jobs: {body}"
    );
    assert!(body.contains(r#"data-state="Enqueued">0<"#), "{body}");
    assert!(body.contains(server.id()), "the server itself: {body}");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !body.contains("<script>alert"),
        "text from the storage is escaped: {body}"
    );
    server.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the dashboard stops with the server"
    );
}

/// A dashboard address that cannot be bound is a startup error that names it.
async fn a_dashboard_address_in_use_is_a_startup_error(fx: &Fixture) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let started = fast_server(&fx.storage).dashboard(address.clone()).start();
    match started {
        Err(jobs::Error::Config(message)) => assert!(message.contains(&address), "{message}"),
        other => panic!(
            "expected a Config error, got {:?}",
            other.map(|s| s.id().to_owned())
        ),
    }
}

/// A request to `router` from `peer`, with `headers` (and `Host:
/// localhost` unless they give one); its status.
async fn status_of(
    router: axum::Router,
    peer: Option<&str>,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, Option<String>) {
    let mut request = Request::builder().uri("/");
    if !headers.iter().any(|(name, _)| name == header::HOST) {
        request = request.header(header::HOST, "localhost");
    }
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let mut request = request.body(Body::empty()).unwrap();
    if let Some(peer) = peer {
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    let response = router.oneshot(request).await.unwrap();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status(), challenge)
}

/// By default only loopback clients are served: another address, a
/// request through a proxy, and a request whose peer is unknown (the app
/// was served without connect info) are refused.
async fn only_loopback_clients_are_served_by_default(fx: &Fixture) {
    let router = || jobs::dashboard::router(fx.storage.clone());
    assert_eq!(
        status_of(router(), Some("127.0.0.1:5000"), &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(router(), Some("[::1]:5000"), &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(router(), Some("10.1.2.3:5000"), &[]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(
            router(),
            Some("127.0.0.1:5000"),
            &[(
                header::HeaderName::from_static("x-forwarded-for"),
                "203.0.113.9"
            )]
        )
        .await
        .0,
        StatusCode::FORBIDDEN,
        "a proxy on loopback does not make its clients local"
    );
    assert_eq!(
        status_of(router(), None, &[]).await.0,
        StatusCode::FORBIDDEN
    );
}

/// With authorization configured, any address is served when the rule
/// says so, and refused with the rule's challenge otherwise.
async fn configured_authorization_decides(fx: &Fixture) {
    let basic = || {
        Dashboard::new(fx.storage.clone())
            .authorize(BasicAuth::new("admin", "s3cret"))
            .router()
    };
    // "admin:s3cret" and "admin:wrong", base64.
    let right = [(header::AUTHORIZATION, "Basic YWRtaW46czNjcmV0")];
    let wrong = [(header::AUTHORIZATION, "Basic YWRtaW46d3Jvbmc=")];
    assert_eq!(
        status_of(basic(), Some("10.1.2.3:5000"), &right).await.0,
        StatusCode::OK
    );
    let (status, challenge) = status_of(basic(), Some("10.1.2.3:5000"), &wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.is_some_and(|c| c.starts_with("Basic")));
    let (status, _) = status_of(basic(), Some("127.0.0.1:5000"), &[]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "loopback too must authenticate"
    );

    let bearer = || {
        Dashboard::new(fx.storage.clone())
            .authorize(BearerToken::new("t0ken"))
            .router()
    };
    let token = [(header::AUTHORIZATION, "Bearer t0ken")];
    let other = [(header::AUTHORIZATION, "Bearer t0ken2")];
    assert_eq!(status_of(bearer(), None, &token).await.0, StatusCode::OK);
    assert_eq!(
        status_of(bearer(), None, &other).await.0,
        StatusCode::UNAUTHORIZED
    );

    let by_header = || {
        Dashboard::new(fx.storage.clone())
            .authorize(|request: &axum::http::request::Parts| {
                request.headers.contains_key("x-authenticated-user")
            })
            .router()
    };
    let user = [(
        header::HeaderName::from_static("x-authenticated-user"),
        "ann",
    )];
    assert_eq!(status_of(by_header(), None, &user).await.0, StatusCode::OK);
    let (status, challenge) = status_of(by_header(), None, &[]).await;
    assert_eq!((status, challenge), (StatusCode::UNAUTHORIZED, None));
}

/// Nested under `/jobs` in an application: the overview links to the
/// jobs of each state, the list to each job, and the job's page shows its
/// arguments, reason, parameters, history, log and progress; the
/// recurring jobs and servers pages list theirs; every text escaped; an
/// unknown state or job is 404.
async fn nested_pages_list_and_show_jobs(fx: &Fixture) {
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    let options = EnqueueOptions::new().parameter("tenant", "<acme>");
    let id = fails_with_markup::enqueue_with(&client, options, "x".into())
        .await
        .unwrap();
    let server = fast_server(storage).start().unwrap();
    wait_for_state(storage, id, State::Failed).await;
    wait_until("the job's log line", || async {
        !storage
            .job_log(jobs::JobLogQuery::new(id))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    server.shutdown().await;
    let app = axum::Router::new().nest("/jobs", jobs::dashboard::router(storage.clone()));

    let (status, overview) = get_from(&app, "/jobs").await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    assert!(
        overview.contains(r#"href="/jobs/jobs/Failed""#),
        "{overview}"
    );
    // The menu's link to the overview is one the nested router serves.
    assert!(
        overview.contains(r#"<a href="/jobs">Overview</a>"#),
        "{overview}"
    );

    let (status, failed) = get_from(&app, "/jobs/jobs/Failed").await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    let id = JobId::from(id);
    assert!(
        failed.contains(&format!(r#"href="/jobs/job/{id}""#)),
        "{failed}"
    );
    assert!(
        failed.contains("&lt;b&gt;card declined&lt;/b&gt;"),
        "{failed}"
    );
    let (_, other_queue) = get_from(&app, "/jobs/jobs/Failed?queue=elsewhere").await;
    assert!(other_queue.contains("No job."), "{other_queue}");

    let (status, detail) = get_from(&app, &format!("/jobs/job/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    for expected in [
        "fails_with_markup",
        "&quot;note&quot;: &quot;x&quot;",
        "&lt;b&gt;card declined&lt;/b&gt;",
        "tenant",
        "&quot;&lt;acme&gt;&quot;",
        "working on &lt;x&gt;",
        "50%",
        "Processing",
    ] {
        assert!(detail.contains(expected), "{expected} in {detail}");
    }
    assert!(
        !detail.contains("<b>") && !detail.contains("<acme>"),
        "{detail}"
    );

    assert_eq!(
        get_from(&app, "/jobs/jobs/Nope").await.0,
        StatusCode::NOT_FOUND
    );
    let unknown = format!("/jobs/job/{}", id.0 + 1_000_000);
    assert_eq!(get_from(&app, &unknown).await.0, StatusCode::NOT_FOUND);
}

/// The statistics feed the overview and `/stats.json`: jobs that
/// succeeded and failed are counted in all and in this hour's bar of the
/// history graph, and the counts page scripts poll are the ones shown.
async fn statistics_feed_the_overview_and_the_live_counts(fx: &Fixture) {
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    let mut ok = Vec::new();
    for n in 0..2 {
        ok.push(waits_here::enqueue(&client, n).await.unwrap());
    }
    let failed = fails_with_markup::enqueue(&client, "y".into())
        .await
        .unwrap();
    let server = fast_server(storage).start().unwrap();
    for id in ok {
        wait_for_state(storage, id, State::Succeeded).await;
    }
    wait_for_state(storage, failed, State::Failed).await;
    server.shutdown().await;
    let app = jobs::dashboard::router(storage.clone());

    let (status, json) = get_from(&app, "/stats.json").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let stats: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(stats["succeeded"], 2, "{json}");
    assert_eq!(stats["failed"], 1, "{json}");
    assert_eq!(stats["counts"]["Succeeded"], 2, "{json}");
    assert_eq!(stats["counts"]["Failed"], 1, "{json}");
    assert_eq!(stats["counts"]["Enqueued"], 0, "{json}");

    let (_, overview) = get_from(&app, "/").await;
    assert!(
        overview.contains(r#"data-count="Succeeded" data-state="Succeeded">2<"#),
        "{overview}"
    );
    assert!(overview.contains(r#"<svg id="realtime""#), "{overview}");
    // Each hour's bar says what finished in it; the jobs may straddle an
    // hour, so the bars of the hours they finished in are read.
    let statistics = storage.statistics().await.unwrap();
    for hour in &statistics.hours {
        let bar = format!(
            "{}: {} succeeded, {} failed",
            hour.hour.format("%H:00"),
            hour.finished.succeeded,
            hour.finished.failed
        );
        assert!(overview.contains(&bar), "{bar}: {overview}");
    }
    let bars: u64 = statistics
        .hours
        .iter()
        .map(|hour| hour.finished.succeeded + hour.finished.failed)
        .sum();
    assert_eq!(bars, 3, "{statistics:?}");
}

/// The jobs pages filter by queue, job name and text in the arguments,
/// keeping the filters in the link to older jobs; the Retries page lists
/// the scheduled jobs that ran before, not those never run.
async fn pages_filter_jobs_and_list_retries(fx: &Fixture) {
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = waits_here::schedule_in(&client, Duration::from_secs(3600), n + 20)
            .await
            .unwrap();
        ids.push(JobId::from(id));
    }
    let retried = JobId::from(retried_later::enqueue(&client).await.unwrap());
    let server = fast_server(storage).start().unwrap();
    wait_until("the retry to be scheduled", || async {
        let job = storage.job(retried).await.unwrap().unwrap();
        job.state == State::Scheduled && job.attempt == 1
    })
    .await;
    server.shutdown().await;
    let app = jobs::dashboard::router(storage.clone());
    let shown = |page: &str, n: usize| page.contains(&format!(r#"data-job="{}""#, ids[n]));

    // {"n":21}, the second job's arguments.
    let (status, page) = get_from(&app, "/jobs/Scheduled?text=%22n%22%3A21").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        shown(&page, 1) && !shown(&page, 0) && !shown(&page, 2),
        "{page}"
    );
    assert!(page.contains(r#"value="&quot;n&quot;:21""#), "{page}");
    let (_, page) = get_from(&app, "/jobs/Scheduled?name=waits_here").await;
    assert!((0..3).all(|n| shown(&page, n)), "{page}");
    assert!(
        !page.contains(&format!(r#"data-job="{retried}""#)),
        "{page}"
    );
    let (_, page) = get_from(&app, "/jobs/Scheduled?name=nope&queue=default").await;
    assert!(page.contains("No job."), "{page}");

    let (status, page) = get_from(&app, "/retries").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!(r#"data-job="{retried}""#)), "{page}");
    assert!(!(0..3).any(|n| shown(&page, n)), "never run: {page}");
}

/// No answer may be shown in another site's frame (clickjacking would
/// have the operator click a framed button), a refusal neither.
async fn no_answer_may_be_framed(fx: &Fixture) {
    let app = jobs::dashboard::router(fx.storage.clone());
    for (path, peer) in [("/", "127.0.0.1:5000"), ("/queues", "10.1.2.3:5000")] {
        let mut request = Request::builder()
            .uri(path)
            .header(header::HOST, "localhost")
            .body(Body::empty())
            .unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = app.clone().oneshot(request).await.unwrap();
        let headers = response.headers();
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}

on_every_storage!(
    no_answer_may_be_framed,
    pages_filter_jobs_and_list_retries,
    statistics_feed_the_overview_and_the_live_counts,
    nested_pages_list_and_show_jobs,
    a_server_serves_the_overview,
    a_dashboard_address_in_use_is_a_startup_error,
    only_loopback_clients_are_served_by_default,
    configured_authorization_decides,
);
