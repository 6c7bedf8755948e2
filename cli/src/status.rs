//! The live status line on a terminal, and the log writer that shares
//! stderr with it.
//!
//! On a terminal the line is redrawn in place: carriage return, the line,
//! erase to the end. Auto-wrap is switched off while it is drawn, so a
//! terminal narrower than the line cuts it instead of scrolling. A log event
//! first erases the line, then prints; the next redraw brings it back. One
//! mutex orders the two, so their bytes never interleave.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;
use walguard_actors::messages::Status;

/// Erase the whole current line and go back to its start.
const ERASE_LINE: &[u8] = b"\r\x1b[2K";
/// Switch terminal auto-wrap off and back on (DECAWM).
const WRAP_OFF: &[u8] = b"\x1b[?7l";
const WRAP_ON: &[u8] = b"\x1b[?7h";

/// Whether a status line is on screen now.
static LINE_VISIBLE: Mutex<bool> = Mutex::new(false);

fn lock() -> MutexGuard<'static, bool> {
    LINE_VISIBLE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Draws `text` as the status line, replacing the previous one.
pub(crate) fn draw(text: &str) {
    let mut visible = lock();
    let mut err = io::stderr().lock();
    // A failed write to a terminal is not worth stopping the session for.
    let _ = err
        .write_all(WRAP_OFF)
        .and_then(|()| err.write_all(ERASE_LINE))
        .and_then(|()| err.write_all(text.as_bytes()))
        .and_then(|()| err.write_all(WRAP_ON))
        .and_then(|()| err.flush());
    *visible = true;
}

/// Erases the status line, if one is shown.
pub(crate) fn clear() {
    let mut visible = lock();
    if *visible {
        let _ = io::stderr().write_all(ERASE_LINE);
        *visible = false;
    }
}

/// The `tracing-subscriber` writer: stderr, after erasing the status line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogWriter;

/// One event's write, holding the line lock until it is done.
pub(crate) struct LogGuard {
    visible: MutexGuard<'static, bool>,
}

impl Write for LogGuard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut err = io::stderr().lock();
        if *self.visible {
            err.write_all(ERASE_LINE)?;
            *self.visible = false;
        }
        err.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogGuard;

    fn make_writer(&'a self) -> Self::Writer {
        LogGuard { visible: lock() }
    }
}

/// What the session knows at one redraw, beside the subsystem's status.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    /// Time since the session started.
    pub(crate) elapsed: Duration,
    /// Writes per second over the last redraw period.
    pub(crate) writes_per_s: f64,
}

/// The status line: time, writes/s, WAL size, checkpoints so far, the last
/// checkpoint's outcome and time, the window's p95, the exposure.
pub(crate) fn render(progress: Progress, status: &Status) -> String {
    let report = &status.report;
    let mut line = format!(
        "{:>5.0}s  {:>6.0} writes/s  WAL {}  checkpoints {}",
        progress.elapsed.as_secs_f64(),
        progress.writes_per_s,
        status.wal_bytes.map_or_else(|| "-".to_owned(), bytes),
        report.counts.total,
    );
    if let Some(last) = &report.last_checkpoint {
        let _ = write!(
            line,
            " (last {} {})",
            last.outcome().as_str(),
            millis(last.elapsed())
        );
    }
    if report.window.n() > 0 {
        let _ = write!(line, "  p95 {}", millis(report.window.p95()));
    }
    if let Some(exposure) = status.exposure {
        let _ = write!(line, "  {}", exposed(exposure.commits(), exposure.age()));
    }
    if status.starving {
        line.push_str("  STARVED: a reader pins the WAL?");
    }
    if let Some(r) = &status.replicated {
        line.push_str("  ");
        line.push_str(&replicated(r));
    }
    line
}

/// What the replica holds, for the status line: `replicated 120/130
/// commits, 240 writes (lag 0.4s)`.
pub(crate) fn replicated(r: &walguard::replication::Replicated) -> String {
    format!(
        "replicated {}/{} commits, {} writes (lag {:.1}s{})",
        r.commits,
        r.local_commits,
        r.writes,
        r.lag.as_secs_f64(),
        if r.healthy { "" } else { ", REPLICA DOWN" }
    )
}

/// The exposure in words: `exposed 230 commits (oldest 1.1s)`, a count and
/// an age, not a rate.
pub(crate) fn exposed(commits: u64, oldest: Duration) -> String {
    if commits == 0 {
        "exposed 0 commits".to_owned()
    } else {
        format!(
            "exposed {commits} commits (oldest {:.1}s)",
            oldest.as_secs_f64()
        )
    }
}

/// Milliseconds for a JSON or log field: the core's one rounding rule
/// ([`walguard::settings::duration_ms`]), so the summary object and the log
/// lines agree.
pub(crate) use walguard::settings::duration_ms as ms;

/// Any other figure for a JSON or log field (a rate, a percentage, a mean,
/// microseconds): the same rule, to 3 decimals
/// ([`walguard::settings::figure`]).
pub(crate) use walguard::settings::figure;

/// Seconds for a JSON or log field, to the millisecond: the core's one
/// rounding rule ([`walguard::settings::duration_s`]).
pub(crate) use walguard::settings::duration_s as secs;

/// Bytes as B, KiB or MiB with one decimal.
pub(crate) fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let n = n as f64;
    if n < KIB {
        format!("{n:.0} B")
    } else if n < KIB * KIB {
        format!("{:.1} KiB", n / KIB)
    } else {
        format!("{:.1} MiB", n / KIB / KIB)
    }
}

/// A duration in ms, with precision that suits its size.
pub(crate) fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else {
        format!("{ms:.0}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
        assert_eq!(millis(Duration::from_micros(1234)), "1.23ms");
        assert_eq!(millis(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn the_exposure_reads_as_a_count_and_an_age() {
        assert_eq!(
            exposed(230, Duration::from_millis(1140)),
            "exposed 230 commits (oldest 1.1s)"
        );
        assert_eq!(exposed(0, Duration::ZERO), "exposed 0 commits");
    }

    #[test]
    fn the_status_line_says_what_the_replica_holds() {
        let mut r = walguard::replication::Replicated::default();
        r.commits = 120;
        r.writes = 240;
        r.local_commits = 130;
        r.lag = Duration::from_millis(400);
        r.healthy = true;
        assert_eq!(
            replicated(&r),
            "replicated 120/130 commits, 240 writes (lag 0.4s)"
        );
        r.healthy = false;
        assert!(replicated(&r).ends_with(", REPLICA DOWN)"));
    }

    #[test]
    fn json_milliseconds_have_three_decimals() {
        // As JSON prints them: the nearest double to the 3-decimal value.
        assert_eq!(
            ms(Duration::from_nanos(6_131_858_999)).to_string(),
            "6131.858"
        );
        assert_eq!(ms(Duration::from_nanos(6_131_859)).to_string(), "6.131");
        assert_eq!(
            secs(Duration::from_nanos(1_234_567_890)).to_string(),
            "1.234"
        );
    }
}
