//! Keeps one server of a storage the maintenance leader: only the leader
//! runs the scheduler, the rescuer and the expirer, so that their work is
//! done once however many servers run. A leader renews every third of the
//! ttl; if it dies, another takes over when the ttl runs out.

use std::sync::Arc;
use std::time::Instant;

use jobs_core::{LeadParams, MAINTENANCE_LEADERSHIP, Result};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Shared, sleep_or_cancel};

/// Runs [`run_once`] every third of `leader_ttl` until `cancel`, then
/// resigns so that another server takes over at once.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let period = shared.config.leader_ttl / 3;
    loop {
        if let Err(error) = run_once(&shared).await {
            warn!(%error, "leader election failed; not leading until it succeeds");
        }
        if sleep_or_cancel(period, &cancel).await {
            break;
        }
    }
    let led = shared
        .leader_until
        .lock()
        .expect("leader lock")
        .take()
        .is_some();
    if led && let Err(error) = shared.storage.backend().resign(MAINTENANCE_LEADERSHIP, &shared.id).await {
        warn!(%error, "resigning the leadership failed; it passes on when its ttl runs out");
    }
}

/// Takes or renews the leadership; returns whether this server leads.
pub(crate) async fn run_once(shared: &Shared) -> Result<bool> {
    let asked_at = Instant::now();
    let led = shared.is_leader();
    let result = shared.storage.backend().try_lead(LeadParams {
            name: MAINTENANCE_LEADERSHIP.to_owned(),
            server: shared.id.clone(),
            ttl: shared.config.leader_ttl,
        })
        .await;
    let leads = matches!(result, Ok(true));
    // The term runs from before the request: a slow answer cannot stretch
    // it past what the storage granted.
    *shared.leader_until.lock().expect("leader lock") =
        leads.then(|| asked_at + shared.config.leader_ttl);
    let leads = result?;
    if leads != led {
        info!(leads, "maintenance leadership changed");
    }
    Ok(leads)
}
