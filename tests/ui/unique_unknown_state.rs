use jobs::prelude::*;

#[job(unique(states = ["Scheduled", "Queued"]))]
async fn send_welcome_email(user_id: i64) {
    let _ = user_id;
}

fn main() {}
