// The `Storage` handle applications hold has no worker-side call: fetching,
// finishing or leading belongs to the server, even with the storage
// contract's traits in scope.
use jobs::prelude::*;
use jobs::storage::{FetchParams, JobStorage, MaintenanceStorage};

async fn steal_work(storage: Storage) {
    let _ = storage
        .fetch(FetchParams {
            queues: vec!["default".into()],
            limit: 1,
            server: "app".into(),
            lease: Duration::from_secs(30),
        })
        .await;
    let _ = storage.expired_leases(Default::default()).await;
}

fn main() {
    let _ = steal_work;
}
