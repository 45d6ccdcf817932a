//! The most-popular baseline: items ranked by how often they were rated in a training table.
//!
//! It serves two uses. In evaluation it is the baseline every model is compared with, fitted on
//! the training split only. In serving it is the cold-start answer for users the model does not
//! know. It knows nothing about factor models, files or the command line.
//!
//! Ranking rule (the same as the ETL's `popular_items`): rating count descending, then average
//! rating descending, then item index ascending. Items nobody rated are still candidates (count 0,
//! ordered by index) so a top-K list has K entries whenever the catalogue allows.
//!
//! Cold start uses a damped mean rating `(sum + m · global_mean) / (count + m)` as the tie-breaker
//! and as the score shown, with `m` = [`DEFAULT_DAMPING`]: an item's own ratings count as much as
//! `m` ratings at the global mean, so a single 5-star rating does not make an item look excellent.
//! Because count is the first key, an item with one rating never beats an item with more. Among
//! items of equal count the damped mean orders like the plain mean, so both rankings list items
//! in the same order; they differ in the score attached.

use crate::data::interactions::{Csr, Interactions};

/// The damping `m` of the cold-start mean: the weight, in ratings, of the global mean.
pub const DEFAULT_DAMPING: f64 = 5.0;

/// Popularity statistics of a training table and the rankings derived from them.
#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    counts: Vec<u32>,
    sums: Vec<f64>,
    global_mean: f64,
    damping: f64,
    ranking: Vec<u32>,
    cold_ranking: Vec<u32>,
}

impl Popularity {
    /// Counts and averages ratings per item in `train`, with the default damping.
    pub fn fit(train: &Interactions) -> Self {
        Self::fit_with_damping(train, DEFAULT_DAMPING)
    }

    /// As [`Popularity::fit`], with the cold-start damping `m` given (negative or non-finite
    /// values fall back to [`DEFAULT_DAMPING`]).
    pub fn fit_with_damping(train: &Interactions, damping: f64) -> Self {
        let damping = if damping.is_finite() && damping >= 0.0 {
            damping
        } else {
            DEFAULT_DAMPING
        };
        let n = train.n_items;
        let mut counts = vec![0u32; n];
        let mut sums = vec![0f64; n];
        for (&i, &r) in train.item.iter().zip(&train.rating) {
            counts[i as usize] += 1;
            sums[i as usize] += f64::from(r);
        }
        let total: f64 = sums.iter().sum();
        let global_mean = if train.is_empty() {
            0.0
        } else {
            total / train.len() as f64
        };
        let mut p = Self {
            counts,
            sums,
            global_mean,
            damping,
            ranking: Vec::new(),
            cold_ranking: Vec::new(),
        };
        p.ranking = p.ranked_by(|p, i| p.mean(i));
        p.cold_ranking = p.ranked_by(|p, i| p.damped_mean(i));
        p
    }

    /// All items by count desc, then `key` desc, then index asc.
    fn ranked_by(&self, key: impl Fn(&Self, u32) -> f64) -> Vec<u32> {
        let keys: Vec<f64> = (0..self.counts.len() as u32)
            .map(|i| key(self, i))
            .collect();
        let mut order: Vec<u32> = (0..self.counts.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (a_, b_) = (a as usize, b as usize);
            self.counts[b_]
                .cmp(&self.counts[a_])
                .then(keys[b_].total_cmp(&keys[a_]))
                .then(a.cmp(&b))
        });
        order
    }

    /// Number of items in the catalogue (the training table's id space).
    pub fn n_items(&self) -> usize {
        self.counts.len()
    }

    /// Training ratings of `item` (0 for an unknown index).
    pub fn count(&self, item: u32) -> u32 {
        self.counts.get(item as usize).copied().unwrap_or(0)
    }

    /// Average training rating of `item`; 0 when it has none.
    pub fn mean(&self, item: u32) -> f64 {
        match self.count(item) {
            0 => 0.0,
            c => self.sums[item as usize] / f64::from(c),
        }
    }

    /// `(sum + m · global_mean) / (count + m)`; the global mean for an item nobody rated.
    pub fn damped_mean(&self, item: u32) -> f64 {
        let c = f64::from(self.count(item));
        let s = self.sums.get(item as usize).copied().unwrap_or(0.0);
        if c + self.damping == 0.0 {
            return self.global_mean;
        }
        (s + self.damping * self.global_mean) / (c + self.damping)
    }

    pub fn global_mean(&self) -> f64 {
        self.global_mean
    }

    pub fn damping(&self) -> f64 {
        self.damping
    }

    /// Every item, most popular first (count, then average rating, then index).
    pub fn ranking(&self) -> &[u32] {
        &self.ranking
    }

    /// Every item in cold-start order (count, then damped mean, then index).
    pub fn cold_start_ranking(&self) -> &[u32] {
        &self.cold_ranking
    }

    /// The `k` most popular items not in `seen` (sorted ascending, as a [`Csr`] row is), each
    /// with its training count as the score.
    pub fn top_k(&self, seen: &[u32], k: usize) -> Vec<(u32, f32)> {
        self.ranking
            .iter()
            .copied()
            .filter(|i| seen.binary_search(i).is_err())
            .take(k)
            .map(|i| (i, self.count(i) as f32))
            .collect()
    }

    /// [`Popularity::top_k`] for `user`, excluding that user's row of `train_by_user` (a user
    /// outside its rows has nothing to exclude).
    pub fn recommend(&self, train_by_user: &Csr, user: u32, k: usize) -> Vec<(u32, f32)> {
        let seen = if (user as usize) < train_by_user.n_rows {
            train_by_user.row(user as usize).0
        } else {
            &[]
        };
        self.top_k(seen, k)
    }

    /// The `k` first items in cold-start order not in `seen` (sorted ascending), each with its
    /// damped mean rating as the score.
    pub fn cold_start(&self, seen: &[u32], k: usize) -> Vec<(u32, f32)> {
        self.cold_ranking
            .iter()
            .copied()
            .filter(|i| seen.binary_search(i).is_err())
            .take(k)
            .map(|i| (i, self.damped_mean(i) as f32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn train(rows: &[(u32, u32, f32)], n_users: usize, n_items: usize) -> Interactions {
        Interactions::from_rows(rows, n_users, n_items)
    }

    #[test]
    fn ranking_is_count_then_mean_then_index() {
        // Item 0: 2 ratings mean 3; item 1: 2 ratings mean 4; item 2: 3 ratings; item 3: 2
        // ratings mean 4 (ties item 1, loses on index); item 4: none.
        let t = train(
            &[
                (0, 0, 3.0),
                (1, 0, 3.0),
                (0, 1, 4.0),
                (1, 1, 4.0),
                (0, 2, 1.0),
                (1, 2, 1.0),
                (2, 2, 1.0),
                (2, 3, 5.0),
                (3, 3, 3.0),
            ],
            4,
            5,
        );
        let p = Popularity::fit(&t);
        assert_eq!(p.ranking(), &[2, 1, 3, 0, 4]);
        assert_eq!(p.count(2), 3);
        assert!((p.mean(1) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn top_k_excludes_seen_items_and_scores_by_count() {
        let t = train(&[(0, 0, 1.0), (1, 0, 1.0), (0, 1, 1.0), (2, 2, 1.0)], 3, 4);
        let p = Popularity::fit(&t);
        let by_user = t.by_user();
        assert_eq!(p.recommend(&by_user, 0, 2), vec![(2, 1.0), (3, 0.0)]);
        assert_eq!(
            p.recommend(&by_user, 2, 10),
            vec![(0, 2.0), (1, 1.0), (3, 0.0)]
        );
        // A user outside the table's rows gets the plain ranking.
        assert_eq!(p.recommend(&by_user, 7, 1), vec![(0, 2.0)]);
    }

    #[test]
    fn single_five_star_never_beats_a_well_rated_popular_item() {
        // Item 0: one 5-star rating. Item 1: four ratings averaging 4.5. Item 2: five 3s.
        let mut rows = vec![
            (0, 0, 5.0),
            (1, 1, 4.0),
            (2, 1, 5.0),
            (3, 1, 4.0),
            (4, 1, 5.0),
        ];
        rows.extend((0..5).map(|u| (u, 2, 3.0)));
        let p = Popularity::fit(&train(&rows, 5, 3));
        assert_eq!(p.cold_start_ranking(), &[2, 1, 0]);
        // Global mean 38 / 10 = 3.8: the lone 5 damps to (5 + 5 · 3.8) / 6 = 4.0, below the
        // popular item's (18 + 19) / 9.
        assert!((p.global_mean() - 3.8).abs() < 1e-12);
        assert!((p.damped_mean(0) - 4.0).abs() < 1e-12);
        assert!((p.damped_mean(1) - 37.0 / 9.0).abs() < 1e-12);
        assert!(p.damped_mean(0) < p.damped_mean(1));
        assert!(p.mean(0) > p.mean(1));
    }

    #[test]
    fn empty_training_table_ranks_by_index() {
        let t = train(&[], 0, 3);
        let p = Popularity::fit(&t);
        assert_eq!(p.ranking(), &[0, 1, 2]);
        assert_eq!(p.cold_start(&[1], 5), vec![(0, 0.0), (2, 0.0)]);
    }

    proptest! {
        #[test]
        fn cold_start_order_matches_the_plain_ranking(
            rows in proptest::collection::vec((0u32..5, 0u32..12, 1u8..=5), 0..60)
        ) {
            let rows: Vec<(u32, u32, f32)> =
                rows.into_iter().map(|(u, i, r)| (u, i, f32::from(r))).collect();
            let p = Popularity::fit(&train(&rows, 5, 12));
            prop_assert_eq!(p.ranking(), p.cold_start_ranking());
            let counts: Vec<u32> = p.ranking().iter().map(|&i| p.count(i)).collect();
            prop_assert!(counts.windows(2).all(|w| w[0] >= w[1]));
        }
    }
}
