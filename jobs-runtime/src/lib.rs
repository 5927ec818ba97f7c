//! The machinery of the `jobs` framework: the [`Client`] that enqueues jobs,
//! the [`Server`] that runs them, and the SQL storages behind the
//! [`Storage`] handle (SQLite embedded, PostgreSQL for many servers; both
//! migrated on connect).
//!
//! Users normally depend on the `jobs` facade crate, which re-exports all of it.
#![warn(missing_docs)]

mod batch;
mod client;
pub mod conformance;
mod connect_options;
mod counting;
pub mod dashboard;
pub mod filters;
mod job_parameters;
mod limited_probe;
pub mod metrics;
#[cfg(test)]
mod migrations_check;
pub mod postgres;
mod readable;
mod recurring;
mod related;
pub mod server;
mod sorted_ids;
mod sql_error;
pub mod sqlite;
mod storage;
#[doc(hidden)]
pub mod testing;
mod trace_context;
mod traced;
mod transaction;
mod unique;

pub use batch::Batch;
pub use client::{Client, ClientBuilder, EnqueueOptions};
pub use connect_options::{
    ConnectOptions, DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};
pub use filters::{ClientFilter, Next, ServerFilter, StateFilter, StateTransition};
pub use recurring::RecurringOptions;
pub use server::{Server, ServerBuilder, ServerHandle};
pub use storage::Storage;
pub use transaction::{EnqueueInTransaction, enqueue_in_tx};
