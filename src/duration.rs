//! Durations with a unit: `250ms`, `1s`, `1.5s`, `2m`, `1h`, and the one
//! rounding rule of every figure printed. A leaf module (public as
//! `walguard::settings::…`): the settings and the error type both read it.

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

/// Decimals of every figure walguard prints in a log line, an event or a
/// JSON field: 3. The one rounding rule: a duration in milliseconds is
/// kept to the microsecond ([`duration_ms`]), one in seconds to the
/// millisecond ([`duration_s`]), any other figure (a rate, a percentage,
/// a mean) is rounded to 3 decimals ([`figure`]). Free of the float noise
/// of `as_secs_f64() * 1000.0` (`430557.5907375007`).
pub const FIGURE_DECIMALS: i32 = 3;

/// Milliseconds for a log line, an event or a JSON field, to the
/// microsecond (3 decimals, [`FIGURE_DECIMALS`]): the figure of every
/// `_ms` field walguard prints.
#[must_use]
pub fn duration_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// Seconds for a log line, an event or a JSON field, to the millisecond
/// (3 decimals, [`FIGURE_DECIMALS`]): the figure of every `_s` field
/// walguard prints.
#[must_use]
pub fn duration_s(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// Any other figure for a log line, an event or a JSON field (a rate, a
/// percentage, a mean), rounded to 3 decimals ([`FIGURE_DECIMALS`]).
/// Not finite stays as it is.
#[must_use]
pub fn figure(value: f64) -> f64 {
    let scale = 10f64.powi(FIGURE_DECIMALS);
    let rounded = (value * scale).round() / scale;
    if rounded.is_finite() { rounded } else { value }
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

pub(crate) mod duration_serde {
    use std::fmt;

    use serde::{Deserializer, Serializer};

    use super::{Duration, format_duration, parse_duration};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
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

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bench --log-format json` printed `430557.5907375007`: every figure
    /// keeps 3 decimals.
    #[test]
    fn every_figure_keeps_three_decimals() {
        // As printed: the text is what a log line or a JSON field shows.
        assert_eq!(
            super::figure(430_557.590_737_500_7).to_string(),
            "430557.591"
        );
        assert_eq!(super::figure(2.0).to_string(), "2");
        assert!(super::figure(f64::NAN).is_nan());
        assert_eq!(
            super::duration_ms(Duration::from_nanos(1_234_567)).to_string(),
            "1.234"
        );
        assert_eq!(
            super::duration_s(Duration::from_micros(1_234_567)).to_string(),
            "1.234"
        );
    }

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
}
