//! Filters: code of the application's that runs around the life of every
//! job, as Hangfire's job filters and Sidekiq's middleware.
//!
//! | filter | where it runs | registered with |
//! | --- | --- | --- |
//! | [`ClientFilter`] | before a job is stored: add parameters, change its options, or reject it | [`ClientBuilder::filter`](crate::ClientBuilder::filter) |
//! | [`ServerFilter`] | around each attempt, on the worker: a span, a timer, a tenant's context, a lock | [`ServerBuilder::filter`](crate::ServerBuilder::filter) |
//! | [`StateFilter`] | after a server changed a job's state: alert when one became `Failed`, count successes | [`ServerBuilder::state_filter`](crate::ServerBuilder::state_filter) |
//!
//! Filters run in the order they were registered: the first client filter
//! sees a job first; the first server filter is the outermost, so it sees
//! the attempt start first and end last. Every attempt runs inside its
//! tracing span, `job` (see [`metrics`](crate::metrics) and the guide's
//! observability chapter): the filters and the job log inside it.

mod client;
mod server;
mod state;

pub use client::ClientFilter;
pub(crate) use server::around;
pub use server::{Next, ServerFilter};
pub use state::{STATE_BACKLOG, StateFilter, StateTransition};
pub(crate) use state::{StateFilters, StateReceiver, StateTeller, run as tell_state_filters};
