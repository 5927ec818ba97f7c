use jobs::prelude::*;

#[job(timeout = "0s")]
async fn never_runs() {}

#[job(timeout = "soon")]
async fn send_welcome_email(user_id: i64) {
    let _ = user_id;
}

fn main() {}
