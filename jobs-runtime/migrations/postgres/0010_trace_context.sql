-- The trace context a job was enqueued in, as a W3C `traceparent`
-- (`00-{trace id}-{span id}-{flags}`): each attempt's span is linked to
-- it. NULL when the client traced nothing (the feature `opentelemetry`
-- off, or no span). Same column as the SQLite migration of the same number.
ALTER TABLE jobs_job ADD COLUMN trace_context TEXT;
