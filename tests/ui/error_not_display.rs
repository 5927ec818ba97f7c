use jobs::prelude::*;

#[derive(Debug)]
struct MailError;

#[job]
async fn send_welcome_email(user_id: i64) -> Result<(), MailError> {
    let _ = user_id;
    Err(MailError)
}

fn main() {}
