//! The PostgreSQL storage, for many servers sharing one database.
//!
//! Tables live in a schema of their own (default `jobs`, configurable), with
//! our migrations table `jobs_migrations` beside them, never the
//! application's `_sqlx_migrations`. Every statement names the schema, so an
//! application may hand over its own pool ([`PostgresStorage::from_pool`])
//! without changing its `search_path`.
//!
//! Fetching claims a batch with `FOR UPDATE SKIP LOCKED`, so servers never
//! wait on each other; enqueues `NOTIFY` the servers' `LISTEN`ing
//! connection, with polling as the fallback.

mod batches;
mod decode;
mod job_log;
mod jobs;
mod limited;
mod maintenance;
mod monitoring;
mod notifications;
mod parameters;
mod paused;
#[cfg(test)]
mod plan_tests;
mod recurring;
mod related;
mod servers;
mod statistics;

use std::future::Future;
use std::str::FromStr;

use jobs_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::ConnectOptions;
use crate::sql_error::storage_error;

pub use related::InSchema;
pub(crate) use related::enqueue_in_savepoint;

/// The schema used unless another is configured.
pub const DEFAULT_SCHEMA: &str = "jobs";

/// The name of our migrations table, inside the schema.
pub const MIGRATIONS_TABLE: &str = "jobs_migrations";

/// A PostgreSQL storage; wrap it in a [`Storage`](crate::Storage) to use it.
#[derive(Clone, Debug)]
pub struct PostgresStorage {
    pool: PgPool,
    schema: String,
    /// The `NOTIFY` channel of this schema's enqueues.
    channel: String,
    /// How long a new connection may take to open, when a pool timeout is
    /// explained by opening one.
    connect_timeout: std::time::Duration,
    /// When to look for jobs under a concurrency limit (see `limited.rs`).
    limited: std::sync::Arc<crate::limited_probe::Probe>,
}

impl PostgresStorage {
    /// Connects to `url` (`postgres://user@host/db`) with the default
    /// [`ConnectOptions`], and migrates the [`DEFAULT_SCHEMA`].
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be reached (within the
    /// connect timeout, naming the cause: "Connection refused", a wrong
    /// password, no answer) or migrated.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_options(url, DEFAULT_SCHEMA, &ConnectOptions::default()).await
    }

    /// As [`connect`](Self::connect), with the tables in `schema`.
    ///
    /// # Errors
    /// [`Error::Config`] for a schema name that is not a plain lower-case
    /// identifier; otherwise as [`connect`](Self::connect).
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self> {
        Self::connect_with_options(url, schema, &ConnectOptions::default()).await
    }

    /// As [`connect_with_schema`](Self::connect_with_schema), with the
    /// pool's size and timeouts from `options`.
    ///
    /// One connection is opened first, bounded by the connect timeout, so
    /// that a closed port or a refused login fails at once with its cause
    /// (a pool would retry until its acquire timeout and report only that
    /// it timed out); it then runs the migrations.
    ///
    /// # Errors
    /// As [`connect_with_schema`](Self::connect_with_schema).
    pub async fn connect_with_options(
        url: &str,
        schema: &str,
        options: &ConnectOptions,
    ) -> Result<Self> {
        check_schema_name(schema)?;
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| Error::storage("parsing the PostgreSQL URL", e))?;
        let mut conn = open_connection(&connect, options.connect_timeout).await?;
        let migrated = migrate(&mut conn, schema).await;
        let _ = conn.close().await;
        migrated?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(Self::new(pool, schema, options.connect_timeout))
    }

    /// Uses the application's own pool, with the tables in `schema`
    /// (created and migrated if needed; the pool's sessions are left as
    /// they were). The pool's own size and acquire timeout apply.
    ///
    /// # Errors
    /// As [`connect_with_schema`](Self::connect_with_schema).
    pub async fn from_pool(pool: PgPool, schema: &str) -> Result<Self> {
        check_schema_name(schema)?;
        let connect_timeout = ConnectOptions::default().connect_timeout;
        let mut conn = open_connection(&pool.connect_options(), connect_timeout).await?;
        let migrated = migrate(&mut conn, schema).await;
        let _ = conn.close().await;
        migrated?;
        Ok(Self::new(pool, schema, connect_timeout))
    }

    fn new(pool: PgPool, schema: &str, connect_timeout: std::time::Duration) -> Self {
        PostgresStorage {
            pool,
            schema: schema.to_owned(),
            channel: channel_of(schema),
            connect_timeout,
            limited: Default::default(),
        }
    }

    /// The pool, for enqueueing inside the application's own transactions.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema that holds the tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Awaits a statement; a failure becomes a storage error for
    /// `operation`, explained when the pool had no connection to give.
    async fn run<T>(
        &self,
        operation: &'static str,
        statement: impl Future<Output = std::result::Result<T, sqlx::Error>>,
    ) -> Result<T> {
        match statement.await {
            Ok(value) => Ok(value),
            Err(sqlx::Error::PoolTimedOut) => Err(self.explain_pool_timeout(operation).await),
            Err(error) => Err(storage_error(operation, error)),
        }
    }

    /// Why the pool gave no connection in time: the pool retries refused
    /// connections silently until its timeout, so one connection of our
    /// own is opened to find the cause.
    async fn explain_pool_timeout(&self, operation: &'static str) -> Error {
        let waited = self.pool.options().get_acquire_timeout();
        let cause = match open_connection(&self.pool.connect_options(), self.connect_timeout).await
        {
            Ok(conn) => {
                let _ = conn.close().await;
                format!(
                    "no free connection within {waited:?}: all {} connections of the pool were busy",
                    self.pool.options().get_max_connections()
                )
            }
            Err(error) => format!("no connection within {waited:?}: {error}"),
        };
        Error::transient_storage(operation, cause)
    }

    /// `update` (an `UPDATE` of jobs ending in `RETURNING id, state,
    /// state_changed_at, reason, state_data`) as one statement that records
    /// each move in the history, returns how many jobs it moved (column
    /// `moved`) and, when it moved any, wakes the listening servers on
    /// commit; the channel is bound as parameter `$channel`.
    fn moved_and_notified(&self, update: &str, channel: usize) -> AssertSqlSafe<String> {
        self.sql(&format!(
            "WITH moved AS ({update}),
                  recorded AS (
                      INSERT INTO {{s}}.jobs_job_state (job_id, state, at, reason, data)
                      SELECT id, state, state_changed_at, reason, state_data FROM moved
                  ),
                  counted AS (SELECT count(*) AS moved FROM moved)
             SELECT moved FROM counted
             LEFT JOIN LATERAL (SELECT pg_notify(${channel}, '') WHERE moved > 0) AS woken ON true"
        ))
    }

    /// A statement with `{s}` replaced by the schema.
    fn sql(&self, template: &str) -> AssertSqlSafe<String> {
        in_schema(&self.schema, template)
    }
}

/// `template` with `{s}` replaced by `schema`.
fn in_schema(schema: &str, template: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(template.replace("{s}", schema))
}

/// The `NOTIFY` channel of the enqueues of the tables in `schema`.
fn channel_of(schema: &str) -> String {
    format!("{schema}_jobs_enqueued")
}

/// Opens one connection within `timeout`; the error names the server and
/// the cause ("Connection refused", a refused login, no answer).
async fn open_connection(
    options: &PgConnectOptions,
    timeout: std::time::Duration,
) -> Result<PgConnection> {
    const OP: &str = "connecting to PostgreSQL";
    let server = format!("{}:{}", options.get_host(), options.get_port());
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(error)) => {
            let transient = crate::sql_error::is_transient(&error);
            Err(Error::storage_with(
                OP,
                format!("{server}: {error}"),
                transient,
            ))
        }
        Err(_) => Err(Error::transient_storage(
            OP,
            format!("{server}: no answer within {timeout:?}"),
        )),
    }
}

/// Schema names go into SQL text, so only plain identifiers are accepted.
fn check_schema_name(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 40;
    if plain {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "schema name `{schema}` must be a lower-case identifier of at most 40 characters: a-z, 0-9, _"
        )))
    }
}

/// Key of the advisory lock that serializes schema creation between
/// servers starting at once.
const SCHEMA_LOCK: i64 = 0x6a6f_6273; // "jobs"

/// Creates the schema and runs the embedded migrations in it, on `conn`,
/// whose `search_path` becomes the schema (the connection is closed after).
async fn migrate(conn: &mut PgConnection, schema: &str) -> Result<()> {
    const OP: &str = "migrating the PostgreSQL schema";
    let result = async {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *conn)
            .await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&mut *conn)
        .await?;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *conn)
            .await?;
        sqlx::query(AssertSqlSafe(format!("SET search_path TO {schema}")))
            .execute(&mut *conn)
            .await?;
        let mut migrator = sqlx::migrate!("migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&mut *conn).await.map_err(sqlx::Error::from)
    }
    .await;
    result.map_err(|e| storage_error(OP, e))
}

#[cfg(test)]
mod tests {
    use super::check_schema_name;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema_name("jobs").is_ok());
        assert!(check_schema_name("_t_42").is_ok());
        for bad in ["", "Jobs", "1jobs", "jobs;drop", "a\"b", "j-obs"] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }
}
