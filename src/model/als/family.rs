//! ALS as a model family: its parameters, the checked plan, and the fitted factor model.
//!
//! A fitted ALS model is kept as its prediction factors (biases folded in: user
//! `[x_u, mu + b_u, 1]`, item `[y_i, 1, b_i]`), so one dot product is the prediction and the same
//! matrices are what Spark's ALSModel layout stores. Loading a saved model gives the same type.

use std::path::Path;

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};

use super::explain::{self, GramCache, SolveParams};
use super::{fit, AlsModel, AlsParams, Confidence, RegScaling, Solver, ValidAlsParams, Weighting};
use crate::data::interactions::{Csr, Interactions};
use crate::model::artifact::{self, ArtifactError};
use crate::model::family::{
    Capabilities, Config, DataShape, Estimate, FamilyError, FamilyName, FitError, FitObserver,
    FitPlan, Flow, ParamKind, ParamReader, ParamSpec, ParamValue, Recommender,
};

const MAX_ITER_LIMIT: i64 = 10_000;

const FLOAT_GE0: ParamKind = ParamKind::Float {
    min: 0.0,
    max: f64::INFINITY,
    open_min: false,
};

const FLOAT_GT0: ParamKind = ParamKind::Float {
    min: 0.0,
    max: f64::INFINITY,
    open_min: true,
};

/// ALS's parameters, as a spec entry and `--param` take them.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec { name: "implicit", kind: ParamKind::Bool, default: "false", help: "implicit feedback: confidence 1 + alpha * rating (Hu, Koren, Volinsky)" },
    ParamSpec { name: "rank", kind: ParamKind::Int { min: 1, max: 100_000 }, default: "10", help: "latent factors" },
    ParamSpec { name: "reg", kind: FLOAT_GE0, default: "0.1", help: "regularization (scaled by each row's count unless reg_scaling = \"none\"); not used by gibbs" },
    ParamSpec { name: "alpha", kind: FLOAT_GE0, default: "1.0", help: "confidence weight of implicit feedback" },
    ParamSpec { name: "max_iter", kind: ParamKind::Int { min: 1, max: MAX_ITER_LIMIT }, default: "10 (200 sweeps for gibbs)", help: "iterations (sweeps for gibbs)" },
    ParamSpec { name: "solver", kind: ParamKind::Choice(&["cholesky", "cg", "gibbs"]), default: "cholesky", help: "row solver; gibbs samples the posterior (Bayesian ALS, explicit only)" },
    ParamSpec { name: "cg_steps", kind: ParamKind::Int { min: 1, max: 1_000 }, default: "3", help: "conjugate-gradient steps per row (solver cg)" },
    ParamSpec { name: "biases", kind: ParamKind::Bool, default: "true for explicit, false for implicit", help: "learn global, user and item biases" },
    ParamSpec { name: "reg_scaling", kind: ParamKind::Choice(&["count", "none"]), default: "count", help: "count: reg x each row's rating count (Spark); none: reg (implicit)" },
    ParamSpec { name: "seed", kind: ParamKind::Int { min: 0, max: i64::MAX }, default: "the split seed", help: "seed of the initial factors (and the sampler)" },
    ParamSpec { name: "burn_in", kind: ParamKind::Int { min: 0, max: MAX_ITER_LIMIT }, default: "a fifth of max_iter", help: "gibbs: sweeps discarded before samples are kept" },
    ParamSpec { name: "samples", kind: ParamKind::Int { min: 1, max: MAX_ITER_LIMIT }, default: "50", help: "gibbs: samples kept after burn-in" },
    ParamSpec { name: "rated_sets", kind: ParamKind::Bool, default: "false", help: "gibbs: each user's rated items and each item's raters as features (SVD++-style)" },
    ParamSpec { name: "reg_bias", kind: FLOAT_GE0, default: "reg", help: "the biases' regularization apart from the factors': a damping constant, never scaled by count" },
    ParamSpec { name: "confidence", kind: ParamKind::Choice(&["linear", "log"]), default: "linear", help: "implicit: 1 + alpha * r, or 1 + alpha * ln(1 + r / epsilon)" },
    ParamSpec { name: "epsilon", kind: FLOAT_GT0, default: "1.0", help: "implicit, confidence = \"log\": where the log bends" },
    ParamSpec { name: "weighting", kind: ParamKind::Choice(&["none", "bm25", "tfidf"]), default: "none", help: "implicit: weight the ratings first (benfred/implicit's bm25_weight, tfidf_weight)" },
    ParamSpec { name: "bm25_k1", kind: FLOAT_GE0, default: "100", help: "weighting = \"bm25\": K1" },
    ParamSpec { name: "bm25_b", kind: ParamKind::Float { min: 0.0, max: 1.0, open_min: false }, default: "0.8", help: "weighting = \"bm25\": B" },
];

/// Options every plan gets from the run, not from the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Per-iteration training loss and validation RMSE (learning curves).
    pub curves: bool,
    /// Seed used when the configuration has none.
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            curves: true,
            seed: 42,
        }
    }
}

/// Checked ALS parameters from a configuration.
pub fn plan(config: &Config, options: &FitOptions) -> Result<AlsPlan, FamilyError> {
    let r = ParamReader::new(FamilyName::Als, PARAMS, config)?;
    let implicit = r.bool("implicit")?.unwrap_or(false);
    let solver: Solver = r.choice("solver")?.unwrap_or_default();
    if solver == Solver::Gibbs && r.has("reg") {
        return Err(FamilyError::Rule(
            "the gibbs solver learns its priors: remove `reg` (it is not used)".into(),
        ));
    }
    let p = AlsParams::new()
        .implicit(implicit)
        .solver(solver)
        .rank(r.usize("rank")?.unwrap_or(crate::settings::defaults::RANK))
        .reg(r.float("reg")?.unwrap_or(crate::settings::defaults::REG))
        .alpha(
            r.float("alpha")?
                .unwrap_or(crate::settings::defaults::ALPHA),
        )
        .max_iter(r.usize("max_iter")?.unwrap_or(solver.default_max_iter()))
        .cg_steps(
            r.usize("cg_steps")?
                .unwrap_or(crate::settings::defaults::CG_STEPS),
        )
        .biases(r.bool("biases")?.unwrap_or(!implicit))
        .reg_scaling(r.choice::<RegScaling>("reg_scaling")?.unwrap_or_default())
        .seed(r.int("seed")?.map_or(options.seed, |s| s as u64))
        .burn_in(r.usize("burn_in")?)
        .samples(r.usize("samples")?)
        .rated_sets(r.bool("rated_sets")?.unwrap_or(false))
        .reg_bias(r.float("reg_bias")?)
        .confidence(r.choice::<Confidence>("confidence")?.unwrap_or_default())
        .epsilon(r.float("epsilon")?.unwrap_or(1.0))
        .weighting(r.choice::<Weighting>("weighting")?.unwrap_or_default())
        .curves(options.curves);
    let defaults = AlsParams::new().check().expect("the defaults are valid");
    let p = p.bm25(
        r.float("bm25_k1")?.unwrap_or(defaults.bm25_k1()),
        r.float("bm25_b")?.unwrap_or(defaults.bm25_b()),
    );
    if solver != Solver::Cg && r.has("cg_steps") {
        return Err(FamilyError::Rule(
            "`cg_steps` is used by `solver = \"cg\"` only".into(),
        ));
    }
    if solver != Solver::Gibbs {
        for key in ["burn_in", "samples"] {
            if r.has(key) {
                return Err(FamilyError::Rule(format!(
                    "`{key}` is used by `solver = \"gibbs\"` only"
                )));
            }
        }
    }
    for key in [
        "alpha",
        "confidence",
        "epsilon",
        "weighting",
        "bm25_k1",
        "bm25_b",
    ] {
        if !implicit && r.has(key) {
            return Err(FamilyError::Rule(format!(
                "`{key}` is used by implicit models only (`implicit = true`)"
            )));
        }
    }
    // A key that would change nothing is refused, so a logged param always mattered.
    let confidence = r.choice::<Confidence>("confidence")?.unwrap_or_default();
    if confidence != Confidence::Log && r.has("epsilon") {
        return Err(FamilyError::Rule(
            "`epsilon` is used by `confidence = \"log\"` only".into(),
        ));
    }
    let weighting = r.choice::<Weighting>("weighting")?.unwrap_or_default();
    if weighting != Weighting::Bm25 && (r.has("bm25_k1") || r.has("bm25_b")) {
        return Err(FamilyError::Rule(
            "`bm25_k1` and `bm25_b` are used by `weighting = \"bm25\"` only".into(),
        ));
    }
    if r.has("reg_bias") && (solver == Solver::Gibbs || !r.bool("biases")?.unwrap_or(!implicit)) {
        return Err(FamilyError::Rule(
            "`reg_bias` needs biases (`biases = true`) and a solver other than gibbs".into(),
        ));
    }
    let params = p.check().map_err(|e| FamilyError::Rule(e.to_string()))?;
    Ok(AlsPlan { params })
}

/// A checked ALS configuration.
#[derive(Debug, Clone)]
pub struct AlsPlan {
    pub params: ValidAlsParams,
}

impl FitPlan for AlsPlan {
    fn family(&self) -> FamilyName {
        FamilyName::Als
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            predicts_ratings: !self.params.implicit(),
            ranks: true,
            iterative: true,
        }
    }

    fn estimate(&self, shape: &DataShape) -> Estimate {
        let p = &self.params;
        let rows = (shape.n_users + shape.n_items) as u64;
        let rank = p.rank() as u64 + 2;
        // Factors, the copy an observer takes and the folded scoring factors; the data twice
        // more as user- and item-major matrices.
        let mut bytes = rows * rank * 4 * 3 + shape.n_ratings as u64 * 8 * 2;
        let mut what = "the factor matrices".to_string();
        if p.solver() == Solver::Gibbs {
            let kept = rows * p.rank() as u64 * p.samples() as u64 * 4 * 2;
            bytes += kept;
            what = format!("{} kept samples of the factors", p.samples());
            if p.rated_sets() {
                bytes += rows * (p.rank() as u64).pow(2) * 8 / 2;
            }
        }
        // METRICS.md's per-iteration arithmetic: 2Nf(f+1) + 4Nf + (m+n)(f³/3 + 2f²).
        let (n, f, rows) = (
            shape.n_ratings as f64,
            p.rank() as f64,
            (shape.n_users + shape.n_items) as f64,
        );
        let mut per_iter =
            2.0 * n * f * (f + 1.0) + 4.0 * n * f + rows * (f.powi(3) / 3.0 + 2.0 * f * f);
        if p.implicit() {
            per_iter += rows * f * f;
        }
        if p.rated_sets() {
            per_iter *= 4.0;
        }
        Estimate {
            bytes,
            what,
            flop: per_iter * p.max_iter() as f64,
        }
    }

    fn check_shape(&self, shape: &DataShape) -> Result<(), FamilyError> {
        let smaller = shape.n_users.min(shape.n_items);
        if self.params.rank() > smaller {
            return Err(FamilyError::OutOfRange {
                name: "rank".into(),
                value: self.params.rank().to_string(),
                range: format!(
                    "at most the smaller side of the data ({} users, {} items)",
                    shape.n_users, shape.n_items
                ),
            });
        }
        Ok(())
    }

    fn used_params(&self) -> Config {
        let p = &self.params;
        let mut c = Config::new();
        let mut put = |k: &str, v: ParamValue| {
            c.insert(k.to_string(), v);
        };
        put("implicit", p.implicit().into());
        put("solver", p.solver().to_string().as_str().into());
        put("rank", p.rank().into());
        put("max_iter", p.max_iter().into());
        put("biases", p.biases().into());
        put("seed", (p.seed() as i64).into());
        match p.solver() {
            Solver::Gibbs => {
                put("burn_in", p.burn_in().into());
                put("samples", p.samples().into());
                put("rated_sets", p.rated_sets().into());
            }
            solver => {
                put("reg", p.reg().into());
                put("reg_scaling", p.reg_scaling().to_string().as_str().into());
                if solver == Solver::Cg {
                    put("cg_steps", p.cg_steps().into());
                }
            }
        }
        if p.has_reg_bias() {
            put("reg_bias", p.reg_bias().into());
        }
        if p.implicit() {
            put("alpha", p.alpha().into());
            put("confidence", p.confidence().to_string().as_str().into());
            if p.confidence() == Confidence::Log {
                put("epsilon", p.epsilon().into());
            }
            put("weighting", p.weighting().to_string().as_str().into());
            if p.weighting() == Weighting::Bm25 {
                put("bm25_k1", p.bm25_k1().into());
                put("bm25_b", p.bm25_b().into());
            }
        }
        c
    }

    fn fit(
        &self,
        train: &Interactions,
        validation: Option<&Interactions>,
        observer: &mut dyn FitObserver,
    ) -> Result<Box<dyn Recommender>, FitError> {
        let mut on_iter = |r: &super::IterationReport, current: &dyn Fn() -> AlsModel| {
            if observer.cancelled() {
                return Flow::Stop;
            }
            let snapshot = || -> Box<dyn Recommender> {
                Box::new(FactorModel::from_als(&current(), &self.params))
            };
            observer.iteration(r, &snapshot)
        };
        let model = fit(&self.params, train, validation, &mut on_iter)?;
        if observer.cancelled() {
            return Err(FitError::Cancelled);
        }
        Ok(Box::new(FactorModel::from_als(&model, &self.params)))
    }
}

/// A factor model: `users.row(u) · items.row(i)` is the score (and, when `predicts`, the
/// predicted rating).
#[derive(Debug, Clone, PartialEq)]
pub struct FactorModel {
    pub users: Array2<f32>,
    pub items: Array2<f32>,
    /// Explicit ALS predicts ratings; implicit ALS predicts preferences.
    pub predicts: bool,
    /// Leading columns that are latent factors (the folded bias columns excluded), for
    /// item similarity.
    pub latent: usize,
    /// How the fit solved a user's factor, for explanations.
    pub solve: SolveParams,
    pub gram: GramCache,
}

impl FactorModel {
    pub fn from_als(m: &AlsModel, params: &ValidAlsParams) -> Self {
        let (users, items) = m.prediction_factors();
        let latent = m.rank();
        Self {
            users,
            items,
            predicts: !m.implicit,
            latent,
            solve: SolveParams {
                reg: params.reg(),
                scale_by_count: params.reg_scaling() == RegScaling::Count,
                implicit_alpha: m.implicit.then(|| params.alpha()),
            },
            gram: GramCache::default(),
        }
    }

    /// A model from its factor matrices, explained with Spark's default solve settings.
    pub fn new(users: Array2<f32>, items: Array2<f32>, predicts: bool, latent: usize) -> Self {
        Self {
            users,
            items,
            predicts,
            latent,
            solve: SolveParams {
                implicit_alpha: (!predicts).then_some(1.0),
                ..SolveParams::default()
            },
            gram: GramCache::default(),
        }
    }

    /// Unit-length latent item rows, for cosine similarity (a zero row stays zero).
    pub fn unit_items(&self) -> Array2<f32> {
        let mut v = self.items.slice(s![.., ..self.latent]).to_owned();
        for mut row in v.axis_iter_mut(Axis(0)) {
            let n = row.dot(&row).sqrt();
            if n > 0.0 {
                row /= n;
            }
        }
        v
    }
}

impl Recommender for FactorModel {
    fn family(&self) -> FamilyName {
        FamilyName::Als
    }
    fn n_users(&self) -> usize {
        self.users.nrows()
    }
    fn n_items(&self) -> usize {
        self.items.nrows()
    }
    fn predicts_ratings(&self) -> bool {
        self.predicts
    }
    fn predict(&self, user: u32, item: u32) -> Option<f32> {
        let (u, i) = (user as usize, item as usize);
        if !self.predicts || u >= self.n_users() || i >= self.n_items() {
            return None;
        }
        Some(self.users.row(u).dot(&self.items.row(i)))
    }
    fn ranking_factors(&self) -> Option<(ArrayView2<'_, f32>, ArrayView2<'_, f32>)> {
        Some((self.users.view(), self.items.view()))
    }
    fn score_block(&self, users: &[u32], _history: &Csr, mut out: ArrayViewMut2<'_, f32>) {
        for (r, &u) in users.iter().enumerate() {
            let row = self.users.row(u as usize);
            for (i, o) in out.row_mut(r).iter_mut().enumerate() {
                *o = row.dot(&self.items.row(i));
            }
        }
    }
    fn similar_items(&self, item: u32, k: usize) -> Vec<(u32, f32)> {
        let unit = self.unit_items();
        let Some(q) = unit.outer_iter().nth(item as usize) else {
            return Vec::new();
        };
        let scores = unit.dot(&q);
        let mut top = crate::eval::topk::TopK::new(k + 1);
        top.scan(scores.as_slice().unwrap_or(&scores.to_vec()), 0);
        top.into_sorted()
            .into_iter()
            .filter(|&(i, _)| i != item)
            .take(k)
            .collect()
    }
    fn explain(&self, user: u32, item: u32, history: &Csr, k: usize) -> Vec<(u32, f32)> {
        let Some(row) = self.users.outer_iter().nth(user as usize) else {
            return Vec::new();
        };
        explain::explain(
            row,
            &self.items,
            self.latent,
            self.solve,
            &self.gram,
            history,
            user as usize,
            item as usize,
            k,
        )
    }
    fn without_factors(&self) -> Option<Box<dyn Recommender>> {
        if !self.predicts {
            return None;
        }
        let mut m = self.clone();
        m.users.slice_mut(s![.., ..self.latent]).fill(0.0);
        Some(Box::new(m))
    }
    fn save(&self, dir: &Path) -> Result<(), ArtifactError> {
        artifact::write_spark_layout(dir, &self.users, &self.items)
    }
}

/// Reads a saved factor model; `params` are the saved parameters (for explanations).
pub fn load(
    dir: &Path,
    predicts: bool,
    latent: usize,
    params: &Config,
) -> Result<FactorModel, ArtifactError> {
    let (users, items) = artifact::read_spark_layout(dir)?;
    let latent = latent.min(items.ncols());
    let mut m = FactorModel::new(users, items, predicts, latent);
    let float = |k: &str| params.get(k).and_then(ParamValue::as_f64);
    m.solve.reg = float("reg").unwrap_or(m.solve.reg);
    m.solve.scale_by_count =
        !matches!(params.get("reg_scaling"), Some(ParamValue::Str(s)) if s == "none");
    if m.solve.implicit_alpha.is_some() {
        m.solve.implicit_alpha = Some(float("alpha").unwrap_or(1.0));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, ParamValue)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn defaults_follow_spark_and_biases_follow_feedback() {
        let p = plan(&Config::new(), &FitOptions::default()).unwrap().params;
        assert_eq!((p.rank(), p.reg(), p.max_iter()), (10, 0.1, 10));
        assert!(p.biases() && !p.implicit());
        let p = plan(
            &config(&[("implicit", true.into())]),
            &FitOptions::default(),
        )
        .unwrap()
        .params;
        assert!(!p.biases());
        let p = plan(
            &config(&[("solver", "gibbs".into())]),
            &FitOptions::default(),
        )
        .unwrap()
        .params;
        assert_eq!(p.max_iter(), 200);
    }

    #[test]
    fn parameters_the_variant_does_not_use_are_refused() {
        for c in [
            config(&[("solver", "gibbs".into()), ("reg", 0.1.into())]),
            config(&[("cg_steps", 3.into())]),
            config(&[("samples", 3.into())]),
            config(&[("alpha", 1.0.into())]),
        ] {
            assert!(matches!(
                plan(&c, &FitOptions::default()),
                Err(FamilyError::Rule(_))
            ));
        }
    }

    #[test]
    fn a_rank_above_the_smaller_side_is_refused() {
        let p = plan(&config(&[("rank", 50.into())]), &FitOptions::default()).unwrap();
        let shape = DataShape {
            n_users: 1000,
            n_items: 20,
            n_ratings: 5000,
        };
        assert!(matches!(
            p.check_shape(&shape),
            Err(FamilyError::OutOfRange { .. })
        ));
        assert!(p.estimate(&shape).bytes > 0);
    }

    #[test]
    fn a_huge_rank_is_refused_before_any_work() {
        let c = config(&[("rank", ParamValue::Int(100_000_000))]);
        let e = plan(&c, &FitOptions::default()).unwrap_err();
        assert!(matches!(e, FamilyError::OutOfRange { .. }), "{e}");
        assert!(e.to_string().contains("`rank`"), "{e}");
    }

    #[test]
    fn the_als_memory_estimate_grows_with_rank_and_names_both_figures() {
        let small = plan(&config(&[("rank", 10.into())]), &FitOptions::default()).unwrap();
        let big = plan(&config(&[("rank", 100_000.into())]), &FitOptions::default()).unwrap();
        let shape = DataShape {
            n_users: 1_000_000,
            n_items: 1_000_000,
            n_ratings: 10,
        };
        let (s, b) = (small.estimate(&shape).bytes, big.estimate(&shape).bytes);
        assert!(b > s * 1000 && b >= 2_000_000u64 * 100_000 * 4, "{s} {b}");
        let e = FamilyError::TooBig {
            family: FamilyName::Als,
            what: "the factor matrices".into(),
            need_mb: b >> 20,
            have_mb: 1024,
        };
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("{} MB", b >> 20)) && msg.contains("1024 MB"),
            "{msg}"
        );
        assert!(e.hint().is_some());
    }

    #[test]
    fn max_iter_is_bounded() {
        let c = config(&[("max_iter", ParamValue::Int(99_999_999_999_999))]);
        assert!(matches!(
            plan(&c, &FitOptions::default()),
            Err(FamilyError::OutOfRange { .. })
        ));
    }

    #[test]
    fn used_params_hold_only_what_the_variant_uses() {
        let p = plan(&Config::new(), &FitOptions::default()).unwrap();
        let used = p.used_params();
        assert!(used.contains_key("reg") && !used.contains_key("alpha"));
        assert!(!used.contains_key("cg_steps") && !used.contains_key("samples"));
        let p = plan(
            &config(&[("implicit", true.into()), ("alpha", 1.0.into())]),
            &FitOptions::default(),
        )
        .unwrap();
        assert_eq!(p.used_params()["alpha"].to_string(), "1.0");
    }
}
