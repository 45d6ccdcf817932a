//! Rating-error and top-K ranking metrics, as defined in the project's METRICS.md.
//!
//! Rating errors (RMSE, MAE) cover the test pairs whose user and item both have a training rating;
//! the others are counted as cold and skipped (Spark's `coldStartStrategy = "drop"`). Ranking
//! metrics are averaged over the users with at least one relevant test item; a user the model
//! cannot score counts 0 and stays in the average, and relevant items the model never saw stay in
//! the denominators as misses. Relevance is binary: every test item, or with a threshold `t`,
//! the test items rated `>= t`.
//!
//! This module works on item lists and predictions only: it knows nothing about how they were
//! produced, about factor models, or about where the names it outputs are logged.

use crate::data::interactions::Interactions;

/// Output name of a ranking metric at `k`, as logged and as `--metric` accepts it:
/// `metric_name("ndcg", 10)` is `ndcg_at_10`.
pub fn metric_name(base: &str, k: usize) -> String {
    format!("{base}_at_{k}")
}

/// Which users and items have at least one training rating.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub users: Vec<bool>,
    pub items: Vec<bool>,
}

impl Known {
    pub fn from_train(train: &Interactions) -> Self {
        let mut users = vec![false; train.n_users];
        let mut items = vec![false; train.n_items];
        // `get_mut`: ids past the declared spaces are ignored rather than trusted.
        for &u in &train.user {
            if let Some(known) = users.get_mut(u as usize) {
                *known = true;
            }
        }
        for &i in &train.item {
            if let Some(known) = items.get_mut(i as usize) {
                *known = true;
            }
        }
        Self { users, items }
    }

    pub fn user(&self, u: u32) -> bool {
        self.users.get(u as usize).copied().unwrap_or(false)
    }

    pub fn item(&self, i: u32) -> bool {
        self.items.get(i as usize).copied().unwrap_or(false)
    }
}

/// RMSE and MAE over the scored test pairs, with the counts of pairs left out.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RatingMetrics {
    /// `None` when no pair could be scored.
    pub rmse: Option<f64>,
    pub mae: Option<f64>,
    pub scored_pairs: usize,
    /// Pairs whose user or item has no training rating.
    pub cold_pairs: usize,
    /// Pairs whose prediction was NaN or infinite (skipped, as a model that cannot score them).
    pub non_finite_pairs: usize,
}

impl RatingMetrics {
    /// `rmse` and `mae`, when defined.
    pub fn named(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if let Some(v) = self.rmse {
            out.push(("rmse".to_string(), v));
        }
        if let Some(v) = self.mae {
            out.push(("mae".to_string(), v));
        }
        out
    }
}

/// One user's rating errors over their scored test pairs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UserErrors {
    pub user: u32,
    pub pairs: u32,
    pub sq_err: f64,
    pub abs_err: f64,
}

/// Errors of `predict(user, item)` against every test rating whose user and item are `known`.
pub fn rating_metrics(
    test: &Interactions,
    known: &Known,
    predict: impl Fn(u32, u32) -> f32,
) -> RatingMetrics {
    rating_metrics_per_user(test, known, predict).0
}

/// [`rating_metrics`] and each scored user's errors (users ascending).
pub fn rating_metrics_per_user(
    test: &Interactions,
    known: &Known,
    predict: impl Fn(u32, u32) -> f32,
) -> (RatingMetrics, Vec<UserErrors>) {
    let mut m = RatingMetrics::default();
    let (mut se, mut ae) = (0f64, 0f64);
    let mut per_user = vec![UserErrors::default(); test.n_users];
    for k in 0..test.len() {
        let (u, i) = (test.user[k], test.item[k]);
        if !known.user(u) || !known.item(i) {
            m.cold_pairs += 1;
            continue;
        }
        let p = predict(u, i);
        if !p.is_finite() {
            m.non_finite_pairs += 1;
            continue;
        }
        let e = f64::from(p) - f64::from(test.rating[k]);
        se += e * e;
        ae += e.abs();
        m.scored_pairs += 1;
        let slot = &mut per_user[u as usize];
        slot.pairs += 1;
        slot.sq_err += e * e;
        slot.abs_err += e.abs();
    }
    if m.scored_pairs > 0 {
        let n = m.scored_pairs as f64;
        m.rmse = Some((se / n).sqrt());
        m.mae = Some(ae / n);
    }
    let per_user = per_user
        .into_iter()
        .enumerate()
        .filter(|(_, e)| e.pairs > 0)
        .map(|(u, e)| UserErrors {
            user: u as u32,
            ..e
        })
        .collect();
    (m, per_user)
}

/// The relevant test items of each user that has any: users ascending, items sorted ascending
/// without duplicates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestSets {
    pub users: Vec<u32>,
    pub items: Vec<Vec<u32>>,
}

impl TestSets {
    /// Groups `test` by user, keeping ratings `>= threshold` when one is given.
    pub fn from_test(test: &Interactions, threshold: Option<f32>) -> Self {
        let mut per_user: Vec<Vec<u32>> = vec![Vec::new(); test.n_users];
        for k in 0..test.len() {
            if threshold.is_none_or(|t| test.rating[k] >= t) {
                if let Some(items) = per_user.get_mut(test.user[k] as usize) {
                    items.push(test.item[k]);
                }
            }
        }
        let mut sets = Self::default();
        for (u, mut items) in per_user.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            items.sort_unstable();
            items.dedup();
            sets.users.push(u as u32);
            sets.items.push(items);
        }
        sets
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// One user's ranking metrics at K.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UserMetrics {
    pub hits: usize,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub average_precision: f64,
}

/// Metrics of the first `k` items of `recommended` against the `relevant` set (sorted ascending,
/// no duplicates). An item recommended twice counts once.
pub fn user_metrics(recommended: &[u32], relevant: &[u32], k: usize) -> UserMetrics {
    if k == 0 || relevant.is_empty() {
        return UserMetrics::default();
    }
    let mut found: Vec<u32> = Vec::new();
    let (mut hits, mut dcg, mut ap_sum) = (0usize, 0f64, 0f64);
    for (pos, &item) in recommended.iter().take(k).enumerate() {
        if relevant.binary_search(&item).is_err() || found.contains(&item) {
            continue;
        }
        found.push(item);
        hits += 1;
        let rank = (pos + 1) as f64;
        dcg += 1.0 / (rank + 1.0).log2();
        ap_sum += hits as f64 / rank;
    }
    let ideal = k.min(relevant.len());
    let idcg: f64 = (1..=ideal).map(|i| 1.0 / ((i + 1) as f64).log2()).sum();
    UserMetrics {
        hits,
        precision: hits as f64 / k as f64,
        recall: hits as f64 / relevant.len() as f64,
        ndcg: dcg / idcg,
        average_precision: ap_sum / ideal as f64,
    }
}

/// Ranking metrics averaged over users, and coverage.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RankingMetrics {
    pub k: usize,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub map: f64,
    pub coverage: f64,
    /// Users with at least one relevant test item: the averages' denominator.
    pub users: usize,
    /// Those of them the model could not score (counted as 0).
    pub unscored_users: usize,
}

impl RankingMetrics {
    /// `precision_at_K`, `recall_at_K`, `ndcg_at_K`, `map_at_K`, `coverage_at_K`, each name
    /// preceded by `prefix` (empty for the model, `popularity.` for the baseline).
    pub fn named(&self, prefix: &str) -> Vec<(String, f64)> {
        [
            ("precision", self.precision),
            ("recall", self.recall),
            ("ndcg", self.ndcg),
            ("map", self.map),
            ("coverage", self.coverage),
        ]
        .into_iter()
        .map(|(base, v)| (format!("{prefix}{}", metric_name(base, self.k)), v))
        .collect()
    }
}

/// One user's ranking figures at K, kept for intervals and paired tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserRanking {
    pub user: u32,
    /// The user's relevant test items.
    pub relevant: u32,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub average_precision: f64,
}

impl UserRanking {
    /// The value behind a ranking metric's split-free base name (`ndcg`), if it is per user.
    pub fn value(&self, base: &str) -> Option<f64> {
        match base {
            "precision" => Some(self.precision),
            "recall" => Some(self.recall),
            "ndcg" => Some(self.ndcg),
            "map" => Some(self.average_precision),
            _ => None,
        }
    }
}

/// Adds users one at a time, so top-K lists can be consumed as they are produced.
#[derive(Debug, Clone)]
pub struct RankingAccumulator {
    k: usize,
    sums: UserMetrics,
    users: usize,
    unscored: usize,
    recommended: Vec<bool>,
    distinct: usize,
    per_user: Vec<UserRanking>,
}

impl RankingAccumulator {
    /// Metrics at `k` over a catalogue of `n_items` items (the coverage denominator).
    pub fn new(k: usize, n_items: usize) -> Self {
        Self {
            k,
            sums: UserMetrics::default(),
            users: 0,
            unscored: 0,
            recommended: vec![false; n_items],
            distinct: 0,
            per_user: Vec::new(),
        }
    }

    /// One user with a non-empty relevant set (sorted ascending, no duplicates): `None` when
    /// the model cannot score the user, who then counts 0.
    pub fn add(&mut self, user: u32, recommended: Option<&[u32]>, relevant: &[u32]) {
        self.users += 1;
        let Some(list) = recommended else {
            self.unscored += 1;
            self.per_user.push(UserRanking {
                user,
                relevant: relevant.len() as u32,
                precision: 0.0,
                recall: 0.0,
                ndcg: 0.0,
                average_precision: 0.0,
            });
            return;
        };
        for &i in list.iter().take(self.k) {
            if let Some(seen) = self.recommended.get_mut(i as usize) {
                if !*seen {
                    *seen = true;
                    self.distinct += 1;
                }
            }
        }
        let m = user_metrics(list, relevant, self.k);
        self.sums.precision += m.precision;
        self.sums.recall += m.recall;
        self.sums.ndcg += m.ndcg;
        self.sums.average_precision += m.average_precision;
        self.per_user.push(UserRanking {
            user,
            relevant: relevant.len() as u32,
            precision: m.precision,
            recall: m.recall,
            ndcg: m.ndcg,
            average_precision: m.average_precision,
        });
    }

    /// Each added user's figures, users ascending.
    pub fn per_user(&self) -> Vec<UserRanking> {
        let mut out = self.per_user.clone();
        out.sort_by_key(|u| u.user);
        out
    }

    /// Averages over the users added; all zero when there were none.
    pub fn finish(&self) -> RankingMetrics {
        let n = self.users.max(1) as f64;
        let catalogue = self.recommended.len();
        RankingMetrics {
            k: self.k,
            precision: self.sums.precision / n,
            recall: self.sums.recall / n,
            ndcg: self.sums.ndcg / n,
            map: self.sums.average_precision / n,
            coverage: if catalogue == 0 {
                0.0
            } else {
                self.distinct as f64 / catalogue as f64
            },
            users: self.users,
            unscored_users: self.unscored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn table(rows: &[(u32, u32, f32)], n_users: usize, n_items: usize) -> Interactions {
        Interactions::from_rows(rows, n_users, n_items)
    }

    #[test]
    fn names_follow_the_decisions_page() {
        let m = RankingMetrics {
            k: 10,
            ..Default::default()
        };
        let names: Vec<String> = m.named("popularity.").into_iter().map(|p| p.0).collect();
        assert_eq!(
            names,
            [
                "popularity.precision_at_10",
                "popularity.recall_at_10",
                "popularity.ndcg_at_10",
                "popularity.map_at_10",
                "popularity.coverage_at_10"
            ]
        );
        let r = RatingMetrics {
            rmse: Some(1.0),
            mae: Some(0.5),
            ..Default::default()
        };
        assert_eq!(r.named()[0].0, "rmse");
        assert_eq!(r.named()[1].0, "mae");
    }

    #[test]
    fn user_metrics_match_hand_computed_values() {
        // K = 5, relevant {1, 3, 9}; hits at ranks 1 and 3 (items 1 and 3), item 9 missed.
        let m = user_metrics(&[1, 7, 3, 8, 6], &[1, 3, 9], 5);
        assert_eq!(m.hits, 2);
        assert!(close(m.precision, 2.0 / 5.0));
        assert!(close(m.recall, 2.0 / 3.0));
        // DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG over min(5, 3) = 3 ranks.
        let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!(close(m.ndcg, 1.5 / idcg));
        // AP = (1/1 + 2/3) / min(5, 3).
        assert!(close(m.average_precision, (1.0 + 2.0 / 3.0) / 3.0));
    }

    #[test]
    fn precision_divides_by_k_even_when_fewer_test_items() {
        // One relevant item found at rank 2 of K = 10.
        let m = user_metrics(&[4, 2], &[2], 10);
        assert!(close(m.precision, 0.1));
        assert!(close(m.recall, 1.0));
        assert!(close(m.ndcg, 1.0 / 3f64.log2()));
        assert!(close(m.average_precision, 0.5));
    }

    #[test]
    fn only_the_first_k_items_and_first_occurrences_count() {
        let m = user_metrics(&[5, 5, 6, 1], &[1, 5], 3);
        assert_eq!(m.hits, 1);
        assert!(close(m.precision, 1.0 / 3.0));
    }

    #[test]
    fn unscored_users_count_zero_and_stay_in_the_average() {
        let mut acc = RankingAccumulator::new(2, 4);
        acc.add(0, Some(&[0, 1]), &[0]);
        acc.add(1, None, &[3]);
        let m = acc.finish();
        assert_eq!((m.users, m.unscored_users), (2, 1));
        assert!(close(m.precision, 0.25));
        assert!(close(m.recall, 0.5));
        assert!(close(m.ndcg, 0.5));
        assert!(close(m.map, 0.5));
        // Items 0 and 1 recommended, of 4.
        assert!(close(m.coverage, 0.5));
    }

    #[test]
    fn threshold_keeps_only_relevant_items_and_users_with_any() {
        let test = table(
            &[
                (0, 1, 5.0),
                (0, 2, 2.0),
                (1, 0, 3.0),
                (2, 3, 4.0),
                (2, 3, 4.5),
            ],
            3,
            4,
        );
        let all = TestSets::from_test(&test, None);
        assert_eq!(all.users, vec![0, 1, 2]);
        assert_eq!(all.items, vec![vec![1, 2], vec![0], vec![3]]);
        let rel = TestSets::from_test(&test, Some(4.0));
        assert_eq!(rel.users, vec![0, 2]);
        assert_eq!(rel.items, vec![vec![1], vec![3]]);
    }

    #[test]
    fn rating_errors_skip_and_count_cold_pairs() {
        let train = table(&[(0, 0, 4.0), (1, 1, 3.0)], 3, 3);
        let test = table(&[(0, 1, 5.0), (1, 0, 1.0), (2, 0, 3.0), (0, 2, 3.0)], 3, 3);
        let known = Known::from_train(&train);
        // Predicts 3 everywhere: errors 2 and 2 on the two known pairs.
        let m = rating_metrics(&test, &known, |_, _| 3.0);
        assert_eq!((m.scored_pairs, m.cold_pairs), (2, 2));
        assert!(close(m.rmse.unwrap(), 2.0));
        assert!(close(m.mae.unwrap(), 2.0));
        let m = rating_metrics(&test, &known, |u, _| if u == 0 { f32::NAN } else { 0.0 });
        assert_eq!((m.scored_pairs, m.non_finite_pairs), (1, 1));
        assert!(close(m.rmse.unwrap(), 1.0));
    }

    #[test]
    fn per_user_errors_add_up_to_the_totals() {
        let train = table(&[(0, 0, 4.0), (0, 1, 3.0), (1, 1, 3.0)], 3, 3);
        let test = table(&[(1, 0, 1.0), (0, 1, 5.0), (0, 0, 2.0), (2, 0, 3.0)], 3, 3);
        let (m, per) = rating_metrics_per_user(&test, &Known::from_train(&train), |_, _| 3.0);
        // User 2 has no training rating: not scored, not listed.
        assert_eq!(per.iter().map(|e| e.user).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!((per[0].pairs, per[1].pairs), (2, 1));
        assert!(close(per[0].sq_err, 4.0 + 1.0) && close(per[1].sq_err, 4.0));
        let n: u32 = per.iter().map(|e| e.pairs).sum();
        let se: f64 = per.iter().map(|e| e.sq_err).sum();
        assert_eq!(n as usize, m.scored_pairs);
        assert!(close((se / f64::from(n)).sqrt(), m.rmse.unwrap()));
    }

    #[test]
    fn rmse_and_mae_are_absent_when_nothing_is_scored() {
        let train = table(&[(0, 0, 4.0)], 2, 2);
        let test = table(&[(1, 1, 5.0)], 2, 2);
        let m = rating_metrics(&test, &Known::from_train(&train), |_, _| 3.0);
        assert_eq!(m.rmse, None);
        assert!(m.named().is_empty());
    }

    fn arb_user() -> impl Strategy<Value = (Vec<u32>, Vec<u32>)> {
        (
            proptest::sample::subsequence((0u32..30).collect::<Vec<_>>(), 0..30).prop_shuffle(),
            proptest::collection::btree_set(0u32..30, 1..10),
        )
            .prop_map(|(rec, rel)| (rec, rel.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn metrics_stay_within_zero_and_one(
            users in proptest::collection::vec(arb_user(), 1..8), k in 1usize..15
        ) {
            let mut acc = RankingAccumulator::new(k, 30);
            for (u, (rec, rel)) in users.iter().enumerate().rev() {
                let m = user_metrics(rec, rel, k);
                for v in [m.precision, m.recall, m.ndcg, m.average_precision] {
                    prop_assert!((0.0..=1.0 + 1e-12).contains(&v), "{m:?}");
                }
                acc.add(u as u32, Some(rec), rel);
            }
            let m = acc.finish();
            for v in [m.precision, m.recall, m.ndcg, m.map, m.coverage] {
                prop_assert!((0.0..=1.0 + 1e-12).contains(&v), "{m:?}");
            }
            // The per-user figures are the ones averaged, users ascending.
            let per = acc.per_user();
            prop_assert!(per.windows(2).all(|w| w[0].user < w[1].user));
            let mean = |f: fn(&UserRanking) -> f64| per.iter().map(f).sum::<f64>() / per.len() as f64;
            prop_assert!((mean(|u| u.ndcg) - m.ndcg).abs() < 1e-12);
            prop_assert!((mean(|u| u.average_precision) - m.map).abs() < 1e-12);
        }

        #[test]
        fn recall_never_decreases_with_k((rec, rel) in arb_user(), k in 1usize..30) {
            let a = user_metrics(&rec, &rel, k);
            let b = user_metrics(&rec, &rel, k + 1);
            prop_assert!(b.recall >= a.recall);
            prop_assert!(b.hits >= a.hits);
        }

        #[test]
        fn a_perfect_list_scores_one((_, rel) in arb_user(), k in 1usize..15) {
            let m = user_metrics(&rel, &rel, k);
            prop_assert!((m.ndcg - 1.0).abs() < 1e-12);
            prop_assert!((m.average_precision - 1.0).abs() < 1e-12);
            prop_assert!((m.recall - (k.min(rel.len()) as f64 / rel.len() as f64)).abs() < 1e-12);
        }
    }
}
