//! Turns a driver error into the framework's [`Error`], telling errors worth
//! trying again (the database is away, busy or restarting) from those that
//! would repeat (a refused value, a constraint, a bad statement). The
//! server's completer relies on that: it waits out the first kind and
//! records the job with a fallback reason on the second.

use jobs_core::Error;
use sqlx::error::DatabaseError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// `error`, while doing `operation`, as a storage [`Error`] with its
/// `transient` flag set from the error's kind.
pub(crate) fn storage_error(operation: &'static str, error: sqlx::Error) -> Error {
    let transient = is_transient(&error);
    Error::storage_with(operation, error, transient)
}

/// Whether repeating the call later may succeed.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
                postgres_transient(pg.code())
            } else if let Some(sqlite) = db.try_downcast_ref::<SqliteError>() {
                DatabaseError::code(sqlite).is_some_and(|code| sqlite_transient(&code))
            } else {
                false
            }
        }
        _ => false,
    }
}

/// SQLSTATE classes and codes that say "not now" rather than "never"
/// (PostgreSQL's appendix A): connection exceptions (08), transaction
/// rollbacks such as serialization failures and deadlocks (40),
/// insufficient resources (53), operator intervention such as an admin
/// shutdown (57), system errors (58), and `read_only_sql_transaction`
/// (25006: a pool still connected to a primary demoted by a failover).
/// Not `query_canceled` (57014: a statement or lock timeout) nor
/// `lock_not_available` (55P03): those concern the rows of this statement
/// (one row locked by someone else), so the batch is better split job by
/// job than tried again whole.
fn postgres_transient(sqlstate: &str) -> bool {
    if matches!(sqlstate, "57014" | "55P03") {
        return false;
    }
    matches!(sqlstate.get(..2), Some("08" | "40" | "53" | "57" | "58")) || sqlstate == "25006"
}

/// SQLite result codes (primary code in the low byte of the extended one):
/// `SQLITE_BUSY` (5), `SQLITE_LOCKED` (6), `SQLITE_IOERR` (10),
/// `SQLITE_FULL` (13: the disk may get space again), `SQLITE_PROTOCOL` (15).
fn sqlite_transient(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6 | 10 | 13 | 15))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_codes() {
        for transient in ["08006", "40001", "40P01", "53300", "57P01", "25006"] {
            assert!(postgres_transient(transient), "{transient}");
        }
        for permanent in [
            "22021", "23505", "42P01", "54000", "22P05", "57014", "55P03",
        ] {
            assert!(!postgres_transient(permanent), "{permanent}");
        }
    }

    #[test]
    fn sqlite_codes() {
        for transient in ["5", "517", "6", "262", "10", "13"] {
            assert!(sqlite_transient(transient), "{transient}");
        }
        for permanent in ["1", "18", "19", "2067", "nonsense"] {
            assert!(!sqlite_transient(permanent), "{permanent}");
        }
    }

    #[test]
    fn connection_level_errors_are_transient() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_transient(&sqlx::Error::Io(refused)));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }
}
