//! Seeds and campaign sizes, from the environment.

/// The first seed when `WALGUARD_CAMPAIGN_SEED` is not set.
pub(crate) const DEFAULT_SEED: u64 = 0x5EED_C4A5_0000;

/// The first seed of a campaign: `WALGUARD_CAMPAIGN_SEED`, or
/// [`DEFAULT_SEED`].
pub(crate) fn first() -> u64 {
    std::env::var("WALGUARD_CAMPAIGN_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

/// A count from the environment variable `var`, or `default`.
pub(crate) fn count(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// The command that replays `seed` alone in the on-demand test `test`.
pub(crate) fn replay(seed: u64, test: &str) -> String {
    format!(
        "WALGUARD_CAMPAIGN_SEED={seed} WALGUARD_CAMPAIGN_ITERATIONS=1 WALGUARD_CAMPAIGN_KILLS=1 \
         cargo test -p walguard-actors --test crash_lab -- --ignored --exact {test}"
    )
}
