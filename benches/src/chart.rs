//! Small SVG line charts for BENCHMARKS.md.

use std::fmt::Write as _;

/// One line of a chart.
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) color: &'static str,
    pub(crate) points: Vec<(f64, f64)>,
}

/// One panel: title, axes and lines.
pub(crate) struct Panel {
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    /// A logarithmic x axis (concurrency levels); the ticks are the points' x values.
    pub(crate) log_x: bool,
    pub(crate) series: Vec<Series>,
}

const WIDTH: f64 = 820.0;
const PANEL_HEIGHT: f64 = 360.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 270.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let s = format!("{v:.0}");
        let (neg, digits) = s
            .strip_prefix('-')
            .map_or((false, s.as_str()), |d| (true, d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if neg { format!("-{out}") } else { out }
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn panel(out: &mut String, p: &Panel, y0: f64) {
    let (x_min, x_max) = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|(x, _)| *x))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    let (x_min, x_max) = if x_min.is_finite() && x_max > x_min {
        (x_min, x_max)
    } else {
        (0.0, 1.0)
    };
    let y_max = nice_max(
        p.series
            .iter()
            .flat_map(|s| s.points.iter().map(|(_, y)| *y))
            .fold(0.0, f64::max)
            * 1.05,
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = PANEL_HEIGHT - TOP - BOTTOM;
    let tx = |x: f64| {
        let f = if p.log_x {
            (x.max(1e-9).ln() - x_min.max(1e-9).ln()) / (x_max.ln() - x_min.max(1e-9).ln())
        } else {
            (x - x_min) / (x_max - x_min)
        };
        LEFT + plot_w * f
    };
    let ty = |y: f64| y0 + TOP + plot_h * (1.0 - y / y_max);
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{}" font-size="14">{}</text>"#,
        y0 + 22.0,
        p.title
    );
    for t in 0..=4 {
        let v = y_max * f64::from(t) / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            ty(v) + 4.0,
            fmt_num(v),
            y = ty(v)
        );
    }
    let mut xticks: Vec<f64> = if p.log_x {
        p.series
            .iter()
            .flat_map(|s| s.points.iter().map(|(x, _)| *x))
            .collect()
    } else {
        (0..=5)
            .map(|i| x_min + (x_max - x_min) * f64::from(i) / 5.0)
            .collect()
    };
    xticks.sort_by(f64::total_cmp);
    xticks.dedup();
    for x in xticks {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            tx(x),
            y0 + PANEL_HEIGHT - BOTTOM + 18.0,
            fmt_num(x)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        y0 + PANEL_HEIGHT - 12.0,
        p.x_label,
        y0 + TOP + plot_h / 2.0,
        y0 + TOP + plot_h / 2.0,
        p.y_label
    );
    for (k, s) in p.series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", tx(*x), ty(*y)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.color,
            pts.join(" ")
        );
        if s.points.len() <= 12 {
            for (x, y) in &s.points {
                let _ = write!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                    tx(*x),
                    ty(*y),
                    s.color
                );
            }
        }
        let ly = y0 + TOP + 10.0 + 20.0 * k as f64;
        let _ = write!(
            out,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            WIDTH - RIGHT + 10.0,
            WIDTH - RIGHT + 30.0,
            s.color,
            WIDTH - RIGHT + 36.0,
            ly + 4.0,
            s.label
        );
    }
}

/// Writes panels stacked vertically into one SVG file.
pub(crate) fn write(path: &std::path::Path, panels: &[Panel]) -> Result<(), String> {
    let h = PANEL_HEIGHT * panels.len() as f64;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{h}" font-family="sans-serif" font-size="12"><rect width="{WIDTH}" height="{h}" fill="white"/>"#
    );
    for (i, p) in panels.iter().enumerate() {
        panel(&mut out, p, PANEL_HEIGHT * i as f64);
    }
    out.push_str("</svg>\n");
    std::fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
