//! Item-kNN: item-item cosine similarity with shrinkage on the binary training matrix,
//! `s(i, j) = |U(i) ∩ U(j)| / (sqrt|U(i)| sqrt|U(j)| + shrinkage)`, keeping each item's `neighbors`
//! most similar items. A user's score for candidate `i` sums `s(i, j)` over the user's training
//! items `j` among `i`'s neighbours (as `../shared/peers/peer_ease_knn.py` scores).
//!
//! Co-occurrence counts are accumulated item by item through the users who rated it (a dense
//! counter per worker, reset through the list of touched items), so memory grows with the kept
//! neighbours, never with items x items.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayViewMut2;
use rayon::prelude::*;

use crate::data::interactions::{Csr, Interactions};
use crate::model::artifact::{self, ArtifactError, Tensor, TensorData};
use crate::model::baselines::{positives, POSITIVE_THRESHOLD};
use crate::model::family::{
    Capabilities, Config, DataShape, Estimate, FamilyError, FamilyName, FitError, FitObserver,
    FitPlan, ParamKind, ParamReader, ParamSpec, ParamValue, Recommender,
};

pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "neighbors",
        kind: ParamKind::Int {
            min: 1,
            max: 100_000,
        },
        default: "100",
        help: "most similar items kept per item",
    },
    ParamSpec {
        name: "shrinkage",
        kind: ParamKind::Float {
            min: 0.0,
            max: f64::INFINITY,
            open_min: false,
        },
        default: "10",
        help: "added to the cosine's denominator: damps similarities backed by few users",
    },
    POSITIVE_THRESHOLD,
];

/// Checked item-kNN settings.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnPlan {
    pub neighbors: usize,
    pub shrinkage: f64,
    pub threshold: Option<f64>,
}

pub fn plan(config: &Config) -> Result<KnnPlan, FamilyError> {
    let r = ParamReader::new(FamilyName::ItemKnn, PARAMS, config)?;
    Ok(KnnPlan {
        neighbors: r.usize("neighbors")?.unwrap_or(100),
        shrinkage: r.float("shrinkage")?.unwrap_or(10.0),
        threshold: r.float("positive_threshold")?,
    })
}

impl FitPlan for KnnPlan {
    fn family(&self) -> FamilyName {
        FamilyName::ItemKnn
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            predicts_ratings: false,
            ranks: true,
            iterative: false,
        }
    }
    fn estimate(&self, shape: &DataShape) -> Estimate {
        let kept = (shape.n_items * self.neighbors.min(shape.n_items)) as u64;
        // Two copies of the kept similarities (by candidate and by history item), 12 bytes an
        // entry, a counter per worker, and the data twice.
        Estimate {
            bytes: kept * 12 * 2
                + shape.n_items as u64 * 8 * rayon::current_num_threads() as u64
                + shape.n_ratings as u64 * 16,
            what: format!("{} neighbours per item", self.neighbors),
            // Co-occurrence counting: about N²/users pair updates.
            flop: (shape.n_ratings as f64).powi(2) / shape.n_users.max(1) as f64 * 4.0,
        }
    }
    fn used_params(&self) -> Config {
        let mut c = Config::new();
        c.insert("neighbors".into(), self.neighbors.into());
        c.insert("shrinkage".into(), ParamValue::Float(self.shrinkage));
        if let Some(t) = self.threshold {
            c.insert("positive_threshold".into(), ParamValue::Float(t));
        }
        c
    }
    fn fit(
        &self,
        train: &Interactions,
        _validation: Option<&Interactions>,
        observer: &mut dyn FitObserver,
    ) -> Result<Box<dyn Recommender>, FitError> {
        let x = positives(train, self.threshold);
        if x.is_empty() {
            return Err(FitError::EmptyTraining);
        }
        let by_user = x.by_user();
        let by_item = x.by_item();
        let n = x.n_items;
        let norm: Vec<f32> = (0..n).map(|i| (by_item.row_len(i) as f32).sqrt()).collect();
        let k = self.neighbors;
        let shrink = self.shrinkage as f32;
        // Rows by candidate item: its neighbours.
        let rows: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .map_init(
                || (vec![0u32; n], Vec::<u32>::new()),
                |(count, touched), i| {
                    for &u in by_item.row(i).0 {
                        for &j in by_user.row(u as usize).0 {
                            let j = j as usize;
                            if j != i {
                                if count[j] == 0 {
                                    touched.push(j as u32);
                                }
                                count[j] += 1;
                            }
                        }
                    }
                    let mut sims: Vec<(u32, f32)> = touched
                        .iter()
                        .map(|&j| {
                            let c = count[j as usize] as f32;
                            (j, c / (norm[i] * norm[j as usize] + shrink + 1e-9))
                        })
                        .collect();
                    for &j in touched.iter() {
                        count[j as usize] = 0;
                    }
                    touched.clear();
                    keep_top(&mut sims, k);
                    sims
                },
            )
            .collect();
        if observer.cancelled() {
            return Err(FitError::Cancelled);
        }
        Ok(Box::new(KnnModel::from_rows(x.n_users, n, &rows)))
    }
}

/// Keeps the `k` largest similarities (ties by index ascending), sorted by index.
fn keep_top(sims: &mut Vec<(u32, f32)>, k: usize) {
    if sims.len() > k {
        sims.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        sims.truncate(k);
    }
    sims.sort_by_key(|p| p.0);
}

/// A fitted item-kNN model.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnModel {
    n_users: usize,
    /// Row `i`: candidate `i`'s neighbours `j` with `s(i, j)`.
    by_candidate: Csr,
    /// Row `j`: the candidates `i` that count `j` among their neighbours, with `s(i, j)`: what a
    /// user's history item `j` adds to each candidate's score.
    by_history: Csr,
}

impl KnnModel {
    fn from_rows(n_users: usize, n_items: usize, rows: &[Vec<(u32, f32)>]) -> Self {
        let mut r = Vec::new();
        let mut c = Vec::new();
        let mut v = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            for &(j, s) in row {
                r.push(i as u32);
                c.push(j);
                v.push(s);
            }
        }
        let by_candidate = Csr::from_triples(n_items, n_items, &r, &c, &v);
        let by_history = by_candidate.transpose();
        Self {
            n_users,
            by_candidate,
            by_history,
        }
    }

    /// Reads `weights.safetensors` (the by-history rows, as in `docs/model-format.md`).
    pub fn load(dir: &Path, n_users: usize, n_items: usize) -> Result<Self, ArtifactError> {
        let mut t = artifact::read_tensors(dir)?;
        let bad = |m: &str| ArtifactError::Corrupt {
            path: dir.join(artifact::WEIGHTS),
            message: m.to_string(),
        };
        let indptr = match t.remove("indptr").map(|t| t.data) {
            Some(TensorData::I64(v)) if v.len() == n_items + 1 => v,
            _ => return Err(bad("`indptr` must hold n_items + 1 int64 values")),
        };
        let indices = match t.remove("indices").map(|t| t.data) {
            Some(TensorData::I32(v)) => v,
            _ => return Err(bad("`indices` must be int32")),
        };
        let data = artifact::take_f32(dir, &mut t, "data", indices.len())?;
        let nnz = indices.len() as i64;
        if indptr[0] != 0
            || indptr.windows(2).any(|w| w[0] > w[1])
            || indptr[n_items] != nnz
            || indices.iter().any(|&i| i < 0 || i as usize >= n_items)
        {
            return Err(bad("the neighbour matrix is malformed"));
        }
        let mut rows = Vec::with_capacity(indices.len());
        for j in 0..n_items {
            rows.extend(std::iter::repeat_n(
                j as u32,
                (indptr[j + 1] - indptr[j]) as usize,
            ));
        }
        let cols: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let by_history = Csr::from_triples(n_items, n_items, &rows, &cols, &data);
        Ok(Self {
            n_users,
            by_candidate: by_history.transpose(),
            by_history,
        })
    }
}

impl Recommender for KnnModel {
    fn family(&self) -> FamilyName {
        FamilyName::ItemKnn
    }
    fn n_users(&self) -> usize {
        self.n_users
    }
    fn n_items(&self) -> usize {
        self.by_candidate.n_rows
    }
    fn predicts_ratings(&self) -> bool {
        false
    }
    fn score_block(&self, users: &[u32], history: &Csr, mut out: ArrayViewMut2<'_, f32>) {
        out.fill(0.0);
        for (r, &u) in users.iter().enumerate() {
            if u as usize >= history.n_rows {
                continue;
            }
            let mut row = out.row_mut(r);
            for &j in history.row(u as usize).0 {
                let (cands, sims) = self.by_history.row(j as usize);
                for (&i, &s) in cands.iter().zip(sims) {
                    row[i as usize] += s;
                }
            }
        }
    }
    fn similar_items(&self, item: u32, k: usize) -> Vec<(u32, f32)> {
        if item as usize >= self.n_items() {
            return Vec::new();
        }
        let (js, ss) = self.by_candidate.row(item as usize);
        let mut v: Vec<(u32, f32)> = js.iter().copied().zip(ss.iter().copied()).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }
    fn explain(&self, user: u32, item: u32, history: &Csr, k: usize) -> Vec<(u32, f32)> {
        if user as usize >= history.n_rows || item as usize >= self.n_items() {
            return Vec::new();
        }
        let (js, ss) = self.by_candidate.row(item as usize);
        let mut v: Vec<(u32, f32)> = history
            .row(user as usize)
            .0
            .iter()
            .filter_map(|&h| js.binary_search(&h).ok().map(|p| (h, ss[p])))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }
    fn save(&self, dir: &Path) -> Result<(), ArtifactError> {
        let m = &self.by_history;
        let mut t = BTreeMap::new();
        t.insert(
            "indptr".to_string(),
            Tensor::i64(
                vec![m.indptr.len()],
                m.indptr.iter().map(|&p| p as i64).collect(),
            ),
        );
        t.insert(
            "indices".to_string(),
            Tensor::i32(
                vec![m.indices.len()],
                m.indices.iter().map(|&i| i as i32).collect(),
            ),
        );
        t.insert(
            "data".to_string(),
            Tensor::f32(vec![m.values.len()], m.values.clone()),
        );
        artifact::write_tensors(dir, &t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::family::NoObserver;
    use ndarray::Array2;

    /// Users 0 and 1 both have items 0 and 1; user 2 has items 1 and 2.
    fn table() -> Interactions {
        Interactions::from_rows(
            &[
                (0, 0, 5.0),
                (0, 1, 4.0),
                (1, 0, 3.0),
                (1, 1, 2.0),
                (2, 1, 5.0),
                (2, 2, 1.0),
            ],
            4,
            4,
        )
    }

    #[test]
    fn similarity_is_shrunk_cosine_of_co_raters() {
        let p = KnnPlan {
            neighbors: 10,
            shrinkage: 1.0,
            threshold: None,
        };
        let m = p.fit(&table(), None, &mut NoObserver).unwrap();
        // |U(0)| = 2, |U(1)| = 3, both rated by 2 users: 2 / (sqrt 2 sqrt 3 + 1).
        let s01 = 2.0 / (2f32.sqrt() * 3f32.sqrt() + 1.0);
        let sim = m.similar_items(0, 5);
        assert_eq!(sim[0].0, 1);
        assert!((sim[0].1 - s01).abs() < 1e-5);
        // User 3 has only item 0: candidate 1 scores s(1, 0).
        let history = Interactions::from_rows(&[(3, 0, 1.0)], 4, 4).by_user();
        let mut out = Array2::zeros((1, 4));
        m.score_block(&[3], &history, out.view_mut());
        assert!((out[[0, 1]] - s01).abs() < 1e-5);
        assert_eq!(out[[0, 3]], 0.0);
        let why = m.explain(3, 1, &history, 3);
        assert_eq!(why.len(), 1);
        assert_eq!(why[0].0, 0);
    }

    #[test]
    fn only_the_top_neighbours_are_kept_and_saving_round_trips() {
        let p = KnnPlan {
            neighbors: 1,
            shrinkage: 0.0,
            threshold: None,
        };
        let m = p.fit(&table(), None, &mut NoObserver).unwrap();
        assert!(m.similar_items(1, 5).len() <= 1);
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let back = KnnModel::load(dir.path(), 4, 4).unwrap();
        for i in 0..4 {
            assert_eq!(back.similar_items(i, 5), m.similar_items(i, 5));
        }
    }

    #[test]
    fn a_threshold_keeps_only_positive_ratings() {
        let p = KnnPlan {
            neighbors: 10,
            shrinkage: 0.0,
            threshold: Some(4.0),
        };
        let m = p.fit(&table(), None, &mut NoObserver).unwrap();
        // Only (0,0), (0,1), (2,1) remain: items 0 and 1 co-occur once; item 2 has no positive.
        assert!(m.similar_items(2, 5).is_empty());
        assert_eq!(m.similar_items(0, 5).len(), 1);
    }
}
