use jobs::prelude::*;

#[recurring(cron = "0 0 8 * * *", tz = "Europe/Berln")]
async fn morning_report() {}

fn main() {}
