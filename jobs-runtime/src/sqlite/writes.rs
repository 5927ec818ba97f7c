//! Write transactions and the database's clock.

use jobs_core::Result;
use sqlx::{Sqlite, Transaction};

use super::SqliteStorage;
use crate::sql_error::storage_error;

impl SqliteStorage {
    /// Begins a write transaction, taking the write lock at once, and reads
    /// the database's clock inside it: every time the transaction stores
    /// is this one, taken after any wait for another process's lock, so
    /// stored times follow the order of commits across processes.
    ///
    /// SQLite has no clock of its own: its `'now'` ([`now_ms!`]) is the
    /// system clock of the process that runs the statement, and every
    /// process sharing a file runs on one host (WAL needs shared memory).
    /// So the clock is read here, in this process, after the lock is
    /// taken: the value `'now'` would give, without a round trip to
    /// SQLite's thread for every write.
    pub(super) async fn write(
        &self,
        operation: &'static str,
    ) -> Result<(Transaction<'static, Sqlite>, i64)> {
        let tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| storage_error(operation, e))?;
        Ok((tx, chrono::Utc::now().timestamp_millis()))
    }

    /// Runs one statement in its own write transaction; returns the rows
    /// it changed. `statement` gets the database's clock of the
    /// transaction (see [`write`](Self::write)) to bind.
    pub(super) async fn execute(
        &self,
        operation: &'static str,
        statement: impl FnOnce(
            i64,
        )
            -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<u64> {
        let (mut tx, now) = self.write(operation).await?;
        let changed = statement(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| storage_error(operation, e))?
            .rows_affected();
        tx.commit().await.map_err(|e| storage_error(operation, e))?;
        Ok(changed)
    }
}
