//! A self-contained SVG chart of the timeline: throughput on top, latency below, sharing the
//! time axis, so a stall shows up as a dip above and a spike below at the same second. Written
//! by hand because two line charts do not justify a plotting library.

use std::fmt::{self, Write};

use crate::report::SecondSummary;

const WIDTH: f64 = 900.0;
const PANEL_HEIGHT: f64 = 280.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 35.0;
const MARGIN_BOTTOM: f64 = 40.0;
const Y_TICKS: f64 = 5.0;

/// One line of a panel.
struct Series<'a> {
    label: &'a str,
    color: &'a str,
    dashed: bool,
    /// One value per second of the timeline.
    values: Vec<f64>,
}

/// Renders throughput and latency per second as an SVG document. `load_seconds` is when the
/// load stopped; a dashed line marks it, so the partial seconds of draining are not mistaken
/// for a collapse.
pub fn render(timeline: &[SecondSummary], load_seconds: f64) -> String {
    let mut svg = String::new();
    draw(&mut svg, timeline, load_seconds).expect("writing to a String cannot fail");
    svg
}

fn draw(svg: &mut String, timeline: &[SecondSummary], load_seconds: f64) -> fmt::Result {
    let height = 2.0 * PANEL_HEIGHT;
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    )?;
    writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    let column = |f: fn(&SecondSummary) -> f64| timeline.iter().map(f).collect::<Vec<_>>();
    panel(
        svg,
        0.0,
        "Throughput (responses/s)",
        load_seconds,
        &[
            Series {
                label: "ok",
                color: "#2ca02c",
                dashed: false,
                values: column(|s| s.ok as f64),
            },
            Series {
                label: "all",
                color: "#1f77b4",
                dashed: true,
                values: column(|s| s.completed as f64),
            },
        ],
    )?;
    panel(
        svg,
        PANEL_HEIGHT,
        "Latency (ms)",
        load_seconds,
        &[
            Series {
                label: "p99",
                color: "#d62728",
                dashed: false,
                values: column(|s| s.p99_ms),
            },
            Series {
                label: "p50",
                color: "#ff7f0e",
                dashed: false,
                values: column(|s| s.p50_ms),
            },
        ],
    )?;
    writeln!(svg, "</svg>")
}

/// Draws one chart with its axes, grid, legend and lines, `top` pixels from the top. Each value
/// is drawn in the middle of its second.
fn panel(
    svg: &mut String,
    top: f64,
    title: &str,
    load_seconds: f64,
    series: &[Series],
) -> fmt::Result {
    let left = MARGIN_LEFT;
    let right = WIDTH - MARGIN_RIGHT;
    let plot_top = top + MARGIN_TOP;
    let bottom = top + PANEL_HEIGHT - MARGIN_BOTTOM;

    let seconds = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let x_max = seconds.max(1) as f64;
    let y_peak = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let y_step = nice_step(y_peak / Y_TICKS);
    let y_max = (y_peak / y_step).ceil().max(1.0) * y_step;
    let x = |second: f64| left + second / x_max * (right - left);
    let y = |value: f64| bottom - value / y_max * (bottom - plot_top);

    writeln!(
        svg,
        r#"<text x="{left}" y="{}" font-size="14" font-weight="bold">{title}</text>"#,
        top + 20.0
    )?;
    // Horizontal grid lines with value labels.
    let decimals = decimals_for(y_step);
    for i in 0..=(y_max / y_step).round() as u32 {
        let tick = f64::from(i) * y_step;
        let ty = y(tick);
        writeln!(
            svg,
            r##"<line x1="{left}" y1="{ty:.1}" x2="{right}" y2="{ty:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{tick:.decimals$}</text>"##,
            left - 6.0,
            ty + 4.0
        )?;
    }
    // Time axis labelled in seconds.
    let x_step = nice_step(x_max / 10.0).max(1.0);
    for i in 0..=(x_max / x_step).floor() as u32 {
        let second = f64::from(i) * x_step;
        writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{second}</text>"#,
            x(second),
            bottom + 16.0
        )?;
    }
    writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds</text>"#,
        (left + right) / 2.0,
        bottom + 32.0
    )?;
    writeln!(
        svg,
        r#"<path d="M{left},{plot_top} V{bottom} H{right}" fill="none" stroke="black"/>"#
    )?;
    if load_seconds < x_max {
        let lx = x(load_seconds);
        writeln!(
            svg,
            r##"<line x1="{lx:.1}" y1="{plot_top}" x2="{lx:.1}" y2="{bottom}" stroke="#888" stroke-dasharray="4 4"/><text x="{:.1}" y="{}" text-anchor="end" fill="#888">load ends</text>"##,
            lx - 4.0,
            plot_top + 12.0
        )?;
    }

    for (index, line) in series.iter().enumerate() {
        let points: Vec<String> = line
            .values
            .iter()
            .enumerate()
            .map(|(second, value)| format!("{:.1},{:.1}", x(second as f64 + 0.5), y(*value)))
            .collect();
        writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5"{} points="{}"/>"#,
            line.color,
            if line.dashed {
                r#" stroke-dasharray="6 3""#
            } else {
                ""
            },
            points.join(" ")
        )?;
        let legend_x = right - 90.0 * (series.len() - index) as f64;
        writeln!(
            svg,
            r#"<rect x="{legend_x}" y="{}" width="12" height="3" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            top + 14.0,
            line.color,
            legend_x + 16.0,
            top + 19.0,
            line.label
        )?;
    }
    Ok(())
}

/// A round tick step (1, 2 or 5 times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * magnitude >= raw)
        .unwrap_or(10.0);
    step * magnitude
}

/// Decimal places needed to print multiples of `step` exactly.
fn decimals_for(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    }
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
    fn nice_steps_are_round_and_large_enough() {
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(10.0), 10.0);
        assert_eq!(nice_step(1234.0), 2000.0);
        assert!((nice_step(0.013) - 0.02).abs() < 1e-12);
    }

    #[test]
    fn decimals_follow_the_step() {
        assert_eq!(decimals_for(5.0), 0);
        assert_eq!(decimals_for(0.5), 1);
        assert_eq!(decimals_for(0.02), 2);
    }

    #[test]
    fn svg_has_one_root_two_panels_and_four_lines() {
        let timeline: Vec<_> = (0..10).map(|s| second(s, 1000 + s, 2.5)).collect();
        let svg = render(&timeline, 9.0);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.contains("Throughput"));
        assert!(svg.contains("Latency"));
        assert_eq!(svg.matches("load ends").count(), 2);
        // Every element opened on a line is closed on it (all are self-closing or text).
        for line in svg.lines().filter(|l| l.starts_with("<text")) {
            assert!(line.ends_with("</text>"), "{line}");
        }
    }

    #[test]
    fn points_stay_inside_the_canvas() {
        let timeline: Vec<_> = (0..30).map(|s| second(s, s * 37, s as f64)).collect();
        let svg = render(&timeline, 30.0);
        assert!(!svg.contains("load ends"));
        for points in svg.split("points=\"").skip(1) {
            let points = &points[..points.find('"').unwrap()];
            for pair in points.split(' ') {
                let (x, y) = pair.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((0.0..=WIDTH).contains(&x), "{pair}");
                assert!((0.0..=2.0 * PANEL_HEIGHT).contains(&y), "{pair}");
            }
        }
    }

    #[test]
    fn empty_timeline_still_renders_axes() {
        let svg = render(&[], 1.0);
        assert!(svg.contains("<path"));
        assert_eq!(svg.matches("<polyline").count(), 4);
    }
}
