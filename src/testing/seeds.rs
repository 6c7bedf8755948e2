//! Seeds and sizes of seeded tests, from the environment.

use crate::Error;

/// A seed or a size for a seeded test: the environment variable `var` when
/// it is set (decimal, or hexadecimal with a `0x` prefix, `_` allowed as a
/// separator), else `default`.
///
/// A seeded test reads its first seed with this, seeds its random generator
/// from it (e.g. `StdRng::seed_from_u64`), and prints the seed in every
/// failure, so that setting the variable replays the failing run.
///
/// ```
/// use walguard::testing::env_u64;
///
/// // Unset: the default.
/// assert_eq!(env_u64("WALGUARD_DOC_EXAMPLE_UNSET_SEED", 0x5EED)?, 0x5EED);
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Error::InvalidSetting`] naming the variable when it is set but is not
/// a number: a mistyped seed must not silently replay the default one.
pub fn env_u64(var: &str, default: u64) -> Result<u64, Error> {
    match std::env::var(var) {
        Ok(text) => parse_u64(&text).ok_or_else(|| Error::InvalidSetting {
            key: var.to_owned(),
            value: text,
            reason: "not a u64 (decimal, or hexadecimal with 0x)".to_owned(),
        }),
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(text)) => Err(Error::InvalidSetting {
            key: var.to_owned(),
            value: text.to_string_lossy().into_owned(),
            reason: "not unicode".to_owned(),
        }),
    }
}

/// `text` as a u64: decimal, or hexadecimal after `0x`; `_` separators and
/// surrounding whitespace are allowed.
fn parse_u64(text: &str) -> Option<u64> {
    let digits: String = text.trim().chars().filter(|c| *c != '_').collect();
    match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => digits.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_u64;

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_u64("104375299407872"), Some(0x5EED_C4A5_0000));
        assert_eq!(parse_u64(" 0x5EED_C4A5_0000\n"), Some(0x5EED_C4A5_0000));
        assert_eq!(parse_u64("seed"), None);
        assert_eq!(parse_u64(""), None);
    }
}
