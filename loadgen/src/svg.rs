//! A small SVG writer for the bench charts: line charts (optionally on log axes) and grouped
//! bar charts, with axes, ticks, labels, a legend and one colour per series.
//!
//! Everything is drawn inside a fixed `WIDTH` x `HEIGHT` view box; the plot area leaves
//! margins for the title, the axis labels and the legend on the right.

use std::iter::successors;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 600.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 360.0;
const FONT: &str = "font-family=\"sans-serif\" font-size=\"12\"";

/// One colour per step, the same in every chart (Okabe-Ito, readable by colour-blind eyes).
pub const COLOURS: [&str; 6] = [
    "#D55E00", "#E69F00", "#009E73", "#0072B2", "#CC79A7", "#56B4E9",
];

/// A named series of points (line chart) or of values per group (bar chart).
pub struct Series {
    pub name: String,
    pub colour: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// How values map to one axis: linear from 0, or logarithmic.
#[derive(Clone, Copy)]
struct Scale {
    low: f64,
    high: f64,
    log: bool,
}

impl Scale {
    /// A scale covering `values`: linear ones start at 0 and end on a round number, log ones
    /// span whole powers of ten.
    fn covering(values: impl Iterator<Item = f64>, log: bool) -> Scale {
        let (min, max) = extent(values.filter(|v| v.is_finite() && (!log || *v > 0.0)));
        let (low, high) = if min > max {
            // No values.
            if log { (1.0, 10.0) } else { (0.0, 1.0) }
        } else if log {
            // A value on a power of ten gets a decade below it, so no bar is empty.
            let low = 10f64.powf((min.log10() - 1e-9).floor());
            (low, nice_ceiling(max).max(low * 10.0))
        } else {
            (0.0, nice_ceiling(max.max(min.abs()).max(1e-9)))
        };
        Scale { low, high, log }
    }

    /// Position of `value` between 0 (low end) and 1 (high end), clamped.
    fn fraction(&self, value: f64) -> f64 {
        let at = |v: f64| if self.log { v.max(self.low).log10() } else { v };
        ((at(value) - at(self.low)) / (at(self.high) - at(self.low))).clamp(0.0, 1.0)
    }

    fn ticks(&self) -> Vec<f64> {
        if !self.log {
            let step = nice_ceiling(self.high / 5.0);
            let count = (self.high / step).round() as usize;
            return (0..=count).map(|i| i as f64 * step).collect();
        }
        // Powers of ten, and 2 and 5 times them when the axis spans three decades or less.
        let steps: &[f64] = if self.high / self.low <= 1000.0 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let end = self.high * 1.0001;
        let decades = successors(Some(self.low), |d| Some(d * 10.0)).take_while(|&d| d <= end);
        let ticks = decades.flat_map(|d| steps.iter().map(move |m| m * d));
        ticks.filter(|&t| t <= end).collect()
    }
}

/// The smallest and the largest of `values`, or (f64::MAX, f64::MIN) if there are none.
fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::MAX, f64::MIN), |(min, max), v| {
        (min.min(v), max.max(v))
    })
}

/// The smallest of 1, 2, 2.5, 5 or 10 times a power of ten that is at least `value`.
fn nice_ceiling(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|m| m * power >= value * 0.9999)
        .unwrap_or(10.0);
    nice * power
}

/// `1500` -> `1.5k`, `2000000` -> `2M`, `0.25` -> `0.25`.
pub fn short(value: f64) -> String {
    let (scaled, unit) = match value.abs() {
        v if v >= 1e9 => (value / 1e9, "G"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    let decimals = match scaled.abs() {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{scaled:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{unit}")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG document being written.
struct Canvas {
    out: String,
}

impl Canvas {
    /// The document's head: its background and `title`.
    fn new(title: &str) -> Canvas {
        let (x, title) = (WIDTH / 2.0, escape(title));
        let out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\">\n\
             <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>\n\
             <text x=\"{x:.1}\" y=\"24.0\" text-anchor=\"middle\" {FONT}><tspan font-weight=\"bold\">{title}</tspan></text>\n"
        );
        Canvas { out }
    }

    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), colour: &str, width: f64) {
        self.out += &format!(
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{colour}\" stroke-width=\"{width}\"/>\n"
        );
    }

    fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, colour: &str) {
        self.out += &format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" fill=\"{colour}\"/>\n"
        );
    }

    /// `content` at (x, y), `anchor`ed `start`, `middle` or `end`.
    fn text(&mut self, (x, y): (f64, f64), anchor: &str, content: &str) {
        self.out += &format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" {FONT}>{}</text>\n",
            escape(content)
        );
    }

    /// The y axis with ticks, grid lines and its (vertical) label.
    fn y_axis(&mut self, scale: &Scale, label: &str) {
        for tick in scale.ticks() {
            let y = BOTTOM - scale.fraction(tick) * (BOTTOM - TOP);
            self.line((LEFT, y), (RIGHT, y), "#dddddd", 1.0);
            self.line((LEFT - 5.0, y), (LEFT, y), "black", 1.0);
            self.text((LEFT - 8.0, y + 4.0), "end", &short(tick));
        }
        self.line((LEFT, TOP), (LEFT, BOTTOM), "black", 1.0);
        let (x, y) = (18.0, (TOP + BOTTOM) / 2.0);
        self.out += &format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 {x:.1} {y:.1})\" {FONT}>{}</text>\n",
            escape(label)
        );
    }

    /// The legend, then the end of the document.
    fn finish(mut self, series: &[Series]) -> String {
        for (i, s) in series.iter().enumerate() {
            let y = TOP + 10.0 + 22.0 * i as f64;
            self.rect(RIGHT + 20.0, y - 9.0, 14.0, 10.0, s.colour);
            self.text((RIGHT + 40.0, y), "start", &s.name);
        }
        self.out += "</svg>\n";
        self.out
    }
}

/// A line chart of `series` on log axes, points joined in x order, each marked with a dot.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let points = || series.iter().flat_map(|s| s.points.iter().copied());
    let xs = Scale::covering(points().map(|p| p.0), true);
    let ys = Scale::covering(points().map(|p| p.1), true);
    let x_at = |x| LEFT + xs.fraction(x) * (RIGHT - LEFT);
    let at = |(x, y): (f64, f64)| (x_at(x), BOTTOM - ys.fraction(y) * (BOTTOM - TOP));
    let mut canvas = Canvas::new(title);
    canvas.y_axis(&ys, y_label);
    for tick in xs.ticks() {
        let x = x_at(tick);
        canvas.line((x, BOTTOM), (x, BOTTOM + 5.0), "black", 1.0);
        canvas.text((x, BOTTOM + 18.0), "middle", &short(tick));
    }
    canvas.line((LEFT, BOTTOM), (RIGHT, BOTTOM), "black", 1.0);
    canvas.text(((LEFT + RIGHT) / 2.0, BOTTOM + 40.0), "middle", x_label);
    for s in series {
        let mut sorted: Vec<(f64, f64)> = s.points.clone();
        sorted.retain(|p| p.0.is_finite() && p.1.is_finite());
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in sorted.windows(2) {
            canvas.line(at(pair[0]), at(pair[1]), s.colour, 2.0);
        }
        for &p in &sorted {
            let ((x, y), colour) = (at(p), s.colour);
            canvas.out +=
                &format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{colour}\"/>\n");
        }
    }
    canvas.finish(series)
}

/// Values that span this factor or more are drawn on a log scale.
const LOG_SPAN: f64 = 20.0;

/// Grouped bars: one group per entry of `groups`, one bar per series in each (a series'
/// value for group g is the y of its point with x = g; missing points leave a gap). Each bar
/// carries its value on top. Positive values that span `LOG_SPAN` or more get a log scale,
/// so a small bar next to one a thousand times taller still shows. `ceiling`, if given, is
/// drawn as a dashed line with its label: the most the measurement could show.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[Series],
    ceiling: Option<(f64, &str)>,
) -> String {
    let value = |s: &Series, g: usize| s.points.iter().find(|p| p.0 == g as f64).map(|p| p.1);
    let values = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (min, max) = extent(values());
    let log = min > 0.0 && max / min >= LOG_SPAN;
    let ys = Scale::covering(values().chain(ceiling.map(|c| c.0)), log);
    let mut canvas = Canvas::new(title);
    let scale = if log { " (log scale)" } else { "" };
    canvas.y_axis(&ys, &format!("{y_label}{scale}"));
    canvas.line((LEFT, BOTTOM), (RIGHT, BOTTOM), "black", 1.0);
    if let Some((at, text)) = ceiling {
        // The line across the plot, and its label in the legend's column, below the series.
        let y = BOTTOM - ys.fraction(at) * (BOTTOM - TOP);
        let key = TOP + 10.0 + 22.0 * series.len() as f64;
        for (x1, x2, y) in [(LEFT, RIGHT, y), (RIGHT + 20.0, RIGHT + 34.0, key - 4.0)] {
            canvas.out += &format!(
                "<line x1=\"{x1}\" y1=\"{y:.1}\" x2=\"{x2}\" y2=\"{y:.1}\" stroke=\"black\" stroke-dasharray=\"6 4\"/>\n"
            );
        }
        for (i, line) in text.lines().enumerate() {
            canvas.text((RIGHT + 40.0, key + 16.0 * i as f64), "start", line);
        }
    }
    let group_width = (RIGHT - LEFT) / groups.len().max(1) as f64;
    let bar_width = group_width * 0.8 / series.len().max(1) as f64;
    for (g, group) in groups.iter().enumerate() {
        let left = LEFT + g as f64 * group_width + group_width * 0.1;
        canvas.text((left + group_width * 0.4, BOTTOM + 18.0), "middle", group);
        for (i, s) in series.iter().enumerate() {
            let Some(v) = value(s, g) else { continue };
            let height = ys.fraction(v) * (BOTTOM - TOP);
            let x = left + i as f64 * bar_width;
            let width = (bar_width - 2.0).max(1.0);
            canvas.rect(x + 1.0, BOTTOM - height, width, height, s.colour);
            let y = (BOTTOM - height - 4.0).max(TOP - 4.0);
            canvas.text((x + bar_width / 2.0, y), "middle", &short(v));
        }
    }
    canvas.finish(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal XML check: tags nest and close, attributes are quoted, `&` starts an entity.
    fn assert_well_formed(doc: &str) {
        let mut open: Vec<String> = Vec::new();
        let mut rest = doc;
        while let Some(lt) = rest.find('<') {
            let text = &rest[..lt];
            assert!(!text.contains('>'), "stray > in {text:?}");
            for (i, _) in text.match_indices('&') {
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;"]
                        .iter()
                        .any(|e| text[i..].starts_with(e)),
                    "bad entity in {text:?}"
                );
            }
            let gt = rest[lt..].find('>').expect("unclosed tag") + lt;
            let tag = &rest[lt + 1..gt];
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "unbalanced quotes in <{tag}>"
            );
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().unwrap_or("").to_string());
            }
            rest = &rest[gt + 1..];
        }
        assert!(open.is_empty(), "unclosed: {open:?}");
        assert!(doc.starts_with("<svg"), "not an svg document");
    }

    /// Every coordinate attribute lies inside the view box.
    fn assert_inside(doc: &str) {
        for attr in [
            "x", "x1", "x2", "cx", "y", "y1", "y2", "cy", "width", "height",
        ] {
            let key = format!(" {attr}=\"");
            for (i, _) in doc.match_indices(&key) {
                let start = i + key.len();
                let end = start + doc[start..].find('"').unwrap();
                let v: f64 = doc[start..end]
                    .parse()
                    .unwrap_or_else(|_| panic!("{attr}={:?}", &doc[start..end]));
                let limit = if attr.starts_with('x') || attr == "cx" || attr == "width" {
                    WIDTH
                } else {
                    HEIGHT
                };
                assert!(
                    (0.0..=limit).contains(&v),
                    "{attr}={v} outside the view box"
                );
            }
        }
        // Rectangles end inside too.
        for (i, _) in doc.match_indices("<rect ") {
            let tag = &doc[i..i + doc[i..].find("/>").unwrap()];
            let num = |a: &str| -> f64 {
                let s = tag.find(&format!(" {a}=\"")).unwrap() + a.len() + 3;
                tag[s..s + tag[s..].find('"').unwrap()].parse().unwrap()
            };
            assert!(
                num("x") + num("width") <= WIDTH + 0.05
                    && num("y") + num("height") <= HEIGHT + 0.05,
                "{tag}"
            );
        }
    }

    fn series() -> Vec<Series> {
        vec![
            Series {
                name: "step1 <naive> & co".into(),
                colour: COLOURS[0],
                points: vec![(100.0, 0.2), (1000.0, 3.0), (19900.0, 250.0)],
            },
            Series {
                name: "step4_poll".into(),
                colour: COLOURS[3],
                points: vec![(100.0, 0.1), (19900.0, 40.0), (5000.0, f64::NAN)],
            },
            Series {
                name: "empty".into(),
                colour: COLOURS[1],
                points: vec![],
            },
        ]
    }

    #[test]
    fn line_charts_are_well_formed_and_inside_the_view_box() {
        let doc = line_chart("p99 vs clients", "clients", "p99 ms", &series());
        assert_well_formed(&doc);
        assert_inside(&doc);
        assert!(doc.contains("step1 &lt;naive&gt; &amp; co") && doc.contains("<circle"));
        let empty = line_chart("nothing", "x", "y", &[]);
        assert_well_formed(&empty);
        assert_inside(&empty);
    }

    #[test]
    fn bar_charts_are_well_formed_and_inside_the_view_box() {
        let groups = vec!["100 clients".to_string(), "1,000 clients".to_string()];
        let bars = vec![
            Series {
                name: "step2".into(),
                colour: COLOURS[1],
                points: vec![(0.0, 2.5e6), (1.0, 7.0e6)],
            },
            Series {
                name: "step4".into(),
                colour: COLOURS[3],
                points: vec![(1.0, 2.6e7)],
            },
        ];
        let doc = bar_chart("delivered/s", "messages/s", &groups, &bars, None);
        assert_well_formed(&doc);
        assert_inside(&doc);
        assert_eq!(doc.matches("<rect").count(), 1 + 3 + 2); // background, 3 bars, 2 legend keys
        assert!(doc.contains(">26M<") && !doc.contains("log scale"));
    }

    #[test]
    fn bars_that_span_orders_of_magnitude_get_a_log_scale_and_a_ceiling() {
        let bars = vec![
            Series {
                name: "step2".into(),
                colour: COLOURS[1],
                points: vec![(0.0, 2.0e5)],
            },
            Series {
                name: "step4".into(),
                colour: COLOURS[3],
                points: vec![(0.0, 1.8e7)],
            },
        ];
        let groups = vec!["100 clients".to_string()];
        let doc = bar_chart("t", "msg/s", &groups, &bars, Some((2.0e7, "most tried")));
        assert_well_formed(&doc);
        assert_inside(&doc);
        assert!(doc.contains("msg/s (log scale)") && doc.contains(">most tried<"));
        // On a linear scale the small bar would be 1 % of the tall one; here over 10 %.
        let heights: Vec<f64> = doc
            .match_indices("<rect ")
            .skip(1)
            .take(2)
            .map(|(i, _)| {
                let tag = &doc[i..i + doc[i..].find("/>").unwrap()];
                let at = tag.find(" height=\"").unwrap() + 9;
                tag[at..at + tag[at..].find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert!(heights[0] > heights[1] / 10.0, "{heights:?}");
    }

    #[test]
    fn scales_and_labels() {
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(2.1), 2.5);
        assert_eq!(nice_ceiling(0.03), 0.05);
        assert_eq!(
            Scale::covering([3.0, 420.0].into_iter(), true).ticks(),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        );
        assert_eq!(
            Scale::covering([0.5, 19_900.0].into_iter(), true).ticks(),
            vec![0.1, 1.0, 10.0, 100.0, 1000.0, 10_000.0]
        );
        assert_eq!(
            Scale::covering([0.0, 9.0].into_iter(), false).ticks(),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(short(19_900.0), "19.9k");
        assert_eq!(short(2_000_000.0), "2M");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(1500.0), "1.5k");
    }
}
