use jobs::prelude::*;

#[job(retries = "x")]
async fn send_welcome_email(user_id: i64) {
    let _ = user_id;
}

fn main() {}
