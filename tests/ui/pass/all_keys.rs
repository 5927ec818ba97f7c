use jobs::prelude::*;

#[job(name = "mail.welcome", queue = "mail", retries = 3, backoff = "30s")]
async fn send_welcome_email(user_id: i64, template: String) -> Result<(), std::io::Error> {
    let _ = (user_id, template);
    Ok(())
}

fn main() {
    assert_eq!(<SendWelcomeEmail as Job>::NAME, "mail.welcome");
    assert_eq!(<SendWelcomeEmail as Job>::QUEUE, "mail");
}
