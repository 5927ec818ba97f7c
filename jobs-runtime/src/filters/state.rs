//! State filters: told of each state change after it was stored.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use std::collections::HashSet;

use jobs_core::{JobId, JobOutcome, State, storable_text};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

/// A job's move from one state to another, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateTransition {
    /// The job.
    pub job: JobId,
    /// Its name ([`Job::NAME`](jobs_core::Job::NAME)).
    pub name: String,
    /// The state it left: always `Some` for now (creations are not told;
    /// `None` is kept for them).
    pub from: Option<State>,
    /// The state it is in now.
    pub to: State,
    /// The move's reason as stored (the error of a `Failed` job, the
    /// retry's reason of a `Scheduled` one); `None` when it has none.
    pub reason: Option<String>,
}

/// Told of each state change, after it was stored (as Hangfire's
/// `IApplyStateFilter.OnStateApplied`, though outside the storage's
/// transaction: the change has happened and stands).
///
/// A server's state filters hear of the moves it makes: each fetch
/// (`Enqueued` to `Processing`), each outcome it records (`Succeeded`,
/// `Failed`, `Scheduled` for a retry or a snooze, `Enqueued` when given
/// back), and, on the leader, each job it rescues after its lease expired
/// (`Enqueued`, or `Failed` with no attempt left). Not told: the creation
/// of jobs, moves made in bulk by the leader's maintenance (scheduled jobs
/// enqueued, continuations released, finished jobs expired), and moves
/// made through the `Client` or the `Storage` handle (a cancel, an
/// operator's requeue or delete).
///
/// A server calls its state filters in one task of their own, in about
/// the order the changes were stored (the fetcher and the completer's two
/// writers tell theirs each as they go), so that a slow filter holds back
/// no job and no outcome. Up to [`STATE_BACKLOG`] batches of changes wait
/// for a slow filter; past that, changes are dropped with a warning. A
/// filter's panic is logged and the next goes on. At shutdown the server
/// waits for the changes told so far, within its shutdown timeout.
///
/// ```
/// use jobs_core::State;
/// use jobs_runtime::{StateFilter, StateTransition};
///
/// /// Alerts when a job fails for good.
/// struct AlertOnFailure;
///
/// #[async_trait::async_trait]
/// impl StateFilter for AlertOnFailure {
///     async fn on_state_changed(&self, change: &StateTransition) {
///         if change.to == State::Failed {
///             tracing::error!(job = %change.job, name = %change.name, reason = ?change.reason, "job failed");
///         }
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait StateFilter: Send + Sync + 'static {
    /// Called once the move `change` is stored.
    async fn on_state_changed(&self, change: &StateTransition);
}

/// The most batches of changes (one per fetch, per outcome write, per
/// rescue) that wait for a server's state filters; past it, changes are
/// dropped with a warning rather than held in memory without bound.
pub const STATE_BACKLOG: usize = 10_000;

/// The state filters of a server.
#[derive(Clone, Default)]
pub(crate) struct StateFilters {
    filters: Arc<[Arc<dyn StateFilter>]>,
}

impl StateFilters {
    pub(crate) fn new(filters: Vec<Arc<dyn StateFilter>>) -> Self {
        StateFilters {
            filters: filters.into(),
        }
    }

    /// Whether no filter listens: then no change is even built.
    pub(crate) fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Tells every filter of every change, in order.
    pub(crate) async fn tell(&self, changes: &[StateTransition]) {
        for change in changes {
            for filter in self.filters.iter() {
                let told = AssertUnwindSafe(filter.on_state_changed(change))
                    .catch_unwind()
                    .await;
                if told.is_err() {
                    error!(job.id = %change.job, to = %change.to, "a state filter panicked; going on with the next");
                }
            }
        }
    }

    /// A teller and what it sends, for [`run`]; a teller that sends
    /// nothing when there is no filter.
    pub(crate) fn channel(&self) -> (StateTeller, StateReceiver) {
        let (sender, receiver) = mpsc::channel(STATE_BACKLOG);
        let teller = StateTeller {
            sender: (!self.is_empty()).then_some(sender),
        };
        (teller, StateReceiver(receiver))
    }
}

/// What a server's [`StateTeller`]s sent.
pub(crate) struct StateReceiver(mpsc::Receiver<Vec<StateTransition>>);

/// Tells `filters` of the changes received, in order, until `stop`; then
/// of those sent before it.
pub(crate) async fn run(filters: StateFilters, receiver: StateReceiver, stop: CancellationToken) {
    let mut receiver = receiver.0;
    loop {
        tokio::select! {
            biased;
            batch = receiver.recv() => match batch {
                Some(batch) => filters.tell(&batch).await,
                None => return,
            },
            () = stop.cancelled() => break,
        }
    }
    while let Ok(batch) = receiver.try_recv() {
        filters.tell(&batch).await;
    }
}

/// Sends changes to a server's state-filter task; does nothing when the
/// server has no state filter.
#[derive(Clone, Default)]
pub(crate) struct StateTeller {
    sender: Option<mpsc::Sender<Vec<StateTransition>>>,
}

impl StateTeller {
    /// Whether anything listens: build the changes only then.
    pub(crate) fn listens(&self) -> bool {
        self.sender.is_some()
    }

    /// Tells of the outcomes (each with its job's name) that moved their
    /// job (`moved`): from `Processing` to the outcome's state, with its
    /// reason as stored. Builds nothing when no filter listens.
    pub(crate) fn tell_outcomes<'a>(
        &self,
        outcomes: impl Iterator<Item = (&'a JobOutcome, &'a str)>,
        moved: &[JobId],
    ) {
        if !self.listens() {
            return;
        }
        let moved: HashSet<JobId> = moved.iter().copied().collect();
        self.send(
            outcomes
                .filter(|(outcome, _)| moved.contains(&outcome.job.id))
                .map(|(outcome, name)| StateTransition {
                    job: outcome.job.id,
                    name: name.to_owned(),
                    from: Some(State::Processing),
                    to: outcome.outcome.state(),
                    reason: outcome
                        .outcome
                        .reason()
                        .map(|reason| storable_text(reason).into_owned()),
                })
                .collect(),
        );
    }

    pub(crate) fn send(&self, changes: Vec<StateTransition>) {
        let Some(sender) = &self.sender else { return };
        if changes.is_empty() {
            return;
        }
        match sender.try_send(changes) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(changes)) => warn!(
                dropped = changes.len(),
                backlog = STATE_BACKLOG,
                "the state filters are behind by the most batches kept; these changes are not told"
            ),
            Err(mpsc::error::TrySendError::Closed(changes)) => warn!(
                dropped = changes.len(),
                "the state filters' task has ended; these changes are not told"
            ),
        }
    }
}
