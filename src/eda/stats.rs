//! Exact statistics of a ratings table: sizes, the rating distribution, user activity, item
//! popularity and its concentration, and ratings per month.
//!
//! Every figure is computed on all rows; nothing is sampled. Knows the `Dataset` type and nothing
//! about files, plots or the command line.
//!
//! Definitions (also in the HTML report):
//! - *users*, *items*: ids with at least one rating (ids in the id space with none are counted
//!   apart, in `users_without_ratings` and `items_without_ratings`).
//! - *density*: ratings / (users × items).
//! - *quantiles* are nearest-rank: for `n` sorted values `x[1..=n]` and a percentage `p` in
//!   `(0, 100]`, the p-th percentile is `x[⌈p·n/100⌉]`, the smallest value with at least `p%` of
//!   values at or below it (numpy's `method="inverted_cdf"`). It is always an observed value.
//!   `min` is `x[1]`, `max` is `x[n]`.
//! - *median* of ratings is the usual one: the middle value, or the mean of the two middle values
//!   when `n` is even (pandas' `median()`).
//! - *top p% of items*: the `⌈p·items/100⌉` most rated items (at least one).
//! - *Gini* of item popularity over items with at least one rating, with counts sorted ascending
//!   `x[1..=n]`: `Σ (2i − n − 1)·x[i] / (n · Σ x[i])`; 0 when every item has the same count, close
//!   to 1 when one item has them all.
//! - *long-tail cut*: the head is the smallest number of most-rated items that together hold at
//!   least 80% of the ratings; the remaining items are the tail.
//! - *months* are calendar months in UTC of unix-seconds timestamps.

use chrono::{DateTime, Datelike};
use serde::Serialize;

use crate::data::interactions::Interactions;
use crate::data::store::Dataset;

/// How quantiles are defined, written into `summary.json` so readers need not guess.
pub const QUANTILE_METHOD: &str =
    "nearest-rank: the p-th percentile of n sorted values is the value at rank ceil(p*n/100)";

/// At most this many distinct rating values get a bar each; more are grouped into equal-width bins.
pub const MAX_DISCRETE_RATING_VALUES: usize = 32;
/// Number of equal-width bins when ratings have many distinct values (counts, implicit data).
pub const RATING_BINS: usize = 20;
/// Percentages of items whose share of ratings is reported.
pub const TOP_ITEM_PERCENTS: [u32; 2] = [1, 10];
/// The head of the popularity curve holds this share of ratings (the long-tail cut).
pub const HEAD_SHARE_PERCENT: u32 = 80;
/// Months between the first and last are listed with zeros when the span is at most this long;
/// longer spans (usually bad timestamps) list only months that have ratings.
pub const MAX_FILLED_MONTHS: i64 = 1200;
/// How many of the most rated items are listed by id.
pub const TOP_ITEMS_LISTED: usize = 10;

/// Everything `recflow eda` reports about a ratings table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdaStats {
    /// Distinct users with at least one rating.
    pub users: usize,
    /// Distinct items with at least one rating.
    pub items: usize,
    /// Rating rows.
    pub ratings: usize,
    /// ratings / (users × items); 0 when there are none.
    pub density: f64,
    pub users_without_ratings: usize,
    pub items_without_ratings: usize,
    /// `None` when there are no ratings.
    pub rating: Option<RatingSummary>,
    /// Ratings per user, over users with at least one rating.
    pub user_activity: Option<Quantiles>,
    /// Ratings per item, over items with at least one rating.
    pub item_popularity: Option<Quantiles>,
    /// Share of ratings on the top 1% and top 10% of items.
    pub top_item_shares: Vec<TopShare>,
    /// Gini coefficient of ratings per item.
    pub item_popularity_gini: Option<f64>,
    pub long_tail: Option<LongTail>,
    /// The most rated items, most first (ties by index).
    pub top_items: Vec<TopItem>,
    pub ratings_per_month: PerMonth,
    pub quantile_method: String,
}

/// The rating column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatingSummary {
    pub mean: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub distinct_values: usize,
    /// `"per value"`: one bin per distinct value (`lo == hi`); `"equal width"`: [`RATING_BINS`]
    /// bins `[lo, hi)` over `[min, max]`, the last one closed.
    pub histogram_kind: String,
    pub histogram: Vec<RatingBin>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatingBin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    /// count / ratings.
    pub share: f64,
}

/// Nearest-rank quantiles of a count (see the module documentation), and the mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    pub min: u64,
    pub p25: u64,
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: f64,
}

/// The ratings held by the most rated `percent`% of items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopShare {
    pub percent: u32,
    /// ⌈percent · items / 100⌉, at least 1.
    pub items: usize,
    pub ratings: usize,
    /// ratings / all ratings.
    pub share: f64,
}

/// Where the popularity curve's head ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LongTail {
    /// The head holds at least this percentage of ratings.
    pub head_rating_percent: u32,
    /// Smallest number of most rated items that do.
    pub head_items: usize,
    /// head_items / items.
    pub head_item_share: f64,
    /// The share the head actually holds (≥ the target).
    pub head_rating_share: f64,
    /// Ratings of the least rated item in the head.
    pub cut_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopItem {
    pub item_idx: u32,
    pub item_id: String,
    pub ratings: usize,
    pub mean_rating: f64,
}

/// Ratings per calendar month (UTC), or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PerMonth {
    /// The data has no timestamp column.
    NeedsTimestamps { message: String },
    Months {
        /// `YYYY-MM` of the earliest and latest rating; `None` when there are no ratings.
        first: Option<String>,
        last: Option<String>,
        /// Whether months without ratings between `first` and `last` are listed (with 0).
        gaps_filled: bool,
        /// Timestamps outside the calendar's range, left out of `months`.
        out_of_range: usize,
        months: Vec<MonthCount>,
    },
}

impl PerMonth {
    pub const NEEDS_TIMESTAMPS: &'static str =
        "ratings per month need a timestamp column; this data has none";
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthCount {
    /// `YYYY-MM`.
    pub month: String,
    pub ratings: usize,
}

/// Statistics of a processed dataset; ids name the most rated items.
pub fn compute_stats(ds: &Dataset) -> EdaStats {
    compute_stats_for(&ds.interactions, &ds.item_ids)
}

/// Statistics of an interactions table; `item_ids[i]` names item `i` (missing names are shown as
/// the index).
pub fn compute_stats_for(x: &Interactions, item_ids: &[String]) -> EdaStats {
    let n = x.len();
    let user_counts = counts(&x.user, x.n_users);
    let item_counts = counts(&x.item, x.n_items);
    let mut user_active: Vec<u64> = user_counts.iter().copied().filter(|&c| c > 0).collect();
    let mut item_active: Vec<u64> = item_counts.iter().copied().filter(|&c| c > 0).collect();
    user_active.sort_unstable();
    item_active.sort_unstable();
    let (users, items) = (user_active.len(), item_active.len());
    let density = if n == 0 {
        0.0
    } else {
        n as f64 / (users as f64 * items as f64)
    };
    let by_popularity = descending(&item_active);
    EdaStats {
        users,
        items,
        ratings: n,
        density,
        users_without_ratings: x.n_users.saturating_sub(users),
        items_without_ratings: x.n_items.saturating_sub(items),
        rating: rating_summary(&x.rating),
        user_activity: quantiles(&user_active),
        item_popularity: quantiles(&item_active),
        top_item_shares: TOP_ITEM_PERCENTS
            .iter()
            .filter_map(|&p| top_share(&by_popularity, p))
            .collect(),
        item_popularity_gini: gini(&item_active),
        long_tail: long_tail(&by_popularity, HEAD_SHARE_PERCENT),
        top_items: top_items(x, &item_counts, item_ids),
        ratings_per_month: match &x.timestamp {
            Some(ts) => per_month(ts),
            None => PerMonth::NeedsTimestamps {
                message: PerMonth::NEEDS_TIMESTAMPS.to_string(),
            },
        },
        quantile_method: QUANTILE_METHOD.to_string(),
    }
}

/// Rows per id, over the id space `0..n`.
pub(crate) fn counts(ids: &[u32], n: usize) -> Vec<u64> {
    let mut c = vec![0u64; n];
    for &i in ids {
        // Ids are checked against the id space when `Interactions` is built.
        if let Some(slot) = c.get_mut(i as usize) {
            *slot += 1;
        }
    }
    c
}

/// Ratings per item with at least one, most rated first.
pub(crate) fn popularity_curve(x: &Interactions) -> Vec<u64> {
    let mut c: Vec<u64> = counts(&x.item, x.n_items)
        .into_iter()
        .filter(|&c| c > 0)
        .collect();
    c.sort_unstable_by(|a, b| b.cmp(a));
    c
}

/// Ratings per user with at least one, in id order.
pub(crate) fn user_activity(x: &Interactions) -> Vec<u64> {
    counts(&x.user, x.n_users)
        .into_iter()
        .filter(|&c| c > 0)
        .collect()
}

fn descending(ascending: &[u64]) -> Vec<u64> {
    ascending.iter().rev().copied().collect()
}

/// The nearest-rank `percent`-th percentile of ascending `sorted` (`percent` in `0..=100`;
/// 0 gives the minimum). `None` when empty.
pub fn nearest_rank(sorted: &[u64], percent: u32) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // Integer arithmetic keeps ranks exact: ⌈p·n/100⌉ without floating-point rounding.
    let rank = (percent.min(100) as usize * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Nearest-rank quantiles of ascending `sorted`.
pub fn quantiles(sorted: &[u64]) -> Option<Quantiles> {
    let q = |p| nearest_rank(sorted, p);
    let total: u64 = sorted.iter().sum();
    Some(Quantiles {
        min: *sorted.first()?,
        p25: q(25)?,
        p50: q(50)?,
        p75: q(75)?,
        p90: q(90)?,
        p99: q(99)?,
        max: *sorted.last()?,
        mean: total as f64 / sorted.len() as f64,
    })
}

/// Gini coefficient of ascending, non-negative `sorted` counts; `None` when empty or all zero.
pub fn gini(sorted: &[u64]) -> Option<f64> {
    let n = sorted.len();
    let total: u64 = sorted.iter().sum();
    if n == 0 || total == 0 {
        return None;
    }
    // Σ (2i − n − 1)·x_i in i128: exact for any realistic count table.
    let weighted: i128 = sorted
        .iter()
        .enumerate()
        .map(|(k, &v)| (2 * (k as i128 + 1) - n as i128 - 1) * v as i128)
        .sum();
    Some(weighted as f64 / (n as f64 * total as f64))
}

/// Share of all ratings held by the top `percent`% of `descending` item counts.
pub fn top_share(descending: &[u64], percent: u32) -> Option<TopShare> {
    let total: u64 = descending.iter().sum();
    if descending.is_empty() || total == 0 {
        return None;
    }
    let k = (percent as usize * descending.len()).div_ceil(100).max(1);
    let ratings: u64 = descending[..k.min(descending.len())].iter().sum();
    Some(TopShare {
        percent,
        items: k,
        ratings: ratings as usize,
        share: ratings as f64 / total as f64,
    })
}

/// The smallest head of `descending` item counts holding at least `percent`% of ratings.
pub fn long_tail(descending: &[u64], percent: u32) -> Option<LongTail> {
    let total: u64 = descending.iter().sum();
    if total == 0 {
        return None;
    }
    let mut cum = 0u64;
    for (k, &c) in descending.iter().enumerate() {
        cum += c;
        // cum / total ≥ percent / 100, compared in integers.
        if cum as u128 * 100 >= percent as u128 * total as u128 {
            return Some(LongTail {
                head_rating_percent: percent,
                head_items: k + 1,
                head_item_share: (k + 1) as f64 / descending.len() as f64,
                head_rating_share: cum as f64 / total as f64,
                cut_count: c,
            });
        }
    }
    None
}

fn rating_summary(ratings: &[f32]) -> Option<RatingSummary> {
    let n = ratings.len();
    if n == 0 {
        return None;
    }
    let mut sorted = ratings.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let mean = ratings.iter().map(|&r| r as f64).sum::<f64>() / n as f64;
    let median = if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0
    };
    let (min, max) = (sorted[0] as f64, sorted[n - 1] as f64);
    let mut values: Vec<(f32, usize)> = Vec::new();
    for &r in &sorted {
        match values.last_mut() {
            Some((v, c)) if *v == r => *c += 1,
            _ => values.push((r, 1)),
        }
    }
    let distinct_values = values.len();
    let share = |c: usize| c as f64 / n as f64;
    let (histogram_kind, histogram) = if distinct_values <= MAX_DISCRETE_RATING_VALUES {
        let bins = values
            .iter()
            .map(|&(v, c)| RatingBin {
                lo: v as f64,
                hi: v as f64,
                count: c,
                share: share(c),
            })
            .collect();
        ("per value", bins)
    } else {
        let width = (max - min) / RATING_BINS as f64;
        let mut c = [0usize; RATING_BINS];
        for &(v, k) in &values {
            let b = (((v as f64 - min) / width) as usize).min(RATING_BINS - 1);
            c[b] += k;
        }
        let bins = c
            .iter()
            .enumerate()
            .map(|(b, &k)| RatingBin {
                lo: min + b as f64 * width,
                hi: if b + 1 == RATING_BINS {
                    max
                } else {
                    min + (b + 1) as f64 * width
                },
                count: k,
                share: share(k),
            })
            .collect();
        ("equal width", bins)
    };
    Some(RatingSummary {
        mean,
        median,
        min,
        max,
        distinct_values,
        histogram_kind: histogram_kind.to_string(),
        histogram,
    })
}

fn top_items(x: &Interactions, item_counts: &[u64], item_ids: &[String]) -> Vec<TopItem> {
    let mut order: Vec<u32> = (0..item_counts.len() as u32)
        .filter(|&i| item_counts[i as usize] > 0)
        .collect();
    // Most rated first, ties by index; only the head is needed.
    let key = |&i: &u32| (std::cmp::Reverse(item_counts[i as usize]), i);
    if order.len() > TOP_ITEMS_LISTED {
        order.select_nth_unstable_by_key(TOP_ITEMS_LISTED, key);
        order.truncate(TOP_ITEMS_LISTED);
    }
    order.sort_unstable_by_key(key);
    let mut slot_of = vec![usize::MAX; item_counts.len()];
    for (slot, &i) in order.iter().enumerate() {
        slot_of[i as usize] = slot;
    }
    let mut sums = vec![0f64; order.len()];
    for (&i, &r) in x.item.iter().zip(&x.rating) {
        if let Some(sum) = slot_of.get(i as usize).and_then(|&s| sums.get_mut(s)) {
            *sum += r as f64;
        }
    }
    order
        .iter()
        .zip(sums)
        .map(|(&i, sum)| {
            let c = item_counts[i as usize];
            TopItem {
                item_idx: i,
                item_id: item_ids
                    .get(i as usize)
                    .cloned()
                    .unwrap_or_else(|| i.to_string()),
                ratings: c as usize,
                mean_rating: sum / c as f64,
            }
        })
        .collect()
}

/// Months since year 0 (`year·12 + month − 1`) of a unix-seconds timestamp, in UTC.
fn month_key(ts: i64) -> Option<i64> {
    let t = DateTime::from_timestamp(ts, 0)?;
    Some(t.year() as i64 * 12 + t.month0() as i64)
}

fn month_label(key: i64) -> String {
    format!("{:04}-{:02}", key.div_euclid(12), key.rem_euclid(12) + 1)
}

fn per_month(ts: &[i64]) -> PerMonth {
    use std::collections::BTreeMap;
    // Ratings usually cluster on a few thousand days: resolve each distinct day once.
    let mut by_day: BTreeMap<i64, usize> = BTreeMap::new();
    for &t in ts {
        *by_day.entry(t.div_euclid(86_400)).or_default() += 1;
    }
    let mut by_month: BTreeMap<i64, usize> = BTreeMap::new();
    let mut out_of_range = 0;
    for (day, c) in by_day {
        match day.checked_mul(86_400).and_then(month_key) {
            Some(m) => *by_month.entry(m).or_default() += c,
            None => out_of_range += c,
        }
    }
    let (first, last) = match (by_month.keys().next(), by_month.keys().next_back()) {
        (Some(&f), Some(&l)) => (f, l),
        _ => {
            return PerMonth::Months {
                first: None,
                last: None,
                gaps_filled: false,
                out_of_range,
                months: Vec::new(),
            }
        }
    };
    let gaps_filled = last - first < MAX_FILLED_MONTHS;
    let months = if gaps_filled {
        (first..=last)
            .map(|m| MonthCount {
                month: month_label(m),
                ratings: by_month.get(&m).copied().unwrap_or(0),
            })
            .collect()
    } else {
        by_month
            .iter()
            .map(|(&m, &c)| MonthCount {
                month: month_label(m),
                ratings: c,
            })
            .collect()
    };
    PerMonth::Months {
        first: Some(month_label(first)),
        last: Some(month_label(last)),
        gaps_filled,
        out_of_range,
        months,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EPS: f64 = 1e-12;

    /// 4 users, 5 items (item 4 never rated), 10 ratings.
    ///   user 0: items 0, 1, 2, 3   user 1: items 0, 1, 2
    ///   user 2: items 0, 1          user 3: item 0
    /// Item counts: [4, 3, 2, 1, 0]; user counts: [4, 3, 2, 1].
    fn fixture(ts: Option<Vec<i64>>) -> Dataset {
        let user = vec![0, 0, 0, 0, 1, 1, 1, 2, 2, 3];
        let item = vec![0, 1, 2, 3, 0, 1, 2, 0, 1, 0];
        let rating = vec![5.0, 4.0, 3.0, 1.0, 5.0, 4.0, 2.0, 4.0, 5.0, 3.0];
        Dataset {
            interactions: Interactions::new(user, item, rating, ts, 4, 5).unwrap(),
            user_ids: ["u0", "u1", "u2", "u3"].map(String::from).to_vec(),
            item_ids: ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
            item_meta: None,
        }
    }

    #[test]
    fn sizes_and_density_count_only_ids_with_ratings() {
        let s = compute_stats(&fixture(None));
        assert_eq!((s.users, s.items, s.ratings), (4, 4, 10));
        assert_eq!((s.users_without_ratings, s.items_without_ratings), (0, 1));
        assert!((s.density - 10.0 / 16.0).abs() < EPS);
    }

    #[test]
    fn rating_mean_median_and_histogram_match_hand_values() {
        let r = compute_stats(&fixture(None)).rating.unwrap();
        // Sorted: 1 2 3 3 4 4 4 5 5 5 -> mean 36/10, median (4+4)/2.
        assert!((r.mean - 3.6).abs() < EPS);
        assert!((r.median - 4.0).abs() < EPS);
        assert_eq!((r.min, r.max, r.distinct_values), (1.0, 5.0, 5));
        assert_eq!(r.histogram_kind, "per value");
        let counts: Vec<usize> = r.histogram.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![1, 1, 2, 3, 3]);
        assert!((r.histogram[3].share - 0.3).abs() < EPS);
    }

    #[test]
    fn median_of_an_odd_count_is_the_middle_value() {
        let r = rating_summary(&[1.0, 5.0, 2.0]).unwrap();
        assert_eq!(r.median, 2.0);
    }

    #[test]
    fn many_distinct_ratings_fall_into_equal_width_bins() {
        let ratings: Vec<f32> = (0..100).map(|v| v as f32).collect();
        let r = rating_summary(&ratings).unwrap();
        assert_eq!(r.histogram_kind, "equal width");
        assert_eq!(r.histogram.len(), RATING_BINS);
        assert!(r.histogram.iter().all(|b| b.count == 5));
        assert_eq!(r.histogram.last().unwrap().hi, 99.0);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        // Users: counts 1 2 3 4. p25: rank ceil(1) = 1 -> 1; p50: rank 2 -> 2; p75: rank 3 -> 3;
        // p90: rank ceil(3.6) = 4 -> 4; p99: rank 4 -> 4.
        let s = compute_stats(&fixture(None));
        let u = s.user_activity.unwrap();
        assert_eq!(
            (u.min, u.p25, u.p50, u.p75, u.p90, u.p99, u.max),
            (1, 1, 2, 3, 4, 4, 4)
        );
        assert!((u.mean - 2.5).abs() < EPS);
        let values: Vec<u64> = (1..=100).collect();
        let q = quantiles(&values).unwrap();
        assert_eq!((q.p25, q.p50, q.p90, q.p99, q.max), (25, 50, 90, 99, 100));
        let values: Vec<u64> = (1..=10).collect();
        // n = 10: p25 -> rank ceil(2.5) = 3; p99 -> rank ceil(9.9) = 10.
        let q = quantiles(&values).unwrap();
        assert_eq!((q.p25, q.p75, q.p99), (3, 8, 10));
    }

    #[test]
    fn nearest_rank_of_nothing_is_none() {
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[7], 0), Some(7));
    }

    #[test]
    fn gini_matches_hand_values() {
        // Items 1 2 3 4: Σ(2i−n−1)x = (−3)(1) + (−1)(2) + (1)(3) + (3)(4) = 10; 10 / (4·10) = 0.25.
        let s = compute_stats(&fixture(None));
        assert!((s.item_popularity_gini.unwrap() - 0.25).abs() < EPS);
        assert!(gini(&[5, 5, 5]).unwrap().abs() < EPS);
        // One item holds everything among n: (n−1)/n.
        assert!((gini(&[0, 0, 0, 9]).unwrap() - 0.75).abs() < EPS);
        assert_eq!(gini(&[]), None);
    }

    #[test]
    fn top_shares_take_the_ceiling_of_the_item_count() {
        let s = compute_stats(&fixture(None));
        // 4 items: top 1% and top 10% are both ⌈0.04⌉ = ⌈0.4⌉ = 1 item holding 4 of 10.
        assert_eq!(s.top_item_shares.len(), 2);
        for t in &s.top_item_shares {
            assert_eq!((t.items, t.ratings), (1, 4));
            assert!((t.share - 0.4).abs() < EPS);
        }
        let counts: Vec<u64> = (1..=200).rev().collect();
        let t = top_share(&counts, 10).unwrap();
        // Top 20 items: 200 + ... + 181 = 3810 of 20100.
        assert_eq!((t.items, t.ratings), (20, 3810));
    }

    #[test]
    fn long_tail_head_is_the_smallest_prefix_reaching_the_share() {
        let s = compute_stats(&fixture(None));
        // Cumulative 4, 7, 9, 10 of 10: 80% is first reached at 9 (3 items).
        let lt = s.long_tail.unwrap();
        assert_eq!((lt.head_items, lt.cut_count), (3, 2));
        assert!((lt.head_rating_share - 0.9).abs() < EPS);
        assert!((lt.head_item_share - 0.75).abs() < EPS);
        // Exactly 80% counts as reached.
        assert_eq!(long_tail(&[8, 1, 1], 80).unwrap().head_items, 1);
    }

    #[test]
    fn top_items_are_named_and_ordered_by_count_then_index() {
        let s = compute_stats(&fixture(None));
        let ids: Vec<&str> = s.top_items.iter().map(|t| t.item_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "c", "d"]);
        // Item a: 5, 5, 4, 3.
        assert!((s.top_items[0].mean_rating - 4.25).abs() < EPS);
        let mut x = fixture(None).interactions;
        x.item = vec![1, 0, 1, 0, 2, 2, 3, 3, 4, 4];
        let s = compute_stats_for(&x, &[]);
        let idx: Vec<u32> = s.top_items.iter().map(|t| t.item_idx).collect();
        assert_eq!(idx, vec![0, 1, 2, 3, 4]);
        assert_eq!(s.top_items[4].item_id, "4");
    }

    #[test]
    fn ratings_per_month_are_utc_calendar_months_with_gaps_filled() {
        // 2021-01-31T23:59:59Z, 2021-02-01T00:00:00Z, 2021-04-15, and the rest in 2021-01.
        let jan_end = 1_612_137_599;
        let feb_start = 1_612_137_600;
        let apr = 1_618_444_800;
        let mut ts = vec![jan_end; 10];
        ts[1] = feb_start;
        ts[2] = apr;
        let s = compute_stats(&fixture(Some(ts)));
        let PerMonth::Months {
            first,
            last,
            gaps_filled,
            months,
            out_of_range,
        } = s.ratings_per_month
        else {
            panic!("expected months");
        };
        assert_eq!(first.as_deref(), Some("2021-01"));
        assert_eq!(last.as_deref(), Some("2021-04"));
        assert!(gaps_filled);
        assert_eq!(out_of_range, 0);
        let got: Vec<(&str, usize)> = months
            .iter()
            .map(|m| (m.month.as_str(), m.ratings))
            .collect();
        assert_eq!(
            got,
            vec![
                ("2021-01", 8),
                ("2021-02", 1),
                ("2021-03", 0),
                ("2021-04", 1)
            ]
        );
    }

    #[test]
    fn negative_timestamps_fall_in_the_months_before_1970() {
        // −1 is 1969-12-31T23:59:59Z.
        let mut ts = vec![0i64; 10];
        ts[0] = -1;
        let s = compute_stats(&fixture(Some(ts)));
        let PerMonth::Months { months, .. } = s.ratings_per_month else {
            panic!("expected months");
        };
        assert_eq!(months[0].month, "1969-12");
        assert_eq!((months[0].ratings, months[1].ratings), (1, 9));
    }

    #[test]
    fn very_long_spans_list_only_months_with_ratings() {
        // Milliseconds mistaken for seconds put one rating tens of thousands of years ahead.
        let mut ts = vec![1_612_137_600i64; 10];
        ts[0] = 1_612_137_600_000;
        let s = compute_stats(&fixture(Some(ts)));
        let PerMonth::Months {
            gaps_filled,
            months,
            ..
        } = s.ratings_per_month
        else {
            panic!("expected months");
        };
        assert!(!gaps_filled);
        assert_eq!(months.len(), 2);
    }

    #[test]
    fn timestamps_beyond_the_calendar_are_counted_apart() {
        let mut ts = vec![1_612_137_600i64; 10];
        ts[0] = i64::MAX;
        let s = compute_stats(&fixture(Some(ts)));
        let PerMonth::Months {
            out_of_range,
            months,
            ..
        } = s.ratings_per_month
        else {
            panic!("expected months");
        };
        assert_eq!(out_of_range, 1);
        assert_eq!(months.iter().map(|m| m.ratings).sum::<usize>(), 9);
    }

    #[test]
    fn without_timestamps_the_month_view_says_it_needs_one() {
        let s = compute_stats(&fixture(None));
        let json = serde_json::to_value(&s.ratings_per_month).unwrap();
        assert_eq!(json["status"], "needs_timestamps");
        assert!(json["message"].as_str().unwrap().contains("timestamp"));
    }

    #[test]
    fn empty_data_gives_zero_sizes_and_no_distributions() {
        let x = Interactions::new(vec![], vec![], vec![], Some(vec![]), 0, 0).unwrap();
        let s = compute_stats_for(&x, &[]);
        assert_eq!((s.users, s.items, s.ratings, s.density), (0, 0, 0, 0.0));
        assert!(s.rating.is_none() && s.user_activity.is_none() && s.long_tail.is_none());
        assert!(s.top_item_shares.is_empty() && s.top_items.is_empty());
        assert!(serde_json::to_string(&s).is_ok());
    }

    proptest! {
        #[test]
        fn quantiles_are_ordered_observed_values(mut v in prop::collection::vec(0u64..1000, 1..200)) {
            v.sort_unstable();
            let q = quantiles(&v).unwrap();
            let seq = [q.min, q.p25, q.p50, q.p75, q.p90, q.p99, q.max];
            prop_assert!(seq.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(seq.iter().all(|x| v.binary_search(x).is_ok()));
            // At least p% of values are at or below the p-th percentile, and fewer are below it.
            for p in [25u32, 50, 75, 90, 99] {
                let x = nearest_rank(&v, p).unwrap();
                let at_or_below = v.iter().filter(|&&y| y <= x).count();
                let below = v.iter().filter(|&&y| y < x).count();
                prop_assert!(at_or_below * 100 >= p as usize * v.len());
                prop_assert!(below * 100 < p as usize * v.len());
            }
        }

        #[test]
        fn gini_is_between_zero_and_one_minus_one_over_n(mut v in prop::collection::vec(0u64..1000, 1..200)) {
            v.sort_unstable();
            if let Some(g) = gini(&v) {
                let n = v.len() as f64;
                prop_assert!(g >= -1e-12 && g <= 1.0 - 1.0 / n + 1e-12);
            }
        }

        #[test]
        fn top_shares_grow_with_the_fraction(mut v in prop::collection::vec(1u64..1000, 1..300)) {
            v.sort_unstable_by(|a, b| b.cmp(a));
            let one = top_share(&v, 1).unwrap();
            let ten = top_share(&v, 10).unwrap();
            let lt = long_tail(&v, 80).unwrap();
            prop_assert!(one.share <= ten.share + 1e-12);
            prop_assert!(lt.head_rating_share >= 0.8 - 1e-12);
            prop_assert!(lt.head_items <= v.len());
        }
    }
}
