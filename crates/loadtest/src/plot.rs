//! An SVG chart of the timeline: throughput on top, latency below, sharing the time axis, so a
//! stall shows up as a dip above and a spike below at the same second.
//!
//! plotters is built without a font feature: it then only estimates text widths for its layout,
//! which is all an SVG needs, since the viewer sets the `<text>` elements in its own fonts.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::SecondSummary;

const SIZE: (u32, u32) = (900, 560);

/// One line of a panel.
struct Series {
    label: &'static str,
    color: RGBColor,
    dashed: bool,
    /// One value per second of the timeline.
    values: Vec<f64>,
}

/// Renders throughput and latency per second as an SVG document. `load_seconds` is when the
/// load stopped; a dashed line marks it, so the partial seconds of draining are not mistaken
/// for a collapse.
pub fn render(timeline: &[SecondSummary], load_seconds: f64) -> anyhow::Result<String> {
    let column = |f: fn(&SecondSummary) -> f64| timeline.iter().map(f).collect::<Vec<_>>();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(SIZE.1 / 2);
        panel(
            &top,
            "Throughput (responses/s)",
            load_seconds,
            &[
                Series {
                    label: "ok",
                    color: RGBColor(0x2c, 0xa0, 0x2c),
                    dashed: false,
                    values: column(|s| s.ok as f64),
                },
                Series {
                    label: "all",
                    color: RGBColor(0x1f, 0x77, 0xb4),
                    dashed: true,
                    values: column(|s| s.completed as f64),
                },
            ],
        )?;
        panel(
            &bottom,
            "Latency (ms)",
            load_seconds,
            &[
                Series {
                    label: "p99",
                    color: RGBColor(0xd6, 0x27, 0x28),
                    dashed: false,
                    values: column(|s| s.p99_ms),
                },
                Series {
                    label: "p50",
                    color: RGBColor(0xff, 0x7f, 0x0e),
                    dashed: false,
                    values: column(|s| s.p50_ms),
                },
            ],
        )?;
        root.present()?;
    }
    Ok(svg)
}

/// Draws one chart with its axes, grid, legend and lines. Each value is drawn in the middle of
/// its second.
fn panel(
    area: &DrawingArea<SVGBackend, Shift>,
    title: &str,
    load_seconds: f64,
    series: &[Series],
) -> anyhow::Result<()> {
    let seconds = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let x_max = seconds.max(1) as f64;
    let y_peak = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    // Headroom above the peak keeps the legend clear of the lines.
    let y_max = if y_peak > 0.0 { y_peak * 1.25 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18).into_font().style(FontStyle::Bold))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .label_style(("sans-serif", 14))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc("seconds")
        .draw()?;
    if load_seconds < x_max {
        let grey = RGBColor(0x88, 0x88, 0x88);
        chart.draw_series(DashedLineSeries::new(
            [(load_seconds, 0.0), (load_seconds, y_max)],
            4,
            4,
            grey.into(),
        ))?;
        let label = ("sans-serif", 14)
            .into_font()
            .color(&grey)
            .pos(Pos::new(HPos::Right, VPos::Top));
        chart.draw_series([
            EmptyElement::at((load_seconds, y_max)) + Text::new("load ends", (-4, 2), label)
        ])?;
    }
    for line in series {
        let points = line
            .values
            .iter()
            .enumerate()
            .map(|(second, value)| (second as f64 + 0.5, *value));
        let style = line.color.stroke_width(2);
        let drawn = if line.dashed {
            chart.draw_series(DashedLineSeries::new(points, 6, 3, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        let color = line.color;
        drawn
            .label(line.label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE)
        .border_style(RGBColor(0xdd, 0xdd, 0xdd))
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}

/// An axis label without float noise or a trailing `.0`: `1200`, `2.5`.
fn tick(value: &f64) -> String {
    ((value * 1000.0).round() / 1000.0).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(second: u64, completed: u64, p99_ms: f64) -> SecondSummary {
        SecondSummary {
            second,
            completed,
            ok: completed,
            p50_ms: p99_ms / 2.0,
            p99_ms,
        }
    }

    #[test]
    fn svg_has_one_root_two_panels_and_labels() {
        let timeline: Vec<_> = (0..10).map(|s| second(s, 1000 + s, 2.5)).collect();
        let svg = render(&timeline, 9.0).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        for text in [
            "Throughput",
            "Latency",
            "seconds",
            "p99",
            "p50",
            "ok",
            "all",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert_eq!(svg.matches("load ends").count(), 2);
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(&1200.0), "1200");
        assert_eq!(tick(&(0.1 + 0.2)), "0.3");
    }

    #[test]
    fn load_end_is_not_marked_when_the_timeline_stops_with_it() {
        let timeline: Vec<_> = (0..30).map(|s| second(s, s * 37, s as f64)).collect();
        let svg = render(&timeline, 30.0).unwrap();
        assert!(!svg.contains("load ends"));
    }

    #[test]
    fn empty_timeline_still_renders_axes() {
        let svg = render(&[], 1.0).unwrap();
        assert!(svg.contains("Throughput"));
        assert!(svg.contains("seconds"));
    }
}
