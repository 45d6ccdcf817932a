//! The one rule for recommending to a user, shared by `recommend`, `eval` and `serve`:
//!
//! - a user is **known** when the model has a row for them and they have at least one training
//!   rating; anyone else is **cold** (an id never seen, or one whose ratings all fell in test);
//! - a known user gets the model's top K, their training items excluded unless asked otherwise,
//!   ties by item index;
//! - a cold user gets the cold-start list: the model's training items by rating count, ties by
//!   a damped mean rating (DECISIONS.md), each shown with its count and damped mean.
//!
//! Scoring goes through the blocked BLAS path for families with ranking factors and through the
//! family's own block scorer otherwise. Knows nothing about HTTP or the command line.

use std::collections::HashMap;

use crate::data::interactions::Csr;
use crate::eval::topk::{for_each_top_k, for_each_top_k_scored, TopKError, TopKOptions};
use crate::model::artifact::PopularItem;
use crate::model::family::Recommender;

/// How a user is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserLookup {
    /// The model has a row and training items for this user.
    Known(u32),
    /// Unknown id, or a user with no training rating.
    Cold,
}

/// Whether user index `u` (if any) gets model scores: a model row and a training rating.
pub fn lookup_index(u: Option<u32>, model: &dyn Recommender, history: &Csr) -> UserLookup {
    match u {
        Some(u)
            if (u as usize) < model.n_users()
                && (u as usize) < history.n_rows
                && history.row_len(u as usize) > 0 =>
        {
            UserLookup::Known(u)
        }
        _ => UserLookup::Cold,
    }
}

/// [`lookup_index`] by external id.
pub fn lookup(
    index: &HashMap<String, u32>,
    user_id: &str,
    model: &dyn Recommender,
    history: &Csr,
) -> UserLookup {
    lookup_index(index.get(user_id).copied(), model, history)
}

/// The first `k` cold-start items (count, ties by damped mean), skipping `seen`.
pub fn cold_start<'a>(popular: &'a [PopularItem], seen: &[u32], k: usize) -> Vec<&'a PopularItem> {
    popular
        .iter()
        .filter(|p| seen.binary_search(&p.item).is_err())
        .take(k)
        .collect()
}

/// Calls `sink(user, list)` for each of `users` (known users of `model`), in order, with their
/// top `k` items (score descending, index ascending), skipping each user's row of `exclude`.
pub fn for_each_top<E: From<TopKError>>(
    model: &dyn Recommender,
    history: &Csr,
    users: &[u32],
    exclude: Option<&Csr>,
    k: usize,
    options: TopKOptions,
    sink: impl FnMut(u32, Vec<(u32, f32)>) -> Result<(), E>,
) -> Result<(), E> {
    match model.ranking_factors() {
        Some((u, v)) => for_each_top_k(u, v, users, exclude, k, options, sink),
        None => {
            if let Some(&user) = users.iter().find(|&&u| u as usize >= model.n_users()) {
                return Err(TopKError::UserOutOfRange {
                    user,
                    n_users: model.n_users(),
                }
                .into());
            }
            let score = |block: &[u32], out: ndarray::ArrayViewMut2<'_, f32>| {
                model.score_block(block, history, out)
            };
            for_each_top_k_scored(&score, model.n_items(), users, exclude, k, options, sink)
        }
    }
}

/// [`for_each_top`] collected.
pub fn top_k(
    model: &dyn Recommender,
    history: &Csr,
    users: &[u32],
    exclude: Option<&Csr>,
    k: usize,
) -> Result<Vec<Vec<(u32, f32)>>, TopKError> {
    let mut out = Vec::with_capacity(users.len());
    for_each_top(
        model,
        history,
        users,
        exclude,
        k,
        TopKOptions::default(),
        |_, list| {
            out.push(list);
            Ok::<(), TopKError>(())
        },
    )?;
    Ok(out)
}

/// A model seen over larger id spaces (ids a test file adds): the extra users and items are
/// unknown to it, so they are cold and never recommended.
pub struct Padded<'a> {
    inner: &'a dyn Recommender,
    n_users: usize,
    n_items: usize,
}

impl<'a> Padded<'a> {
    pub fn new(inner: &'a dyn Recommender, n_users: usize, n_items: usize) -> Self {
        Self {
            inner,
            n_users: n_users.max(inner.n_users()),
            n_items: n_items.max(inner.n_items()),
        }
    }
}

impl Recommender for Padded<'_> {
    fn family(&self) -> crate::model::family::FamilyName {
        self.inner.family()
    }
    fn n_users(&self) -> usize {
        self.n_users
    }
    fn n_items(&self) -> usize {
        self.n_items
    }
    fn predicts_ratings(&self) -> bool {
        self.inner.predicts_ratings()
    }
    fn ranks(&self) -> bool {
        self.inner.ranks()
    }
    fn predict(&self, user: u32, item: u32) -> Option<f32> {
        if (user as usize) < self.inner.n_users() && (item as usize) < self.inner.n_items() {
            self.inner.predict(user, item)
        } else {
            None
        }
    }
    fn ranking_factors(
        &self,
    ) -> Option<(ndarray::ArrayView2<'_, f32>, ndarray::ArrayView2<'_, f32>)> {
        // Same shapes: the inner model's own fast path.
        (self.n_users == self.inner.n_users() && self.n_items == self.inner.n_items())
            .then(|| self.inner.ranking_factors())
            .flatten()
    }
    fn score_block(&self, users: &[u32], history: &Csr, mut out: ndarray::ArrayViewMut2<'_, f32>) {
        let ni = self.inner.n_items();
        out.fill(f32::NEG_INFINITY);
        let known: Vec<u32> = users
            .iter()
            .copied()
            .filter(|&u| (u as usize) < self.inner.n_users())
            .collect();
        let mut block = ndarray::Array2::<f32>::zeros((known.len(), ni));
        match self.inner.ranking_factors() {
            Some((uf, itf)) => {
                for (r, &u) in known.iter().enumerate() {
                    let row = uf.row(u as usize);
                    for (i, o) in block.row_mut(r).iter_mut().enumerate() {
                        *o = row.dot(&itf.row(i));
                    }
                }
            }
            None => self.inner.score_block(&known, history, block.view_mut()),
        }
        let mut k = 0;
        for (r, &u) in users.iter().enumerate() {
            if (u as usize) < self.inner.n_users() {
                out.row_mut(r)
                    .slice_mut(ndarray::s![..ni])
                    .assign(&block.row(k));
                k += 1;
            }
        }
    }
    fn save(&self, dir: &std::path::Path) -> Result<(), crate::model::artifact::ArtifactError> {
        self.inner.save(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::interactions::Interactions;
    use crate::model::artifact::cold_start_ranking;
    use crate::model::baselines::RandomModel;

    #[test]
    fn a_user_without_training_ratings_is_cold() {
        let h = Interactions::from_rows(&[(0, 0, 5.0)], 2, 2).by_user();
        let m = RandomModel {
            seed: 1,
            n_users: 2,
            n_items: 2,
        };
        assert_eq!(lookup_index(Some(0), &m, &h), UserLookup::Known(0));
        assert_eq!(lookup_index(Some(1), &m, &h), UserLookup::Cold);
        assert_eq!(lookup_index(Some(7), &m, &h), UserLookup::Cold);
        assert_eq!(lookup_index(None, &m, &h), UserLookup::Cold);
    }

    #[test]
    fn factor_and_block_scorers_give_the_same_lists() {
        let t = Interactions::from_rows(
            &[
                (0, 0, 5.0),
                (0, 3, 1.0),
                (1, 1, 4.0),
                (2, 2, 2.0),
                (2, 0, 3.0),
            ],
            3,
            6,
        );
        let h = t.by_user();
        let pop = crate::model::baselines::PopularityModel::fit(&t);
        let by_factors = top_k(&pop, &h, &[0, 1, 2], Some(&h), 3).unwrap();
        let mut by_blocks = Vec::new();
        let score = |b: &[u32], out: ndarray::ArrayViewMut2<'_, f32>| pop.score_block(b, &h, out);
        for_each_top_k_scored(
            &score,
            6,
            &[0, 1, 2],
            Some(&h),
            3,
            TopKOptions::default(),
            |_, l| {
                by_blocks.push(l);
                Ok::<(), TopKError>(())
            },
        )
        .unwrap();
        assert_eq!(by_factors, by_blocks);
        assert!(by_factors[0].iter().all(|(i, _)| *i != 0 && *i != 3));
    }

    #[test]
    fn cold_start_skips_seen_items_in_list_order() {
        let t = Interactions::from_rows(&[(0, 0, 5.0), (1, 0, 4.0), (1, 1, 4.0)], 2, 3);
        let popular = cold_start_ranking(&t);
        let list: Vec<u32> = cold_start(&popular, &[0], 5)
            .iter()
            .map(|p| p.item)
            .collect();
        assert_eq!(list, vec![1]);
    }
}
