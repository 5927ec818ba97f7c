use jobs::prelude::*;

#[recurring(cron = "0 * * * *")]
async fn hourly(customer_id: i64) {
    let _ = customer_id;
}

#[recurring(queue = "maintenance")]
async fn no_schedule() {}

#[recurring(cron = "* * * * *", misfire = "sometimes", skip_if_running = "yes")]
async fn bad_options() {}

#[recurring(cron = "* * * * *", cron = "0 * * * *", every = "day", tz = "UTC")]
async fn duplicate_and_unknown() {}

fn main() {}
