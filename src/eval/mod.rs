//! Evaluation of a fitted model on a test split, beside the popularity baseline.
//!
//! [`evaluate`] is engine-neutral: it takes the model's ranking factors (score = user row · item
//! row) and, for RMSE and MAE, a rating predictor closure, never a model type. A model with item
//! biases folds them into the factors (append a column of ones to the user factors and the item
//! bias to the item factors); a user bias does not change a user's ranking. The popularity
//! baseline is fitted here, on the training split only, and ranked under the same rules.
//!
//! Candidates for a user's top-K are all catalogue items except the user's training items; test
//! items are never excluded. A test user with no training rating (or no factor row) cannot be
//! scored by the model and counts 0; the baseline scores every user. Definitions are in
//! [`metrics`]; the top-K scorer in [`topk`]. This module knows nothing about files, tracking or
//! the command line.

pub mod metrics;
pub mod topk;

use ndarray::ArrayView2;
use thiserror::Error;

use crate::data::interactions::Interactions;
use crate::model::popularity::Popularity;
use metrics::{rating_metrics, Known, RankingAccumulator, RankingMetrics, RatingMetrics, TestSets};
use topk::{for_each_top_k, TopKError, TopKOptions};

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
    #[error("the model has {rows} {what} factor rows but the data has {expected} {what}s")]
    FactorRows {
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

/// What to compute: the K of the top-K metrics and the optional relevance threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalSettings {
    pub k: usize,
    /// When set, only test ratings `>= threshold` are relevant. Off by default; it changes every
    /// ranking figure several-fold, so runs record it among their params.
    pub threshold: Option<f32>,
    /// Block shape of the top-K scorer.
    pub topk: TopKOptions,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            k: 10,
            threshold: None,
            topk: TopKOptions::default(),
        }
    }
}

/// A model's ranking factors: rows indexed by the dense user and item ids.
#[derive(Debug, Clone, Copy)]
pub struct RankingFactors<'a> {
    pub users: ArrayView2<'a, f32>,
    pub items: ArrayView2<'a, f32>,
}

/// All figures of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    pub k: usize,
    pub threshold: Option<f32>,
    /// `None` when no predictor was given (implicit models have no rating scale).
    pub rating: Option<RatingMetrics>,
    pub ranking: RankingMetrics,
    pub popularity: RankingMetrics,
}

impl EvalReport {
    /// Metrics under their logged names: `rmse`, `mae` (when defined), `precision_at_K`,
    /// `recall_at_K`, `ndcg_at_K`, `map_at_K`, `coverage_at_K`, then the baseline's as
    /// `popularity.precision_at_K` and so on.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let mut out = self.rating.map(|r| r.named()).unwrap_or_default();
        out.extend(self.ranking.named(""));
        out.extend(self.popularity.named("popularity."));
        out
    }

    /// Counts behind the figures: `users_evaluated` (users with a relevant test item),
    /// `users_unscored` (of those, the ones the model could not score), and for the rating
    /// errors `test_pairs_scored`, `test_pairs_cold` and `test_pairs_non_finite`.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut out = vec![
            ("users_evaluated".to_string(), self.ranking.users),
            ("users_unscored".to_string(), self.ranking.unscored_users),
        ];
        if let Some(r) = self.rating {
            out.push(("test_pairs_scored".to_string(), r.scored_pairs));
            out.push(("test_pairs_cold".to_string(), r.cold_pairs));
            out.push(("test_pairs_non_finite".to_string(), r.non_finite_pairs));
        }
        out
    }
}

/// Evaluates a model given by its ranking `factors` and optional rating `predict`or against
/// `test`, with `train` giving the items to exclude, the users and items the model knows, and
/// the popularity baseline.
///
/// Top-K scoring runs on rayon's current pool; keep BLAS single-threaded while it runs.
pub fn evaluate(
    factors: RankingFactors<'_>,
    predict: Option<&dyn Fn(u32, u32) -> f32>,
    train: &Interactions,
    test: &Interactions,
    settings: &EvalSettings,
) -> Result<EvalReport, EvalError> {
    let k = settings.k;
    if k == 0 {
        return Err(EvalError::ZeroK);
    }
    if (train.n_users, train.n_items) != (test.n_users, test.n_items) {
        return Err(EvalError::IdSpaces {
            train_users: train.n_users,
            train_items: train.n_items,
            test_users: test.n_users,
            test_items: test.n_items,
        });
    }
    for (what, rows, expected) in [
        ("user", factors.users.nrows(), train.n_users),
        ("item", factors.items.nrows(), train.n_items),
    ] {
        if rows != expected {
            return Err(EvalError::FactorRows {
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
    let rating = predict.map(|p| rating_metrics(test, &known, p));
    let by_user = train.by_user();

    // The model: top-K for the users it knows, streamed into the accumulator in `scored` order.
    let (scored, unscored): (Vec<usize>, Vec<usize>) =
        (0..sets.len()).partition(|&s| known.user(sets.users[s]));
    let scored_users: Vec<u32> = scored.iter().map(|&s| sets.users[s]).collect();
    let mut model = RankingAccumulator::new(k, train.n_items);
    let mut next = scored.iter();
    for_each_top_k(
        factors.users,
        factors.items,
        &scored_users,
        Some(&by_user),
        k,
        settings.topk,
        |_, list| {
            if let Some(&s) = next.next() {
                let items: Vec<u32> = list.iter().map(|p| p.0).collect();
                model.add(Some(&items), &sets.items[s]);
            }
            Ok::<(), EvalError>(())
        },
    )?;
    for &s in &unscored {
        model.add(None, &sets.items[s]);
    }

    // The baseline, from the training split only; it scores every user.
    let popularity = Popularity::fit(train);
    let mut baseline = RankingAccumulator::new(k, train.n_items);
    for (u, relevant) in sets.users.iter().zip(&sets.items) {
        let items: Vec<u32> = popularity
            .recommend(&by_user, *u, k)
            .into_iter()
            .map(|p| p.0)
            .collect();
        baseline.add(Some(&items), relevant);
    }

    Ok(EvalReport {
        k,
        threshold: settings.threshold,
        rating,
        ranking: model.finish(),
        popularity: baseline.finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn table(rows: &[(u32, u32, f32)], n_users: usize, n_items: usize) -> Interactions {
        Interactions::from_rows(rows, n_users, n_items)
    }

    fn value(report: &EvalReport, name: &str) -> f64 {
        report
            .metrics()
            .into_iter()
            .find(|p| p.0 == name)
            .map(|p| p.1)
            .unwrap_or(f64::NAN)
    }

    /// 3 users, 4 items. Train: u0 {0}, u1 {0, 1}; u2 has no training rating. Test: u0 {1, 3},
    /// u1 {2}, u2 {0}. Model scores items 3 > 2 > 1 > 0 for everyone.
    fn fixture() -> (Interactions, Interactions, Array2<f32>, Array2<f32>) {
        let train = table(&[(0, 0, 5.0), (1, 0, 4.0), (1, 1, 2.0)], 3, 4);
        let test = table(&[(0, 1, 4.0), (0, 3, 2.0), (1, 2, 5.0), (2, 0, 3.0)], 3, 4);
        let users = Array2::from_elem((3, 1), 1.0f32);
        let items = Array2::from_shape_vec((4, 1), vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        (train, test, users, items)
    }

    #[test]
    fn evaluate_matches_hand_computed_figures() {
        let (train, test, u, v) = fixture();
        let settings = EvalSettings {
            k: 2,
            ..Default::default()
        };
        let factors = RankingFactors {
            users: u.view(),
            items: v.view(),
        };
        let predict = |_: u32, _: u32| 4.0f32;
        let r = evaluate(factors, Some(&predict), &train, &test, &settings).unwrap();
        // Known pairs: (0,1) err 0, (0,3) item 3 unknown -> cold, (1,2) cold, (2,0) cold.
        let rating = r.rating.unwrap();
        assert_eq!((rating.scored_pairs, rating.cold_pairs), (1, 3));
        assert!(value(&r, "rmse").abs() < 1e-12);
        // Model: u0 gets [3, 2] -> hit at rank 1 of {1, 3}; u1 gets [3, 2] -> hit at rank 2 of
        // {2}; u2 unscored -> 0.
        let (l2, l3) = (1.0, 1.0 / 3f64.log2());
        assert_eq!((r.ranking.users, r.ranking.unscored_users), (3, 1));
        assert!((value(&r, "precision_at_2") - (0.5 + 0.5) / 3.0).abs() < 1e-12);
        assert!((value(&r, "recall_at_2") - (0.5 + 1.0) / 3.0).abs() < 1e-12);
        assert!((value(&r, "ndcg_at_2") - (l2 / (l2 + l3) + l3 / l2) / 3.0).abs() < 1e-12);
        assert!((value(&r, "map_at_2") - (0.5 + 0.5) / 3.0).abs() < 1e-12);
        assert!((value(&r, "coverage_at_2") - 0.5).abs() < 1e-12);
        // Popularity from train: counts 0:2, 1:1, then 2, 3 by index. u0 (seen {0}) -> [1, 2]
        // hit rank 1; u1 (seen {0,1}) -> [2, 3] hit rank 1; u2 -> [0, 1] hit rank 1.
        assert!((value(&r, "popularity.precision_at_2") - 0.5).abs() < 1e-12);
        assert!((value(&r, "popularity.recall_at_2") - (0.5 + 1.0 + 1.0) / 3.0).abs() < 1e-12);
        assert!((value(&r, "popularity.ndcg_at_2") - (1.0 / (l2 + l3) + 2.0) / 3.0).abs() < 1e-12);
        assert!((value(&r, "popularity.coverage_at_2") - 1.0).abs() < 1e-12);
    }

    #[test]
    fn threshold_drops_users_without_relevant_items() {
        let (train, test, u, v) = fixture();
        let settings = EvalSettings {
            k: 2,
            threshold: Some(4.0),
            ..Default::default()
        };
        let factors = RankingFactors {
            users: u.view(),
            items: v.view(),
        };
        let r = evaluate(factors, None, &train, &test, &settings).unwrap();
        // Relevant: u0 {1}, u1 {2}; u2's rating 3 is below the threshold.
        assert_eq!(r.ranking.users, 2);
        assert!(r.rating.is_none());
        assert!((value(&r, "recall_at_2") - 0.5).abs() < 1e-12);
        let settings = EvalSettings {
            threshold: Some(6.0),
            ..settings
        };
        assert_eq!(
            evaluate(factors, None, &train, &test, &settings),
            Err(EvalError::NoRelevantItems(6.0))
        );
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let (train, test, u, v) = fixture();
        let factors = RankingFactors {
            users: u.view(),
            items: v.slice(ndarray::s![..3, ..]),
        };
        let e = evaluate(factors, None, &train, &test, &EvalSettings::default()).unwrap_err();
        assert!(matches!(e, EvalError::FactorRows { what: "item", .. }));
        let factors = RankingFactors {
            users: u.view(),
            items: v.view(),
        };
        let zero = EvalSettings {
            k: 0,
            ..Default::default()
        };
        assert_eq!(
            evaluate(factors, None, &train, &test, &zero),
            Err(EvalError::ZeroK)
        );
    }
}
