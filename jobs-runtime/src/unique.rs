//! Unique jobs at enqueue, for every storage: the key stored for each job
//! at the storage's clock, and which id each job of a call gets once the
//! insert skipped the jobs whose key another job holds.
//!
//! A storage inserts the call's jobs with `ON CONFLICT DO NOTHING` on its
//! unique index (so the index, not a read then a write, decides), returns
//! the rows it stored with their keys, and looks up the holders of the
//! keys it skipped; [`place`] then gives every job its id, in the call's
//! order. A key whose holder left its states between the insert and the
//! look-up has no holder: that job is inserted again, at most
//! [`MAX_ROUNDS`] times.

use std::collections::HashMap;

use jobs_core::{EnqueueParams, Error, NewJob, Result};

/// The most rounds of insert and look-up for one call: a key's holder
/// would have to leave its states between the two, again and again.
pub(crate) const MAX_ROUNDS: usize = 5;

/// The unique key stored for each job at the storage's clock `now_ms`
/// (Unix milliseconds): its digest, and for a key with a period `@` and
/// the number of the period `now_ms` falls in. `None` for a job that is
/// not unique.
pub(crate) fn stored_keys<'a>(
    jobs: impl IntoIterator<Item = &'a NewJob>,
    now_ms: i64,
) -> Vec<Option<String>> {
    jobs.into_iter()
        .map(|job| {
            job.unique.as_ref().map(|key| match key.period_millis() {
                Some(period) => format!("{}@{}", key.digest, now_ms.div_euclid(period)),
                None => key.digest.clone(),
            })
        })
        .collect()
}

/// Whether storing `jobs` needs the unique keys' and concurrency limits'
/// columns.
pub(crate) fn needs_control<'a>(jobs: impl IntoIterator<Item = &'a NewJob>) -> bool {
    jobs.into_iter()
        .any(|job| job.unique.is_some() || job.concurrency.is_some())
}

/// Whether any job of the call is unique.
pub(crate) fn any_unique(params: &EnqueueParams) -> bool {
    params.jobs.iter().any(|job| job.unique.is_some())
}

/// Refuses a unique job that is a continuation or joins a batch: its
/// duplicate would be a job outside the batch, or awaiting another parent.
///
/// # Errors
/// [`Error::Config`] naming the job.
pub(crate) fn refuse_related(params: &EnqueueParams) -> Result<()> {
    match params
        .jobs
        .iter()
        .find(|job| job.unique.is_some() && job.is_related())
    {
        Some(job) => Err(Error::Config(format!(
            "job `{}` is unique, so it cannot be a continuation or join a batch",
            job.name
        ))),
        None => Ok(()),
    }
}

/// The id of each job of a call, in its order: the row the insert stored
/// for it (`inserted`: `(id, stored unique key)`, sorted by id, in the
/// call's order less the jobs skipped), or for a unique job that was
/// skipped, the holder of its key (`holders`). `None` for a unique job
/// whose key no job holds any more: insert it again.
///
/// # Errors
/// When the rows stored do not match the jobs (a storage's bug).
pub(crate) fn place(
    keys: &[Option<String>],
    inserted: &[(i64, Option<String>)],
    holders: &HashMap<String, i64>,
) -> Result<Vec<Option<i64>>> {
    let mut rows = inserted.iter().peekable();
    let mut stored: HashMap<&str, i64> = HashMap::new();
    let mut ids = Vec::with_capacity(keys.len());
    for key in keys {
        let id = match key {
            Some(key) => match rows.peek() {
                Some((id, Some(row_key))) if row_key == key => {
                    rows.next();
                    stored.entry(key).or_insert(*id);
                    Some(*id)
                }
                // Skipped: an earlier job of the call, or another, holds it.
                _ => stored.get(key.as_str()).or(holders.get(key)).copied(),
            },
            None => match rows.next() {
                Some((id, None)) => Some(*id),
                _ => return Err(mismatch()),
            },
        };
        ids.push(id);
    }
    if rows.next().is_some() {
        return Err(mismatch());
    }
    Ok(ids)
}

fn mismatch() -> Error {
    Error::storage(
        "enqueueing unique jobs",
        "the rows stored do not match the jobs given",
    )
}

/// The ids of a call's jobs as rounds of insert and look-up settle them.
pub(crate) struct Settling {
    ids: Vec<Option<i64>>,
    /// Whether each job was stored (not a duplicate given its key's
    /// holder's id).
    stored: Vec<bool>,
    /// The jobs (their places in the call) still without an id.
    pending: Vec<usize>,
}

/// The ids of a call's unique jobs, in the call's order, and whether each
/// was stored (`false`: a duplicate, given its key's holder's id).
pub(crate) struct Settled {
    pub ids: Vec<jobs_core::JobId>,
    pub stored: Vec<bool>,
}

impl Settling {
    /// `jobs` jobs, none settled.
    pub(crate) fn new(jobs: usize) -> Self {
        Settling {
            ids: vec![None; jobs],
            stored: vec![false; jobs],
            pending: (0..jobs).collect(),
        }
    }

    /// The places in the call of the jobs still without an id.
    pub(crate) fn pending(&self) -> &[usize] {
        &self.pending
    }

    /// Takes the ids [`place`] gave the pending jobs (in their order),
    /// of which those of `inserted` were stored by this round; the ids of
    /// every job, in the call's order, once all have one.
    pub(crate) fn settle(
        &mut self,
        placed: Vec<Option<i64>>,
        inserted: &[(i64, Option<String>)],
    ) -> Option<Settled> {
        let mut fresh: std::collections::HashSet<i64> =
            inserted.iter().map(|(id, _)| *id).collect();
        let mut again = Vec::new();
        for (&slot, id) in self.pending.iter().zip(placed) {
            match id {
                Some(id) => {
                    self.ids[slot] = Some(id);
                    // The first job given a new row is the one stored.
                    self.stored[slot] = fresh.remove(&id);
                }
                None => again.push(slot),
            }
        }
        self.pending = again;
        self.pending.is_empty().then(|| Settled {
            ids: self
                .ids
                .iter()
                .map(|id| jobs_core::JobId(id.unwrap_or_default()))
                .collect(),
            stored: std::mem::take(&mut self.stored),
        })
    }
}

/// The keys of `keys` that the jobs placed `None` need looked up, once
/// each.
pub(crate) fn skipped_keys(
    keys: &[Option<String>],
    inserted: &[(i64, Option<String>)],
) -> Vec<String> {
    let stored: std::collections::HashSet<&str> = inserted
        .iter()
        .filter_map(|(_, key)| key.as_deref())
        .collect();
    let mut skipped: Vec<String> = keys
        .iter()
        .flatten()
        .filter(|key| !stored.contains(key.as_str()))
        .cloned()
        .collect();
    skipped.sort_unstable();
    skipped.dedup();
    skipped
}

/// The error when a call's unique jobs found neither room nor a holder in
/// [`MAX_ROUNDS`] rounds.
pub(crate) fn gave_up() -> Error {
    Error::transient_storage(
        "enqueueing unique jobs",
        format!(
            "the jobs holding their keys kept leaving their states ({MAX_ROUNDS} rounds); try again"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn stored_jobs_take_their_rows_and_skipped_ones_the_holders() {
        // [plain, a, a (same call), b (held by 7), plain]
        let keys = [None, key("a"), key("a"), key("b"), None];
        let inserted = [(10, None), (11, key("a")), (12, None)];
        let holders = HashMap::from([("b".to_owned(), 7)]);
        assert_eq!(
            place(&keys, &inserted, &holders).unwrap(),
            [Some(10), Some(11), Some(11), Some(7), Some(12)]
        );
        assert_eq!(skipped_keys(&keys, &inserted), ["b"]);
    }

    #[test]
    fn a_key_without_holder_is_left_for_another_round() {
        let keys = [key("gone"), None];
        let inserted = [(3, None)];
        assert_eq!(
            place(&keys, &inserted, &HashMap::new()).unwrap(),
            [None, Some(3)]
        );
    }

    #[test]
    fn two_jobs_of_a_key_outside_its_states_are_both_stored() {
        let keys = [key("k"), key("k")];
        let inserted = [(1, key("k")), (2, key("k"))];
        assert_eq!(
            place(&keys, &inserted, &HashMap::new()).unwrap(),
            [Some(1), Some(2)]
        );
    }

    #[test]
    fn rows_that_do_not_match_are_an_error() {
        assert!(place(&[None], &[], &HashMap::new()).is_err());
        assert!(place(&[], &[(1, None)], &HashMap::new()).is_err());
    }

    #[test]
    fn a_period_is_numbered_on_the_storage_clock() {
        let mut job = NewJob::new("n", "q", "{}", 1);
        job.unique =
            Some(jobs_core::Uniqueness::within(std::time::Duration::from_secs(60)).key("n", "k"));
        let digest = job.unique.as_ref().unwrap().digest.clone();
        let keys = stored_keys([&job], 120_000 + 59_999);
        assert_eq!(keys, [Some(format!("{digest}@2"))]);
        assert_eq!(stored_keys([&NewJob::new("n", "q", "{}", 1)], 0), [None]);
    }
}
