//! Unique jobs and concurrency limits: what a job declares
//! (`#[job(unique)]`, `#[job(concurrency = 2)]`) and what a storage is
//! given for one job ([`UniqueKey`], [`ConcurrencyKey`]).
//!
//! Keys are SHA-256 digests of the job's name and its key text (its
//! arguments as canonical JSON, or the arguments `by` names), so a key
//! of any length fits an index, and two different keys never meet.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::State;

/// The states in which a unique job blocks another of its key when no
/// period is given: while it waits or runs (a finished job does not block).
pub const UNIQUE_WHILE_UNFINISHED: &[State] = &[
    State::Scheduled,
    State::Enqueued,
    State::Processing,
    State::Awaiting,
];

/// The states in which a unique job blocks another of its key within its
/// period: while it waits or runs, and once it succeeded (at most one
/// success per period; a failed or deleted one may be enqueued again).
pub const UNIQUE_WITHIN_PERIOD: &[State] = &[
    State::Scheduled,
    State::Enqueued,
    State::Processing,
    State::Awaiting,
    State::Succeeded,
];

/// How a job is unique (`#[job(unique)]`, [`Job::UNIQUE`](crate::Job::UNIQUE)):
/// at most one job of its key in `states`, optionally within a period.
/// An enqueue that would make a second gets the existing job's id
/// instead (Sidekiq Enterprise's unique jobs, River's `UniqueOpts`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Uniqueness {
    /// The states a job of the key blocks another in.
    pub states: &'static [State],
    /// When set, the key holds within periods of this length (counted
    /// from the Unix epoch on the storage's clock: hourly periods start
    /// on the hour), so that another job of the key may come in the
    /// next period.
    pub within: Option<Duration>,
}

impl Uniqueness {
    /// Unique while a job of the key waits or runs
    /// ([`UNIQUE_WHILE_UNFINISHED`]).
    pub const fn new() -> Self {
        Uniqueness {
            states: UNIQUE_WHILE_UNFINISHED,
            within: None,
        }
    }

    /// Unique within periods of `period`, and by default in
    /// [`UNIQUE_WITHIN_PERIOD`] (a success counts).
    pub const fn within(period: Duration) -> Self {
        Uniqueness {
            states: UNIQUE_WITHIN_PERIOD,
            within: Some(period),
        }
    }

    /// This uniqueness in other states, which must include the unfinished
    /// ones ([`check_states`](Self::check_states)); the enqueue of a job
    /// whose states do not fails with `Error::Config`.
    pub const fn in_states(self, states: &'static [State]) -> Self {
        Uniqueness {
            states,
            within: self.within,
        }
    }

    /// Checks the states a key holds in: they must include every state of
    /// [`UNIQUE_WHILE_UNFINISHED`] (Scheduled, Enqueued, Processing,
    /// Awaiting), and may add final ones (Succeeded, Failed, Deleted).
    /// A job moves between the unfinished states on its own (a retry, a
    /// promotion, a rescue); were one of them left out, such a move into
    /// the key's states while another job holds the key could not be
    /// stored, and the server would stall on it.
    ///
    /// # Errors
    /// The text of the problem, naming the states missing.
    pub fn check_states(states: &[State]) -> Result<(), String> {
        let missing: Vec<&str> = UNIQUE_WHILE_UNFINISHED
            .iter()
            .filter(|state| !states.contains(state))
            .map(|state| state.as_str())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "a unique job's states must include Scheduled, Enqueued, Processing and Awaiting \
             (a job moves between them on its own, and a move into its key's states while \
             another job holds the key could not be stored); missing: {}; add Succeeded, \
             Failed or Deleted to keep the key after a job finished",
            missing.join(", ")
        ))
    }

    /// The key a storage stores for the job `name` with key text `key`.
    pub fn key(&self, name: &str, key: &str) -> UniqueKey {
        UniqueKey {
            digest: digest(name, key),
            states: self.states.to_vec(),
            within: self.within,
        }
    }
}

impl Default for Uniqueness {
    fn default() -> Self {
        Self::new()
    }
}

/// A unique job's key, as [`NewJob::unique`](crate::NewJob::unique)
/// carries it to the storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueKey {
    /// The SHA-256 digest of the job's name and key text, 64 hex digits.
    pub digest: String,
    /// The states a job of the key blocks another in.
    pub states: Vec<State>,
    /// The period, if any: the storage appends the number of the period
    /// its clock is in to the digest it stores.
    pub within: Option<Duration>,
}

impl UniqueKey {
    /// The states as stored: `",Scheduled,Enqueued,"`, each name between
    /// commas, so that a storage's index tests a state with one substring
    /// search.
    pub fn stored_states(&self) -> String {
        let mut stored = String::from(",");
        for state in &self.states {
            stored.push_str(state.as_str());
            stored.push(',');
        }
        stored
    }

    /// The period in whole milliseconds (at least 1), if any.
    pub fn period_millis(&self) -> Option<i64> {
        self.within
            .map(|period| i64::try_from(period.as_millis()).unwrap_or(i64::MAX).max(1))
    }
}

/// A concurrency limit (`#[job(concurrency = 2)]`,
/// [`Job::CONCURRENCY`](crate::Job::CONCURRENCY)): at most `limit` jobs of
/// one key run at once across every server; a job over the limit stays
/// `Enqueued`, and the worker takes other work.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Concurrency {
    /// Jobs of one key running at once, at least 1.
    pub limit: u32,
    /// Whether the key is the job's name alone (`false`), or the name and
    /// the arguments that `by` names (`true`: a limit per customer).
    pub per_key: bool,
}

impl Concurrency {
    /// At most `limit` jobs of this name at once.
    pub const fn per_name(limit: u32) -> Self {
        Concurrency {
            limit,
            per_key: false,
        }
    }

    /// At most `limit` jobs of this name and key at once.
    pub const fn per_key(limit: u32) -> Self {
        Concurrency {
            limit,
            per_key: true,
        }
    }

    /// The key a storage stores for the job `name` with key text `key`
    /// (used only when [`per_key`](Self::per_key)).
    pub fn key(&self, name: &str, key: Option<&str>) -> ConcurrencyKey {
        ConcurrencyKey {
            key: match key {
                Some(key) if self.per_key => format!("{name}#{}", digest(name, key)),
                _ => name.to_owned(),
            },
            limit: self.limit.max(1),
        }
    }
}

/// A limited job's key, as [`NewJob::concurrency`](crate::NewJob::concurrency)
/// carries it to the storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConcurrencyKey {
    /// The job's name, or `name#digest` for a limit per key.
    pub key: String,
    /// Jobs of the key running at once, at least 1.
    pub limit: u32,
}

/// The SHA-256 digest of `name` and `key`, hex.
fn digest(name: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(key.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `json` with the keys of every object sorted, so that two documents
/// equal as values give one key whatever their field order (a `HashMap`
/// argument). A text that is not JSON is kept as it is.
pub fn canonical_json(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .map(|value| sorted(value).to_string())
        .unwrap_or_else(|_| json.to_owned())
}

fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, sorted(value)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_digests_of_name_and_key() {
        let unique = Uniqueness::new();
        let a = unique.key("send", r#"{"to":1}"#);
        assert_eq!(a.digest.len(), 64);
        assert_eq!(a, unique.key("send", r#"{"to":1}"#));
        assert_ne!(a.digest, unique.key("send", r#"{"to":2}"#).digest);
        assert_ne!(a.digest, unique.key("mail", r#"{"to":1}"#).digest);
        // The name and key are separated: ("ab", "c") is not ("a", "bc").
        assert_ne!(unique.key("ab", "c").digest, unique.key("a", "bc").digest);
        assert_eq!(
            a.stored_states(),
            ",Scheduled,Enqueued,Processing,Awaiting,"
        );
        assert_eq!(a.period_millis(), None);
        let hourly = Uniqueness::within(Duration::from_secs(3600)).key("send", "");
        assert_eq!(hourly.period_millis(), Some(3_600_000));
        assert!(hourly.states.contains(&State::Succeeded));
    }

    #[test]
    fn states_must_include_the_unfinished_ones() {
        assert!(Uniqueness::check_states(UNIQUE_WHILE_UNFINISHED).is_ok());
        assert!(Uniqueness::check_states(UNIQUE_WITHIN_PERIOD).is_ok());
        let error = Uniqueness::check_states(&[State::Enqueued, State::Succeeded]).unwrap_err();
        assert!(
            error.contains("missing: Scheduled, Processing, Awaiting"),
            "{error}"
        );
    }

    #[test]
    fn concurrency_keys_are_the_name_or_name_and_digest() {
        assert_eq!(
            Concurrency::per_name(2).key("sync", Some("ignored")),
            ConcurrencyKey {
                key: "sync".into(),
                limit: 2
            }
        );
        let per_customer = Concurrency::per_key(1).key("sync", Some("[42]"));
        assert!(per_customer.key.starts_with("sync#"));
        assert_ne!(
            per_customer,
            Concurrency::per_key(1).key("sync", Some("[43]"))
        );
        assert_eq!(Concurrency::per_name(0).key("x", None).limit, 1);
    }

    #[test]
    fn canonical_json_sorts_object_keys() {
        assert_eq!(
            canonical_json(r#"{"b":1,"a":{"d":[{"z":1,"y":2}],"c":null}}"#),
            r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#
        );
        assert_eq!(canonical_json("not json"), "not json");
    }
}
