//! Durations written in attributes: `"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`.

use std::time::Duration;

/// Parses a whole number followed by a unit: `ms`, `s`, `m`, `h` or `d`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
        format!("`{text}` has no unit: write it like \"30s\" (units: ms, s, m, h, d)")
    })?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| {
        format!("`{text}` does not start with a whole number: write it like \"30s\"")
    })?;
    let millis_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: expected one of ms, s, m, h, d"
            ));
        }
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86400)));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(parse("30").unwrap_err().contains("no unit"));
        assert!(parse("s").unwrap_err().contains("whole number"));
        assert!(parse("3 weeks").unwrap_err().contains("unknown unit"));
        assert!(parse("99999999999999999999d").is_err());
    }
}
