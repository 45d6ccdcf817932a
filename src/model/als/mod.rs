//! Alternating least squares matrix factorization, explicit (rating prediction) and implicit
//! (Hu, Koren and Volinsky 2008), with optional user and item biases.
//!
//! [`AlsParams`] checks the hyper-parameters, [`fit()`] turns training [`Interactions`] into an
//! [`AlsModel`], reporting each iteration to a callback. Rows are solved in parallel on the
//! caller's rayon pool (wrap the call in `pool.install` to choose the thread count); results depend
//! only on the seed, the data and the thread count. The module knows nothing about files, id maps,
//! evaluation metrics or tracking; BLAS and LAPACK are called from [`linalg`] only.
//!
//! [`Interactions`]: crate::data::interactions::Interactions

pub mod explain;
pub mod family;
mod fit;
mod gibbs;
pub mod linalg;
mod params;
mod weighting;

pub use fit::fit;
pub use params::{
    AlsParams, AlsParamsError, Confidence, RegScaling, Solver, ValidAlsParams, Weighting,
};

use ndarray::{concatenate, Array1, Array2, Axis};
use thiserror::Error;

/// Errors fitting a model.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlsError {
    #[error("the training set has no ratings")]
    EmptyTraining,
    #[error(
        "validation ids span `{val_users}` users and `{val_items}` items but training ids span \
         `{train_users}` and `{train_items}`; both must come from the same id maps"
    )]
    ValidationShape {
        train_users: usize,
        train_items: usize,
        val_users: usize,
        val_items: usize,
    },
    #[error(
        "{side} factors became NaN or infinite at iteration {iteration}; raise `reg` or lower `alpha`"
    )]
    NonFinite { iteration: usize, side: Side },
    #[error(
        "the normal equations of {side} `{row}` are not positive definite at iteration \
         {iteration}; raise `reg` or lower `rank`"
    )]
    NotPositiveDefinite {
        iteration: usize,
        side: Side,
        row: usize,
    },
}

/// Which factor matrix a half-iteration solves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    User,
    Item,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::User => "user",
            Side::Item => "item",
        })
    }
}

/// What [`fit()`] reports after each full iteration (see [`crate::model::family`]).
pub use crate::model::family::{Flow, IterationReport};

/// What [`fit()`] calls after every iteration: the report and a way to copy the model as it
/// stands; [`Flow::Stop`] ends the fit there (early stopping, cancellation).
pub type OnIteration<'a> = dyn FnMut(&IterationReport, &dyn Fn() -> AlsModel) -> Flow + 'a;

/// An [`OnIteration`] that only watches: calls `f` with each report and never stops the fit.
pub fn each(
    mut f: impl FnMut(&IterationReport),
) -> impl FnMut(&IterationReport, &dyn Fn() -> AlsModel) -> Flow {
    move |r, _| {
        f(r);
        Flow::Continue
    }
}

/// A fitted model. Prediction is `global_bias + user_bias[u] + item_bias[i] + x_u · y_i`; without
/// biases the three bias terms are zero.
#[derive(Debug, Clone, PartialEq)]
pub struct AlsModel {
    /// Users × rank.
    pub user_factors: Array2<f32>,
    /// Items × rank.
    pub item_factors: Array2<f32>,
    pub global_bias: f32,
    pub user_bias: Array1<f32>,
    pub item_bias: Array1<f32>,
    pub implicit: bool,
}

impl AlsModel {
    pub fn rank(&self) -> usize {
        self.user_factors.ncols()
    }

    pub fn n_users(&self) -> usize {
        self.user_factors.nrows()
    }

    pub fn n_items(&self) -> usize {
        self.item_factors.nrows()
    }

    /// Predicted rating (explicit) or preference (implicit). An index outside the model's id
    /// space contributes nothing, so an unknown user still gets the item's bias and the mean.
    pub fn predict(&self, user: usize, item: usize) -> f32 {
        let mut p = self.global_bias;
        if let Some(b) = self.user_bias.get(user) {
            p += b;
        }
        if let Some(b) = self.item_bias.get(item) {
            p += b;
        }
        if user < self.n_users() && item < self.n_items() {
            p += self
                .user_factors
                .row(user)
                .dot(&self.item_factors.row(item));
        }
        p
    }

    /// User and item matrices whose dot products are exactly [`predict`](Self::predict): users
    /// as `[x, mu + b_u, 1]`, items as `[y, 1, b_i]` (rank + 2 columns). This is the form to
    /// write where only factors can be stored, such as Spark's `ALSModel` layout. Without biases
    /// the factors are returned as they are.
    pub fn prediction_factors(&self) -> (Array2<f32>, Array2<f32>) {
        if !self.has_biases() {
            return (self.user_factors.clone(), self.item_factors.clone());
        }
        let user_extra = Array2::from_shape_fn((self.n_users(), 2), |(u, c)| match c {
            0 => self.global_bias + self.user_bias.get(u).copied().unwrap_or(0.0),
            _ => 1.0,
        });
        let item_extra = Array2::from_shape_fn((self.n_items(), 2), |(i, c)| match c {
            0 => 1.0,
            _ => self.item_bias.get(i).copied().unwrap_or(0.0),
        });
        widen(
            &self.user_factors,
            &self.item_factors,
            user_extra,
            item_extra,
        )
    }

    /// Whether any bias term is non-zero (a model fitted without biases has none).
    fn has_biases(&self) -> bool {
        self.global_bias != 0.0
            || self.user_bias.iter().any(|&b| b != 0.0)
            || self.item_bias.iter().any(|&b| b != 0.0)
    }

    /// User and item matrices whose dot products order each user's items exactly as
    /// [`predict`](Self::predict) does: a column of ones is appended to the users and the item
    /// biases to the items. The mean and the user's bias shift all of a user's scores equally,
    /// so they are left out. Without item biases the factors are returned as they are.
    pub fn ranking_factors(&self) -> (Array2<f32>, Array2<f32>) {
        if self.item_bias.iter().all(|&b| b == 0.0) {
            return (self.user_factors.clone(), self.item_factors.clone());
        }
        let ones = Array2::<f32>::ones((self.n_users(), 1));
        let item_bias = self.item_bias.view().insert_axis(Axis(1)).to_owned();
        widen(&self.user_factors, &self.item_factors, ones, item_bias)
    }
}

/// Appends columns to both factor matrices. Row counts agree by construction; should a caller
/// have edited the public fields inconsistently, the plain factors are returned rather than
/// panicking.
fn widen(
    users: &Array2<f32>,
    items: &Array2<f32>,
    user_extra: Array2<f32>,
    item_extra: Array2<f32>,
) -> (Array2<f32>, Array2<f32>) {
    match (
        concatenate(Axis(1), &[users.view(), user_extra.view()]),
        concatenate(Axis(1), &[items.view(), item_extra.view()]),
    ) {
        (Ok(u), Ok(i)) => (u, i),
        _ => (users.clone(), items.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn model() -> AlsModel {
        AlsModel {
            user_factors: array![[1.0, 0.0], [0.5, 2.0]],
            item_factors: array![[1.0, 1.0], [0.0, -1.0], [2.0, 0.5]],
            global_bias: 3.5,
            user_bias: array![0.25, -0.5],
            item_bias: array![0.0, 1.5, -0.25],
            implicit: false,
        }
    }

    #[test]
    fn predict_adds_mean_biases_and_dot_product() {
        let m = model();
        assert!((m.predict(1, 2) - (3.5 - 0.5 - 0.25 + 1.0 + 1.0)).abs() < 1e-6);
    }

    #[test]
    fn predict_outside_the_id_space_keeps_the_known_parts() {
        let m = model();
        assert!((m.predict(9, 1) - (3.5 + 1.5)).abs() < 1e-6);
        assert!((m.predict(0, 9) - (3.5 + 0.25)).abs() < 1e-6);
    }

    #[test]
    fn ranking_factors_order_items_as_predict_does() {
        let m = model();
        let (u, v) = m.ranking_factors();
        assert_eq!(u.ncols(), 3);
        for user in 0..m.n_users() {
            let constant = m.global_bias + m.user_bias[user];
            for item in 0..m.n_items() {
                let score = u.row(user).dot(&v.row(item));
                assert!((score + constant - m.predict(user, item)).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn prediction_factors_reproduce_predict() {
        let m = model();
        let (u, v) = m.prediction_factors();
        assert_eq!((u.ncols(), v.ncols()), (4, 4));
        for user in 0..m.n_users() {
            for item in 0..m.n_items() {
                let score = u.row(user).dot(&v.row(item));
                assert!((score - m.predict(user, item)).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn ranking_factors_without_biases_are_the_factors() {
        let mut m = model();
        m.item_bias.fill(0.0);
        let (u, v) = m.ranking_factors();
        assert_eq!((u, v), (m.user_factors.clone(), m.item_factors.clone()));
        m.user_bias.fill(0.0);
        m.global_bias = 0.0;
        let (u, v) = m.prediction_factors();
        assert_eq!((u, v), (m.user_factors.clone(), m.item_factors.clone()));
    }
}
