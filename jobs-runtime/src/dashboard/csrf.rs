//! Cross-site request forgery: a state-changing request (any method but
//! `GET`, `HEAD` and `OPTIONS`) is served only when the browser says it
//! comes from the dashboard's own origin, as Go's
//! `net/http.CrossOriginProtection` decides:
//!
//! 1. `Sec-Fetch-Site` (sent by every current browser) must be
//!    `same-origin`, or `none` (the user's own navigation);
//! 2. without it, `Origin` must name the host the request was sent to
//!    (`Host`), whatever the scheme (a TLS-terminating proxy may stand
//!    between);
//! 3. a request with neither header comes from no browser (a script, a
//!    command line tool): it cannot be forged by a page, and is served.
//!
//! A forged request is one a page of another site makes the user's
//! browser send, with the user's credentials (basic auth, a cookie) or
//! from the user's own loopback address; the browser always marks it with
//! one of the two headers, which the page cannot change.

use axum::http::request::Parts;
use axum::http::{Method, header};

/// Why a request is refused as cross-origin; `None` when it is served.
pub(super) fn refusal(request: &Parts) -> Option<&'static str> {
    if matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let headers = &request.headers;
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => None,
            _ => Some("the request was sent from another site (Sec-Fetch-Site)"),
        };
    }
    // Neither header: no browser sent it, and it is served (`None`).
    let origin = headers.get(header::ORIGIN)?;
    let host = headers.get(header::HOST).map(|host| host.as_bytes());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, host)| host.as_bytes());
    match (origin_host, host) {
        (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host) => None,
        _ => Some("the request was sent from another origin (Origin)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn post(headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::post("/job/1/requeue").header(header::HOST, "localhost:9090");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn reads_are_never_refused() {
        let mut head = post(&[("sec-fetch-site", "cross-site")]);
        head.method = Method::GET;
        assert_eq!(refusal(&head), None);
    }

    #[test]
    fn fetch_metadata_decides_first() {
        assert_eq!(refusal(&post(&[("sec-fetch-site", "same-origin")])), None);
        assert_eq!(refusal(&post(&[("sec-fetch-site", "none")])), None);
        for site in ["cross-site", "same-site"] {
            let forged = post(&[
                ("sec-fetch-site", site),
                ("origin", "http://localhost:9090"),
            ]);
            assert!(refusal(&forged).is_some(), "{site}");
        }
    }

    #[test]
    fn without_fetch_metadata_the_origin_must_be_the_host() {
        assert_eq!(refusal(&post(&[("origin", "http://localhost:9090")])), None);
        assert_eq!(
            refusal(&post(&[("origin", "https://LOCALHOST:9090")])),
            None
        );
        for origin in [
            "http://evil.example",
            "http://localhost:9091",
            "http://localhost",
            "null",
        ] {
            assert!(refusal(&post(&[("origin", origin)])).is_some(), "{origin}");
        }
    }

    #[test]
    fn a_request_from_no_browser_is_served() {
        assert_eq!(refusal(&post(&[])), None);
    }
}
