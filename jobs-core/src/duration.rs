//! Durations as people read and write them: `"500ms"`, `"30s"`, `"5m"`,
//! `"2h"`, `"1d"`, the syntax of `#[job(timeout = "...")]` and
//! `backoff`, used again in the reasons recorded ("timed out after 30s").

use std::time::Duration;

/// `duration` in the largest unit of `ms`, `s`, `m`, `h`, `d` that holds
/// it whole: `"30s"`, `"90s"`, `"5m"`, `"1500ms"`. Below a millisecond
/// it is rounded down (`"0ms"`). The text parses back to the same
/// duration where `#[job]` takes one.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(jobs_core::duration_text(Duration::from_secs(30)), "30s");
/// assert_eq!(jobs_core::duration_text(Duration::from_secs(7200)), "2h");
/// assert_eq!(jobs_core::duration_text(Duration::from_millis(1500)), "1500ms");
/// ```
pub fn duration_text(duration: Duration) -> String {
    const UNITS: [(u128, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    let millis = duration.as_millis();
    for (per_unit, unit) in UNITS {
        if millis >= per_unit && millis.is_multiple_of(per_unit) {
            return format!("{}{unit}", millis / per_unit);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_whole_unit() {
        let cases = [
            (Duration::ZERO, "0ms"),
            (Duration::from_micros(999), "0ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(5400), "90m"),
            (Duration::from_secs(86_400 * 3), "3d"),
        ];
        for (duration, text) in cases {
            assert_eq!(duration_text(duration), text);
        }
    }
}
