//! The dataset report: `summary.json`, the four figures as PNG and SVG, a self-contained
//! `report.html`, and the statistics as a terminal table.
//!
//! All files of one report are written into a hidden folder inside the output folder and renamed
//! into place at the end, so a failed run never leaves a half-written report. The HTML embeds its
//! figures as inline SVG and references nothing outside itself. Knows nothing about the command
//! line or tracking.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::plots::{
    log_bins, popularity_figure, thousands, ActivityFigure, MonthlyFigure, RatingFigure, Stage,
    ACTIVITY_BINS_PER_DECADE,
};
use super::stats::{self, EdaStats, PerMonth, Quantiles, HEAD_SHARE_PERCENT};
use super::EdaError;
use crate::data::store::Dataset;

pub const SUMMARY_JSON: &str = "summary.json";
pub const REPORT_HTML: &str = "report.html";
/// Stems of the dataset figures; each is written as `<stem>.png` and `<stem>.svg`.
pub const RATING_DISTRIBUTION: &str = "rating_distribution";
pub const USER_ACTIVITY: &str = "user_activity";
pub const ITEM_POPULARITY: &str = "item_popularity";
pub const RATINGS_PER_MONTH: &str = "ratings_per_month";

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportFiles {
    pub dir: PathBuf,
    pub summary_json: PathBuf,
    pub report_html: PathBuf,
    /// Every figure file, PNG and SVG.
    pub plots: Vec<PathBuf>,
}

impl ReportFiles {
    /// Every file written (for logging them as artifacts).
    pub fn all(&self) -> Vec<PathBuf> {
        let mut v = self.plots.clone();
        v.push(self.summary_json.clone());
        v.push(self.report_html.clone());
        v
    }
}

/// Writes `summary.json`, the figures (PNG and SVG) and `report.html` into `out_dir`.
///
/// `stats` must have been computed from `ds` (the figures draw counts from `ds` and annotate them
/// with `stats`). Without timestamps there is no per-month figure, and a stale one from an earlier
/// report in `out_dir` is removed; the HTML says the view needs a timestamp column.
pub fn write_report(
    stats: &EdaStats,
    ds: &Dataset,
    out_dir: &Path,
) -> Result<ReportFiles, EdaError> {
    let (Some(rating), Some(activity)) = (&stats.rating, &stats.user_activity) else {
        return Err(EdaError::NoRatings);
    };
    let x = &ds.interactions;
    let mut stage = Stage::new(out_dir)?;
    let mut figures: Vec<(&str, String, String)> = Vec::new();

    let svg = stage.figure(
        &RatingFigure {
            rating,
            ratings: stats.ratings,
        },
        RATING_DISTRIBUTION,
    )?;
    figures.push((RATING_DISTRIBUTION, "Rating distribution".into(), svg));

    let svg = stage.figure(
        &ActivityFigure {
            bins: log_bins(&stats::user_activity(x), ACTIVITY_BINS_PER_DECADE),
            users: stats.users,
            median: activity.p50,
            p90: activity.p90,
            max: activity.max,
        },
        USER_ACTIVITY,
    )?;
    figures.push((USER_ACTIVITY, "User activity".into(), svg));

    let curve = stats::popularity_curve(x);
    if let Some(fig) = popularity_figure(stats, &curve) {
        let svg = stage.figure(&fig, ITEM_POPULARITY)?;
        figures.push((ITEM_POPULARITY, "Item popularity".into(), svg));
    }

    let mut monthly = false;
    if let PerMonth::Months {
        months,
        gaps_filled,
        out_of_range,
        ..
    } = &stats.ratings_per_month
    {
        if !months.is_empty() {
            let svg = stage.figure(
                &MonthlyFigure {
                    months,
                    gaps_filled: *gaps_filled,
                    out_of_range: *out_of_range,
                },
                RATINGS_PER_MONTH,
            )?;
            figures.push((RATINGS_PER_MONTH, "Ratings per month".into(), svg));
            monthly = true;
        }
    }

    let json = serde_json::to_vec_pretty(stats).map_err(EdaError::Json)?;
    stage.write(SUMMARY_JSON, &json)?;
    stage.write(REPORT_HTML, html(stats, &figures).as_bytes())?;
    let written = stage.commit()?;

    if !monthly {
        for ext in ["png", "svg"] {
            let stale = out_dir.join(format!("{RATINGS_PER_MONTH}.{ext}"));
            if stale.exists() {
                fs::remove_file(&stale).map_err(|source| EdaError::Write {
                    path: stale.clone(),
                    source,
                })?;
            }
        }
    }
    let plots = written
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "svg"))
        .collect();
    Ok(ReportFiles {
        dir: out_dir.to_path_buf(),
        summary_json: out_dir.join(SUMMARY_JSON),
        report_html: out_dir.join(REPORT_HTML),
        plots,
    })
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn density(v: f64) -> String {
    if v >= 0.001 {
        format!("{:.3}%", v * 100.0)
    } else {
        format!("{:.4}% ({v:.3e})", v * 100.0)
    }
}

fn quantile_line(q: &Quantiles) -> String {
    format!(
        "min {}  p25 {}  p50 {}  p75 {}  p90 {}  p99 {}  max {}  (mean {:.2})",
        thousands(q.min),
        thousands(q.p25),
        thousands(q.p50),
        thousands(q.p75),
        thousands(q.p90),
        thousands(q.p99),
        thousands(q.max),
        q.mean
    )
}

/// The statistics as labelled rows: (section, label, value).
fn rows(stats: &EdaStats) -> Vec<(&'static str, String, String)> {
    let mut r: Vec<(&'static str, String, String)> = Vec::new();
    let mut add = |s: &'static str, l: &str, v: String| r.push((s, l.to_string(), v));
    add("size", "users", thousands(stats.users as u64));
    add("size", "items", thousands(stats.items as u64));
    add("size", "ratings", thousands(stats.ratings as u64));
    add("size", "density", density(stats.density));
    if stats.users_without_ratings > 0 {
        add(
            "size",
            "user ids without ratings",
            thousands(stats.users_without_ratings as u64),
        );
    }
    if stats.items_without_ratings > 0 {
        add(
            "size",
            "item ids without ratings",
            thousands(stats.items_without_ratings as u64),
        );
    }
    if let Some(rt) = &stats.rating {
        add("ratings", "mean", format!("{:.3}", rt.mean));
        add("ratings", "median", format!("{}", rt.median));
        add("ratings", "range", format!("{} to {}", rt.min, rt.max));
        let hist = rt
            .histogram
            .iter()
            .map(|b| {
                let name = if b.lo == b.hi {
                    format!("{}", b.lo)
                } else {
                    format!("{:.3}-{:.3}", b.lo, b.hi)
                };
                format!("{name}: {} ({})", thousands(b.count as u64), pct(b.share))
            })
            .collect::<Vec<_>>();
        add(
            "ratings",
            &format!("histogram ({})", rt.histogram_kind),
            hist.join(", "),
        );
    }
    if let Some(q) = &stats.user_activity {
        add("activity", "ratings per user", quantile_line(q));
    }
    if let Some(q) = &stats.item_popularity {
        add("activity", "ratings per item", quantile_line(q));
    }
    for t in &stats.top_item_shares {
        add(
            "popularity",
            &format!("top {}% of items", t.percent),
            format!(
                "{} items hold {} of ratings",
                thousands(t.items as u64),
                pct(t.share)
            ),
        );
    }
    if let Some(g) = stats.item_popularity_gini {
        add("popularity", "Gini of ratings per item", format!("{g:.4}"));
    }
    if let Some(lt) = &stats.long_tail {
        add(
            "popularity",
            "long-tail cut",
            format!(
                "top {} items ({}) hold {} of ratings (≥{}%)",
                thousands(lt.head_items as u64),
                pct(lt.head_item_share),
                pct(lt.head_rating_share),
                lt.head_rating_percent
            ),
        );
    }
    match &stats.ratings_per_month {
        PerMonth::NeedsTimestamps { message } => {
            add("time", "ratings per month", message.clone());
        }
        PerMonth::Months {
            first,
            last,
            months,
            out_of_range,
            ..
        } => {
            let active = months.iter().filter(|m| m.ratings > 0).count();
            let span = match (first, last) {
                (Some(f), Some(l)) => format!("{f} to {l}"),
                _ => "no ratings".into(),
            };
            add(
                "time",
                "months (UTC)",
                format!("{span}, {active} with ratings"),
            );
            if let Some(b) = months.iter().max_by_key(|m| m.ratings) {
                add(
                    "time",
                    "busiest month",
                    format!("{} ({} ratings)", b.month, thousands(b.ratings as u64)),
                );
            }
            if *out_of_range > 0 {
                add(
                    "time",
                    "timestamps out of range",
                    thousands(*out_of_range as u64),
                );
            }
        }
    }
    r
}

/// The statistics as an aligned text table for the terminal.
pub fn stats_table(stats: &EdaStats) -> String {
    let rows = rows(stats);
    let width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    let mut section = "";
    for (s, label, value) in &rows {
        if *s != section {
            let _ = writeln!(out, "{s}");
            section = s;
        }
        let _ = writeln!(out, "  {label:<width$}  {value}");
    }
    if !stats.top_items.is_empty() {
        let _ = writeln!(out, "most rated items");
        let id_w = stats
            .top_items
            .iter()
            .map(|t| t.item_id.chars().count())
            .max()
            .unwrap_or(0)
            .max(width);
        for t in &stats.top_items {
            let _ = writeln!(
                out,
                "  {:<id_w$}  {} ratings, mean {:.2}",
                t.item_id,
                thousands(t.ratings as u64),
                t.mean_rating
            );
        }
    }
    let _ = writeln!(out, "quantiles are {}", stats.quantile_method);
    out
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// An SVG document as an inline element: drops the XML prologue and lets CSS size it.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(k) => &svg[k..],
        None => svg,
    }
}

const STYLE: &str =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1240px;\
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
h1{margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}\
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.3em .8em;border-bottom:1px solid #eee;\
text-align:left;vertical-align:top}th{background:#f6f6f6}td.num{text-align:right;\
font-variant-numeric:tabular-nums}td.section{font-weight:600;color:#555}\
figure{margin:1em 0}figure svg{width:100%;height:auto;border:1px solid #eee}\
figcaption{color:#555;font-size:.9em}.note{background:#fff8e1;border-left:4px solid #f0b400;\
padding:.6em 1em}dt{font-weight:600}dd{margin:0 0 .6em 1.2em}";

fn html(stats: &EdaStats, figures: &[(&str, String, String)]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>recflow data overview</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Data overview</h1>\n<p>{} users · {} items · {} ratings · density {}</p>\n",
        thousands(stats.users as u64),
        thousands(stats.items as u64),
        thousands(stats.ratings as u64),
        esc(&density(stats.density)),
    );
    h.push_str(
        "<h2>Statistics</h2>\n<table>\n<tr><th>section</th><th>statistic</th><th>value</th></tr>\n",
    );
    let mut section = "";
    // Quantiles get their own table below, one column each.
    for (s, label, value) in rows(stats).into_iter().filter(|r| r.0 != "activity") {
        let shown = if s != section { s } else { "" };
        section = s;
        let _ = writeln!(
            h,
            "<tr><td class=\"section\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(shown),
            esc(&label),
            esc(&value)
        );
    }
    h.push_str("</table>\n");
    let quantile_rows = [
        ("ratings per user", &stats.user_activity),
        ("ratings per item", &stats.item_popularity),
    ];
    if quantile_rows.iter().any(|r| r.1.is_some()) {
        h.push_str(
            "<h3>Activity and popularity (nearest-rank quantiles)</h3>\n<table>\n<tr><th></th>\
             <th>min</th><th>p25</th><th>p50</th><th>p75</th><th>p90</th><th>p99</th>\
             <th>max</th><th>mean</th></tr>\n",
        );
        for (name, q) in quantile_rows {
            if let Some(q) = q {
                let _ = write!(h, "<tr><td>{name}</td>");
                for v in [q.min, q.p25, q.p50, q.p75, q.p90, q.p99, q.max] {
                    let _ = write!(h, "<td class=\"num\">{}</td>", thousands(v));
                }
                let _ = writeln!(h, "<td class=\"num\">{:.2}</td></tr>", q.mean);
            }
        }
        h.push_str("</table>\n");
    }
    for (stem, title, svg) in figures {
        let _ = write!(
            h,
            "<h2 id=\"{}\">{}</h2>\n<figure>\n{}\n<figcaption>Also saved as {}.png and {}.svg \
             beside this page.</figcaption>\n</figure>\n",
            esc(stem),
            esc(title),
            inline_svg(svg),
            esc(stem),
            esc(stem)
        );
    }
    if let PerMonth::NeedsTimestamps { message } = &stats.ratings_per_month {
        let _ = write!(
            h,
            "<h2 id=\"{RATINGS_PER_MONTH}\">Ratings per month</h2>\n<p class=\"note\">{}</p>\n",
            esc(&format!(
                "{message}. Keep the timestamp column in the ETL input to see this view."
            ))
        );
    }
    if !stats.top_items.is_empty() {
        h.push_str(
            "<h2>Most rated items</h2>\n<table>\n<tr><th>#</th><th>item id</th>\
                    <th>index</th><th>ratings</th><th>mean rating</th></tr>\n",
        );
        for (k, t) in stats.top_items.iter().enumerate() {
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{:.2}</td></tr>",
                k + 1,
                esc(&t.item_id),
                t.item_idx,
                thousands(t.ratings as u64),
                t.mean_rating
            );
        }
        h.push_str("</table>\n");
    }
    let _ = write!(
        h,
        "<h2>Definitions</h2>\n<dl>\n\
         <dt>users, items</dt><dd>ids with at least one rating; density is ratings / (users × items).</dd>\n\
         <dt>quantiles</dt><dd>nearest-rank: the p-th percentile of n sorted values is the value at \
         rank ⌈p·n/100⌉, always an observed value (numpy's <code>inverted_cdf</code>). The rating \
         median is the usual one (mean of the two middle values when n is even).</dd>\n\
         <dt>top p% of items</dt><dd>the ⌈p·items/100⌉ most rated items.</dd>\n\
         <dt>Gini</dt><dd>of ratings per item over items with at least one rating: 0 when all items \
         have the same count, close to 1 when a few items have nearly all ratings.</dd>\n\
         <dt>long-tail cut</dt><dd>the smallest number of most rated items that together hold at \
         least {HEAD_SHARE_PERCENT}% of ratings (shaded in the popularity plot); the rest is the \
         tail.</dd>\n\
         <dt>months</dt><dd>calendar months in UTC of the unix-seconds timestamps.</dd>\n\
         </dl>\n<p>Every statistic is computed on all ratings; nothing is sampled. The popularity \
         curve is drawn through every rank up to 1,000 and log-spaced ranks beyond.</p>\n\
         </body>\n</html>\n"
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::interactions::Interactions;
    use crate::eda::stats::compute_stats;
    use crate::eda::testutil::{assert_png, assert_svg};

    fn dataset(with_ts: bool) -> Dataset {
        // 30 users, 12 items, a skewed popularity and two years of timestamps.
        let (mut user, mut item, mut rating, mut ts) = (vec![], vec![], vec![], vec![]);
        for u in 0..30u32 {
            for i in 0..12u32 {
                if (u + 1) * (i + 1) % 7 < 3 || i == 0 {
                    user.push(u);
                    item.push(i);
                    rating.push(((u + i) % 5 + 1) as f32);
                    ts.push(1_500_000_000 + (u as i64 * 12 + i as i64) * 200_000);
                }
            }
        }
        let n_items = 12;
        Dataset {
            interactions: Interactions::new(user, item, rating, with_ts.then_some(ts), 30, n_items)
                .unwrap(),
            user_ids: (0..30).map(|u| format!("user{u}")).collect(),
            item_ids: (0..n_items).map(|i| format!("<item {i}>")).collect(),
            item_meta: None,
        }
    }

    #[test]
    fn every_figure_is_written_as_a_valid_png_and_svg() {
        let ds = dataset(true);
        let stats = compute_stats(&ds);
        let dir = tempfile::tempdir().unwrap();
        let files = write_report(&stats, &ds, dir.path()).unwrap();
        let stems = [
            RATING_DISTRIBUTION,
            USER_ACTIVITY,
            ITEM_POPULARITY,
            RATINGS_PER_MONTH,
        ];
        assert_eq!(files.plots.len(), 2 * stems.len());
        for stem in stems {
            let png = dir.path().join(format!("{stem}.png"));
            let svg = dir.path().join(format!("{stem}.svg"));
            assert!(files.plots.contains(&png) && files.plots.contains(&svg));
            assert_png(&png);
            assert_svg(&svg);
        }
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(&files.summary_json).unwrap()).unwrap();
        assert_eq!(json["ratings"], stats.ratings);
        assert_eq!(json["ratings_per_month"]["status"], "months");
        for p in files.all() {
            assert!(fs::metadata(&p).unwrap().len() > 0, "{}", p.display());
        }
    }

    #[test]
    fn the_html_report_embeds_everything_it_shows() {
        let ds = dataset(true);
        let stats = compute_stats(&ds);
        let dir = tempfile::tempdir().unwrap();
        let files = write_report(&stats, &ds, dir.path()).unwrap();
        let html = fs::read_to_string(&files.report_html).unwrap();
        let lower = html.to_lowercase();
        for bad in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "<script",
            "<link",
            "@import",
            "url(",
            "<img",
        ] {
            assert!(!lower.contains(bad), "report.html contains `{bad}`");
        }
        // Four inline figures, and item ids escaped.
        assert_eq!(html.matches("<svg").count(), 4);
        assert!(html.contains("&lt;item 0&gt;") && !html.contains("<item 0>"));
        assert!(html.contains("Gini"));
    }

    #[test]
    fn without_timestamps_the_report_says_the_month_view_needs_one() {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset(true);
        write_report(&compute_stats(&ds), &ds, dir.path()).unwrap();
        assert!(dir.path().join("ratings_per_month.png").exists());
        let ds = dataset(false);
        let stats = compute_stats(&ds);
        let files = write_report(&stats, &ds, dir.path()).unwrap();
        assert_eq!(files.plots.len(), 6);
        assert!(
            !dir.path().join("ratings_per_month.png").exists(),
            "stale figure removed"
        );
        assert!(!dir.path().join("ratings_per_month.svg").exists());
        let html = fs::read_to_string(&files.report_html).unwrap();
        assert!(html.contains("need a timestamp column"));
        assert!(stats_table(&stats).contains("need a timestamp column"));
    }

    #[test]
    fn a_report_leaves_no_temporary_files_behind() {
        let ds = dataset(true);
        let dir = tempfile::tempdir().unwrap();
        write_report(&compute_stats(&ds), &ds, dir.path()).unwrap();
        let hidden: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(hidden.is_empty());
    }

    #[test]
    fn a_report_of_no_ratings_is_refused() {
        let x = Interactions::new(vec![], vec![], vec![], None, 0, 0).unwrap();
        let ds = Dataset {
            interactions: x,
            user_ids: vec![],
            item_ids: vec![],
            item_meta: None,
        };
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            write_report(&compute_stats(&ds), &ds, dir.path()),
            Err(EdaError::NoRatings)
        ));
    }

    #[test]
    fn stats_table_lists_sizes_quantiles_and_shares() {
        let ds = dataset(true);
        let stats = compute_stats(&ds);
        let t = stats_table(&stats);
        for needle in [
            "users",
            "ratings per user",
            "p99",
            "top 1% of items",
            "top 10% of items",
            "Gini",
            "long-tail cut",
            "busiest month",
            "nearest-rank",
        ] {
            assert!(t.contains(needle), "table lacks `{needle}`:\n{t}");
        }
    }

    #[test]
    fn esc_escapes_markup_characters() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
