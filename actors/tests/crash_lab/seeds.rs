//! Seeds and campaign sizes, from the environment
//! ([`walguard::testing::env_u64`]).

/// The first seed when `WALGUARD_CAMPAIGN_SEED` is not set.
pub(crate) const DEFAULT_SEED: u64 = 0x5EED_C4A5_0000;

/// The first seed of a campaign: `WALGUARD_CAMPAIGN_SEED`, or
/// [`DEFAULT_SEED`].
pub(crate) fn first() -> u64 {
    count("WALGUARD_CAMPAIGN_SEED", DEFAULT_SEED)
}

/// A count from the environment variable `var`, or `default`; a value that
/// is not a number stops the test.
pub(crate) fn count(var: &str, default: u64) -> u64 {
    walguard::testing::env_u64(var, default).unwrap_or_else(|e| panic!("{e}"))
}

/// The command that replays `seed` alone in the on-demand test `test`, in
/// the profile of this build (`--release` when it is one: a seed's
/// interleavings differ between the two).
pub(crate) fn replay(seed: u64, test: &str) -> String {
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    format!(
        "WALGUARD_CAMPAIGN_SEED={seed} WALGUARD_CAMPAIGN_ITERATIONS=1 WALGUARD_CAMPAIGN_KILLS=1 \
         cargo test{profile} -p walguard-actors --test crash_lab -- --ignored --exact {test} \
         --nocapture"
    )
}
