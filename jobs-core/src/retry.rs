use std::time::Duration;

/// How a failed job is retried: how many times, and after what delay.
///
/// The default is Hangfire's `AutomaticRetry`: 10 retries (so at most 11
/// attempts in all), with the delay of [`Backoff::Hangfire`]. Set per job
/// with `#[job(retries = 5)]` and `#[job(backoff = "2s")]`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times a failed attempt is retried. `0` means a failure is final.
    pub retries: u32,
    /// The delay before each retry.
    pub backoff: Backoff,
}

/// The delay before a retry.
#[derive(Copy, Clone, Debug)]
pub enum Backoff {
    /// Hangfire's `AutomaticRetry` delay: for retry `n` (1-based),
    /// `(n-1)^4 + 15 + rand(0..30) * n` seconds, so about 15-44 s, 16-74 s,
    /// 31-104 s, ... and about 1.8 hours before the 10th retry.
    Hangfire,
    /// The same delay before every retry (`#[job(backoff = "30s")]`).
    Fixed(Duration),
    /// One delay per retry, the last one repeated for the retries past
    /// the list (`#[job(backoff = ["1s", "30s", "5m"])]`, Sidekiq's and
    /// Hangfire's `DelaysInSeconds`). An empty list retries at once.
    Steps(&'static [Duration]),
    /// The delay a function of the job's gives for retry `n` (1-based)
    /// (`#[job(backoff = my_backoff)]` with `fn my_backoff(retry: u32) ->
    /// Duration`): an exponential backoff with its own base and cap, or
    /// one that reads a time of day. A function that panics (an overflow
    /// of `2u32.pow(n)`) gets Hangfire's delay for that retry instead.
    Custom(fn(u32) -> Duration),
}

impl PartialEq for Backoff {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Backoff::Hangfire, Backoff::Hangfire) => true,
            (Backoff::Fixed(a), Backoff::Fixed(b)) => a == b,
            (Backoff::Steps(a), Backoff::Steps(b)) => a == b,
            (Backoff::Custom(a), Backoff::Custom(b)) => std::ptr::fn_addr_eq(*a, *b),
            _ => false,
        }
    }
}

impl Eq for Backoff {}

impl RetryPolicy {
    /// Hangfire's default number of retries.
    pub const DEFAULT_RETRIES: u32 = 10;

    /// Hangfire's `AutomaticRetry`: 10 retries with [`Backoff::Hangfire`].
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        retries: Self::DEFAULT_RETRIES,
        backoff: Backoff::Hangfire,
    };

    /// A policy with `retries` retries and Hangfire's backoff.
    pub const fn retries(retries: u32) -> Self {
        RetryPolicy {
            retries,
            backoff: Backoff::Hangfire,
        }
    }

    /// This policy with another backoff.
    pub const fn with_backoff(self, backoff: Backoff) -> Self {
        RetryPolicy {
            retries: self.retries,
            backoff,
        }
    }

    /// The most attempts a job may get: the first one plus the retries.
    pub const fn max_attempts(self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The delay before retry number `retry` (1-based: the retry after the
    /// first failed attempt is retry 1).
    pub fn delay(self, retry: u32) -> Duration {
        match self.backoff {
            Backoff::Fixed(delay) => delay,
            Backoff::Steps(delays) => {
                let index = usize::try_from(retry.max(1) - 1).unwrap_or(usize::MAX);
                delays
                    .get(index)
                    .or(delays.last())
                    .copied()
                    .unwrap_or_default()
            }
            // A panicking function (an overflow) must not take down the
            // server's completer, which asks for the delay: Hangfire's
            // delay then.
            Backoff::Custom(delay) => std::panic::catch_unwind(|| delay(retry.max(1)))
                .unwrap_or_else(|_| RetryPolicy::retries(0).delay(retry)),
            Backoff::Hangfire => {
                let n = u64::from(retry.max(1));
                let jitter = fastrand::u64(0..30);
                let secs = (n - 1)
                    .saturating_pow(4)
                    .saturating_add(15)
                    .saturating_add(jitter.saturating_mul(n));
                Duration::from_secs(secs)
            }
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_hangfires_automatic_retry() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.retries, 10);
        assert_eq!(policy.max_attempts(), 11);
        assert_eq!(policy.backoff, Backoff::Hangfire);
    }

    #[test]
    fn hangfire_delay_stays_in_its_bounds() {
        let policy = RetryPolicy::DEFAULT;
        for n in 1..=10u64 {
            let low = (n - 1).pow(4) + 15;
            let high = low + 29 * n;
            for _ in 0..200 {
                let secs = policy.delay(n as u32).as_secs();
                assert!(
                    (low..=high).contains(&secs),
                    "retry {n}: {secs}s not in {low}..={high}"
                );
            }
        }
    }

    #[test]
    fn hangfire_delay_is_jittered() {
        let delays: std::collections::HashSet<_> =
            (0..100).map(|_| RetryPolicy::DEFAULT.delay(3)).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn fixed_delay() {
        let policy =
            RetryPolicy::retries(3).with_backoff(Backoff::Fixed(Duration::from_millis(20)));
        assert_eq!(policy.delay(1), Duration::from_millis(20));
        assert_eq!(policy.delay(3), Duration::from_millis(20));
        assert_eq!(policy.max_attempts(), 4);
    }

    #[test]
    fn steps_repeat_their_last_delay() {
        const STEPS: &[Duration] = &[Duration::from_secs(1), Duration::from_secs(30)];
        let policy = RetryPolicy::retries(5).with_backoff(Backoff::Steps(STEPS));
        let delays: Vec<_> = (1..=4).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 30, 30, 30]);
        let none = RetryPolicy::retries(1).with_backoff(Backoff::Steps(&[]));
        assert_eq!(none.delay(1), Duration::ZERO);
    }

    #[test]
    fn a_custom_backoff_is_called_with_the_retry_number() {
        fn doubling(retry: u32) -> Duration {
            Duration::from_secs(1 << retry.min(20))
        }
        let policy = RetryPolicy::retries(3).with_backoff(Backoff::Custom(doubling));
        assert_eq!(policy.delay(1), Duration::from_secs(2));
        assert_eq!(policy.delay(3), Duration::from_secs(8));
        assert_eq!(policy.backoff, Backoff::Custom(doubling));
        assert_ne!(policy.backoff, Backoff::Hangfire);
        fn overflowing(retry: u32) -> Duration {
            Duration::from_secs(u64::from(2u32.pow(retry)))
        }
        let policy = RetryPolicy::retries(40).with_backoff(Backoff::Custom(overflowing));
        assert!(
            policy.delay(40) >= Duration::from_secs(15),
            "Hangfire's delay"
        );
    }
}
