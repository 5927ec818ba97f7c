//! Who the dashboard serves: loopback clients only by default, or the
//! requests an [`Authorize`] rule lets through.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Decides whether a request may see the dashboard, from its head (method,
/// URI, headers, extensions such as `ConnectInfo`).
///
/// Implemented by [`BasicAuth`], [`BearerToken`], and any
/// `Fn(&Parts) -> bool` closure:
///
/// ```
/// use jobs_runtime::dashboard::{Authorize, Dashboard};
///
/// /// Trusts the header an authenticating proxy in front sets. Only sound
/// /// when the dashboard is reachable through that proxy alone, and the
/// /// proxy drops the header when a client sends it.
/// fn behind_proxy(request: &axum::http::request::Parts) -> bool {
///     request.headers.get("x-authenticated-user").is_some()
/// }
/// # fn demo(storage: jobs_runtime::Storage) {
/// let dashboard = Dashboard::new(storage).authorize(behind_proxy).router();
/// # }
/// ```
pub trait Authorize: Send + Sync + 'static {
    /// Whether `request` is served.
    fn authorize(&self, request: &Parts) -> bool;

    /// The `WWW-Authenticate` challenge sent with a refusal, if any (the
    /// browser then asks for a user and password).
    fn challenge(&self) -> Option<HeaderValue> {
        None
    }
}

impl<F> Authorize for F
where
    F: Fn(&Parts) -> bool + Send + Sync + 'static,
{
    fn authorize(&self, request: &Parts) -> bool {
        self(request)
    }
}

/// HTTP basic authentication with one user and password (RFC 7617). Use
/// it over TLS: the browser sends the password with every request, and
/// the dashboard's own listener speaks plain HTTP, so put a
/// TLS-terminating proxy in front of it.
pub struct BasicAuth {
    /// `user:password`, as the `Authorization` header carries it decoded.
    expected: Vec<u8>,
}

impl BasicAuth {
    /// Serves requests that give `user` and `password`. Choose a long
    /// random password: refused guesses are not throttled.
    ///
    /// # Panics
    /// When `password` is empty (an unset environment variable read with
    /// `unwrap_or_default()` would otherwise open the dashboard to anyone
    /// who sends no password).
    pub fn new(user: &str, password: &str) -> Self {
        assert!(
            !password.is_empty(),
            "BasicAuth needs a password; it is empty"
        );
        BasicAuth {
            expected: format!("{user}:{password}").into_bytes(),
        }
    }
}

impl Authorize for BasicAuth {
    fn authorize(&self, request: &Parts) -> bool {
        credentials(request, "Basic")
            .and_then(base64_decode)
            .is_some_and(|given| same_bytes(&given, &self.expected))
    }

    fn challenge(&self) -> Option<HeaderValue> {
        Some(HeaderValue::from_static(
            "Basic realm=\"jobs dashboard\", charset=\"UTF-8\"",
        ))
    }
}

/// A bearer token (`Authorization: Bearer TOKEN`, RFC 6750), for
/// dashboards reached by tools or through a proxy that adds it.
pub struct BearerToken {
    token: Vec<u8>,
}

impl BearerToken {
    /// Serves requests that carry `token`. Choose a long random token:
    /// refused guesses are not throttled.
    ///
    /// # Panics
    /// When `token` is empty.
    pub fn new(token: &str) -> Self {
        assert!(!token.is_empty(), "BearerToken needs a token; it is empty");
        BearerToken {
            token: token.as_bytes().to_vec(),
        }
    }
}

impl Authorize for BearerToken {
    fn authorize(&self, request: &Parts) -> bool {
        credentials(request, "Bearer")
            .is_some_and(|given| same_bytes(given.as_bytes(), &self.token))
    }

    fn challenge(&self) -> Option<HeaderValue> {
        Some(HeaderValue::from_static("Bearer realm=\"jobs dashboard\""))
    }
}

/// The credentials of the `Authorization` header of `scheme`.
fn credentials<'a>(request: &'a Parts, scheme: &str) -> Option<&'a str> {
    let value = request.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, credentials) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| credentials.trim())
}

/// Compares the SHA-256 digests of both, every byte of them, so that the
/// time taken tells neither how much of a secret was guessed right nor
/// its length.
fn same_bytes(given: &[u8], expected: &[u8]) -> bool {
    let (given, expected) = (Sha256::digest(given), Sha256::digest(expected));
    let difference = given
        .iter()
        .zip(expected.iter())
        .fold(0u8, |difference, (a, b)| difference | (a ^ b));
    std::hint::black_box(difference) == 0
}

/// Standard base64 (RFC 4648, padding optional); `None` when malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let text = text.trim_end_matches('=').as_bytes();
    if text.len() % 4 == 1 {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut bits = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            bits |= value(c)? << (18 - 6 * i);
        }
        let decoded = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        bytes.extend_from_slice(&decoded[..chunk.len() - 1]);
    }
    Some(bytes)
}

/// How the dashboard decides.
pub(super) enum Access {
    LoopbackOnly,
    Authorized(Arc<dyn Authorize>),
}

/// The middleware that refuses what [`Access`] does not allow.
pub(super) async fn check(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let refusal = match &*access {
        Access::LoopbackOnly => loopback_refusal(&parts),
        Access::Authorized(rule) => (!rule.authorize(&parts)).then(|| {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                "not authorized to see the jobs dashboard",
            )
                .into_response();
            if let Some(challenge) = rule.challenge() {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge);
            }
            response
        }),
    };
    match refusal {
        Some(refusal) => refusal,
        None => next.run(Request::from_parts(parts, body)).await,
    }
}

/// Headers a proxy adds, whose presence means the request was relayed: a
/// proxy on the same host would otherwise make every client look local.
/// A proxy that adds none of them cannot be told from a local client:
/// anything proxied to the dashboard must configure
/// [`Dashboard::authorize`](super::Dashboard::authorize).
const PROXY_HEADERS: [&str; 8] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
    "true-client-ip",
    "cf-connecting-ip",
];

/// Whether the `Host` a browser sent names this machine's loopback: a
/// page of another site that had its name point at 127.0.0.1 (DNS
/// rebinding) sends its own name, and is refused.
fn loopback_host(parts: &Parts) -> bool {
    let Some(host) = parts
        .headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
    else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        // [::1] or [::1]:port
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `None` for a request from a loopback address, for a loopback host
/// name, that came through no proxy; else the `403 Forbidden` that says
/// why and what to configure.
fn loopback_refusal(parts: &Parts) -> Option<Response> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let forwarded = PROXY_HEADERS
        .iter()
        .any(|name| parts.headers.contains_key(*name));
    let reason = match peer {
        None => {
            "the jobs dashboard serves only loopback clients unless authorization is configured, and this request has no peer address: serve the app with `into_make_service_with_connect_info::<SocketAddr>()`, or configure `Dashboard::authorize`"
        }
        Some(_) if forwarded => {
            "the jobs dashboard serves only loopback clients unless authorization is configured, and this request came through a proxy (Forwarded / X-Forwarded-For): configure `Dashboard::authorize`"
        }
        // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
        Some(peer) if !peer.ip().to_canonical().is_loopback() => {
            "the jobs dashboard serves only loopback clients unless authorization is configured (`Dashboard::authorize`)"
        }
        Some(_) if !loopback_host(parts) => {
            "the jobs dashboard serves loopback clients only at a loopback host name (localhost, 127.0.0.1, [::1]); this request named another host: configure `Dashboard::authorize` to serve it"
        }
        Some(_) => return None,
    };
    Some((StatusCode::FORBIDDEN, reason).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_what_browsers_send() {
        assert_eq!(
            base64_decode("YWRtaW46czNjcmV0").as_deref(),
            Some(&b"admin:s3cret"[..])
        );
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("Y"), None);
        assert_eq!(base64_decode("Y!==").as_deref(), None);
    }

    fn head(host: &str) -> Parts {
        let request = axum::http::Request::builder()
            .header(header::HOST, host)
            .body(())
            .unwrap();
        request.into_parts().0
    }

    #[test]
    fn only_loopback_host_names_are_loopback() {
        for host in [
            "localhost",
            "LOCALHOST:9090",
            "127.0.0.1",
            "127.0.0.1:9090",
            "127.9.9.9",
            "[::1]",
            "[::1]:9090",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(loopback_host(&head(host)), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:9090",
            "localhost.evil.example",
            "10.0.0.1",
            "[::2]:9090",
            "",
        ] {
            assert!(!loopback_host(&head(host)), "{host}");
        }
    }

    #[test]
    #[should_panic(expected = "BasicAuth needs a password")]
    fn an_empty_password_is_refused() {
        let _ = BasicAuth::new("admin", "");
    }

    #[test]
    #[should_panic(expected = "BearerToken needs a token")]
    fn an_empty_token_is_refused() {
        let _ = BearerToken::new("");
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_bytes(b"secret", b"secret"));
        assert!(!same_bytes(b"secreT", b"secret"));
        assert!(!same_bytes(b"secret2", b"secret"));
        assert!(!same_bytes(b"", b"secret"));
    }
}
