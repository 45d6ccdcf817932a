//! Uncertainty of per-user figures: bootstrap confidence intervals over users, paired
//! comparisons of two models on the users they share (bootstrap CI of the difference, paired t,
//! Wilcoxon signed-rank, effect size) and Holm's correction for many comparisons at once.
//! The formulas are written down in docs/statistics.md. Distributions come from `statrs`.
//!
//! Resampling is seeded and split into fixed chunks, each with its own seed, so results do not
//! depend on the thread count.

use rand::distributions::{Distribution, Uniform};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// How to bootstrap: resamples and seed (both recorded beside the intervals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bootstrap {
    pub resamples: usize,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: 1000,
            seed: 42,
        }
    }
}

/// A percentile interval at 95%.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

const CHUNK: usize = 64;

/// A statistic of one resample, from the sums of each per-user column over the users drawn.
type StatFn<'a> = dyn Fn(&[f64]) -> f64 + Sync + 'a;
type Stat<'a> = &'a StatFn<'a>;

/// Columns per user the resampler carries at most (every statistic here needs 4 or fewer).
const MAX_WIDTH: usize = 8;

/// Each statistic's values over `resamples` bootstrap draws of the `rows.len() / width` users
/// (`rows` row-major, `width` values per user); one draw serves every statistic. A draw adds the
/// drawn user's row to running sums, so a resample costs one random read per user drawn. Draws
/// run in chunks of `CHUNK`, each seeded from `(seed, chunk)`.
fn resample_all(rows: &[f64], width: usize, b: Bootstrap, stats: &[Stat<'_>]) -> Vec<Vec<f64>> {
    assert!((1..=MAX_WIDTH).contains(&width) && rows.len().is_multiple_of(width));
    let n = rows.len() / width;
    let chunks = b.resamples.div_ceil(CHUNK);
    let out: Vec<Vec<f64>> = (0..chunks)
        .into_par_iter()
        .flat_map_iter(|c| {
            // Each chunk its own stream: the seed and the chunk number, spread by SplitMix64
            // (what `seed_from_u64` does), so chunks never share a state.
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(
                b.seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let todo = CHUNK.min(b.resamples - c * CHUNK);
            // Built once: the exact rejection zone for n, and 32-bit draws.
            let pick = Uniform::new(0, n as u32);
            (0..todo)
                .map(move |_| {
                    let mut sums = [0.0f64; MAX_WIDTH];
                    for _ in 0..n {
                        let u = pick.sample(&mut rng) as usize * width;
                        for (s, v) in sums[..width].iter_mut().zip(&rows[u..u + width]) {
                            *s += v;
                        }
                    }
                    stats
                        .iter()
                        .map(|f| f(&sums[..width]))
                        .collect::<Vec<f64>>()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    (0..stats.len())
        .map(|j| out.iter().map(|r| r[j]).filter(|v| v.is_finite()).collect())
        .collect()
}

/// The columns side by side, one row per user.
fn interleave(columns: &[&[f64]]) -> Vec<f64> {
    let n = columns.first().map_or(0, |c| c.len());
    let mut rows = Vec::with_capacity(n * columns.len());
    for u in 0..n {
        rows.extend(columns.iter().map(|c| c[u]));
    }
    rows
}

/// 95% bootstrap intervals of the means of several per-user columns (same users), from one set
/// of draws. `None` for no users.
pub fn means_ci(columns: &[&[f64]], b: Bootstrap) -> Vec<Option<Interval>> {
    let n = columns.first().map_or(0, |c| c.len());
    if n == 0 || columns.len() > MAX_WIDTH || columns.iter().any(|c| c.len() != n) {
        return vec![None; columns.len()];
    }
    let nf = n as f64;
    let fns: Vec<Box<StatFn<'_>>> = (0..columns.len())
        .map(|j| Box::new(move |s: &[f64]| s[j] / nf) as Box<StatFn<'_>>)
        .collect();
    let refs: Vec<Stat<'_>> = fns.iter().map(|f| f.as_ref()).collect();
    resample_all(&interleave(columns), columns.len(), b, &refs)
        .into_iter()
        .map(percentiles)
        .collect()
}

/// The 2.5% and 97.5% percentiles (linear interpolation, as numpy's default).
fn percentiles(mut draws: Vec<f64>) -> Option<Interval> {
    if draws.is_empty() {
        return None;
    }
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let pos = q * (draws.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        draws[lo] + (draws[hi] - draws[lo]) * (pos - lo as f64)
    };
    Some(Interval {
        low: at(0.025),
        high: at(0.975),
    })
}

/// 95% bootstrap interval of the mean of `values` (one per user). `None` for no users.
pub fn mean_ci(values: &[f64], b: Bootstrap) -> Option<Interval> {
    means_ci(&[values], b).pop().flatten()
}

/// 95% bootstrap intervals of RMSE, `sqrt(sum(sq) / sum(pairs))`, and MAE,
/// `sum(abs) / sum(pairs)`, over users (who weigh by their number of rated pairs), from one set
/// of draws.
pub fn rmse_mae_ci(
    sq: &[f64],
    abs: &[f64],
    pairs: &[f64],
    b: Bootstrap,
) -> (Option<Interval>, Option<Interval>) {
    if sq.is_empty() || sq.len() != pairs.len() || abs.len() != pairs.len() {
        return (None, None);
    }
    let rmse = |s: &[f64]| (s[0] / s[2]).sqrt();
    let mae = |s: &[f64]| s[1] / s[2];
    let mut out = resample_all(&interleave(&[sq, abs, pairs]), 3, b, &[&rmse, &mae])
        .into_iter()
        .map(percentiles);
    (out.next().flatten(), out.next().flatten())
}

/// 95% bootstrap interval of the difference of two models' error ratios over the same users,
/// `f(a) - f(b)` with `f = sum(num) / sum(den)` (its square root with `sqrt`: RMSE from squared
/// errors; MAE from absolute errors without). Users weigh by their pairs, as the figures do.
pub fn ratio_diff_ci(
    num_a: &[f64],
    num_b: &[f64],
    den: &[f64],
    sqrt: bool,
    b: Bootstrap,
) -> Option<Interval> {
    if den.is_empty() || num_a.len() != den.len() || num_b.len() != den.len() {
        return None;
    }
    let diff = |s: &[f64]| {
        let (fa, fb) = (s[0] / s[2], s[1] / s[2]);
        if sqrt {
            fa.sqrt() - fb.sqrt()
        } else {
            fa - fb
        }
    };
    resample_all(&interleave(&[num_a, num_b, den]), 3, b, &[&diff])
        .pop()
        .and_then(percentiles)
}

/// The values of the users two lists share, side by side; both lists are (user, value) with
/// users ascending, as evaluations keep them.
pub fn shared_users<A: Copy, B: Copy>(a: &[(u32, A)], b: &[(u32, B)]) -> Vec<(A, B)> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push((a[i].1, b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Two models on the same users, `a - b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    pub users: usize,
    pub mean_diff: f64,
    pub ci: Option<Interval>,
    /// Two-sided paired t test.
    pub t: f64,
    pub t_p: f64,
    /// Two-sided Wilcoxon signed-rank test (zero differences dropped): the smaller rank sum.
    pub wilcoxon: f64,
    pub wilcoxon_p: f64,
    /// Cohen's d for paired samples: mean difference over the differences' standard deviation.
    pub effect_size: f64,
}

/// Compares per-user values `a` and `b` (same users, same order).
pub fn paired(a: &[f64], b: &[f64], boot: Bootstrap) -> Option<Paired> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt();
    let (t, t_p) = if sd > 0.0 {
        let t = mean / (sd / n.sqrt());
        let dist = StudentsT::new(0.0, 1.0, n - 1.0).ok()?;
        (t, 2.0 * dist.cdf(-t.abs()))
    } else if mean == 0.0 {
        (0.0, 1.0)
    } else {
        (mean.signum() * f64::INFINITY, 0.0)
    };
    let (w, w_p) = wilcoxon(&d);
    Some(Paired {
        users: d.len(),
        mean_diff: mean,
        ci: mean_ci(&d, boot),
        t,
        t_p,
        wilcoxon: w,
        wilcoxon_p: w_p,
        effect_size: if sd > 0.0 { mean / sd } else { 0.0 },
    })
}

/// Wilcoxon signed-rank test of differences `d`, two-sided: zeros dropped; the exact distribution
/// for at most 50 differences without ties (as `scipy.stats.wilcoxon`'s default), else the normal
/// approximation with the tie correction (scipy's `method="approx"`; for small tied samples scipy
/// 1.17 runs a permutation test instead). Returns (smaller rank sum, p).
pub fn wilcoxon(d: &[f64]) -> (f64, f64) {
    let mut nz: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
    let n = nz.len();
    if n == 0 {
        return (0.0, 1.0);
    }
    nz.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
    // Average ranks of |d|; `ties` collects each tie group's size.
    let mut ranks = vec![0.0; n];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && nz[j + 1].abs() == nz[i].abs() {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        ranks[i..=j].iter_mut().for_each(|x| *x = r);
        if j > i {
            ties.push((j - i + 1) as f64);
        }
        i = j + 1;
    }
    let r_plus: f64 = nz
        .iter()
        .zip(&ranks)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| r)
        .sum();
    let total = (n * (n + 1)) as f64 / 2.0;
    let stat = r_plus.min(total - r_plus);
    if n <= 50 && ties.is_empty() {
        return (stat, exact_signed_rank_p(n, stat as usize));
    }
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let tie_term: f64 = ties.iter().map(|t| t * t * t - t).sum::<f64>() / 48.0;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term;
    if var <= 0.0 {
        return (stat, 1.0);
    }
    let z = (stat - mean) / var.sqrt();
    (stat, (2.0 * Normal::standard().cdf(-z.abs())).min(1.0))
}

/// P(T <= stat) * 2 under the null, T the rank sum of the positive differences among `n`
/// untied ranks: the count of subsets of 1..=n with each sum, by dynamic programming.
fn exact_signed_rank_p(n: usize, stat: usize) -> f64 {
    let max = n * (n + 1) / 2;
    let mut ways = vec![0f64; max + 1];
    ways[0] = 1.0;
    for r in 1..=n {
        for s in (r..=max).rev() {
            ways[s] += ways[s - r];
        }
    }
    let all = 2f64.powi(n as i32);
    let below: f64 = ways[..=stat.min(max)].iter().sum();
    (2.0 * below / all).min(1.0)
}

/// Holm's step-down adjustment of `p` (same order out): controls the family-wise error rate
/// over all the comparisons made at once.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let adj = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    // Reference figures from scipy 1.17.1: `scipy.stats.ttest_rel(a, b)` and
    // `scipy.stats.wilcoxon(a, b)` on the same vectors.
    const A12: [f64; 12] = [
        0.12, 0.30, 0.05, 0.44, 0.21, 0.18, 0.33, 0.09, 0.27, 0.15, 0.40, 0.02,
    ];
    // Two tied |differences| (0.01): scipy's `method="approx"` is the reference there.
    const B12_TIED: [f64; 12] = [
        0.10, 0.25, 0.07, 0.38, 0.22, 0.11, 0.30, 0.01, 0.20, 0.16, 0.31, 0.03,
    ];
    // No ties: scipy's default (exact) is the reference.
    const B12: [f64; 12] = [
        0.10, 0.25, 0.08, 0.38, 0.22, 0.11, 0.29, 0.01, 0.17, 0.26, 0.31, 0.14,
    ];

    #[test]
    fn paired_t_and_exact_wilcoxon_match_scipy() {
        let p = paired(&A12, &B12, Bootstrap::default()).unwrap();
        assert!(close(p.t, 0.9365235778986737, 1e-9), "{}", p.t);
        assert!(close(p.t_p, 0.36910972198590547, 1e-9), "{}", p.t_p);
        assert_eq!(p.wilcoxon, 27.0);
        assert!(
            close(p.wilcoxon_p, 0.38037109375, 1e-12),
            "{}",
            p.wilcoxon_p
        );
        let tied = paired(&A12, &B12_TIED, Bootstrap::default()).unwrap();
        assert!(close(tied.t, 3.022514387118609, 1e-9), "{}", tied.t);
        assert!(close(tied.t_p, 0.011603466668357074, 1e-9), "{}", tied.t_p);
        assert_eq!(tied.wilcoxon, 11.0);
        assert!(
            close(tied.wilcoxon_p, 0.027995744078059867, 1e-9),
            "{}",
            tied.wilcoxon_p
        );
    }

    #[test]
    fn wilcoxon_with_ties_and_zeros_uses_scipys_normal_approximation() {
        let a: [f64; 60] = [
            3., 1., 4., 1., 5., 9., 2., 6., 5., 3., 5., 8., 9., 7., 9., 3., 2., 3., 8., 4., 6., 2.,
            6., 4., 3., 3., 8., 3., 2., 7., 9., 5., 0., 2., 8., 8., 4., 1., 9., 7., 1., 6., 9., 3.,
            9., 9., 3., 7., 5., 1., 0., 5., 8., 2., 0., 9., 7., 4., 9., 4.,
        ];
        let b: [f64; 60] = [
            2., 7., 1., 8., 2., 8., 1., 8., 2., 8., 4., 5., 9., 0., 4., 5., 2., 3., 5., 3., 6., 0.,
            2., 8., 7., 4., 7., 1., 3., 5., 2., 6., 6., 2., 4., 9., 7., 7., 5., 7., 2., 4., 7., 0.,
            9., 3., 6., 9., 9., 9., 5., 7., 4., 9., 5., 7., 5., 9., 5., 7.,
        ];
        let p = paired(&a, &b, Bootstrap::default()).unwrap();
        assert!(close(p.t, -0.3878460738531565, 1e-9), "{}", p.t);
        assert!(close(p.t_p, 0.6995257466421203, 1e-9), "{}", p.t_p);
        assert_eq!(p.wilcoxon, 684.0);
        assert!(
            close(p.wilcoxon_p, 0.7796301069351071, 1e-9),
            "{}",
            p.wilcoxon_p
        );
    }

    #[test]
    fn holm_matches_a_hand_computed_example() {
        // Sorted 0.01, 0.02, 0.03, 0.04 times 4, 3, 2, 1: 0.04, 0.06, 0.06 (kept monotone), 0.06.
        let adj = holm(&[0.03, 0.01, 0.04, 0.02]);
        let want = [0.06, 0.04, 0.06, 0.06];
        for (a, w) in adj.iter().zip(want) {
            assert!(close(*a, w, 1e-12), "{adj:?}");
        }
        assert_eq!(holm(&[0.9, 0.8]), vec![1.0, 1.0]);
    }

    #[test]
    fn bootstrap_interval_matches_the_normal_closed_form_for_a_mean() {
        // For a mean of n values the bootstrap's spread is sd/sqrt(n) (population sd): the 95%
        // interval is close to mean +- 1.96 sd/sqrt(n) for large n.
        let values: Vec<f64> = (0..4000)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
            .collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let half = 1.96 * sd / n.sqrt();
        let ci = mean_ci(
            &values,
            Bootstrap {
                resamples: 2000,
                seed: 7,
            },
        )
        .unwrap();
        assert!(
            close(ci.low, mean - half, half * 0.1),
            "{ci:?} vs {mean} +- {half}"
        );
        assert!(
            close(ci.high, mean + half, half * 0.1),
            "{ci:?} vs {mean} +- {half}"
        );
    }

    #[test]
    fn bootstrap_is_seeded_and_independent_of_the_thread_count() {
        let values: Vec<f64> = (0..500).map(|i| (i % 13) as f64).collect();
        let b = Bootstrap {
            resamples: 300,
            seed: 3,
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| mean_ci(&values, b));
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| mean_ci(&values, b));
        assert_eq!(one, two);
        assert_ne!(
            mean_ci(&values, Bootstrap { seed: 4, ..b }),
            one,
            "another seed draws other resamples"
        );
    }

    #[test]
    fn one_draw_serves_many_columns_with_the_same_intervals_as_one_at_a_time() {
        let a: Vec<f64> = (0..300).map(|i| (i % 7) as f64).collect();
        let b: Vec<f64> = (0..300).map(|i| (i % 11) as f64 / 3.0).collect();
        let boot = Bootstrap {
            resamples: 200,
            seed: 9,
        };
        let both = means_ci(&[&a, &b], boot);
        assert_eq!(both[0], mean_ci(&a, boot));
        assert_eq!(both[1], mean_ci(&b, boot));
    }

    #[test]
    fn rmse_interval_weighs_users_by_their_pairs() {
        // Every user has the same per-pair error: every resample gives the same RMSE.
        let sq = [4.0, 8.0, 12.0];
        let pairs = [1.0, 2.0, 3.0];
        let abs = [2.0, 4.0, 6.0];
        let (rmse, mae) = rmse_mae_ci(&sq, &abs, &pairs, Bootstrap::default());
        let (rmse, mae) = (rmse.unwrap(), mae.unwrap());
        assert!(
            close(rmse.low, 2.0, 1e-12) && close(rmse.high, 2.0, 1e-12),
            "{rmse:?}"
        );
        assert!(
            close(mae.low, 2.0, 1e-12) && close(mae.high, 2.0, 1e-12),
            "{mae:?}"
        );
    }

    proptest! {
        #[test]
        fn holm_never_lowers_a_p_value_and_stays_at_most_one(
            p in proptest::collection::vec(0.0f64..=1.0, 1..20)
        ) {
            let adj = holm(&p);
            for (a, raw) in adj.iter().zip(&p) {
                prop_assert!(*a >= *raw - 1e-15 && *a <= 1.0);
            }
        }

        #[test]
        fn the_mean_lies_inside_its_bootstrap_interval(
            v in proptest::collection::vec(-5.0f64..5.0, 30..200)
        ) {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let ci = mean_ci(&v, Bootstrap { resamples: 400, seed: 1 }).unwrap();
            prop_assert!(ci.low <= mean + 1e-9 && mean - 1e-9 <= ci.high, "{ci:?} {mean}");
        }
    }

    #[test]
    fn error_difference_interval_is_zero_for_one_model_and_the_rmse_interval_when_errors_scale_by_4(
    ) {
        let sq: Vec<f64> = (0..200).map(|i| (i % 7) as f64 * 0.3).collect();
        let pairs: Vec<f64> = (0..200).map(|i| 1.0 + (i % 3) as f64).collect();
        let b = Bootstrap::default();
        let same = ratio_diff_ci(&sq, &sq, &pairs, true, b).unwrap();
        assert_eq!((same.low, same.high), (0.0, 0.0));
        // Every squared error four times larger: in each resample RMSE doubles, so the
        // difference is the resample's own RMSE, and the interval is RMSE's (same draws).
        let big: Vec<f64> = sq.iter().map(|x| 4.0 * x).collect();
        let d = ratio_diff_ci(&big, &sq, &pairs, true, b).unwrap();
        let (rmse, _) = rmse_mae_ci(&sq, &sq, &pairs, b);
        let rmse = rmse.unwrap();
        assert!((d.low - rmse.low).abs() < 1e-12 && (d.high - rmse.high).abs() < 1e-12);
        assert!(d.low > 0.0);
    }
}
