//! Durations with a unit: `250ms`, `1s`, `1.5s`, `2m`, `1h`.

use std::time::Duration;

/// Parses a duration with a unit: `250ms`, `1s`, `1.5s`, `2m`, `1h`.
///
/// # Errors
///
/// A message naming the text when it has no unit, an unknown unit, or a
/// number that is negative or not finite.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("invalid duration {text:?}: must not be negative"));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("invalid duration {text:?}: missing unit (ms, s, m or h)"))?;
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected a number before the unit"))?;
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {other:?}, expected ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("invalid duration {text:?}: out of range"))
}

/// Milliseconds for a log line, an event or a JSON field, to the
/// microsecond (3 decimals): the one rounding rule of every `_ms` figure
/// walguard prints. Microsecond resolution is enough for a log line and
/// free of the float noise of `as_secs_f64() * 1000.0`.
#[must_use]
pub fn duration_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// Any other figure for a log line, an event or a JSON field (a rate, a
/// percentage, a mean, microseconds from a histogram), to 3 decimals: the
/// rule of [`duration_ms`] for a number that is not a duration, so a
/// throughput of `430557.5907375007` writes/s prints as `430557.59`.
/// Truncated toward zero, as [`duration_ms`] truncates to the microsecond;
/// a figure that is not finite is returned as it is.
#[must_use]
pub fn figure(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).trunc() / 1000.0
    } else {
        x
    }
}

/// Formats a duration the way [`parse_duration`] reads it back.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}s", d.as_secs_f64())
    } else if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs())
    }
}

pub(in crate::settings) mod duration_serde {
    use std::fmt;

    use serde::{Deserializer, Serializer};

    use super::{Duration, format_duration, parse_duration};

    pub(in crate::settings) fn serialize<S: Serializer>(
        d: &Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Accepts text with a unit; a bare number gets a hint to add one, and
    /// any other type says what was expected (an untagged enum would only
    /// say "data did not match any variant").
    struct DurationVisitor;

    impl serde::de::Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration with a unit, e.g. \"60s\" or \"250ms\"")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
            parse_duration(text).map_err(E::custom)
        }

        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "invalid duration {n}: missing unit, write e.g. \"{n}s\" or \"{n}ms\""
            )))
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Duration, E> {
            self.visit_f64(n as f64)
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
            self.visit_f64(n as f64)
        }
    }

    pub(in crate::settings) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("60").unwrap_err().contains("missing unit"));
        assert!(
            parse_duration("5 fortnights")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            parse_duration("-1s")
                .unwrap_err()
                .contains("must not be negative")
        );
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn durations_round_trip() {
        for d in [
            Duration::from_secs(60),
            Duration::from_millis(250),
            Duration::from_micros(1500),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn figures_have_three_decimals() {
        assert_eq!(figure(430_557.590_737_500_7).to_string(), "430557.59");
        assert_eq!(figure(59.6449).to_string(), "59.644");
        assert_eq!(figure(-1.23456).to_string(), "-1.234");
        assert_eq!(figure(7.0).to_string(), "7");
        assert!(figure(f64::NAN).is_nan());
    }
}
