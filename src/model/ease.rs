//! EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): one closed-form item-item model.
//! `B = I - P diagMat(1 / diag(P))` with `P = (XᵀX + λI)⁻¹` and a zero diagonal; a user's scores
//! are `x_u B`, the sum of the rows of `B` over the user's training items (binary `x_u`).
//!
//! The Gram matrix is accumulated from the sparse training rows (`Σ |I(u)|²` additions, no dense
//! `X`) and inverted through one LAPACK Cholesky factorization; scoring sums rows of `B` in f32.
//! An items x items matrix that does not fit in memory is refused before any work.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::data::interactions::{Csr, Interactions};
use crate::model::als::linalg;
use crate::model::artifact::{self, ArtifactError, Tensor};
use crate::model::baselines::{positives, POSITIVE_THRESHOLD};
use crate::model::family::{
    Capabilities, Config, DataShape, Estimate, FamilyError, FamilyName, FitError, FitObserver,
    FitPlan, ParamKind, ParamReader, ParamSpec, ParamValue, Recommender,
};

pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "lambda",
        kind: ParamKind::Float {
            min: 0.0,
            max: f64::INFINITY,
            open_min: true,
        },
        default: "500",
        help: "L2 penalty added to the Gram matrix's diagonal",
    },
    POSITIVE_THRESHOLD,
];

/// Checked EASE settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EasePlan {
    pub lambda: f64,
    pub threshold: Option<f64>,
}

pub fn plan(config: &Config) -> Result<EasePlan, FamilyError> {
    let r = ParamReader::new(FamilyName::Ease, PARAMS, config)?;
    Ok(EasePlan {
        lambda: r.float("lambda")?.unwrap_or(500.0),
        threshold: r.float("positive_threshold")?,
    })
}

impl FitPlan for EasePlan {
    fn family(&self) -> FamilyName {
        FamilyName::Ease
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            predicts_ratings: false,
            ranks: true,
            iterative: false,
        }
    }
    fn estimate(&self, shape: &DataShape) -> Estimate {
        let n = shape.n_items as u64;
        // The Gram matrix inverted in place and the weights, both f32 (the f64 retry for a
        // matrix f32 cannot factor is the rare case, not budgeted).
        Estimate {
            bytes: n * n * 8 + shape.n_ratings as u64 * 16,
            what: format!("the {n} x {n} item matrices"),
            // Cholesky factor and inverse: n³/3 + 2n³/3 FLOP. Blocked single-precision LAPACK
            // runs about 28x the rate `EFFECTIVE_FLOPS` assumes for row-by-row solves
            // (citeulike-a, 16,980 items: 43 s measured), so the figure is scaled to those units.
            flop: (n as f64).powi(3) / 28.0,
        }
    }
    fn used_params(&self) -> Config {
        let mut c = Config::new();
        c.insert("lambda".into(), ParamValue::Float(self.lambda));
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
        let threads = rayon::current_num_threads();
        let not_pd = || {
            FitError::Numeric(format!(
                "the Gram matrix plus lambda {} is not positive definite; raise `lambda`",
                self.lambda
            ))
        };
        let g = gram::<f32>(&x);
        if observer.cancelled() {
            return Err(FitError::Cancelled);
        }
        let b = match linalg::with_blas_threads(threads, || linalg::ease_weights(g, self.lambda)) {
            Ok(b) => b,
            // f32 rounding can make a small lambda fail to factor where f64 succeeds.
            Err(_) => {
                let g = gram::<f64>(&x);
                if observer.cancelled() {
                    return Err(FitError::Cancelled);
                }
                linalg::with_blas_threads(threads, || linalg::ease_weights(g, self.lambda))
                    .map_err(|_| not_pd())?
            }
        };
        Ok(Box::new(EaseModel {
            n_users: x.n_users,
            b,
        }))
    }
}

/// `XᵀX` of the binary matrix of `x`'s (user, item) pairs, row by row in parallel.
fn gram<T: linalg::Real>(x: &Interactions) -> Array2<T> {
    let by_user = x.by_user();
    let by_item = x.by_item();
    let n = x.n_items;
    let mut g = Array2::<T>::zeros((n, n));
    g.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut row)| {
            for &u in by_item.row(i).0 {
                for &j in by_user.row(u as usize).0 {
                    row[j as usize] += T::one();
                }
            }
        });
    g
}

/// A fitted EASE model: the items x items weights.
#[derive(Debug, Clone, PartialEq)]
pub struct EaseModel {
    n_users: usize,
    b: Array2<f32>,
}

impl EaseModel {
    pub fn load(dir: &Path, n_users: usize, n_items: usize) -> Result<Self, ArtifactError> {
        let mut t = artifact::read_tensors(dir)?;
        let b = artifact::take_f32(dir, &mut t, "B", n_items * n_items)?;
        let b =
            Array2::from_shape_vec((n_items, n_items), b).map_err(|e| ArtifactError::Corrupt {
                path: dir.join(artifact::WEIGHTS),
                message: e.to_string(),
            })?;
        Ok(Self { n_users, b })
    }
}

impl Recommender for EaseModel {
    fn family(&self) -> FamilyName {
        FamilyName::Ease
    }
    fn n_users(&self) -> usize {
        self.n_users
    }
    fn n_items(&self) -> usize {
        self.b.nrows()
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
                row += &self.b.row(j as usize);
            }
        }
    }
    fn similar_items(&self, item: u32, k: usize) -> Vec<(u32, f32)> {
        let Some(row) = self.b.outer_iter().nth(item as usize) else {
            return Vec::new();
        };
        let mut v: Vec<(u32, f32)> = row
            .iter()
            .enumerate()
            .filter(|&(j, &s)| j != item as usize && s > 0.0)
            .map(|(j, &s)| (j as u32, s))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }
    fn explain(&self, user: u32, item: u32, history: &Csr, k: usize) -> Vec<(u32, f32)> {
        if user as usize >= history.n_rows || item as usize >= self.n_items() {
            return Vec::new();
        }
        let mut v: Vec<(u32, f32)> = history
            .row(user as usize)
            .0
            .iter()
            .map(|&j| (j, self.b[[j as usize, item as usize]]))
            .filter(|&(_, s)| s > 0.0)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }
    fn save(&self, dir: &Path) -> Result<(), ArtifactError> {
        let n = self.b.nrows();
        let mut t = BTreeMap::new();
        t.insert(
            "B".to_string(),
            Tensor::f32(vec![n, n], self.b.iter().copied().collect()),
        );
        artifact::write_tensors(dir, &t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::family::NoObserver;

    fn table() -> Interactions {
        Interactions::from_rows(
            &[
                (0, 0, 1.0),
                (0, 1, 1.0),
                (1, 0, 1.0),
                (1, 1, 1.0),
                (1, 2, 1.0),
                (2, 2, 1.0),
                (2, 3, 1.0),
            ],
            3,
            4,
        )
    }

    #[test]
    fn weights_are_the_closed_form_solution() {
        let x = table();
        let lambda = 2.0;
        let p = EasePlan {
            lambda,
            threshold: None,
        };
        let m = p.fit(&x, None, &mut NoObserver).unwrap();
        let g = gram::<f64>(&x);
        assert_eq!(g[[0, 1]], 2.0);
        assert_eq!(g[[2, 2]], 2.0);
        // B minimizes |X - XB|² + λ|B|² with diag(B) = 0: off the diagonal the normal equations
        // (G + λI) B = G hold exactly, column by column (Steck 2019, eq. 8).
        // Scoring the unit rows (one history item each) reads B back row by row.
        let mut b = Array2::<f64>::zeros((4, 4));
        let csr =
            Interactions::from_rows(&[(0, 0, 1.0), (1, 1, 1.0), (2, 2, 1.0), (3, 3, 1.0)], 4, 4)
                .by_user();
        let mut out = Array2::<f32>::zeros((4, 4));
        m.score_block(&[0, 1, 2, 3], &csr, out.view_mut());
        for ((r, c), v) in out.indexed_iter() {
            b[[r, c]] = f64::from(*v);
        }
        let mut gl = g.clone();
        for i in 0..4 {
            gl[[i, i]] += lambda;
            assert_eq!(b[[i, i]], 0.0);
        }
        let lhs = gl.dot(&b);
        for i in 0..4 {
            for j in 0..4 {
                if i != j {
                    assert!((lhs[[i, j]] - g[[i, j]]).abs() < 1e-4, "({i},{j})");
                }
            }
        }
    }

    #[test]
    fn saving_round_trips_and_explanations_come_from_history_items() {
        let p = EasePlan {
            lambda: 1.0,
            threshold: None,
        };
        let m = p.fit(&table(), None, &mut NoObserver).unwrap();
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let back = EaseModel::load(dir.path(), 3, 4).unwrap();
        let h = table().by_user();
        let mut a = Array2::zeros((3, 4));
        let mut b = Array2::zeros((3, 4));
        m.score_block(&[0, 1, 2], &h, a.view_mut());
        back.score_block(&[0, 1, 2], &h, b.view_mut());
        assert_eq!(a, b);
        // User 0 has items 0 and 1; item 2 co-occurs with both through user 1.
        let why = back.explain(0, 2, &h, 5);
        assert!(why.iter().all(|(j, _)| [0, 1].contains(j)));
    }

    #[test]
    fn the_memory_estimate_grows_with_items_squared() {
        let p = EasePlan {
            lambda: 1.0,
            threshold: None,
        };
        let e = p.estimate(&DataShape {
            n_users: 10,
            n_items: 100_000,
            n_ratings: 10,
        });
        assert!(e.bytes >= 100_000u64 * 100_000 * 8);
    }

    /// Rows 0..n over several 16-row blocks (and a partial last one): the single-precision
    /// weights agree with double precision and hold the closed form's normal equations.
    #[test]
    fn single_precision_weights_match_double_across_row_blocks() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (users, items) = (60u32, 37u32);
        let mut rows = Vec::new();
        for u in 0..users {
            for i in 0..items {
                if rng.gen_bool(0.2) {
                    rows.push((u, i, 1.0));
                }
            }
        }
        let x = Interactions::from_rows(&rows, users as usize, items as usize);
        let lambda = 3.0;
        let b32 = linalg::ease_weights(gram::<f32>(&x), lambda).unwrap();
        let b64 = linalg::ease_weights(gram::<f64>(&x), lambda).unwrap();
        let worst = b32
            .iter()
            .zip(b64.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "largest |f32 - f64| {worst}");
        let g = gram::<f64>(&x);
        let mut gl = g.clone();
        for i in 0..items as usize {
            gl[[i, i]] += lambda;
            assert_eq!(b32[[i, i]], 0.0);
        }
        let lhs = gl.dot(&b64.mapv(f64::from));
        for ((i, j), v) in lhs.indexed_iter() {
            if i != j {
                assert!(
                    (v - g[[i, j]]).abs() < 1e-4,
                    "({i},{j}): {v} vs {}",
                    g[[i, j]]
                );
            }
        }
    }
}
