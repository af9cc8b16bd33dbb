//! Durations are written `500ms`, `2s`, `1m`; a bare number means seconds.

use std::time::Duration;

/// Longer than any run redlab makes; beyond it an `Instant` could overflow.
const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = if let Ok(secs) = s.parse::<f64>() {
        Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{s}' is not a duration: it must be zero or more seconds"))?
    } else {
        humantime::parse_duration(s)
            .map_err(|e| format!("'{s}' is not a duration ({e}); write e.g. 500ms, 2s or 1m"))?
    };
    if d > MAX {
        return Err(format!("'{s}' is too long: at most 7 days"));
    }
    Ok(d)
}

/// A duration that must not be zero (a timeout, a polling interval).
pub fn parse_period(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(1) {
        return Err(format!("'{s}' is too short: at least 1ms"));
    }
    Ok(d)
}

/// Milliseconds with three decimals, for reports.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_bare_seconds() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("0.25").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("500ms"));
        assert!(parse_duration("1e20").is_err() && parse_duration("8d").is_err());
        assert!(parse_period("0").is_err() && parse_period("0ms").is_err());
        assert_eq!(parse_period("1ms").unwrap(), Duration::from_millis(1));
    }
}
