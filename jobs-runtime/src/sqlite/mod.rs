//! The embedded SQLite storage, the default.
//!
//! One file holds the jobs (`jobs_job`), their state history
//! (`jobs_job_state`) and our migrations table (`jobs_migrations`, never the
//! application's `_sqlx_migrations`). The file is opened in WAL mode with
//! `synchronous = FULL`, so a committed state change survives a crash of the
//! process or the machine, and with a busy timeout, so several processes may
//! share it. Writes go through one connection and take the write lock at once
//! (`BEGIN IMMEDIATE`); reads use a small pool of their own.

/// The database's clock as Unix milliseconds, UTC, in SQL: one value for
/// the whole statement that reads it (SQLite keeps `'now'` stable within a
/// statement).
macro_rules! now_ms {
    () => {
        "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
    };
}

mod batches;
mod decode;
mod job_log;
mod jobs;
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
mod writes;

use std::str::FromStr;
use std::time::Duration;

use jobs_core::{Error, Result};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::ConnectOptions;

/// Stores `params` on `conn`, inside a savepoint of the application's
/// transaction (a failure leaves the transaction usable), at this
/// process's clock (the clock every SQLite write of ours takes; see
/// `writes.rs`), `max_attempts` of 0 raised to 1 as the `Storage` handle
/// does.
pub(crate) async fn enqueue_in_savepoint(
    conn: &mut sqlx::SqliteConnection,
    mut params: jobs_core::EnqueueParams,
) -> Result<Vec<jobs_core::JobId>> {
    use sqlx::Connection as _;
    for job in &mut params.jobs {
        job.max_attempts = job.max_attempts.max(1);
    }
    let op = related::OP;
    let mut savepoint = conn
        .begin()
        .await
        .map_err(|e| crate::sql_error::storage_error(op, e))?;
    let now = chrono::Utc::now().timestamp_millis();
    let ids = related::enqueue_on(&mut savepoint, now, &params).await?;
    savepoint
        .commit()
        .await
        .map_err(|e| crate::sql_error::storage_error(op, e))?;
    Ok(ids)
}

/// How long a write waits for another process's write lock before it fails.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a server checks whether another process changed the file
/// (`PRAGMA data_version` on a connection of its own, a few microseconds),
/// so that a job enqueued by another process starts within about this.
pub const CHANGE_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// The name of our migrations table.
pub const MIGRATIONS_TABLE: &str = "jobs_migrations";

/// A SQLite storage; wrap it in a [`Storage`](crate::Storage) to use it.
#[derive(Clone, Debug)]
pub struct SqliteStorage {
    writer: SqlitePool,
    reader: SqlitePool,
    /// How to open the change-checking connection; `None` in memory, where
    /// no other process can write.
    file: Option<SqliteConnectOptions>,
    /// When to look for jobs under a concurrency limit.
    limited: std::sync::Arc<crate::limited_probe::Probe>,
}

impl SqliteStorage {
    /// Opens (creating if missing) and migrates the database at `url`:
    /// `sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`.
    ///
    /// # Errors
    /// [`Error::Storage`] when the URL does not parse, the file cannot be
    /// opened or created, or a migration fails.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::storage("parsing the SQLite URL", e))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::open(options, in_memory, &ConnectOptions::default()).await
    }

    /// As [`connect`](Self::connect), with the pool's timeouts from
    /// `options`; [`ConnectOptions::max_connections`] sets the reading
    /// connections (writes always go through one).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with_options(url: &str, options: &ConnectOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::storage("parsing the SQLite URL", e))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::open(connect, in_memory, options).await
    }

    /// Opens and migrates the database file these options describe (for an
    /// in-memory database use [`connect`](Self::connect) with
    /// `sqlite::memory:`). Our settings (WAL, `synchronous = FULL`, busy
    /// timeout, create if missing) are laid over them.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(options: SqliteConnectOptions) -> Result<Self> {
        Self::open(options, false, &ConnectOptions::default()).await
    }

    async fn open(
        options: SqliteConnectOptions,
        in_memory: bool,
        pool: &ConnectOptions,
    ) -> Result<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(DEFAULT_BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(pool.acquire_timeout)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(|e| Error::storage("opening the SQLite database", e))?;
        migrate(&writer).await?;
        // An in-memory database is read through the writing connection: a
        // second pool would see another database, or fight over table locks.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(pool.max_connections.max(1))
                .acquire_timeout(pool.acquire_timeout)
                .connect_with(options.clone().read_only(true))
                .await
                .map_err(|e| Error::storage("opening the SQLite database for reading", e))?
        };
        let file = (!in_memory).then(|| options.read_only(true));
        Ok(SqliteStorage {
            writer,
            reader,
            file,
            limited: Default::default(),
        })
    }

    /// The pool that writes (one connection). Use it to enqueue inside the
    /// application's own transactions on the same file.
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }
}

async fn migrate(pool: &SqlitePool) -> Result<()> {
    let mut migrator = sqlx::migrate!("migrations/sqlite");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
        .run(pool)
        .await
        .map_err(|e| Error::storage("migrating the SQLite database", e))
}
