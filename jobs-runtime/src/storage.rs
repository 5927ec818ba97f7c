use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use jobs_core::{Error, Result, StorageBackend};
use tokio::sync::Notify;

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
    pub async fn connect(url: &str) -> Result<Storage> {
        if url.starts_with("sqlite:") {
            Ok(Storage::new(SqliteStorage::connect(url).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Storage::new(PostgresStorage::connect(url).await?))
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
