use jobs::prelude::*;

#[job]
async fn send_welcome_email(user_id: i64) -> Result<String, String> {
    Ok(format!("sent to {user_id}"))
}

fn main() {}
