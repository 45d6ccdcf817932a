//! A saved model prepared for answering requests: id lookups, each user's training items, unit
//! item vectors for cosine similarity, and the cold-start list.
//!
//! Built once per load (or reload) and then only read, shared by every request through an `Arc`.
//! Knows nothing about HTTP, the scoring threads or how the model was found on disk.

use std::collections::HashMap;
use std::sync::Arc;

use ndarray::{s, Array2, ArrayView2, Axis};
use serde::Serialize;

use crate::data::interactions::Csr;
use crate::data::meta::ItemMeta;
use crate::model::artifact::{ModelMetadata, PopularItem, SavedModel};
use crate::model::family::{Config, Recommender};
pub use crate::model::recommend::UserLookup;

/// A model ready to serve.
pub struct ServingModel {
    pub(crate) model: Arc<dyn Recommender>,
    /// For factor models: the latent item columns (the folded bias columns left out), scaled to
    /// unit length, for cosine similarity through the batched product; a zero row stays zero.
    pub(crate) item_unit: Option<Array2<f32>>,
    pub(crate) user_ids: Vec<String>,
    pub(crate) item_ids: Vec<String>,
    user_index: HashMap<String, u32>,
    item_index: HashMap<String, u32>,
    /// What each user already has, sorted by item within a user.
    pub(crate) seen: Csr,
    pub(crate) popular: Vec<PopularItem>,
    pub(crate) metadata: ModelMetadata,
    /// Where the model came from (a folder, or whatever the loader reports).
    pub(crate) source: String,
    /// When this server loaded it (RFC 3339, UTC).
    pub(crate) loaded_at: String,
    /// Titles, categories and image URLs by item index, when the model has them.
    pub(crate) item_meta: Option<Vec<ItemMeta>>,
    /// User indices in id order, for prefix search.
    users_sorted: Vec<u32>,
}

impl std::fmt::Debug for ServingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingModel")
            .field("family", &self.metadata.family)
            .field("users", &self.user_ids.len())
            .field("items", &self.item_ids.len())
            .field("source", &self.source)
            .finish()
    }
}

impl ServingModel {
    /// Prepares `model` for serving; `source` is shown by `/v1/model`.
    pub fn new(model: SavedModel, source: impl Into<String>) -> Self {
        let seen = model.history.by_user();
        let item_unit = model.model.ranking_factors().map(|(_, items)| {
            let latent = model
                .metadata
                .latent
                .unwrap_or(items.ncols())
                .min(items.ncols());
            unit_rows(items.slice(s![.., ..latent]))
        });
        let index = |ids: &[String]| -> HashMap<String, u32> {
            ids.iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i as u32))
                .collect()
        };
        let mut users_sorted: Vec<u32> = (0..model.user_ids.len() as u32).collect();
        users_sorted
            .sort_unstable_by(|&a, &b| model.user_ids[a as usize].cmp(&model.user_ids[b as usize]));
        Self {
            users_sorted,
            user_index: index(&model.user_ids),
            item_index: index(&model.item_ids),
            item_unit,
            model: model.model,
            user_ids: model.user_ids,
            item_ids: model.item_ids,
            seen,
            popular: model.popular,
            metadata: model.metadata,
            source: source.into(),
            loaded_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            item_meta: model.item_meta,
        }
    }

    /// Whether `user_id` gets model scores or the cold-start list (`model::recommend`'s rule).
    pub fn lookup_user(&self, user_id: &str) -> UserLookup {
        crate::model::recommend::lookup(&self.user_index, user_id, self.model.as_ref(), &self.seen)
    }

    /// The dense index of `item_id`, when the model knows it.
    pub fn lookup_item(&self, item_id: &str) -> Option<u32> {
        self.item_index
            .get(item_id)
            .copied()
            .filter(|&i| (i as usize) < self.model.n_items())
    }

    /// The external id of item `i`.
    pub fn item_id(&self, i: u32) -> &str {
        self.item_ids
            .get(i as usize)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// What is known of item `i` (title, category, image URL), when the model has metadata.
    pub fn item_meta(&self, i: u32) -> Option<&ItemMeta> {
        self.item_meta.as_ref()?.get(i as usize)
    }

    /// A user with training ratings, drawn at random (`None` when there is none).
    pub fn random_user(&self) -> Option<u32> {
        use rand::Rng;
        let with_history: Vec<u32> = (0..self.seen.n_rows.min(self.model.n_users()))
            .filter(|&u| self.seen.row_len(u) > 0)
            .map(|u| u as u32)
            .collect();
        (!with_history.is_empty())
            .then(|| with_history[rand::thread_rng().gen_range(0..with_history.len())])
    }

    /// Up to `limit` known user ids starting with `prefix`, in id order.
    pub fn users_with_prefix(&self, prefix: &str, limit: usize) -> Vec<&str> {
        let ids = &self.users_sorted;
        let from = ids.partition_point(|&u| self.user_id(u) < prefix);
        ids[from..]
            .iter()
            .map(|&u| self.user_id(u))
            .take_while(|id| id.starts_with(prefix))
            .take(limit)
            .collect()
    }

    /// The external id of user `u`.
    pub fn user_id(&self, u: u32) -> &str {
        self.user_ids
            .get(u as usize)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// User `u`'s training items (ascending) with their ratings.
    pub fn history(&self, u: u32) -> (&[u32], &[f32]) {
        if (u as usize) < self.seen.n_rows {
            self.seen.row(u as usize)
        } else {
            (&[], &[])
        }
    }

    /// The user's training items that contribute most to `item`'s score (the family's own
    /// account; empty when it has none). Runs on the caller's thread: call it off the reactor.
    pub fn explain(&self, user: u32, item: u32, k: usize) -> Vec<(u32, f32)> {
        self.model.explain(user, item, &self.seen, k)
    }

    /// Training items of user `u` (ascending).
    pub fn seen_items(&self, u: u32) -> &[u32] {
        if (u as usize) < self.seen.n_rows {
            self.seen.row(u as usize).0
        } else {
            &[]
        }
    }

    /// The first `k` cold-start items.
    pub fn popular(&self, k: usize) -> &[PopularItem] {
        &self.popular[..k.min(self.popular.len())]
    }

    /// The model's scoring factors, when its family has them.
    pub fn factors(&self) -> Option<(ArrayView2<'_, f32>, ArrayView2<'_, f32>)> {
        self.model.ranking_factors()
    }

    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    /// What `/v1/model` shows.
    pub fn info(&self) -> ModelInfo<'_> {
        let m = &self.metadata;
        ModelInfo {
            run_id: m.run_id.as_deref(),
            family: m.family.to_string(),
            entry: m.entry.as_deref(),
            predicts_ratings: m.predicts_ratings,
            params: &m.params,
            metrics: &m.metrics,
            timings: &m.timings,
            training_seconds: m.timings.get("fit_seconds").copied(),
            created_at: &m.created_at,
            n_users: self.n_users(),
            n_items: self.n_items(),
            n_history: m.n_history,
            recflow_version: &m.recflow_version,
            git_commit: m.git_commit.as_deref(),
            source: &self.source,
            loaded_at: &self.loaded_at,
        }
    }
}

/// The model's description, as JSON.
#[derive(Debug, Serialize)]
pub struct ModelInfo<'a> {
    pub run_id: Option<&'a str>,
    pub family: String,
    pub entry: Option<&'a str>,
    pub predicts_ratings: bool,
    pub params: &'a Config,
    pub metrics: &'a std::collections::BTreeMap<String, f64>,
    pub timings: &'a std::collections::BTreeMap<String, f64>,
    /// `timings.fit_seconds`, when recorded.
    pub training_seconds: Option<f64>,
    pub created_at: &'a str,
    pub n_users: usize,
    pub n_items: usize,
    pub n_history: usize,
    pub recflow_version: &'a str,
    pub git_commit: Option<&'a str>,
    pub source: &'a str,
    pub loaded_at: &'a str,
}

/// Rows scaled to unit Euclidean length (zero rows stay zero), computed in f64 for accuracy.
fn unit_rows(m: ArrayView2<f32>) -> Array2<f32> {
    let mut out = m.to_owned();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let norm = row
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 && norm.is_finite() {
            row.mapv_inplace(|x| (f64::from(x) / norm) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rows_have_length_one_and_zero_rows_stay_zero() {
        let m = Array2::from_shape_vec((2, 2), vec![3.0f32, 4.0, 0.0, 0.0]).unwrap();
        let u = unit_rows(m.view());
        assert!((u[[0, 0]] - 0.6).abs() < 1e-6 && (u[[0, 1]] - 0.8).abs() < 1e-6);
        assert_eq!(u.row(1).to_vec(), vec![0.0, 0.0]);
    }
}
