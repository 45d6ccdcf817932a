//! Train/test splits and seeded sampling of ratings.
//!
//! Splits partition an [`Interactions`] table exactly: every input row lands in train or in test,
//! once, with its rating and timestamp; the id spaces are kept, so the same dense ids index both
//! halves. A validation split is carved from the training half with the same [`split`] function
//! (use [`SplitParams::for_validation`] so its random draws are independent of the test split's);
//! the test half is then only used for the final report. This module knows nothing about models,
//! files, or how the table was read.
//!
//! Randomness comes from a ChaCha8 generator seeded by the caller, so a split is reproducible for
//! a seed whatever the thread count. recflow's splits use their own generator: they do not
//! reproduce numpy- or Spark-made splits row for row.

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::interactions::Interactions;

/// Generator stream used by [`split`]; [`sample`] draws from another one, so sampling and
/// splitting with the same seed do not reuse the same numbers.
const SPLIT_STREAM: u64 = 0;
const SAMPLE_STREAM: u64 = 1;

/// Mixed into the seed by [`SplitParams::for_validation`] (the 64-bit golden ratio, a common
/// seed-spreading constant).
const VALIDATION_SEED_MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// How ratings are assigned to the test half.
///
/// In TOML and JSON the unit strategies are plain strings (`"random"`, `"per_user"`,
/// `"temporal"`) and the last one is a table, `{ leave_last_n = 2 }`. On the command line
/// [`FromStr`] also accepts `leave_last_n` (n = 1) and `leave_last_n:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitStrategy {
    /// Each rating goes to test with probability `test_fraction`.
    Random,
    /// Each user's ratings are split with the same fraction; users with one rating stay in train.
    PerUser,
    /// A global timestamp cut: the newest `test_fraction` of all ratings go to test.
    Temporal,
    /// Each user's newest `n` ratings go to test, keeping at least one rating in train.
    LeaveLastN(usize),
}

impl SplitStrategy {
    /// The strategy's name as written in specs and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            SplitStrategy::Random => "random",
            SplitStrategy::PerUser => "per_user",
            SplitStrategy::Temporal => "temporal",
            SplitStrategy::LeaveLastN(_) => "leave_last_n",
        }
    }

    /// Whether the strategy orders ratings by time.
    pub fn needs_timestamps(&self) -> bool {
        matches!(self, SplitStrategy::Temporal | SplitStrategy::LeaveLastN(_))
    }
}

impl fmt::Display for SplitStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitStrategy::LeaveLastN(n) => write!(f, "leave_last_n:{n}"),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for SplitStrategy {
    type Err = SplitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "random" => return Ok(SplitStrategy::Random),
            "per_user" => return Ok(SplitStrategy::PerUser),
            "temporal" => return Ok(SplitStrategy::Temporal),
            "leave_last_n" => return Ok(SplitStrategy::LeaveLastN(1)),
            _ => {}
        }
        if let Some(n) = s.strip_prefix("leave_last_n:") {
            return n
                .trim()
                .parse::<usize>()
                .map(SplitStrategy::LeaveLastN)
                .map_err(|_| SplitError::UnknownStrategy(s.to_string()));
        }
        Err(SplitError::UnknownStrategy(s.to_string()))
    }
}

crate::named_enum! {
    /// The split strategies by name (the spec's `split.strategy`, `--split`).
    pub enum SplitKind: "split strategy" {
        Random = "random",
        PerUser = "per_user",
        Temporal = "temporal",
        LeaveLastN = "leave_last_n",
    }
}

impl SplitStrategy {
    /// The strategy of a kind; `n` is used by `leave_last_n` only.
    pub fn of(kind: SplitKind, n: usize) -> Self {
        match kind {
            SplitKind::Random => SplitStrategy::Random,
            SplitKind::PerUser => SplitStrategy::PerUser,
            SplitKind::Temporal => SplitStrategy::Temporal,
            SplitKind::LeaveLastN => SplitStrategy::LeaveLastN(n),
        }
    }

    pub fn kind(&self) -> SplitKind {
        match self {
            SplitStrategy::Random => SplitKind::Random,
            SplitStrategy::PerUser => SplitKind::PerUser,
            SplitStrategy::Temporal => SplitKind::Temporal,
            SplitStrategy::LeaveLastN(_) => SplitKind::LeaveLastN,
        }
    }
}

/// What [`split`] needs: the strategy, the test fraction and the seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitParams {
    pub strategy: SplitStrategy,
    /// Share of ratings for the test half, strictly between 0 and 1. Checked for every strategy,
    /// although `leave_last_n` does not use it (its size is set by `n`).
    pub test_fraction: f64,
    pub seed: u64,
}

impl SplitParams {
    /// Checks what can be checked without the data: the fraction is in (0, 1) and
    /// `leave_last_n` has n >= 1. [`split`] runs this too; settings call it to fail early.
    pub fn check(&self) -> Result<(), SplitError> {
        let f = self.test_fraction;
        if !(f > 0.0 && f < 1.0) {
            return Err(SplitError::TestFraction(f));
        }
        if let SplitStrategy::LeaveLastN(0) = self.strategy {
            return Err(SplitError::LeaveLastZero);
        }
        Ok(())
    }

    /// Parameters for carving a validation split out of a training half made with `self`: the
    /// same strategy, the given fraction (of the training half), and a seed derived from `self`'s
    /// so the validation draws are not a replay of the test split's.
    ///
    /// A validation fraction of 0 means "no validation split" (selection then happens on the
    /// test split and the run records it); the caller skips [`split`] in that case, since an
    /// empty half is an error here.
    pub fn for_validation(&self, validation_fraction: f64) -> SplitParams {
        SplitParams {
            strategy: self.strategy,
            test_fraction: validation_fraction,
            seed: self.seed ^ VALIDATION_SEED_MIX,
        }
    }
}

/// The two halves of a split. Both keep the input's id spaces (`n_users`, `n_items`).
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Interactions,
    pub test: Interactions,
}

/// Errors from [`split`] and [`sample`].
#[derive(Debug, Error, PartialEq)]
pub enum SplitError {
    #[error("test fraction `{0}` must be strictly between 0 and 1")]
    TestFraction(f64),
    #[error("sample fraction `{0}` must be greater than 0 and at most 1")]
    SampleFraction(f64),
    #[error("`leave_last_n` needs n of at least 1, got `0`")]
    LeaveLastZero,
    #[error(
        "the `{0}` split needs a timestamp column, and the data has none\n\
         hint: use the `random` or `per_user` split, or map a timestamp column in the ETL"
    )]
    NeedsTimestamps(&'static str),
    #[error("there are no ratings to split")]
    EmptyInput,
    #[error(
        "the `{strategy}` split of {rows} ratings left the {half} half empty\n\
         hint: change the test fraction or the split strategy, or use more data"
    )]
    EmptyHalf {
        strategy: &'static str,
        half: &'static str,
        rows: usize,
    },
    #[error("sampling fraction `{fraction}` of {rows} ratings kept none\nhint: raise the sample fraction")]
    EmptySample { fraction: f64, rows: usize },
    #[error(
        "unknown split strategy `{0}`\n\
         hint: use `random`, `per_user`, `temporal`, `leave_last_n` or `leave_last_n:N`"
    )]
    UnknownStrategy(String),
}

/// Splits `data` into train and test as `params` says.
///
/// The result partitions the input rows exactly (each row in one half, once) and is the same for
/// the same input, parameters and seed. Within each half, rows keep their input order.
///
/// * `random`: each row goes to test with probability `test_fraction` (a Bernoulli draw per row,
///   as Spark's `randomSplit`), so the test size varies around `test_fraction · rows`.
/// * `per_user`: for a user with `c` ratings, `c · test_fraction` of them (rounded up or down at
///   random with the fractional part as the probability, so the overall share stays
///   `test_fraction` in expectation) are drawn to test, at most `c - 1`; a user with one rating
///   keeps it in train.
/// * `temporal`: rows are ordered by (timestamp, row index) and the newest
///   `round(test_fraction · rows)` go to test, so no training rating is newer than a test rating.
///   Rows sharing the cut's timestamp are split by input order (later rows count as newer).
/// * `leave_last_n`: each user's `min(n, c - 1)` newest ratings go to test (same tie rule), so
///   a user with `c <= n` ratings keeps at least one in train.
///
/// Errors when the fraction is outside (0, 1), when a time-based strategy meets data without
/// timestamps, and when either half would be empty.
pub fn split(data: &Interactions, params: &SplitParams) -> Result<Split, SplitError> {
    params.check()?;
    let f = params.test_fraction;
    let timestamps = match (&data.timestamp, params.strategy.needs_timestamps()) {
        (None, true) => return Err(SplitError::NeedsTimestamps(params.strategy.name())),
        (ts, _) => ts.as_deref(),
    };
    if data.is_empty() {
        return Err(SplitError::EmptyInput);
    }

    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    rng.set_stream(SPLIT_STREAM);
    let in_test: Vec<bool> = match (params.strategy, timestamps) {
        (SplitStrategy::Random, _) => (0..data.len()).map(|_| rng.gen::<f64>() < f).collect(),
        (SplitStrategy::PerUser, _) => per_user(data, f, &mut rng),
        (SplitStrategy::Temporal, Some(ts)) => temporal(ts, f),
        (SplitStrategy::LeaveLastN(n), Some(ts)) => leave_last_n(data, ts, n),
        // Checked above: time-based strategies without timestamps have returned already.
        (_, None) => return Err(SplitError::NeedsTimestamps(params.strategy.name())),
    };

    let (test_rows, train_rows): (Vec<usize>, Vec<usize>) =
        (0..data.len()).partition(|&k| in_test[k]);
    for (half, rows) in [("train", &train_rows), ("test", &test_rows)] {
        if rows.is_empty() {
            return Err(SplitError::EmptyHalf {
                strategy: params.strategy.name(),
                half,
                rows: data.len(),
            });
        }
    }
    Ok(Split {
        train: data.select(&train_rows),
        test: data.select(&test_rows),
    })
}

/// Keeps each rating with probability `fraction` (seeded; a Bernoulli draw per row, as Spark's
/// `sample`), before any split. `fraction = 1` returns the table unchanged. Id spaces are kept.
pub fn sample(data: &Interactions, fraction: f64, seed: u64) -> Result<Interactions, SplitError> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(SplitError::SampleFraction(fraction));
    }
    if fraction == 1.0 {
        return Ok(data.clone());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SAMPLE_STREAM);
    let keep: Vec<usize> = (0..data.len())
        .filter(|_| rng.gen::<f64>() < fraction)
        .collect();
    if keep.is_empty() && !data.is_empty() {
        return Err(SplitError::EmptySample {
            fraction,
            rows: data.len(),
        });
    }
    Ok(data.select(&keep))
}

/// Row indices grouped by user, each group in input order (a stable counting sort).
fn rows_by_user(data: &Interactions) -> (Vec<usize>, Vec<usize>) {
    let mut start = vec![0usize; data.n_users + 1];
    for &u in &data.user {
        start[u as usize + 1] += 1;
    }
    for u in 0..data.n_users {
        start[u + 1] += start[u];
    }
    let mut next = start.clone();
    let mut rows = vec![0usize; data.len()];
    for (k, &u) in data.user.iter().enumerate() {
        rows[next[u as usize]] = k;
        next[u as usize] += 1;
    }
    (start, rows)
}

fn per_user(data: &Interactions, f: f64, rng: &mut ChaCha8Rng) -> Vec<bool> {
    let (start, mut rows) = rows_by_user(data);
    let mut in_test = vec![false; data.len()];
    for u in 0..data.n_users {
        let group = &mut rows[start[u]..start[u + 1]];
        let c = group.len();
        if c < 2 {
            continue;
        }
        let exact = c as f64 * f;
        let mut n_test = exact.floor() as usize;
        if rng.gen::<f64>() < exact - exact.floor() {
            n_test += 1;
        }
        let n_test = n_test.min(c - 1);
        let (chosen, _) = group.partial_shuffle(rng, n_test);
        for &k in chosen.iter() {
            in_test[k] = true;
        }
    }
    in_test
}

fn temporal(ts: &[i64], f: f64) -> Vec<bool> {
    let n = ts.len();
    let mut order: Vec<usize> = (0..n).collect();
    // Stable sort: equal timestamps stay in input order, so ties at the cut are deterministic.
    order.sort_by_key(|&k| ts[k]);
    let n_test = ((n as f64) * f).round() as usize;
    let mut in_test = vec![false; n];
    for &k in &order[n - n_test.min(n)..] {
        in_test[k] = true;
    }
    in_test
}

fn leave_last_n(data: &Interactions, ts: &[i64], n: usize) -> Vec<bool> {
    let (start, mut rows) = rows_by_user(data);
    let mut in_test = vec![false; data.len()];
    for u in 0..data.n_users {
        let group = &mut rows[start[u]..start[u + 1]];
        let c = group.len();
        if c < 2 {
            continue;
        }
        group.sort_by_key(|&k| ts[k]);
        let n_test = n.min(c - 1);
        for &k in &group[c - n_test..] {
            in_test[k] = true;
        }
    }
    in_test
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(user: Vec<u32>, item: Vec<u32>, ts: Option<Vec<i64>>) -> Interactions {
        let n_users = user.iter().map(|&u| u as usize + 1).max().unwrap_or(0);
        let n_items = item.iter().map(|&i| i as usize + 1).max().unwrap_or(0);
        let rating = (0..user.len()).map(|k| (k % 5) as f32 + 1.0).collect();
        Interactions::new(user, item, rating, ts, n_users, n_items).unwrap()
    }

    fn params(strategy: SplitStrategy, test_fraction: f64, seed: u64) -> SplitParams {
        SplitParams {
            strategy,
            test_fraction,
            seed,
        }
    }

    /// Rows as sortable tuples (ratings and timestamps as bits), for multiset comparison.
    fn rows(d: &Interactions) -> Vec<(u32, u32, u32, i64)> {
        (0..d.len())
            .map(|k| {
                (
                    d.user[k],
                    d.item[k],
                    d.rating[k].to_bits(),
                    d.timestamp.as_ref().map_or(0, |t| t[k]),
                )
            })
            .collect()
    }

    fn assert_partition(data: &Interactions, s: &Split) {
        let mut all = rows(&s.train);
        all.extend(rows(&s.test));
        all.sort_unstable();
        let mut want = rows(data);
        want.sort_unstable();
        assert_eq!(all, want);
        assert_eq!(
            (s.train.n_users, s.train.n_items),
            (data.n_users, data.n_items)
        );
        assert_eq!(
            (s.test.n_users, s.test.n_items),
            (data.n_users, data.n_items)
        );
    }

    #[test]
    fn strategy_names_round_trip_through_serde_and_from_str() {
        for (s, json) in [
            (SplitStrategy::Random, "\"random\""),
            (SplitStrategy::PerUser, "\"per_user\""),
            (SplitStrategy::Temporal, "\"temporal\""),
            (SplitStrategy::LeaveLastN(2), "{\"leave_last_n\":2}"),
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), json);
            assert_eq!(serde_json::from_str::<SplitStrategy>(json).unwrap(), s);
            assert_eq!(s.to_string().parse::<SplitStrategy>().unwrap(), s);
        }
        assert_eq!(
            "leave_last_n".parse::<SplitStrategy>().unwrap(),
            SplitStrategy::LeaveLastN(1)
        );
        assert!(matches!(
            "newest".parse::<SplitStrategy>(),
            Err(SplitError::UnknownStrategy(_))
        ));
    }

    #[test]
    fn fraction_must_be_strictly_between_zero_and_one() {
        let d = table(vec![0, 0, 1], vec![0, 1, 0], None);
        for f in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            let e = split(&d, &params(SplitStrategy::Random, f, 1)).unwrap_err();
            assert!(matches!(e, SplitError::TestFraction(_)), "{f}");
        }
    }

    #[test]
    fn time_based_splits_need_timestamps() {
        let d = table(vec![0, 0, 1], vec![0, 1, 0], None);
        for s in [SplitStrategy::Temporal, SplitStrategy::LeaveLastN(1)] {
            let e = split(&d, &params(s, 0.2, 1)).unwrap_err();
            assert_eq!(e, SplitError::NeedsTimestamps(s.name()));
            assert!(e.to_string().contains("needs a timestamp column"));
        }
    }

    #[test]
    fn leave_last_zero_is_rejected() {
        let d = table(vec![0, 0], vec![0, 1], Some(vec![1, 2]));
        let p = params(SplitStrategy::LeaveLastN(0), 0.2, 1);
        assert_eq!(p.check(), Err(SplitError::LeaveLastZero));
        assert_eq!(split(&d, &p).unwrap_err(), SplitError::LeaveLastZero);
    }

    #[test]
    fn empty_input_and_empty_halves_are_errors() {
        let empty = Interactions::new(vec![], vec![], vec![], None, 0, 0).unwrap();
        assert_eq!(
            split(&empty, &params(SplitStrategy::Random, 0.2, 1)).unwrap_err(),
            SplitError::EmptyInput
        );
        // One rating per user: per_user keeps everything in train.
        let d = table(vec![0, 1, 2], vec![0, 0, 0], Some(vec![1, 2, 3]));
        let e = split(&d, &params(SplitStrategy::PerUser, 0.5, 1)).unwrap_err();
        assert!(matches!(e, SplitError::EmptyHalf { half: "test", .. }));
        let e = split(&d, &params(SplitStrategy::LeaveLastN(1), 0.5, 1)).unwrap_err();
        assert!(matches!(e, SplitError::EmptyHalf { half: "test", .. }));
        // 3 rows at 10%: round(0.3) = 0 test rows.
        let e = split(&d, &params(SplitStrategy::Temporal, 0.1, 1)).unwrap_err();
        assert!(matches!(e, SplitError::EmptyHalf { half: "test", .. }));
    }

    #[test]
    fn temporal_puts_the_newest_fraction_in_test_with_ties_by_row_order() {
        // Timestamps 5,1,3,3,9,3 -> order by (ts, row): rows 1,2,3,5,0,4. Newest 3: rows 5,0,4.
        let d = table(
            vec![0, 1, 2, 0, 1, 2],
            vec![0, 0, 0, 1, 1, 1],
            Some(vec![5, 1, 3, 3, 9, 3]),
        );
        let s = split(&d, &params(SplitStrategy::Temporal, 0.5, 7)).unwrap();
        assert_eq!(s.test.timestamp.as_deref(), Some(&[5, 9, 3][..]));
        assert_eq!(s.test.item, vec![0, 1, 1]);
        assert_eq!(s.train.timestamp.as_deref(), Some(&[1, 3, 3][..]));
        let newest_train = s.train.timestamp.as_ref().unwrap().iter().max().copied();
        let oldest_test = s.test.timestamp.as_ref().unwrap().iter().min().copied();
        assert!(newest_train <= oldest_test);
    }

    #[test]
    fn leave_last_n_keeps_one_rating_in_train() {
        // User 0: 4 ratings, user 1: 2 ratings, user 2: 1 rating.
        let d = table(
            vec![0, 0, 0, 0, 1, 1, 2],
            vec![0, 1, 2, 3, 0, 1, 0],
            Some(vec![40, 10, 30, 20, 5, 6, 1]),
        );
        let s = split(&d, &params(SplitStrategy::LeaveLastN(2), 0.2, 1)).unwrap();
        let mut test: Vec<(u32, u32)> = s
            .test
            .user
            .iter()
            .copied()
            .zip(s.test.item.iter().copied())
            .collect();
        test.sort_unstable();
        // User 0's two newest (ts 40, 30 -> items 0, 2); user 1 keeps one (its newest, item 1).
        assert_eq!(test, vec![(0, 0), (0, 2), (1, 1)]);
        assert_partition(&d, &s);
    }

    #[test]
    fn per_user_keeps_single_rating_users_in_train_and_splits_each_user() {
        let mut user = vec![9u32];
        let mut item = vec![0u32];
        for u in 0..9u32 {
            for i in 0..10u32 {
                user.push(u);
                item.push(i);
            }
        }
        let d = table(user, item, None);
        let s = split(&d, &params(SplitStrategy::PerUser, 0.3, 3)).unwrap();
        assert!(!s.test.user.contains(&9));
        for u in 0..9u32 {
            // 10 · 0.3 = 3 exactly, so no random rounding.
            assert_eq!(s.test.user.iter().filter(|&&x| x == u).count(), 3);
        }
        assert_partition(&d, &s);
    }

    #[test]
    fn sample_checks_fraction_and_keeps_everything_at_one() {
        let d = table(vec![0, 1, 2, 3], vec![0, 0, 1, 1], None);
        assert_eq!(sample(&d, 1.0, 5).unwrap(), d);
        for f in [0.0, 1.01, f64::NAN] {
            assert!(matches!(
                sample(&d, f, 5),
                Err(SplitError::SampleFraction(_))
            ));
        }
    }

    #[test]
    fn validation_params_keep_strategy_and_change_seed() {
        let p = params(SplitStrategy::PerUser, 0.2, 42);
        let v = p.for_validation(0.1);
        assert_eq!(v.strategy, p.strategy);
        assert_eq!(v.test_fraction, 0.1);
        assert_ne!(v.seed, p.seed);
    }

    fn arb_table() -> impl Strategy<Value = Interactions> {
        (1usize..8, 1usize..8, 1usize..80).prop_flat_map(|(nu, ni, n)| {
            (
                proptest::collection::vec(0..nu as u32, n),
                proptest::collection::vec(0..ni as u32, n),
                proptest::collection::vec(1u8..=5, n),
                proptest::collection::vec(0i64..20, n),
            )
                .prop_map(move |(user, item, r, ts)| {
                    let rating = r.into_iter().map(f32::from).collect();
                    Interactions::new(user, item, rating, Some(ts), nu, ni).unwrap()
                })
        })
    }

    fn arb_strategy() -> impl Strategy<Value = SplitStrategy> {
        prop_oneof![
            Just(SplitStrategy::Random),
            Just(SplitStrategy::PerUser),
            Just(SplitStrategy::Temporal),
            (1usize..4).prop_map(SplitStrategy::LeaveLastN),
        ]
    }

    proptest! {
        #[test]
        fn splits_partition_the_input_exactly(
            d in arb_table(), s in arb_strategy(), f in 0.05f64..0.95, seed in any::<u64>()
        ) {
            match split(&d, &params(s, f, seed)) {
                Ok(sp) => assert_partition(&d, &sp),
                Err(e) => prop_assert!(matches!(e, SplitError::EmptyHalf { .. }), "{e}"),
            }
        }

        #[test]
        fn splits_are_deterministic_for_a_seed(
            d in arb_table(), s in arb_strategy(), f in 0.05f64..0.95, seed in any::<u64>()
        ) {
            let p = params(s, f, seed);
            prop_assert_eq!(split(&d, &p), split(&d, &p));
            prop_assert_eq!(sample(&d, f, seed), sample(&d, f, seed));
        }

        #[test]
        fn users_with_one_rating_stay_in_train(
            d in arb_table(), s in arb_strategy(), f in 0.05f64..0.95, seed in any::<u64>()
        ) {
            if s == SplitStrategy::Random || s == SplitStrategy::Temporal {
                return Ok(());
            }
            if let Ok(sp) = split(&d, &params(s, f, seed)) {
                for &u in &sp.test.user {
                    prop_assert!(sp.train.user.contains(&u));
                }
            }
        }
    }
}
