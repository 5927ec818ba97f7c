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
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Backoff {
    /// Hangfire's `AutomaticRetry` delay: for retry `n` (1-based),
    /// `(n-1)^4 + 15 + rand(0..30) * n` seconds, so about 15-44 s, 16-74 s,
    /// 31-104 s, ... and about 1.8 hours before the 10th retry.
    Hangfire,
    /// The same delay before every retry.
    Fixed(Duration),
}

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
}
