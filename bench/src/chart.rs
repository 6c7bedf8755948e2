//! The chart: write latency over time, with the checkpoints marked, as an
//! SVG file (plotters' SVG backend, no fonts: the viewer renders the text).
//!
//! x is the time since the run started (of each write's reply); y is the
//! latency on a log scale, as three lines per [`Timeline`] bucket: p50,
//! p99 and max. Each checkpoint is a filled bar in a strip below the
//! latency lines, from its start to its end, coloured by reason
//! (`interval`, `size`, `shutdown`, `manual`), with a triangle on top so
//! that a short one still shows: marks that cannot be taken for grid
//! lines. Interval, shutdown and manual ones are labelled with their
//! reason and duration (size-triggered ones too when there are few). A
//! checkpoint that stalls the writers shows as a spike of p99/max right
//! above its bar.

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use crate::{BenchError, CheckpointMark, Timeline, TimelinePoint};

/// Width and height of the SVG, in pixels.
const SIZE_PX: (u32, u32) = (1400, 600);
/// The legend's column, right of the plot, in pixels.
const LEGEND_PX: u32 = 300;
/// Size-triggered checkpoints get a label only when there are at most this
/// many (beyond, the labels would hide the lines).
const MAX_SIZE_LABELS: usize = 12;

const P50: RGBColor = RGBColor(31, 119, 180);
const P99: RGBColor = RGBColor(214, 39, 40);
const MAX: RGBColor = RGBColor(150, 150, 150);

/// The colour of a checkpoint line and its label.
fn reason_colour(reason: &str) -> RGBColor {
    match reason {
        "interval" => RGBColor(44, 160, 44),
        "size" => RGBColor(148, 103, 189),
        "backfill" => RGBColor(255, 127, 14),
        "migration" => RGBColor(23, 190, 207),
        "shutdown" => RGBColor(0, 0, 0),
        _ => RGBColor(140, 86, 75),
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A latency label for the y axis: µs below 1 ms, else ms or s.
fn latency_label(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.0} ms", us / 1_000.0)
    } else {
        format!("{:.0} s", us / 1_000_000.0)
    }
}

/// Where a write's latency starts, for the y axis's title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LatencyFrom {
    /// A closed loop: from the submit.
    Submit,
    /// An open loop: from the time the write was due.
    DueTime,
}

/// Writes the chart of a closed loop's `timeline` with `marks` to `path`
/// (an SVG file). `title` goes on top, e.g. the configuration and the
/// machine.
///
/// # Errors
///
/// [`BenchError::Chart`] naming the path when the file cannot be written
/// or the timeline is empty.
pub fn write_svg(
    path: &Path,
    title: &str,
    timeline: &Timeline,
    marks: &[CheckpointMark],
) -> Result<(), BenchError> {
    write_svg_from(path, title, timeline, marks, LatencyFrom::Submit)
}

/// As [`write_svg`], saying on the y axis where latency starts.
///
/// # Errors
///
/// As [`write_svg`].
pub fn write_svg_from(
    path: &Path,
    title: &str,
    timeline: &Timeline,
    marks: &[CheckpointMark],
    from: LatencyFrom,
) -> Result<(), BenchError> {
    let fail = |reason: String| BenchError::Chart {
        path: path.to_path_buf(),
        reason,
    };
    let points = timeline.points();
    if points.is_empty() {
        return Err(fail("no write was answered: nothing to draw".to_owned()));
    }
    let bucket = timeline.bucket();
    let x_end = points
        .iter()
        .map(|p| p.at + bucket)
        .chain(marks.iter().map(|m| m.at + m.elapsed))
        .max()
        .unwrap_or(bucket)
        .as_secs_f64()
        * 1.02;
    let lowest = points
        .iter()
        .map(|p| micros(p.p50))
        .fold(f64::MAX, f64::min);
    let highest = points.iter().map(|p| micros(p.max)).fold(0.0, f64::max);
    // Whole decades around the data, plus an empty one at the bottom for
    // the checkpoint strip and its labels.
    let data_min = 10f64.powf(lowest.max(1.0).log10().floor());
    let y_min = data_min / 10.0;
    let y_max = 10f64.powf(highest.max(data_min * 10.0).log10().ceil());

    let root = SVGBackend::new(path, SIZE_PX).into_drawing_area();
    let draw = |e: &dyn std::fmt::Display| fail(e.to_string());
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let below_title = root
        .titled(title, ("sans-serif", 18))
        .map_err(|e| draw(&e))?;
    let (plot, legend) = below_title.split_horizontally(SIZE_PX.0 - LEGEND_PX);
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_end, (y_min..y_max).log_scale())
        .map_err(|e| draw(&e))?;
    let y_formatter = |us: &f64| latency_label(*us);
    chart
        .configure_mesh()
        .x_desc(format!(
            "time since start, s (writes placed by their reply time, {} ms buckets)",
            bucket.as_millis()
        ))
        .y_desc(match from {
            LatencyFrom::Submit => "write latency, submit to reply (log scale)",
            LatencyFrom::DueTime => "write latency, due time to reply (log scale)",
        })
        .y_label_formatter(&y_formatter)
        .x_label_formatter(&|s| format!("{s:.1}"))
        .light_line_style(RGBColor(235, 235, 235))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(|e| draw(&e))?;

    // The checkpoints first, so the latency lines are drawn over them.
    let mut entries =
        draw_marks(&mut chart, marks, (y_min, data_min), x_end).map_err(|e| draw(&e))?;
    entries.extend(draw_lines(&mut chart, timeline, data_min).map_err(|e| draw(&e))?);
    draw_legend(&legend, &entries).map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}

/// One legend entry: its text, its style, and whether it stands for a
/// checkpoint bar or a (latency) line.
struct Entry {
    text: String,
    style: ShapeStyle,
    bar: bool,
}

/// The legend, in its own column right of the plot.
fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    entries: &[Entry],
) -> Result<(), DrawError> {
    const LINE_PX: i32 = 22;
    const TOP_PX: i32 = 20;
    for (i, entry) in (0i32..).zip(entries) {
        let y = TOP_PX + i * LINE_PX;
        if entry.bar {
            area.draw(&Rectangle::new([(8, y - 5), (24, y + 5)], entry.style))?;
        } else {
            let bold = ShapeStyle {
                stroke_width: 3,
                ..entry.style
            };
            area.draw(&PathElement::new(vec![(6, y), (26, y)], bold))?;
        }
        area.draw(&Text::new(
            entry.text.clone(),
            (34, y - 7),
            ("sans-serif", 13).into_font().color(&BLACK),
        ))?;
    }
    Ok(())
}

/// The chart being drawn: seconds by log-scaled µs, on the SVG backend.
type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::combinators::LogCoord<f64>,
    >,
>;

/// The error of a drawing call.
type DrawError = DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>;

/// One bar per checkpoint in the strip at the bottom (`y_min` to
/// `strip_top`, log scale), from its start to its end, coloured by reason,
/// with a triangle on top; a legend entry per reason, and a label per bar
/// (size-triggered ones only when there are few).
fn draw_marks(
    chart: &mut Chart<'_, '_>,
    marks: &[CheckpointMark],
    (y_min, strip_top): (f64, f64),
    x_end: f64,
) -> Result<Vec<Entry>, DrawError> {
    let mut entries = Vec::new();
    let size_count = marks.iter().filter(|m| m.reason == "size").count();
    let mut reasons: Vec<&str> = marks.iter().map(|m| m.reason.as_str()).collect();
    reasons.sort_unstable();
    reasons.dedup();
    // The bar's lower half of the strip; the triangles sit on top of it.
    let bar_top = (y_min * strip_top).sqrt();
    // A bar at least this wide, so that a short checkpoint still shows.
    let min_width = x_end / 400.0;
    for reason in reasons {
        let colour = reason_colour(reason);
        let ours: Vec<&CheckpointMark> = marks.iter().filter(|m| m.reason == reason).collect();
        let style = colour.mix(0.8).filled();
        let longest = ours.iter().map(|m| m.elapsed).max().unwrap_or_default();
        chart.draw_series(ours.iter().map(|m| {
            let x0 = m.at.as_secs_f64();
            let x1 = (m.at + m.elapsed).as_secs_f64().max(x0 + min_width);
            Rectangle::new([(x0, y_min), (x1, bar_top)], style)
        }))?;
        chart.draw_series(
            ours.iter()
                .map(|m| TriangleMarker::new((m.at.as_secs_f64(), bar_top), 4, style)),
        )?;
        entries.push(Entry {
            text: format!(
                "{reason} checkpoint (bar: start to end): {}, longest {:.2} ms",
                ours.len(),
                micros(longest) / 1000.0
            ),
            style,
            bar: true,
        });
        if reason != "size" || size_count <= MAX_SIZE_LABELS {
            chart.draw_series(ours.iter().map(|m| {
                Text::new(
                    format!("{} {:.2} ms", m.reason, micros(m.elapsed) / 1000.0),
                    (m.at.as_secs_f64(), strip_top),
                    ("sans-serif", 11).into_font().color(&colour),
                )
            }))?;
        }
    }
    Ok(entries)
}

/// A line: its legend, colour, width, and what it reads of a point.
type Line = (&'static str, RGBColor, u32, fn(&TimelinePoint) -> Duration);

/// The p50, p99 and max lines, one point per bucket at its middle.
fn draw_lines(
    chart: &mut Chart<'_, '_>,
    timeline: &Timeline,
    y_min: f64,
) -> Result<Vec<Entry>, DrawError> {
    let mut entries = Vec::new();
    let points = timeline.points();
    let bucket = timeline.bucket();
    let lines: [Line; 3] = [
        ("max per bucket", MAX, 1, |p| p.max),
        ("p99 per bucket", P99, 2, |p| p.p99),
        ("p50 per bucket", P50, 2, |p| p.p50),
    ];
    for (label, colour, width, value) in lines {
        let style = colour.stroke_width(width);
        chart.draw_series(LineSeries::new(
            points.iter().map(|p| {
                (
                    (p.at + bucket / 2).as_secs_f64(),
                    micros(value(p)).max(y_min),
                )
            }),
            style,
        ))?;
        entries.push(Entry {
            text: label.to_owned(),
            style,
            bar: false,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_the_lines_and_the_marks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        let mut t = Timeline::new(Duration::from_millis(10));
        for i in 0..100u64 {
            let at = Duration::from_millis(i * 3);
            t.record(at, Duration::from_micros(50 + i * 7));
        }
        t.finish();
        let marks = [CheckpointMark {
            at: Duration::from_millis(120),
            elapsed: Duration::from_micros(900),
            reason: "interval".to_owned(),
            outcome: "completed".to_owned(),
        }];
        write_svg(&path, "test", &t, &marks).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("interval 0.90 ms"));
        assert!(svg.contains("p99 per bucket"));
        // A checkpoint is a bar and a triangle, not a vertical line across
        // the plot that reads like a grid line (issue 12).
        assert!(svg.contains("interval checkpoint (bar: start to end)"));
        assert!(
            svg.contains("<polygon") || svg.contains("<rect"),
            "no bar drawn"
        );
        assert!(svg.contains("submit to reply"));
        write_svg_from(&path, "open", &t, &marks, LatencyFrom::DueTime).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("due time to reply"));

        let empty = Timeline::new(Duration::from_millis(10));
        let err = write_svg(&path, "empty", &empty, &[]).unwrap_err();
        assert!(err.to_string().contains("nothing to draw"), "{err}");
    }

    #[test]
    fn latency_labels_pick_a_unit() {
        assert_eq!(latency_label(10.0), "10 µs");
        assert_eq!(latency_label(10_000.0), "10 ms");
        assert_eq!(latency_label(2_000_000.0), "2 s");
    }
}
