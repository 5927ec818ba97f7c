//! Keeps one server of a storage the maintenance leader, and runs the
//! leader-only services (`maintenance.rs`) exactly while this server leads,
//! so that their work is done once however many servers run. A leader
//! renews every third of the ttl; if it dies, another takes over when the
//! ttl runs out.
//!
//! A renewal that does not answer within a quarter of the ttl counts as
//! lost, and the services stop then: a renewal is asked a third of the ttl
//! after the last answer, so the services stop before the term the storage
//! granted (counted by its clock from when it answered) could run out and
//! another server take over.

use std::time::Duration;

use jobs_core::{LeadParams, MAINTENANCE_LEADERSHIP};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::ServerConfig;
use super::maintenance::Maintenance;
use super::periodic::sleep_or_cancel;
use crate::Storage;
use crate::filters::StateTeller;

/// Takes or renews the leadership every third of the ttl until `cancel`;
/// starts the leader-only services when it leads and stops them when it
/// does not. At the end it stops them and resigns, so that another server
/// takes over at its next attempt (within a third of its ttl) rather than
/// when the ttl runs out.
pub(crate) async fn run(
    storage: Storage,
    server: String,
    config: ServerConfig,
    states: StateTeller,
    cancel: CancellationToken,
) {
    let period = config.leader_ttl / 3;
    let answer_within = config.leader_ttl / 4;
    let mut maintenance: Option<Maintenance> = None;
    loop {
        let leads = try_lead(&storage, &server, config.leader_ttl, answer_within).await;
        match (leads, maintenance.take()) {
            (true, Some(running)) => maintenance = Some(running),
            (true, None) => {
                info!("leading the maintenance");
                maintenance = Some(Maintenance::start(&storage, &config, &states));
            }
            (false, Some(running)) => {
                info!("no longer leading the maintenance");
                running.stop().await;
            }
            (false, None) => {}
        }
        if sleep_or_cancel(period, &cancel).await {
            break;
        }
    }
    if let Some(running) = maintenance {
        running.stop().await;
        if let Err(error) = storage
            .backend()
            .resign(MAINTENANCE_LEADERSHIP, &server)
            .await
        {
            warn!(%error, "resigning the leadership failed; it passes on when its ttl runs out");
        }
    }
}

/// Whether `server` leads for the next `ttl`: the storage said so within
/// `answer_within`.
async fn try_lead(storage: &Storage, server: &str, ttl: Duration, answer_within: Duration) -> bool {
    let request = storage.backend().try_lead(LeadParams {
        name: MAINTENANCE_LEADERSHIP.to_owned(),
        server: server.to_owned(),
        ttl,
    });
    match tokio::time::timeout(answer_within, request).await {
        Ok(Ok(leads)) => leads,
        Ok(Err(error)) => {
            warn!(%error, "leader election failed; not leading until it succeeds");
            false
        }
        Err(_) => {
            warn!(
                waited = ?answer_within,
                "leader election did not answer in time; not leading until it does"
            );
            false
        }
    }
}
