//! The progress bar of `walguard bench` on a terminal (one line per run
//! otherwise).

use std::time::{Duration, Instant};

use walguard_bench::{Progress, Until};

use super::report::thousands;
use crate::status;

/// Redraw period of the progress bar on a terminal.
pub(super) const BAR_REDRAW: Duration = Duration::from_millis(100);

/// Width of the bar itself, in characters.
pub(super) const BAR_WIDTH: usize = 24;

/// The progress display of one run: a bar redrawn in place on a terminal,
/// else one line when the run starts.
pub(super) struct Bar {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Bar {
    pub(super) fn start(
        label: String,
        until: Until,
        progress: Progress,
        on_terminal: bool,
    ) -> Self {
        if !on_terminal {
            eprintln!("walguard bench: {label}: running");
            return Self { task: None };
        }
        let started = Instant::now();
        let task = actix::spawn(async move {
            let mut tick = tokio::time::interval(BAR_REDRAW);
            loop {
                tick.tick().await;
                status::draw(&bar_line(
                    &label,
                    until,
                    progress.writes(),
                    started.elapsed(),
                ));
            }
        });
        Self { task: Some(task) }
    }

    pub(super) fn stop(self) {
        if let Some(task) = self.task {
            task.abort();
            status::clear();
        }
    }
}

/// `label  [#####.....]  45%  45,000/100,000 writes  62,300 writes/s`.
pub(super) fn bar_line(label: &str, until: Until, writes: u64, elapsed: Duration) -> String {
    let (done, of) = match until {
        Until::Writes(n) => (
            writes as f64 / n as f64,
            format!("{}/{} writes", thousands(writes), thousands(n)),
        ),
        Until::Deadline(d) => (
            elapsed.as_secs_f64() / d.as_secs_f64(),
            format!(
                "{:.1}/{:.1} s, {} writes",
                elapsed.as_secs_f64(),
                d.as_secs_f64(),
                thousands(writes)
            ),
        ),
    };
    let done = done.clamp(0.0, 1.0);
    let filled = (done * BAR_WIDTH as f64).round() as usize;
    let rate = writes as f64 / elapsed.as_secs_f64().max(1e-3);
    format!(
        "{label}  [{}{}] {:>3.0}%  {of}  {} writes/s",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        done * 100.0,
        thousands(rate.round() as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn the_bar_fills_with_the_work() {
        let line = bar_line("x", Until::Writes(100), 50, Duration::from_secs(1));
        assert!(
            line.contains(" 50%") && line.contains("50/100 writes"),
            "{line}"
        );
        assert!(
            line.contains(&format!("[{}{}]", "#".repeat(12), ".".repeat(12))),
            "{line}"
        );
    }
}
