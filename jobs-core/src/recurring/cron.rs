//! A cron expression in a time zone, and when it fires next.
//!
//! Parsing is the `croner` crate's (5 fields, or 6 with seconds first; the
//! nicknames `@hourly`, `@daily`, ...; `L`, `W` and `#`); the time zone is
//! an IANA name read by `chrono-tz`. `#[recurring]` parses with this same
//! type at compile time, so an expression the attribute accepts is one the
//! scheduler runs.
//!
//! What happens around daylight-saving transitions is decided here, on UTC
//! instants, as Hangfire's Cronos and Vixie cron do it:
//! - a **fixed-time** expression (second, minute and hour given as values
//!   or lists, like `0 30 2 * * *` or `0 0,30 2 * * *`) fires once a matching
//!   day per listed time: when its time
//!   falls in the hour skipped in spring it fires at the first instant
//!   after the jump (03:00), and when its time comes twice in autumn it
//!   fires the first time only;
//! - an **interval** expression (a `*`, step or range in second, minute or
//!   hour, like `*/15 * * * *`) fires at every instant whose wall
//!   clock matches: not in the skipped hour, and in both passes of the
//!   repeated hour, so its real interval stays the same.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, LocalResult, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// The time zone of a recurring job that names none.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// Why a cron expression or time zone was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The expression does not parse.
    #[error("invalid cron expression {expression:?}: {reason}")]
    Cron {
        /// The expression as given.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The expression parses but no date ever matches it (`0 0 30 2 *`).
    #[error("cron expression {0:?} never fires: no date matches it")]
    NeverFires(String),
    /// The time zone is not an IANA name.
    #[error("unknown time zone {0:?}: expected an IANA name such as \"UTC\" or \"Europe/Berlin\"")]
    TimeZone(String),
}

/// A parsed cron expression and the time zone its wall-clock times are in.
#[derive(Clone)]
pub struct CronSchedule {
    expression: String,
    time_zone: Tz,
    cron: Cron,
    fixed_time: bool,
}

impl CronSchedule {
    /// Parses `expression` (5 fields: minute, hour, day of month, month,
    /// day of week; or 6 with seconds first) in the IANA `time_zone`.
    ///
    /// # Errors
    /// [`ScheduleError::Cron`] for an expression that does not parse or has
    /// another number of fields, [`ScheduleError::NeverFires`] for one that
    /// no date matches, [`ScheduleError::TimeZone`] for an unknown zone.
    pub fn parse(expression: &str, time_zone: &str) -> Result<Self, ScheduleError> {
        let time_zone =
            Tz::from_str(time_zone).map_err(|_| ScheduleError::TimeZone(time_zone.to_owned()))?;
        let fields = expression.split_whitespace().count();
        if !expression.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(ScheduleError::Cron {
                expression: expression.to_owned(),
                reason: format!(
                    "it has {fields} fields; expected 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
                ),
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|error| ScheduleError::Cron {
                expression: expression.to_owned(),
                reason: error.to_string(),
            })?;
        let fixed_time = is_fixed_time(&cron.pattern.to_string());
        let schedule = CronSchedule {
            expression: expression.to_owned(),
            time_zone,
            cron,
            fixed_time,
        };
        let reference = DateTime::<Utc>::UNIX_EPOCH;
        if schedule.next_after(reference).is_none() {
            return Err(ScheduleError::NeverFires(expression.to_owned()));
        }
        Ok(schedule)
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The IANA name of the time zone.
    pub fn time_zone(&self) -> &str {
        self.time_zone.name()
    }

    /// The first tick strictly after `after` (UTC, whole seconds), by the
    /// daylight-saving rules of the module docs; `None` when no tick comes
    /// before the year 5000. (The time-zone database lists daylight saving
    /// up to 2099; later years keep the last standard offset.)
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = whole_seconds(after);
        let mut offset = self.offset_at(from);
        // Each turn returns, or passes one offset change, or passes one
        // repeated wall-clock time of a fixed-time expression.
        for _ in 0..10_000 {
            let candidate = self
                .cron
                .find_next_occurrence(&from.with_timezone(&offset), false)
                .ok()?
                .with_timezone(&Utc);
            let Some(change) = self.first_change(from, candidate, offset) else {
                if self.fixed_time && self.is_second_pass(candidate) {
                    from = candidate;
                    continue;
                }
                return Some(candidate);
            };
            // The candidate was read with the offset before `change`; from
            // `change` on, the wall clock reads with another.
            let new_offset = self.offset_at(change);
            let jump = new_offset.local_minus_utc() - offset.local_minus_utc();
            if self.fixed_time && jump > 0 {
                // Spring forward: wall-clock times in [change + old offset,
                // change + new offset) never happen. A fixed time among
                // them fires when the clock has jumped.
                if candidate < change + chrono::Duration::seconds(i64::from(jump)) {
                    return Some(change);
                }
            }
            from = change - chrono::Duration::seconds(1);
            offset = new_offset;
        }
        None
    }

    /// The offset from UTC in force at `at`.
    fn offset_at(&self, at: DateTime<Utc>) -> FixedOffset {
        self.time_zone
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
    }

    /// The first whole second in `(from, to]` whose offset is not
    /// `offset`. Looks in steps of six hours (no zone changes its offset
    /// twice within six hours), then halves the step that holds the change.
    fn first_change(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        offset: FixedOffset,
    ) -> Option<DateTime<Utc>> {
        let second = chrono::Duration::seconds(1);
        let mut low = from + second;
        if low > to {
            return None;
        }
        if self.offset_at(low) != offset {
            return Some(low);
        }
        // Invariant: `low` has `offset`.
        while low < to {
            let high = (low + chrono::Duration::hours(6)).min(to);
            if self.offset_at(high) != offset {
                let mut high = high;
                while high - low > second {
                    let middle = low + (high - low) / 2;
                    let middle = whole_seconds(middle);
                    if self.offset_at(middle) != offset {
                        high = middle;
                    } else {
                        low = middle;
                    }
                }
                return Some(high);
            }
            low = high;
        }
        None
    }

    /// Whether `at` is the second of two instants with the same wall-clock
    /// time (the repeated hour of autumn).
    fn is_second_pass(&self, at: DateTime<Utc>) -> bool {
        let wall = at.with_timezone(&self.time_zone).naive_local();
        match self.time_zone.from_local_datetime(&wall) {
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc) != at,
            _ => false,
        }
    }
}

/// Whether the second, minute and hour fields of `pattern` (as croner
/// normalizes it: 5 fields, or 6 with seconds) name fixed values only (one
/// value or a list), with no `*`, step or range: Cronos' "non-interval"
/// expressions, which fire once a day per listed time.
fn is_fixed_time(pattern: &str) -> bool {
    let fields: Vec<&str> = pattern.split_whitespace().collect();
    let time_fields = if fields.len() >= 6 { 3 } else { 2 };
    fields
        .iter()
        .take(time_fields)
        .all(|field| !field.contains(['*', '/', '-', '?']))
}

/// `at` without its fraction of a second: ticks fall on whole seconds.
fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("expression", &self.expression)
            .field("time_zone", &self.time_zone.name())
            .finish()
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.time_zone == other.time_zone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    /// The first `n` ticks after `after`, as wall-clock times with their
    /// offsets in the schedule's zone.
    fn ticks(expression: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
        let schedule = CronSchedule::parse(expression, zone).unwrap();
        let mut at = utc(after);
        let mut out = Vec::new();
        for _ in 0..n {
            let next = schedule.next_after(at).unwrap();
            assert!(next > at, "{next} is not after {at}");
            out.push(
                next.with_timezone(&schedule.time_zone)
                    .format("%m-%d %H:%M:%S%:z")
                    .to_string(),
            );
            at = next;
        }
        out
    }

    #[test]
    fn five_and_six_fields_and_nicknames() {
        assert_eq!(
            ticks("*/20 * * * *", "UTC", "2026-01-01T00:00:00Z", 2),
            ["01-01 00:20:00+00:00", "01-01 00:40:00+00:00"]
        );
        assert_eq!(
            ticks("*/20 * * * * *", "UTC", "2026-01-01T00:00:00.5Z", 2),
            ["01-01 00:00:20+00:00", "01-01 00:00:40+00:00"]
        );
        assert_eq!(
            ticks("@daily", "UTC", "2026-01-01T10:00:00Z", 1),
            ["01-02 00:00:00+00:00"]
        );
    }

    #[test]
    fn refuses_what_would_not_run() {
        for (expression, zone, expected) in [
            ("61 * * * *", "UTC", "invalid cron expression"),
            ("* * *", "UTC", "it has 3 fields"),
            ("0 0 0 1 1 * 2030", "UTC", "it has 7 fields"),
            ("0 0 30 2 *", "UTC", "never fires"),
            ("0 * * * *", "Mars/Olympus", "unknown time zone"),
        ] {
            let error = CronSchedule::parse(expression, zone).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{expression}: {error}"
            );
        }
    }

    #[test]
    fn time_zone_moves_the_wall_clock() {
        assert_eq!(
            ticks("0 8 * * *", "Asia/Tokyo", "2026-05-31T20:00:00Z", 1),
            ["06-01 08:00:00+09:00"]
        );
        let next = CronSchedule::parse("0 8 * * *", "Asia/Tokyo")
            .unwrap()
            .next_after(utc("2026-05-31T20:00:00Z"))
            .unwrap();
        assert_eq!(next, utc("2026-05-31T23:00:00Z"));
    }

    // Europe/Berlin, 2026: clocks jump 02:00 -> 03:00 on 29 March and fall
    // back 03:00 -> 02:00 on 25 October.

    #[test]
    fn spring_forward_fixed_time_fires_after_the_jump_once() {
        assert_eq!(
            ticks("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 3),
            [
                "03-28 02:30:00+01:00",
                "03-29 03:00:00+02:00",
                "03-30 02:30:00+02:00"
            ]
        );
        // Two fixed times in the skipped hour still fire once that day.
        assert_eq!(
            ticks(
                "0 15,45 2 * * *",
                "Europe/Berlin",
                "2026-03-28T12:00:00Z",
                2
            )[0],
            "03-29 03:00:00+02:00"
        );
    }

    #[test]
    fn spring_forward_interval_skips_the_missing_hour() {
        assert_eq!(
            ticks("*/30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 4),
            [
                "03-29 01:30:00+01:00",
                "03-29 03:00:00+02:00",
                "03-29 03:30:00+02:00",
                "03-29 04:00:00+02:00"
            ]
        );
    }

    #[test]
    fn fall_back_fixed_time_fires_once() {
        assert_eq!(
            ticks("30 2 * * *", "Europe/Berlin", "2026-10-23T12:00:00Z", 3),
            [
                "10-24 02:30:00+02:00",
                "10-25 02:30:00+02:00",
                "10-26 02:30:00+01:00"
            ]
        );
        // Asked from inside the repeated hour's second pass, the next run
        // is the next day's, never the earlier first pass.
        assert_eq!(
            ticks("45 2 * * *", "Europe/Berlin", "2026-10-25T01:30:00Z", 1),
            ["10-26 02:45:00+01:00"]
        );
    }

    #[test]
    fn fall_back_interval_fires_in_both_passes() {
        assert_eq!(
            ticks("*/30 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 6),
            [
                "10-25 02:00:00+02:00",
                "10-25 02:30:00+02:00",
                "10-25 02:00:00+01:00",
                "10-25 02:30:00+01:00",
                "10-25 03:00:00+01:00",
                "10-25 03:30:00+01:00"
            ]
        );
        // Every second: the real interval stays one second across the change.
        let schedule = CronSchedule::parse("* * * * * *", "Europe/Berlin").unwrap();
        let mut at = utc("2026-10-25T00:59:58Z");
        for _ in 0..4 {
            let next = schedule.next_after(at).unwrap();
            assert_eq!(next - at, chrono::Duration::seconds(1));
            at = next;
        }
    }

    #[test]
    fn a_yearly_time_in_the_repeated_hour_fires_its_first_pass() {
        assert_eq!(
            ticks("0 30 2 25 10 *", "Europe/Berlin", "2026-01-01T00:00:00Z", 1),
            ["10-25 02:30:00+02:00"]
        );
    }
}
