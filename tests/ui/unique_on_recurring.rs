use jobs::prelude::*;

#[recurring(cron = "@hourly", unique)]
async fn hourly_report() {}

fn main() {}
