//! Tracing end to end, on every storage, through one global subscriber
//! (a recording layer and an OpenTelemetry SDK with an in-memory
//! exporter): each attempt's `job` span and its fields, the storage calls'
//! spans, and the link from an attempt to the span that enqueued it.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use common::*;
use jobs::prelude::*;
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Instrument, Subscriber, info_span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

/// Succeeds, or fails for good.
#[job(retries = 0)]
async fn traced_work(ok: bool) -> Result<(), JobError> {
    tracing::info!("working");
    if ok {
        Ok(())
    } else {
        Err(JobError::permanent("no luck"))
    }
}

/// A span as the recording layer saw it.
#[derive(Clone, Debug, Default)]
struct SeenSpan {
    name: String,
    fields: HashMap<String, String>,
    parent: Option<u64>,
    closed: bool,
}

/// Every span of the process, by id (ids are not reused while the map
/// holds them: the layer keeps closed spans too, under the id they had).
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<(u64, SeenSpan)>>>);

impl Spans {
    fn all(&self) -> Vec<(u64, SeenSpan)> {
        self.0.lock().unwrap().clone()
    }

    /// The open or closed span `id` last named.
    fn last_mut<R>(&self, id: u64, f: impl FnOnce(&mut SeenSpan) -> R) -> Option<R> {
        let mut spans = self.0.lock().unwrap();
        spans
            .iter_mut()
            .rev()
            .find(|(seen, span)| *seen == id && !span.closed)
            .map(|(_, span)| f(span))
    }
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut span = SeenSpan {
            name: attrs.metadata().name().to_owned(),
            parent: ctx
                .span(id)
                .and_then(|span| span.parent())
                .map(|p| p.id().into_u64()),
            ..SeenSpan::default()
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.0.lock().unwrap().push((id.into_u64(), span));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        self.last_mut(id.into_u64(), |span| {
            values.record(&mut Fields(&mut span.fields))
        });
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        self.last_mut(id.into_u64(), |span| span.closed = true);
    }
}

/// The process's subscriber, installed once for every test of this file.
struct Tracing {
    spans: Spans,
    exporter: InMemorySpanExporter,
}

static TRACING: LazyLock<Tracing> = LazyLock::new(|| {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let spans = Spans::default();
    let subscriber = Registry::default()
        .with(spans.clone())
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("jobs-test")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    // Kept for the process's life: dropping it would shut the SDK down.
    std::mem::forget(provider);
    Tracing { spans, exporter }
});

/// The recorded `job` span of the attempt of job `id` on `queue` (each
/// test's storage numbers its jobs from 1), once it closed.
async fn attempt_span(id: JobId, queue: &str) -> SeenSpan {
    let wanted = id.to_string();
    let mut found = None;
    wait_until(&format!("the span of job {id}'s attempt to close"), || {
        found = TRACING
            .spans
            .all()
            .into_iter()
            .map(|(_, span)| span)
            .find(|span| {
                span.name == "job"
                    && span.closed
                    && span.fields.get("job.id") == Some(&wanted)
                    && span.fields.get("job.queue").map(String::as_str) == Some(queue)
            });
        std::future::ready(found.is_some())
    })
    .await;
    found.unwrap()
}

/// The OpenTelemetry span of the attempt of job `id` on `queue`, once
/// exported.
async fn exported_attempt(id: JobId, queue: &str) -> SpanData {
    let wanted = id.to_string();
    let name = format!("process {queue}");
    let mut found = None;
    wait_until(&format!("the exported span of job {id}'s attempt"), || {
        found = TRACING
            .exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .find(|span| {
                span.name == name
                    && span.attributes.iter().any(|kv| {
                        kv.key.as_str() == "job.id" && kv.value.as_str() == wanted.as_str()
                    })
            });
        std::future::ready(found.is_some())
    })
    .await;
    found.unwrap()
}

async fn attempt_spans_carry_their_fields(fx: &Fixture) {
    LazyLock::force(&TRACING);
    let queue = format!("traced-{}", fx.storage_kind());
    let client = Client::new(fx.storage.clone());
    let on_queue = || EnqueueOptions::new().queue(queue.clone());
    let ok = traced_work::enqueue_with(&client, on_queue(), true)
        .await
        .unwrap();
    let failing = traced_work::enqueue_with(&client, on_queue(), false)
        .await
        .unwrap();
    let server = fast_server(&fx.storage)
        .queues([queue.as_str()])
        .start()
        .unwrap();
    wait_for_state(&fx.storage, ok, State::Succeeded).await;
    wait_for_state(&fx.storage, failing, State::Failed).await;

    let span = attempt_span(ok.into(), &queue).await;
    let field = |name: &str| span.fields.get(name).map(String::as_str);
    assert_eq!(field("job.name"), Some("traced_work"));
    assert_eq!(field("job.attempt"), Some("1"));
    assert_eq!(field("job.queue"), Some(queue.as_str()));
    assert_eq!(field("job.outcome"), Some("succeeded"));
    let duration: f64 = field("job.duration_ms").unwrap().parse().unwrap();
    assert!(duration >= 0.0, "{duration}");
    assert_eq!(field("messaging.system"), Some("jobs"));
    assert_eq!(field("messaging.operation.type"), Some("process"));
    assert_eq!(field("messaging.destination.name"), Some(queue.as_str()));
    assert_eq!(field("messaging.message.id"), Some(ok.to_string().as_str()));
    assert_eq!(field("otel.kind"), Some("consumer"));
    assert_eq!(
        field("otel.name"),
        Some(format!("process {queue}").as_str())
    );
    assert_eq!(field("otel.status_code"), None, "a success is no error");

    let failed = attempt_span(failing.into(), &queue).await;
    assert_eq!(failed.fields["job.outcome"], "failed");
    assert_eq!(failed.fields["otel.status_code"], "ERROR");

    // The storage calls have spans of their own, the fetch and the finish
    // of these attempts among them.
    let names: Vec<String> = TRACING
        .spans
        .all()
        .into_iter()
        .map(|(_, s)| s.name)
        .collect();
    for call in ["storage.enqueue", "storage.fetch", "storage.finish"] {
        assert!(names.iter().any(|name| name == call), "no {call} span");
    }
    server.shutdown().await;
}

async fn an_attempt_links_to_the_span_that_enqueued_it(fx: &Fixture) {
    LazyLock::force(&TRACING);
    let queue = format!("linked-{}", fx.storage_kind());
    let client = Client::new(fx.storage.clone());
    // The application's span, as a web framework's request span would be.
    let request = info_span!("POST /signup");
    let id = traced_work::enqueue_with(&client, EnqueueOptions::new().queue(queue.clone()), true)
        .instrument(request.clone())
        .await
        .unwrap();
    let enqueued_in: SpanContext = request.context().span().span_context().clone();
    assert!(enqueued_in.is_valid());
    drop(request);

    // The storage call is a child of the request's span.
    let spans = TRACING.spans.all();
    let request_id = spans
        .iter()
        .rev()
        .find(|(_, span)| span.name == "POST /signup")
        .map(|(id, _)| *id);
    assert!(
        spans
            .iter()
            .any(|(_, span)| span.name == "storage.enqueue" && span.parent == request_id),
        "storage.enqueue runs in the request's span"
    );

    let server = fast_server(&fx.storage)
        .queues([queue.as_str()])
        .start()
        .unwrap();
    wait_for_state(&fx.storage, id, State::Succeeded).await;
    let attempt = exported_attempt(id.into(), &queue).await;
    assert_eq!(attempt.name, format!("process {queue}"));
    let links: Vec<&SpanContext> = attempt
        .links
        .iter()
        .map(|link| &link.span_context)
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].trace_id(), enqueued_in.trace_id());
    assert_eq!(links[0].span_id(), enqueued_in.span_id());
    assert!(links[0].is_remote(), "read back from the storage");
    assert_ne!(
        attempt.span_context.trace_id(),
        enqueued_in.trace_id(),
        "the attempt is a trace of its own, linked"
    );
    server.shutdown().await;
}

on_every_storage!(
    attempt_spans_carry_their_fields,
    an_attempt_links_to_the_span_that_enqueued_it
);
