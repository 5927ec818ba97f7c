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

mod backend;

use std::str::FromStr;

use jobs_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The schema used unless another is configured.
pub const DEFAULT_SCHEMA: &str = "jobs";

/// Connections in the pool [`PostgresStorage::connect`] opens.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// The name of our migrations table, inside the schema.
pub const MIGRATIONS_TABLE: &str = "jobs_migrations";

/// A PostgreSQL storage; wrap it in a [`Storage`](crate::Storage) to use it.
#[derive(Clone, Debug)]
pub struct PostgresStorage {
    pool: PgPool,
    schema: String,
    /// The `NOTIFY` channel of this schema's enqueues.
    channel: String,
}

impl PostgresStorage {
    /// Connects to `url` (`postgres://user@host/db`) with a pool of
    /// [`DEFAULT_MAX_CONNECTIONS`], and migrates the [`DEFAULT_SCHEMA`].
    ///
    /// # Errors
    /// [`Error::Storage`] when the database cannot be reached or migrated.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_schema(url, DEFAULT_SCHEMA).await
    }

    /// As [`connect`](Self::connect), with the tables in `schema`.
    ///
    /// # Errors
    /// [`Error::Config`] for a schema name that is not a plain lower-case
    /// identifier; otherwise as [`connect`](Self::connect).
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::storage("parsing the PostgreSQL URL", e))?;
        let pool = PgPoolOptions::new()
            .max_connections(DEFAULT_MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| Error::storage("connecting to PostgreSQL", e))?;
        Self::from_pool(pool, schema).await
    }

    /// Uses the application's own pool, with the tables in `schema`
    /// (created and migrated if needed; the pool's sessions are left as
    /// they were).
    ///
    /// # Errors
    /// As [`connect_with_schema`](Self::connect_with_schema).
    pub async fn from_pool(pool: PgPool, schema: &str) -> Result<Self> {
        check_schema_name(schema)?;
        migrate(&pool, schema).await?;
        Ok(PostgresStorage {
            pool,
            schema: schema.to_owned(),
            channel: format!("{schema}_jobs_enqueued"),
        })
    }

    /// The pool, for enqueueing inside the application's own transactions.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema that holds the tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// `update` (an `UPDATE` of jobs ending in `RETURNING id`) as one
    /// statement that returns how many jobs it moved (column `moved`) and,
    /// when it moved any, wakes the listening servers on commit; the channel
    /// is bound as parameter `$channel`.
    fn moved_and_notified(&self, update: &str, channel: usize) -> AssertSqlSafe<String> {
        self.sql(&format!(
            "WITH moved AS ({update}),
                  counted AS (SELECT count(*) AS moved FROM moved)
             SELECT moved FROM counted
             LEFT JOIN LATERAL (SELECT pg_notify(${channel}, '') WHERE moved > 0) AS woken ON true"
        ))
    }

    /// A statement with `{s}` replaced by the schema.
    fn sql(&self, template: &str) -> AssertSqlSafe<String> {
        AssertSqlSafe(template.replace("{s}", &self.schema))
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

/// Creates the schema and runs the embedded migrations in it, on a
/// connection of its own whose `search_path` is the schema.
async fn migrate(pool: &PgPool, schema: &str) -> Result<()> {
    const OP: &str = "migrating the PostgreSQL schema";
    let mut conn = PgConnection::connect_with(&pool.connect_options())
        .await
        .map_err(|e| Error::storage(OP, e))?;
    let result = async {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut conn)
            .await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&mut conn)
        .await?;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut conn)
            .await?;
        sqlx::query(AssertSqlSafe(format!("SET search_path TO {schema}")))
            .execute(&mut conn)
            .await?;
        let mut migrator = sqlx::migrate!("migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&mut conn).await.map_err(sqlx::Error::from)
    }
    .await;
    let _ = conn.close().await;
    result.map_err(|e| Error::storage(OP, e))
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
