//! Model families behind two traits, so evaluation, selection, `recommend`, `serve`, the saved
//! model format and MLflow logging treat every family alike.
//!
//! A [`Family`] knows its hyper-parameters ([`ParamSpec`]s) and turns a configuration (a
//! [`Config`]: parameter values as written in a spec or on the command line) into a checked
//! [`FitPlan`], one error per broken rule, before any work. A plan estimates its memory, fits on
//! training data (reporting each iteration to a [`FitObserver`], which may stop it), and yields a
//! fitted [`Recommender`]: it scores blocks of users against every item, predicts ratings where
//! it can, finds similar items, explains a recommendation by the user's training items, and saves
//! itself. This module knows nothing about the command line, files other than a model folder, or
//! tracking.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::interactions::{Csr, Interactions};

crate::named_enum! {
    /// The model families recflow can fit.
    pub enum FamilyName: "model family" {
        /// Alternating least squares: explicit, implicit (Hu, Koren, Volinsky) and Bayesian (Gibbs).
        Als = "als",
        /// Predicts the training mean: the floor for rating error.
        GlobalMean = "global_mean",
        /// Damped user and item biases: the rating baseline.
        Biases = "biases",
        /// Most rated items first: the ranking baseline.
        Popularity = "popularity",
        /// Seeded random scores: the ranking floor.
        Random = "random",
        /// Item-item cosine similarity with shrinkage, the top neighbours per item.
        ItemKnn = "item_knn",
        /// EASE (Steck 2019): a closed-form item-item model.
        Ease = "ease",
    }
}

impl FamilyName {
    /// Baselines are what every experiment compares its models with.
    pub fn is_baseline(self) -> bool {
        matches!(
            self,
            FamilyName::GlobalMean
                | FamilyName::Biases
                | FamilyName::Popularity
                | FamilyName::Random
        )
    }
}

/// A hyper-parameter value as written in a spec (`rank = 10`, `lambda = 500.0`) or on the
/// command line (`--param lambda=500`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl ParamValue {
    /// Parses a command-line value: `true`/`false`, an integer, a number, else a string.
    pub fn parse(s: &str) -> Self {
        let t = s.trim();
        match t {
            "true" => ParamValue::Bool(true),
            "false" => ParamValue::Bool(false),
            _ => {
                if let Ok(i) = t.parse::<i64>() {
                    ParamValue::Int(i)
                } else if let Ok(f) = t.parse::<f64>() {
                    ParamValue::Float(f)
                } else {
                    ParamValue::Str(t.to_string())
                }
            }
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Bool(_) => "a boolean",
            ParamValue::Int(_) => "an integer",
            ParamValue::Float(_) => "a number",
            ParamValue::Str(_) => "a string",
        }
    }
}

impl fmt::Display for ParamValue {
    /// As written: floats keep a decimal point (`1.0`, as TOML and Python print them), so a
    /// logged param matches the spec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => f.write_str(&format_float(*x)),
            ParamValue::Str(s) => f.write_str(s),
        }
    }
}

/// A float as TOML and Python's `repr` write it: `1.0`, `0.05`, `1e-05`.
pub fn format_float(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

impl From<bool> for ParamValue {
    fn from(v: bool) -> Self {
        ParamValue::Bool(v)
    }
}
impl From<i64> for ParamValue {
    fn from(v: i64) -> Self {
        ParamValue::Int(v)
    }
}
impl From<i32> for ParamValue {
    fn from(v: i32) -> Self {
        ParamValue::Int(i64::from(v))
    }
}
impl From<usize> for ParamValue {
    fn from(v: usize) -> Self {
        ParamValue::Int(v as i64)
    }
}
impl From<f64> for ParamValue {
    fn from(v: f64) -> Self {
        ParamValue::Float(v)
    }
}
impl From<&str> for ParamValue {
    fn from(v: &str) -> Self {
        ParamValue::Str(v.to_string())
    }
}

/// One configuration: parameter name to value. Absent parameters take the family's defaults.
pub type Config = BTreeMap<String, ParamValue>;

/// The type and valid values of a hyper-parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    Bool,
    /// An integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A finite number in `min..=max` (`min` excluded when `open_min`).
    Float {
        min: f64,
        max: f64,
        open_min: bool,
    },
    /// One of the names.
    Choice(&'static [&'static str]),
}

impl ParamKind {
    /// Whether a search may range over it (numbers) or list it (any).
    pub fn numeric(self) -> bool {
        matches!(self, ParamKind::Int { .. } | ParamKind::Float { .. })
    }
}

/// A family's hyper-parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    /// The default as text, for help and docs (`"10"`, `"a fifth of max_iter"`).
    pub default: &'static str,
    pub help: &'static str,
}

/// A configuration value that breaks a family's rule.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FamilyError {
    #[error("`{family}` has no parameter `{name}`")]
    UnknownParam {
        family: FamilyName,
        name: String,
        known: Vec<&'static str>,
    },
    #[error("`{name}` must be {expected}, got {got}")]
    BadType {
        name: String,
        expected: &'static str,
        got: String,
    },
    #[error("`{name}` is {value}; it must be {range}")]
    OutOfRange {
        name: String,
        value: String,
        range: String,
    },
    #[error("{0}")]
    Rule(String),
    #[error(
        "`{family}` with these settings needs about {need_mb} MB ({what}), more than the {have_mb} MB \
         of memory available"
    )]
    TooBig {
        family: FamilyName,
        what: String,
        need_mb: u64,
        have_mb: u64,
    },
}

impl FamilyError {
    pub fn hint(&self) -> Option<String> {
        match self {
            FamilyError::UnknownParam { name, known, .. } => {
                crate::names::did_you_mean(name, known).or_else(|| {
                    Some(if known.is_empty() {
                        "this family takes no parameters".into()
                    } else {
                        format!("its parameters: {}", known.join(", "))
                    })
                })
            }
            FamilyError::TooBig { .. } => Some(
                "lower the size (rank, neighbours, samples) or use a family that needs less memory"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Reads typed values out of a configuration, checking names, types and ranges against the
/// family's [`ParamSpec`]s.
pub struct ParamReader<'a> {
    family: FamilyName,
    specs: &'static [ParamSpec],
    config: &'a Config,
}

impl<'a> ParamReader<'a> {
    /// Fails on the first parameter the family does not have.
    pub fn new(
        family: FamilyName,
        specs: &'static [ParamSpec],
        config: &'a Config,
    ) -> Result<Self, FamilyError> {
        for name in config.keys() {
            if !specs.iter().any(|s| s.name == name) {
                return Err(FamilyError::UnknownParam {
                    family,
                    name: name.clone(),
                    known: specs.iter().map(|s| s.name).collect(),
                });
            }
        }
        Ok(Self {
            family,
            specs,
            config,
        })
    }

    pub fn family(&self) -> FamilyName {
        self.family
    }

    fn spec(&self, name: &str) -> ParamSpec {
        self.specs
            .iter()
            .copied()
            .find(|s| s.name == name)
            .unwrap_or(ParamSpec {
                name: "?",
                kind: ParamKind::Bool,
                default: "",
                help: "",
            })
    }

    pub fn has(&self, name: &str) -> bool {
        self.config.contains_key(name)
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, FamilyError> {
        match self.config.get(name) {
            None => Ok(None),
            Some(ParamValue::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(bad_type(name, "true or false", v)),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, FamilyError> {
        let v = match self.config.get(name) {
            None => return Ok(None),
            Some(ParamValue::Int(i)) => *i,
            Some(ParamValue::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => *f as i64,
            Some(v) => return Err(bad_type(name, "a whole number", v)),
        };
        if let ParamKind::Int { min, max } = self.spec(name).kind {
            if v < min || v > max {
                return Err(FamilyError::OutOfRange {
                    name: name.to_string(),
                    value: v.to_string(),
                    range: format!("between {min} and {max}"),
                });
            }
        }
        Ok(Some(v))
    }

    pub fn usize(&self, name: &str) -> Result<Option<usize>, FamilyError> {
        Ok(self.int(name)?.map(|v| v.max(0) as usize))
    }

    pub fn float(&self, name: &str) -> Result<Option<f64>, FamilyError> {
        let v = match self.config.get(name) {
            None => return Ok(None),
            Some(ParamValue::Int(i)) => *i as f64,
            Some(ParamValue::Float(f)) => *f,
            Some(v) => return Err(bad_type(name, "a number", v)),
        };
        if let ParamKind::Float { min, max, open_min } = self.spec(name).kind {
            let low_ok = if open_min { v > min } else { v >= min };
            if !v.is_finite() || !low_ok || v > max {
                let lo = if open_min { "above" } else { "at least" };
                return Err(FamilyError::OutOfRange {
                    name: name.to_string(),
                    value: format_float(v),
                    range: if max.is_finite() {
                        format!(
                            "{lo} {} and at most {}",
                            format_float(min),
                            format_float(max)
                        )
                    } else {
                        format!("finite and {lo} {}", format_float(min))
                    },
                });
            }
        }
        Ok(Some(v))
    }

    /// A choice parameter parsed into a named enum.
    pub fn choice<T: crate::names::Named>(&self, name: &str) -> Result<Option<T>, FamilyError> {
        match self.config.get(name) {
            None => Ok(None),
            Some(ParamValue::Str(s)) => {
                T::from_name(s)
                    .map(Some)
                    .map_err(|e| FamilyError::OutOfRange {
                        name: name.to_string(),
                        value: format!("`{s}`"),
                        range: format!("one of {}", e.expected.join(", ")),
                    })
            }
            Some(v) => Err(bad_type(name, "a name in quotes", v)),
        }
    }
}

fn bad_type(name: &str, expected: &'static str, got: &ParamValue) -> FamilyError {
    FamilyError::BadType {
        name: name.to_string(),
        expected,
        got: format!("{} (`{got}`)", got.type_name()),
    }
}

/// The size of the data a plan will fit, for memory and time estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DataShape {
    pub n_users: usize,
    pub n_items: usize,
    pub n_ratings: usize,
}

/// What a family can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// RMSE and MAE need predicted ratings.
    pub predicts_ratings: bool,
    /// Ranking metrics need a ranking better than arbitrary (a global mean has none).
    pub ranks: bool,
    /// Fitted by iterations that can be observed and stopped early.
    pub iterative: bool,
}

/// An estimate made before fitting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Peak bytes the fit holds, the data it is given excluded.
    pub bytes: u64,
    /// What dominates, for messages: `"the items x items matrix"`.
    pub what: String,
    /// Rough floating-point operations of the fit, for a time estimate before starting.
    pub flop: f64,
}

/// A rough, conservative rate of the fits' dense arithmetic on one core (GFLOP/s measured on the
/// project's machines is several times higher for BLAS-3; small solves and memory bound phases
/// bring real fits down to about this).
pub const EFFECTIVE_FLOPS: f64 = 2.0e9;

/// What a fit reports after each iteration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IterationReport {
    /// 1-based.
    pub iteration: usize,
    /// The objective being minimized (regularization included), when computed.
    pub train_loss: Option<f64>,
    /// RMSE on the validation ratings, for families that predict ratings, when computed.
    pub val_rmse: Option<f64>,
    /// Wall-clock seconds this iteration took.
    pub seconds: f64,
}

/// Whether a fit goes on after an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Sees each iteration of a fit; may stop it (early stopping, cancellation).
pub trait FitObserver {
    /// Called after every iteration. `current` builds the model as it stands (a copy), for
    /// observers that evaluate it or keep the best iteration.
    fn iteration(
        &mut self,
        report: &IterationReport,
        current: &dyn Fn() -> Box<dyn Recommender>,
    ) -> Flow;

    /// Checked by long fits between blocks of work: `true` stops the fit with
    /// [`FitError::Cancelled`].
    fn cancelled(&self) -> bool {
        false
    }
}

/// Ignores every iteration.
pub struct NoObserver;

impl FitObserver for NoObserver {
    fn iteration(&mut self, _: &IterationReport, _: &dyn Fn() -> Box<dyn Recommender>) -> Flow {
        Flow::Continue
    }
}

/// A fit that could not finish.
#[derive(Debug, Error)]
pub enum FitError {
    #[error(transparent)]
    Als(#[from] crate::model::als::AlsError),
    #[error("the training set is empty")]
    EmptyTraining,
    #[error("{0}")]
    Numeric(String),
    #[error("stopped by a signal")]
    Cancelled,
}

/// Checked hyper-parameters of one configuration, ready to fit.
pub trait FitPlan: Send + Sync {
    fn family(&self) -> FamilyName;
    fn capabilities(&self) -> Capabilities;
    /// Memory the fit will hold for data of this shape.
    fn estimate(&self, shape: &DataShape) -> Estimate;
    /// Rules that need the data's shape (a rank above the smaller side, say).
    fn check_shape(&self, _shape: &DataShape) -> Result<(), FamilyError> {
        Ok(())
    }
    /// Every parameter the model uses, defaults filled in, as written in a spec (for logging).
    fn used_params(&self) -> Config;
    /// Fits on `train`; `validation` (same id spaces) feeds per-iteration curves where the
    /// family computes them itself.
    fn fit(
        &self,
        train: &Interactions,
        validation: Option<&Interactions>,
        observer: &mut dyn FitObserver,
    ) -> Result<Box<dyn Recommender>, FitError>;
}

/// A fitted model.
pub trait Recommender: Send + Sync {
    fn family(&self) -> FamilyName;
    fn n_users(&self) -> usize;
    fn n_items(&self) -> usize;
    /// Whether [`Recommender::predict`] gives ratings.
    fn predicts_ratings(&self) -> bool;
    /// Whether its scores rank items (every family but the global mean).
    fn ranks(&self) -> bool {
        true
    }
    /// The predicted rating of (user, item), for families that predict ratings.
    fn predict(&self, _user: u32, _item: u32) -> Option<f32> {
        None
    }
    /// Factor matrices whose row dot products rank each user's items as the model does, when
    /// the model has them: scored through the blocked BLAS path.
    fn ranking_factors(&self) -> Option<(ArrayView2<'_, f32>, ArrayView2<'_, f32>)> {
        None
    }
    /// Fills `out` (one row per user of `users`, one column per item) with scores; higher ranks
    /// first. `history` is the user-major training matrix the model was fitted on (or saved
    /// with). Families with [`Recommender::ranking_factors`] need not implement it.
    fn score_block(&self, users: &[u32], history: &Csr, out: ArrayViewMut2<'_, f32>);
    /// Items most similar to `item`, best first (empty when the family has no notion of it).
    fn similar_items(&self, _item: u32, _k: usize) -> Vec<(u32, f32)> {
        Vec::new()
    }
    /// The user's training items that contribute most to `item`'s score, with their share,
    /// best first (empty when the family cannot say).
    fn explain(&self, _user: u32, _item: u32, _history: &Csr, _k: usize) -> Vec<(u32, f32)> {
        Vec::new()
    }
    /// The same model with its latent factors zeroed (biases kept), for families that have
    /// factors: a model whose figures do not change is a biases-only model in disguise.
    fn without_factors(&self) -> Option<Box<dyn Recommender>> {
        None
    }
    /// Writes the family's own files into a model folder being built.
    fn save(&self, dir: &Path) -> Result<(), crate::model::artifact::ArtifactError>;
}

/// Memory available to a new fit (`MemAvailable` of `/proc/meminfo`), when known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Refuses a plan whose estimate exceeds the memory available.
pub fn check_memory(plan: &dyn FitPlan, shape: &DataShape) -> Result<Estimate, FamilyError> {
    let est = plan.estimate(shape);
    if let Some(have) = available_memory() {
        if est.bytes > have {
            return Err(FamilyError::TooBig {
                family: plan.family(),
                what: est.what.clone(),
                need_mb: est.bytes / (1 << 20),
                have_mb: have / (1 << 20),
            });
        }
    }
    Ok(est)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[ParamSpec] = &[
        ParamSpec {
            name: "rank",
            kind: ParamKind::Int { min: 1, max: 100 },
            default: "10",
            help: "",
        },
        ParamSpec {
            name: "reg",
            kind: ParamKind::Float {
                min: 0.0,
                max: f64::INFINITY,
                open_min: false,
            },
            default: "0.1",
            help: "",
        },
    ];

    fn config(pairs: &[(&str, ParamValue)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn an_unknown_parameter_is_named_with_the_closest_one() {
        let c = config(&[("rnk", 4.into())]);
        let e = ParamReader::new(FamilyName::Als, SPECS, &c).err().unwrap();
        assert_eq!(e.to_string(), "`als` has no parameter `rnk`");
        assert_eq!(e.hint().as_deref(), Some("did you mean `rank`?"));
    }

    #[test]
    fn values_are_checked_for_type_and_range() {
        let c = config(&[("rank", 0.into()), ("reg", "x".into())]);
        let r = ParamReader::new(FamilyName::Als, SPECS, &c).unwrap();
        assert!(matches!(r.int("rank"), Err(FamilyError::OutOfRange { .. })));
        assert!(matches!(r.float("reg"), Err(FamilyError::BadType { .. })));
        let c = config(&[("rank", 4.0.into()), ("reg", 1.into())]);
        let r = ParamReader::new(FamilyName::Als, SPECS, &c).unwrap();
        assert_eq!(r.int("rank").unwrap(), Some(4));
        assert_eq!(r.float("reg").unwrap(), Some(1.0));
    }

    #[test]
    fn floats_print_as_written_in_a_spec() {
        assert_eq!(ParamValue::Float(1.0).to_string(), "1.0");
        assert_eq!(ParamValue::Float(0.05).to_string(), "0.05");
        assert_eq!(ParamValue::parse("500"), ParamValue::Int(500));
        assert_eq!(ParamValue::parse("0.5"), ParamValue::Float(0.5));
        assert_eq!(ParamValue::parse("cg"), ParamValue::Str("cg".into()));
    }
}
