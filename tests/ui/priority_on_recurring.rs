use jobs::prelude::*;

#[recurring(cron = "@hourly", priority = -1)]
async fn hourly_report() {}

fn main() {}
