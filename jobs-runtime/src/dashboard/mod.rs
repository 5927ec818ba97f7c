//! The dashboard: see the jobs of a storage from a browser, as Hangfire's
//! dashboard does. An axum [`Router`] that an application nests in its own
//! app (`app.nest("/jobs", jobs::dashboard::router(storage))`), or that a
//! server serves on an address of its own
//! ([`ServerBuilder::dashboard`](crate::ServerBuilder::dashboard)).
//!
//! **Who is served.** By default only clients on the loopback interface
//! (127.0.0.1, ::1) that name a loopback host (`localhost`, `127.0.0.1`,
//! `[::1]`: a page of another site that points its name at 127.0.0.1, DNS
//! rebinding, is refused), as Hangfire's
//! `LocalRequestsOnlyAuthorizationFilter`. A request that carries a proxy's
//! header (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`, `Via`, ...) is not
//! taken for a loopback one; a proxy that adds no such header cannot be
//! told from a local client, so anything proxied to the dashboard must
//! configure an [`Authorize`] rule: [`BasicAuth`], [`BearerToken`], or a
//! closure over the request's head ([`Dashboard::authorize`]). The
//! dashboard's own listener speaks plain HTTP: serve others than loopback
//! clients behind a TLS-terminating proxy.
//!
//! **Pages.** The overview (jobs per state, a realtime graph of jobs
//! succeeded and failed per second, history graphs per hour and per day,
//! servers); jobs by state (keyset pages of [`jobs::PAGE_SIZE`], newest
//! first, filtered by queue, job name and text in the arguments through a
//! bounded search, with bulk requeue and delete of the jobs ticked); the
//! retries; a job's detail (arguments, history with reasons, parameters,
//! log and progress, result, continuations, batch; requeue, cancel,
//! delete); recurring jobs (trigger, pause, resume, remove); queues (jobs
//! per state, pause, resume); batches (progress, members, nested batches,
//! continuations; cancel); servers. Every page's menu shows the count of
//! each state, kept live by a small script that polls `/stats.json`. Every
//! page reads the storage through the [`Storage`] handle's monitoring
//! calls, and links within the dashboard wherever it is nested; every
//! asset is inline (no CDN), and no answer may be shown in another site's
//! frame.
//!
//! **Changes.** Every change is a `POST` of a form, answered with a
//! redirect back. It is refused (`403`) when another site's page makes
//! the browser send it (cross-site request forgery: the browser's
//! `Sec-Fetch-Site` or `Origin` header must name the dashboard's own
//! origin; a request with neither comes from no browser and is served),
//! and always in read-only mode ([`Dashboard::read_only`]).

mod access;
mod actions;
mod batches;
mod csrf;
mod graphs;
mod html;
mod job;
mod jobs;
pub(crate) mod listener;
mod live;
mod overview;
mod queues;
mod recurring;
mod servers;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use access::{Authorize, BasicAuth, BearerToken};
pub use jobs::PAGE_SIZE;
pub use listener::{
    CLOSING_GRACE, HEADER_READ_TIMEOUT, MAX_CONNECTION_LIFETIME, MAX_CONNECTIONS, REQUEST_TIMEOUT,
};

use crate::Storage;

/// A dashboard over a storage, to turn into a [`Router`].
///
/// ```no_run
/// # async fn demo(storage: jobs_runtime::Storage) {
/// use jobs_runtime::dashboard::{BasicAuth, Dashboard};
///
/// let dashboard = Dashboard::new(storage)
///     .authorize(BasicAuth::new("admin", "a long secret"))
///     .router();
/// let app = axum::Router::new().nest("/jobs", dashboard);
/// # }
/// ```
#[must_use]
pub struct Dashboard {
    storage: Storage,
    access: access::Access,
    read_only: bool,
}

impl Dashboard {
    /// The dashboard of `storage`, served to loopback clients only.
    pub fn new(storage: Storage) -> Self {
        Dashboard {
            storage,
            access: access::Access::LoopbackOnly,
            read_only: false,
        }
    }

    /// Shows everything and changes nothing: no page offers an action,
    /// and every change (`POST`) is refused with `403 Forbidden`, as
    /// Hangfire's `IsReadOnlyFunc`.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Serves the requests `rule` authorizes, from any address, instead
    /// of loopback clients only. A request it refuses gets `401
    /// Unauthorized` (with the rule's `WWW-Authenticate` challenge).
    pub fn authorize(mut self, rule: impl Authorize) -> Self {
        self.access = access::Access::Authorized(Arc::new(rule));
        self
    }

    /// The dashboard's routes, relative to where it is nested.
    ///
    /// Serve it with the peer's address known
    /// (`into_make_service_with_connect_info::<SocketAddr>()`), or
    /// configure [`authorize`](Self::authorize): without either, the
    /// loopback rule cannot tell who asks and refuses every request.
    pub fn router(self) -> Router {
        let state = Arc::new(State {
            storage: self.storage,
            read_only: self.read_only,
            counts: live::LastCounts::default(),
        });
        Router::new()
            .route("/", get(overview::page))
            .route("/jobs/{state}", get(jobs::page))
            .route("/job/{id}", get(job::page))
            .route("/retries", get(jobs::retries))
            .route("/batches", get(batches::list))
            .route("/batch/{id}", get(batches::page))
            .route("/recurring", get(recurring::page))
            .route("/queues", get(queues::page))
            .route("/servers", get(servers::page))
            .route("/stats.json", get(live::stats))
            .merge(actions::routes(state.clone()))
            .with_state(state)
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(self.access),
                access::check,
            ))
            .layer(axum::middleware::map_response(not_framed))
    }
}

/// Keeps every answer out of other sites' frames (clickjacking: a page
/// that frames the dashboard under a decoy would have the operator click
/// its buttons, and such a click is a same-origin request), and tells the
/// browser not to guess content types.
async fn not_framed(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

impl Dashboard {
    /// Serves the dashboard on `address` (`"127.0.0.1:9090"`; port 0 for
    /// any free port) with the built-in listener's limits
    /// ([`HEADER_READ_TIMEOUT`], [`REQUEST_TIMEOUT`],
    /// [`MAX_CONNECTION_LIFETIME`], [`MAX_CONNECTIONS`]) until `shutdown`
    /// completes; `bound` is told the address bound first. For a program
    /// that serves only the dashboard (the `jobs dashboard` command); a
    /// server serves it with [`ServerBuilder::dashboard`](crate::ServerBuilder::dashboard).
    ///
    /// # Errors
    /// [`Error::Config`](jobs_core::Error::Config) naming the address when
    /// it cannot be bound.
    pub async fn serve(
        self,
        address: &str,
        bound: impl FnOnce(std::net::SocketAddr),
        shutdown: impl std::future::Future<Output = ()>,
    ) -> jobs_core::Result<()> {
        let listener = std::net::TcpListener::bind(address)
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|error| {
                jobs_core::Error::Config(format!(
                    "cannot serve the dashboard on {address}: {error}"
                ))
            })?;
        if let Ok(address) = listener.local_addr() {
            bound(address);
        }
        let stop = tokio_util::sync::CancellationToken::new();
        let serving = listener::serve(
            listener,
            self.router(),
            listener::Limits::default(),
            stop.clone(),
        );
        tokio::pin!(serving);
        tokio::select! {
            () = &mut serving => {}
            () = shutdown => stop.cancel(),
        }
        Ok(())
    }
}

/// The dashboard of `storage`, served to loopback clients only:
/// `Dashboard::new(storage).router()`.
pub fn router(storage: Storage) -> Router {
    Dashboard::new(storage).router()
}

/// What every page reads from.
pub(crate) struct State {
    pub storage: Storage,
    /// Whether pages offer no action and changes are refused.
    pub read_only: bool,
    /// The counts every page polls, read at most once a second.
    pub counts: live::LastCounts,
}

impl State {
    /// A button that posts the form `fields` to `action` (a path within
    /// the dashboard, HTML-escaped already), marked
    /// `data-action="{name}"`; nothing in read-only mode.
    pub fn button(&self, action: &str, name: &str, label: &str, fields: &[(&str, &str)]) -> String {
        if self.read_only {
            return String::new();
        }
        html::button(action, name, label, fields)
    }
}

/// The path the dashboard is nested at (`/jobs`; empty at the root), for
/// links: the request's original path less the part the dashboard's
/// router saw.
pub(crate) struct Base {
    /// The path escaped for HTML, to put before a page's path in a link.
    pub href: String,
    /// The path as the request gave it (percent-encoded), for `Location`.
    pub path: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let seen = parts.uri.path();
        let original = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(seen, |original| original.path());
        // Nested at `/jobs`, the dashboard's root sees `/` for `/jobs`.
        let base = match original.strip_suffix(seen) {
            Some(base) => base,
            None if seen == "/" => original,
            None => "",
        }
        .trim_end_matches('/');
        Ok(Base {
            href: html::escape(base),
            path: base.to_owned(),
        })
    }
}

/// The page shown when the storage cannot be read: the error goes to the
/// log, not to the page (it may name the database's host and user).
pub(crate) fn unavailable(error: &jobs_core::Error) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    tracing::warn!(%error, "the dashboard could not read the storage");
    let body = html::page(
        "Storage unavailable",
        "<p>The storage could not be read; the server's log says why.</p>",
    );
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        axum::response::Html(body),
    )
        .into_response()
}
