use jobs::prelude::*;

#[job(timeout = "30s")]
async fn send_welcome_email(user_id: i64) {
    let _ = user_id;
}

fn main() {}
