//! Figures drawn with plotters, each to PNG and SVG: the four dataset views (rating distribution,
//! user activity, item popularity, ratings per month) and the training pictures (learning curves,
//! grid heatmap).
//!
//! A figure is a plain struct of the numbers it shows and draws itself on any plotters backend,
//! so the PNG and the SVG come from one piece of code. Files are written into a hidden temporary
//! folder inside the destination and renamed into place. Knows nothing about how the numbers were
//! computed, and nothing about tracking or the command line.

use std::fs;
use std::path::{Path, PathBuf};

use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::RangedCoordi32;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::font::{self, FAMILY};
use super::stats::{EdaStats, MonthCount, RatingSummary};
use super::EdaError;

/// Size of every dataset figure, in pixels (the SVG uses the same units).
pub const FIGURE_SIZE: (u32, u32) = (1200, 720);
/// Ranks drawn one by one on the popularity curve; beyond them ranks are log-spaced.
const POPULARITY_DENSE_RANKS: usize = 1000;
/// Log-spaced ranks drawn beyond the dense ones (the curve is monotone, so this is lossless to
/// the eye).
const POPULARITY_SPARSE_POINTS: usize = 1500;
/// Bins per decade of the user-activity histogram.
pub const ACTIVITY_BINS_PER_DECADE: u32 = 10;

const MAIN: RGBColor = RGBColor(31, 119, 180);
const ACCENT: RGBColor = RGBColor(214, 39, 40);
const SECOND: RGBColor = RGBColor(255, 127, 14);
const SUBTLE: RGBColor = RGBColor(90, 90, 90);
const GRID: RGBColor = RGBColor(225, 225, 225);
/// Distinct line colours for learning curves (Tableau 20 order: strong then light).
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];
/// Viridis at five stops; cells interpolate linearly between them.
const VIRIDIS: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A picture that can draw itself on any backend.
pub(crate) trait Figure {
    fn size(&self) -> (u32, u32) {
        FIGURE_SIZE
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

fn draw_error(path: &Path) -> impl Fn(String) -> EdaError + '_ {
    move |message| EdaError::Draw {
        path: path.to_path_buf(),
        message,
    }
}

/// Draws `fig` into a PNG file at `path`.
pub(crate) fn render_png<F: Figure>(fig: &F, path: &Path) -> Result<(), EdaError> {
    font::ensure_font()?;
    let err = draw_error(path);
    let root = BitMapBackend::new(path, fig.size()).into_drawing_area();
    fig.draw(&root).map_err(|e| err(e.to_string()))?;
    // Drop would also save, but silently: present() reports a failed write.
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Draws `fig` as an SVG document; `path` only names it in errors.
pub(crate) fn render_svg<F: Figure>(fig: &F, path: &Path) -> Result<String, EdaError> {
    font::ensure_font()?;
    let err = draw_error(path);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, fig.size()).into_drawing_area();
        fig.draw(&root).map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

/// Output files built in a hidden folder inside `dest` and renamed into place by
/// [`Stage::commit`]; dropped without commit, the folder and its files are removed.
pub(crate) struct Stage {
    dest: PathBuf,
    tmp: tempfile::TempDir,
    names: Vec<String>,
}

impl Stage {
    pub(crate) fn new(dest: &Path) -> Result<Self, EdaError> {
        let werr = |source| EdaError::Write {
            path: dest.to_path_buf(),
            source,
        };
        fs::create_dir_all(dest).map_err(werr)?;
        let tmp = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(dest)
            .map_err(werr)?;
        Ok(Self {
            dest: dest.to_path_buf(),
            tmp,
            names: Vec::new(),
        })
    }

    pub(crate) fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), EdaError> {
        let path = self.tmp.path().join(name);
        fs::write(&path, bytes).map_err(|source| EdaError::Write { path, source })?;
        self.names.push(name.to_string());
        Ok(())
    }

    /// Writes `<stem>.png` and `<stem>.svg`; returns the SVG text.
    pub(crate) fn figure<F: Figure>(&mut self, fig: &F, stem: &str) -> Result<String, EdaError> {
        let png = format!("{stem}.png");
        render_png(fig, &self.tmp.path().join(&png))?;
        self.names.push(png);
        let name = format!("{stem}.svg");
        let svg = render_svg(fig, &self.dest.join(&name))?;
        self.write(&name, svg.as_bytes())?;
        Ok(svg)
    }

    /// Moves every file into the destination in the order written; returns their final paths.
    pub(crate) fn commit(self) -> Result<Vec<PathBuf>, EdaError> {
        let mut out = Vec::with_capacity(self.names.len());
        for name in &self.names {
            let to = self.dest.join(name);
            fs::rename(self.tmp.path().join(name), &to).map_err(|source| EdaError::Write {
                path: to.clone(),
                source,
            })?;
            out.push(to);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Shared drawing helpers

fn text(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

fn bold(size: f64) -> TextStyle<'static> {
    (FAMILY, size, FontStyle::Bold).into_font().color(&BLACK)
}

/// Fills the background, draws a title and a grey subtitle, and returns the area below them.
fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    root.draw_text(title, &bold(30.0), (24, 16))?;
    root.draw_text(subtitle, &text(18.0).color(&SUBTLE), (24, 58))?;
    Ok(root.split_vertically(92).1.margin(0, 16, 8, 36))
}

/// `1234567` -> `1,234,567`.
pub(crate) fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (k, c) in s.chars().enumerate() {
        if k > 0 && (s.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Axis numbers: `950`, `1.5k`, `20k`, `1.2M`.
pub(crate) fn compact(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if (x - x.round()).abs() < 1e-9 {
        format!("{:.0}", x)
    } else if x.abs() < 10.0 {
        format!("{:.2}", x)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{:.1}", x)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    };
    format!("{s}{suffix}")
}

/// A value in a table or cell: 4 decimals below 100, compact above.
pub(crate) fn metric_value(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v.abs() < 100.0 {
        format!("{v:.4}")
    } else {
        compact(v)
    }
}

/// Tick labels of a linear axis spanning `span`: compact for large numbers, otherwise as many
/// decimals as ticks about a tenth of the span apart need.
fn tick_label(v: f64, span: f64) -> String {
    if span >= 100.0 || v.abs() >= 1000.0 {
        return compact(v);
    }
    let step = (span / 10.0).max(1e-9);
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{v:.decimals$}")
}

/// Tick positions for a log axis over `[lo, hi]`: powers of ten, with 2 and 5 between them when
/// the axis spans less than three decades.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let few = b - a < 3;
    for e in a..=b {
        let p = 10f64.powi(e);
        let steps: &[f64] = if few { &[1.0, 2.0, 5.0] } else { &[1.0] };
        for &m in steps {
            let v = m * p;
            if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                out.push(v);
            }
        }
    }
    out
}

/// Indices `0..n` to label on a category axis, at most about `max` of them, every `step`-th one
/// where `aligned(i)` holds (falls back to every `step`-th from 0).
fn thinned(n: usize, max: usize, step: usize, aligned: impl Fn(usize) -> bool) -> Vec<usize> {
    let step = step.max(1);
    let picked: Vec<usize> = (0..n).filter(|&i| aligned(i)).collect();
    if !picked.is_empty() && picked.len() <= max + 1 {
        return picked;
    }
    (0..n).step_by(step.max(n.div_ceil(max.max(1)))).collect()
}

/// Category axes use integer coordinates, `CAT` units per category, because plotters formats
/// custom ticks only on integer axes; category `i` spans `[i·CAT, (i+1)·CAT]`.
const CAT: i32 = 100;

/// A category axis over `n` categories with ticks at the centers of `ticks`.
fn category_axis(n: usize, ticks: &[usize]) -> WithKeyPoints<RangedCoordi32> {
    (0..n.max(1) as i32 * CAT).with_key_points(ticks.iter().map(|&i| at(i, 0.5)).collect())
}

/// The coordinate `frac` of the way through category `i`.
fn at(i: usize, frac: f64) -> i32 {
    i as i32 * CAT + (frac * CAT as f64).round() as i32
}

/// The label of the category a tick coordinate falls in.
fn category_label(labels: &[String], v: i32) -> String {
    usize::try_from(v.div_euclid(CAT))
        .ok()
        .and_then(|i| labels.get(i))
        .cloned()
        .unwrap_or_default()
}

fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let x = t * (VIRIDIS.len() - 1) as f64;
    let k = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - k as f64;
    let (a, b) = (VIRIDIS[k], VIRIDIS[k + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

// ---------------------------------------------------------------------------------------------
// Dataset figures

/// Bars of the rating histogram.
pub(crate) struct RatingFigure<'a> {
    pub rating: &'a RatingSummary,
    pub ratings: usize,
}

/// `4.0` -> `4`, `4.5` -> `4.5`.
fn rating_label(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Figure for RatingFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let r = self.rating;
        let subtitle = format!(
            "{} ratings · mean {:.3} · median {} · {} distinct values",
            thousands(self.ratings as u64),
            r.mean,
            rating_label(r.median),
            r.distinct_values
        );
        let area = titled(root, "Rating distribution", &subtitle)?;
        let top = r
            .histogram
            .iter()
            .map(|b| b.count)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let y_fmt = |v: &f64| compact(*v);
        if r.histogram_kind == "per value" {
            let n = r.histogram.len();
            let labels: Vec<String> = r.histogram.iter().map(|b| rating_label(b.lo)).collect();
            let x_fmt = |v: &i32| category_label(&labels, *v);
            let all: Vec<usize> = (0..n).collect();
            let mut chart = ChartBuilder::on(&area)
                .x_label_area_size(64)
                .y_label_area_size(96)
                .build_cartesian_2d(category_axis(n, &all), 0f64..top * 1.12)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .bold_line_style(GRID)
                .light_line_style(TRANSPARENT)
                .x_desc("rating value")
                .y_desc("number of ratings")
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .label_style(text(18.0))
                .axis_desc_style(text(20.0))
                .draw()?;
            chart.draw_series(r.histogram.iter().enumerate().map(|(i, b)| {
                Rectangle::new(
                    [(at(i, 0.15), 0.0), (at(i, 0.85), b.count as f64)],
                    MAIN.filled(),
                )
            }))?;
            let above = text(16.0).pos(Pos::new(HPos::Center, VPos::Bottom));
            chart.draw_series(r.histogram.iter().enumerate().map(|(i, b)| {
                EmptyElement::at((at(i, 0.5), b.count as f64))
                    + Text::new(format!("{:.1}%", b.share * 100.0), (0, -6), above.clone())
            }))?;
        } else {
            let (lo, hi) = (r.min, if r.max > r.min { r.max } else { r.min + 1.0 });
            let mut chart = ChartBuilder::on(&area)
                .x_label_area_size(64)
                .y_label_area_size(96)
                .build_cartesian_2d(lo..hi, 0f64..top * 1.12)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .bold_line_style(GRID)
                .light_line_style(TRANSPARENT)
                .x_desc(format!(
                    "rating value ({} equal-width bins)",
                    r.histogram.len()
                ))
                .y_desc("number of ratings")
                .x_label_formatter(&|v| compact(*v))
                .y_label_formatter(&y_fmt)
                .label_style(text(18.0))
                .axis_desc_style(text(20.0))
                .draw()?;
            chart.draw_series(
                r.histogram
                    .iter()
                    .map(|b| Rectangle::new([(b.lo, 0.0), (b.hi, b.count as f64)], MAIN.filled())),
            )?;
            chart.draw_series(r.histogram.iter().map(|b| {
                Rectangle::new([(b.lo, 0.0), (b.hi, b.count as f64)], WHITE.stroke_width(1))
            }))?;
        }
        Ok(())
    }
}

/// One bin `[lo, hi)` of a log-binned histogram of counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LogBin {
    pub lo: u64,
    pub hi: u64,
    pub count: u64,
}

/// Histogram of positive counts over integer edges `⌈10^(k/per_decade)⌉` (duplicates merged),
/// so every bin holds at least one integer.
pub(crate) fn log_bins(values: &[u64], per_decade: u32) -> Vec<LogBin> {
    let max = values.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return Vec::new();
    }
    let mut edges = vec![1u64];
    let mut k = 1u32;
    while *edges.last().unwrap_or(&1) <= max {
        let e = 10f64.powf(k as f64 / per_decade.max(1) as f64).ceil() as u64;
        if e > *edges.last().unwrap_or(&0) {
            edges.push(e);
        }
        k += 1;
    }
    let mut counts = vec![0u64; edges.len() - 1];
    for &v in values.iter().filter(|&&v| v > 0) {
        // The bin is the last edge at or below v.
        let b = edges.partition_point(|&e| e <= v) - 1;
        let last = counts.len() - 1;
        counts[b.min(last)] += 1;
    }
    edges
        .windows(2)
        .zip(counts)
        .map(|(w, count)| LogBin {
            lo: w[0],
            hi: w[1],
            count,
        })
        .collect()
}

/// Users per bin of activity, both axes logarithmic.
pub(crate) struct ActivityFigure {
    pub bins: Vec<LogBin>,
    pub users: usize,
    pub median: u64,
    pub p90: u64,
    pub max: u64,
}

impl Figure for ActivityFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let subtitle = format!(
            "{} users · ratings per user: median {}, 90th percentile {}, max {} · {} log-spaced bins per decade",
            thousands(self.users as u64),
            thousands(self.median),
            thousands(self.p90),
            thousands(self.max),
            ACTIVITY_BINS_PER_DECADE
        );
        let area = titled(root, "User activity", &subtitle)?;
        let x_hi = self.bins.last().map_or(10, |b| b.hi).max(10) as f64;
        let y_top = self.bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
        let (y_lo, y_hi) = (0.7, y_top * 2.5);
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(64)
            .y_label_area_size(96)
            .build_cartesian_2d(
                (1f64..x_hi)
                    .log_scale()
                    .with_key_points(log_ticks(1.0, x_hi)),
                (y_lo..y_hi)
                    .log_scale()
                    .with_key_points(log_ticks(1.0, y_hi)),
            )?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_desc("ratings per user (log scale)")
            .y_desc("users per bin (log scale)")
            .x_label_formatter(&|v| compact(*v))
            .y_label_formatter(&|v| compact(*v))
            .label_style(text(18.0))
            .axis_desc_style(text(20.0))
            .draw()?;
        chart.draw_series(self.bins.iter().filter(|b| b.count > 0).map(|b| {
            Rectangle::new(
                [(b.lo as f64, y_lo), (b.hi as f64, b.count as f64)],
                MAIN.filled(),
            )
        }))?;
        chart.draw_series(self.bins.iter().filter(|b| b.count > 0).map(|b| {
            Rectangle::new(
                [(b.lo as f64, y_lo), (b.hi as f64, b.count as f64)],
                WHITE.stroke_width(1),
            )
        }))?;
        // Marks sit at the value's own position (the middle of an integer's bin is v + 0.5).
        for (v, label, color) in [
            (self.median, "median", SECOND),
            (self.p90, "90th percentile", ACCENT),
        ] {
            let x = v as f64 + 0.5;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, y_lo), (x, y_hi)],
                color.stroke_width(3),
            )))?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((x, y_hi))
                    + Text::new(
                        format!("{label}: {}", thousands(v)),
                        (8, if label == "median" { 8 } else { 34 }),
                        text(18.0).color(&color),
                    ),
            ))?;
        }
        Ok(())
    }
}

/// Ranks to draw on a popularity curve of `n` items: every rank up to the dense limit, then
/// log-spaced ranks, always including the last.
pub(crate) fn curve_ranks(n: usize) -> Vec<usize> {
    let dense = n.min(POPULARITY_DENSE_RANKS);
    let mut ranks: Vec<usize> = (1..=dense).collect();
    if n > dense {
        let (a, b) = ((dense as f64).ln(), (n as f64).ln());
        for k in 1..=POPULARITY_SPARSE_POINTS {
            let r = (a + (b - a) * k as f64 / POPULARITY_SPARSE_POINTS as f64)
                .exp()
                .round() as usize;
            let r = r.clamp(dense + 1, n);
            if ranks.last() != Some(&r) {
                ranks.push(r);
            }
        }
        if ranks.last() != Some(&n) {
            ranks.push(n);
        }
    }
    ranks
}

/// Ratings per item against the item's popularity rank, both axes logarithmic.
pub(crate) struct PopularityFigure {
    /// (rank, ratings), rank from 1, already thinned for drawing.
    pub points: Vec<(usize, u64)>,
    pub items: usize,
    pub gini: f64,
    pub top1_share: f64,
    pub top10_share: f64,
    pub head_items: usize,
    pub head_item_share: f64,
    pub head_rating_percent: u32,
}

impl Figure for PopularityFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let subtitle = format!(
            "{} items · Gini {:.3} · top 1% of items hold {:.1}% of ratings, top 10% hold {:.1}%",
            thousands(self.items as u64),
            self.gini,
            self.top1_share * 100.0,
            self.top10_share * 100.0
        );
        let area = titled(root, "Item popularity (long tail)", &subtitle)?;
        let x_hi = (self.items.max(10)) as f64;
        let y_max = self.points.iter().map(|p| p.1).max().unwrap_or(1).max(1) as f64;
        let y_min = self.points.iter().map(|p| p.1).min().unwrap_or(1).max(1) as f64;
        let (y_lo, y_hi) = (y_min * 0.7, y_max * 2.5);
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(64)
            .y_label_area_size(96)
            .build_cartesian_2d(
                (1f64..x_hi)
                    .log_scale()
                    .with_key_points(log_ticks(1.0, x_hi)),
                (y_lo..y_hi)
                    .log_scale()
                    .with_key_points(log_ticks(y_lo, y_hi)),
            )?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_desc("item rank by number of ratings (log scale)")
            .y_desc("ratings per item (log scale)")
            .x_label_formatter(&|v| compact(*v))
            .y_label_formatter(&|v| compact(*v))
            .label_style(text(18.0))
            .axis_desc_style(text(20.0))
            .draw()?;
        let cut = self.head_items.max(1) as f64;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(1.0, y_lo), (cut, y_hi)],
            SECOND.mix(0.12).filled(),
        )))?;
        chart.draw_series(LineSeries::new(
            self.points.iter().map(|&(r, c)| (r as f64, c as f64)),
            MAIN.stroke_width(3),
        ))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(cut, y_lo), (cut, y_hi)],
            ACCENT.stroke_width(3),
        )))?;
        let label = format!(
            "long-tail cut: the top {} items ({:.1}% of items) hold {}% of ratings",
            thousands(self.head_items as u64),
            self.head_item_share * 100.0,
            self.head_rating_percent
        );
        // Keep the label inside the plot: right of the cut when the cut is in the left half.
        let (x_log, span) = (cut.ln(), x_hi.ln());
        let style = text(18.0).color(&ACCENT);
        let element = if x_log < span * 0.5 {
            EmptyElement::at((cut, y_hi)) + Text::new(label, (10, 10), style)
        } else {
            EmptyElement::at((cut, y_hi))
                + Text::new(
                    label,
                    (-10, 10),
                    style.pos(Pos::new(HPos::Right, VPos::Top)),
                )
        };
        chart.draw_series(std::iter::once(element))?;
        let tag = text(20.0).color(&SUBTLE);
        chart.draw_series(std::iter::once(
            EmptyElement::at((1.0, y_lo)) + Text::new("head", (10, -30), tag.clone()),
        ))?;
        if self.head_items < self.items {
            chart.draw_series(std::iter::once(
                EmptyElement::at((cut, y_lo)) + Text::new("tail", (10, -30), tag),
            ))?;
        }
        Ok(())
    }
}

/// Ratings per calendar month, as bars.
pub(crate) struct MonthlyFigure<'a> {
    pub months: &'a [MonthCount],
    pub gaps_filled: bool,
    pub out_of_range: usize,
}

/// `(year, month)` of a `YYYY-MM` label.
fn parse_month(label: &str) -> Option<(i64, u32)> {
    let (y, m) = label.rsplit_once('-')?;
    Some((y.parse().ok()?, m.parse().ok()?))
}

impl Figure for MonthlyFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let n = self.months.len();
        let busiest = self.months.iter().max_by_key(|m| m.ratings);
        let mut subtitle = format!(
            "calendar months in UTC · {} to {}",
            self.months.first().map_or("", |m| m.month.as_str()),
            self.months.last().map_or("", |m| m.month.as_str()),
        );
        if let Some(b) = busiest {
            subtitle.push_str(&format!(
                " · busiest {} ({} ratings)",
                b.month,
                thousands(b.ratings as u64)
            ));
        }
        if !self.gaps_filled {
            subtitle.push_str(" · months without ratings are left out");
        }
        if self.out_of_range > 0 {
            subtitle.push_str(&format!(
                " · {} timestamps out of range not shown",
                thousands(self.out_of_range as u64)
            ));
        }
        let area = titled(root, "Ratings per month", &subtitle)?;
        let top = self
            .months
            .iter()
            .map(|m| m.ratings)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        // Label Januaries (or every quarter, or every month) so ticks land on real boundaries.
        let month_of = |i: usize| parse_month(&self.months[i].month).map(|p| p.1);
        let step = [1usize, 3, 6, 12, 24, 60, 120]
            .into_iter()
            .find(|s| n.div_ceil(*s) <= 14)
            .unwrap_or(n.div_ceil(14).max(1));
        let aligned = |i: usize| {
            self.gaps_filled
                && match (step, month_of(i)) {
                    (1, Some(_)) => true,
                    (s, Some(m)) if s < 12 => (m as usize - 1).is_multiple_of(s),
                    (s, Some(1)) => parse_month(&self.months[i].month)
                        .is_some_and(|(y, _)| y.rem_euclid((s / 12) as i64) == 0),
                    _ => false,
                }
        };
        let ticks = thinned(n, 14, step, aligned);
        let labels: Vec<String> = self.months.iter().map(|m| m.month.clone()).collect();
        let x_fmt = |v: &i32| category_label(&labels, *v);
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(64)
            .y_label_area_size(96)
            .build_cartesian_2d(category_axis(n, &ticks), 0f64..top * 1.08)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_desc("month (YYYY-MM, UTC)")
            .y_desc("ratings per month")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| compact(*v))
            .label_style(text(18.0))
            .axis_desc_style(text(20.0))
            .draw()?;
        let gap = if n > 150 { 0.0 } else { 0.12 };
        chart.draw_series(self.months.iter().enumerate().map(|(i, m)| {
            Rectangle::new(
                [(at(i, gap), 0.0), (at(i, 1.0 - gap), m.ratings as f64)],
                MAIN.filled(),
            )
        }))?;
        Ok(())
    }
}

/// The four dataset figures' numbers, taken from the statistics and the raw counts.
pub(crate) fn popularity_figure(stats: &EdaStats, curve: &[u64]) -> Option<PopularityFigure> {
    let lt = stats.long_tail.as_ref()?;
    let share = |p: u32| {
        stats
            .top_item_shares
            .iter()
            .find(|t| t.percent == p)
            .map_or(0.0, |t| t.share)
    };
    let points = curve_ranks(curve.len())
        .into_iter()
        .filter_map(|r| curve.get(r - 1).map(|&c| (r, c)))
        .collect();
    Some(PopularityFigure {
        points,
        items: curve.len(),
        gini: stats.item_popularity_gini.unwrap_or(0.0),
        top1_share: share(1),
        top10_share: share(10),
        head_items: lt.head_items,
        head_item_share: lt.head_item_share,
        head_rating_percent: lt.head_rating_percent,
    })
}

// ---------------------------------------------------------------------------------------------
// Training figures

/// One point of a learning curve: (iteration, training loss, validation RMSE if measured).
pub type CurvePoint = (usize, f64, Option<f64>);
/// A labelled learning curve (one grid point).
pub type LearningSeries = (String, Vec<CurvePoint>);
/// One cell of a grid: (rank, reg, value of the selection metric).
pub type GridCell = (usize, f64, f64);

struct LearningFigure<'a> {
    series: &'a [LearningSeries],
    /// The validation metric of the second panel (`val_rmse`, `val_ndcg_at_10`).
    metric: &'a str,
}

/// Series `k`'s colour and marker: ten colours, then the next ten lines get another marker,
/// so lines stay apart well beyond ten.
fn series_style(k: usize) -> (RGBColor, usize) {
    (PALETTE[k % 10], (k / 10) % 3)
}

/// Draws marker `shape` (0 circle, 1 triangle, 2 cross) of `series_style` at `p`.
fn marker<C, DB: DrawingBackend>(
    area: &mut ChartContext<'_, DB, C>,
    pts: &[(usize, f64)],
    color: RGBColor,
    shape: usize,
) -> DrawResult<DB>
where
    C: plotters::coord::CoordTranslate<From = (usize, f64)>,
{
    match shape {
        0 => area.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?,
        1 => area.draw_series(
            pts.iter()
                .map(|&p| TriangleMarker::new(p, 6, color.filled())),
        )?,
        _ => area.draw_series(pts.iter().map(|&p| Cross::new(p, 5, color.stroke_width(2))))?,
    };
    Ok(())
}

const LEARNING_SIZE: (u32, u32) = (1300, 980);

impl LearningFigure<'_> {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        caption: &str,
        y_desc: &str,
        value: impl Fn(&CurvePoint) -> Option<f64>,
    ) -> DrawResult<DB> {
        let points: Vec<(usize, f64)> = self
            .series
            .iter()
            .flat_map(|(_, s)| s.iter().filter_map(|p| Some((p.0, value(p)?))))
            .filter(|p| p.1.is_finite())
            .collect();
        area.draw_text(caption, &bold(22.0), (8, 0))?;
        let inner = area.split_vertically(36).1;
        if points.is_empty() {
            inner.draw_text(
                &format!("no {y_desc} was recorded"),
                &text(20.0).color(&SUBTLE),
                (96, 60),
            )?;
            return Ok(());
        }
        let (x_lo, x_hi) = points
            .iter()
            .fold((usize::MAX, 0), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
        let x_hi = if x_hi > x_lo { x_hi } else { x_lo + 1 };
        let (y_lo, y_hi) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
                (a.0.min(p.1), a.1.max(p.1))
            });
        let pad = if y_hi > y_lo {
            (y_hi - y_lo) * 0.06
        } else {
            y_lo.abs().max(1.0) * 0.05
        };
        let mut chart = ChartBuilder::on(&inner)
            .x_label_area_size(56)
            .y_label_area_size(100)
            .margin_right(16)
            .build_cartesian_2d(x_lo..x_hi, (y_lo - pad)..(y_hi + pad))?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_desc("iteration")
            .y_desc(y_desc)
            .x_labels((x_hi - x_lo + 1).min(12))
            .x_label_formatter(&|v| v.to_string())
            .y_label_formatter(&|v| tick_label(*v, y_hi - y_lo + 2.0 * pad))
            .label_style(text(16.0))
            .axis_desc_style(text(18.0))
            .draw()?;
        for (k, (_, s)) in self.series.iter().enumerate() {
            let (color, shape) = series_style(k);
            let pts: Vec<(usize, f64)> = s
                .iter()
                .filter_map(|p| Some((p.0, value(p)?)))
                .filter(|p| p.1.is_finite())
                .collect();
            chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
            marker(&mut chart, &pts, color, shape)?;
        }
        Ok(())
    }
}

impl Figure for LearningFigure<'_> {
    fn size(&self) -> (u32, u32) {
        LEARNING_SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let subtitle = format!(
            "{} grid point{} · training loss (training split) and {} (validation split) after each iteration",
            self.series.len(),
            if self.series.len() == 1 { "" } else { "s" },
            self.metric
        );
        let area = titled(root, "Learning curves", &subtitle)?;
        let (plots, legend) = area.split_horizontally(LEARNING_SIZE.0 as i32 - 320);
        let (top, bottom) = plots.split_vertically(plots.dim_in_pixel().1 as i32 / 2);
        self.panel(&top, "Training loss", "training loss", |p| Some(p.1))?;
        let caption = format!("Validation split: {}", self.metric);
        self.panel(&bottom, &caption, self.metric, |p| p.2)?;
        // A legend column beside the panels, so many grid points never cover the curves.
        let rows = self.series.len().max(1) as i32;
        let height = legend.dim_in_pixel().1 as i32 - 40;
        let row_h = (height / rows).clamp(10, 28);
        let size = (row_h as f64 * 0.7).clamp(9.0, 18.0);
        legend.draw_text("grid point", &bold(18.0), (16, 8))?;
        for (k, (label, _)) in self.series.iter().enumerate() {
            let y = 40 + k as i32 * row_h + row_h / 2;
            let (color, shape) = series_style(k);
            legend.draw(&PathElement::new(
                vec![(16, y), (46, y)],
                color.stroke_width(3),
            ))?;
            match shape {
                0 => legend.draw(&Circle::new((31, y), 4, color.filled()))?,
                1 => legend.draw(&TriangleMarker::new((31, y), 6, color.filled()))?,
                _ => legend.draw(&Cross::new((31, y), 5, color.stroke_width(2)))?,
            }
            legend.draw_text(
                label,
                &text(size).pos(Pos::new(HPos::Left, VPos::Center)),
                (56, y),
            )?;
        }
        Ok(())
    }
}

/// Learning curves of a grid: training loss and the validation `metric` per iteration, one
/// line per grid point, in two panels of one figure. Writes `<stem>.png` and `<stem>.svg` in
/// `out_dir`.
pub fn learning_curves(
    series: &[LearningSeries],
    metric: &str,
    out_dir: &Path,
    stem: &str,
) -> Result<Vec<PathBuf>, EdaError> {
    if series.iter().all(|(_, s)| s.is_empty()) {
        return Err(EdaError::NothingToPlot {
            what: "no learning-curve points were recorded",
        });
    }
    let mut stage = Stage::new(out_dir)?;
    stage.figure(&LearningFigure { series, metric }, stem)?;
    stage.commit()
}

struct HeatmapFigure<'a> {
    ranks: Vec<usize>,
    regs: Vec<f64>,
    /// `values[row][col]` for ranks[row], regs[col]; NaN where the grid has no cell.
    values: Vec<Vec<f64>>,
    metric: &'a str,
    best: (usize, f64),
    /// The other searched axes, held at these values in this picture (`alpha=1.0`); empty for none.
    fixed: &'a str,
}

const HEATMAP_SIZE: (u32, u32) = (1200, 780);

/// `0.1` -> `0.1`, `1e-5` -> `0.00001`: the shortest exact decimal.
fn reg_label(v: f64) -> String {
    format!("{v}")
}

impl Figure for HeatmapFigure<'_> {
    fn size(&self) -> (u32, u32) {
        HEATMAP_SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (rows, cols) = (self.ranks.len(), self.regs.len());
        let finite = self.values.iter().flatten().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |a, &v| {
            (a.0.min(v), a.1.max(v))
        });
        let best_row = self.ranks.iter().position(|&r| r == self.best.0);
        let best_col = self.regs.iter().position(|&r| r == self.best.1);
        let best_value = best_row
            .zip(best_col)
            .map(|(r, c)| self.values[r][c])
            .filter(|v| v.is_finite());
        let subtitle = match best_value {
            Some(v) => format!(
                "rank × reg · best of this picture (outlined): rank {}, reg {} with {} = {}",
                self.best.0,
                reg_label(self.best.1),
                self.metric,
                metric_value(v)
            ),
            None => format!(
                "rank × reg · best: rank {}, reg {}",
                self.best.0,
                reg_label(self.best.1)
            ),
        };
        let subtitle = if self.fixed.is_empty() {
            subtitle
        } else {
            format!("{subtitle} · other axes held at {}", self.fixed)
        };
        let area = titled(root, &format!("Grid search: {}", self.metric), &subtitle)?;
        let (plot, bar) = area.split_horizontally(HEATMAP_SIZE.0 as i32 - 190);
        let rank_labels: Vec<String> = self.ranks.iter().map(|r| r.to_string()).collect();
        let reg_labels: Vec<String> = self.regs.iter().map(|&r| reg_label(r)).collect();
        let x_fmt = |v: &i32| category_label(&reg_labels, *v);
        let y_fmt = |v: &i32| category_label(&rank_labels, *v);
        let (all_cols, all_rows): (Vec<usize>, Vec<usize>) =
            ((0..cols).collect(), (0..rows).collect());
        let mut chart = ChartBuilder::on(&plot)
            .x_label_area_size(64)
            .y_label_area_size(90)
            .build_cartesian_2d(
                category_axis(cols, &all_cols),
                category_axis(rows, &all_rows),
            )?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("regularization (reg)")
            .y_desc("rank (latent factors)")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style(text(18.0))
            .axis_desc_style(text(20.0))
            .draw()?;
        let norm = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        let (w, h) = chart.plotting_area().dim_in_pixel();
        let cell_font = ((w as f64 / cols.max(1) as f64) / 5.0)
            .min(h as f64 / rows.max(1) as f64 / 2.6)
            .clamp(11.0, 24.0);
        for (r, row) in self.values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let fill = if v.is_finite() {
                    viridis(norm(v))
                } else {
                    RGBColor(235, 235, 235)
                };
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(at(c, 0.0), at(r, 0.0)), (at(c, 1.0), at(r, 1.0))],
                    fill.filled(),
                )))?;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(at(c, 0.0), at(r, 0.0)), (at(c, 1.0), at(r, 1.0))],
                    WHITE.stroke_width(2),
                )))?;
                let ink = if v.is_finite() && norm(v) < 0.6 {
                    WHITE
                } else {
                    BLACK
                };
                let is_best = Some(r) == best_row && Some(c) == best_col;
                let centered = Pos::new(HPos::Center, VPos::Center);
                let label = metric_value(v);
                let style = if is_best {
                    bold(cell_font)
                } else {
                    text(cell_font)
                };
                chart.draw_series(std::iter::once(
                    EmptyElement::at((at(c, 0.5), at(r, 0.5)))
                        + Text::new(label, (0, 0), style.color(&ink).pos(centered)),
                ))?;
                if is_best {
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((at(c, 0.5), at(r, 0.5)))
                            + Text::new(
                                "best",
                                (0, (cell_font * 1.1) as i32),
                                text(cell_font * 0.75).color(&ink).pos(centered),
                            ),
                    ))?;
                }
            }
        }
        if let (Some(r), Some(c)) = (best_row, best_col) {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(at(c, 0.02), at(r, 0.02)), (at(c, 0.98), at(r, 0.98))],
                ACCENT.stroke_width(5),
            )))?;
        }
        // Colour bar: the metric's range, low at the bottom.
        if lo.is_finite() {
            let (bw, bh) = bar.dim_in_pixel();
            let (top, bottom) = (40i32, bh as i32 - 80);
            let x0 = 30i32;
            let x1 = x0 + (bw as i32 / 5).clamp(20, 36);
            let steps = 64;
            for s in 0..steps {
                let t0 = s as f64 / steps as f64;
                let y_a = bottom - ((bottom - top) as f64 * t0) as i32;
                let y_b = bottom - ((bottom - top) as f64 * (s + 1) as f64 / steps as f64) as i32;
                bar.draw(&Rectangle::new(
                    [(x0, y_b), (x1, y_a)],
                    viridis(t0 + 0.5 / steps as f64).filled(),
                ))?;
            }
            bar.draw(&Rectangle::new(
                [(x0, top), (x1, bottom)],
                BLACK.stroke_width(1),
            ))?;
            let side = text(16.0).pos(Pos::new(HPos::Left, VPos::Center));
            bar.draw_text(&metric_value(hi), &side, (x1 + 8, top))?;
            bar.draw_text(&metric_value(lo), &side, (x1 + 8, bottom))?;
            bar.draw_text(self.metric, &text(16.0), (x0 - 10, bottom + 20))?;
        }
        Ok(())
    }
}

/// A heatmap of a grid search: rank (rows) × reg (columns) -> `metric`, each value printed in its
/// cell and `best` outlined. Cells the grid lacks are grey. Writes `<stem>.png` and `<stem>.svg`.
pub fn grid_heatmap(
    cells: &[GridCell],
    metric: &str,
    fixed: &str,
    best: (usize, f64),
    out_dir: &Path,
    stem: &str,
) -> Result<Vec<PathBuf>, EdaError> {
    if cells.is_empty() {
        return Err(EdaError::NothingToPlot {
            what: "the grid has no cells",
        });
    }
    let mut ranks: Vec<usize> = cells.iter().map(|c| c.0).collect();
    ranks.sort_unstable();
    ranks.dedup();
    let mut regs: Vec<f64> = cells.iter().map(|c| c.1).collect();
    regs.sort_unstable_by(f64::total_cmp);
    regs.dedup();
    let mut values = vec![vec![f64::NAN; regs.len()]; ranks.len()];
    for &(rank, reg, v) in cells {
        let r = ranks.partition_point(|&x| x < rank);
        let c = regs.partition_point(|x| x.total_cmp(&reg).is_lt());
        values[r][c] = v;
    }
    let fig = HeatmapFigure {
        ranks,
        regs,
        values,
        metric,
        best,
        fixed,
    };
    let mut stage = Stage::new(out_dir)?;
    stage.figure(&fig, stem)?;
    stage.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eda::testutil::{assert_png, assert_svg};

    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_689_188), "1,689,188");
    }

    #[test]
    fn compact_numbers_use_k_and_m_suffixes() {
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(1000.0), "1k");
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(200_000.0), "200k");
        assert_eq!(compact(1_200_000.0), "1.2M");
        assert_eq!(compact(0.5), "0.5");
    }

    #[test]
    fn log_bins_cover_every_value_once_with_integer_edges() {
        let values: Vec<u64> = (1..=500).chain([1, 1, 7, 1000]).collect();
        let bins = log_bins(&values, 10);
        assert_eq!(
            bins.iter().map(|b| b.count).sum::<u64>(),
            values.len() as u64
        );
        assert_eq!(
            bins[0],
            LogBin {
                lo: 1,
                hi: 2,
                count: 3
            }
        );
        assert!(bins
            .windows(2)
            .all(|w| w[0].hi == w[1].lo && w[0].lo < w[0].hi));
        assert!(bins.last().unwrap().hi > 1000);
        assert!(log_bins(&[], 10).is_empty());
    }

    #[test]
    fn curve_ranks_are_increasing_and_end_at_the_last_item() {
        for n in [1usize, 5, 1000, 1001, 63_000] {
            let r = curve_ranks(n);
            assert_eq!(r.first(), Some(&1));
            assert_eq!(r.last(), Some(&n));
            assert!(r.windows(2).all(|w| w[0] < w[1]));
            assert!(r.len() <= POPULARITY_DENSE_RANKS + POPULARITY_SPARSE_POINTS + 1);
        }
    }

    #[test]
    fn tick_labels_carry_the_decimals_the_spacing_needs() {
        assert_eq!(tick_label(0.9, 0.55), "0.90");
        assert_eq!(tick_label(1.25, 3.0), "1.2");
        assert_eq!(tick_label(200_000.0, 1.2e6), "200k");
        assert_eq!(tick_label(0.0, 1.2e6), "0");
    }

    #[test]
    fn log_ticks_add_intermediate_steps_on_short_axes() {
        assert_eq!(
            log_ticks(1.0, 100.0),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        );
        assert_eq!(log_ticks(1.0, 1e5), vec![1.0, 10.0, 100.0, 1e3, 1e4, 1e5]);
    }

    #[test]
    fn viridis_runs_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), viridis(0.5));
    }

    fn grid() -> Vec<LearningSeries> {
        let mut out = Vec::new();
        for rank in [5usize, 10, 20] {
            for reg in [0.01f64, 0.1] {
                let points = (1..=10)
                    .map(|it| {
                        let loss = 1000.0 / (it as f64 + rank as f64 * reg);
                        let val = 0.9 + reg + 0.3 / it as f64;
                        (it, loss, Some(val))
                    })
                    .collect();
                out.push((format!("rank={rank} reg={reg}"), points));
            }
        }
        out
    }

    #[test]
    fn learning_curves_write_a_valid_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let files = learning_curves(&grid(), "val_rmse", dir.path(), "learning_curves").unwrap();
        assert_eq!(files.len(), 2);
        assert_png(&dir.path().join("learning_curves.png"));
        assert_svg(&dir.path().join("learning_curves.svg"));
        let svg = fs::read_to_string(dir.path().join("learning_curves.svg")).unwrap();
        assert!(svg.contains("rank=20 reg=0.1") && svg.contains("Validation split: val_rmse"));
    }

    #[test]
    fn learning_curves_without_validation_say_so() {
        let series: Vec<LearningSeries> = grid()
            .into_iter()
            .map(|(l, s)| (l, s.into_iter().map(|p| (p.0, p.1, None)).collect()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        learning_curves(&series, "val_rmse", dir.path(), "curves").unwrap();
        let svg = fs::read_to_string(dir.path().join("curves.svg")).unwrap();
        assert!(svg.contains("no val_rmse was recorded"));
    }

    #[test]
    fn learning_curves_of_nothing_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = learning_curves(&[("a".into(), vec![])], "val_rmse", dir.path(), "c").unwrap_err();
        assert!(matches!(e, EdaError::NothingToPlot { .. }));
    }

    #[test]
    fn grid_heatmap_prints_every_value_and_outlines_the_best() {
        let cells: Vec<GridCell> = vec![
            (10, 0.01, 0.9512),
            (10, 0.1, 0.9233),
            (20, 0.01, 0.9741),
            (20, 0.1, 0.9187),
            (50, 0.1, 0.9301),
        ];
        let dir = tempfile::tempdir().unwrap();
        let files = grid_heatmap(&cells, "rmse", "", (20, 0.1), dir.path(), "grid_rmse").unwrap();
        assert_eq!(files.len(), 2);
        assert_png(&dir.path().join("grid_rmse.png"));
        assert_svg(&dir.path().join("grid_rmse.svg"));
        let svg = fs::read_to_string(dir.path().join("grid_rmse.svg")).unwrap();
        for v in [
            "0.9512", "0.9233", "0.9741", "0.9187", "0.9301", "n/a", "best",
        ] {
            assert!(svg.contains(v), "heatmap lacks `{v}`");
        }
    }

    #[test]
    fn grid_heatmap_of_no_cells_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(grid_heatmap(&[], "rmse", "", (10, 0.1), dir.path(), "g").is_err());
    }

    #[test]
    fn month_labels_parse_back() {
        assert_eq!(parse_month("2014-03"), Some((2014, 3)));
        assert_eq!(parse_month("garbage"), None);
    }
}

/// One line of a forest plot: a figure with its 95% interval.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestRow {
    pub label: String,
    pub value: f64,
    pub ci: Option<(f64, f64)>,
    /// Drawn grey: a baseline among models.
    pub baseline: bool,
}

struct ForestFigure<'a> {
    metric: &'a str,
    models: &'a [ForestRow],
    /// Paired differences against `against`.
    diffs: &'a [ForestRow],
    against: &'a str,
}

const FOREST_ROW: i32 = 44;

impl ForestFigure<'_> {
    fn panel<DB: DrawingBackend>(
        area: &DrawingArea<DB, Shift>,
        caption: &str,
        x_desc: &str,
        rows: &[ForestRow],
        zero_line: bool,
    ) -> DrawResult<DB> {
        area.draw_text(caption, &bold(22.0), (8, 0))?;
        let inner = area.split_vertically(36).1;
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for r in rows {
            let (a, b) = r.ci.unwrap_or((r.value, r.value));
            lo = lo.min(a.min(r.value));
            hi = hi.max(b.max(r.value));
        }
        if zero_line {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
        if !lo.is_finite() {
            inner.draw_text("nothing to show", &text(20.0).color(&SUBTLE), (96, 60))?;
            return Ok(());
        }
        let pad = if hi > lo { (hi - lo) * 0.08 } else { 0.05 };
        let n = rows.len().max(1);
        let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
        let all: Vec<usize> = (0..n).collect();
        let y_fmt = |v: &i32| {
            // Rows top to bottom: the first row at the top.
            let i = v.div_euclid(CAT);
            usize::try_from(n as i32 - 1 - i)
                .ok()
                .and_then(|i| labels.get(i))
                .cloned()
                .unwrap_or_default()
        };
        let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4);
        let mut chart = ChartBuilder::on(&inner)
            .x_label_area_size(56)
            .y_label_area_size((longest as u32 * 10 + 24).clamp(80, 320))
            .margin_right(24)
            .build_cartesian_2d((lo - pad)..(hi + pad), category_axis(n, &all))?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_desc(x_desc)
            .x_labels(8)
            .x_label_formatter(&|v| tick_label(*v, hi - lo + 2.0 * pad))
            .y_label_formatter(&y_fmt)
            .label_style(text(16.0))
            .axis_desc_style(text(18.0))
            .draw()?;
        if zero_line {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 0), (0.0, n as i32 * CAT)],
                SUBTLE.stroke_width(2),
            )))?;
        }
        for (k, r) in rows.iter().enumerate() {
            let y = at(n - 1 - k, 0.5);
            let color = if r.baseline { SUBTLE } else { MAIN };
            if let Some((a, b)) = r.ci {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(a, y), (b, y)],
                    color.stroke_width(3),
                )))?;
                for x in [a, b] {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(x, y - CAT / 8), (x, y + CAT / 8)],
                        color.stroke_width(2),
                    )))?;
                }
            }
            chart.draw_series(std::iter::once(Circle::new(
                (r.value, y),
                7,
                color.filled(),
            )))?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((r.value, y))
                    + Text::new(
                        metric_value(r.value),
                        (0, -24),
                        text(15.0).pos(Pos::new(HPos::Center, VPos::Center)),
                    ),
            ))?;
        }
        Ok(())
    }
}

impl Figure for ForestFigure<'_> {
    fn size(&self) -> (u32, u32) {
        let rows = self.models.len().max(self.diffs.len()).max(1) as i32;
        (1400, (260 + rows * FOREST_ROW * 2).clamp(420, 1600) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let subtitle = format!(
            "test split · dots: the figure; bars: 95% bootstrap interval over test users · right: each model minus `{}`, user by user",
            self.against
        );
        let area = titled(root, &format!("Models on {}", self.metric), &subtitle)?;
        let (left, right) = area.split_horizontally(area.dim_in_pixel().0 as i32 / 2);
        Self::panel(
            &left,
            "Each model (grey: baselines)",
            self.metric,
            self.models,
            false,
        )?;
        Self::panel(
            &right,
            &format!("Difference from `{}`", self.against),
            &format!("Δ {} (0: no difference)", self.metric),
            self.diffs,
            true,
        )?;
        Ok(())
    }
}

/// A forest plot: each model's `metric` with its interval, and beside it each model's paired
/// difference from the baseline `against` with its interval. Writes `<stem>.png` and
/// `<stem>.svg` in `out_dir`.
pub fn forest_plot(
    metric: &str,
    models: &[ForestRow],
    diffs: &[ForestRow],
    against: &str,
    out_dir: &Path,
    stem: &str,
) -> Result<Vec<PathBuf>, EdaError> {
    if models.is_empty() {
        return Err(EdaError::NothingToPlot {
            what: "no model has a figure with an interval",
        });
    }
    let mut stage = Stage::new(out_dir)?;
    stage.figure(
        &ForestFigure {
            metric,
            models,
            diffs,
            against,
        },
        stem,
    )?;
    stage.commit()
}
