use jobs::prelude::*;

struct User {
    id: i64,
}

#[job]
async fn send_welcome_email(user: User) {
    let _ = user.id;
}

fn main() {}
