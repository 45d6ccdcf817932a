//! Bayesian ALS: Gibbs sampling from the posterior of a biased matrix factorization (Salakhutdinov
//! and Mnih's BPMF, with the per-dimension Normal-Gamma hyper-priors of Rendle's MCMC
//! factorization machines), explicit ratings only.
//!
//! The model is `r ≈ w0 + b_u + c_i + s_u · t_i`. With rated sets on, each side's vector also
//! sums what the other side says about it (SVD++'s implicit feedback, on both sides):
//! `s_u = p_u + |N(u)|^-½ Σ_{j ∈ N(u)} y_j` and `t_i = q_i + |N(i)|^-½ Σ_{v ∈ N(i)} z_v`, where
//! `N(u)` are the items `u` rated in training and `N(i)` the users who rated `i`.
//!
//! A sweep draws every parameter from its conditional given the rest. A row's `[p_u, b_u]` given
//! the other side is the ridge regression ALS solves, with the noise precision and the sampled
//! prior in place of `reg`: the same normal equations, factored once by LAPACK's Cholesky for
//! the mean and the draw ([`linalg::gaussian_draw`]). Rows are independent given the other side,
//! so they are drawn in parallel. A rated-set vector `y_j` is shared by every user who rated `j`,
//! so those are drawn one after another, from per-user sums kept up to date (`Σ t tᵀ` and the
//! residual-weighted `Σ e t`, Rendle's relational trick). The prediction is the posterior mean:
//! the average over the samples kept after burn-in, which is exactly the dot product of the
//! kept samples laid side by side, each scaled by `1/√S` ([`Posterior::into_model`]). That is why
//! a sampled model's factor matrices have `rank × samples` columns and every downstream reader
//! (scorer, Spark layout, server) works unchanged.
//!
//! Every row draws from its own ChaCha stream (seed, sweep, phase, row) and the sequential draws
//! from one stream per phase, so a fit depends on the seed and the data, not the thread count.

use super::linalg::{self, dot, LinalgError};
use super::params::ValidAlsParams;
use super::{AlsError, AlsModel, Flow, IterationReport, OnIteration, Side};
use crate::data::interactions::{Csr, Interactions};
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, StandardNormal};
use rayon::prelude::*;
use std::time::Instant;

/// Hyper-prior constants (Rendle's libFM MCMC defaults): `λ ~ Gamma(A/2, B/2)` for every
/// precision, `μ ~ N(0, 1/(γ λ))` for every group mean.
const PRIOR_A: f64 = 1.0;
const PRIOR_B: f64 = 1.0;
const PRIOR_GAMMA: f64 = 1.0;
/// Prior precision of the global mean `w0` (vague: the data dominate it).
const PRIOR_W0: f64 = 1e-2;
/// Standard deviation of the initial latent vectors. The latent vectors' priors start at the
/// matching precision `1/INIT_SD²` (what a draw from the hyper-prior given those vectors would
/// be, as libFM and myFM start, drawing the priors before the first sweep), not at 1: with
/// precision 1 and the noise precision at 1, the first sweeps fit each row almost freely, and on
/// sparse data (tens of ratings per row, as many parameters as ratings) the chain stays in that
/// over-fitted state: noise precision ~2, training RMSE ~0.69, Epinions validation RMSE 1.067
/// against 1.030 from the shrunk start (docs/gibbs.md).
const INIT_SD: f64 = 0.1;

/// Phases of a sweep, each with its own random streams.
const PHASE_ROWS: u64 = 0;
const PHASE_RATED: u64 = 1;
const PHASE_GLOBAL: u64 = 2;

/// The prior of one group of parameters: a mean and a precision per dimension.
#[derive(Debug, Clone)]
struct Prior {
    mu: Vec<f64>,
    lambda: Vec<f64>,
}

impl Prior {
    /// Mean 0 and precision `lambda` in every dimension.
    fn new(dims: usize, lambda: f64) -> Self {
        Self {
            mu: vec![0.0; dims],
            lambda: vec![lambda; dims],
        }
    }

    /// Draws the mean and precision of every dimension given the group's current values: the
    /// rows listed in `active`, row `r` at `values[r * stride..]`, one value per dimension.
    fn resample(&mut self, values: &[f64], stride: usize, active: &[usize], rng: &mut ChaCha8Rng) {
        let m = active.len() as f64;
        for d in 0..self.mu.len() {
            let at = |r: usize| values[r * stride + d];
            let sum: f64 = active.iter().map(|&r| at(r)).sum();
            let sd = 1.0 / ((m + PRIOR_GAMMA) * self.lambda[d]).sqrt();
            let z: f64 = StandardNormal.sample(rng);
            self.mu[d] = sum / (m + PRIOR_GAMMA) + sd * z;
            let mu = self.mu[d];
            let sq: f64 = active.iter().map(|&r| (at(r) - mu).powi(2)).sum();
            let rate = (PRIOR_B + sq + PRIOR_GAMMA * mu * mu) / 2.0;
            self.lambda[d] = gamma(PRIOR_A / 2.0 + (m + 1.0) / 2.0, rate, rng);
        }
    }
}

/// A draw from Gamma(shape, rate); both are positive by construction.
fn gamma(shape: f64, rate: f64, rng: &mut ChaCha8Rng) -> f64 {
    Gamma::new(shape, 1.0 / rate).map_or(1.0, |g| g.sample(rng))
}

/// One side's parameters: its rows' own vectors and biases, and (rated sets on) the vectors of
/// the other side's ids as this side's rated-set features.
#[derive(Debug, Clone)]
struct Block {
    /// Rows × rank: `p`.
    own: Vec<f64>,
    bias: Vec<f64>,
    /// Other side's ids × rank: `y` (empty when rated sets are off).
    rated: Vec<f64>,
    /// Rows × rank: `s = p + |N|^-½ Σ y`, the vector predictions use.
    effective: Vec<f64>,
    /// `|N(r)|^-½`, 0 for a row without ratings.
    norm: Vec<f64>,
    /// Rows with at least one rating (the others stay at zero and do not inform the priors).
    active: Vec<usize>,
    /// Other side's ids with at least one rating.
    active_other: Vec<usize>,
    prior_own: Prior,
    prior_bias: Prior,
    prior_rated: Prior,
}

impl Block {
    fn new(rows: &Csr, rank: usize, rated_sets: bool, seed: u64, side: u64) -> Self {
        let n = rows.n_rows;
        let mut own = vec![0.0; n * rank];
        own.par_chunks_mut(rank)
            .enumerate()
            .filter(|(r, _)| rows.row_len(*r) > 0)
            .for_each(|(r, v)| {
                let mut rng = stream(seed, 0, side, r);
                for x in v {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    *x = INIT_SD * z;
                }
            });
        let active: Vec<usize> = (0..n).filter(|&r| rows.row_len(r) > 0).collect();
        let mut other_counts = vec![0usize; rows.n_cols];
        for &j in &rows.indices {
            other_counts[j as usize] += 1;
        }
        Self {
            effective: own.clone(),
            own,
            bias: vec![0.0; n],
            rated: if rated_sets {
                vec![0.0; rows.n_cols * rank]
            } else {
                Vec::new()
            },
            norm: (0..n)
                .map(|r| match rows.row_len(r) {
                    0 => 0.0,
                    c => 1.0 / (c as f64).sqrt(),
                })
                .collect(),
            active,
            active_other: (0..rows.n_cols).filter(|&j| other_counts[j] > 0).collect(),
            prior_own: Prior::new(rank, 1.0 / (INIT_SD * INIT_SD)),
            prior_bias: Prior::new(1, 1.0),
            prior_rated: Prior::new(rank, 1.0),
        }
    }
}

/// The noise precision and the global mean, shared by both sides.
#[derive(Debug, Clone, Copy)]
struct Global {
    w0: f64,
    alpha: f64,
}

/// Random stream of one row in one phase of one sweep.
fn stream(seed: u64, sweep: usize, phase: u64, row: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((sweep as u64) << 36) | (phase << 32) | row as u64);
    rng
}

/// Running sums of the kept samples: the posterior mean and what the saved model holds.
struct Posterior {
    /// Kept draws of the effective vectors, in the precision the model stores (f32).
    users: Vec<Vec<f32>>,
    items: Vec<Vec<f32>>,
    global: f64,
    user_bias: Vec<f64>,
    item_bias: Vec<f64>,
    /// Sum of the kept samples' validation predictions.
    validation: Vec<f64>,
}

impl Posterior {
    fn new(n_users: usize, n_items: usize, n_validation: usize) -> Self {
        Self {
            users: Vec::new(),
            items: Vec::new(),
            global: 0.0,
            user_bias: vec![0.0; n_users],
            item_bias: vec![0.0; n_items],
            validation: vec![0.0; n_validation],
        }
    }

    fn keep(&mut self, users: &Block, items: &Block, g: Global) {
        let narrow = |v: &[f64]| v.iter().map(|&x| x as f32).collect();
        self.users.push(narrow(&users.effective));
        self.items.push(narrow(&items.effective));
        self.global += g.w0;
        linalg::axpy(1.0, &users.bias, &mut self.user_bias);
        linalg::axpy(1.0, &items.bias, &mut self.item_bias);
    }

    fn len(&self) -> usize {
        self.users.len()
    }

    /// The model as it stands after a sweep: the posterior mean of the samples kept so far, or,
    /// before the first, the current draw.
    fn snapshot(&self, rank: usize, users: &Block, items: &Block, g: Global) -> AlsModel {
        if self.len() > 0 {
            return Posterior {
                users: self.users.clone(),
                items: self.items.clone(),
                global: self.global,
                user_bias: self.user_bias.clone(),
                item_bias: self.item_bias.clone(),
                validation: Vec::new(),
            }
            .into_model(rank);
        }
        let mut now = Posterior::new(users.bias.len(), items.bias.len(), 0);
        now.keep(users, items, g);
        now.into_model(rank)
    }

    /// The kept samples side by side, each scaled by `1/√S`: the dot product of a user's and an
    /// item's rows is the average of the samples' dot products.
    fn into_model(self, rank: usize) -> AlsModel {
        let s = self.len().max(1);
        let scale = 1.0 / (s as f32).sqrt();
        let stack = |samples: &[Vec<f32>], n: usize| {
            Array2::from_shape_fn((n, rank * samples.len()), |(r, c)| {
                samples[c / rank][r * rank + c % rank] * scale
            })
        };
        let mean = |v: Vec<f64>| Array1::from_iter(v.into_iter().map(|x| (x / s as f64) as f32));
        AlsModel {
            user_factors: stack(&self.users, self.user_bias.len()),
            item_factors: stack(&self.items, self.item_bias.len()),
            global_bias: (self.global / s as f64) as f32,
            user_bias: mean(self.user_bias),
            item_bias: mean(self.item_bias),
            implicit: false,
        }
    }
}

/// Which sweeps are kept: `samples` of those after burn-in, evenly spaced, the last included.
fn kept(sweep: usize, max_iter: usize, burn_in: usize, samples: usize) -> bool {
    if sweep <= burn_in || sweep > max_iter {
        return false;
    }
    let stride = ((max_iter - burn_in) / samples.max(1)).max(1);
    (max_iter - sweep).is_multiple_of(stride) && (max_iter - sweep) / stride < samples
}

/// Fits by Gibbs sampling; see the module documentation. `params` has been checked to be
/// explicit, with biases.
pub(super) fn fit(
    params: &ValidAlsParams,
    train: &Interactions,
    validation: Option<&Interactions>,
    on_iter: &mut OnIteration<'_>,
) -> Result<AlsModel, AlsError> {
    linalg::blas_single_threaded();
    let rank = params.rank();
    let seed = params.seed();
    let rated_sets = params.rated_sets();
    let by_user = train.by_user();
    let by_item = train.by_item();
    let mut users = Block::new(&by_user, rank, rated_sets, seed, 0);
    let mut items = Block::new(&by_item, rank, rated_sets, seed, 1);
    let n = train.len() as f64;
    let mut g = Global {
        w0: train.rating.iter().map(|&r| r as f64).sum::<f64>() / n,
        alpha: 1.0,
    };
    let val: Vec<(usize, usize, f64)> = validation
        .map(|v| {
            v.user
                .iter()
                .zip(&v.item)
                .zip(&v.rating)
                .map(|((&u, &i), &r)| (u as usize, i as usize, r as f64))
                .filter(|&(u, i, _)| {
                    u < by_user.n_rows
                        && i < by_item.n_rows
                        && by_user.row_len(u) > 0
                        && by_item.row_len(i) > 0
                })
                .collect()
        })
        .unwrap_or_default();
    let (max_iter, burn_in, samples) = (params.max_iter(), params.burn_in(), params.samples());
    let mut posterior = Posterior::new(by_user.n_rows, by_item.n_rows, val.len());

    for sweep in 1..=max_iter {
        let start = Instant::now();
        let fail = |side: Side| {
            move |e: RowError| match e {
                RowError::NotPositiveDefinite(row) => AlsError::NotPositiveDefinite {
                    iteration: sweep,
                    side,
                    row,
                },
                RowError::NonFinite => AlsError::NonFinite {
                    iteration: sweep,
                    side,
                },
            }
        };
        half_sweep(seed, sweep, 0, &by_user, &by_item, &mut users, &items, g)
            .map_err(fail(Side::User))?;
        half_sweep(seed, sweep, 1, &by_item, &by_user, &mut items, &users, g)
            .map_err(fail(Side::Item))?;
        let squared_error;
        (g, squared_error) = sample_global(seed, sweep, &by_user, &users, &items, g);
        let mut rng = stream(seed, sweep, PHASE_GLOBAL, 1);
        for block in [&mut users, &mut items] {
            let Block {
                own,
                bias,
                rated,
                active,
                active_other,
                prior_own,
                prior_bias,
                prior_rated,
                ..
            } = block;
            prior_own.resample(own, rank, active, &mut rng);
            prior_bias.resample(bias, 1, active, &mut rng);
            if !rated.is_empty() {
                prior_rated.resample(rated, rank, active_other, &mut rng);
            }
        }

        let is_kept = kept(sweep, max_iter, burn_in, samples);
        if is_kept {
            posterior.keep(&users, &items, g);
        }
        // The curve follows the current draw until the first sample is kept, then the
        // posterior mean of the samples kept so far (what the model would be if stopped there).
        let val_rmse = if !params.curves() {
            None
        } else if posterior.len() == 0 {
            let predictions = predict_all(&val, &users, &items, g);
            rmse(val.iter().zip(&predictions).map(|(v, &p)| (v.2, p)))
        } else {
            if is_kept {
                let predictions = predict_all(&val, &users, &items, g);
                linalg::axpy(1.0, &predictions, &mut posterior.validation);
            }
            let k = posterior.len() as f64;
            rmse(
                val.iter()
                    .zip(&posterior.validation)
                    .map(|(v, p)| (v.2, p / k)),
            )
        };
        let report = IterationReport {
            iteration: sweep,
            train_loss: params.curves().then_some(squared_error),
            val_rmse,
            seconds: start.elapsed().as_secs_f64(),
        };
        // Before the first kept sample there is no posterior mean: the current model is the
        // current draw's.
        let current = || posterior.snapshot(rank, &users, &items, g);
        if on_iter(&report, &current) == Flow::Stop {
            break;
        }
    }
    Ok(posterior.into_model(rank))
}

fn predict_all(val: &[(usize, usize, f64)], users: &Block, items: &Block, g: Global) -> Vec<f64> {
    let k = users.own.len() / users.bias.len().max(1);
    val.par_iter()
        .map(|&(u, i, _)| {
            g.w0 + users.bias[u]
                + items.bias[i]
                + dot(
                    &users.effective[u * k..(u + 1) * k],
                    &items.effective[i * k..(i + 1) * k],
                )
        })
        .collect()
}

fn rmse(pairs: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for (truth, pred) in pairs {
        sum += (truth - pred).powi(2);
        n += 1;
    }
    (n > 0).then(|| (sum / n as f64).sqrt())
}

enum RowError {
    NotPositiveDefinite(usize),
    NonFinite,
}

/// Overwrites `rhs` with a finite draw from `N(a⁻¹ rhs, a⁻¹)`; `row` names the system on failure.
fn draw(a: &mut [f64], rhs: &mut [f64], rng: &mut ChaCha8Rng, row: usize) -> Result<(), RowError> {
    let mut noise: Vec<f64> = (0..rhs.len()).map(|_| StandardNormal.sample(rng)).collect();
    linalg::gaussian_draw(a, rhs, &mut noise).map_err(|e| match e {
        LinalgError::NotPositiveDefinite => RowError::NotPositiveDefinite(row),
        _ => RowError::NonFinite,
    })?;
    if rhs.iter().any(|v| !v.is_finite()) {
        return Err(RowError::NonFinite);
    }
    Ok(())
}

/// Draws one side's rows, then (rated sets on) its rated-set vectors, with the other side fixed.
#[allow(clippy::too_many_arguments)]
fn half_sweep(
    seed: u64,
    sweep: usize,
    side: u64,
    rows: &Csr,
    columns: &Csr,
    block: &mut Block,
    other: &Block,
    g: Global,
) -> Result<(), RowError> {
    let k = other.effective.len() / other.bias.len().max(1);
    let d = k + 1;
    let Block {
        own,
        bias,
        rated,
        effective,
        norm,
        prior_own,
        prior_bias,
        prior_rated,
        ..
    } = block;
    let (prior_own, prior_bias) = (&*prior_own, &*prior_bias);
    // Rows: `[p, b]` against the other side's `[t, 1]`, target `r - w0 - c - (s - p)·t`.
    own.par_chunks_mut(k)
        .zip(bias.par_iter_mut())
        .zip(effective.par_chunks_mut(k))
        .enumerate()
        .filter(|(r, _)| rows.row_len(*r) > 0)
        .try_for_each(|(r, ((p, b), s))| {
            let (cols, ratings) = rows.row(r);
            let mut a = vec![0.0; d * d];
            let mut rhs = vec![0.0; d];
            for x in 0..k {
                a[x * d + x] = prior_own.lambda[x];
                rhs[x] = prior_own.lambda[x] * prior_own.mu[x];
            }
            a[k * d + k] = prior_bias.lambda[0];
            rhs[k] = prior_bias.lambda[0] * prior_bias.mu[0];
            let rest: Vec<f64> = s.iter().zip(p.iter()).map(|(s, p)| s - p).collect();
            let mut h = vec![1.0; d];
            for (&j, &rating) in cols.iter().zip(ratings) {
                let j = j as usize;
                let t = &other.effective[j * k..(j + 1) * k];
                h[..k].copy_from_slice(t);
                let target = rating as f64 - g.w0 - other.bias[j] - dot(&rest, t);
                // Upper triangle, one contiguous slice per row, so the loop vectorizes.
                for x in 0..d {
                    let hx = g.alpha * h[x];
                    rhs[x] += hx * target;
                    linalg::axpy(hx, &h[x..], &mut a[x * d + x..(x + 1) * d]);
                }
            }
            let mut rng = stream(seed, sweep, PHASE_ROWS, (side as usize) << 31 | r);
            draw(&mut a, &mut rhs, &mut rng, r)?;
            p.copy_from_slice(&rhs[..k]);
            *b = rhs[k];
            for x in 0..k {
                s[x] = rest[x] + p[x];
            }
            Ok(())
        })?;
    if rated.is_empty() {
        return Ok(());
    }

    // Rated sets: per row, `M = Σ t tᵀ` (upper triangle, packed row by row: half the memory
    // traffic of the sequential loop below) and `E = Σ e t` over its ratings (e the residual).
    let n_rows = rows.n_rows;
    let packed = k * (k + 1) / 2;
    let mut gram = vec![0.0; n_rows * packed];
    let mut et = vec![0.0; n_rows * k];
    gram.par_chunks_mut(packed)
        .zip(et.par_chunks_mut(k))
        .enumerate()
        .for_each(|(r, (m, e))| {
            let (cols, ratings) = rows.row(r);
            let s = &effective[r * k..(r + 1) * k];
            for (&j, &rating) in cols.iter().zip(ratings) {
                let j = j as usize;
                let t = &other.effective[j * k..(j + 1) * k];
                let resid = rating as f64 - g.w0 - bias[r] - other.bias[j] - dot(s, t);
                let mut at = 0;
                for x in 0..k {
                    e[x] += resid * t[x];
                    linalg::axpy(t[x], &t[x..], &mut m[at..at + k - x]);
                    at += k - x;
                }
            }
        });
    // Each `y_j` in turn, over the rows `r` that rated `j`: with `D = Σ_r n_r² M_r`, precision
    // `Λ + α D` and right-hand side `Λμ + α (Σ_r n_r E_r + D y_j)`.
    let mut rng = stream(seed, sweep, PHASE_RATED, side as usize);
    let mut data = vec![0.0; packed];
    let mut weighted = vec![0.0; k];
    let mut a = vec![0.0; k * k];
    let mut product = vec![0.0; k];
    for j in 0..columns.n_rows {
        let (raters, _) = columns.row(j);
        if raters.is_empty() {
            continue;
        }
        data.fill(0.0);
        weighted.fill(0.0);
        for &r in raters {
            let r = r as usize;
            let w = norm[r];
            linalg::axpy(w * w, &gram[r * packed..(r + 1) * packed], &mut data);
            linalg::axpy(w, &et[r * k..(r + 1) * k], &mut weighted);
        }
        let y = &mut rated[j * k..(j + 1) * k];
        packed_mat_vec(&data, y, &mut product);
        let mut rhs: Vec<f64> = (0..k)
            .map(|x| {
                prior_rated.lambda[x] * prior_rated.mu[x] + g.alpha * (weighted[x] + product[x])
            })
            .collect();
        let mut at = 0;
        for x in 0..k {
            for z in x..k {
                a[x * k + z] = g.alpha * data[at];
                at += 1;
            }
            a[x * k + x] += prior_rated.lambda[x];
        }
        draw(&mut a, &mut rhs, &mut rng, j)?;
        let delta: Vec<f64> = rhs.iter().zip(y.iter()).map(|(n, o)| n - o).collect();
        y.copy_from_slice(&rhs);
        for &r in raters {
            let r = r as usize;
            let w = norm[r];
            packed_mat_vec(&gram[r * packed..(r + 1) * packed], &delta, &mut product);
            linalg::axpy(w, &delta, &mut effective[r * k..(r + 1) * k]);
            linalg::axpy(-w, &product, &mut et[r * k..(r + 1) * k]);
        }
    }
    Ok(())
}

/// `out = M v` for symmetric `M` given as its packed upper triangle (row by row).
fn packed_mat_vec(m: &[f64], v: &[f64], out: &mut [f64]) {
    out.fill(0.0);
    let k = v.len();
    let mut at = 0;
    for x in 0..k {
        // Row x of the triangle times v, then the same entries as column x (below the diagonal).
        let row = &m[at..at + k - x];
        out[x] += dot(row, &v[x..]);
        linalg::axpy(v[x], &row[1..], &mut out[x + 1..]);
        at += k - x;
    }
}

/// Draws `w0`, then the noise precision `α ~ Gamma((A + N)/2, (B + Σ e²)/2)`; also returns that
/// `Σ e²`, the current draw's squared error over the training ratings.
fn sample_global(
    seed: u64,
    sweep: usize,
    by_user: &Csr,
    users: &Block,
    items: &Block,
    g: Global,
) -> (Global, f64) {
    let k = users.effective.len() / users.bias.len().max(1);
    // Per-user partial sums, added in user order: the same totals whatever the thread count.
    let partial: Vec<(f64, f64)> = (0..by_user.n_rows)
        .into_par_iter()
        .map(|u| {
            let (cols, ratings) = by_user.row(u);
            let s = &users.effective[u * k..(u + 1) * k];
            let (mut sum, mut sq) = (0.0, 0.0);
            for (&i, &rating) in cols.iter().zip(ratings) {
                let i = i as usize;
                let e = rating as f64
                    - g.w0
                    - users.bias[u]
                    - items.bias[i]
                    - dot(s, &items.effective[i * k..(i + 1) * k]);
                sum += e;
                sq += e * e;
            }
            (sum, sq)
        })
        .collect();
    let (sum, sq) = partial
        .iter()
        .fold((0.0, 0.0), |acc, p| (acc.0 + p.0, acc.1 + p.1));
    let n = by_user.nnz() as f64;
    let mut rng = stream(seed, sweep, PHASE_GLOBAL, 0);
    let precision = PRIOR_W0 + g.alpha * n;
    let mean = g.alpha * (sum + n * g.w0) / precision;
    let z: f64 = StandardNormal.sample(&mut rng);
    let w0 = mean + z / precision.sqrt();
    // Residuals shift by the change in w0.
    let delta = w0 - g.w0;
    let sq = sq - 2.0 * delta * sum + n * delta * delta;
    let alpha = gamma((PRIOR_A + n) / 2.0, (PRIOR_B + sq) / 2.0, &mut rng);
    (Global { w0, alpha }, sq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::als::{AlsParams, Solver};
    use rand::Rng;

    /// Ratings `3 + u·v` with rank-2 `u`, `v` plus Gaussian noise of `sd`, at `density`; every
    /// pair is either in the training table or the held-out one.
    fn planted(seed: u64, sd: f64, density: f64) -> (Interactions, Interactions) {
        let (n_users, n_items) = (60, 50);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = |rng: &mut ChaCha8Rng| -> f64 { StandardNormal.sample(rng) };
        let u: Vec<[f64; 2]> = (0..n_users)
            .map(|_| [normal(&mut rng), normal(&mut rng)])
            .collect();
        let v: Vec<[f64; 2]> = (0..n_items)
            .map(|_| [normal(&mut rng), normal(&mut rng)])
            .collect();
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (a, uu) in u.iter().enumerate() {
            for (b, vv) in v.iter().enumerate() {
                let r = 3.0 + uu[0] * vv[0] + uu[1] * vv[1] + sd * normal(&mut rng);
                let row = (a as u32, b as u32, r as f32);
                if rng.gen::<f64>() < density || a % n_items == b {
                    train.push(row);
                } else {
                    test.push(row);
                }
            }
        }
        (
            Interactions::from_rows(&train, n_users, n_items),
            Interactions::from_rows(&test, n_users, n_items),
        )
    }

    fn params(rank: usize, sweeps: usize, rated_sets: bool) -> ValidAlsParams {
        AlsParams::new()
            .rank(rank)
            .max_iter(sweeps)
            .biases(true)
            .solver(Solver::Gibbs)
            .rated_sets(rated_sets)
            .samples(Some(10))
            .check()
            .unwrap()
    }

    fn test_rmse(model: &AlsModel, test: &Interactions) -> f64 {
        let sq: f64 = (0..test.len())
            .map(|k| {
                let p = model.predict(test.user[k] as usize, test.item[k] as usize) as f64;
                (p - test.rating[k] as f64).powi(2)
            })
            .sum();
        (sq / test.len() as f64).sqrt()
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn kept_sweeps_are_evenly_spaced_after_burn_in_and_end_at_the_last() {
        let kept_of = |max_iter, burn_in, samples| -> Vec<usize> {
            (1..=max_iter)
                .filter(|&s| kept(s, max_iter, burn_in, samples))
                .collect()
        };
        assert_eq!(kept_of(10, 2, 4), vec![4, 6, 8, 10]);
        assert_eq!(kept_of(10, 2, 50), (3..=10).collect::<Vec<_>>());
        assert_eq!(kept_of(100, 20, 4), vec![40, 60, 80, 100]);
        assert_eq!(kept_of(5, 4, 1), vec![5]);
    }

    #[test]
    fn packed_upper_triangle_times_a_vector_is_the_full_symmetric_product() {
        let full = [[2.0, -1.0, 0.5], [-1.0, 3.0, 4.0], [0.5, 4.0, -2.0]];
        let packed = [2.0, -1.0, 0.5, 3.0, 4.0, -2.0];
        let v = [1.0, 2.0, -3.0];
        let mut out = [9.0; 3];
        packed_mat_vec(&packed, &v, &mut out);
        for x in 0..3 {
            let expected: f64 = (0..3).map(|z| full[x][z] * v[z]).sum();
            assert!((out[x] - expected).abs() < 1e-12, "{out:?}");
        }
    }

    #[test]
    fn the_saved_factors_predict_the_average_of_the_kept_samples() {
        let (train, _) = planted(1, 0.1, 0.5);
        let by_user = train.by_user();
        let by_item = train.by_item();
        let mut users = Block::new(&by_user, 3, false, 7, 0);
        let items = Block::new(&by_item, 3, false, 7, 1);
        let mut posterior = Posterior::new(by_user.n_rows, by_item.n_rows, 0);
        let mut by_hand = Vec::new();
        for (w0, shift) in [(3.0, 0.0), (3.5, 0.25)] {
            users.effective.iter_mut().for_each(|x| *x += shift);
            users.bias.iter_mut().for_each(|x| *x -= shift);
            let g = Global { w0, alpha: 1.0 };
            posterior.keep(&users, &items, g);
            by_hand.push(predict_all(&[(4, 9, 0.0)], &users, &items, g)[0]);
        }
        let model = posterior.into_model(3);
        assert_eq!(model.rank(), 6);
        let mean = (by_hand[0] + by_hand[1]) / 2.0;
        assert!((model.predict(4, 9) as f64 - mean).abs() < 1e-5);
    }

    #[test]
    fn recovers_a_planted_low_rank_matrix_to_the_noise_level() {
        let (train, test) = planted(2, 0.3, 0.5);
        let mean = train.rating.iter().map(|&r| r as f64).sum::<f64>() / train.len() as f64;
        let baseline = (test
            .rating
            .iter()
            .map(|&r| (r as f64 - mean).powi(2))
            .sum::<f64>()
            / test.len() as f64)
            .sqrt();
        for rated_sets in [false, true] {
            let model = fit(
                &params(2, 60, rated_sets),
                &train,
                None,
                &mut crate::model::als::each(|_| {}),
            )
            .unwrap();
            let rmse = test_rmse(&model, &test);
            assert!(rmse < 0.45, "rated_sets {rated_sets}: {rmse} vs noise 0.3");
            assert!(rmse < baseline / 3.0, "{rmse} vs the mean's {baseline}");
        }
    }

    #[test]
    fn same_seed_same_model_whatever_the_thread_count() {
        let (train, _) = planted(3, 0.2, 0.4);
        let p = params(3, 8, true);
        let one = pool(1)
            .install(|| fit(&p, &train, None, &mut crate::model::als::each(|_| {})).unwrap());
        let two = pool(2)
            .install(|| fit(&p, &train, None, &mut crate::model::als::each(|_| {})).unwrap());
        assert_eq!(one, two);
        let other = fit(
            &AlsParams::from(p).seed(43).check().unwrap(),
            &train,
            None,
            &mut crate::model::als::each(|_| {}),
        )
        .unwrap();
        assert_ne!(one, other);
    }

    #[test]
    fn rated_set_updates_keep_each_vector_equal_to_its_own_part_plus_its_rated_set() {
        let (train, _) = planted(4, 0.2, 0.4);
        let (by_user, by_item) = (train.by_user(), train.by_item());
        let k = 3;
        let mut users = Block::new(&by_user, k, true, 5, 0);
        let mut items = Block::new(&by_item, k, true, 5, 1);
        let g = Global {
            w0: 3.0,
            alpha: 4.0,
        };
        for sweep in 1..=3 {
            half_sweep(5, sweep, 0, &by_user, &by_item, &mut users, &items, g).ok();
            half_sweep(5, sweep, 1, &by_item, &by_user, &mut items, &users, g).ok();
        }
        for (block, rows) in [(&users, &by_user), (&items, &by_item)] {
            for r in 0..rows.n_rows {
                let (cols, _) = rows.row(r);
                for x in 0..k {
                    let sum: f64 = cols.iter().map(|&j| block.rated[j as usize * k + x]).sum();
                    let expected = block.own[r * k + x] + block.norm[r] * sum;
                    assert!(
                        (block.effective[r * k + x] - expected).abs() < 1e-9,
                        "row {r} dim {x}"
                    );
                }
            }
        }
        assert!(users.rated.iter().any(|&v| v != 0.0));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        #[test]
        fn samples_are_finite_and_rows_without_ratings_stay_zero(
            seed in 0u64..1000,
            rated_sets in proptest::prelude::any::<bool>(),
        ) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let rows: Vec<(u32, u32, f32)> = (0..30)
                .map(|_| (rng.gen_range(0..8), rng.gen_range(0..9), rng.gen_range(1.0..5.0)))
                .collect();
            let train = Interactions::from_rows(&rows, 10, 10);
            let p = AlsParams::from(params(3, 6, rated_sets)).seed(seed).check().unwrap();
            let m = fit(&p, &train, None, &mut crate::model::als::each(|_| {})).unwrap();
            proptest::prop_assert_eq!(m.user_factors.ncols(), 3 * 5);
            proptest::prop_assert!(m
                .user_factors
                .iter()
                .chain(m.item_factors.iter())
                .all(|v| v.is_finite()));
            proptest::prop_assert!(m.user_factors.row(9).iter().all(|&v| v == 0.0));
            proptest::prop_assert!(m.item_factors.row(9).iter().all(|&v| v == 0.0));
            proptest::prop_assert!(m.user_bias[9] == 0.0 && m.item_bias[9] == 0.0);
        }
    }

    #[test]
    fn reports_every_sweep_with_the_validation_rmse_of_the_posterior_mean() {
        let (train, test) = planted(5, 0.3, 0.5);
        let mut reports = Vec::new();
        let model = fit(
            &params(2, 12, false),
            &train,
            Some(&test),
            &mut crate::model::als::each(|r| reports.push(r.clone())),
        )
        .unwrap();
        assert_eq!(reports.len(), 12);
        assert!(reports
            .iter()
            .all(|r| r.train_loss.is_some_and(|l| l > 0.0)));
        let last = reports.last().unwrap().val_rmse.unwrap();
        assert!((last - test_rmse(&model, &test)).abs() < 1e-4, "{last}");
    }
}
