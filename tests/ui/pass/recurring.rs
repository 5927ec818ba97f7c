use jobs::prelude::*;

#[recurring(cron = "0 */5 * * * *", tz = "Europe/Berlin", misfire = "each:10", skip_if_running = true, queue = "maintenance", name = "sessions.purge", retries = 2)]
async fn purge_expired_sessions(ctx: JobContext) -> Result<(), std::io::Error> {
    let _ = ctx;
    Ok(())
}

#[recurring(cron = "@daily")]
async fn nightly() {}

fn main() {}
