//! The leader-only services, started together when this server becomes the
//! maintenance leader and stopped together when it stops leading: the
//! scheduler, the recurring scheduler, the continuation check, the
//! rescuer, the expirer, the server pruner, the counters aggregator and
//! the queue metrics. None of them asks whether it leads; the elector
//! (`elector.rs`) decides when they run.

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{
    ServerConfig, continuation_check, counters_aggregator, expirer, queue_metrics,
    recurring_scheduler, rescuer, scheduler, server_pruner,
};
use crate::Storage;
use crate::filters::StateTeller;

/// The leader-only services while they run.
pub(crate) struct Maintenance {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Maintenance {
    /// Starts every leader-only service.
    pub fn start(storage: &Storage, config: &ServerConfig, states: &StateTeller) -> Maintenance {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(scheduler::run(
            storage.clone(),
            config.schedule_interval,
            stop.clone(),
        ));
        tasks.spawn(recurring_scheduler::run(
            storage.clone(),
            config.recurring_check_interval,
            stop.clone(),
        ));
        tasks.spawn(continuation_check::run(
            storage.clone(),
            config.continuation_check_interval,
            stop.clone(),
        ));
        tasks.spawn(rescuer::run(
            storage.clone(),
            states.clone(),
            config.rescue_interval,
            stop.clone(),
        ));
        tasks.spawn(expirer::run(
            storage.clone(),
            config.retention,
            config.cleanup_interval,
            stop.clone(),
        ));
        tasks.spawn(server_pruner::run(
            storage.clone(),
            config.server_timeout,
            config.cleanup_interval,
            stop.clone(),
        ));
        tasks.spawn(counters_aggregator::run(storage.clone(), stop.clone()));
        tasks.spawn(queue_metrics::run(
            storage.clone(),
            config.queue_metrics_interval,
            stop.clone(),
        ));
        tasks.close();
        Maintenance { stop, tasks }
    }

    /// Stops them and waits until each has (a storage call in progress is
    /// dropped).
    pub async fn stop(self) {
        self.stop.cancel();
        self.tasks.wait().await;
    }
}
