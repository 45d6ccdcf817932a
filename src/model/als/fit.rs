//! The ALS iteration: initial factors, half-steps (solve every user against fixed items, then
//! every item against fixed users), the objective, validation RMSE and the per-iteration report.
//!
//! Each row's problem is a weighted ridge regression over the other side's vectors. Explicit:
//! weight 1 and target `r - offset` over the row's ratings. Implicit: every pair counts, with
//! confidence `c = 1 + alpha |r|` and preference `p = [r > 0]`, so the shared Gram matrix of the
//! other side plus the row's own `(c - 1)`-weighted terms form the normal equations. With biases,
//! the solved vector is `[x, b]` against the other side's `[y, 1]`, and the other side's bias (plus
//! the mean, explicit only) is an offset on the target. Knows nothing about files or evaluation.

use super::linalg::{self, LinalgError, Real};
use super::params::{RegScaling, Solver, ValidAlsParams};
use super::{AlsError, AlsModel, Flow, IterationReport, OnIteration, Side};
use crate::data::interactions::{Csr, Interactions};
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut1, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use std::borrow::Cow;
use std::time::Instant;

/// Precision of the gathered neighbour vectors, the Gram matrices (syrk) and conjugate gradient.
/// Cholesky factorizations always run in f64 (see [`solve_row`]). Measured on MovieLens 100K,
/// rank 64: f32 here is about 1.5x faster than f64 with identical RMSE, P@10 and NDCG@10 to four
/// decimals.
type Acc = f32;

/// Fits a model on `train`, calling `on_iter` after every iteration (it may stop the fit early). Runs on the current rayon
/// pool; OpenBLAS is switched to one thread first, since the rows are already solved in parallel.
pub fn fit(
    params: &ValidAlsParams,
    train: &Interactions,
    validation: Option<&Interactions>,
    on_iter: &mut OnIteration<'_>,
) -> Result<AlsModel, AlsError> {
    if params.solver() == Solver::Gibbs {
        check_inputs(train, validation)?;
        return super::gibbs::fit(params, train, validation, on_iter);
    }
    if params.transforms_ratings() {
        check_inputs(train, validation)?;
        let weighted = super::weighting::implicit_values(params, train);
        return fit_in::<Acc>(params, &weighted, validation, on_iter);
    }
    fit_in::<Acc>(params, train, validation, on_iter)
}

/// A non-empty training set, and validation ids from the same id maps.
fn check_inputs(train: &Interactions, validation: Option<&Interactions>) -> Result<(), AlsError> {
    if train.is_empty() {
        return Err(AlsError::EmptyTraining);
    }
    if let Some(v) = validation {
        if (v.n_users, v.n_items) != (train.n_users, train.n_items) {
            return Err(AlsError::ValidationShape {
                train_users: train.n_users,
                train_items: train.n_items,
                val_users: v.n_users,
                val_items: v.n_items,
            });
        }
    }
    Ok(())
}

/// What stays fixed during one fit.
struct Setup<T> {
    rank: usize,
    /// Columns of a stored factor row: the rank, plus one for the bias when learned.
    k: usize,
    biases: bool,
    implicit: bool,
    alpha: T,
    reg: T,
    /// Regularization of the bias column (the last one), when learned.
    reg_bias: T,
    /// A separate `reg_bias` is a damping constant, never scaled by the row's count.
    reg_bias_damping: bool,
    scaling: RegScaling,
    solver: Solver,
    cg_steps: usize,
    /// Global mean (explicit with biases), else 0.
    mu: f32,
}

impl<T: Real> Setup<T> {
    fn new(params: &ValidAlsParams, mu: f32) -> Self {
        let biases = params.biases();
        Self {
            rank: params.rank(),
            k: params.rank() + usize::from(biases),
            biases,
            implicit: params.implicit(),
            alpha: T::of_f64(params.alpha()),
            reg: T::of_f64(params.reg()),
            reg_bias: T::of_f64(params.reg_bias()),
            reg_bias_damping: params.has_reg_bias(),
            scaling: params.reg_scaling(),
            solver: params.solver(),
            cg_steps: params.cg_steps(),
            mu,
        }
    }

    /// Regularization weight of a row with `count` ratings (positive ones, for implicit).
    fn lambda(&self, count: usize) -> T {
        self.scaled(self.reg, count)
    }

    /// The same for the bias column: [`Self::lambda`] unless `reg_bias` is set, then `reg_bias`
    /// itself. Scaling a bias's penalty by the row's count shrinks the best-known rows most; a
    /// constant is the damped mean of Surprise's baselines, `Σ residual / (reg_bias + n)`, which
    /// is what sparse data wants (measured on Epinions, docs/benchmarks.md).
    fn lambda_bias(&self, count: usize) -> T {
        if self.reg_bias_damping {
            self.reg_bias
        } else {
            self.scaled(self.reg_bias, count)
        }
    }

    fn scaled(&self, reg: T, count: usize) -> T {
        match self.scaling {
            RegScaling::Count => reg * T::of_f64(count as f64),
            RegScaling::None => reg,
        }
    }

    /// The diagonal regularization of column `c` of a stored row.
    fn lambda_at(&self, c: usize, lambda: T, lambda_bias: T) -> T {
        if self.biases && c == self.rank {
            lambda_bias
        } else {
            lambda
        }
    }

    /// Whether a rating counts towards the row's regularization weight (Spark counts only
    /// positive ratings for implicit feedback).
    fn counts(&self, rating: f32) -> bool {
        !self.implicit || rating > 0.0
    }
}

fn fit_in<T: Real>(
    params: &ValidAlsParams,
    train: &Interactions,
    validation: Option<&Interactions>,
    on_iter: &mut OnIteration<'_>,
) -> Result<AlsModel, AlsError> {
    check_inputs(train, validation)?;
    linalg::blas_single_threaded();
    let by_user = train.by_user();
    let by_item = train.by_item();
    let mu = if params.biases() && !params.implicit() {
        // Sequential f64 sum: the same mean whatever the thread count.
        (train.rating.iter().map(|&r| r as f64).sum::<f64>() / train.len() as f64) as f32
    } else {
        0.0
    };
    let setup = Setup::<T>::new(params, mu);
    let (mut users, mut items) = initial_factors(&setup, &by_user, &by_item, params.seed());

    for iteration in 1..=params.max_iter() {
        let start = Instant::now();
        solve_side(
            &setup,
            iteration,
            Side::User,
            &by_user,
            &mut users,
            &mut items,
        )?;
        solve_side(
            &setup,
            iteration,
            Side::Item,
            &by_item,
            &mut items,
            &mut users,
        )?;
        let train_loss = params
            .curves()
            .then(|| objective(&setup, &by_user, &by_item, &users, &items));
        let val_rmse = match validation {
            Some(v) if !setup.implicit && params.curves() => {
                validation_rmse(&setup, v, &by_user, &by_item, &users, &items)
            }
            _ => None,
        };
        let report = IterationReport {
            iteration,
            train_loss,
            val_rmse,
            seconds: start.elapsed().as_secs_f64(),
        };
        let current = || into_model(&setup, users.clone(), items.clone());
        if on_iter(&report, &current) == Flow::Stop {
            break;
        }
    }
    Ok(into_model(&setup, users, items))
}

/// One half-step: solves `solved` against the fixed other side, then checks it is finite.
///
/// Implicit feedback works in the eigenbasis of the shared Gram matrix (see [`FixedSide`]): the
/// solved rows are rotated into it for the conjugate-gradient warm start. Without biases the
/// fixed side is stored rotated too, so the solution is already in the two sides' common basis
/// (predictions are dot products, unchanged by a common rotation); with biases, whose column must
/// stay put, the solution is rotated back.
fn solve_side<T: Real>(
    setup: &Setup<T>,
    iteration: usize,
    side: Side,
    rows: &Csr,
    solved: &mut Array2<f32>,
    fixed: &mut Array2<f32>,
) -> Result<(), AlsError> {
    let non_finite = AlsError::NonFinite { iteration, side };
    let fixed = FixedSide::new(setup, fixed).map_err(|_| non_finite.clone())?;
    if let (Some(q), Solver::Cg) = (&fixed.rotation, setup.solver) {
        rotate_rows(solved, q.view());
    }
    half_step(setup, rows, &fixed, solved).map_err(|row| AlsError::NotPositiveDefinite {
        iteration,
        side,
        row,
    })?;
    if let (Some(q), false) = (&fixed.rotation, fixed.shared_basis) {
        rotate_rows(solved, q.t());
    }
    if solved.iter().any(|v| !v.is_finite()) {
        return Err(non_finite);
    }
    Ok(())
}

/// `m ← m q`, in the stored precision.
fn rotate_rows<T: Real>(m: &mut Array2<f32>, q: ArrayView2<'_, T>) {
    linalg::right_multiply(m.view_mut(), q.mapv(|v| v.as_f32()).view());
}

/// Random initial factors (standard normal scaled by `INIT_SCALE / sqrt(rank)`). Each row draws
/// from its own ChaCha stream (seed, side, row), so rows are filled in parallel and the values
/// depend on the seed only, not on the thread count. Rows without ratings and the bias column
/// start at zero.
fn initial_factors<T: Real>(
    setup: &Setup<T>,
    by_user: &Csr,
    by_item: &Csr,
    seed: u64,
) -> (Array2<f32>, Array2<f32>) {
    const INIT_SCALE: f32 = 1.0;
    let scale = INIT_SCALE / (setup.rank as f32).sqrt();
    let draw = |rows: &Csr, side: u64| {
        let mut m = Array2::<f32>::zeros((rows.n_rows, setup.k));
        m.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .filter(|(r, _)| rows.row_len(*r) > 0)
            .for_each(|(r, mut row)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream((side << 40) | r as u64);
                for v in row.slice_mut(s![..setup.rank]) {
                    let z: f32 = StandardNormal.sample(&mut rng);
                    *v = z * scale;
                }
            });
        m
    };
    (draw(by_user, 0), draw(by_item, 1))
}

/// The other side, as the solved side sees it during one half-step.
///
/// For implicit feedback every row's normal equations share the Gram matrix `G = YᵀY`. Written in
/// the eigenbasis `Q` of `G` (`G = Q Λ Qᵀ`, computed once per half-step), the shared part becomes
/// the diagonal `Λ`, so a row's system is `(Λ + λI + ṼᵀṼ) x̃ = b̃` with `Ṽ` the row's few weighted
/// neighbours: conjugate gradient multiplies by a diagonal instead of a dense matrix, and a row
/// with fewer neighbours than columns can be solved through its small dual system (see
/// [`solve_dual`]). Without biases the stored fixed side is rotated too, and the solution stays
/// in that basis; with biases it is rotated back, `x = Q x̃`.
struct FixedSide<'a, T: Clone> {
    /// `[y, 1]` with biases, `y` without; row-major, `k` columns; rotated by `Q` for implicit.
    /// Without biases, in f32, the stored factors themselves.
    vectors: Cow<'a, [T]>,
    /// What the other side already explains of a rating: `mu + b_j`. Empty without biases
    /// (zero), which spares a random read per rating.
    offset: Vec<T>,
    /// Implicit only: the eigenvalues `Λ` of the Gram matrix (clamped at zero).
    eigenvalues: Option<Vec<T>>,
    /// Implicit only: the eigenvectors `Q`, as columns.
    rotation: Option<Array2<T>>,
    /// The stored fixed side was rotated as well (implicit without biases).
    shared_basis: bool,
    /// Implicit with biases: `vectorsᵀ offset`, subtracted from every right-hand side.
    shift: Option<Vec<T>>,
}

impl<'a, T: Real> FixedSide<'a, T> {
    /// Without biases (implicit), rotates `stored` itself into the eigenbasis.
    fn new(setup: &Setup<T>, stored: &'a mut Array2<f32>) -> Result<Self, LinalgError> {
        if setup.biases {
            return Self::with_biases(setup, stored);
        }
        let (mut eigenvalues, mut rotation) = (None, None);
        if setup.implicit {
            let gram = match stored.as_slice().and_then(T::view_f32) {
                Some(v) => linalg::gram_blocked(
                    ArrayView2::from_shape(stored.dim(), v).map_err(|_| LinalgError::Shape)?,
                ),
                None => linalg::gram_blocked(stored.mapv(T::of_f32).view()),
            };
            let (values, q) = eigenbasis(gram)?;
            rotate_rows(stored, q.view());
            eigenvalues = Some(values);
            rotation = Some(q);
        }
        let stored: &'a Array2<f32> = stored;
        let vectors = match stored.as_slice().and_then(T::view_f32) {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(stored.iter().map(|&v| T::of_f32(v)).collect()),
        };
        Ok(Self {
            vectors,
            offset: Vec::new(),
            eigenvalues,
            rotation,
            shared_basis: setup.implicit,
            shift: None,
        })
    }

    /// With biases the solved side sees `[y, 1]` and the offset `mu + b_j`: a copy, rotated
    /// (implicit) without touching the stored factors, whose bias column must stay put.
    fn with_biases(setup: &Setup<T>, stored: &Array2<f32>) -> Result<Self, LinalgError> {
        let n = stored.nrows();
        let mut vectors = Array2::<T>::zeros((n, setup.k));
        let mut offset = Array1::<T>::zeros(n);
        for ((src, mut dst), off) in stored
            .axis_iter(Axis(0))
            .zip(vectors.axis_iter_mut(Axis(0)))
            .zip(offset.iter_mut())
        {
            for (d, &s) in dst.iter_mut().zip(src.iter()) {
                *d = T::of_f32(s);
            }
            *off = T::of_f32(setup.mu + src[setup.rank]);
            dst[setup.rank] = T::one();
        }
        let (mut eigenvalues, mut rotation, mut shift) = (None, None, None);
        if setup.implicit {
            let (values, q) = eigenbasis(linalg::gram_blocked(vectors.view()))?;
            linalg::right_multiply(vectors.view_mut(), q.view());
            eigenvalues = Some(values);
            rotation = Some(q);
            shift = Some(linalg::gram_vec(vectors.view(), offset.view()));
        }
        // Freshly built arrays are row-major from offset 0, so the raw vectors are the rows.
        Ok(Self {
            vectors: Cow::Owned(vectors.into_raw_vec_and_offset().0),
            offset: offset.into_raw_vec_and_offset().0,
            eigenvalues,
            rotation,
            shared_basis: false,
            shift,
        })
    }
}

/// How many neighbours ahead [`solve_row`] asks for the fixed side's rows: they are visited in
/// rating order, i.e. at random, and waiting for memory was a fifth of an explicit fit.
const PREFETCH_AHEAD: usize = 8;

impl<T: Real> FixedSide<'_, T> {
    /// Starts loading row `j` into the cache.
    #[inline(always)]
    fn prefetch(&self, j: usize, k: usize) {
        if let Some(row) = self.vectors.get(j * k..(j + 1) * k) {
            linalg::prefetch(row);
        }
    }
}

/// Eigenvalues (clamped at zero: the Gram matrix is positive semi-definite, rounding aside) and
/// eigenvectors of a Gram matrix, decomposed in f64.
fn eigenbasis<T: Real>(gram: Array2<T>) -> Result<(Vec<T>, Array2<T>), LinalgError> {
    let (values, q) = linalg::symmetric_eigen(gram.mapv(|v| v.as_f64()))?;
    let values = values.iter().map(|&v| T::of_f64(v.max(0.0))).collect();
    Ok((values, q.mapv(T::of_f64)))
}

/// Per-thread buffers, grown to the longest row seen.
struct Workspace<T> {
    /// Gathered neighbour vectors, row-major (n × k); scaled by `sqrt(c - 1)` for implicit
    /// Cholesky.
    w: Vec<T>,
    /// Per neighbour: the weight `c - 1` (implicit) or 1 (explicit).
    d: Vec<T>,
    tmp: Vec<T>,
    a: Vec<T>,
    b: Vec<T>,
    a64: Vec<f64>,
    b64: Vec<f64>,
    /// The dual path's column scales and `β`.
    scale: Vec<T>,
    beta: Vec<T>,
    x: Vec<T>,
    r: Vec<T>,
    p: Vec<T>,
    ap: Vec<T>,
}

impl<T: Real> Workspace<T> {
    fn new(k: usize) -> Self {
        Self {
            w: Vec::new(),
            d: Vec::new(),
            tmp: Vec::new(),
            a: vec![T::zero(); k * k],
            b: vec![T::zero(); k],
            a64: vec![0.0; k * k],
            b64: vec![0.0; k],
            scale: vec![T::zero(); k],
            beta: vec![T::zero(); k],
            x: vec![T::zero(); k],
            r: vec![T::zero(); k],
            p: vec![T::zero(); k],
            ap: vec![T::zero(); k],
        }
    }

    fn reserve(&mut self, n: usize, k: usize) {
        if self.d.len() < n {
            self.w.resize(n * k, T::zero());
            self.d.resize(n, T::zero());
            self.tmp.resize(n, T::zero());
        }
    }
}

/// Solves every row of `solved` against `fixed`, in parallel. On failure returns the lowest row
/// whose normal equations could not be solved (the lowest, so the error does not depend on
/// scheduling).
fn half_step<T: Real>(
    setup: &Setup<T>,
    rows: &Csr,
    fixed: &FixedSide<T>,
    solved: &mut Array2<f32>,
) -> Result<(), usize> {
    let failed = solved
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .map_init(
            || Workspace::<T>::new(setup.k),
            |ws, (r, z)| {
                let (cols, vals) = rows.row(r);
                solve_row(setup, fixed, cols, vals, ws, z).err().map(|_| r)
            },
        )
        .flatten()
        .min();
    match failed {
        Some(row) => Err(row),
        None => Ok(()),
    }
}

/// One row's least-squares problem; writes the solution into `z` (`[x, b]` with biases).
///
/// Compiled twice, for baseline x86_64 and for AVX2+FMA, the version picked once at run time: its
/// loops over the row's neighbours are most of a conjugate-gradient fit (10% faster at
/// Electronics size). Both run the same operations in the same order, so factors do not depend
/// on the CPU's vector width.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn solve_row<T: Real>(
    setup: &Setup<T>,
    fixed: &FixedSide<T>,
    cols: &[u32],
    vals: &[f32],
    ws: &mut Workspace<T>,
    mut z: ArrayViewMut1<'_, f32>,
) -> Result<(), LinalgError> {
    let n = cols.len();
    if n == 0 {
        z.fill(0.0);
        return Ok(());
    }
    let k = setup.k;
    ws.reserve(n, k);
    let cholesky = setup.solver == Solver::Cholesky;
    // Implicit Cholesky folds the weights into the gathered rows so one syrk gives Σ (c-1) y yᵀ.
    let scale_rows = setup.implicit && cholesky;
    let b = &mut ws.b[..k];
    b.fill(T::zero());
    let mut count = 0usize;
    for &j in cols.iter().take(PREFETCH_AHEAD) {
        fixed.prefetch(j as usize, k);
    }
    for (t, (&j, &rating)) in cols.iter().zip(vals).enumerate() {
        if let Some(&ahead) = cols.get(t + PREFETCH_AHEAD) {
            fixed.prefetch(ahead as usize, k);
        }
        let j = j as usize;
        let y = &fixed.vectors[j * k..(j + 1) * k];
        let off = fixed.offset.get(j).copied().unwrap_or(T::zero());
        let v = T::of_f32(rating);
        count += usize::from(setup.counts(rating));
        let (weight, coef) = if setup.implicit {
            let c1 = setup.alpha * T::of_f32(rating.abs());
            let pref = if rating > 0.0 { T::one() } else { T::zero() };
            // b = Σ_all c (p - off) y = Σ_observed [c (p - off) + off] y - Σ_all off y; the last
            // sum is the shared `shift`.
            (c1, (T::one() + c1) * (pref - off) + off)
        } else {
            (T::one(), v - off)
        };
        ws.d[t] = weight;
        let row = &mut ws.w[t * k..(t + 1) * k];
        let s = if scale_rows { weight.root() } else { T::one() };
        for ((wi, bi), &yi) in row.iter_mut().zip(b.iter_mut()).zip(y) {
            *wi = s * yi;
            *bi += coef * yi;
        }
    }
    if let Some(shift) = &fixed.shift {
        for (bi, &si) in b.iter_mut().zip(shift) {
            *bi -= si;
        }
    }
    let lambda = setup.lambda(count);
    let lambda_bias = setup.lambda_bias(count);
    let w = &ws.w[..n * k];
    if cholesky {
        let positive = lambda.as_f64() > 0.0 && (!setup.biases || lambda_bias.as_f64() > 0.0);
        if n < k && positive {
            let Workspace {
                w,
                b,
                a,
                a64,
                b64,
                scale,
                beta,
                x,
                ..
            } = ws;
            let dual = Dual {
                m: a,
                m64: a64,
                gamma: b64,
                scale,
                beta,
                x,
            };
            let eigenvalues = fixed.eigenvalues.as_deref();
            let diag = |c: usize| setup.lambda_at(c, lambda, lambda_bias).as_f64();
            return solve_dual(w, n, k, b, eigenvalues, &diag, dual, z);
        }
        let a = &mut ws.a[..];
        let beta = match &fixed.eigenvalues {
            Some(values) => {
                a.fill(T::zero());
                for (i, &v) in values.iter().enumerate() {
                    a[i * k + i] = v;
                }
                T::one()
            }
            None => T::zero(),
        };
        linalg::gram_upper_into(w, n, k, beta, a)?;
        // Factor in f64 whatever T is: the factorization is a small share of the work, an f32
        // one misses the 1e-6 agreement with the exact solution and loses positive definiteness
        // on ill-conditioned rows (small unscaled reg).
        let (a64, b64) = (&mut ws.a64[..], &mut ws.b64[..]);
        for (d, &s) in a64.iter_mut().zip(a.iter()) {
            *d = s.as_f64();
        }
        for (d, &s) in b64.iter_mut().zip(b.iter()) {
            *d = s.as_f64();
        }
        for i in 0..k {
            a64[i * k + i] += setup.lambda_at(i, lambda, lambda_bias).as_f64();
        }

        linalg::cholesky_solve(a64, b64)?;
        for (zi, &bi) in z.iter_mut().zip(b64.iter()) {
            *zi = bi as f32;
        }
        return Ok(());
    }

    // Conjugate gradient on A x = b, A = gram + Wᵀ diag(d) W + lambda I, from the previous x.
    let Workspace {
        d,
        tmp,
        x,
        r,
        p,
        ap,
        ..
    } = ws;
    let (d, tmp) = (&d[..n], &mut tmp[..n]);
    for (xi, &zi) in x.iter_mut().zip(z.iter()) {
        *xi = T::of_f32(zi);
    }
    let apply = |v: &[T], out: &mut [T], tmp: &mut [T]| -> Result<(), LinalgError> {
        match &fixed.eigenvalues {
            Some(values) => {
                for ((o, &vi), &e) in out.iter_mut().zip(v).zip(values) {
                    *o = e * vi;
                }
            }
            None => out.fill(T::zero()),
        }
        linalg::axpy(lambda, v, out);
        if setup.biases && lambda_bias != lambda {
            let c = setup.rank;
            out[c] += (lambda_bias - lambda) * v[c];
        }
        if n < k {
            // A handful of neighbours: row by row, without a BLAS call per product.
            for ((row, ti), &di) in w.chunks_exact(k).zip(tmp.iter_mut()).zip(d) {
                *ti = di * linalg::dot(row, v);
                linalg::axpy(*ti, row, out);
            }
            return Ok(());
        }
        linalg::mat_vec(w, n, k, v, tmp)?;
        for (ti, &di) in tmp.iter_mut().zip(d) {
            *ti *= di;
        }
        linalg::mat_t_vec(w, n, k, tmp, T::one(), out)
    };
    apply(x, ap, tmp)?;
    for ((ri, &bi), &ai) in r.iter_mut().zip(b.iter()).zip(ap.iter()) {
        *ri = bi - ai;
    }
    p.copy_from_slice(r);
    let tiny = T::of_f64(1e-20);
    let mut rs_old = linalg::dot(r, r);
    if rs_old >= tiny {
        for _ in 0..setup.cg_steps {
            apply(p, ap, tmp)?;
            let p_ap = linalg::dot(p, ap);
            // Without curvature along p (reg 0 on a rank-deficient row) stop where we are.
            if p_ap.partial_cmp(&T::zero()) != Some(std::cmp::Ordering::Greater) {
                break;
            }
            let step = rs_old / p_ap;
            linalg::axpy(step, p, x);
            linalg::axpy(T::zero() - step, ap, r);
            let rs_new = linalg::dot(r, r);
            if rs_new < tiny {
                break;
            }
            let ratio = rs_new / rs_old;
            for (pi, &ri) in p.iter_mut().zip(r.iter()) {
                *pi = ri + ratio * *pi;
            }
            rs_old = rs_new;
        }
    }
    for (zi, &xi) in z.iter_mut().zip(x.iter()) {
        *zi = xi.as_f32();
    }
    Ok(())
}

/// Buffers of [`solve_dual`]: `m` holds at least `n × n`, `m64` at least `n × n`, `gamma` at
/// least `n`, `scale`, `beta` and `x` `k`.
struct Dual<'a, T> {
    m: &'a mut [T],
    m64: &'a mut [f64],
    gamma: &'a mut [f64],
    scale: &'a mut [T],
    beta: &'a mut [T],
    x: &'a mut [T],
}

/// Solves `(D + WᵀW) x = b` for a row with fewer neighbours `n` than columns `k`, where `D` is
/// diagonal and positive (`λ` per column, plus the Gram eigenvalues for implicit), through the `n × n`
/// dual system (push-through identity): with `U = W D^-1/2` and `β = D^-1/2 b`,
/// `x = D^-1/2 (β - Uᵀ γ)` where `(I + UUᵀ) γ = U β`. The same solution as the `k × k`
/// factorization for `n² k + n³/3` instead of `n k² + k³/3` operations. `I + UUᵀ` has every
/// eigenvalue at least 1, so it is well conditioned; as in the primal path the products run in
/// the working precision and the factorization in f64. Overwrites `w` with `U`.
#[allow(clippy::too_many_arguments)]
fn solve_dual<T: Real>(
    w: &mut [T],
    n: usize,
    k: usize,
    b: &[T],
    eigenvalues: Option<&[T]>,
    lambda: &dyn Fn(usize) -> f64,
    buf: Dual<'_, T>,
    mut z: ArrayViewMut1<'_, f32>,
) -> Result<(), LinalgError> {
    let (u, m, m64, gamma) = (
        &mut w[..n * k],
        &mut buf.m[..n * n],
        &mut buf.m64[..n * n],
        &mut buf.gamma[..n],
    );
    let (scale, beta, x) = (&mut buf.scale[..k], &mut buf.beta[..k], &mut buf.x[..k]);
    for (i, s) in scale.iter_mut().enumerate() {
        let d = lambda(i) + eigenvalues.map_or(0.0, |v| v[i].as_f64());
        *s = T::of_f64(1.0 / d.sqrt());
    }
    for urow in u.chunks_exact_mut(k) {
        for (ui, &si) in urow.iter_mut().zip(scale.iter()) {
            *ui *= si;
        }
    }
    for ((bi, &b), &si) in beta.iter_mut().zip(b).zip(scale.iter()) {
        *bi = b * si;
    }
    linalg::outer_upper_into(u, n, k, m)?;
    for (d, &s) in m64.iter_mut().zip(m.iter()) {
        *d = s.as_f64();
    }
    for ((t, g), urow) in gamma.iter_mut().enumerate().zip(u.chunks_exact(k)) {
        m64[t * n + t] += 1.0;
        *g = linalg::dot(urow, beta).as_f64();
    }
    linalg::cholesky_solve(m64, gamma)?;
    x.copy_from_slice(beta);
    for (urow, &g) in u.chunks_exact(k).zip(gamma.iter()) {
        linalg::axpy(T::of_f64(-g), urow, x);
    }
    for ((zi, &xi), &si) in z.iter_mut().zip(x.iter()).zip(scale.iter()) {
        *zi = (xi * si).as_f32();
    }
    Ok(())
}

/// Prediction minus the mean: `x · y`, plus `b_u + b_i` with biases.
fn score(rank: usize, biases: bool, u: &[f32], i: &[f32]) -> f64 {
    let k = rank + usize::from(biases);
    if u.len() < k || i.len() < k {
        return 0.0;
    }
    let mut p = linalg::dot(&u[..rank], &i[..rank]) as f64;
    if biases {
        p += u[rank] as f64 + i[rank] as f64;
    }
    p
}

/// Stored rows widened so that one dot product gives the prediction without the mean: users as
/// `[x, b_u, 1]`, items as `[y, 1, b_i]` (just `x` and `y` without biases).
fn widened(m: &Array2<f32>, rank: usize, biases: bool, items: bool) -> Array2<f64> {
    let width = rank + if biases { 2 } else { 0 };
    let mut out = Array2::<f64>::zeros((m.nrows(), width));
    for (src, mut dst) in m.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
        for c in 0..rank {
            dst[c] = src[c] as f64;
        }
        if biases {
            let (bias, one) = if items {
                (rank + 1, rank)
            } else {
                (rank, rank + 1)
            };
            dst[bias] = src[rank] as f64;
            dst[one] = 1.0;
        }
    }
    out
}

/// The objective after an iteration, regularization included, summed in row order so the value
/// does not depend on the thread count.
fn objective<T: Real>(
    setup: &Setup<T>,
    by_user: &Csr,
    by_item: &Csr,
    users: &Array2<f32>,
    items: &Array2<f32>,
) -> f64 {
    let (rank, biases, mu) = (setup.rank, setup.biases, setup.mu as f64);
    let alpha = setup.alpha.as_f64();
    // Implicit: the squared predictions over all pairs, Σ_u Σ_i (ẑ_u · ŷ_i)², equal the
    // Frobenius product of the two Gram matrices; observed pairs then correct their own terms.
    let all_pairs = if setup.implicit {
        let zu = linalg::gram_blocked(widened(users, rank, biases, false).view());
        let yi = linalg::gram_blocked(widened(items, rank, biases, true).view());
        zu.iter().zip(yi.iter()).map(|(a, b)| a * b).sum::<f64>()
    } else {
        0.0
    };
    let reg_term = |m: &Array2<f32>, rows: &Csr, r: usize| -> f64 {
        let count = rows.row(r).1.iter().filter(|&&v| setup.counts(v)).count();
        let (lambda, lambda_bias) = (setup.lambda(count), setup.lambda_bias(count));
        m.row(r)
            .iter()
            .enumerate()
            .map(|(c, &v)| setup.lambda_at(c, lambda, lambda_bias).as_f64() * (v as f64).powi(2))
            .sum::<f64>()
    };
    let per_user: Vec<f64> = (0..by_user.n_rows)
        .into_par_iter()
        .map(|u| {
            let zu = users.row(u);
            let zu = zu.as_slice().unwrap_or(&[]);
            let (cols, vals) = by_user.row(u);
            let mut loss = 0.0;
            for (&i, &r) in cols.iter().zip(vals) {
                let zi = items.row(i as usize);
                let pred = mu + score(rank, biases, zu, zi.as_slice().unwrap_or(&[]));
                if setup.implicit {
                    let c = 1.0 + alpha * (r as f64).abs();
                    let p = if r > 0.0 { 1.0 } else { 0.0 };
                    loss += c * (p - pred).powi(2) - pred * pred;
                } else {
                    loss += (r as f64 - pred).powi(2);
                }
            }
            loss + reg_term(users, by_user, u)
        })
        .collect();
    let per_item: Vec<f64> = (0..by_item.n_rows)
        .into_par_iter()
        .map(|i| reg_term(items, by_item, i))
        .collect();
    all_pairs + per_user.iter().sum::<f64>() + per_item.iter().sum::<f64>()
}

/// RMSE over validation ratings whose user and item both have training ratings; `None` when
/// there are none.
fn validation_rmse<T: Real>(
    setup: &Setup<T>,
    validation: &Interactions,
    by_user: &Csr,
    by_item: &Csr,
    users: &Array2<f32>,
    items: &Array2<f32>,
) -> Option<f64> {
    let mut sum = 0.0;
    let mut n = 0usize;
    for ((&u, &i), &r) in validation
        .user
        .iter()
        .zip(&validation.item)
        .zip(&validation.rating)
    {
        let (u, i) = (u as usize, i as usize);
        if u >= by_user.n_rows || i >= by_item.n_rows {
            continue;
        }
        if by_user.row_len(u) == 0 || by_item.row_len(i) == 0 {
            continue;
        }
        let (zu, zi) = (users.row(u), items.row(i));
        let (zu, zi) = (zu.as_slice().unwrap_or(&[]), zi.as_slice().unwrap_or(&[]));
        let pred = setup.mu as f64 + score(setup.rank, setup.biases, zu, zi);
        sum += (r as f64 - pred).powi(2);
        n += 1;
    }
    (n > 0).then(|| (sum / n as f64).sqrt())
}

fn into_model<T: Real>(setup: &Setup<T>, users: Array2<f32>, items: Array2<f32>) -> AlsModel {
    let split = |m: Array2<f32>| {
        let factors = m.slice(s![.., ..setup.rank]).to_owned();
        let bias = if setup.biases {
            m.column(setup.rank).to_owned()
        } else {
            Array1::zeros(m.nrows())
        };
        (factors, bias)
    };
    let (user_factors, user_bias) = split(users);
    let (item_factors, item_bias) = split(items);
    AlsModel {
        user_factors,
        item_factors,
        global_bias: setup.mu,
        user_bias,
        item_bias,
        implicit: setup.implicit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::als::AlsParams;
    use proptest::prelude::*;
    use rand::Rng;

    fn interactions(triples: &[(u32, u32, f32)], n_users: usize, n_items: usize) -> Interactions {
        Interactions::new(
            triples.iter().map(|t| t.0).collect(),
            triples.iter().map(|t| t.1).collect(),
            triples.iter().map(|t| t.2).collect(),
            None,
            n_users,
            n_items,
        )
        .unwrap()
    }

    /// A small random rating table where every user and item has ratings, except those listed.
    fn random_table(seed: u64, n_users: usize, n_items: usize, density: f64) -> Interactions {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut t = Vec::new();
        for u in 0..n_users as u32 {
            for i in 0..n_items as u32 {
                if rng.gen::<f64>() < density || (u as usize % n_items) == i as usize {
                    t.push((u, i, rng.gen_range(1..=5) as f32));
                }
            }
        }
        interactions(&t, n_users, n_items)
    }

    fn quiet(params: &ValidAlsParams, train: &Interactions) -> Result<AlsModel, AlsError> {
        fit(params, train, None, &mut crate::model::als::each(|_| {}))
    }

    fn losses(params: &ValidAlsParams, train: &Interactions) -> Vec<f64> {
        let mut out = Vec::new();
        fit(
            params,
            train,
            None,
            &mut crate::model::als::each(|r| out.push(r.train_loss.unwrap())),
        )
        .unwrap();
        out
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// Dense Gaussian elimination with partial pivoting, independent of BLAS and LAPACK.
    fn solve_dense(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
        let n = b.len();
        for c in 0..n {
            let p = (c..n)
                .max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))
                .unwrap();
            a.swap(c, p);
            b.swap(c, p);
            let pivot = a[c].clone();
            for r in c + 1..n {
                let f = a[r][c] / pivot[c];
                for (x, p) in a[r].iter_mut().zip(&pivot).skip(c) {
                    *x -= f * p;
                }
                b[r] -= f * b[c];
            }
        }
        let mut x = vec![0.0; n];
        for r in (0..n).rev() {
            let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
            x[r] = (b[r] - s) / a[r][r];
        }
        x
    }

    /// The row's normal equations written out over every item, straight from the objective.
    fn reference_user(
        params: &ValidAlsParams,
        train: &Interactions,
        items: &Array2<f32>,
        mu: f64,
        user: usize,
    ) -> Vec<f64> {
        let (rank, biases) = (params.rank(), params.biases());
        let k = rank + usize::from(biases);
        let by_user = train.by_user();
        let (cols, vals) = by_user.row(user);
        let rated: std::collections::HashMap<u32, f32> =
            cols.iter().copied().zip(vals.iter().copied()).collect();
        let mut a = vec![vec![0.0; k]; k];
        let mut b = vec![0.0; k];
        let mut count = 0usize;
        for j in 0..items.nrows() {
            let rating = rated.get(&(j as u32)).copied();
            let (c, target) = match (params.implicit(), rating) {
                (false, None) => continue,
                (false, Some(r)) => (1.0, r as f64),
                (true, None) => (1.0, 0.0),
                (true, Some(r)) => (
                    1.0 + params.alpha() * (r as f64).abs(),
                    if r > 0.0 { 1.0 } else { 0.0 },
                ),
            };
            if rating.is_some_and(|r| !params.implicit() || r > 0.0) {
                count += 1;
            }
            let mut y: Vec<f64> = (0..rank).map(|f| items[[j, f]] as f64).collect();
            let mut off = mu;
            if biases {
                y.push(1.0);
                off += items[[j, rank]] as f64;
            }
            for p in 0..k {
                b[p] += c * (target - off) * y[p];
                for q in 0..k {
                    a[p][q] += c * y[p] * y[q];
                }
            }
        }
        let scale = match params.reg_scaling() {
            RegScaling::Count => count as f64,
            RegScaling::None => 1.0,
        };
        for (p, row) in a.iter_mut().enumerate() {
            row[p] += if biases && p == rank {
                if params.has_reg_bias() {
                    params.reg_bias()
                } else {
                    params.reg() * scale
                }
            } else {
                params.reg() * scale
            };
        }
        solve_dense(a, b)
    }

    /// Largest error of one user half-step against [`reference_user`], absolute and relative
    /// to the solution's size.
    fn half_step_error<T: Real>(params: &ValidAlsParams) -> (f64, f64) {
        let train = random_table(3, 6, 9, 0.4);
        let (by_user, by_item) = (train.by_user(), train.by_item());
        let mu = if params.biases() && !params.implicit() {
            3.0
        } else {
            0.0
        };
        let setup = Setup::<T>::new(params, mu);
        let (mut users, mut items) = initial_factors(&setup, &by_user, &by_item, 5);
        // Non-trivial item biases, so the offsets are exercised.
        if params.biases() {
            for (j, v) in items.column_mut(setup.rank).iter_mut().enumerate() {
                *v = 0.1 * j as f32 - 0.3;
            }
        }
        solve_side(&setup, 1, Side::User, &by_user, &mut users, &mut items).unwrap();
        let (mut abs, mut rel) = (0.0f64, 0.0f64);
        for u in 0..users.nrows() {
            let want = reference_user(params, &train, &items, mu as f64, u);
            let norm = want.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            for (got, want) in users.row(u).iter().zip(&want) {
                let e = (*got as f64 - want).abs();
                abs = abs.max(e);
                rel = rel.max(e / norm);
            }
        }
        (abs, rel)
    }

    /// The formulation, checked in double precision to 1e-6; the production precision (f32
    /// neighbour vectors and Gram matrix, f64 factorization) to 1e-5 relative.
    ///
    /// Rank 4 mixes rows solved through the `k × k` system (at least `k` neighbours) with rows
    /// solved through the dual one; at rank 12 every row (at most 9 neighbours) takes the dual.
    fn check_half_step_matches_reference(params: AlsParams) {
        for rank in [4, 12] {
            let params = params.clone().rank(rank).check().unwrap();
            let (abs, _) = half_step_error::<f64>(&params);
            assert!(abs < 1e-6, "f64: {abs} ({params:?})");
            let (_, rel) = half_step_error::<Acc>(&params);
            assert!(rel < 1e-5, "{rel} ({params:?})");
        }
    }

    #[test]
    fn a_separate_bias_reg_enters_the_normal_equations_of_the_bias_column() {
        // A damping constant is not scaled by the count: 1 against reg 0.5 x count.
        check_half_step_matches_reference(
            AlsParams::new().biases(true).reg(0.5).reg_bias(Some(1.0)),
        );
        check_half_step_matches_reference(
            AlsParams::new()
                .biases(true)
                .reg(0.02)
                .reg_bias(Some(2.0))
                .reg_scaling(RegScaling::None),
        );
    }

    #[test]
    fn heavily_shrunk_factors_keep_their_biases_with_a_small_bias_reg() {
        // Item j's ratings sit around 1 + j / 2: biases alone explain them.
        let mut triples = Vec::new();
        for u in 0..30u32 {
            for j in 0..8u32 {
                if (u + j) % 3 != 0 {
                    triples.push((u, j, 1.0 + j as f32 / 2.0 + 0.1 * ((u % 3) as f32 - 1.0)));
                }
            }
        }
        let train = interactions(&triples, 30, 8);
        let base = AlsParams::new().biases(true).rank(2).reg(50.0).max_iter(15);
        let fit = |p: AlsParams| quiet(&p.check().unwrap(), &train).unwrap();
        let spread = |m: &AlsModel| {
            let b = &m.item_bias;
            b.iter().cloned().fold(f32::MIN, f32::max) - b.iter().cloned().fold(f32::MAX, f32::min)
        };
        let shared = fit(base.clone());
        let apart = fit(base.reg_bias(Some(0.001)));
        // True spread of the item biases: 3.5. One large reg flattens them too.
        assert!(spread(&shared) < 1.0, "{}", spread(&shared));
        assert!((spread(&apart) - 3.5).abs() < 0.2, "{}", spread(&apart));
        assert!(apart.user_factors.iter().all(|v| v.abs() < 0.05));
    }

    #[test]
    fn log_confidence_is_linear_confidence_on_log_counts() {
        let counts = random_table(9, 12, 15, 0.3);
        let mut logged = counts.clone();
        for r in &mut logged.rating {
            *r = (1.0 + (*r * 40.0) / 4.0).ln();
        }
        let mut counts = counts;
        for r in &mut counts.rating {
            *r *= 40.0;
        }
        let base = AlsParams::new().implicit(true).rank(3).max_iter(3);
        let transformed = quiet(
            &base
                .clone()
                .confidence(crate::model::als::Confidence::Log)
                .epsilon(4.0)
                .check()
                .unwrap(),
            &counts,
        )
        .unwrap();
        let by_hand = quiet(&base.clone().check().unwrap(), &logged).unwrap();
        let linear = quiet(&base.check().unwrap(), &counts).unwrap();
        let diff = |a: &AlsModel, b: &AlsModel| {
            (&a.user_factors - &b.user_factors)
                .iter()
                .fold(0f32, |m, v| m.max(v.abs()))
        };
        assert!(diff(&transformed, &by_hand) < 1e-4);
        assert!(diff(&transformed, &linear) > 1e-3);
    }

    #[test]
    fn explicit_half_step_solves_the_normal_equations() {
        check_half_step_matches_reference(AlsParams::new().reg(0.1));
        check_half_step_matches_reference(AlsParams::new().reg(0.3).reg_scaling(RegScaling::None));
    }

    #[test]
    fn explicit_half_step_with_biases_solves_the_normal_equations() {
        check_half_step_matches_reference(AlsParams::new().reg(0.1).biases(true));
    }

    #[test]
    fn implicit_half_step_solves_the_normal_equations() {
        let base = AlsParams::new().implicit(true).alpha(2.0);
        check_half_step_matches_reference(base.clone().reg(0.1));
        check_half_step_matches_reference(base.clone().reg(0.5).reg_scaling(RegScaling::None));
        check_half_step_matches_reference(base.reg(0.1).biases(true));
    }

    #[test]
    fn implicit_half_step_treats_non_positive_ratings_as_confident_zeros() {
        let params = AlsParams::new().implicit(true).alpha(1.5).rank(3);
        let train = interactions(
            &[
                (0, 0, 2.0),
                (0, 1, -1.0),
                (0, 2, 0.0),
                (1, 1, 1.0),
                (1, 3, 4.0),
            ],
            2,
            4,
        );
        let params = params.check().unwrap();
        let setup = Setup::<Acc>::new(&params, 0.0);
        let (by_user, by_item) = (train.by_user(), train.by_item());
        let (mut users, mut items) = initial_factors(&setup, &by_user, &by_item, 9);
        solve_side(&setup, 1, Side::User, &by_user, &mut users, &mut items).unwrap();
        let want = reference_user(&params, &train, &items, 0.0, 0);
        for (got, want) in users.row(0).iter().zip(&want) {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn turning_the_curves_off_changes_nothing_else() {
        let train = random_table(4, 20, 15, 0.3);
        for base in [
            AlsParams::new().rank(5).biases(true),
            AlsParams::new().rank(5).implicit(true).solver(Solver::Cg),
        ] {
            let mut with = Vec::new();
            let mut without = Vec::new();
            let on = fit(
                &base.clone().check().unwrap(),
                &train,
                Some(&train),
                &mut crate::model::als::each(|r| with.push((r.train_loss, r.val_rmse))),
            )
            .unwrap();
            let off = base.clone().curves(false).check().unwrap();
            let off = fit(
                &off,
                &train,
                Some(&train),
                &mut crate::model::als::each(|r| without.push((r.train_loss, r.val_rmse))),
            )
            .unwrap();
            assert_eq!(on, off);
            let explicit = !base.clone().check().unwrap().implicit();
            assert!(with
                .iter()
                .all(|(loss, rmse)| loss.is_some() && rmse.is_some() == explicit));
            assert!(without
                .iter()
                .all(|(loss, rmse)| loss.is_none() && rmse.is_none()));
        }
    }

    #[test]
    fn rank_one_matrix_is_recovered() {
        let (m, n) = (6u32, 5u32);
        let mut t = Vec::new();
        for u in 0..m {
            for i in 0..n {
                let r = (1.0 + 0.5 * u as f32) * (0.5 + 0.25 * i as f32);
                t.push((u, i, r));
            }
        }
        let train = interactions(&t, m as usize, n as usize);
        let params = AlsParams::new()
            .rank(1)
            .reg(1e-6)
            .max_iter(30)
            .check()
            .unwrap();
        let model = quiet(&params, &train).unwrap();
        for &(u, i, r) in &t {
            let p = model.predict(u as usize, i as usize);
            assert!((p - r).abs() < 1e-3, "({u}, {i}): {p} vs {r}");
        }
    }

    #[test]
    fn same_seed_gives_identical_factors() {
        let train = random_table(11, 40, 30, 0.2);
        for params in [
            AlsParams::new().rank(8).biases(true),
            AlsParams::new().rank(8).implicit(true).solver(Solver::Cg),
            AlsParams::new().rank(8).implicit(true),
        ] {
            let params = params.check().unwrap();
            let a = pool(2).install(|| quiet(&params, &train)).unwrap();
            let b = pool(2).install(|| quiet(&params, &train)).unwrap();
            assert_eq!(a, b);
            let c = pool(1).install(|| quiet(&params, &train)).unwrap();
            assert_eq!(a, c, "thread count changed the factors");
            let other = AlsParams::from(params).seed(7).check().unwrap();
            let d = quiet(&other, &train).unwrap();
            assert_ne!(a.user_factors, d.user_factors);
        }
    }

    #[test]
    fn implicit_cholesky_and_cg_agree_after_enough_steps() {
        let train = random_table(5, 30, 20, 0.25);
        let base = AlsParams::new()
            .rank(6)
            .implicit(true)
            .alpha(3.0)
            .reg(0.05)
            .max_iter(5);
        let exact = quiet(&base.clone().check().unwrap(), &train).unwrap();
        let cg = base.solver(Solver::Cg).cg_steps(30).check().unwrap();
        let cg = quiet(&cg, &train).unwrap();
        for u in 0..30 {
            for i in 0..20 {
                let (a, b) = (exact.predict(u, i), cg.predict(u, i));
                assert!((a - b).abs() < 1e-4, "({u}, {i}): {a} vs {b}");
            }
        }
    }

    #[test]
    fn implicit_cg_with_default_steps_reaches_the_exact_objective() {
        let train = random_table(6, 30, 20, 0.25);
        let base = AlsParams::new().rank(6).implicit(true).max_iter(15);
        let exact = losses(&base.clone().check().unwrap(), &train);
        let cg = losses(&base.solver(Solver::Cg).check().unwrap(), &train);
        let (exact, cg) = (exact[exact.len() - 1], cg[cg.len() - 1]);
        assert!(
            (cg - exact).abs() / exact < 0.01,
            "cg {cg} vs exact {exact}"
        );
    }

    #[test]
    fn explicit_cg_solver_also_converges() {
        let train = random_table(8, 20, 15, 0.4);
        let base = AlsParams::new().rank(4).biases(true).max_iter(4);
        let exact = quiet(&base.clone().check().unwrap(), &train).unwrap();
        let cg = quiet(
            &base.solver(Solver::Cg).cg_steps(20).check().unwrap(),
            &train,
        )
        .unwrap();
        for u in 0..20 {
            for i in 0..15 {
                assert!((exact.predict(u, i) - cg.predict(u, i)).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn rows_without_ratings_get_zero_vectors() {
        // User 2 and item 3 have no ratings.
        let train = interactions(
            &[
                (0, 0, 4.0),
                (0, 1, 3.0),
                (1, 1, 5.0),
                (1, 2, 2.0),
                (3, 0, 1.0),
            ],
            4,
            4,
        );
        for params in [
            AlsParams::new().rank(3).biases(true),
            AlsParams::new().rank(3).implicit(true).biases(true),
            AlsParams::new().rank(3).implicit(true).solver(Solver::Cg),
        ] {
            let m = quiet(&params.check().unwrap(), &train).unwrap();
            assert!(m.user_factors.row(2).iter().all(|&v| v == 0.0));
            assert!(m.item_factors.row(3).iter().all(|&v| v == 0.0));
            assert_eq!((m.user_bias[2], m.item_bias[3]), (0.0, 0.0));
            // Only the biases remain for them.
            let expected = m.global_bias + m.item_bias[1];
            assert!((m.predict(2, 1) - expected).abs() < 1e-6);
        }
    }

    #[test]
    fn factors_stay_finite_with_extreme_confidence() {
        let train = random_table(2, 25, 25, 0.3);
        for solver in [Solver::Cholesky, Solver::Cg] {
            let params = AlsParams::new()
                .rank(10)
                .implicit(true)
                .alpha(1e4)
                .reg(0.0)
                .reg_scaling(RegScaling::None)
                .solver(solver)
                .check()
                .unwrap();
            match quiet(&params, &train) {
                Ok(m) => {
                    assert!(m
                        .user_factors
                        .iter()
                        .chain(m.item_factors.iter())
                        .all(|v| v.is_finite()))
                }
                Err(e) => assert!(matches!(
                    e,
                    AlsError::NonFinite { .. } | AlsError::NotPositiveDefinite { .. }
                )),
            }
        }
    }

    #[test]
    fn overflowing_factors_are_reported_with_the_iteration() {
        let train = interactions(&[(0, 0, 3.0e38), (1, 0, -3.0e38), (1, 1, 3.0e38)], 2, 2);
        let params = AlsParams::new().rank(1).reg(1e-30).check().unwrap();
        let err = quiet(&params, &train).unwrap_err();
        assert!(
            matches!(err, AlsError::NonFinite { iteration: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("at iteration 1"), "{err}");
    }

    #[test]
    fn singular_normal_equations_name_the_row() {
        let params = AlsParams::new().rank(2).reg(0.0).check().unwrap();
        let train = interactions(&[(0, 0, 3.0), (0, 1, 2.0), (1, 2, 4.0)], 2, 3);
        let setup = Setup::<Acc>::new(&params, 0.0);
        let by_user = train.by_user();
        let mut users = Array2::<f32>::ones((2, 2));
        // Item 2's vector is zero, so user 1's normal equations are all zeros.
        let mut items = ndarray::array![[1.0f32, 0.5], [0.2, 1.0], [0.0, 0.0]];
        let err = solve_side(&setup, 4, Side::User, &by_user, &mut users, &mut items).unwrap_err();
        assert_eq!(
            err,
            AlsError::NotPositiveDefinite {
                iteration: 4,
                side: Side::User,
                row: 1
            }
        );
        assert!(err.to_string().contains("user `1`"), "{err}");
    }

    #[test]
    fn empty_training_set_is_an_error() {
        let train = interactions(&[], 3, 3);
        let err = quiet(&ValidAlsParams::default(), &train).unwrap_err();
        assert_eq!(err, AlsError::EmptyTraining);
    }

    #[test]
    fn validation_from_other_id_maps_is_an_error() {
        let train = interactions(&[(0, 0, 3.0)], 2, 2);
        let val = interactions(&[(0, 0, 3.0)], 3, 2);
        let err = fit(
            &ValidAlsParams::default(),
            &train,
            Some(&val),
            &mut crate::model::als::each(|_| {}),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            AlsError::ValidationShape { val_users: 3, .. }
        ));
    }

    #[test]
    fn reports_one_entry_per_iteration_with_validation_rmse() {
        let train = random_table(4, 20, 15, 0.4);
        let val = interactions(&[(0, 0, 3.0), (1, 2, 4.0)], 20, 15);
        let params = AlsParams::new()
            .rank(3)
            .max_iter(4)
            .biases(true)
            .check()
            .unwrap();
        let mut reports = Vec::new();
        fit(
            &params,
            &train,
            Some(&val),
            &mut crate::model::als::each(|r| reports.push(r.clone())),
        )
        .unwrap();
        assert_eq!(
            reports.iter().map(|r| r.iteration).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(reports
            .iter()
            .all(|r| r.val_rmse.is_some_and(|v| v.is_finite())));
        assert!(reports.iter().all(|r| r.seconds >= 0.0));

        let implicit = AlsParams::new()
            .rank(3)
            .max_iter(2)
            .implicit(true)
            .check()
            .unwrap();
        let mut reports = Vec::new();
        fit(
            &implicit,
            &train,
            Some(&val),
            &mut crate::model::als::each(|r| reports.push(r.clone())),
        )
        .unwrap();
        assert!(reports.iter().all(|r| r.val_rmse.is_none()));
    }

    #[test]
    fn explicit_model_with_biases_learns_the_mean() {
        let train = random_table(9, 20, 15, 0.5);
        let params = AlsParams::new().rank(2).biases(true).check().unwrap();
        let m = quiet(&params, &train).unwrap();
        let mean = train.rating.iter().sum::<f32>() / train.len() as f32;
        assert!((m.global_bias - mean).abs() < 1e-5);
        assert!(m.user_bias.iter().any(|&b| b != 0.0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Each half-step minimizes the objective exactly, so it never increases (up to the f32
        /// rounding of stored factors).
        #[test]
        fn exact_als_never_increases_the_objective(
            seed in 0u64..1000,
            implicit in any::<bool>(),
            biases in any::<bool>(),
            count in any::<bool>(),
            reg in 0.01f64..1.0,
        ) {
            let train = random_table(seed, 12, 10, 0.3);
            let params = AlsParams::new()
                .rank(3)
                .max_iter(6)
                .reg(reg)
                .implicit(implicit)
                .biases(biases)
                .reg_scaling(if count { RegScaling::Count } else { RegScaling::None })
                .seed(seed)
                .check()
                .unwrap();
            let l = losses(&params, &train);
            for w in l.windows(2) {
                prop_assert!(w[1] <= w[0] * (1.0 + 1e-5), "{l:?}");
            }
        }

        #[test]
        fn factors_are_finite_and_empty_rows_zero(
            seed in 0u64..1000,
            implicit in any::<bool>(),
            cg in any::<bool>(),
            biases in any::<bool>(),
        ) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let t: Vec<(u32, u32, f32)> = (0..30)
                .map(|_| (rng.gen_range(0..8), rng.gen_range(0..9), rng.gen_range(-2.0..5.0)))
                .collect();
            let train = interactions(&t, 10, 10);
            let params = AlsParams::new()
                .rank(4)
                .max_iter(3)
                .implicit(implicit)
                .biases(biases)
                .solver(if cg { Solver::Cg } else { Solver::Cholesky })
                .seed(seed)
                .check()
                .unwrap();
            let m = quiet(&params, &train).unwrap();
            prop_assert!(m.user_factors.iter().chain(m.item_factors.iter()).all(|v| v.is_finite()));
            prop_assert!(m.user_factors.row(9).iter().all(|&v| v == 0.0));
            prop_assert!(m.item_factors.row(9).iter().all(|&v| v == 0.0));
        }
    }
}
