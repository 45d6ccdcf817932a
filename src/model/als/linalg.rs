//! Dense linear algebra for ALS: the one module that calls BLAS and LAPACK (through ndarray and
//! ndarray-linalg, backed by OpenBLAS, plus the OpenBLAS entry points they lack, declared here:
//! the symmetric rank-k update and the thread controls; and a cache prefetch hint).
//!
//! Small dense kernels over row-major buffers: Gram matrices (`wᵀw` and `wwᵀ`, and a blocked
//! parallel `aᵀa` for whole factor matrices), matrix-vector products, a Cholesky factor-and-solve,
//! a symmetric eigensolver, a blocked right multiplication, and the dot/axpy helpers the
//! conjugate-gradient loop needs. It knows nothing about ratings, users or items.

use ndarray::linalg::{general_mat_mul, general_mat_vec_mul};
use ndarray::{
    Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, LinalgScalar,
    ShapeBuilder,
};
use ndarray_linalg::{Diag, Lapack, MatrixLayout, UPLO};
use rayon::prelude::*;
use std::sync::Once;

/// The floating-point types the normal equations can be formed and solved in.
pub(crate) trait Real:
    Lapack + LinalgScalar + PartialOrd + Send + Sync + std::fmt::Debug
{
    fn of_f32(x: f32) -> Self;
    fn of_f64(x: f64) -> Self;
    fn as_f32(self) -> f32;
    fn as_f64(self) -> f64;
    fn root(self) -> Self;
    /// Upper triangle (row-major) of `c = beta * c + wᵀw` ([`Product::Inner`]) or
    /// `c = beta * c + wwᵀ` ([`Product::Outer`]); `false` if the lengths do not match.
    fn syrk(
        w: &[Self],
        rows: usize,
        cols: usize,
        product: Product,
        beta: Self,
        c: &mut [Self],
    ) -> bool;
    /// `a` itself when `Self` is f32 (no copy needed), else `None`.
    fn view_f32(a: &[f32]) -> Option<&[Self]>;
}

impl Real for f32 {
    fn of_f32(x: f32) -> Self {
        x
    }
    fn of_f64(x: f64) -> Self {
        x as f32
    }
    fn as_f32(self) -> f32 {
        self
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn root(self) -> Self {
        f32::sqrt(self)
    }
    fn syrk(
        w: &[Self],
        rows: usize,
        cols: usize,
        product: Product,
        beta: Self,
        c: &mut [Self],
    ) -> bool {
        ffi::ssyrk(w, rows, cols, product, beta, c)
    }
    fn view_f32(a: &[f32]) -> Option<&[Self]> {
        Some(a)
    }
}

impl Real for f64 {
    fn of_f32(x: f32) -> Self {
        x as f64
    }
    fn of_f64(x: f64) -> Self {
        x
    }
    fn as_f32(self) -> f32 {
        self as f32
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn root(self) -> Self {
        f64::sqrt(self)
    }
    fn syrk(
        w: &[Self],
        rows: usize,
        cols: usize,
        product: Product,
        beta: Self,
        c: &mut [Self],
    ) -> bool {
        ffi::dsyrk(w, rows, cols, product, beta, c)
    }
    fn view_f32(_: &[f32]) -> Option<&[Self]> {
        None
    }
}

/// Starts loading `row` into the cache ahead of a read; a hint only (no-op off x86_64).
#[inline(always)]
pub(crate) fn prefetch<T>(row: &[T]) {
    ffi::prefetch(row);
}

/// Which symmetric product a rank-k update forms from a row-major `rows × cols` matrix `w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Product {
    /// `wᵀw`, `cols × cols`.
    Inner,
    /// `wwᵀ`, `rows × rows`.
    Outer,
}

// OpenBLAS's thread switch is not part of CBLAS, and ndarray exposes no symmetric rank-k update,
// so both are declared here against the OpenBLAS that ndarray-linalg already links.
#[allow(unsafe_code)]
mod ffi {
    use super::Product;
    use std::os::raw::{c_char, c_int};

    const ROW_MAJOR: c_int = 101;
    const UPPER: c_int = 121;
    const NO_TRANS: c_int = 111;
    const TRANS: c_int = 112;

    extern "C" {
        fn openblas_set_num_threads(num_threads: c_int);
        fn blas_thread_shutdown_() -> c_int;
        // LAPACK's divide-and-conquer symmetric eigensolver (ndarray-linalg wraps only `syev`);
        // the trailing lengths are gfortran's hidden CHARACTER arguments.
        fn dsyevd_(
            jobz: *const c_char,
            uplo: *const c_char,
            n: *const c_int,
            a: *mut f64,
            lda: *const c_int,
            w: *mut f64,
            work: *mut f64,
            lwork: *const c_int,
            iwork: *mut c_int,
            liwork: *const c_int,
            info: *mut c_int,
            jobz_len: usize,
            uplo_len: usize,
        );
        fn cblas_ssyrk(
            layout: c_int,
            uplo: c_int,
            trans: c_int,
            n: c_int,
            k: c_int,
            alpha: f32,
            a: *const f32,
            lda: c_int,
            beta: f32,
            c: *mut f32,
            ldc: c_int,
        );
        fn cblas_dsyrk(
            layout: c_int,
            uplo: c_int,
            trans: c_int,
            n: c_int,
            k: c_int,
            alpha: f64,
            a: *const f64,
            lda: c_int,
            beta: f64,
            c: *mut f64,
            ldc: c_int,
        );
    }

    /// Asks the CPU to start loading `row`'s cache lines; a hint that never faults.
    #[inline(always)]
    pub fn prefetch<T>(row: &[T]) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let line = (64 / std::mem::size_of::<T>().max(1)).max(1);
            for chunk in row.chunks(line) {
                // SAFETY: a prefetch never dereferences its address, and SSE is part of the
                // x86_64 baseline.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(chunk.as_ptr().cast()) }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = row;
    }

    /// Eigenvalues (ascending, into `w`) and eigenvectors (over `a`, column-major) of the
    /// symmetric `n × n` matrix `a`; LAPACK's `info` (0 on success).
    pub fn eigen_symmetric(n: usize, a: &mut [f64], w: &mut [f64]) -> c_int {
        if a.len() != n * n || w.len() != n || n == 0 {
            return -1;
        }
        // The documented minimum workspace for eigenvectors: 1 + 6n + 2n² and 3 + 5n.
        let (lwork, liwork) = (1 + 6 * n + 2 * n * n, 3 + 5 * n);
        let mut work = vec![0.0f64; lwork];
        let mut iwork = vec![0 as c_int; liwork];
        let (jobz, uplo) = (b'V' as c_char, b'U' as c_char);
        let (n, lwork, liwork) = (n as c_int, lwork as c_int, liwork as c_int);
        let mut info: c_int = 0;
        // SAFETY: every buffer has the length LAPACK is told (checked above; the workspaces are
        // allocated at their documented minimum), and all of them outlive the call.
        unsafe {
            dsyevd_(
                &jobz,
                &uplo,
                &n,
                a.as_mut_ptr(),
                &n,
                w.as_mut_ptr(),
                work.as_mut_ptr(),
                &lwork,
                iwork.as_mut_ptr(),
                &liwork,
                &mut info,
                1,
                1,
            );
        }
        info
    }

    pub fn set_threads(n: usize) {
        // SAFETY: sets OpenBLAS's global thread count only; OpenBLAS starts workers again when
        // a later call needs more than one.
        unsafe { openblas_set_num_threads(n.max(1) as c_int) }
    }

    pub fn set_single_threaded() {
        // SAFETY: the first takes a plain integer and only sets OpenBLAS's global thread count;
        // the second joins OpenBLAS's idle worker threads (its own fork handler does the same).
        // The caller runs them once, before any BLAS use of its own, and with one thread no
        // later call needs the workers.
        unsafe {
            openblas_set_num_threads(1);
            blas_thread_shutdown_();
        }
    }

    /// OpenBLAS's arguments `(trans, n, k, lda)` for the product of `w` row-major `rows × cols`,
    /// or `None` when the slices do not hold exactly that many elements or a size overflows.
    fn syrk_dims(
        w_len: usize,
        c_len: usize,
        rows: usize,
        cols: usize,
        product: Product,
    ) -> Option<(c_int, c_int, c_int, c_int)> {
        let (trans, n, k) = match product {
            Product::Inner => (TRANS, cols, rows),
            Product::Outer => (NO_TRANS, rows, cols),
        };
        let fits = Some(w_len) == rows.checked_mul(cols) && Some(c_len) == n.checked_mul(n);
        match (
            fits,
            c_int::try_from(n),
            c_int::try_from(k),
            c_int::try_from(cols),
        ) {
            (true, Ok(n), Ok(k), Ok(lda)) if n > 0 && lda > 0 => Some((trans, n, k, lda)),
            _ => None,
        }
    }

    /// The upper triangle (row-major) of `c = beta * c + wᵀw` or `wwᵀ`, `w` row-major
    /// `rows × cols`. Returns `false`, without calling OpenBLAS, when the slices do not match.
    pub fn ssyrk(
        w: &[f32],
        rows: usize,
        cols: usize,
        product: Product,
        beta: f32,
        c: &mut [f32],
    ) -> bool {
        let Some((trans, n, k, lda)) = syrk_dims(w.len(), c.len(), rows, cols, product) else {
            return false;
        };
        // SAFETY: `syrk_dims` checked that `w` holds `rows × cols` (= `n × k` or `k × n` as
        // `trans` reads it, leading dimension `cols`) and `c` holds `n × n` elements, so OpenBLAS
        // reads and writes only within the two slices.
        unsafe {
            cblas_ssyrk(
                ROW_MAJOR,
                UPPER,
                trans,
                n,
                k,
                1.0,
                w.as_ptr(),
                lda,
                beta,
                c.as_mut_ptr(),
                n,
            )
        }
        true
    }

    /// As [`ssyrk`], in double precision.
    pub fn dsyrk(
        w: &[f64],
        rows: usize,
        cols: usize,
        product: Product,
        beta: f64,
        c: &mut [f64],
    ) -> bool {
        let Some((trans, n, k, lda)) = syrk_dims(w.len(), c.len(), rows, cols, product) else {
            return false;
        };
        // SAFETY: as in `ssyrk`.
        unsafe {
            cblas_dsyrk(
                ROW_MAJOR,
                UPPER,
                trans,
                n,
                k,
                1.0,
                w.as_ptr(),
                lda,
                beta,
                c.as_mut_ptr(),
                n,
            )
        }
        true
    }
}

/// Keeps OpenBLAS single-threaded. ALS solves many small systems in parallel with rayon; a BLAS
/// that also spawns threads for each of them oversubscribes the cores and slows everything down.
/// It also ends the worker threads OpenBLAS started when it was loaded: they busy-wait for about
/// a tenth of a second after start, which took a core from a short fit (MovieLens 100K implicit,
/// 0.08 s alone, 0.11 s beside them). Safe to call any number of times; only the first call
/// reaches OpenBLAS.
pub fn blas_single_threaded() {
    static ONCE: Once = Once::new();
    ONCE.call_once(ffi::set_single_threaded);
}

/// Runs `f` with OpenBLAS on `threads` threads, then back on one: for the few large dense
/// kernels (EASE's Gram inverse) that are one call each, not many small ones in parallel.
pub fn with_blas_threads<T>(threads: usize, f: impl FnOnce() -> T) -> T {
    blas_single_threaded();
    ffi::set_threads(threads);
    let out = f();
    ffi::set_threads(1);
    out
}

/// EASE's weights from the item Gram matrix `G = XᵀX` (Steck 2019): `P = (G + λI)⁻¹` through
/// one LAPACK Cholesky factorization and inverse (`potrf`, `potri`, in place), then
/// `B_ij = -P_ij / P_jj` with a zero diagonal. `T` is the precision of the factorization: the
/// caller runs f32 first (twice the rate and half the memory of f64) and f64 only when f32
/// cannot factor the matrix.
pub(crate) fn ease_weights<T: Real>(
    mut gram: Array2<T>,
    lambda: f64,
) -> Result<Array2<f32>, LinalgError> {
    let n = gram.nrows();
    if gram.ncols() != n || n == 0 {
        return Err(LinalgError::Shape);
    }
    let lam = T::of_f64(lambda);
    for i in 0..n {
        gram[[i, i]] += lam;
    }
    let n32 = i32::try_from(n).map_err(|_| LinalgError::Shape)?;
    // The matrix is symmetric, so its row-major buffer read column-major is itself: LAPACK's
    // native layout, and none of the four full transposes a row-major call makes.
    let layout = MatrixLayout::F { col: n32, lda: n32 };
    let a = gram.as_slice_mut().ok_or(LinalgError::Shape)?;
    <T as Lapack>::cholesky(layout, UPLO::Lower, a)
        .map_err(|_| LinalgError::NotPositiveDefinite)?;
    <T as Lapack>::inv_cholesky(layout, UPLO::Lower, a)
        .map_err(|_| LinalgError::NotPositiveDefinite)?;
    // The column-major lower triangle holds P: row-major, `p[[i, j]]` for j >= i.
    let p = gram;
    let diag: Vec<f64> = (0..n).map(|j| p[[j, j]].as_f64()).collect();
    if diag.iter().any(|d| !(d.is_finite() && *d > 0.0)) {
        return Err(LinalgError::NotPositiveDefinite);
    }
    let mut b = Array2::<f32>::zeros((n, n));
    // Rows in blocks of 16: the lower part of a block reads P's upper triangle down the block's
    // columns, 16 neighbouring values (one cache line in f32) per row of P.
    const BLOCK: usize = 16;
    b.axis_chunks_iter_mut(Axis(0), BLOCK)
        .into_par_iter()
        .enumerate()
        .for_each(|(blk, mut rows)| {
            let i0 = blk * BLOCK;
            let i1 = i0 + rows.nrows();
            for j in 0..i1 {
                let pj = p.row(j);
                for i in i0.max(j + 1)..i1 {
                    rows[[i - i0, j]] = (-pj[i].as_f64() / diag[j]) as f32;
                }
            }
            for i in i0..i1 {
                let pi = p.row(i);
                let mut out = rows.row_mut(i - i0);
                for j in i + 1..n {
                    out[j] = (-pi[j].as_f64() / diag[j]) as f32;
                }
            }
        });
    Ok(b)
}

/// A dense kernel could not run: the buffers do not match the stated dimensions, or the matrix
/// is not positive definite (LAPACK could not factor it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinalgError {
    Shape,
    NotPositiveDefinite,
    /// LAPACK's symmetric eigensolver did not converge (non-finite input).
    NoConvergence,
}

fn view<T>(a: &[T], rows: usize, cols: usize) -> Result<ArrayView2<'_, T>, LinalgError> {
    ArrayView2::from_shape((rows, cols), a).map_err(|_| LinalgError::Shape)
}

/// `aᵀa` (one gemm).
pub(crate) fn gram<T: Real>(a: ArrayView2<'_, T>) -> Array2<T> {
    let k = a.ncols();
    let mut out = Array2::<T>::zeros((k, k));
    general_mat_mul(T::one(), &a.t(), &a, T::zero(), &mut out);
    out
}

/// `aᵀv` (one gemv).
pub(crate) fn gram_vec<T: Real>(a: ArrayView2<'_, T>, v: ArrayView1<'_, T>) -> Vec<T> {
    let mut out = ndarray::Array1::<T>::zeros(a.ncols());
    general_mat_vec_mul(T::one(), &a.t(), &v, T::zero(), &mut out);
    out.to_vec()
}

/// The upper triangle (row-major) of `out = beta * out + wᵀw`, in one syrk: half the work of
/// a full gemm. The lower triangle is left as it was.
pub(crate) fn gram_upper_into<T: Real>(
    w: &[T],
    n: usize,
    k: usize,
    beta: T,
    out: &mut [T],
) -> Result<(), LinalgError> {
    if T::syrk(w, n, k, Product::Inner, beta, out) {
        Ok(())
    } else {
        Err(LinalgError::Shape)
    }
}

/// Up to this many rows, [`outer_upper_into`] forms `wwᵀ` from dot products: a BLAS call per
/// tiny product costs more than the product (OpenBLAS takes a work buffer from a shared, locked
/// pool on every syrk call; measured 0.6 µs per 7 × 64 syrk against 0.2 µs of dot products).
const SMALL_OUTER: usize = 12;

/// The upper triangle (row-major) of `out = wwᵀ` (`n × n`) for row-major `w` (`n × k`): the
/// small matrix of a row's dual normal equations. One syrk, or dot products when `n` is tiny.
pub(crate) fn outer_upper_into<T: Real>(
    w: &[T],
    n: usize,
    k: usize,
    out: &mut [T],
) -> Result<(), LinalgError> {
    if n > SMALL_OUTER {
        return if T::syrk(w, n, k, Product::Outer, T::zero(), out) {
            Ok(())
        } else {
            Err(LinalgError::Shape)
        };
    }
    if Some(w.len()) != n.checked_mul(k) || out.len() != n * n {
        return Err(LinalgError::Shape);
    }
    for (a, ra) in w.chunks_exact(k).enumerate() {
        for (b, rb) in w.chunks_exact(k).enumerate().skip(a) {
            out[a * n + b] = dot(ra, rb);
        }
    }
    Ok(())
}

/// Eigenvalues (ascending) and orthonormal eigenvectors (the columns of the returned `k × k`
/// matrix) of the symmetric matrix `a`, through LAPACK's divide-and-conquer `dsyevd` (a third of
/// `syev`'s time at rank 64, where it was a tenth of a small implicit fit).
pub(crate) fn symmetric_eigen(a: Array2<f64>) -> Result<(Array1<f64>, Array2<f64>), LinalgError> {
    let n = a.nrows();
    if a.ncols() != n {
        return Err(LinalgError::Shape);
    }
    if n == 0 {
        return Ok((Array1::zeros(0), Array2::zeros((0, 0))));
    }
    // Symmetric, so either memory order is the matrix itself.
    let mut buf = a
        .as_standard_layout()
        .into_owned()
        .into_raw_vec_and_offset()
        .0;
    let mut values = vec![0.0; n];
    if ffi::eigen_symmetric(n, &mut buf, &mut values) != 0 {
        return Err(LinalgError::NoConvergence);
    }
    // LAPACK wrote the eigenvectors as columns of a column-major matrix.
    let vectors = Array2::from_shape_vec((n, n).f(), buf).map_err(|_| LinalgError::Shape)?;
    Ok((
        Array1::from(values),
        vectors.as_standard_layout().into_owned(),
    ))
}

/// Rows per block in [`gram_blocked`] and [`right_multiply`]: fixed, so that results do not
/// depend on the thread count, and small enough that a MovieLens-size side (1-2k rows) is shared
/// by the workers (4096 left it to one: 9% of a MovieLens implicit CG fit).
const BLOCK_ROWS: usize = 512;

/// `aᵀa`, with the row blocks multiplied in parallel (OpenBLAS itself runs single-threaded) and
/// their partial sums added in block order.
pub(crate) fn gram_blocked<T: Real>(a: ArrayView2<'_, T>) -> Array2<T> {
    let k = a.ncols();
    let parts: Vec<Array2<T>> = a
        .axis_chunks_iter(Axis(0), BLOCK_ROWS)
        .into_par_iter()
        .map(gram)
        .collect();
    parts
        .into_iter()
        .fold(Array2::<T>::zeros((k, k)), |acc, part| acc + part)
}

/// `a ← a b` for a square `b`, block of rows by block of rows in parallel.
pub(crate) fn right_multiply<T: Real>(mut a: ArrayViewMut2<'_, T>, b: ArrayView2<'_, T>) {
    a.axis_chunks_iter_mut(Axis(0), BLOCK_ROWS)
        .into_par_iter()
        .for_each(|mut block| {
            let product = block.dot(&b);
            block.assign(&product);
        });
}

/// `out = a v` for row-major `a` (`n × k`), in one gemv.
pub(crate) fn mat_vec<T: Real>(
    a: &[T],
    n: usize,
    k: usize,
    v: &[T],
    out: &mut [T],
) -> Result<(), LinalgError> {
    let a = view(a, n, k)?;
    if v.len() != k || out.len() != n {
        return Err(LinalgError::Shape);
    }
    let mut out = ArrayViewMut1::from(out);
    general_mat_vec_mul(T::one(), &a, &ArrayView1::from(v), T::zero(), &mut out);
    Ok(())
}

/// `out = beta * out + aᵀv` for row-major `a` (`n × k`), in one gemv.
pub(crate) fn mat_t_vec<T: Real>(
    a: &[T],
    n: usize,
    k: usize,
    v: &[T],
    beta: T,
    out: &mut [T],
) -> Result<(), LinalgError> {
    let a = view(a, n, k)?;
    if v.len() != n || out.len() != k {
        return Err(LinalgError::Shape);
    }
    let mut out = ArrayViewMut1::from(out);
    general_mat_vec_mul(T::one(), &a.t(), &ArrayView1::from(v), beta, &mut out);
    Ok(())
}

/// Solves `a x = b` for symmetric positive definite `a` (`k × k`, row-major; only the upper
/// triangle is read), overwriting `a` with its Cholesky factor and `b` with `x`.
pub(crate) fn cholesky_solve<T: Real>(a: &mut [T], b: &mut [T]) -> Result<(), LinalgError> {
    let k = b.len();
    if a.len() != k * k {
        return Err(LinalgError::Shape);
    }
    // The row-major upper triangle is the column-major lower one: hand LAPACK its native layout
    // and skip the transposes it would otherwise do.
    let k = i32::try_from(k).map_err(|_| LinalgError::Shape)?;
    let layout = MatrixLayout::F { col: k, lda: k };
    <T as Lapack>::cholesky(layout, UPLO::Lower, a)
        .map_err(|_| LinalgError::NotPositiveDefinite)?;
    <T as Lapack>::solve_cholesky(layout, UPLO::Lower, a, b)
        .map_err(|_| LinalgError::NotPositiveDefinite)
}

/// Draws `x ~ N(a⁻¹ b, a⁻¹)` for symmetric positive definite `a` (`k × k`, row-major; only the
/// upper triangle is read) given `z ~ N(0, I)`: with `a = L Lᵀ`, `x = a⁻¹ b + L⁻ᵀ z`, whose
/// covariance is `L⁻ᵀ L⁻¹ = a⁻¹`. One Cholesky factorization serves the mean and the noise.
/// Overwrites `a` with the factor, `b` with `x` and `z` with `L⁻ᵀ z`.
pub(crate) fn gaussian_draw(
    a: &mut [f64],
    b: &mut [f64],
    z: &mut [f64],
) -> Result<(), LinalgError> {
    let k = b.len();
    if z.len() != k {
        return Err(LinalgError::Shape);
    }
    cholesky_solve(a, b)?;
    let n = i32::try_from(k).map_err(|_| LinalgError::Shape)?;
    // `a` holds L column-major; read row-major it is Lᵀ, upper triangular.
    <f64 as Lapack>::solve_triangular(
        MatrixLayout::C { row: n, lda: n },
        MatrixLayout::F { col: 1, lda: n },
        UPLO::Upper,
        Diag::NonUnit,
        a,
        z,
    )
    .map_err(|_| LinalgError::NotPositiveDefinite)?;
    for (x, w) in b.iter_mut().zip(z.iter()) {
        *x += w;
    }
    Ok(())
}

/// Dot product with eight independent partial sums, so the compiler can vectorize it; the order
/// of additions is fixed, so the result is reproducible.
#[inline]
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::zero(); 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = T::zero();
    for (&x, &y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `y += a * x`.
#[inline]
pub(crate) fn axpy<T: Real>(a: T, x: &[T], y: &mut [T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

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
    fn gaussian_draw_is_the_mean_plus_the_inverse_transposed_factor_times_the_noise() {
        // a = L Lᵀ with L = [[2, 0], [1, √2]]; mean a⁻¹ b; noise term w solves Lᵀ w = z.
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let (b0, z0) = ([2.0, 5.0], [1.0, -3.0]);
        let (mut b, mut z) = (b0.to_vec(), z0.to_vec());
        gaussian_draw(&mut a, &mut b, &mut z).unwrap();
        let det = 4.0 * 3.0 - 2.0 * 2.0;
        let mean = [
            (3.0 * b0[0] - 2.0 * b0[1]) / det,
            (4.0 * b0[1] - 2.0 * b0[0]) / det,
        ];
        let w2 = z0[1] / 2f64.sqrt();
        let w = [(z0[0] - w2) / 2.0, w2];
        for d in 0..2 {
            assert!((z[d] - w[d]).abs() < 1e-12, "{z:?} vs {w:?}");
            assert!((b[d] - (mean[d] + w[d])).abs() < 1e-12, "{b:?}");
        }
    }

    #[test]
    fn cholesky_solve_reports_an_indefinite_matrix() {
        let mut a = vec![1.0f32, 2.0, 2.0, 1.0];
        let mut b = vec![1.0f32, 1.0];
        assert_eq!(
            cholesky_solve(&mut a, &mut b),
            Err(LinalgError::NotPositiveDefinite)
        );
    }

    #[test]
    fn gram_and_products_agree_with_plain_loops() {
        let w = array![[1.0f64, 2.0], [3.0, 4.0], [5.0, -6.0]];
        assert_eq!(gram(w.view()), array![[35.0, -16.0], [-16.0, 56.0]]);
        let flat = [1.0f64, 2.0, 3.0, 4.0, 5.0, -6.0];
        // Only the upper triangle is written; the lower keeps its old value.
        let mut acc = [1.0f64, 0.0, 7.0, 1.0];
        gram_upper_into(&flat, 3, 2, 2.0, &mut acc).unwrap();
        assert_eq!(acc, [37.0, -16.0, 7.0, 58.0]);
        let mut single = [0.0f32; 4];
        let flat32: Vec<f32> = flat.iter().map(|&v| v as f32).collect();
        gram_upper_into(&flat32, 3, 2, 0.0, &mut single).unwrap();
        assert_eq!((single[0], single[1], single[3]), (35.0, -16.0, 56.0));
        assert_eq!(
            gram_vec(w.view(), ndarray::array![1.0, 0.0, 1.0].view()),
            vec![6.0, -4.0]
        );
        let mut out = [0.0f64; 2];
        mat_t_vec(&flat, 3, 2, &[1.0, -1.0, 2.0], 0.0, &mut out).unwrap();
        assert_eq!(out, [8.0, -14.0]);
        let mut out3 = [0.0f64; 3];
        mat_vec(&flat, 3, 2, &[1.0, 1.0], &mut out3).unwrap();
        assert_eq!(out3, [3.0, 7.0, -1.0]);
        assert_eq!(dot(&[1.0f64, 2.0], &[3.0, 4.0]), 11.0);
        let long: Vec<f64> = (0..19).map(f64::from).collect();
        let want: f64 = long.iter().map(|v| v * v).sum();
        assert_eq!(dot(&long, &long), want);
        let mut y = vec![1.0f64, 1.0];
        axpy(2.0, &[1.0, -1.0], &mut y);
        assert_eq!(y, vec![3.0, -1.0]);
    }

    #[test]
    fn outer_product_matches_plain_loops_below_and_above_the_blas_cutoff() {
        let k = 5;
        for n in [1, SMALL_OUTER, SMALL_OUTER + 3] {
            let w: Vec<f64> = (0..n * k).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
            let mut out = vec![f64::NAN; n * n];
            outer_upper_into(&w, n, k, &mut out).unwrap();
            for a in 0..n {
                for b in a..n {
                    let want: f64 = (0..k).map(|c| w[a * k + c] * w[b * k + c]).sum();
                    assert_eq!(out[a * n + b], want, "n {n} ({a}, {b})");
                }
            }
        }
        assert_eq!(
            outer_upper_into(&[1.0f32; 5], 2, 2, &mut [0.0; 4]),
            Err(LinalgError::Shape)
        );
    }

    #[test]
    fn blocked_gram_and_right_multiply_match_single_products() {
        let a = Array2::from_shape_fn((2 * BLOCK_ROWS + 5, 3), |(i, j)| {
            ((i * 7 + j * 3) % 13) as f64 - 6.0
        });
        assert_eq!(gram_blocked(a.view()), gram(a.view()));
        let q = ndarray::array![[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]];
        let mut b = a.clone();
        right_multiply(b.view_mut(), q.view());
        assert_eq!(b, a.dot(&q));
    }

    #[test]
    fn symmetric_eigen_reconstructs_the_matrix() {
        // 3 x 3 goes through LAPACK's QR branch, 64 x 64 (ALS's usual rank) through divide and
        // conquer.
        let small = ndarray::array![[4.0, 1.0, 0.5], [1.0, 3.0, 0.0], [0.5, 0.0, 2.0]];
        let w = Array2::from_shape_fn((80, 64), |(i, j)| ((i * 31 + j * 17) % 23) as f64 - 11.0);
        for a in [small, w.t().dot(&w)] {
            let k = a.nrows();
            let (values, q) = symmetric_eigen(a.clone()).unwrap();
            assert!(values.windows(2).into_iter().all(|p| p[0] <= p[1]));
            let back = q.dot(&Array2::from_diag(&values)).dot(&q.t());
            let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (x, y) in back.iter().zip(a.iter()) {
                assert!((x - y).abs() < 1e-10 * scale, "k {k}: {x} vs {y}");
            }
            let eye = q.t().dot(&q);
            for (x, y) in eye.iter().zip(Array2::<f64>::eye(k).iter()) {
                assert!((x - y).abs() < 1e-10, "k {k}");
            }
        }
    }

    #[test]
    fn mismatched_buffers_are_a_shape_error() {
        let mut out = [0.0f32; 2];
        assert_eq!(
            mat_vec(&[1.0f32; 5], 3, 2, &[1.0, 1.0], &mut out),
            Err(LinalgError::Shape)
        );
        assert_eq!(
            cholesky_solve(&mut [1.0f32; 3], &mut [1.0f32; 2]),
            Err(LinalgError::Shape)
        );
        assert_eq!(
            gram_upper_into(&[1.0f32; 5], 3, 2, 0.0, &mut [0.0; 4]),
            Err(LinalgError::Shape)
        );
    }

    #[test]
    fn blas_single_threaded_can_be_called_twice() {
        blas_single_threaded();
        blas_single_threaded();
        let w = array![[1.0f32, 0.0], [0.0, 1.0]];
        assert_eq!(gram(w.view()), Array2::<f32>::eye(2));
    }
}
