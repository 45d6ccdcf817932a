//! The metric registry: every metric recflow logs, its direction, unit and kind, in one place,
//! and the split-named keys built from it (`val_rmse`, `test_ndcg_at_10`, `fit_seconds`).
//!
//! Every command that ranks runs, selects a model or marks a best value asks this module which
//! way a metric goes. Spec fields (`eval.select`, `early_stopping.metric`) take split-free names
//! (`rmse`, `ndcg_at_10`) that [`SelectMetric::parse`] checks; full keys are parsed by
//! [`MetricKey::parse`]. Runs logged before the split prefixes stay readable through
//! [`legacy_key`]. Knows nothing about models, files or tracking stores.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::Named;

/// Whether lower or higher values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Lower,
    Higher,
}

impl Direction {
    /// `true` when `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Lower => a < b,
            Direction::Higher => a > b,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Direction::Lower => "lowest",
            Direction::Higher => "highest",
        }
    }
}

crate::named_enum! {
    /// Which part of the data a metric was computed on: its key's prefix.
    pub enum Split: "split" {
        Train = "train",
        Val = "val",
        Test = "test",
    }
}

/// What sort of figure a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Rating prediction error (needs a model that predicts ratings).
    Rating,
    /// Top-K ranking quality (every model that ranks).
    Ranking,
    /// The training objective.
    Loss,
    /// Wall-clock time.
    Timing,
    /// Memory.
    Memory,
}

/// One registered metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Info {
    /// The split-free name: `rmse`, `ndcg` (with `at_k`: `ndcg_at_10`), `fit_seconds`.
    pub base: &'static str,
    pub direction: Direction,
    pub unit: &'static str,
    pub kind: Kind,
    /// Takes a cut-off: `ndcg_at_10`.
    pub at_k: bool,
    /// Whether evaluation can report it per user (for confidence intervals and paired tests).
    pub per_user: bool,
    /// Whether its key carries a split prefix (`val_rmse`); timings and memory do not.
    pub split_named: bool,
    pub description: &'static str,
}

#[allow(clippy::too_many_arguments)] // a row of the table below
const fn metric(
    base: &'static str,
    direction: Direction,
    unit: &'static str,
    kind: Kind,
    at_k: bool,
    per_user: bool,
    split_named: bool,
    description: &'static str,
) -> Info {
    Info {
        base,
        direction,
        unit,
        kind,
        at_k,
        per_user,
        split_named,
        description,
    }
}

use Direction::{Higher, Lower};

/// Every metric recflow logs.
pub const REGISTRY: &[Info] = &[
    metric(
        "rmse",
        Lower,
        "rating",
        Kind::Rating,
        false,
        true,
        true,
        "root mean squared error over pairs whose user and item were seen in training",
    ),
    metric(
        "mae",
        Lower,
        "rating",
        Kind::Rating,
        false,
        true,
        true,
        "mean absolute error over the same pairs",
    ),
    metric(
        "precision",
        Higher,
        "ratio",
        Kind::Ranking,
        true,
        true,
        true,
        "hits in the top K / K",
    ),
    metric(
        "recall",
        Higher,
        "ratio",
        Kind::Ranking,
        true,
        true,
        true,
        "hits in the top K / relevant test items",
    ),
    metric(
        "ndcg",
        Higher,
        "ratio",
        Kind::Ranking,
        true,
        true,
        true,
        "normalized discounted cumulative gain at K (binary relevance)",
    ),
    metric(
        "map",
        Higher,
        "ratio",
        Kind::Ranking,
        true,
        true,
        true,
        "mean average precision at K",
    ),
    metric(
        "hit_rate",
        Higher,
        "ratio",
        Kind::Ranking,
        true,
        true,
        true,
        "share of users with at least one hit in the top K",
    ),
    metric(
        "coverage",
        Higher,
        "ratio",
        Kind::Ranking,
        true,
        false,
        true,
        "distinct items recommended in anyone's top K / catalogue",
    ),
    metric(
        "loss",
        Lower,
        "objective",
        Kind::Loss,
        false,
        false,
        true,
        "the training objective (train_loss)",
    ),
    metric(
        "fit_seconds",
        Lower,
        "seconds",
        Kind::Timing,
        false,
        false,
        false,
        "time spent fitting, nothing else",
    ),
    metric(
        "eval_seconds",
        Lower,
        "seconds",
        Kind::Timing,
        false,
        false,
        false,
        "time spent evaluating",
    ),
    metric(
        "log_seconds",
        Lower,
        "seconds",
        Kind::Timing,
        false,
        false,
        false,
        "time spent sending results to the tracking store",
    ),
    metric(
        "iteration_seconds",
        Lower,
        "seconds",
        Kind::Timing,
        false,
        false,
        false,
        "time of one training iteration",
    ),
    metric(
        "peak_rss_megabytes",
        Lower,
        "MB",
        Kind::Memory,
        false,
        false,
        false,
        "the process's peak resident memory",
    ),
];

/// The registered metric named `base` (split-free, without K).
pub fn info(base: &str) -> Option<&'static Info> {
    REGISTRY.iter().find(|m| m.base == base)
}

/// A statistic derived from a metric, written as a key suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    /// Standard deviation over repeats: `_sd`.
    Sd,
    /// Bootstrap interval bounds: `_ci_low`, `_ci_high`.
    CiLow,
    CiHigh,
}

impl Suffix {
    fn text(self) -> &'static str {
        match self {
            Suffix::Sd => "_sd",
            Suffix::CiLow => "_ci_low",
            Suffix::CiHigh => "_ci_high",
        }
    }
}

/// A parsed full key: `test_ndcg_at_10`, `val_rmse_sd`, `fit_seconds`, `best.test_rmse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricKey {
    /// A namespace before a dot (`best` in `best.test_rmse`), kept as written.
    pub namespace: Option<String>,
    pub split: Option<Split>,
    pub info: &'static Info,
    pub k: Option<usize>,
    pub suffix: Option<Suffix>,
}

impl MetricKey {
    /// A key for `base` at cut-off `k` on `split`.
    pub fn new(split: Split, base: &str, k: Option<usize>) -> Option<Self> {
        let info = info(base)?;
        Some(Self {
            namespace: None,
            split: info.split_named.then_some(split),
            info,
            k: if info.at_k { k } else { None },
            suffix: None,
        })
    }

    /// Parses a full key; `None` for keys the registry does not know (`system/...`, counters).
    pub fn parse(key: &str) -> Option<Self> {
        let (namespace, rest) = match key.rsplit_once('.') {
            Some((ns, rest)) => (Some(ns.to_string()), rest),
            None => (None, key),
        };
        let (rest, suffix) = [Suffix::Sd, Suffix::CiLow, Suffix::CiHigh]
            .into_iter()
            .find_map(|s| rest.strip_suffix(s.text()).map(|r| (r, Some(s))))
            .unwrap_or((rest, None));
        let (split, name) = [Split::Train, Split::Val, Split::Test]
            .into_iter()
            .find_map(|s| {
                rest.strip_prefix(s.name())
                    .and_then(|r| r.strip_prefix('_'))
                    .map(|r| (Some(s), r))
            })
            .unwrap_or((None, rest));
        let (base, k) = split_at_k(name);
        let info = info(base)?;
        if info.at_k != k.is_some() || info.split_named != split.is_some() {
            return None;
        }
        Some(Self {
            namespace,
            split,
            info,
            k,
            suffix,
        })
    }

    pub fn direction(&self) -> Direction {
        self.info.direction
    }

    /// The split-free name: `ndcg_at_10`, `rmse`.
    pub fn plain(&self) -> String {
        match self.k {
            Some(k) => format!("{}_at_{k}", self.info.base),
            None => self.info.base.to_string(),
        }
    }

    /// The same key with a suffix.
    pub fn with_suffix(&self, suffix: Suffix) -> Self {
        Self {
            suffix: Some(suffix),
            ..self.clone()
        }
    }

    /// The same key in a namespace (`best.`).
    pub fn in_namespace(&self, ns: &str) -> Self {
        Self {
            namespace: Some(ns.to_string()),
            ..self.clone()
        }
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}.")?;
        }
        if let Some(s) = self.split {
            write!(f, "{}_", s.name())?;
        }
        f.write_str(&self.plain())?;
        if let Some(s) = self.suffix {
            f.write_str(s.text())?;
        }
        Ok(())
    }
}

/// `ndcg_at_10` -> (`ndcg`, Some(10)); `rmse` -> (`rmse`, None).
fn split_at_k(name: &str) -> (&str, Option<usize>) {
    if let Some((base, k)) = name.rsplit_once("_at_") {
        if let Ok(k) = k.parse::<usize>() {
            return (base, Some(k));
        }
    }
    (name, None)
}

/// The full key `split_base[_at_k]` as a string: `key(Split::Val, "ndcg", Some(10))` is
/// `val_ndcg_at_10`. Panics in debug builds for an unregistered base (a programming error).
pub fn key(split: Split, base: &str, k: Option<usize>) -> String {
    match MetricKey::new(split, base, k) {
        Some(m) => m.to_string(),
        None => {
            debug_assert!(false, "metric `{base}` is not in the registry");
            format!("{split}_{base}")
        }
    }
}

/// Which way a full key goes: registered metrics by the registry, anything else `None`.
pub fn direction(key: &str) -> Option<Direction> {
    MetricKey::parse(key).map(|k| k.direction())
}

/// A problem with a metric name given in a spec or on the command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unknown metric `{name}`")]
    Unknown { name: String, hint: String },
    #[error("`{name}` names a split; write `{plain}` (selection and early stopping always use the validation split)")]
    HasSplit { name: String, plain: String },
    #[error("`{name}` is cut at {k} but the experiment evaluates top-{expected}")]
    WrongK {
        name: String,
        k: usize,
        expected: String,
    },
    #[error("`{name}` is not a model-quality metric (choose a rating or ranking metric)")]
    NotQuality { name: String },
}

impl KeyError {
    pub fn hint(&self) -> Option<String> {
        match self {
            KeyError::Unknown { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }
}

/// The split-free quality metric names valid at the cut-offs `ks`, for hints.
pub fn quality_names(ks: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for m in REGISTRY
        .iter()
        .filter(|m| matches!(m.kind, Kind::Rating | Kind::Ranking))
    {
        if m.at_k {
            out.extend(ks.iter().map(|k| format!("{}_at_{k}", m.base)));
        } else {
            out.push(m.base.to_string());
        }
    }
    out
}

/// A split-free quality metric name from a spec: `rmse`, `ndcg_at_10`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelectMetric {
    pub name: String,
    #[serde(skip)]
    pub info: &'static Info,
    pub k: Option<usize>,
    pub direction: Direction,
}

impl SelectMetric {
    /// Checks a split-free name against the registry and the experiment's cut-offs `ks`.
    pub fn parse(name: &str, ks: &[usize]) -> Result<Self, KeyError> {
        let name = name.trim();
        if let Some(key) = MetricKey::parse(name) {
            if key.split.is_some() {
                return Err(KeyError::HasSplit {
                    name: name.to_string(),
                    plain: key.plain(),
                });
            }
        }
        let (base, k) = split_at_k(name);
        let valid = quality_names(ks);
        let unknown = || KeyError::Unknown {
            name: name.to_string(),
            hint: crate::names::did_you_mean(
                name,
                &valid.iter().map(String::as_str).collect::<Vec<_>>(),
            )
            .unwrap_or_else(|| format!("choose one of {}", valid.join(", "))),
        };
        let info = info(base).ok_or_else(unknown)?;
        if info.at_k != k.is_some() {
            return Err(unknown());
        }
        if !matches!(info.kind, Kind::Rating | Kind::Ranking) {
            return Err(KeyError::NotQuality {
                name: name.to_string(),
            });
        }
        if let Some(k) = k {
            if !ks.contains(&k) {
                return Err(KeyError::WrongK {
                    name: name.to_string(),
                    k,
                    expected: ks
                        .iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(Self {
            name: name.to_string(),
            info,
            k,
            direction: info.direction,
        })
    }

    /// RMSE for a model that predicts ratings, NDCG@K otherwise (recflow's default selection).
    pub fn default_for(predicts_ratings: bool, k: usize) -> Self {
        let (base, k) = if predicts_ratings {
            ("rmse", None)
        } else {
            ("ndcg", Some(k))
        };
        let info = REGISTRY
            .iter()
            .find(|m| m.base == base)
            .unwrap_or(&REGISTRY[0]);
        Self {
            name: match k {
                Some(k) => format!("{base}_at_{k}"),
                None => base.to_string(),
            },
            info,
            k,
            direction: info.direction,
        }
    }

    /// The key on a split: `val_ndcg_at_10`.
    pub fn on(&self, split: Split) -> String {
        key(split, self.info.base, self.k)
    }

    pub fn is_rating(&self) -> bool {
        self.info.kind == Kind::Rating
    }
}

impl fmt::Display for SelectMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The key a metric logged before the split prefixes has today: on a child run (a grid point,
/// evaluated on the validation split) `rmse` is `val_rmse`; on a parent (the selected model on the
/// test split) it is `test_rmse`; `popularity.ndcg_at_10` was the baseline's test figure. Keys
/// already in the current form come back unchanged.
pub fn legacy_key(key: &str, is_child: bool) -> String {
    if MetricKey::parse(key).is_some() {
        return key.to_string();
    }
    let split = if is_child { Split::Val } else { Split::Test };
    let renamed = |plain: &str, split: Split| -> Option<String> {
        let (base, k) = split_at_k(plain);
        let info = info(base)?;
        (info.split_named && info.at_k == k.is_some()).then(|| key_of(split, info, k))
    };
    if let Some(rest) = key.strip_prefix("popularity.") {
        if let Some(k) = renamed(rest, split) {
            return format!("popularity.{k}");
        }
    }
    if let Some(rest) = key.strip_prefix("best_validation.") {
        if let Some(k) = renamed(rest, Split::Val) {
            return format!("best.{k}");
        }
    }
    if let Some(rest) = key.strip_prefix("best_test.") {
        if let Some(k) = renamed(rest, Split::Test) {
            return format!("best.{k}");
        }
    }
    if key == "train_loss" {
        return key.to_string();
    }
    renamed(key, split).unwrap_or_else(|| key.to_string())
}

fn key_of(split: Split, info: &'static Info, k: Option<usize>) -> String {
    MetricKey {
        namespace: None,
        split: Some(split),
        info,
        k,
        suffix: None,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_names_its_split_and_parses_back() {
        for (split, base, k, text) in [
            (Split::Val, "rmse", None, "val_rmse"),
            (Split::Test, "ndcg", Some(10), "test_ndcg_at_10"),
            (Split::Test, "precision", Some(5), "test_precision_at_5"),
            (Split::Train, "loss", None, "train_loss"),
        ] {
            assert_eq!(key(split, base, k), text);
            let parsed = MetricKey::parse(text).unwrap();
            assert_eq!(parsed.split, Some(split));
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(key(Split::Test, "fit_seconds", None), "fit_seconds");
        assert!(MetricKey::parse("system/cpu_utilization_percentage").is_none());
        assert!(MetricKey::parse("users_unscored").is_none());
    }

    #[test]
    fn directions_come_from_the_registry() {
        assert_eq!(direction("val_rmse"), Some(Direction::Lower));
        assert_eq!(direction("test_mae"), Some(Direction::Lower));
        assert_eq!(direction("train_loss"), Some(Direction::Lower));
        assert_eq!(direction("fit_seconds"), Some(Direction::Lower));
        assert_eq!(direction("best.test_ndcg_at_10"), Some(Direction::Higher));
        assert_eq!(direction("val_ndcg_at_10_sd"), Some(Direction::Higher));
        assert_eq!(direction("test_coverage_at_10"), Some(Direction::Higher));
        assert_eq!(direction("test_rmse_ci_low"), Some(Direction::Lower));
        assert_eq!(direction("something_else"), None);
    }

    #[test]
    fn spec_selection_names_are_split_free_and_checked() {
        let m = SelectMetric::parse("ndcg_at_10", &[10]).unwrap();
        assert_eq!(m.on(Split::Val), "val_ndcg_at_10");
        assert_eq!(m.direction, Direction::Higher);
        assert!(SelectMetric::parse("rmse", &[10]).unwrap().is_rating());
        let e = SelectMetric::parse("test_rmse", &[10]).unwrap_err();
        assert!(matches!(e, KeyError::HasSplit { .. }), "{e}");
        let e = SelectMetric::parse("ndcg@10", &[10]).unwrap_err();
        assert_eq!(e.hint().as_deref(), Some("did you mean `ndcg_at_10`?"));
        let e = SelectMetric::parse("ndcg_at_20", &[10]).unwrap_err();
        assert!(matches!(e, KeyError::WrongK { k: 20, .. }), "{e}");
        let e = SelectMetric::parse("fit_seconds", &[10]).unwrap_err();
        assert!(matches!(e, KeyError::NotQuality { .. }), "{e}");
        assert!(SelectMetric::parse("../../x", &[10]).is_err());
    }

    #[test]
    fn old_keys_map_to_their_split() {
        assert_eq!(legacy_key("rmse", true), "val_rmse");
        assert_eq!(legacy_key("rmse", false), "test_rmse");
        assert_eq!(legacy_key("ndcg_at_10", false), "test_ndcg_at_10");
        assert_eq!(
            legacy_key("popularity.ndcg_at_10", false),
            "popularity.test_ndcg_at_10"
        );
        assert_eq!(legacy_key("best_validation.rmse", false), "best.val_rmse");
        assert_eq!(legacy_key("train_loss", true), "train_loss");
        assert_eq!(legacy_key("val_rmse", true), "val_rmse");
        assert_eq!(legacy_key("fit_seconds", false), "fit_seconds");
        assert_eq!(legacy_key("users_unscored", false), "users_unscored");
    }
}
