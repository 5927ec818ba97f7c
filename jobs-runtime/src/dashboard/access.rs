//! Who the dashboard serves: loopback clients only by default, or the
//! requests an [`Authorize`] rule lets through.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Decides whether a request may see the dashboard, from its head (method,
/// URI, headers, extensions such as `ConnectInfo`).
///
/// Implemented by [`BasicAuth`], [`BearerToken`], and any
/// `Fn(&Parts) -> bool` closure:
///
/// ```
/// use jobs_runtime::dashboard::{Authorize, Dashboard};
///
/// /// Trusts the header an authenticating proxy in front sets.
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
/// it over TLS: the browser sends the password with every request.
pub struct BasicAuth {
    /// `user:password`, as the `Authorization` header carries it decoded.
    expected: Vec<u8>,
}

impl BasicAuth {
    /// Serves requests that give `user` and `password`.
    pub fn new(user: &str, password: &str) -> Self {
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
    /// Serves requests that carry `token`.
    pub fn new(token: &str) -> Self {
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

/// Compares without stopping at the first difference, so that the time
/// taken does not tell how much of a secret was guessed right.
fn same_bytes(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = given.len() ^ expected.len();
    for (i, byte) in expected.iter().enumerate() {
        difference |= usize::from(given.get(i).copied().unwrap_or(0) ^ byte);
    }
    difference == 0
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

/// `None` for a request from a loopback address that came through no
/// proxy; else the `403 Forbidden` that says why and what to configure.
fn loopback_refusal(parts: &Parts) -> Option<Response> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let forwarded = parts.headers.contains_key(header::FORWARDED)
        || parts.headers.contains_key("x-forwarded-for");
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

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_bytes(b"secret", b"secret"));
        assert!(!same_bytes(b"secreT", b"secret"));
        assert!(!same_bytes(b"secret2", b"secret"));
        assert!(!same_bytes(b"", b"secret"));
    }
}
