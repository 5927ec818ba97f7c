use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use jobs_core::{Error, Result, StorageBackend};
use tokio::sync::Notify;

use crate::ConnectOptions;
use crate::postgres::PostgresStorage;
use crate::sqlite::SqliteStorage;
use crate::traced::Traced;

/// A cheap-to-clone handle to the storage that clients and servers share.
///
/// Open one with [`Storage::connect`]; clone it freely (an `Arc` inside).
/// It dereferences to the [`StorageBackend`] trait for direct reads such as
/// [`job`](StorageBackend::job) and [`history`](StorageBackend::history).
#[derive(Clone)]
pub struct Storage {
    backend: Arc<dyn StorageBackend>,
    wakeup: Arc<Notify>,
}

impl Storage {
    /// Opens the storage a URL names, creating and migrating it as needed.
    ///
    /// - `sqlite://PATH` (or `sqlite:PATH`): a SQLite file, created if
    ///   missing, in WAL mode; see [`SqliteStorage`].
    /// - `sqlite::memory:`: a private in-memory database, for tests.
    /// - `postgres://USER@HOST/DB` (or `postgresql://`): PostgreSQL, tables in
    ///   the schema `jobs`; see [`PostgresStorage`].
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for another scheme; [`Error::Storage`] when
    /// the database cannot be opened or migrated.
    /// Uses the default [`ConnectOptions`]: a pool of
    /// [`DEFAULT_MAX_CONNECTIONS`](crate::DEFAULT_MAX_CONNECTIONS), enough
    /// for a server of any number of workers and its clients.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for another scheme; [`Error::Storage`] when
    /// the database cannot be opened or migrated. A PostgreSQL server that
    /// refuses or does not answer fails within the connect timeout
    /// ([`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT)), and
    /// the error names the cause.
    pub async fn connect(url: &str) -> Result<Storage> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// As [`connect`](Self::connect), with the pool's size and timeouts
    /// from `options`.
    ///
    /// ```no_run
    /// # async fn demo() -> jobs_core::Result<()> {
    /// use jobs_runtime::{ConnectOptions, Storage};
    /// let options = ConnectOptions::new().max_connections(20);
    /// let storage = Storage::connect_with("postgres://postgres@localhost/app", options).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Storage> {
        if url.starts_with("sqlite:") {
            Ok(Storage::new(
                SqliteStorage::connect_with_options(url, &options).await?,
            ))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let postgres = PostgresStorage::connect_with_options(
                url,
                crate::postgres::DEFAULT_SCHEMA,
                &options,
            )
            .await?;
            Ok(Storage::new(postgres))
        } else {
            Err(Error::UnsupportedUrl(url.to_owned()))
        }
    }

    /// A handle over any backend. Every call through it is traced (a
    /// `debug` span per call, named `storage.<method>`).
    pub fn new(backend: impl StorageBackend) -> Storage {
        Storage {
            backend: Arc::new(Traced::new(backend)),
            wakeup: Arc::new(Notify::new()),
        }
    }

    /// The backend behind the handle.
    pub fn backend(&self) -> &dyn StorageBackend {
        &*self.backend
    }

    /// Wakes the idle servers of this process that share this handle (or a
    /// clone of it): called after jobs were enqueued or promoted.
    pub(crate) fn wake_servers(&self) {
        self.wakeup.notify_waiters();
    }

    /// The notification [`wake_servers`](Self::wake_servers) sends.
    pub(crate) fn wakeup(&self) -> &Notify {
        &self.wakeup
    }
}

impl Deref for Storage {
    type Target = dyn StorageBackend;

    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").finish_non_exhaustive()
    }
}
