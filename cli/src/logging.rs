//! The log subscriber: text or JSON lines on stderr, filtered by
//! `--log-level`, `RUST_LOG` or `log.level`, coloured only as `--color` and
//! `NO_COLOR` allow.

use tracing_subscriber::layer::{Identity, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};
use walguard::settings::LogFormat;

use crate::cli::{ColorArg, Global};
use crate::error::CliError;
use crate::status;

/// Levels a bare `log.level` directive may name.
const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// Builds the filter: `level` when it comes from `--log-level` (`flag`),
/// else `RUST_LOG` when set and not empty, else `level` (the `log.level`
/// setting, or the subcommand's default).
///
/// With `status_line` (a live status line on a terminal) and the default
/// level `info`, the per-checkpoint `info` lines are left out: the status
/// line shows them, and a screen scrolling twice a second hides it.
/// Warnings (failed checkpoints, starvation) still print. `--log-level info`
/// or `RUST_LOG=info` brings the lines back.
///
/// `log.level` is checked more strictly than `RUST_LOG`: a bare word must be
/// a level. In `tracing`'s syntax a bare word is a target name, so a typo
/// such as `inof` would otherwise silence every walguard event.
pub(crate) fn filter(level: &str, flag: bool, status_line: bool) -> Result<EnvFilter, CliError> {
    if !flag
        && let Ok(env) = std::env::var(EnvFilter::DEFAULT_ENV)
        && !env.trim().is_empty()
    {
        return EnvFilter::try_new(&env).map_err(|e| CliError::LogFilter {
            key: "RUST_LOG",
            value: env.clone(),
            reason: e.to_string(),
        });
    }
    let invalid = |reason: String| CliError::LogFilter {
        key: if flag { "--log-level" } else { "log.level" },
        value: level.to_owned(),
        reason,
    };
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains(['=', '['])
            && !LEVELS.contains(&directive.to_ascii_lowercase().as_str())
        {
            return Err(invalid(format!(
                "{directive:?} is not a level: use one of {} or target=level",
                LEVELS.join(", ")
            )));
        }
    }
    let filter = EnvFilter::try_new(level).map_err(|e| invalid(e.to_string()))?;
    if status_line && !flag && level.trim().eq_ignore_ascii_case("info") {
        return Ok(filter.add_directive(
            CHECKPOINT_WARN_ONLY
                .parse()
                .map_err(|e: tracing_subscriber::filter::ParseError| invalid(e.to_string()))?,
        ));
    }
    Ok(filter)
}

/// The filter of a command that logs warnings only (`inspect`,
/// `checkpoint`, `bench`) unless `--log-level` or `RUST_LOG` says otherwise.
pub(crate) fn quiet_filter(global: &Global) -> Result<EnvFilter, CliError> {
    filter(
        global.log_level.as_deref().unwrap_or("warn"),
        global.log_level.is_some(),
        false,
    )
}

/// The directive that leaves per-checkpoint lines to the status line.
const CHECKPOINT_WARN_ONLY: &str = "walguard::checkpoint=warn";

/// Installs the global subscriber. Events go to stderr through
/// [`status::LogWriter`], which clears the live status line first.
///
/// JSON lines are flat: the event's fields sit at the top level beside
/// `timestamp`, `level`, `target` and `message`, with no span data, so that
/// `jq 'select(.target == "walguard::checkpoint") | .elapsed_ms'` works.
pub(crate) fn init(filter: EnvFilter, format: LogFormat, color: ColorArg) {
    init_with(filter, format, color, Identity::new());
}

/// [`init`], with one more layer beside the log lines (`walguard bench`
/// keeps the checkpoint events with it). `filter` applies to the log lines
/// only, so the extra layer sees what its own filter lets through.
pub(crate) fn init_with<L>(filter: EnvFilter, format: LogFormat, color: ColorArg, extra: L)
where
    L: Layer<Registry> + Send + Sync,
{
    let lines = tracing_subscriber::fmt::layer().with_writer(status::LogWriter);
    let registry = tracing_subscriber::registry().with(extra);
    // `try_init` fails only when a subscriber is already installed, which
    // the command never does twice; nothing to report then.
    let _ = match format {
        LogFormat::Json => registry
            .with(
                lines
                    .with_ansi(false)
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_filter(filter),
            )
            .try_init(),
        _ => registry
            .with(lines.with_ansi(color.enabled()).with_filter(filter))
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    // RUST_LOG is not read in these tests' assertions: `filter` prefers it,
    // so only run the `log.level` checks when it is unset.
    fn rust_log_unset() -> bool {
        std::env::var_os("RUST_LOG").is_none()
    }

    #[test]
    fn levels_and_target_directives_pass() {
        if !rust_log_unset() {
            return;
        }
        for ok in [
            "info",
            "WARN",
            "off",
            "info,walguard=debug",
            "walguard::checkpoint=trace",
        ] {
            assert!(filter(ok, false, false).is_ok(), "{ok}");
            assert!(filter(ok, false, true).is_ok(), "{ok}");
            assert!(filter(ok, true, false).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_bare_word_that_is_not_a_level_is_refused_naming_the_key() {
        if !rust_log_unset() {
            return;
        }
        let err = filter("inof", false, false).unwrap_err().to_string();
        assert!(err.contains("log.level") && err.contains("inof"), "{err}");
        let err = filter("inof", true, false).unwrap_err().to_string();
        assert!(err.contains("--log-level") && err.contains("inof"), "{err}");
    }
}
