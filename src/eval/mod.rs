//! Evaluation of a fitted model on a test split.
//!
//! [`evaluate`] takes any [`Recommender`]: ranking metrics from its top-K lists (through the
//! shared recommending rule of [`crate::model::recommend`]), RMSE and MAE from its predicted
//! ratings when it predicts them. Candidates for a user's top-K are all catalogue items except
//! the user's training items; test items are never excluded. A test user with no training
//! rating cannot be scored and counts 0. Definitions are in [`metrics`], the metric registry in
//! [`keys`], the top-K scorer in [`topk`]. This module knows nothing about files, tracking or the
//! command line.

pub mod keys;
pub mod metrics;
pub mod stats;
pub mod topk;

use thiserror::Error;

use crate::data::interactions::Interactions;
use crate::model::family::Recommender;
use crate::model::recommend::for_each_top;
use keys::Split;
use metrics::{
    rating_metrics_per_user, Known, RankingAccumulator, RankingMetrics, RatingMetrics, TestSets,
    UserErrors, UserRanking,
};
use stats::{Bootstrap, Interval};
use topk::{TopKError, TopKOptions};

/// Errors from [`evaluate`].
#[derive(Debug, Error, PartialEq)]
pub enum EvalError {
    #[error("top-K needs k of at least 1, got `0`")]
    ZeroK,
    #[error(
        "train and test use different id spaces: train has {train_users} users and {train_items} \
         items, test has {test_users} users and {test_items} items"
    )]
    IdSpaces {
        train_users: usize,
        train_items: usize,
        test_users: usize,
        test_items: usize,
    },
    #[error("the model knows {rows} {what}s but the data has {expected}")]
    ModelShape {
        what: &'static str,
        rows: usize,
        expected: usize,
    },
    #[error("the test split has no ratings")]
    EmptyTest,
    #[error(
        "no test user has a rating of at least `{0}`, so ranking metrics are undefined\n\
         hint: lower the relevance threshold or turn it off"
    )]
    NoRelevantItems(f32),
    #[error(transparent)]
    TopK(#[from] TopKError),
}

/// Further cut-offs reported beside the main one (`eval.k = [5, 10, 20]`): at most
/// [`MoreK::MAX`], each distinct and at least 1. A fixed array keeps [`EvalSettings`] `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MoreK {
    ks: [usize; MoreK::MAX],
    len: usize,
}

impl MoreK {
    pub const MAX: usize = 7;

    /// The cut-offs `ks` other than `main`, ascending; `None` when there are too many.
    pub fn new(ks: &[usize], main: usize) -> Option<Self> {
        let mut v: Vec<usize> = ks.iter().copied().filter(|&k| k != main).collect();
        v.sort_unstable();
        v.dedup();
        if v.len() > Self::MAX {
            return None;
        }
        let mut out = MoreK::default();
        out.ks[..v.len()].copy_from_slice(&v);
        out.len = v.len();
        Some(out)
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.ks[..self.len].iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What to compute: the K of the top-K metrics and the optional relevance threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalSettings {
    /// The main cut-off: the one selection, tie-breaks and the summary tables use.
    pub k: usize,
    /// Further cut-offs whose ranking metrics are reported too, from the same top lists.
    pub more_k: MoreK,
    /// When set, only test ratings `>= threshold` are relevant. Off by default; it changes every
    /// ranking figure several-fold, so runs record it among their params.
    pub threshold: Option<f32>,
    /// Block shape of the top-K scorer.
    pub topk: TopKOptions,
    /// Whether rating errors are computed for models that predict ratings. Off for implicit
    /// feedback (every training rating equal), where RMSE cannot tell models apart.
    pub ratings: bool,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            k: 10,
            more_k: MoreK::default(),
            threshold: None,
            topk: TopKOptions::default(),
            ratings: true,
        }
    }
}

/// All figures of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    pub k: usize,
    pub threshold: Option<f32>,
    /// `None` when the model predicts no ratings.
    pub rating: Option<RatingMetrics>,
    /// `None` when the model does not rank (a global mean).
    pub ranking: Option<RankingMetrics>,
    /// Each evaluated user's figures, for intervals and paired tests.
    pub per_user: PerUser,
    /// The ranking metrics at the further cut-offs, each with its per-user figures (the same
    /// users, ascending, as `per_user.ranking`).
    pub more: Vec<(RankingMetrics, Vec<UserRanking>)>,
}

/// Per-user figures of one evaluation, users ascending in each list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PerUser {
    /// Users with a relevant test item (empty when the model does not rank).
    pub ranking: Vec<UserRanking>,
    /// Users with a scored test pair (empty when the model predicts no ratings).
    pub rating: Vec<UserErrors>,
}

impl EvalReport {
    /// Metrics under their keys on `split`: `test_rmse`, `test_mae` (when defined),
    /// `test_precision_at_K`, `test_recall_at_K`, `test_ndcg_at_K`, `test_map_at_K`,
    /// `test_coverage_at_K`.
    pub fn metrics(&self, split: Split) -> Vec<(String, f64)> {
        let mut out = self.rating.map(|r| r.named()).unwrap_or_default();
        if let Some(r) = &self.ranking {
            out.extend(r.named(""));
        }
        for (r, _) in &self.more {
            out.extend(r.named(""));
        }
        out.into_iter()
            .map(|(k, v)| (format!("{split}_{k}"), v))
            .collect()
    }

    /// The figure under `key` (a full key on `split`).
    pub fn get(&self, split: Split, key: &str) -> Option<f64> {
        self.metrics(split)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// 95% bootstrap intervals over users of every per-user metric, by split-free name
    /// (`ndcg_at_10`, `rmse`): ranking means, and RMSE and MAE as ratios over the users' pairs.
    pub fn intervals(&self, boot: Bootstrap) -> Vec<(String, Interval)> {
        let mut out = Vec::new();
        let r = &self.per_user.rating;
        if !r.is_empty() {
            let pairs: Vec<f64> = r.iter().map(|e| f64::from(e.pairs)).collect();
            let sq: Vec<f64> = r.iter().map(|e| e.sq_err).collect();
            let abs: Vec<f64> = r.iter().map(|e| e.abs_err).collect();
            let (rmse, mae) = stats::rmse_mae_ci(&sq, &abs, &pairs, boot);
            out.extend(rmse.map(|ci| ("rmse".to_string(), ci)));
            out.extend(mae.map(|ci| ("mae".to_string(), ci)));
        }
        if self.ranking.is_some() {
            let bases = ["precision", "recall", "ndcg", "map"];
            let columns: Vec<Vec<f64>> = bases.iter().map(|b| self.per_user_values(b)).collect();
            let refs: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
            for (base, ci) in bases.iter().zip(stats::means_ci(&refs, boot)) {
                out.extend(ci.map(|ci| (metrics::metric_name(base, self.k), ci)));
            }
            for (m, users) in &self.more {
                let columns: Vec<Vec<f64>> = bases
                    .iter()
                    .map(|b| users.iter().filter_map(|u| u.value(b)).collect())
                    .collect();
                let refs: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
                for (base, ci) in bases.iter().zip(stats::means_ci(&refs, boot)) {
                    out.extend(ci.map(|ci| (metrics::metric_name(base, m.k), ci)));
                }
            }
        }
        out
    }

    /// The per-user values of the ranking metric `base` (`ndcg`), users ascending.
    pub fn per_user_values(&self, base: &str) -> Vec<f64> {
        self.per_user
            .ranking
            .iter()
            .filter_map(|u| u.value(base))
            .collect()
    }

    /// Counts behind the figures (not metrics): `users_evaluated` (users with a relevant test
    /// item), `users_unscored` (of those, the ones the model could not score), and for the
    /// rating errors `test_pairs_scored`, `test_pairs_cold` and `test_pairs_non_finite`.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        if let Some(r) = &self.ranking {
            out.push(("users_evaluated".to_string(), r.users));
            out.push(("users_unscored".to_string(), r.unscored_users));
        }
        if let Some(r) = self.rating {
            out.push(("pairs_scored".to_string(), r.scored_pairs));
            out.push(("pairs_cold".to_string(), r.cold_pairs));
            out.push(("pairs_non_finite".to_string(), r.non_finite_pairs));
        }
        out
    }
}

/// Evaluates `model` against `test`, with `train` giving the items to exclude and the users and
/// items the model knows.
///
/// Top-K scoring runs on rayon's current pool; keep BLAS single-threaded while it runs.
pub fn evaluate(
    model: &dyn Recommender,
    train: &Interactions,
    test: &Interactions,
    settings: &EvalSettings,
) -> Result<EvalReport, EvalError> {
    let by_user = train.by_user();
    evaluate_with_history(model, train, &by_user, test, settings)
}

/// [`evaluate`] with the training rows already grouped by user.
pub fn evaluate_with_history(
    model: &dyn Recommender,
    train: &Interactions,
    by_user: &crate::data::interactions::Csr,
    test: &Interactions,
    settings: &EvalSettings,
) -> Result<EvalReport, EvalError> {
    let k = settings.k;
    if k == 0 || settings.more_k.iter().any(|k| k == 0) {
        return Err(EvalError::ZeroK);
    }
    // One top list per user at the largest cut-off serves every cut-off.
    let k_max = settings.more_k.iter().fold(k, usize::max);
    if (train.n_users, train.n_items) != (test.n_users, test.n_items) {
        return Err(EvalError::IdSpaces {
            train_users: train.n_users,
            train_items: train.n_items,
            test_users: test.n_users,
            test_items: test.n_items,
        });
    }
    for (what, rows, expected) in [
        ("user", model.n_users(), train.n_users),
        ("item", model.n_items(), train.n_items),
    ] {
        if rows != expected {
            return Err(EvalError::ModelShape {
                what,
                rows,
                expected,
            });
        }
    }
    if test.is_empty() {
        return Err(EvalError::EmptyTest);
    }
    let sets = TestSets::from_test(test, settings.threshold);
    if let (true, Some(t)) = (sets.is_empty(), settings.threshold) {
        return Err(EvalError::NoRelevantItems(t));
    }

    let known = Known::from_train(train);
    let (rating, rating_users) = if model.predicts_ratings() && settings.ratings {
        let (m, per) =
            rating_metrics_per_user(test, &known, |u, i| model.predict(u, i).unwrap_or(f32::NAN));
        (Some(m), per)
    } else {
        (None, Vec::new())
    };
    if !model.ranks() {
        return Ok(EvalReport {
            k,
            threshold: settings.threshold,
            rating,
            ranking: None,
            per_user: PerUser {
                ranking: Vec::new(),
                rating: rating_users,
            },
            more: Vec::new(),
        });
    }

    // Top-K for the users the model knows, streamed into the accumulator in `scored` order.
    let (scored, unscored): (Vec<usize>, Vec<usize>) =
        (0..sets.len()).partition(|&s| known.user(sets.users[s]));
    let scored_users: Vec<u32> = scored.iter().map(|&s| sets.users[s]).collect();
    let mut acc = RankingAccumulator::new(k, train.n_items);
    let mut more: Vec<RankingAccumulator> = settings
        .more_k
        .iter()
        .map(|k| RankingAccumulator::new(k, train.n_items))
        .collect();
    let mut next = scored.iter();
    for_each_top(
        model,
        by_user,
        &scored_users,
        Some(by_user),
        k_max,
        settings.topk,
        |_, list| {
            if let Some(&s) = next.next() {
                // Each accumulator reads the first K of the list (best first).
                let items: Vec<u32> = list.iter().map(|p| p.0).collect();
                acc.add(sets.users[s], Some(&items), &sets.items[s]);
                for m in &mut more {
                    m.add(sets.users[s], Some(&items), &sets.items[s]);
                }
            }
            Ok::<(), EvalError>(())
        },
    )?;
    for &s in &unscored {
        acc.add(sets.users[s], None, &sets.items[s]);
        for m in &mut more {
            m.add(sets.users[s], None, &sets.items[s]);
        }
    }
    Ok(EvalReport {
        k,
        threshold: settings.threshold,
        rating,
        ranking: Some(acc.finish()),
        per_user: PerUser {
            ranking: acc.per_user(),
            rating: rating_users,
        },
        more: more.iter().map(|m| (m.finish(), m.per_user())).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::baselines::PopularityModel;
    use ndarray::{Array2, ArrayView2, ArrayViewMut2};

    fn table(rows: &[(u32, u32, f32)], n_users: usize, n_items: usize) -> Interactions {
        Interactions::from_rows(rows, n_users, n_items)
    }

    fn value(report: &EvalReport, name: &str) -> f64 {
        report.get(Split::Test, name).unwrap_or(f64::NAN)
    }

    /// Scores items 3 > 2 > 1 > 0 for everyone and predicts 4 for every pair.
    struct Fixed {
        users: Array2<f32>,
        items: Array2<f32>,
        predicts: bool,
    }

    impl Recommender for Fixed {
        fn family(&self) -> crate::model::family::FamilyName {
            crate::model::family::FamilyName::Als
        }
        fn n_users(&self) -> usize {
            self.users.nrows()
        }
        fn n_items(&self) -> usize {
            self.items.nrows()
        }
        fn predicts_ratings(&self) -> bool {
            self.predicts
        }
        fn predict(&self, _: u32, _: u32) -> Option<f32> {
            Some(4.0)
        }
        fn ranking_factors(&self) -> Option<(ArrayView2<'_, f32>, ArrayView2<'_, f32>)> {
            Some((self.users.view(), self.items.view()))
        }
        fn score_block(
            &self,
            _: &[u32],
            _: &crate::data::interactions::Csr,
            _: ArrayViewMut2<'_, f32>,
        ) {
        }
        fn save(&self, _: &std::path::Path) -> Result<(), crate::model::artifact::ArtifactError> {
            Ok(())
        }
    }

    /// 3 users, 4 items. Train: u0 {0}, u1 {0, 1}; u2 has no training rating. Test: u0 {1, 3},
    /// u1 {2}, u2 {0}.
    fn fixture(predicts: bool) -> (Interactions, Interactions, Fixed) {
        let train = table(&[(0, 0, 5.0), (1, 0, 4.0), (1, 1, 2.0)], 3, 4);
        let test = table(&[(0, 1, 4.0), (0, 3, 2.0), (1, 2, 5.0), (2, 0, 3.0)], 3, 4);
        let users = Array2::from_elem((3, 1), 1.0f32);
        let items = Array2::from_shape_vec((4, 1), vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        (
            train,
            test,
            Fixed {
                users,
                items,
                predicts,
            },
        )
    }

    #[test]
    fn evaluate_matches_hand_computed_figures() {
        let (train, test, m) = fixture(true);
        let settings = EvalSettings {
            k: 2,
            ..Default::default()
        };
        let r = evaluate(&m, &train, &test, &settings).unwrap();
        // Known pairs: (0,1) err 0, (0,3) item 3 unknown -> cold, (1,2) cold, (2,0) cold.
        let rating = r.rating.unwrap();
        assert_eq!((rating.scored_pairs, rating.cold_pairs), (1, 3));
        assert!(value(&r, "test_rmse").abs() < 1e-12);
        // Model: u0 gets [3, 2] -> hit at rank 1 of {1, 3}; u1 gets [3, 2] -> hit at rank 2 of
        // {2}; u2 unscored -> 0.
        let (l2, l3) = (1.0, 1.0 / 3f64.log2());
        let ranking = r.ranking.unwrap();
        assert_eq!((ranking.users, ranking.unscored_users), (3, 1));
        assert!((value(&r, "test_precision_at_2") - (0.5 + 0.5) / 3.0).abs() < 1e-12);
        assert!((value(&r, "test_recall_at_2") - (0.5 + 1.0) / 3.0).abs() < 1e-12);
        assert!((value(&r, "test_ndcg_at_2") - (l2 / (l2 + l3) + l3 / l2) / 3.0).abs() < 1e-12);
        assert!((value(&r, "test_map_at_2") - (0.5 + 0.5) / 3.0).abs() < 1e-12);
        assert!((value(&r, "test_coverage_at_2") - 0.5).abs() < 1e-12);
    }

    #[test]
    fn further_cut_offs_equal_separate_evaluations_at_each_k() {
        let (train, test, m) = fixture(true);
        let one = |k: usize| {
            let s = EvalSettings {
                k,
                ..Default::default()
            };
            evaluate(&m, &train, &test, &s).unwrap()
        };
        let s = EvalSettings {
            k: 2,
            more_k: MoreK::new(&[1, 2, 3], 2).unwrap(),
            ..Default::default()
        };
        let all = evaluate(&m, &train, &test, &s).unwrap();
        for k in [1, 2, 3] {
            let alone = one(k);
            for base in ["precision", "recall", "ndcg", "map", "coverage"] {
                let key = format!("test_{base}_at_{k}");
                let (a, b) = (value(&all, &key), value(&alone, &key));
                assert!((a - b).abs() < 1e-12, "{key}: {a} vs {b}");
            }
        }
        // Intervals for every cut-off, and per-user figures for the further ones.
        let ci = all.intervals(stats::Bootstrap::default());
        for k in [1, 2, 3] {
            assert!(
                ci.iter().any(|(n, _)| *n == format!("ndcg_at_{k}")),
                "{ci:?}"
            );
        }
        assert_eq!(all.more.len(), 2);
        assert!(all
            .more
            .iter()
            .all(|(_, u)| u.len() == all.per_user.ranking.len()));
        assert!(MoreK::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 1).is_none());
    }

    #[test]
    fn the_popularity_family_scores_every_user_from_training_counts() {
        let (train, test, _) = fixture(false);
        let pop = PopularityModel::fit(&train);
        let settings = EvalSettings {
            k: 2,
            ..Default::default()
        };
        let r = evaluate(&pop, &train, &test, &settings).unwrap();
        let (l2, l3) = (1.0, 1.0 / 3f64.log2());
        // Counts 0:2, 1:1, then 2, 3 by index. u0 (seen {0}) -> [1, 2] hit rank 1; u1 (seen
        // {0,1}) -> [2, 3] hit rank 1; u2 has no training rating, so it is not scored.
        assert!(r.rating.is_none());
        assert!((value(&r, "test_precision_at_2") - (0.5 + 0.5) / 3.0).abs() < 1e-12);
        assert!((value(&r, "test_ndcg_at_2") - (1.0 / (l2 + l3) + 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn threshold_drops_users_without_relevant_items() {
        let (train, test, m) = fixture(false);
        let settings = EvalSettings {
            k: 2,
            threshold: Some(4.0),
            ..Default::default()
        };
        let r = evaluate(&m, &train, &test, &settings).unwrap();
        // Relevant: u0 {1}, u1 {2}; u2's rating 3 is below the threshold.
        assert_eq!(r.ranking.unwrap().users, 2);
        assert!(r.rating.is_none());
        assert!((value(&r, "test_recall_at_2") - 0.5).abs() < 1e-12);
        let settings = EvalSettings {
            threshold: Some(6.0),
            ..settings
        };
        assert_eq!(
            evaluate(&m, &train, &test, &settings),
            Err(EvalError::NoRelevantItems(6.0))
        );
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let (train, test, mut m) = fixture(false);
        m.items = m.items.slice(ndarray::s![..3, ..]).to_owned();
        let e = evaluate(&m, &train, &test, &EvalSettings::default()).unwrap_err();
        assert!(matches!(e, EvalError::ModelShape { what: "item", .. }));
        let (train, test, m) = fixture(false);
        let zero = EvalSettings {
            k: 0,
            ..Default::default()
        };
        assert_eq!(evaluate(&m, &train, &test, &zero), Err(EvalError::ZeroK));
    }
}
