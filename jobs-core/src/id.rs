use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The identifier of a stored job.
///
/// Assigned by the storage when the job is enqueued; positive, increasing in
/// enqueue order within one storage, never reused. Displayed as its number
/// (`JobId(42)` prints `42`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl JobId {
    /// The raw number as stored in the database.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<i64> for JobId {
    fn from(id: i64) -> Self {
        JobId(id)
    }
}

impl FromStr for JobId {
    type Err = std::num::ParseIntError;

    /// Parses the decimal form that [`Display`](fmt::Display) prints.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(JobId)
    }
}

/// The id of a job whose result is a `T`: what the typed helpers of a
/// `#[job]` returning `Result<T, E>` give back, so that a continuation
/// taking the parent's result (`#[parent] value: T`) can only be attached
/// to a job that returns a `T`. Converts into (and compares with) a
/// [`JobId`] wherever one is expected.
pub struct TypedJobId<T> {
    id: JobId,
    result: PhantomData<fn() -> T>,
}

impl<T> TypedJobId<T> {
    /// Asserts that job `id` returns a `T`. Not checked here: a
    /// continuation whose parent's stored result does not decode as its
    /// parameter fails when it runs, saying so.
    pub const fn new(id: JobId) -> Self {
        TypedJobId {
            id,
            result: PhantomData,
        }
    }

    /// The untyped id.
    pub const fn id(self) -> JobId {
        self.id
    }
}

impl<T> Clone for TypedJobId<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TypedJobId<T> {}

impl<T> PartialEq for TypedJobId<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> Eq for TypedJobId<T> {}

impl<T> PartialEq<JobId> for TypedJobId<T> {
    fn eq(&self, other: &JobId) -> bool {
        self.id == *other
    }
}

impl<T> PartialEq<TypedJobId<T>> for JobId {
    fn eq(&self, other: &TypedJobId<T>) -> bool {
        *self == other.id
    }
}

impl<T> std::hash::Hash for TypedJobId<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl<T> fmt::Debug for TypedJobId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.id, f)
    }
}

impl<T> fmt::Display for TypedJobId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.id, f)
    }
}

impl<T> From<TypedJobId<T>> for JobId {
    fn from(id: TypedJobId<T>) -> Self {
        id.id
    }
}

/// What a continuation taking its parent's result as a `T`
/// (`#[parent] value: T`) may be attached to: a job returning a `T`, or,
/// for `#[parent] value: Option<T>` (a continuation that also runs when
/// the parent did not succeed), a job returning a `T`.
#[diagnostic::on_unimplemented(
    message = "this continuation takes its parent's result as `{T}`, but the parent job returns another type",
    label = "the parent's result is not a `{T}`",
    note = "a continuation's `#[parent]` parameter must have the type the parent job returns (`Result<T, E>` gives `T`), or `Option` of it"
)]
pub trait ParentOf<T> {
    /// The parent's id.
    fn parent_id(&self) -> JobId;
}

impl<T> ParentOf<T> for TypedJobId<T> {
    fn parent_id(&self) -> JobId {
        self.id
    }
}

impl<T> ParentOf<Option<T>> for TypedJobId<T> {
    fn parent_id(&self) -> JobId {
        self.id
    }
}

/// The identifier of a batch: a UUID (version 4) chosen by the client that
/// creates it, so that a batch and its jobs are stored in one statement.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchId(pub String);

impl BatchId {
    /// A new random id.
    pub fn new() -> Self {
        BatchId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for BatchId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
