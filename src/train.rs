//! The training pipeline shared by `train-als`, `train` and `run`: sample, split, carve a
//! validation split, fit a grid of ALS models, evaluate each, select one, refit it on the whole
//! training split and report it on the test split.
//!
//! Takes resolved settings and reports progress through an [`Observer`]; knows nothing about the
//! command line, files or tracking.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use thiserror::Error;

use crate::data::interactions::Interactions;
use crate::data::split::{sample, split, SplitError, SplitParams, SplitStrategy};
use crate::eval::{evaluate, EvalError, EvalReport, EvalSettings, RankingFactors};
use crate::model::als::{
    self, AlsError, AlsModel, AlsParams, AlsParamsError, IterationReport, ValidAlsParams,
};
use crate::model::artifact::{cold_start_ranking, ModelMetadata, SavedModel};

#[derive(Debug, Error)]
pub enum TrainError {
    #[error("invalid hyper-parameters (rank {rank}, reg {reg}, alpha {alpha})")]
    Params {
        rank: usize,
        reg: f64,
        alpha: f64,
        #[source]
        source: AlsParamsError,
    },
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error("training rank {rank}, reg {reg}, alpha {alpha} failed")]
    Fit {
        rank: usize,
        reg: f64,
        alpha: f64,
        #[source]
        source: AlsError,
    },
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("the grid is empty: give at least one rank and one reg")]
    EmptyGrid,
    #[error("unknown selection metric `{0}`")]
    UnknownMetric(String),
    #[error("the training set is empty after sampling and splitting")]
    EmptyTraining,
    #[error("validation fraction `{0}` must be at least 0 and below 1")]
    ValidationFraction(f64),
    #[error("cannot start {0} worker threads")]
    Threads(usize),
}

impl TrainError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::UnknownMetric(_) => Some("choose one of rmse, mae, precision_at_K, recall_at_K, ndcg_at_K, map_at_K, coverage_at_K".into()),
            Self::EmptyTraining => Some("raise `--sample-fraction` or lower `--test-fraction`".into()),
            _ => None,
        }
    }
}

/// One combination of the grid's axes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GridPoint {
    pub rank: usize,
    pub reg: f64,
    pub alpha: f64,
}

/// Hyper-parameter lists; alpha is an axis for implicit models only, reg for optimized (not
/// sampled) ones only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grid {
    pub ranks: Vec<usize>,
    pub regs: Vec<f64>,
    pub alphas: Vec<f64>,
}

impl Grid {
    pub fn points(&self, implicit: bool, sampled: bool) -> Vec<GridPoint> {
        let first = |v: &'_ [f64]| v.len().min(1);
        let alphas = &self.alphas[..if implicit {
            self.alphas.len()
        } else {
            first(&self.alphas)
        }];
        // A Gibbs sampler learns its priors: every reg would give the same model.
        let regs = &self.regs[..if sampled {
            first(&self.regs)
        } else {
            self.regs.len()
        }];
        let mut out = Vec::new();
        for &rank in &self.ranks {
            for &reg in regs {
                for &alpha in alphas {
                    out.push(GridPoint { rank, reg, alpha });
                }
            }
        }
        out
    }
}

/// Which grid axes a model has besides rank: alpha (implicit feedback) and reg (not for the
/// Gibbs sampler, which learns its priors).
#[derive(Debug, Clone, Copy, Default)]
pub struct Axes {
    pub alpha: bool,
    pub reg: bool,
}

impl Axes {
    pub fn of(params: &AlsParams) -> Self {
        params
            .clone()
            .check()
            .map(|p| Self {
                alpha: p.implicit(),
                reg: p.solver() != als::Solver::Gibbs,
            })
            .unwrap_or_default()
    }

    /// `rank 10 reg 0.1` with `sep` " ", `rank=10 reg=0.1` with "=": only the axes it has.
    pub fn describe(self, sep: &str, p: &GridPoint) -> String {
        let mut out = format!("rank{sep}{}", p.rank);
        if self.reg {
            out.push_str(&format!(" reg{sep}{}", p.reg));
        }
        if self.alpha {
            out.push_str(&format!(" alpha{sep}{}", p.alpha));
        }
        out
    }
}

/// Whether a metric is better low or high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Min,
    Max,
}

/// The selection rule: a metric, and a second one for ties (equal to 4 decimals).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    pub metric: String,
    pub direction: Direction,
    pub tie_break: Option<(String, Direction)>,
}

impl Selection {
    pub fn direction_of(metric: &str) -> Direction {
        if metric == "rmse"
            || metric == "mae"
            || metric.ends_with(".rmse")
            || metric.ends_with(".mae")
        {
            Direction::Min
        } else {
            Direction::Max
        }
    }

    /// Lowest RMSE, ties by highest Precision@K (explicit); highest NDCG@K (implicit).
    pub fn default_for(implicit: bool, k: usize) -> Self {
        if implicit {
            Self {
                metric: format!("ndcg_at_{k}"),
                direction: Direction::Max,
                tie_break: Some((format!("precision_at_{k}"), Direction::Max)),
            }
        } else {
            Self {
                metric: "rmse".into(),
                direction: Direction::Min,
                tie_break: Some((format!("precision_at_{k}"), Direction::Max)),
            }
        }
    }

    /// A user-chosen metric, with the default tie-break.
    pub fn by_metric(metric: &str, implicit: bool, k: usize) -> Self {
        let mut s = Self::default_for(implicit, k);
        if s.metric != metric {
            s.tie_break = s
                .tie_break
                .filter(|t| t.0 != metric)
                .or(Some((s.metric.clone(), s.direction)));
            s.metric = metric.to_string();
            s.direction = Self::direction_of(metric);
        }
        s
    }

    /// Index of the best result; ties (equal to 4 decimals) go to the tie-break, then grid order.
    pub fn best(&self, results: &[Vec<(String, f64)>]) -> Result<usize, TrainError> {
        let get =
            |m: &[(String, f64)], key: &str| m.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        let key = |m: &[(String, f64)], name: &str, dir: Direction| -> Result<i64, TrainError> {
            let v = get(m, name).ok_or_else(|| TrainError::UnknownMetric(name.to_string()))?;
            let r = if v.is_finite() {
                (v * 1e4).round() as i64
            } else {
                i64::MAX
            };
            Ok(match dir {
                Direction::Min => r,
                Direction::Max => {
                    if v.is_finite() {
                        -r
                    } else {
                        i64::MAX
                    }
                }
            })
        };
        let mut best: Option<(usize, i64, i64)> = None;
        for (i, m) in results.iter().enumerate() {
            let primary = key(m, &self.metric, self.direction)?;
            let second = match &self.tie_break {
                Some((name, dir)) => key(m, name, *dir).unwrap_or(0),
                None => 0,
            };
            if best.is_none_or(|(_, p, s)| (primary, second) < (p, s)) {
                best = Some((i, primary, second));
            }
        }
        best.map(|b| b.0).ok_or(TrainError::EmptyGrid)
    }
}

/// Resolved training settings.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSettings {
    pub sample_fraction: f64,
    pub sample_seed: u64,
    pub split: SplitParams,
    /// Share of the training split held out for selection; 0 selects on the test split.
    pub validation_fraction: f64,
    /// Everything but rank, reg and alpha, which come from the grid.
    #[serde(skip)]
    pub base: AlsParams,
    pub grid: Grid,
    #[serde(skip)]
    pub eval: EvalSettings,
    pub selection: Selection,
    pub threads: Option<usize>,
    /// The file used as the test split instead of drawing one, when given.
    pub test_file: Option<String>,
}

/// Progress events, for bars and tracking.
pub trait Observer: Send {
    fn grid_started(&mut self, _points: &[GridPoint], _sizes: &SplitSizes) {}
    fn point_started(&mut self, _index: usize, _point: &GridPoint) {}
    fn iteration(&mut self, _index: Option<usize>, _report: &IterationReport) {}
    fn point_finished(&mut self, _index: usize, _result: &PointResult) {}
    fn final_started(&mut self, _point: &GridPoint, _refit: bool) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// Rows in each part of the data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SplitSizes {
    pub sampled: usize,
    pub train: usize,
    pub validation: usize,
    pub test: usize,
}

/// One grid point's fit and its metrics on the selection split.
#[derive(Debug, Clone)]
pub struct PointResult {
    pub point: GridPoint,
    pub params: ValidAlsParams,
    pub metrics: Vec<(String, f64)>,
    pub counts: Vec<(String, usize)>,
    pub history: Vec<IterationReport>,
    pub fit_seconds: f64,
    pub eval_seconds: f64,
}

/// Everything a grid run produced.
pub struct Outcome {
    pub points: Vec<PointResult>,
    pub best: usize,
    /// `"validation"`, or `"test"` when no validation split was carved.
    pub selected_on: &'static str,
    /// The chosen configuration, refit on the whole training split when selection used validation.
    pub model: AlsModel,
    pub params: ValidAlsParams,
    pub history: Vec<IterationReport>,
    pub test: EvalReport,
    pub fit_seconds: f64,
    pub eval_seconds: f64,
    pub sizes: SplitSizes,
    /// The data the final model was trained on (what each user already has).
    pub train: Interactions,
}

fn params_for(base: &AlsParams, p: &GridPoint) -> Result<ValidAlsParams, TrainError> {
    base.clone()
        .rank(p.rank)
        .reg(p.reg)
        .alpha(p.alpha)
        .check()
        .map_err(|source| TrainError::Params {
            rank: p.rank,
            reg: p.reg,
            alpha: p.alpha,
            source,
        })
}

fn evaluate_model(
    model: &AlsModel,
    train: &Interactions,
    test: &Interactions,
    eval: &EvalSettings,
) -> Result<EvalReport, EvalError> {
    let (users, items) = model.ranking_factors();
    let predict = |u: u32, i: u32| model.predict(u as usize, i as usize);
    let predictor: Option<&dyn Fn(u32, u32) -> f32> =
        if model.implicit { None } else { Some(&predict) };
    evaluate(
        RankingFactors {
            users: users.view(),
            items: items.view(),
        },
        predictor,
        train,
        test,
        eval,
    )
}

fn fit_one(
    params: &ValidAlsParams,
    p: &GridPoint,
    train: &Interactions,
    validation: Option<&Interactions>,
    index: Option<usize>,
    observer: &mut dyn Observer,
) -> Result<(AlsModel, Vec<IterationReport>, f64), TrainError> {
    let mut history = Vec::new();
    let t0 = Instant::now();
    let model = als::fit(params, train, validation, &mut |r: &IterationReport| {
        observer.iteration(index, r);
        history.push(r.clone());
    })
    .map_err(|source| TrainError::Fit {
        rank: p.rank,
        reg: p.reg,
        alpha: p.alpha,
        source,
    })?;
    Ok((model, history, t0.elapsed().as_secs_f64()))
}

/// Runs the whole pipeline on `data`. With `fixed_test`, `data` is the whole training split and
/// `fixed_test` the test split (both over the same id spaces); no test split is drawn.
pub fn run(
    settings: &TrainSettings,
    data: &Interactions,
    fixed_test: Option<&Interactions>,
    observer: &mut dyn Observer,
) -> Result<Outcome, TrainError> {
    let (implicit, sampled) = settings
        .base
        .clone()
        .check()
        .map(|p| (p.implicit(), p.solver() == als::Solver::Gibbs))
        .unwrap_or_default();
    let points = settings.grid.points(implicit, sampled);
    if points.is_empty() {
        return Err(TrainError::EmptyGrid);
    }
    // Every rule is checked before any work starts.
    let params: Vec<ValidAlsParams> = points
        .iter()
        .map(|p| params_for(&settings.base, p))
        .collect::<Result<_, _>>()?;
    settings.split.check()?;
    let f = settings.sample_fraction;
    if !(f > 0.0 && f <= 1.0) {
        return Err(SplitError::SampleFraction(f).into());
    }
    if !(0.0..1.0).contains(&settings.validation_fraction) {
        return Err(TrainError::ValidationFraction(settings.validation_fraction));
    }
    if settings.validation_fraction > 0.0 {
        settings
            .split
            .for_validation(settings.validation_fraction)
            .check()?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.threads.unwrap_or(0))
        .build()
        .map_err(|_| TrainError::Threads(settings.threads.unwrap_or(0)))?;
    als::linalg::blas_single_threaded();
    pool.install(|| run_in_pool(settings, data, fixed_test, &points, &params, observer))
}

fn run_in_pool(
    settings: &TrainSettings,
    data: &Interactions,
    fixed_test: Option<&Interactions>,
    points: &[GridPoint],
    params: &[ValidAlsParams],
    observer: &mut dyn Observer,
) -> Result<Outcome, TrainError> {
    let sampled = if settings.sample_fraction < 1.0 {
        sample(data, settings.sample_fraction, settings.sample_seed)?
    } else {
        data.clone()
    };
    let outer = match fixed_test {
        Some(test) => crate::data::split::Split {
            train: sampled.clone(),
            test: test.clone(),
        },
        None => split(&sampled, &settings.split)?,
    };
    let (fit_train, select_on, selected_on) = if settings.validation_fraction > 0.0 {
        let inner = split(
            &outer.train,
            &settings.split.for_validation(settings.validation_fraction),
        )?;
        (inner.train, inner.test, "validation")
    } else {
        (outer.train.clone(), outer.test.clone(), "test")
    };
    if fit_train.is_empty() {
        return Err(TrainError::EmptyTraining);
    }
    let sizes = SplitSizes {
        sampled: sampled.len(),
        train: fit_train.len(),
        validation: if selected_on == "validation" {
            select_on.len()
        } else {
            0
        },
        test: outer.test.len(),
    };
    observer.grid_started(points, &sizes);
    let mut results: Vec<PointResult> = Vec::with_capacity(points.len());
    let mut best_model: Option<(usize, AlsModel)> = None;
    for (i, (p, prm)) in points.iter().zip(params).enumerate() {
        observer.point_started(i, p);
        let (model, history, fit_seconds) =
            fit_one(prm, p, &fit_train, Some(&select_on), Some(i), observer)?;
        let t0 = Instant::now();
        let report = evaluate_model(&model, &fit_train, &select_on, &settings.eval)?;
        let result = PointResult {
            point: *p,
            params: prm.clone(),
            metrics: report.metrics(),
            counts: report.counts(),
            history,
            fit_seconds,
            eval_seconds: t0.elapsed().as_secs_f64(),
        };
        observer.point_finished(i, &result);
        results.push(result);
        // Keep only the best model so far in memory.
        let all: Vec<Vec<(String, f64)>> = results.iter().map(|r| r.metrics.clone()).collect();
        let best = settings.selection.best(&all)?;
        if best == i {
            best_model = Some((i, model));
        }
    }
    let all: Vec<Vec<(String, f64)>> = results.iter().map(|r| r.metrics.clone()).collect();
    let best = settings.selection.best(&all)?;
    let refit = selected_on == "validation";
    observer.final_started(&points[best], refit);
    let (model, history, fit_seconds) = if refit {
        fit_one(
            &params[best],
            &points[best],
            &outer.train,
            None,
            None,
            observer,
        )?
    } else {
        let model = best_model.map(|b| b.1).ok_or(TrainError::EmptyGrid)?;
        (
            model,
            results[best].history.clone(),
            results[best].fit_seconds,
        )
    };
    let t0 = Instant::now();
    let test = evaluate_model(&model, &outer.train, &outer.test, &settings.eval)?;
    Ok(Outcome {
        params: params[best].clone(),
        best,
        selected_on,
        model,
        history,
        test,
        fit_seconds,
        eval_seconds: t0.elapsed().as_secs_f64(),
        sizes: SplitSizes {
            train: outer.train.len(),
            ..sizes
        },
        train: outer.train,
        points: results,
    })
}

/// Folds biases into the factors so one dot product is the prediction: user `[x_u, b_u + mu, 1]`,
/// item `[y_i, 1, b_i]`.
pub fn scoring_factors(m: &AlsModel, biases: bool) -> (ndarray::Array2<f32>, ndarray::Array2<f32>) {
    if !biases {
        return (m.user_factors.clone(), m.item_factors.clone());
    }
    let (nu, r) = m.user_factors.dim();
    let ni = m.item_factors.nrows();
    let mut u = ndarray::Array2::<f32>::zeros((nu, r + 2));
    let mut v = ndarray::Array2::<f32>::zeros((ni, r + 2));
    u.slice_mut(ndarray::s![.., ..r]).assign(&m.user_factors);
    v.slice_mut(ndarray::s![.., ..r]).assign(&m.item_factors);
    for k in 0..nu {
        u[[k, r]] = m.user_bias[k] + m.global_bias;
        u[[k, r + 1]] = 1.0;
    }
    for k in 0..ni {
        v[[k, r]] = 1.0;
        v[[k, r + 1]] = m.item_bias[k];
    }
    (u, v)
}

/// The saved form of an outcome: scoring factors, id maps, training data, metadata.
pub fn saved_model(
    settings: &TrainSettings,
    outcome: &Outcome,
    user_ids: &[String],
    item_ids: &[String],
    data: serde_json::Value,
    git_commit: Option<String>,
    run_id: Option<String>,
) -> SavedModel {
    let biases = outcome.params.biases() && !outcome.params.implicit();
    let (user_factors, item_factors) = scoring_factors(&outcome.model, biases);
    let mut metrics: BTreeMap<String, f64> = outcome.test.metrics().into_iter().collect();
    for (k, v) in outcome.test.counts() {
        metrics.insert(k, v as f64);
    }
    let split = serde_json::json!({
        "strategy": settings.split.strategy.name(),
        "leave_n": match settings.split.strategy { SplitStrategy::LeaveLastN(n) => Some(n), _ => None },
        "test_fraction": settings.split.test_fraction,
        "validation_fraction": settings.validation_fraction,
        "seed": settings.split.seed,
        "sample_fraction": settings.sample_fraction,
        "sample_seed": settings.sample_seed,
        "test_file": settings.test_file,
        "selected_on": outcome.selected_on,
        "k": settings.eval.k,
        "relevance_threshold": settings.eval.threshold,
        "sizes": outcome.sizes,
    });
    let metadata = ModelMetadata {
        format_version: ModelMetadata::format_version(),
        model: "als".into(),
        implicit: outcome.params.implicit(),
        rank: outcome.params.rank(),
        scoring_rank: user_factors.ncols(),
        biases,
        params: serde_json::to_value(&outcome.params).unwrap_or_default(),
        metrics,
        data,
        split,
        seed: outcome.params.seed(),
        timings: BTreeMap::from([
            ("fit_seconds".to_string(), outcome.fit_seconds),
            ("eval_seconds".to_string(), outcome.eval_seconds),
        ]),
        n_users: user_ids.len(),
        n_items: item_ids.len(),
        n_train: outcome.train.len(),
        recflow_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit,
        created_at: chrono::Utc::now().to_rfc3339(),
        run_id,
    };
    let train = Interactions {
        timestamp: None,
        ..outcome.train.clone()
    };
    SavedModel {
        user_factors,
        item_factors,
        user_ids: user_ids.to_vec(),
        item_ids: item_ids.to_vec(),
        popular: cold_start_ranking(&train),
        train,
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn lowest_rmse_wins_and_ties_to_4_decimals_go_to_precision() {
        let s = Selection::default_for(false, 10);
        let r = vec![
            m(&[("rmse", 0.91231), ("precision_at_10", 0.01)]),
            m(&[("rmse", 0.91234), ("precision_at_10", 0.05)]),
            m(&[("rmse", 0.95), ("precision_at_10", 0.9)]),
        ];
        assert_eq!(s.best(&r).unwrap(), 1);
    }

    #[test]
    fn implicit_selects_highest_ndcg() {
        let s = Selection::default_for(true, 10);
        let r = vec![
            m(&[("ndcg_at_10", 0.2), ("precision_at_10", 0.1)]),
            m(&[("ndcg_at_10", 0.3), ("precision_at_10", 0.1)]),
        ];
        assert_eq!(s.best(&r).unwrap(), 1);
    }

    #[test]
    fn unknown_selection_metric_is_an_error() {
        let s = Selection::by_metric("ndcg_at_5", false, 10);
        assert!(matches!(
            s.best(&[m(&[("rmse", 1.0)])]),
            Err(TrainError::UnknownMetric(_))
        ));
    }

    #[test]
    fn alpha_is_an_axis_only_for_implicit_models() {
        let g = Grid {
            ranks: vec![8, 16],
            regs: vec![0.1],
            alphas: vec![1.0, 10.0],
        };
        assert_eq!(g.points(false, false).len(), 2);
        assert_eq!(g.points(true, false).len(), 4);
    }

    #[test]
    fn reg_is_not_an_axis_of_a_sampled_model() {
        let g = Grid {
            ranks: vec![8, 16],
            regs: vec![0.1, 0.2, 0.3],
            alphas: vec![1.0],
        };
        assert_eq!(g.points(false, false).len(), 6);
        let sampled = g.points(false, true);
        assert_eq!(sampled.len(), 2);
        assert!(sampled.iter().all(|p| p.reg == 0.1));
    }
}
