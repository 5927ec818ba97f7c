use jobs::prelude::*;

#[job(backoff = 30)]
async fn send_welcome_email(user_id: i64) {
    let _ = user_id;
}

fn main() {}
