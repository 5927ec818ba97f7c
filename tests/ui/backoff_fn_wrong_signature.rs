use jobs::prelude::*;

fn doubling(retry: u64) -> Duration {
    Duration::from_secs(1 << retry.min(10))
}

#[job(backoff = doubling)]
async fn send_welcome_email(user_id: i64) {
    let _ = user_id;
}

fn main() {}
