//! Storing jobs that await a parent or join a batch, for both dialects:
//! which parents and batches a call names, and, once a storage has read
//! them (locked, in the call's transaction), how each job and batch is
//! stored. The decisions are here once; each storage runs the reads and
//! writes its SQL needs.

use std::collections::{HashMap, HashSet};

use jobs_core::{
    BatchId, BatchState, EnqueueParams, Error, JobId, NewBatch, NewJob, Parent, Result, State,
    decide,
};

/// A stored parent job as the call's transaction reads it.
#[derive(Clone, Debug)]
pub(crate) struct ParentJob {
    pub state: State,
    pub result: Option<String>,
}

/// A stored batch as the call's transaction reads it.
#[derive(Clone, Debug)]
pub(crate) struct StoredBatch {
    pub state: BatchState,
    pub root: BatchId,
    /// Once finished: its members' results, as a continuation receives
    /// them (see [`MaintenanceStorage::resolve_awaiting`](jobs_core::MaintenanceStorage::resolve_awaiting)).
    pub results: Option<String>,
}

/// The parent jobs the call's continuations name, each once.
pub(crate) fn parent_jobs(params: &EnqueueParams) -> Vec<JobId> {
    let mut ids: Vec<JobId> = params
        .jobs
        .iter()
        .filter_map(|job| match job.continuation.as_ref()?.parent {
            Parent::Job(id) => Some(id),
            Parent::Batch(_) => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The stored batches the call names, each once: those its jobs and new
/// batches join, and those its continuations await; not the batches it
/// creates.
pub(crate) fn stored_batches(params: &EnqueueParams) -> Vec<BatchId> {
    let created: HashSet<&BatchId> = params.batches.iter().map(|batch| &batch.id).collect();
    let awaited = params
        .jobs
        .iter()
        .filter_map(|job| match &job.continuation.as_ref()?.parent {
            Parent::Batch(id) => Some(id),
            Parent::Job(_) => None,
        });
    let mut ids: Vec<BatchId> = joined(params)
        .chain(awaited)
        .filter(|id| !created.contains(id))
        .cloned()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The batches the call adds members to: its jobs' batches and its new
/// batches' parents.
fn joined(params: &EnqueueParams) -> impl Iterator<Item = &BatchId> {
    params
        .jobs
        .iter()
        .filter_map(|job| job.batch.as_ref())
        .chain(
            params
                .batches
                .iter()
                .filter_map(|batch| batch.parent.as_ref()),
        )
}

/// The stored batches that get new members: their version moves on, so
/// that none of them finishes over these members.
pub(crate) fn joined_stored_batches(params: &EnqueueParams) -> Vec<BatchId> {
    let created: HashSet<&BatchId> = params.batches.iter().map(|batch| &batch.id).collect();
    let mut ids: Vec<BatchId> = joined(params)
        .filter(|id| !created.contains(id))
        .cloned()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A new batch as stored: with the root of its tree.
#[derive(Clone, Debug)]
pub(crate) struct BatchRow<'a> {
    pub batch: &'a NewBatch,
    pub root: BatchId,
}

/// A new job as stored: its first state, reason and data, and its
/// parent's result when it is decided at once.
#[derive(Clone, Debug)]
pub(crate) struct JobRow<'a> {
    pub job: &'a NewJob,
    pub state: State,
    pub reason: Option<String>,
    pub data: Option<String>,
    pub parent_result: Option<String>,
}

impl JobRow<'_> {
    /// The stored form of its continuation's condition.
    pub fn continue_on(&self) -> Option<String> {
        self.job.continuation.as_ref().map(|c| c.on.stored())
    }

    /// Its parent job's id.
    pub fn parent_id(&self) -> Option<i64> {
        match self.job.continuation.as_ref()?.parent {
            Parent::Job(id) => Some(id.0),
            Parent::Batch(_) => None,
        }
    }

    /// Its parent batch's id.
    pub fn parent_batch(&self) -> Option<&str> {
        match &self.job.continuation.as_ref()?.parent {
            Parent::Batch(id) => Some(id.as_str()),
            Parent::Job(_) => None,
        }
    }

    /// Its batch's id.
    pub fn batch(&self) -> Option<&str> {
        self.job.batch.as_ref().map(BatchId::as_str)
    }
}

/// How the call's batches and jobs are stored, given the parents and
/// batches read in its transaction.
pub(crate) struct Plan<'a> {
    pub batches: Vec<BatchRow<'a>>,
    pub jobs: Vec<JobRow<'a>>,
}

/// Whether the batch `outer` is `inner` or one it is nested in, as far as
/// the call knows: `inner`'s chain of parents among the call's new
/// batches, and the root of its tree.
fn encloses(
    params: &EnqueueParams,
    roots: &HashMap<&BatchId, BatchId>,
    batches: &HashMap<BatchId, StoredBatch>,
    outer: &BatchId,
    inner: &BatchId,
) -> bool {
    let root = roots
        .get(inner)
        .or_else(|| batches.get(inner).map(|batch| &batch.root));
    if root == Some(outer) {
        return true;
    }
    let mut current = Some(inner);
    while let Some(id) = current {
        if id == outer {
            return true;
        }
        current = params
            .batches
            .iter()
            .find(|batch| &batch.id == id)
            .and_then(|batch| batch.parent.as_ref());
    }
    false
}

/// Plans the call.
///
/// # Errors
/// [`Error::JobNotFound`] for a parent job not in `parents`;
/// [`Error::BatchNotFound`] for a batch neither created by the call nor
/// in `batches`; [`Error::BatchFinished`] when a job or batch joins a
/// stored batch that is not `Started`; [`Error::Config`] when a new batch
/// names a parent created later in the call, or a batch id twice, or a
/// job awaits the batch it belongs to (or one that batch is nested in).
pub(crate) fn plan<'a>(
    params: &'a EnqueueParams,
    parents: &HashMap<JobId, ParentJob>,
    batches: &HashMap<BatchId, StoredBatch>,
) -> Result<Plan<'a>> {
    let stored = |id: &BatchId| {
        batches
            .get(id)
            .ok_or_else(|| Error::BatchNotFound(id.clone()))
    };
    for id in joined_stored_batches(params) {
        let batch = stored(&id)?;
        if batch.state != BatchState::Started {
            return Err(Error::BatchFinished {
                id,
                state: batch.state,
            });
        }
    }

    let mut roots: HashMap<&BatchId, BatchId> = HashMap::new();
    let mut rows = Vec::with_capacity(params.batches.len());
    for batch in &params.batches {
        let root = match &batch.parent {
            None => batch.id.clone(),
            Some(parent) => match roots.get(parent) {
                Some(root) => root.clone(),
                None if params.batches.iter().any(|b| &b.id == parent) => {
                    return Err(Error::Config(format!(
                        "batch {} is nested in batch {parent}, which the call creates after it: list parents first",
                        batch.id
                    )));
                }
                None => stored(parent)?.root.clone(),
            },
        };
        if roots.insert(&batch.id, root.clone()).is_some() {
            return Err(Error::Config(format!(
                "batch {} is created twice in one call",
                batch.id
            )));
        }
        rows.push(BatchRow { batch, root });
    }

    for job in &params.jobs {
        if let (Some(member_of), Some(Parent::Batch(awaited))) =
            (&job.batch, job.continuation.as_ref().map(|c| &c.parent))
            && encloses(params, &roots, batches, awaited, member_of)
        {
            return Err(Error::Config(format!(
                "a job of batch {member_of} cannot await batch {awaited}, which holds it: the batch would wait for it forever"
            )));
        }
    }

    let jobs = params
        .jobs
        .iter()
        .map(|job| {
            let Some(continuation) = &job.continuation else {
                return Ok(JobRow {
                    job,
                    state: job.schedule.state(),
                    reason: job.reason.clone(),
                    data: job.data.clone(),
                    parent_result: None,
                });
            };
            let (parent_state, result) = match &continuation.parent {
                Parent::Job(id) => {
                    let parent = parents.get(id).ok_or(Error::JobNotFound(*id))?;
                    (
                        Some(parent.state).filter(|state| state.is_final()),
                        parent.result.clone(),
                    )
                }
                Parent::Batch(id) if roots.contains_key(id) => (None, None),
                Parent::Batch(id) => {
                    let batch = stored(id)?;
                    (batch.state.as_parent_state(), batch.results.clone())
                }
            };
            let Some(parent_state) = parent_state else {
                return Ok(JobRow {
                    job,
                    state: State::Awaiting,
                    reason: job.reason.clone(),
                    data: job.data.clone(),
                    parent_result: None,
                });
            };
            let state = continuation.on.next_state(parent_state);
            Ok(JobRow {
                job,
                state,
                reason: Some(decide::awaited_reason(state).to_owned()),
                data: Some(decide::awaited_data(&continuation.parent, parent_state)),
                parent_result: result,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Plan {
        batches: rows,
        jobs,
    })
}
