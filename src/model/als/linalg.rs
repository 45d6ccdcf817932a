//! Dense linear algebra for ALS: the one module that calls BLAS and LAPACK (through ndarray and
//! ndarray-linalg, backed by OpenBLAS).
//!
//! Small dense kernels over row-major buffers: Gram matrices, matrix-vector products, a Cholesky
//! factor-and-solve, and the dot/axpy helpers the conjugate-gradient loop needs. It knows nothing
//! about ratings, users or items.

use ndarray::linalg::{general_mat_mul, general_mat_vec_mul};
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, LinalgScalar};
use ndarray_linalg::{Lapack, MatrixLayout, UPLO};
use std::sync::Once;

/// The floating-point types the normal equations can be formed and solved in.
pub(crate) trait Real: Lapack + LinalgScalar + PartialOrd + Send + Sync + std::fmt::Debug {
    fn from_f32(x: f32) -> Self;
    fn from_f64(x: f64) -> Self;
    fn to_f32(self) -> f32;
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
}

impl Real for f32 {
    fn from_f32(x: f32) -> Self {
        x
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

impl Real for f64 {
    fn from_f32(x: f32) -> Self {
        x as f64
    }
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

// OpenBLAS's own runtime switch; not part of the CBLAS interface, hence the declaration here.
#[allow(unsafe_code)]
mod ffi {
    use std::os::raw::c_int;
    extern "C" {
        pub fn openblas_set_num_threads(num_threads: c_int);
    }
}

/// Keeps OpenBLAS single-threaded. ALS solves many small systems in parallel with rayon; a BLAS
/// that also spawns threads for each of them oversubscribes the cores and slows everything down.
/// Safe to call any number of times; only the first call reaches OpenBLAS.
#[allow(unsafe_code)]
pub fn blas_single_threaded() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: takes a plain integer and only sets OpenBLAS's global thread count; `Once`
        // keeps it from racing with itself.
        unsafe { ffi::openblas_set_num_threads(1) }
    });
}

/// `aᵀa` (one gemm).
pub(crate) fn gram<T: Real>(a: ArrayView2<'_, T>) -> Array2<T> {
    let k = a.ncols();
    let mut out = Array2::<T>::zeros((k, k));
    general_mat_mul(T::one(), &a.t(), &a, T::zero(), &mut out);
    out
}

/// `out = beta * out + wᵀw` (one gemm).
pub(crate) fn gram_into<T: Real>(w: ArrayView2<'_, T>, beta: T, mut out: ArrayViewMut2<'_, T>) {
    general_mat_mul(T::one(), &w.t(), &w, beta, &mut out);
}

/// `out = a v` (one gemv).
pub(crate) fn mat_vec<T: Real>(a: ArrayView2<'_, T>, v: ArrayView1<'_, T>, mut out: ArrayViewMut1<'_, T>) {
    general_mat_vec_mul(T::one(), &a, &v, T::zero(), &mut out);
}

/// `out = beta * out + aᵀv` (one gemv).
pub(crate) fn mat_t_vec<T: Real>(
    a: ArrayView2<'_, T>,
    v: ArrayView1<'_, T>,
    beta: T,
    mut out: ArrayViewMut1<'_, T>,
) {
    general_mat_vec_mul(T::one(), &a.t(), &v, beta, &mut out);
}

/// The matrix was not positive definite (LAPACK could not factor it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotPositiveDefinite;

/// Solves `a x = b` for symmetric positive definite `a` (`k × k`, row-major, both triangles
/// filled), overwriting `a` with its Cholesky factor and `b` with `x`.
pub(crate) fn cholesky_solve<T: Real>(a: &mut [T], b: &mut [T]) -> Result<(), NotPositiveDefinite> {
    let k = b.len();
    debug_assert_eq!(a.len(), k * k);
    // A symmetric matrix reads the same in either order, so hand LAPACK its native column-major
    // layout and skip the transposes it would otherwise do.
    let layout = MatrixLayout::F {
        col: k as i32,
        lda: k as i32,
    };
    <T as Lapack>::cholesky(layout, UPLO::Lower, a).map_err(|_| NotPositiveDefinite)?;
    <T as Lapack>::solve_cholesky(layout, UPLO::Lower, a, b).map_err(|_| NotPositiveDefinite)
}

pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    a.iter()
        .zip(b)
        .fold(T::zero(), |acc, (&x, &y)| acc + x * y)
}

/// `y += a * x`.
pub(crate) fn axpy<T: Real>(a: T, x: &[T], y: &mut [T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = *yi + a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1};

    #[test]
    fn cholesky_solve_matches_a_known_solution() {
        // a = [[4,12,-16],[12,37,-43],[-16,-43,98]], x = [-2, 1, 0].
        let mut a = vec![4.0, 12.0, -16.0, 12.0, 37.0, -43.0, -16.0, -43.0, 98.0];
        let mut b = vec![4.0f64, 13.0, -11.0];
        cholesky_solve(&mut a, &mut b).unwrap();
        for (got, want) in b.iter().zip([-2.0, 1.0, 0.0]) {
            assert!((got - want).abs() < 1e-12, "{b:?}");
        }
    }

    #[test]
    fn cholesky_solve_reports_an_indefinite_matrix() {
        let mut a = vec![1.0f32, 2.0, 2.0, 1.0];
        let mut b = vec![1.0f32, 1.0];
        assert_eq!(cholesky_solve(&mut a, &mut b), Err(NotPositiveDefinite));
    }

    #[test]
    fn gram_and_products_agree_with_plain_loops() {
        let w = array![[1.0f64, 2.0], [3.0, 4.0], [5.0, -6.0]];
        let g = gram(w.view());
        assert_eq!(g, array![[35.0, -16.0], [-16.0, 56.0]]);
        let mut acc = Array2::<f64>::eye(2);
        gram_into(w.view(), 2.0, acc.view_mut());
        assert_eq!(acc, array![[37.0, -16.0], [-16.0, 58.0]]);
        let v = array![1.0, -1.0, 2.0];
        let mut out = Array1::<f64>::zeros(2);
        mat_t_vec(w.view(), v.view(), 0.0, out.view_mut());
        assert_eq!(out, array![8.0, -14.0]);
        let mut out3 = Array1::<f64>::zeros(3);
        mat_vec(w.view(), array![1.0, 1.0].view(), out3.view_mut());
        assert_eq!(out3, array![3.0, 7.0, -1.0]);
        assert_eq!(dot(&[1.0f64, 2.0], &[3.0, 4.0]), 11.0);
        let mut y = vec![1.0f64, 1.0];
        axpy(2.0, &[1.0, -1.0], &mut y);
        assert_eq!(y, vec![3.0, -1.0]);
    }

    #[test]
    fn blas_single_threaded_can_be_called_twice() {
        blas_single_threaded();
        blas_single_threaded();
        let w = array![[1.0f32, 0.0], [0.0, 1.0]];
        assert_eq!(gram(w.view()), Array2::<f32>::eye(2));
    }
}
