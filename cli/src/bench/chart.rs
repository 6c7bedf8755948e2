//! The SVG chart of `walguard bench --chart`: the charted configuration or
//! open-loop run, drawn by [`walguard_bench::chart`].

use std::path::Path;

use walguard::Settings;

use super::report::{loop_name, sync_name, thousands};
use super::{OpenRow, Row};
use crate::error::CliError;

/// The chart of the charted open-loop run.
pub(super) fn draw_open_chart(
    path: &Path,
    settings: &Settings,
    open: &[OpenRow],
) -> Result<(), CliError> {
    let Some(row) = open.iter().find(|r| r.chart) else {
        return Ok(());
    };
    let Some(timeline) = &row.run.timeline else {
        return Ok(());
    };
    let title = format!(
        "walguard bench: open loop at {} % of capacity ({} writes/s), synchronous={}, checkpoint loop {}",
        row.percent,
        thousands(row.run.rate.round() as u64),
        sync_name(settings),
        loop_name(settings),
    );
    walguard_bench::chart::write_svg_from(
        path,
        &title,
        timeline,
        &row.marks,
        walguard_bench::chart::LatencyFrom::DueTime,
    )?;
    eprintln!("walguard bench: chart written to {}", path.display());
    Ok(())
}

/// The chart of the charted configuration.
pub(super) fn draw_chart(path: &Path, settings: &Settings, rows: &[Row]) -> Result<(), CliError> {
    let Some(row) = rows.iter().find(|r| r.config.chart) else {
        return Ok(());
    };
    let Some(timeline) = &row.run.timeline else {
        return Ok(());
    };
    let title = format!(
        "walguard bench: write latency, {}, synchronous={}, checkpoint loop {}, {} writes/s",
        row.config.label(),
        sync_name(settings),
        loop_name(settings),
        thousands(row.run.throughput().round() as u64),
    );
    walguard_bench::chart::write_svg(path, &title, timeline, &row.marks)?;
    eprintln!("walguard bench: chart written to {}", path.display());
    Ok(())
}
