use jobs::prelude::*;

#[job(backoff = ["1s", "30 seconds", 5])]
async fn send_welcome_email(user_id: i64) {
    let _ = user_id;
}

#[job(backoff = [])]
async fn no_delays() {}

fn main() {}
