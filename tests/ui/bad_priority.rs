use jobs::prelude::*;

#[job(priority = 40000)]
async fn too_high() {}

#[job(priority = "high")]
async fn send_welcome_email(user_id: i64) {
    let _ = user_id;
}

fn main() {}
