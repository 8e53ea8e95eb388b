//! Pruning curves: test accuracy against heads kept, one line per pruning method with its 95 %
//! interval as a band, the unpruned model dashed; self-contained SVG.

use std::fmt::Write;

use super::escape;

/// One point of a curve: heads kept, accuracy, and its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Heads kept.
    pub kept: usize,
    /// Accuracy (0 to 1).
    pub accuracy: f64,
    /// Lower end of its 95 % interval.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// Line colours, one per method in order (repeating).
const COLOURS: [&str; 8] = [
    "#c44e52", "#4c72b0", "#55a868", "#8172b2", "#ccb974", "#64b5cd", "#dd8452", "#777777",
];

/// The curves as an SVG: x = heads kept (from `players` down to the fewest kept), y = accuracy;
/// `full` (the unpruned model's accuracy) is a dashed line; each series is drawn with a band for
/// its interval. Series are `(method, points)`.
pub fn curves_svg(
    title: &str,
    players: usize,
    full: f64,
    series: &[(String, Vec<Point>)],
) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 380.0, 60.0, 170.0, 36.0, 44.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let kept_min = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.kept))
        .min()
        .unwrap_or(0);
    let (x_lo, x_hi) = (kept_min as f64, players.max(kept_min + 1) as f64);
    let x = |k: f64| left + pw * (k - x_lo) / (x_hi - x_lo);
    let y = |a: f64| top + ph * (1.0 - a.clamp(0.0, 1.0));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"{left}\" y=\"20\" font-size=\"14\">{}</text>\n",
        escape(title)
    );
    for tick in 0..=5 {
        let a = tick as f64 / 5.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{0}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#eee\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{a:.1}</text>",
            left + pw,
            y(a),
            left - 6.0,
            y(a) + 4.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">heads kept</text><text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">accuracy</text>",
        left + pw / 2.0,
        h - 8.0,
        top + ph / 2.0,
        top + ph / 2.0
    );
    let _ = writeln!(
        svg,
        "<line x1=\"{left}\" x2=\"{0}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#000\" stroke-dasharray=\"6 4\"/><text x=\"{2}\" y=\"{3:.1}\">unpruned {full:.3}</text>",
        left + pw,
        y(full),
        left + pw + 8.0,
        y(full) + 4.0
    );
    let mut ticks: Vec<usize> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.kept))
        .collect();
    ticks.sort_unstable();
    ticks.dedup();
    for k in ticks {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{k}</text>",
            x(k as f64),
            top + ph + 16.0
        );
    }
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points = points.clone();
        points.sort_by_key(|p| p.kept);
        if points.len() > 1 {
            let upper: Vec<String> = points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.kept as f64), y(p.high)))
                .collect();
            let lower: Vec<String> = points
                .iter()
                .rev()
                .map(|p| format!("{:.1},{:.1}", x(p.kept as f64), y(p.low)))
                .collect();
            let _ = writeln!(
                svg,
                "<polygon points=\"{} {}\" fill=\"{colour}\" fill-opacity=\"0.12\"/>",
                upper.join(" "),
                lower.join(" ")
            );
        }
        let line: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.kept as f64), y(p.accuracy)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            line.join(" ")
        );
        for p in &points {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{} at {} heads: {:.3} [{:.3}, {:.3}]</title></circle>",
                x(p.kept as f64),
                y(p.accuracy),
                escape(name),
                p.kept,
                p.accuracy,
                p.low,
                p.high
            );
        }
        let ly = top + 30.0 + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            "<line x1=\"{0}\" x2=\"{1}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{2}\" y=\"{3}\">{4}</text>",
            left + pw + 8.0,
            left + pw + 28.0,
            left + pw + 32.0,
            ly + 4.0,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(kept: usize, accuracy: f64) -> Point {
        Point {
            kept,
            accuracy,
            low: accuracy - 0.1,
            high: accuracy + 0.1,
        }
    }

    #[test]
    fn one_line_and_band_per_method_and_the_unpruned_model_dashed() {
        let series = vec![
            ("maximise".to_string(), vec![point(13, 0.6), point(22, 0.7)]),
            ("random".to_string(), vec![point(22, 0.5), point(13, 0.3)]),
        ];
        let svg = curves_svg("t <1>", 27, 0.65, &series);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<polygon").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert_eq!(svg.matches("stroke-dasharray").count(), 1);
        assert!(svg.contains("t &lt;1&gt;") && svg.contains("unpruned 0.650"));
        // x runs from the fewest heads kept (13, at the left edge) to all 27.
        assert!(svg.contains("cx=\"60.0\""));
    }
}
