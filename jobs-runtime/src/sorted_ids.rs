//! Ids as every storage call returns them: sorted, so that callers and
//! tests compare them without caring in which order the database answered.

use jobs_core::JobId;

/// `ids` sorted, as [`JobId`]s.
pub(crate) fn sorted_ids(mut ids: Vec<i64>) -> Vec<JobId> {
    ids.sort_unstable();
    ids.into_iter().map(JobId).collect()
}
