//! Lists that go on past a row they cannot read.

use tracing::warn;

/// The rows of `rows` that decoded; each that did not is logged (with
/// `what` it is) and left out, so that one row written by a newer version
/// (a policy this one does not know) or damaged by hand does not stop the
/// list, and the recurring scheduler, for every other row.
pub(crate) fn readable<T>(what: &str, rows: Vec<Result<T, sqlx::Error>>) -> Vec<T> {
    rows.into_iter()
        .filter_map(|row| match row {
            Ok(value) => Some(value),
            Err(error) => {
                warn!(%error, "a stored {what} cannot be read; left out");
                None
            }
        })
        .collect()
}
