//! Statistics: how many jobs succeeded and failed, in all and per hour
//! (UTC), as Hangfire's `stats:succeeded` and `stats:failed` counters.
//! They feed the dashboard's totals, its realtime graph (the totals'
//! growth between two reads) and its history graph (per hour and per day).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How long the counts per hour are kept: 31 days, so the history graph
/// can show a month by day. Older hours are folded into the totals.
pub const STATISTICS_KEPT: Duration = Duration::from_secs(31 * 24 * 3600);

/// How many jobs reached `Succeeded` and `Failed`. A job counts each time
/// it reaches one of them (a job requeued and run again counts again), and
/// expiring it later takes nothing off: these are events, not the jobs
/// stored now (which [`counts`](super::MonitoringStorage::counts) gives).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Finished {
    /// Jobs that reached `Succeeded`.
    pub succeeded: u64,
    /// Jobs that reached `Failed` (no retry left, or failed for good).
    pub failed: u64,
}

/// The jobs that finished in one hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourStatistics {
    /// The hour's start (UTC, on the hour).
    pub hour: DateTime<Utc>,
    /// What finished in it.
    pub finished: Finished,
}

/// What [`MonitoringStorage::statistics`](super::MonitoringStorage::statistics)
/// reads. The jobs a storage kept from before it had statistics (migration
/// 0009) count once each, in the hour they finished.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Since the storage was created.
    pub total: Finished,
    /// The hours kept ([`STATISTICS_KEPT`]) in which some job finished,
    /// oldest first; an hour in which none did is not listed.
    pub hours: Vec<HourStatistics>,
}

impl Statistics {
    /// Folds `(name, hour, count)` rows into statistics: `name` is
    /// `Succeeded` or `Failed` (other names are skipped), an `hour` at or
    /// before the epoch counts in the totals only. Rows may repeat a name
    /// and hour; their counts add up.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, DateTime<Utc>, i64)>) -> Self {
        let mut hours: std::collections::BTreeMap<DateTime<Utc>, Finished> = Default::default();
        let mut total = Finished::default();
        for (name, hour, count) in rows {
            if !matches!(name.as_str(), "Succeeded" | "Failed") {
                continue;
            }
            let count = u64::try_from(count).unwrap_or(0);
            let add = |finished: &mut Finished| {
                if name == "Succeeded" {
                    finished.succeeded += count;
                } else {
                    finished.failed += count;
                }
            };
            add(&mut total);
            if hour > DateTime::UNIX_EPOCH {
                add(hours.entry(hour).or_default());
            }
        }
        Statistics {
            total,
            hours: hours
                .into_iter()
                .map(|(hour, finished)| HourStatistics { hour, finished })
                .collect(),
        }
    }
}

/// The arguments of
/// [`MaintenanceStorage::aggregate_counters`](super::MaintenanceStorage::aggregate_counters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateCountersParams {
    /// Hours older than this are folded into the totals.
    pub keep: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_fold_into_totals_and_hours() {
        let hour = |h: u32| {
            DateTime::parse_from_rfc3339(&format!("2026-12-01T{h:02}:00:00Z"))
                .unwrap()
                .to_utc()
        };
        let stats = Statistics::from_rows([
            ("Succeeded".to_owned(), hour(5), 3),
            ("Failed".to_owned(), hour(4), 1),
            ("Succeeded".to_owned(), hour(5), 2),
            ("Succeeded".to_owned(), DateTime::UNIX_EPOCH, 100),
            ("Other".to_owned(), hour(6), 9),
        ]);
        assert_eq!(
            stats.total,
            Finished {
                succeeded: 105,
                failed: 1
            }
        );
        assert_eq!(stats.hours.len(), 2, "other names are skipped");
        assert_eq!(stats.hours[0].hour, hour(4));
        assert_eq!(stats.hours[0].finished.failed, 1);
        assert_eq!(stats.hours[1].finished.succeeded, 5);
    }
}
