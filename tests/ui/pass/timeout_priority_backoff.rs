//! `timeout`, `priority` and the three forms of `backoff`, read back
//! from the `Job` impl in consts and at run time.

use jobs::Backoff;
use jobs::prelude::*;

mod retry {
    use std::time::Duration;

    /// 1s, 2s, 4s, ... capped at 1024s.
    pub fn doubling(retry: u32) -> Duration {
        Duration::from_secs(1 << (retry - 1).min(10))
    }
}

fn linear(retry: u32) -> Duration {
    Duration::from_secs(u64::from(retry) * 10)
}

#[job(timeout = "30s", priority = -5, backoff = ["1s", "30s", "5m"])]
async fn send_welcome_email(user_id: i64) {
    let _ = user_id;
}

#[job(priority = -32768, backoff = crate::retry::doubling)]
async fn first_of_all() {}

#[job(priority = 32767, timeout = "500ms", backoff = linear)]
async fn last_of_all() {}

#[recurring(cron = "@hourly", timeout = "2m", backoff = ["10s"])]
async fn hourly() {}

const _: () = {
    assert!(<SendWelcomeEmail as Job>::PRIORITY == -5);
    match <SendWelcomeEmail as Job>::TIMEOUT {
        Some(timeout) => assert!(timeout.as_millis() == 30_000),
        None => panic!("no timeout"),
    }
    match <SendWelcomeEmail as Job>::RETRY_POLICY.backoff {
        Backoff::Steps(delays) => {
            assert!(delays.len() == 3);
            assert!(delays[0].as_millis() == 1_000);
            assert!(delays[2].as_millis() == 300_000);
        }
        _ => panic!("not a list"),
    }
    assert!(<FirstOfAll as Job>::PRIORITY == i16::MIN);
    assert!(<FirstOfAll as Job>::TIMEOUT.is_none());
    assert!(<LastOfAll as Job>::PRIORITY == i16::MAX);
    assert!(<Hourly as Job>::PRIORITY == 0);
    assert!(matches!(
        <Hourly as Job>::RETRY_POLICY.backoff,
        Backoff::Steps([_])
    ));
};

fn main() {
    let first = <FirstOfAll as Job>::RETRY_POLICY;
    assert_eq!(first.backoff, Backoff::Custom(retry::doubling));
    assert_eq!(first.delay(1), Duration::from_secs(1));
    assert_eq!(first.delay(4), Duration::from_secs(8));
    let last = <LastOfAll as Job>::RETRY_POLICY;
    assert_eq!(last.delay(3), Duration::from_secs(30));
    assert_eq!(
        <LastOfAll as Job>::TIMEOUT,
        Some(Duration::from_millis(500))
    );
    assert_eq!(<Hourly as Job>::TIMEOUT, Some(Duration::from_secs(120)));
    assert_eq!(
        <SendWelcomeEmail as Job>::RETRY_POLICY.delay(7),
        Duration::from_secs(300)
    );
}
