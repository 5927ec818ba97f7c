use jobs::prelude::*;

#[job]
async fn send_welcome_email(user_id: i64) -> i32 {
    let _ = user_id;
    0
}

fn main() {}
