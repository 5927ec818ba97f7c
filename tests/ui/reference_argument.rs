use jobs::prelude::*;

#[job]
async fn send_welcome_email(template: &str) {
    let _ = template;
}

fn main() {}
