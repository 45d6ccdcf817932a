//! ALS hyper-parameters as a checked builder: [`AlsParams`] -> [`AlsParams::check`] ->
//! [`ValidAlsParams`], one error variant per rule.
//!
//! Only values live here; this module knows nothing about data, solvers or where the values come
//! from (command line, spec file). Both types serialize to the same flat record, and deserializing
//! a [`ValidAlsParams`] checks it again, so saved metadata can never smuggle in an invalid value.

use serde::{Deserialize, Serialize};
use thiserror::Error;

crate::named_enum! {
    /// How each row's least-squares problem is solved.
    #[derive(Default)]
    pub enum Solver: "solver" {
        /// Exact: form the normal equations and factor them (Cholesky).
        #[default]
        Cholesky = "cholesky",
        /// Conjugate gradient warm-started from the previous factors, `cg_steps` steps per row.
        Cg = "cg",
        /// Bayesian ALS: each row is drawn from its posterior given the other side (the same
        /// Cholesky-factored normal equations), priors and noise are sampled too, and the model is
        /// the average of the samples kept after burn-in. Explicit ratings with biases only; `reg`
        /// is not used (the priors are learned). `max_iter` counts sweeps.
        Gibbs = "gibbs",
    }
}

impl Solver {
    /// Iterations when none are given: Spark's 10 for ALS; 200 sweeps for the Gibbs sampler,
    /// whose model averages the samples kept after burn-in (MovieLens 100K: 0.886 RMSE at 200
    /// sweeps, 0.889 at 100).
    pub fn default_max_iter(self) -> usize {
        match self {
            Solver::Gibbs => 200,
            Solver::Cholesky | Solver::Cg => 10,
        }
    }
}

crate::named_enum! {
    /// How the regularization weight of a row grows with its number of ratings.
    #[derive(Default)]
    pub enum RegScaling: "reg scaling" {
        /// `reg * n` for a row with `n` ratings (Spark MLlib; for implicit feedback `n` counts the
        /// positive ones, as Spark does).
        #[default]
        Count = "count",
        /// `reg` for every row (benfred/implicit).
        None = "none",
    }
}

crate::named_enum! {
    /// How an implicit rating (a count) becomes a confidence, after [`Weighting`].
    #[derive(Default)]
    pub enum Confidence: "confidence" {
        /// `1 + alpha * r` (Hu, Koren and Volinsky's first form; Spark MLlib).
        #[default]
        Linear = "linear",
        /// `1 + alpha * ln(1 + r / epsilon)` (Hu, Koren and Volinsky's log form): a play count
        /// of 10,000 no longer outweighs everything else a user did.
        Log = "log",
    }
}

crate::named_enum! {
    /// A weighting of the implicit ratings before the confidence is taken, as benfred/implicit
    /// offers (`bm25_weight`, `tfidf_weight`): items are the documents and users the terms.
    #[derive(Default)]
    pub enum Weighting: "weighting" {
        #[default]
        None = "none",
        /// `r (K1 + 1) / (K1 * norm_i + r) * idf_u`, with `norm_i = 1 - B + B * len_i / mean len`
        /// (an item's summed ratings) and `idf_u = ln(n_items / (1 + n_u))`.
        Bm25 = "bm25",
        /// `sqrt(r) * idf_u`.
        Tfidf = "tfidf",
    }
}

/// A hyper-parameter that breaks a rule.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlsParamsError {
    #[error("rank must be at least 1, got `0`")]
    ZeroRank,
    #[error("reg must be a finite number >= 0, got `{0}`")]
    InvalidReg(f64),
    #[error("alpha must be a finite number >= 0, got `{0}`")]
    InvalidAlpha(f64),
    #[error("max_iter must be at least 1, got `0`")]
    ZeroMaxIter,
    #[error("cg_steps must be at least 1, got `0`")]
    ZeroCgSteps,
    #[error("the gibbs solver fits explicit ratings only")]
    GibbsImplicit,
    #[error("the gibbs solver always learns biases; turn biases on")]
    GibbsWithoutBiases,
    #[error("burn_in `{burn_in}` must be below max_iter `{max_iter}`, so some samples are kept")]
    BurnIn { burn_in: usize, max_iter: usize },
    #[error("samples must be at least 1, got `0`")]
    ZeroSamples,
    #[error("rated_sets needs the gibbs solver")]
    RatedSetsWithoutGibbs,
    #[error("`{0}` is used by implicit models only (`implicit = true`)")]
    ImplicitOnly(&'static str),
    #[error("epsilon must be a finite number > 0, got `{0}`")]
    InvalidEpsilon(f64),
    #[error("bm25_k1 must be a finite number >= 0, got `{0}`")]
    InvalidBm25K1(f64),
    #[error("bm25_b must be between 0 and 1, got `{0}`")]
    InvalidBm25B(f64),
    #[error("reg_bias must be a finite number >= 0, got `{0}`")]
    InvalidRegBias(f64),
    #[error("reg_bias needs biases (`biases = true`) and a solver other than gibbs")]
    RegBiasWithoutBiases,
}

/// Unchecked hyper-parameters. Defaults follow Spark MLlib: rank 10, reg 0.1, alpha 1.0,
/// max_iter 10, explicit feedback, regularization scaled by count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlsParams {
    rank: usize,
    reg: f64,
    alpha: f64,
    max_iter: usize,
    implicit: bool,
    solver: Solver,
    cg_steps: usize,
    biases: bool,
    reg_scaling: RegScaling,
    seed: u64,
    /// Report the objective and the validation RMSE after every iteration (learning curves);
    /// the peers compute neither.
    curves: bool,
    /// Gibbs: sweeps discarded before samples are kept (default: a fifth of `max_iter`, filled
    /// in by [`AlsParams::check`] so saved parameters show the value used).
    #[serde(skip_serializing_if = "Option::is_none")]
    burn_in: Option<usize>,
    /// Gibbs: how many of the sweeps after burn-in are kept, evenly spaced; the saved factors
    /// have `rank × samples` columns.
    samples: usize,
    /// Gibbs: add each user's set of rated items and each item's set of raters as features
    /// (SVD++'s implicit feedback, on both sides).
    rated_sets: bool,
    /// Implicit: how a (weighted) rating becomes a confidence.
    confidence: Confidence,
    /// Implicit, `confidence = log`: the count at which the log form bends.
    epsilon: f64,
    /// Implicit: BM25 or TF-IDF weighting of the ratings first.
    weighting: Weighting,
    bm25_k1: f64,
    bm25_b: f64,
    /// Regularization of the biases when it should differ from the factors' `reg` (same
    /// scaling). Sparse data want shrunk factors and barely shrunk biases; one `reg` for both
    /// makes selection choose a biases-only model.
    #[serde(skip_serializing_if = "Option::is_none")]
    reg_bias: Option<f64>,
}

impl Default for AlsParams {
    fn default() -> Self {
        Self {
            rank: 10,
            reg: 0.1,
            alpha: 1.0,
            max_iter: 10,
            implicit: false,
            solver: Solver::Cholesky,
            cg_steps: 3,
            biases: false,
            reg_scaling: RegScaling::Count,
            seed: 42,
            curves: true,
            burn_in: None,
            samples: 50,
            rated_sets: false,
            confidence: Confidence::Linear,
            epsilon: 1.0,
            weighting: Weighting::None,
            // benfred/implicit's `bm25_weight` defaults, tuned there on Last.fm play counts.
            bm25_k1: 100.0,
            bm25_b: 0.8,
            reg_bias: None,
        }
    }
}

impl AlsParams {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of latent factors.
    pub fn rank(mut self, rank: usize) -> Self {
        self.rank = rank;
        self
    }

    /// Regularization weight (see [`RegScaling`]).
    pub fn reg(mut self, reg: f64) -> Self {
        self.reg = reg;
        self
    }

    /// Implicit feedback: confidence `1 + alpha * |r|`.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Number of full iterations (each solves users, then items).
    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Treat ratings as implicit feedback (Hu, Koren and Volinsky 2008).
    pub fn implicit(mut self, implicit: bool) -> Self {
        self.implicit = implicit;
        self
    }

    pub fn solver(mut self, solver: Solver) -> Self {
        self.solver = solver;
        self
    }

    /// Conjugate-gradient steps per row and half-iteration (used by [`Solver::Cg`]).
    pub fn cg_steps(mut self, cg_steps: usize) -> Self {
        self.cg_steps = cg_steps;
        self
    }

    /// Learn user and item biases (and, for explicit feedback, the global mean).
    pub fn biases(mut self, biases: bool) -> Self {
        self.biases = biases;
        self
    }

    pub fn reg_scaling(mut self, reg_scaling: RegScaling) -> Self {
        self.reg_scaling = reg_scaling;
        self
    }

    /// Seed of the random initial factors.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn confidence(mut self, confidence: Confidence) -> Self {
        self.confidence = confidence;
        self
    }

    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    pub fn weighting(mut self, weighting: Weighting) -> Self {
        self.weighting = weighting;
        self
    }

    pub fn bm25(mut self, k1: f64, b: f64) -> Self {
        self.bm25_k1 = k1;
        self.bm25_b = b;
        self
    }

    /// Regularization of the biases; `None` uses `reg`.
    pub fn reg_bias(mut self, reg_bias: Option<f64>) -> Self {
        self.reg_bias = reg_bias;
        self
    }

    /// Checks every rule without consuming the parameters.
    pub fn check_ref(&self) -> Result<(), AlsParamsError> {
        if self.rank == 0 {
            return Err(AlsParamsError::ZeroRank);
        }
        if !self.reg.is_finite() || self.reg < 0.0 {
            return Err(AlsParamsError::InvalidReg(self.reg));
        }
        if !self.alpha.is_finite() || self.alpha < 0.0 {
            return Err(AlsParamsError::InvalidAlpha(self.alpha));
        }
        if self.max_iter == 0 {
            return Err(AlsParamsError::ZeroMaxIter);
        }
        if self.cg_steps == 0 {
            return Err(AlsParamsError::ZeroCgSteps);
        }
        if self.solver == Solver::Gibbs {
            if self.implicit {
                return Err(AlsParamsError::GibbsImplicit);
            }
            if !self.biases {
                return Err(AlsParamsError::GibbsWithoutBiases);
            }
            if let Some(burn_in) = self.burn_in.filter(|&b| b >= self.max_iter) {
                return Err(AlsParamsError::BurnIn {
                    burn_in,
                    max_iter: self.max_iter,
                });
            }
            if self.samples == 0 {
                return Err(AlsParamsError::ZeroSamples);
            }
        } else if self.rated_sets {
            return Err(AlsParamsError::RatedSetsWithoutGibbs);
        }
        if !self.implicit {
            if self.confidence != Confidence::Linear {
                return Err(AlsParamsError::ImplicitOnly("confidence"));
            }
            if self.weighting != Weighting::None {
                return Err(AlsParamsError::ImplicitOnly("weighting"));
            }
        }
        if !self.epsilon.is_finite() || self.epsilon <= 0.0 {
            return Err(AlsParamsError::InvalidEpsilon(self.epsilon));
        }
        if !self.bm25_k1.is_finite() || self.bm25_k1 < 0.0 {
            return Err(AlsParamsError::InvalidBm25K1(self.bm25_k1));
        }
        if !(0.0..=1.0).contains(&self.bm25_b) {
            return Err(AlsParamsError::InvalidBm25B(self.bm25_b));
        }
        if let Some(r) = self.reg_bias {
            if !r.is_finite() || r < 0.0 {
                return Err(AlsParamsError::InvalidRegBias(r));
            }
            if !self.biases || self.solver == Solver::Gibbs {
                return Err(AlsParamsError::RegBiasWithoutBiases);
            }
        }
        Ok(())
    }

    /// Whether every iteration reports the training objective and, given validation ratings,
    /// their RMSE (on by default; together they cost about a tenth of an iteration).
    pub fn curves(mut self, curves: bool) -> Self {
        self.curves = curves;
        self
    }

    /// Gibbs: sweeps discarded before samples are kept.
    pub fn burn_in(mut self, burn_in: Option<usize>) -> Self {
        self.burn_in = burn_in;
        self
    }

    /// Gibbs: number of kept samples (default 50); `None` keeps the current value.
    pub fn samples(mut self, samples: Option<usize>) -> Self {
        if let Some(samples) = samples {
            self.samples = samples;
        }
        self
    }

    /// Gibbs: rated-set features (SVD++-style implicit feedback on both sides).
    pub fn rated_sets(mut self, rated_sets: bool) -> Self {
        self.rated_sets = rated_sets;
        self
    }

    /// Checks every rule and returns parameters the model can be fitted with.
    pub fn check(mut self) -> Result<ValidAlsParams, AlsParamsError> {
        self.check_ref()?;
        if self.solver == Solver::Gibbs {
            self.burn_in = Some(self.burn_in.unwrap_or(self.max_iter / 5));
        }
        Ok(ValidAlsParams(self))
    }
}

/// Checked hyper-parameters, the only form [`fit`](super::fit()) accepts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "AlsParams", into = "AlsParams")]
pub struct ValidAlsParams(AlsParams);

impl TryFrom<AlsParams> for ValidAlsParams {
    type Error = AlsParamsError;

    fn try_from(params: AlsParams) -> Result<Self, Self::Error> {
        params.check()
    }
}

impl From<ValidAlsParams> for AlsParams {
    /// Back to the builder, to change a value and check again.
    fn from(valid: ValidAlsParams) -> Self {
        valid.0
    }
}

impl ValidAlsParams {
    pub fn rank(&self) -> usize {
        self.0.rank
    }
    pub fn reg(&self) -> f64 {
        self.0.reg
    }
    pub fn alpha(&self) -> f64 {
        self.0.alpha
    }
    pub fn max_iter(&self) -> usize {
        self.0.max_iter
    }
    pub fn implicit(&self) -> bool {
        self.0.implicit
    }
    pub fn solver(&self) -> Solver {
        self.0.solver
    }
    pub fn cg_steps(&self) -> usize {
        self.0.cg_steps
    }
    pub fn biases(&self) -> bool {
        self.0.biases
    }
    pub fn reg_scaling(&self) -> RegScaling {
        self.0.reg_scaling
    }
    pub fn seed(&self) -> u64 {
        self.0.seed
    }
    pub fn curves(&self) -> bool {
        self.0.curves
    }
    /// Sweeps discarded before samples are kept (Gibbs): as given, else a fifth of `max_iter`.
    pub fn burn_in(&self) -> usize {
        self.0.burn_in.unwrap_or(self.0.max_iter / 5)
    }
    pub fn samples(&self) -> usize {
        self.0.samples
    }
    pub fn rated_sets(&self) -> bool {
        self.0.rated_sets
    }
    pub fn confidence(&self) -> Confidence {
        self.0.confidence
    }
    pub fn epsilon(&self) -> f64 {
        self.0.epsilon
    }
    pub fn weighting(&self) -> Weighting {
        self.0.weighting
    }
    pub fn bm25_k1(&self) -> f64 {
        self.0.bm25_k1
    }
    pub fn bm25_b(&self) -> f64 {
        self.0.bm25_b
    }
    /// The biases' regularization: `reg_bias` when given, else `reg`.
    pub fn reg_bias(&self) -> f64 {
        self.0.reg_bias.unwrap_or(self.0.reg)
    }
    /// Whether the biases are regularized apart from the factors.
    pub fn has_reg_bias(&self) -> bool {
        self.0.reg_bias.is_some()
    }
    /// Whether the implicit ratings are transformed before fitting.
    pub fn transforms_ratings(&self) -> bool {
        self.0.implicit
            && (self.0.confidence != Confidence::Linear || self.0.weighting != Weighting::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_spark_and_are_valid() {
        let p = AlsParams::default().check().unwrap();
        assert_eq!(
            (p.rank(), p.reg(), p.alpha(), p.max_iter()),
            (10, 0.1, 1.0, 10)
        );
        assert_eq!(p.cg_steps(), 3);
        assert_eq!(p.reg_scaling(), RegScaling::Count);
        assert_eq!(p, ValidAlsParams::default());
    }

    #[test]
    fn rank_zero_is_rejected() {
        assert_eq!(
            AlsParams::new().rank(0).check(),
            Err(AlsParamsError::ZeroRank)
        );
    }

    #[test]
    fn negative_reg_is_rejected() {
        assert_eq!(
            AlsParams::new().reg(-0.1).check(),
            Err(AlsParamsError::InvalidReg(-0.1))
        );
    }

    #[test]
    fn non_finite_reg_is_rejected() {
        assert!(matches!(
            AlsParams::new().reg(f64::NAN).check(),
            Err(AlsParamsError::InvalidReg(_))
        ));
        assert_eq!(
            AlsParams::new().reg(f64::INFINITY).check(),
            Err(AlsParamsError::InvalidReg(f64::INFINITY))
        );
    }

    #[test]
    fn zero_reg_is_allowed() {
        assert!(AlsParams::new().reg(0.0).check().is_ok());
    }

    #[test]
    fn negative_alpha_is_rejected() {
        assert_eq!(
            AlsParams::new().alpha(-1.0).check(),
            Err(AlsParamsError::InvalidAlpha(-1.0))
        );
    }

    #[test]
    fn non_finite_alpha_is_rejected() {
        assert!(matches!(
            AlsParams::new().alpha(f64::NAN).check(),
            Err(AlsParamsError::InvalidAlpha(_))
        ));
    }

    #[test]
    fn max_iter_zero_is_rejected() {
        assert_eq!(
            AlsParams::new().max_iter(0).check(),
            Err(AlsParamsError::ZeroMaxIter)
        );
    }

    #[test]
    fn cg_steps_zero_is_rejected() {
        assert_eq!(
            AlsParams::new().cg_steps(0).check(),
            Err(AlsParamsError::ZeroCgSteps)
        );
    }

    #[test]
    fn the_gibbs_solver_takes_explicit_ratings_with_biases_and_keeps_samples() {
        let gibbs = || AlsParams::new().solver(Solver::Gibbs).biases(true);
        assert!(gibbs().check().is_ok());
        assert_eq!(
            gibbs().implicit(true).check(),
            Err(AlsParamsError::GibbsImplicit)
        );
        assert_eq!(
            gibbs().biases(false).check(),
            Err(AlsParamsError::GibbsWithoutBiases)
        );
        assert_eq!(
            gibbs().max_iter(10).burn_in(Some(10)).check(),
            Err(AlsParamsError::BurnIn {
                burn_in: 10,
                max_iter: 10
            })
        );
        assert_eq!(
            gibbs().samples(Some(0)).check(),
            Err(AlsParamsError::ZeroSamples)
        );
        assert_eq!(
            AlsParams::new().rated_sets(true).check(),
            Err(AlsParamsError::RatedSetsWithoutGibbs)
        );
        let p = gibbs().max_iter(200).check().unwrap();
        assert_eq!((p.burn_in(), p.samples()), (40, 50));
    }

    #[test]
    fn confidence_and_weighting_are_for_implicit_models_only() {
        assert_eq!(
            AlsParams::new().confidence(Confidence::Log).check(),
            Err(AlsParamsError::ImplicitOnly("confidence"))
        );
        assert_eq!(
            AlsParams::new().weighting(Weighting::Bm25).check(),
            Err(AlsParamsError::ImplicitOnly("weighting"))
        );
        let p = AlsParams::new()
            .implicit(true)
            .confidence(Confidence::Log)
            .weighting(Weighting::Tfidf)
            .check()
            .unwrap();
        assert!(p.transforms_ratings());
        assert!(!AlsParams::new()
            .implicit(true)
            .check()
            .unwrap()
            .transforms_ratings());
    }

    #[test]
    fn epsilon_and_bm25_settings_are_range_checked() {
        let i = || AlsParams::new().implicit(true);
        assert_eq!(
            i().epsilon(0.0).check(),
            Err(AlsParamsError::InvalidEpsilon(0.0))
        );
        assert_eq!(
            i().bm25(-1.0, 0.5).check(),
            Err(AlsParamsError::InvalidBm25K1(-1.0))
        );
        assert_eq!(
            i().bm25(1.2, 1.5).check(),
            Err(AlsParamsError::InvalidBm25B(1.5))
        );
    }

    #[test]
    fn reg_bias_needs_biases_outside_gibbs_and_defaults_to_reg() {
        let p = AlsParams::new().biases(true).reg(0.3).check().unwrap();
        assert_eq!((p.reg_bias(), p.has_reg_bias()), (0.3, false));
        let p = AlsParams::new()
            .biases(true)
            .reg_bias(Some(0.01))
            .check()
            .unwrap();
        assert_eq!((p.reg_bias(), p.has_reg_bias()), (0.01, true));
        assert_eq!(
            AlsParams::new().reg_bias(Some(0.01)).check(),
            Err(AlsParamsError::RegBiasWithoutBiases)
        );
        assert_eq!(
            AlsParams::new().biases(true).reg_bias(Some(-1.0)).check(),
            Err(AlsParamsError::InvalidRegBias(-1.0))
        );
        assert_eq!(
            AlsParams::new()
                .solver(Solver::Gibbs)
                .biases(true)
                .reg_bias(Some(0.1))
                .check(),
            Err(AlsParamsError::RegBiasWithoutBiases)
        );
    }

    #[test]
    fn saved_params_without_the_new_keys_load_with_their_defaults() {
        let p: ValidAlsParams = serde_json::from_str(r#"{"rank": 8, "implicit": true}"#).unwrap();
        assert_eq!(p.confidence(), Confidence::Linear);
        assert_eq!(p.weighting(), Weighting::None);
        assert!(!p.has_reg_bias());
    }

    #[test]
    fn error_messages_name_the_value() {
        let msg = AlsParams::new().reg(-2.0).check().unwrap_err().to_string();
        assert_eq!(msg, "reg must be a finite number >= 0, got `-2`");
    }

    #[test]
    fn serde_uses_lowercase_names_and_round_trips() {
        let p = AlsParams::new()
            .solver(Solver::Cg)
            .reg_scaling(RegScaling::None)
            .check()
            .unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""solver":"cg""#), "{json}");
        assert!(json.contains(r#""reg_scaling":"none""#), "{json}");
        let back: ValidAlsParams = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let cholesky = serde_json::to_string(&Solver::Cholesky).unwrap();
        assert_eq!(cholesky, r#""cholesky""#);
        assert_eq!(
            serde_json::to_string(&RegScaling::Count).unwrap(),
            r#""count""#
        );
    }

    #[test]
    fn deserializing_valid_params_checks_the_rules() {
        let bad = r#"{"rank": 0}"#;
        let err = serde_json::from_str::<ValidAlsParams>(bad).unwrap_err();
        assert!(err.to_string().contains("rank must be at least 1"), "{err}");
        let partial: ValidAlsParams = serde_json::from_str(r#"{"rank": 32}"#).unwrap();
        assert_eq!(partial.rank(), 32);
        assert_eq!(partial.reg(), 0.1);
    }
}
