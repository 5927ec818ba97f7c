use jobs::prelude::*;

#[job]
async fn send_welcome_email<T: Send>(user_id: i64) {
    let _ = user_id;
}

fn main() {}
