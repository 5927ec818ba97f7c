use jobs::prelude::*;

#[job(unique(by = [ctx, user_id]))]
async fn send_welcome_email(ctx: JobContext, user_id: i64) {
    let _ = (ctx, user_id);
}

fn main() {}
