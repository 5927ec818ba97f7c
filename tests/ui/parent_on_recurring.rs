use jobs::prelude::*;

#[recurring(cron = "@hourly")]
async fn hourly(#[parent] previous: Option<u64>) {
    let _ = previous;
}

fn main() {}
