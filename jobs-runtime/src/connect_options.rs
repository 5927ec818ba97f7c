//! How [`Storage::connect_with`](crate::Storage::connect_with) opens a
//! storage: the connection pool's size and its timeouts.

use std::time::Duration;

/// Connections in a storage's pool unless set: a server uses about four at
/// once whatever its number of workers (fetcher, completer, lease keeper,
/// maintenance; PostgreSQL's listener has one of its own), which leaves the
/// rest for the clients of the same handle. For SQLite this is the number
/// of reading connections; writes always go through one.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// How long a call waits for a free connection of the pool before it
/// fails (with the cause, when no connection can be opened).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long opening one connection may take before it counts as failed: a
/// closed port fails at once, a host that does not answer after this.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Options of [`Storage::connect_with`](crate::Storage::connect_with).
///
/// ```
/// use std::time::Duration;
/// use jobs_runtime::ConnectOptions;
///
/// let options = ConnectOptions::new()
///     .max_connections(20)
///     .acquire_timeout(Duration::from_secs(2));
/// assert_eq!(options.max_connections, 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Connections in the pool, at least 1 ([`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: u32,
    /// Wait for a free connection ([`DEFAULT_ACQUIRE_TIMEOUT`]).
    pub acquire_timeout: Duration,
    /// Wait for one new connection to open ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl ConnectOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connections in the pool ([`DEFAULT_MAX_CONNECTIONS`]); 0 counts as 1.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long a call waits for a free connection
    /// ([`DEFAULT_ACQUIRE_TIMEOUT`]).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long opening one connection may take
    /// ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}
