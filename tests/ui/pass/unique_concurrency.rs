//! Every form of `unique` and `concurrency`, read back from the `Job`
//! impl: the constants, and the key texts of `by`.

use jobs::prelude::*;
use jobs::{Concurrency, Uniqueness};

/// Unique while waiting or running, keyed by all its arguments.
#[job(unique)]
async fn refresh_feed(feed_id: i64) {
    let _ = feed_id;
}

/// Unique per user: the key is `user_id` alone.
#[job(unique(by = [user_id]))]
async fn send_welcome_email(ctx: JobContext, user_id: i64, template: String) {
    let _ = (ctx, user_id, template);
}

/// At most one report per customer and region per hour.
#[job(unique(by = [customer_id, region], within = "1h"))]
async fn hourly_report(customer_id: i64, region: String, note: String) {
    let _ = (customer_id, region, note);
}

/// Unique within a day, failed jobs counted too.
#[job(unique(within = "1d", states = ["Scheduled", "Enqueued", "Processing", "Awaiting", "Failed"]))]
async fn daily_digest(user_id: i64) {
    let _ = user_id;
}

/// Unique until it succeeded; every sub-key at once, in any order.
#[job(unique(states = ["Scheduled", "Enqueued", "Processing", "Awaiting", "Succeeded"]), queue = "mail")]
async fn nudge(user_id: i64) {
    let _ = user_id;
}

/// At most two at once.
#[job(concurrency = 2)]
async fn rebuild_index() {}

/// At most one per customer at once.
#[job(concurrency(limit = 1, by = [customer_id]))]
async fn sync_customer(customer_id: i64, items: Vec<String>) {
    let _ = (customer_id, items);
}

/// At most three at once, written in the long form.
#[job(concurrency(limit = 3))]
async fn import_file(path: String) {
    let _ = path;
}

/// Both, with the same `by`, and a raw argument name.
#[job(
    unique(by = [r#type, account], within = "30m", states = ["Scheduled", "Enqueued", "Processing", "Awaiting"]),
    concurrency(by = [account], limit = 4294967295),
    retries = 1
)]
async fn charge(account: u64, r#type: String, #[parent] previous: Option<u64>) {
    let _ = (account, r#type, previous);
}

const _: () = {
    assert!(<RebuildIndex as Job>::UNIQUE.is_none());
    assert!(<RefreshFeed as Job>::CONCURRENCY.is_none());
};

fn main() {
    assert_eq!(<RefreshFeed as Job>::UNIQUE, Some(Uniqueness::new()));
    assert_eq!(<RefreshFeed as Job>::CONCURRENCY, None);
    let feed = RefreshFeed { feed_id: 3 };
    assert_eq!(feed.unique_key(), None, "the trait's default: every argument");

    assert_eq!(<SendWelcomeEmail as Job>::UNIQUE, Some(Uniqueness::new()));
    let welcome = SendWelcomeEmail {
        user_id: 7,
        template: "welcome".into(),
    };
    assert_eq!(welcome.unique_key(), Some("[7]".into()));
    assert_eq!(welcome.concurrency_key(), None);

    let hour = Duration::from_secs(3600);
    assert_eq!(
        <HourlyReport as Job>::UNIQUE,
        Some(Uniqueness::within(hour))
    );
    let report = HourlyReport {
        customer_id: 42,
        region: "eu".into(),
        note: "not in the key".into(),
    };
    assert_eq!(report.unique_key(), Some(r#"[42,"eu"]"#.into()));

    let digest = <DailyDigest as Job>::UNIQUE.unwrap();
    assert_eq!(digest.within, Some(Duration::from_secs(86_400)));
    assert_eq!(
        digest.states,
        [State::Scheduled, State::Enqueued, State::Processing, State::Awaiting, State::Failed]
    );
    assert_eq!(DailyDigest { user_id: 1 }.unique_key(), None);

    let nudge = <Nudge as Job>::UNIQUE.unwrap();
    assert_eq!(nudge.within, None);
    assert_eq!(
        nudge.states,
        [State::Scheduled, State::Enqueued, State::Processing, State::Awaiting, State::Succeeded]
    );
    assert_eq!(<Nudge as Job>::QUEUE, "mail");

    assert_eq!(<RebuildIndex as Job>::UNIQUE, None);
    assert_eq!(
        <RebuildIndex as Job>::CONCURRENCY,
        Some(Concurrency::per_name(2))
    );
    assert_eq!(RebuildIndex {}.concurrency_key(), None);

    assert_eq!(
        <SyncCustomer as Job>::CONCURRENCY,
        Some(Concurrency::per_key(1))
    );
    let sync = SyncCustomer {
        customer_id: 42,
        items: vec!["a".into()],
    };
    assert_eq!(sync.concurrency_key(), Some("[42]".into()));
    assert_eq!(sync.unique_key(), None);

    assert_eq!(
        <ImportFile as Job>::CONCURRENCY,
        Some(Concurrency::per_name(3))
    );
    let import = ImportFile {
        path: "a.csv".into(),
    };
    assert_eq!(import.concurrency_key(), None);

    assert_eq!(
        <Charge as Job>::UNIQUE,
        Some(Uniqueness::within(Duration::from_secs(1800)).in_states(jobs::UNIQUE_WHILE_UNFINISHED))
    );
    assert_eq!(
        <Charge as Job>::CONCURRENCY,
        Some(Concurrency::per_key(u32::MAX))
    );
    assert_eq!(<Charge as Job>::RETRY_POLICY.retries, 1);
    let charge = Charge {
        account: 9,
        r#type: "card".into(),
    };
    assert_eq!(charge.unique_key(), Some(r#"["card",9]"#.into()));
    assert_eq!(charge.concurrency_key(), Some("[9]".into()));
}
