//! The trace context a job carries from its enqueue to each attempt: a
//! W3C `traceparent` (`00-{trace id}-{span id}-{flags}`, the Trace Context
//! recommendation's format), stored with the job
//! ([`NewJob::trace_context`](jobs_core::NewJob::trace_context)). With the
//! feature `opentelemetry`, the client takes it from the current span's
//! OpenTelemetry context (`tracing-opentelemetry`), and each attempt's
//! span links to it: a trace shows which request enqueued the job, and
//! the attempts, however late they run, are traces of their own. Without
//! the feature, nothing is taken and nothing is linked.

use tracing::Span;

/// The `traceparent` of the current span, when it belongs to a sampled or
/// unsampled OpenTelemetry trace; `None` without the feature `opentelemetry`,
/// outside any span, or when no OpenTelemetry layer is installed.
#[cfg(feature = "opentelemetry")]
pub(crate) fn current() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let context = Span::current().context();
    let span = context.span();
    let span = span.span_context();
    span.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span.trace_id(),
            span.span_id(),
            span.trace_flags().to_u8()
        )
    })
}

/// Without the feature `opentelemetry`: no trace context.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn current() -> Option<String> {
    None
}

/// Links `span` (an attempt's) to the span `traceparent` names. A
/// malformed `traceparent` (the column is the storage's, and may hold
/// anything) is ignored.
#[cfg(feature = "opentelemetry")]
pub(crate) fn link(span: &Span, traceparent: Option<&str>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    if let Some(context) = traceparent.and_then(parse) {
        span.add_link(context);
    }
}

/// Without the feature `opentelemetry`: nothing to link.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn link(_span: &Span, _traceparent: Option<&str>) {}

/// The span context a `traceparent` of version `00` names, as a remote
/// one; `None` when it is not one (W3C Trace Context, section 3.2: lower
/// case hex, trace and span ids not all zeros).
#[cfg(feature = "opentelemetry")]
fn parse(traceparent: &str) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let lower_hex = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if parts.next().is_some()
        || version != "00"
        || !lower_hex(trace, 32)
        || !lower_hex(span, 16)
        || !lower_hex(flags, 2)
    {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

#[cfg(all(test, feature = "opentelemetry"))]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_names_a_remote_span() {
        let context = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_sampled());
        assert!(context.is_remote());
    }

    #[test]
    fn anything_else_is_ignored() {
        for bad in [
            "",
            "garbage",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-00",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
