use jobs::prelude::*;

/// Minute 61 does not exist.
#[recurring(cron = "61 * * * *")]
async fn purge() {}

/// No date is the 30th of February.
#[recurring(cron = "0 0 30 2 *")]
async fn never() {}

/// Three fields.
#[recurring(cron = "* * *")]
async fn short() {}

fn main() {}
