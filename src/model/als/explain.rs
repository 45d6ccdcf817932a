//! Why a factor model recommends an item: the user's training items whose terms make up most of
//! its score (Hu, Koren and Volinsky 2008, section 5).
//!
//! An ALS user factor is a ridge regression on the user's training items:
//! `x_u = A⁻¹ Σ_j w_j t_j y_j`, so the latent part of a score splits into one term per item,
//! `x_u · y_i = Σ_j (y_iᵀ A⁻¹ y_j) w_j t_j`. Explicit feedback: `A = Σ_j y_j y_jᵀ + λ I`,
//! `w_j = 1` and `t_j` the rating less the folded biases. Implicit feedback: `A = YᵀY +
//! Σ_j (c_j − 1) y_j y_jᵀ + λ I` and `w_j t_j = c_j = 1 + α r_j`. The factor is re-solved from the
//! final item factors, so the terms sum to the score of that solve, which the fitted factor
//! approaches as ALS converges. Weighted or log confidences are explained with the linear one.

use std::sync::OnceLock;

use ndarray::{s, Array2, ArrayView1};

use super::linalg;
use crate::data::interactions::Csr;

/// What the re-solve needs from the fit: the regularization and its scaling, and the confidence
/// weight of implicit feedback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolveParams {
    pub reg: f64,
    /// `reg * n` for a user with `n` ratings (Spark's rule) rather than `reg`.
    pub scale_by_count: bool,
    /// `Some(alpha)` for implicit feedback.
    pub implicit_alpha: Option<f64>,
}

impl Default for SolveParams {
    /// Spark MLlib's defaults, for models saved without their parameters.
    fn default() -> Self {
        Self {
            reg: 0.1,
            scale_by_count: true,
            implicit_alpha: None,
        }
    }
}

/// `YᵀY` over the latent columns, computed on the first implicit explanation and kept.
#[derive(Debug, Clone, Default)]
pub struct GramCache(OnceLock<Array2<f64>>);

impl PartialEq for GramCache {
    /// A cache never makes two models differ.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The terms of `user`'s training items in the score of `item`, largest first, positive terms
/// only, at most `k`. `items` holds the item factors, of which the first `latent` columns are
/// latent and the rest folded biases (met by `user_row`'s matching columns).
#[allow(clippy::too_many_arguments)]
pub fn explain(
    user_row: ArrayView1<'_, f32>,
    items: &Array2<f32>,
    latent: usize,
    params: SolveParams,
    gram: &GramCache,
    history: &Csr,
    user: usize,
    item: usize,
    k: usize,
) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> = terms(user_row, items, latent, params, gram, history, user, item)
        .into_iter()
        .filter(|&(j, t)| j as usize != item && t > 0.0 && t.is_finite())
        .map(|(j, t)| (j, t as f32))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

/// Every training item's term, in history order (they sum to the re-solved latent score).
#[allow(clippy::too_many_arguments)]
fn terms(
    user_row: ArrayView1<'_, f32>,
    items: &Array2<f32>,
    latent: usize,
    params: SolveParams,
    gram: &GramCache,
    history: &Csr,
    user: usize,
    item: usize,
) -> Vec<(u32, f64)> {
    let latent = latent.min(items.ncols());
    if user >= history.n_rows || item >= items.nrows() || latent == 0 {
        return Vec::new();
    }
    let (js, rs) = history.row(user);
    if js.is_empty() {
        return Vec::new();
    }
    let y = |j: usize| items.slice(s![j, ..latent]);
    let lambda = if params.scale_by_count {
        params.reg * js.len() as f64
    } else {
        params.reg
    };
    let mut a = match params.implicit_alpha {
        Some(_) => gram
            .0
            .get_or_init(|| linalg::gram(items.slice(s![.., ..latent]).mapv(f64::from).view()))
            .clone(),
        None => Array2::<f64>::zeros((latent, latent)),
    };
    // `w_j t_j` per training item, and the weight of its outer product in `A`.
    let mut target = Vec::with_capacity(js.len());
    for (&j, &r) in js.iter().zip(rs) {
        let j = j as usize;
        let (outer, t) = match params.implicit_alpha {
            Some(alpha) => (alpha * f64::from(r), 1.0 + alpha * f64::from(r)),
            None => {
                let folded = if user_row.len() == items.ncols() {
                    user_row
                        .slice(s![latent..])
                        .dot(&items.slice(s![j, latent..]))
                } else {
                    0.0
                };
                (1.0, f64::from(r - folded))
            }
        };
        let yj = y(j);
        for p in 0..latent {
            for q in p..latent {
                a[[p, q]] += outer * f64::from(yj[p]) * f64::from(yj[q]);
            }
        }
        target.push(t);
    }
    for p in 0..latent {
        // A zero `reg` still needs a definite matrix for a user with fewer items than factors.
        a[[p, p]] += lambda.max(1e-9);
    }
    let mut z: Vec<f64> = y(item).iter().map(|&v| f64::from(v)).collect();
    let mut a = a.into_raw_vec_and_offset().0;
    if linalg::cholesky_solve(&mut a, &mut z).is_err() {
        return Vec::new();
    }
    js.iter()
        .zip(&target)
        .map(|(&j, &t)| {
            let s: f64 = y(j as usize)
                .iter()
                .zip(&z)
                .map(|(&a, &b)| f64::from(a) * b)
                .sum();
            (j, s * t)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::interactions::Interactions;

    fn items() -> Array2<f32> {
        Array2::from_shape_fn((6, 3), |(i, c)| ((i * 7 + c * 3) % 5) as f32 * 0.3 - 0.5)
    }

    const ROWS: [(u32, u32, f32); 4] = [(0, 0, 4.0), (0, 2, 1.0), (0, 3, 5.0), (0, 5, 2.0)];

    /// The user's factor solved as ALS solves it, from the final item factors.
    fn solve(items: &Array2<f32>, p: SolveParams) -> ndarray::Array1<f32> {
        let l = items.ncols();
        let mut a = match p.implicit_alpha {
            Some(_) => items.t().mapv(f64::from).dot(&items.mapv(f64::from)),
            None => Array2::zeros((l, l)),
        };
        let mut b = vec![0.0f64; l];
        for &(_, j, r) in &ROWS {
            let yj = items.row(j as usize).mapv(f64::from);
            let (outer, t) = match p.implicit_alpha {
                Some(al) => (al * f64::from(r), 1.0 + al * f64::from(r)),
                None => (1.0, f64::from(r)),
            };
            for x in 0..l {
                b[x] += t * yj[x];
                for y in 0..l {
                    a[[x, y]] += outer * yj[x] * yj[y];
                }
            }
        }
        for x in 0..l {
            a[[x, x]] += p.reg * ROWS.len() as f64;
        }
        let mut a = a.into_raw_vec_and_offset().0;
        linalg::cholesky_solve(&mut a, &mut b).unwrap();
        b.iter().map(|&v| v as f32).collect()
    }

    #[test]
    fn the_terms_of_the_training_items_sum_to_the_score_of_the_users_solve() {
        let items = items();
        let history = Interactions::from_rows(&ROWS, 1, 6).by_user();
        for implicit_alpha in [None, Some(2.0)] {
            let p = SolveParams {
                reg: 0.05,
                scale_by_count: true,
                implicit_alpha,
            };
            let x = solve(&items, p);
            let gram = GramCache::default();
            for item in 0..6 {
                let score = f64::from(x.dot(&items.row(item)));
                let t = terms(x.view(), &items, 3, p, &gram, &history, 0, item);
                let sum: f64 = t.iter().map(|t| t.1).sum();
                assert!(
                    (sum - score).abs() < 1e-4,
                    "{implicit_alpha:?} item {item}: {sum} vs {score}"
                );
            }
        }
    }

    #[test]
    fn an_explanation_keeps_positive_terms_best_first_and_never_the_item_itself() {
        let items = items();
        let history = Interactions::from_rows(&ROWS, 1, 6).by_user();
        let p = SolveParams::default();
        let x = solve(&items, p);
        let explain_for = |user: usize, item: usize| {
            explain(
                x.view(),
                &items,
                3,
                p,
                &GramCache::default(),
                &history,
                user,
                item,
                10,
            )
        };
        let why = explain_for(0, 3);
        assert!(!why.is_empty());
        assert!(why.iter().all(|&(j, t)| j != 3 && t > 0.0));
        assert!(why.windows(2).all(|w| w[0].1 >= w[1].1));
        // Unknown users and items, and users without history, get no explanation.
        assert!(explain_for(1, 3).is_empty());
        assert!(explain_for(0, 9).is_empty());
    }
}
