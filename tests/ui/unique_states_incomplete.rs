use jobs::job;

/// A key held only while enqueued: a retry or a promotion into Enqueued
/// while another job holds the key could not be stored.
#[job(unique(states = ["Enqueued"]))]
async fn refresh(user_id: i64) {
    let _ = user_id;
}

fn main() {}
