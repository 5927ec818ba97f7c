// No `use jobs::...` here: every generated path goes through the re-export.
mod reexport {
    pub use ::jobs;
}

#[crate::reexport::jobs::job(crate = "crate::reexport::jobs")]
async fn send_welcome_email(user_id: i64) {
    let _ = user_id;
}

fn main() {
    let _ = SendWelcomeEmail { user_id: 1 };
}
