//! The dashboard's own listener
//! ([`ServerBuilder::dashboard`](crate::ServerBuilder::dashboard)): plain
//! HTTP/1.1 with the limits a listener that may face other machines
//! needs, which `axum::serve` does not set:
//!
//! - a client that sends no complete request head within
//!   [`HEADER_READ_TIMEOUT`] (a slow one, or an idle kept-alive
//!   connection) is disconnected;
//! - a request whose answer is not ready within [`REQUEST_TIMEOUT`] (its
//!   body never comes, say) gets `503 Service Unavailable`;
//! - a connection is closed after [`MAX_CONNECTION_LIFETIME`]: the request
//!   in progress gets [`CLOSING_GRACE`] to finish (a client that never
//!   reads its answers cannot hold the connection open), and the browser
//!   opens a new one for its next request;
//! - at most [`MAX_CONNECTIONS`] connections are served at once: the next
//!   waits in the kernel's backlog until one closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_service::Service as _;
use tracing::{debug, info, warn};

/// How long a client has to send a request's head (its line and headers):
/// 10 seconds, counted from the connection's start or the end of its
/// previous request.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// How long a request may take, its body read and its answer made: 30
/// seconds.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection is served: 60 seconds.
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// How long a connection past its lifetime has to finish the request in
/// progress: 5 seconds.
pub const CLOSING_GRACE: Duration = Duration::from_secs(5);

/// The listener's limits; tests shorten them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub request_timeout: Duration,
    pub lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            request_timeout: REQUEST_TIMEOUT,
            lifetime: MAX_CONNECTION_LIFETIME,
        }
    }
}

/// Serves `routes` on `listener` until `stop`, each request told its peer's
/// address (`ConnectInfo<SocketAddr>`, which the loopback rule reads). At
/// `stop` the listener and every connection close at once: an idle browser
/// connection does not hold back the server's shutdown.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    routes: Router,
    limits: Limits,
    stop: CancellationToken,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            warn!(%error, "the dashboard's listener cannot be used; not serving it");
            return;
        }
    };
    if let Ok(address) = listener.local_addr() {
        info!(%address, "serving the dashboard");
    }
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = stop.cancelled() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait a little, logged.
                warn!(%error, "the dashboard could not accept a connection; trying again in 100 ms");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        let routes = routes.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let mut routes = routes.clone();
                async move {
                    let answer = routes.call(with_peer(request, peer));
                    match tokio::time::timeout(limits.request_timeout, answer).await {
                        Ok(answer) => answer,
                        Err(_) => Ok(timed_out()),
                    }
                }
            });
            let mut connection = std::pin::pin!(
                http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .serve_connection(TokioIo::new(stream), service)
            );
            let mut deadline = std::pin::pin!(tokio::time::sleep(limits.lifetime));
            let mut closing = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(error) = served {
                            debug!(%error, %peer, "a dashboard connection ended");
                        }
                        break;
                    }
                    () = deadline.as_mut() => {
                        if closing {
                            debug!(%peer, "a dashboard connection did not close in time; dropped");
                            break;
                        }
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                        deadline
                            .as_mut()
                            .reset(tokio::time::Instant::now() + CLOSING_GRACE);
                    }
                    () = stop.cancelled() => break,
                }
            }
            drop(permit);
        });
    }
}

/// The answer to a request that took longer than its timeout.
fn timed_out() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "the request took too long",
    )
        .into_response()
}

/// `request` as the router takes it, with the peer's address.
fn with_peer(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> axum::http::Request<axum::body::Body> {
    let mut request = request.map(axum::body::Body::new);
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A listener serving a router that answers the peer's address, with
    /// `limits`; its address, and the token that stops it.
    fn start(limits: Limits) -> (SocketAddr, CancellationToken) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let routes = Router::new()
            .route(
                "/",
                axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                    peer.ip().to_string()
                }),
            )
            .route(
                "/slow",
                axum::routing::post(|body: String| async move { body }),
            );
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, routes, limits, stop.clone()));
        (address, stop)
    }

    async fn get(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn requests_are_told_their_peer() {
        let (address, stop) = start(Limits::default());
        let mut stream = TcpStream::connect(address).await.unwrap();
        let answer = get(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("127.0.0.1"), "{answer}");
        stop.cancel();
    }

    #[tokio::test]
    async fn a_client_slow_to_send_its_head_is_disconnected() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let (address, stop) = start(limits);
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: loc")
            .await
            .unwrap();
        let mut answer = Vec::new();
        // The server closes the connection (with a 408 or nothing); the
        // deadline only bounds the test should it never do so.
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("the server closed the slow connection");
        assert!(read.is_ok() || !answer.is_empty(), "{read:?}");
        let answer = String::from_utf8_lossy(&answer);
        assert!(!answer.contains("200 OK"), "{answer}");
        stop.cancel();
    }

    /// Sends a kept-alive `GET /` and reads its whole answer (by its
    /// `content-length`), leaving the connection open.
    async fn get_kept_alive(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut byte = [0u8; 1];
        while !answer.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.unwrap();
            answer.push(byte[0]);
        }
        let head = String::from_utf8(answer).unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .expect("a content-length")
            .parse()
            .unwrap();
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.unwrap();
        head + &String::from_utf8(body).unwrap()
    }

    /// Whether the server closes `stream` within `deadline`.
    async fn closed_within(stream: &mut TcpStream, deadline: Duration) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(deadline, stream.read_to_end(&mut rest)).await,
            Ok(Ok(0))
        )
    }

    #[tokio::test]
    async fn an_idle_kept_alive_connection_is_closed() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let (address, stop) = start(limits);
        let mut stream = TcpStream::connect(address).await.unwrap();
        let answer = get_kept_alive(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            closed_within(&mut stream, Duration::from_secs(10)).await,
            "closed while idle"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn a_connection_is_closed_after_its_lifetime() {
        let limits = Limits {
            lifetime: Duration::from_millis(300),
            ..Limits::default()
        };
        let (address, stop) = start(limits);
        let mut stream = TcpStream::connect(address).await.unwrap();
        let answer = get_kept_alive(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // The header timeout (10 s) would not close it yet; its lifetime does.
        assert!(
            closed_within(&mut stream, Duration::from_secs(5)).await,
            "closed after its lifetime"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn a_request_past_its_timeout_is_answered_503() {
        let limits = Limits {
            request_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let (address, stop) = start(limits);
        let mut stream = TcpStream::connect(address).await.unwrap();
        // A body announced and never sent: the handler would wait for it.
        stream
            .write_all(b"POST /slow HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n")
            .await
            .unwrap();
        let mut answer = vec![0u8; 12];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut answer))
            .await
            .expect("an answer before the test's deadline")
            .unwrap();
        assert_eq!(&answer, b"HTTP/1.1 503");
        stop.cancel();
    }

    #[tokio::test]
    async fn connections_past_the_limit_wait_for_one_to_close() {
        let limits = Limits {
            max_connections: 1,
            ..Limits::default()
        };
        let (address, stop) = start(limits);
        let mut first = TcpStream::connect(address).await.unwrap();
        // The first holds the only permit, idle; the second connects (the
        // kernel's backlog) but is not served while the first is open.
        let mut second = TcpStream::connect(address).await.unwrap();
        let mut waiting = tokio::spawn(async move { get(&mut second).await });
        let early = tokio::time::timeout(Duration::from_millis(300), &mut waiting).await;
        assert!(
            early.is_err(),
            "the second is not served while the first is open"
        );
        let answer = get(&mut first).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let answer = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the second is served once the first closed")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        stop.cancel();
    }
}
