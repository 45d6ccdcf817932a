//! The ETL: read, clean, k-core filter, dense ids, Parquet out, atomically.
//!
//! Replaces the old Spark job. Takes resolved [`EtlSettings`]; knows nothing about the command
//! line, the environment or tracking.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tracing::info;

use super::format::{ColumnSpec, InputFormat};
use super::read::{read_ratings, DropCounts, RawRatings, ReadError, ReadOptions, NO_TIMESTAMP};
use super::store::{self, StoreError, INTERACTIONS, ITEM_MAP, POPULAR_ITEMS, SUMMARY, USER_MAP};
use crate::progress::Progress;

/// Inclusive rating bounds; `max` may be infinite (`1..inf`) for counts such as plays.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatingRange {
    pub min: f64,
    pub max: f64,
}

impl Default for RatingRange {
    fn default() -> Self {
        Self { min: 1.0, max: 5.0 }
    }
}

impl std::fmt::Display for RatingRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = |x: f64| {
            if x.is_infinite() {
                "inf".to_string()
            } else {
                x.to_string()
            }
        };
        write!(f, "{}..{}", b(self.min), b(self.max))
    }
}

impl FromStr for RatingRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("invalid rating range `{s}`: expected `MIN..MAX` such as `1..5` or `1..inf`")
        };
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let p = |x: &str| -> Result<f64, String> {
            match x.trim() {
                "inf" | "+inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                t => t.parse::<f64>().map_err(|_| bad()),
            }
        };
        let (min, max) = (p(a)?, p(b)?);
        if min.is_nan() || max.is_nan() || min > max {
            return Err(bad());
        }
        Ok(Self { min, max })
    }
}

/// Resolved ETL settings.
#[derive(Debug, Clone, Serialize)]
pub struct EtlSettings {
    pub input: PathBuf,
    /// How to name the input in the summary when `input` is a copy (of a pipe or stdin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_label: Option<String>,
    pub format: InputFormat,
    pub columns: ColumnSpec,
    pub has_header: Option<bool>,
    pub min_interactions: usize,
    /// Ratings kept; `None` infers the range from the data ([`infer_rating_range`]).
    pub rating_range: Option<RatingRange>,
    pub strict: bool,
    /// Longer lines are skipped and counted (an error with `strict`).
    pub max_line_bytes: usize,
    /// Item metadata (titles, categories, image URLs) to join into the item map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_meta: Option<PathBuf>,
    pub output: PathBuf,
}

#[derive(Debug, Error)]
pub enum EtlError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Meta(#[from] super::meta::MetaError),
    #[error("no ratings left after cleaning `{}` ({} rows read, all dropped: {})", path.display(), rows, reasons)]
    NothingAfterCleaning {
        path: PathBuf,
        rows: u64,
        reasons: String,
    },
    #[error("the {n}-core filter removed every rating ({before} ratings before it)")]
    KCoreEmpty { n: usize, before: usize },
    #[error("cannot tell the rating scale of `{}`: {reason}", path.display())]
    RatingScale { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot hash `{}`", path.display())]
    Hash {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl EtlError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Read(e) => e.hint(),
            Self::Meta(e) => e.hint(),
            Self::KCoreEmpty { n, .. } => Some(format!(
                "lower `--min-interactions` (now {n}); `1` keeps every rating"
            )),
            Self::NothingAfterCleaning { .. } => Some(
                "check `--rating-range` and `--columns`; the summary of drops above says which rule removed the rows".into(),
            ),
            Self::RatingScale { .. } => Some(
                "set the range: `--rating-range 1..5` (or `data.rating_range` in a spec); \
                 `0..inf` for counts"
                    .into(),
            ),
            Self::Store(e) => e.hint(),
            _ => None,
        }
    }
}

/// The rating range of data that did not set one (DECISIONS.md): values on a 0.5 grid within
/// 0..10 are a star scale (its observed min..max: `1..5`, `0.5..5`, `1..10`); otherwise
/// non-negative integers are counts (`0..inf`); anything else cannot be told. Returns the range
/// and why.
pub fn infer_rating_range(ratings: &[f32]) -> Result<(RatingRange, String), String> {
    let finite = ratings.iter().copied().filter(|r| r.is_finite());
    let (min, max) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), r| {
        (a.min(r), b.max(r))
    });
    if min > max {
        return Err("it has no ratings".into());
    }
    let on = |step: f32| {
        ratings
            .iter()
            .all(|r| !r.is_finite() || (r / step).fract() == 0.0)
    };
    if min >= 0.0 && max <= 10.0 && on(0.5) {
        let range = RatingRange {
            min: f64::from(min),
            max: f64::from(max),
        };
        let why =
            format!("inferred: every rating is on a 0.5 grid within 0..10, a star scale {range}");
        return Ok((range, why));
    }
    if min >= 0.0 && on(1.0) {
        let range = RatingRange {
            min: 0.0,
            max: f64::INFINITY,
        };
        return Ok((
            range,
            format!(
                "inferred: every rating is a non-negative integer (up to {max}), counts {range}"
            ),
        ));
    }
    Err(format!(
        "ratings run from {min} to {max} and are neither a star scale (0.5 steps within 0..10) nor counts (non-negative integers)"
    ))
}

/// What `etl_summary.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EtlSummary {
    pub input: InputSummary,
    pub rows_read: u64,
    pub drops: BTreeMap<String, u64>,
    pub rows_after_cleaning: u64,
    pub min_interactions: usize,
    pub rating_range: String,
    /// Whether the range was set or inferred, and from what.
    #[serde(default)]
    pub rating_range_rule: String,
    pub kcore_rounds: usize,
    pub kcore_removed: u64,
    pub users: usize,
    pub items: usize,
    pub ratings: usize,
    pub density: f64,
    pub implicit: bool,
    pub has_timestamp: bool,
    pub rating_histogram: BTreeMap<String, u64>,
    pub columns: BTreeMap<String, String>,
    pub seconds: f64,
    pub recflow_version: String,
    pub created_at: String,
    /// What `--items-meta` added to the item map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_meta: Option<ItemsMetaSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemsMetaSummary {
    pub path: String,
    /// Items described in the file.
    pub items_in_file: usize,
    /// Items of the item map with a title / a category / an image URL.
    pub with_title: usize,
    pub with_category: usize,
    pub with_image_url: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputSummary {
    pub path: String,
    pub format: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The SHA-256 of a file's bytes, hex.
pub fn sha256_file(path: &Path) -> Result<String, std::io::Error> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Runs the ETL described by `s`, writing the outputs into `s.output`.
pub fn run_etl(s: &EtlSettings, progress: &Progress) -> Result<EtlSummary, EtlError> {
    run_etl_hashed(s, progress, None)
}

/// [`run_etl`] for an input whose SHA-256 the caller already has (so it is read once for it).
pub fn run_etl_hashed(
    s: &EtlSettings,
    progress: &Progress,
    sha256: Option<String>,
) -> Result<EtlSummary, EtlError> {
    let t0 = Instant::now();
    // Refuse an unwritable destination before spending time on the input.
    let staging = store::Staging::new(&s.output)?;
    // A bad metadata file stops the ETL before the ratings are read.
    let meta = match &s.items_meta {
        Some(p) => Some((p, super::meta::read_items_meta(p)?)),
        None => None,
    };
    let bytes = fs::metadata(&s.input).map(|m| m.len()).unwrap_or(0);
    // Hash on another thread while the main one parses (the file is read twice, from cache).
    let hash_path = s.input.clone();
    let hasher = std::thread::spawn(move || match sha256 {
        Some(h) => Ok(h),
        None => sha256_file(&hash_path),
    });
    let raw = read_ratings(
        &s.input,
        &ReadOptions {
            format: s.format,
            columns: s.columns.clone(),
            has_header: s.has_header,
            strict: s.strict,
            max_line_bytes: s.max_line_bytes,
        },
        progress,
    )?;
    tracing::debug!(
        "read {} rows in {:.3}s",
        raw.rows_read,
        t0.elapsed().as_secs_f64()
    );
    let sha = hasher
        .join()
        .map_err(|_| EtlError::Hash {
            path: s.input.clone(),
            source: std::io::Error::other("hashing thread failed"),
        })?
        .map_err(|source| EtlError::Hash {
            path: s.input.clone(),
            source,
        })?;

    let (range, rule) = match s.rating_range {
        Some(r) => (r, "set".to_string()),
        // Nothing to infer from: the cleaning below reports why no rating is left.
        None if !raw.rating.iter().any(|r| r.is_finite()) => (
            RatingRange::default(),
            "no ratings to infer a range from".to_string(),
        ),
        None => infer_rating_range(&raw.rating).map_err(|reason| EtlError::RatingScale {
            path: s.input.clone(),
            reason,
        })?,
    };
    tracing::info!("rating range {range} ({rule})");
    let cleaned = clean(raw, range);
    tracing::debug!("cleaned at {:.3}s", t0.elapsed().as_secs_f64());
    let rows_after_cleaning = cleaned.keep.len() as u64;
    if cleaned.keep.is_empty() {
        return Err(EtlError::NothingAfterCleaning {
            path: s.input.clone(),
            rows: cleaned.raw.rows_read,
            reasons: describe_drops(&cleaned.raw.drops),
        });
    }
    let before = cleaned.keep.len();
    let (keep, rounds) = k_core(
        &cleaned.raw.user,
        &cleaned.raw.item,
        cleaned.keep,
        s.min_interactions,
    );
    if keep.is_empty() {
        return Err(EtlError::KCoreEmpty {
            n: s.min_interactions,
            before,
        });
    }
    let kcore_removed = (before - keep.len()) as u64;
    tracing::debug!(
        "k-core ({rounds} rounds) at {:.3}s",
        t0.elapsed().as_secs_f64()
    );
    let raw = cleaned.raw;
    let out = index(&raw, &keep);

    let users = out.user_ids.len();
    let items = out.item_ids.len();
    let ratings = out.user.len();
    let histogram = rating_histogram(&out.rating);
    let mut drops = BTreeMap::new();
    let d = &raw.drops;
    for (k, v) in drops_list(d) {
        drops.insert(k.to_string(), v);
    }
    let mut summary = EtlSummary {
        input: InputSummary {
            path: s
                .input_label
                .clone()
                .unwrap_or_else(|| s.input.display().to_string()),
            format: s.format.to_string(),
            bytes,
            sha256: sha,
        },
        rows_read: raw.rows_read,
        drops,
        rows_after_cleaning,
        min_interactions: s.min_interactions,
        rating_range: range.to_string(),
        rating_range_rule: rule,
        kcore_rounds: rounds,
        kcore_removed,
        users,
        items,
        ratings,
        density: ratings as f64 / (users as f64 * items as f64),
        implicit: raw.implicit,
        has_timestamp: raw.has_timestamp,
        rating_histogram: histogram,
        columns: raw.columns_used.iter().cloned().collect(),
        seconds: 0.0,
        recflow_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: chrono::Utc::now().to_rfc3339(),
        items_meta: None,
    };
    tracing::debug!("indexed at {:.3}s", t0.elapsed().as_secs_f64());
    let item_meta: Option<Vec<super::meta::ItemMeta>> = meta.map(|(path, m)| {
        let rows: Vec<_> = out
            .item_ids
            .iter()
            .map(|id| m.get(id).cloned().unwrap_or_default())
            .collect();
        let count = |f: fn(&super::meta::ItemMeta) -> bool| rows.iter().filter(|r| f(r)).count();
        summary.items_meta = Some(ItemsMetaSummary {
            path: path.display().to_string(),
            items_in_file: m.len(),
            with_title: count(|r| r.title.is_some()),
            with_category: count(|r| r.category.is_some()),
            with_image_url: count(|r| r.image_url.is_some()),
        });
        rows
    });
    write_outputs(&staging, &out, item_meta.as_deref())?;
    tracing::debug!("written at {:.3}s", t0.elapsed().as_secs_f64());
    summary.seconds = (t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    staging.write_json(SUMMARY, &summary)?;
    staging.commit()?;
    info!(
        "✅ Processed {} rows → {} users × {} items ({} ratings, {:.3}s)",
        summary.rows_read, summary.users, summary.items, summary.ratings, summary.seconds
    );
    // The outputs' final place is the caller's to log: `s.output` may be a staging folder that
    // is renamed afterwards.
    Ok(summary)
}

fn drops_list(d: &DropCounts) -> [(&'static str, u64); 10] {
    [
        ("malformed_line", d.malformed_line),
        ("line_too_long", d.line_too_long),
        ("id_too_long", d.id_too_long),
        ("missing_user", d.missing_user),
        ("missing_item", d.missing_item),
        ("missing_rating", d.missing_rating),
        ("bad_rating", d.bad_rating),
        ("bad_timestamp", d.bad_timestamp),
        ("rating_out_of_range", d.rating_out_of_range),
        ("duplicate", d.duplicate),
    ]
}

fn describe_drops(d: &DropCounts) -> String {
    let parts: Vec<String> = drops_list(d)
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// Most distinct values a histogram lists one by one; past it (play counts, scores) it bins.
const HISTOGRAM_VALUES: usize = 20;

/// Counts per rating value, or per bin when there are more than `HISTOGRAM_VALUES` values: counts
/// (non-negative integers) in doubling bins `0`, `1..2`, `3..6`, `7..14`, ...; other values in 20
/// equal-width bins from the smallest to the largest. A per-value histogram of play counts would
/// hold thousands of keys.
fn rating_histogram(ratings: &[f32]) -> BTreeMap<String, u64> {
    let mut exact = BTreeMap::new();
    for r in ratings {
        *exact.entry(format_rating(*r)).or_insert(0u64) += 1;
    }
    if exact.len() <= HISTOGRAM_VALUES {
        return exact;
    }
    let mut bins = BTreeMap::new();
    if ratings.iter().all(|r| *r >= 0.0 && r.fract() == 0.0) {
        for &r in ratings {
            // Capped so the shifts below stay within u64 for any f32 count.
            let k = ((f64::from(r) + 1.0).log2().floor() as u32).min(62);
            let (lo, hi) = ((1u64 << k) - 1, (1u64 << (k + 1)) - 2);
            let label = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}..{hi}")
            };
            *bins.entry(label).or_insert(0u64) += 1;
        }
    } else {
        let (lo, hi) = ratings
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &r| {
                (a.min(r), b.max(r))
            });
        let width = (hi - lo) / HISTOGRAM_VALUES as f32;
        for &r in ratings {
            let k = (((r - lo) / width) as usize).min(HISTOGRAM_VALUES - 1);
            let a = lo + width * k as f32;
            let label = format!("{}..{}", format_rating(a), format_rating(a + width));
            *bins.entry(label).or_insert(0u64) += 1;
        }
    }
    bins
}

fn format_rating(r: f32) -> String {
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

struct Cleaned {
    raw: RawRatings,
    /// Surviving row positions, ascending.
    keep: Vec<usize>,
}

/// Range filter, timestamp check, and duplicate removal keeping the newest (the last in the
/// file among equal timestamps).
fn clean(mut raw: RawRatings, range: RatingRange) -> Cleaned {
    let n = raw.user.len();
    let mut keep: Vec<usize> = Vec::with_capacity(n);
    for k in 0..n {
        let r = raw.rating[k] as f64;
        if r < range.min || r > range.max {
            raw.drops.rating_out_of_range += 1;
            continue;
        }
        if raw.has_timestamp && raw.timestamp[k] == NO_TIMESTAMP {
            raw.drops.bad_timestamp += 1;
            continue;
        }
        keep.push(k);
    }
    // Sort by (user, item, timestamp, position): the last of each (user, item) run is the newest.
    // Keys are materialized first so the sort touches contiguous memory only.
    let mut keyed: Vec<(u32, u32, i64, u32)> = keep
        .iter()
        .map(|&k| (raw.user[k], raw.item[k], raw.timestamp[k], k as u32))
        .collect();
    keyed.par_sort_unstable();
    let order: Vec<usize> = keyed.into_iter().map(|t| t.3 as usize).collect();
    let mut survivors = Vec::with_capacity(order.len());
    for w in 0..order.len() {
        let k = order[w];
        let last = w + 1 == order.len() || {
            let j = order[w + 1];
            raw.user[j] != raw.user[k] || raw.item[j] != raw.item[k]
        };
        if last {
            survivors.push(k);
        } else {
            raw.drops.duplicate += 1;
        }
    }
    survivors.par_sort_unstable();
    Cleaned {
        raw,
        keep: survivors,
    }
}

/// Iterative k-core: drop users with fewer than `n` ratings, then items with fewer than `n`,
/// until a round changes nothing. Returns the surviving rows and the number of rounds.
pub fn k_core(user: &[u32], item: &[u32], mut keep: Vec<usize>, n: usize) -> (Vec<usize>, usize) {
    if n <= 1 {
        return (keep, 0);
    }
    let n_users = user.iter().copied().max().map_or(0, |m| m as usize + 1);
    let n_items = item.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut rounds = 0;
    loop {
        rounds += 1;
        let before = keep.len();
        let mut uc = vec![0u32; n_users];
        for &k in &keep {
            uc[user[k] as usize] += 1;
        }
        keep.retain(|&k| uc[user[k] as usize] as usize >= n);
        let mut ic = vec![0u32; n_items];
        for &k in &keep {
            ic[item[k] as usize] += 1;
        }
        keep.retain(|&k| ic[item[k] as usize] as usize >= n);
        if keep.len() == before || keep.is_empty() {
            return (keep, rounds);
        }
    }
}

/// Final tables with dense ids.
pub(crate) struct Indexed {
    pub user: Vec<i32>,
    pub item: Vec<i32>,
    pub rating: Vec<f32>,
    pub timestamp: Option<Vec<i64>>,
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
}

/// Dense ids like Spark's StringIndexer(frequencyDesc): most frequent first, ties by id string.
fn dense_order(codes: impl Iterator<Item = u32>, names: &[String]) -> (Vec<i32>, Vec<String>) {
    let mut count = vec![0u64; names.len()];
    for c in codes {
        count[c as usize] += 1;
    }
    let mut present: Vec<u32> = (0..names.len() as u32)
        .filter(|&c| count[c as usize] > 0)
        .collect();
    present.par_sort_unstable_by(|&a, &b| {
        count[b as usize]
            .cmp(&count[a as usize])
            .then_with(|| names[a as usize].cmp(&names[b as usize]))
    });
    let mut remap = vec![-1i32; names.len()];
    for (new, &old) in present.iter().enumerate() {
        remap[old as usize] = new as i32;
    }
    let ids = present.iter().map(|&c| names[c as usize].clone()).collect();
    (remap, ids)
}

fn index(raw: &RawRatings, keep: &[usize]) -> Indexed {
    let (umap, user_ids) = dense_order(keep.iter().map(|&k| raw.user[k]), &raw.user_names);
    let (imap, item_ids) = dense_order(keep.iter().map(|&k| raw.item[k]), &raw.item_names);
    // Rows ordered by user, then time, then item: stable and handy for per-user reads.
    let mut rows: Vec<usize> = keep.to_vec();
    rows.par_sort_unstable_by_key(|&k| {
        (
            umap[raw.user[k] as usize],
            raw.timestamp[k],
            imap[raw.item[k] as usize],
        )
    });
    Indexed {
        user: rows.iter().map(|&k| umap[raw.user[k] as usize]).collect(),
        item: rows.iter().map(|&k| imap[raw.item[k] as usize]).collect(),
        rating: rows.iter().map(|&k| raw.rating[k]).collect(),
        timestamp: raw
            .has_timestamp
            .then(|| rows.iter().map(|&k| raw.timestamp[k]).collect()),
        user_ids,
        item_ids,
    }
}

fn write_outputs(
    staging: &store::Staging,
    out: &Indexed,
    meta: Option<&[super::meta::ItemMeta]>,
) -> Result<(), StoreError> {
    let mut cols = vec![
        Column::new("user_idx".into(), &out.user),
        Column::new("item_idx".into(), &out.item),
        Column::new("rating".into(), &out.rating),
    ];
    if let Some(ts) = &out.timestamp {
        cols.push(Column::new("timestamp".into(), ts));
    }
    staging.write_frame(INTERACTIONS, cols)?;
    let idx = |n: usize| (0..n as i32).collect::<Vec<i32>>();
    staging.write_frame(
        USER_MAP,
        vec![
            Column::new("user_idx".into(), idx(out.user_ids.len())),
            Column::new("user_id".into(), &out.user_ids),
        ],
    )?;
    staging.write_frame(ITEM_MAP, store::item_map_columns(&out.item_ids, meta))?;
    let pop = popularity_table(&out.item, &out.rating, out.item_ids.len());
    staging.write_frame(
        POPULAR_ITEMS,
        vec![
            Column::new(
                "item_idx".into(),
                pop.iter().map(|p| p.0).collect::<Vec<i32>>(),
            ),
            Column::new(
                "item_id".into(),
                pop.iter()
                    .map(|p| out.item_ids[p.0 as usize].as_str())
                    .collect::<Vec<&str>>(),
            ),
            Column::new(
                "count_ratings".into(),
                pop.iter().map(|p| p.1).collect::<Vec<i64>>(),
            ),
            Column::new(
                "avg_rating".into(),
                pop.iter().map(|p| p.2).collect::<Vec<f64>>(),
            ),
        ],
    )?;
    Ok(())
}

/// Items most rated first; ties by average rating (higher first), then index.
fn popularity_table(item: &[i32], rating: &[f32], n_items: usize) -> Vec<(i32, i64, f64)> {
    let mut count = vec![0i64; n_items];
    let mut sum = vec![0f64; n_items];
    for (&i, &r) in item.iter().zip(rating) {
        count[i as usize] += 1;
        sum[i as usize] += r as f64;
    }
    let mut rows: Vec<(i32, i64, f64)> = (0..n_items)
        .map(|i| {
            (
                i as i32,
                count[i],
                if count[i] > 0 {
                    sum[i] / count[i] as f64
                } else {
                    0.0
                },
            )
        })
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.total_cmp(&a.2)).then(a.0.cmp(&b.0)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_histogram_of_many_distinct_values_is_binned_and_keeps_every_rating() {
        let counts: Vec<f32> = (0..5000).map(|v| v as f32).collect();
        let h = rating_histogram(&counts);
        assert!(h.len() <= 13, "{h:?}");
        assert_eq!(h["0"], 1);
        assert_eq!(h["1..2"], 2);
        assert_eq!(h["3..6"], 4);
        assert_eq!(h.values().sum::<u64>(), 5000);
        let scores: Vec<f32> = (0..100).map(|v| v as f32 * 0.37 - 5.0).collect();
        let h = rating_histogram(&scores);
        assert_eq!(h.len(), HISTOGRAM_VALUES);
        assert_eq!(h.values().sum::<u64>(), 100);
        let stars = [1.0, 2.0, 5.0, 5.0];
        assert_eq!(rating_histogram(&stars)["5"], 2);
    }

    #[test]
    fn an_unset_rating_range_is_inferred_by_the_star_scale_then_counts_rule() {
        let star = |v: &[f32]| infer_rating_range(v).unwrap().0.to_string();
        assert_eq!(star(&[1.0, 5.0, 3.0]), "1..5");
        // Half stars are a star scale, so 0.5 is kept instead of dropped.
        assert_eq!(star(&[0.5, 4.5, 5.0]), "0.5..5");
        assert_eq!(star(&[1.0, 10.0]), "1..10");
        // Integers beyond 10 are counts.
        assert_eq!(star(&[0.0, 3.0, 250.0]), "0..inf");
        let (_, why) = infer_rating_range(&[0.0, 3.0, 250.0]).unwrap();
        assert!(why.contains("counts"), "{why}");
        // Neither: negative or fractional values ask for the range.
        for bad in [&[-1.0f32, 2.0][..], &[0.3, 4.0], &[1.5, 12.5], &[]] {
            assert!(infer_rating_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rating_range_parses_bounds_and_infinity() {
        assert_eq!(
            "1..5".parse::<RatingRange>().unwrap(),
            RatingRange { min: 1.0, max: 5.0 }
        );
        assert_eq!("1..inf".parse::<RatingRange>().unwrap().max, f64::INFINITY);
        assert!("5..1".parse::<RatingRange>().is_err());
        assert!("x".parse::<RatingRange>().is_err());
    }

    #[test]
    fn dense_ids_most_frequent_first_ties_by_string() {
        let names: Vec<String> = ["22", "196", "5"].iter().map(|s| s.to_string()).collect();
        // "22" twice, "196" twice, "5" once: the tie goes to "196" < "22" as strings.
        let (remap, ids) = dense_order([0, 0, 1, 1, 2].into_iter(), &names);
        assert_eq!(ids, vec!["196", "22", "5"]);
        assert_eq!(remap, vec![1, 0, 2]);
    }

    #[test]
    fn duplicates_keep_the_newest_rating() {
        let raw = RawRatings {
            user: vec![0, 0, 0],
            item: vec![0, 0, 0],
            rating: vec![1.0, 5.0, 3.0],
            timestamp: vec![10, 30, 20],
            user_names: vec!["u".into()],
            item_names: vec!["i".into()],
            rows_read: 3,
            has_timestamp: true,
            ..Default::default()
        };
        let c = clean(raw, RatingRange::default());
        assert_eq!(c.keep, vec![1]);
        assert_eq!(c.raw.drops.duplicate, 2);
    }

    #[test]
    fn popularity_orders_by_count_then_mean() {
        let t = popularity_table(&[0, 1, 1, 2, 2], &[5.0, 3.0, 3.0, 4.0, 5.0], 3);
        assert_eq!(t.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 1, 0]);
    }

    proptest! {
        #[test]
        fn k_core_leaves_every_user_and_item_with_at_least_n(
            pairs in proptest::collection::vec((0u32..30, 0u32..30), 0..400),
            n in 1usize..6,
        ) {
            let user: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            let item: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            let (keep, _) = k_core(&user, &item, (0..pairs.len()).collect(), n);
            let mut uc = std::collections::HashMap::new();
            let mut ic = std::collections::HashMap::new();
            for &k in &keep {
                *uc.entry(user[k]).or_insert(0usize) += 1;
                *ic.entry(item[k]).or_insert(0usize) += 1;
            }
            prop_assert!(uc.values().all(|&c| c >= n));
            prop_assert!(ic.values().all(|&c| c >= n));
            // Maximality: a dropped row's user or item left the core entirely (counts only fall).
            let kept: std::collections::HashSet<usize> = keep.iter().copied().collect();
            if n > 1 {
                for k in (0..pairs.len()).filter(|k| !kept.contains(k)) {
                    prop_assert!(!(uc.contains_key(&user[k]) && ic.contains_key(&item[k])));
                }
            }
        }
    }
}
