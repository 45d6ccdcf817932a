//! The baselines every experiment compares its models with, as families of their own:
//! `global_mean` (the floor for rating error), `biases` (damped user and item biases, the rating
//! baseline), `popularity` (the ranking baseline) and `random` (the ranking floor).
//!
//! Biases are fitted as Surprise's `BaselineOnly` fits them (Koren 2010, section 2.1): a few
//! alternating passes of `b_u = Σ(r - mu - b_i) / (reg_user + n_u)` and
//! `b_i = Σ(r - mu - b_u) / (reg_item + n_i)`. Popularity ranks by training count, then mean
//! rating, then index (see [`Popularity`]).

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::data::interactions::{Csr, Interactions};
use crate::model::artifact::{self, ArtifactError, Tensor};
use crate::model::family::{
    Capabilities, Config, DataShape, Estimate, FamilyError, FamilyName, FitError, FitObserver,
    FitPlan, ParamKind, ParamReader, ParamSpec, ParamValue, Recommender,
};
use crate::model::popularity::Popularity;

const REG: ParamKind = ParamKind::Float {
    min: 0.0,
    max: f64::INFINITY,
    open_min: false,
};

/// A relevance threshold for ranking families fitted on star ratings.
pub const POSITIVE_THRESHOLD: ParamSpec = ParamSpec {
    name: "positive_threshold",
    kind: ParamKind::Float {
        min: f64::NEG_INFINITY,
        max: f64::INFINITY,
        open_min: false,
    },
    default: "off (every rating is a positive)",
    help: "count only training ratings at or above this as positives",
};

pub const GLOBAL_MEAN_PARAMS: &[ParamSpec] = &[];
pub const BIASES_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "reg_user",
        kind: REG,
        default: "15",
        help: "damping of user biases (ratings at the mean a user's bias is shrunk by)",
    },
    ParamSpec {
        name: "reg_item",
        kind: REG,
        default: "10",
        help: "damping of item biases",
    },
    ParamSpec {
        name: "max_iter",
        kind: ParamKind::Int { min: 1, max: 1_000 },
        default: "10",
        help: "alternating passes",
    },
];
pub const POPULARITY_PARAMS: &[ParamSpec] = &[POSITIVE_THRESHOLD];
pub const RANDOM_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "seed",
    kind: ParamKind::Int {
        min: 0,
        max: i64::MAX,
    },
    default: "the split seed",
    help: "seed of the random scores",
}];

/// Keeps the training ratings at or above `threshold` (all of them without one).
pub fn positives(train: &Interactions, threshold: Option<f64>) -> Interactions {
    match threshold {
        None => train.clone(),
        Some(t) => {
            let keep: Vec<usize> = (0..train.len())
                .filter(|&k| f64::from(train.rating[k]) >= t)
                .collect();
            train.select(&keep)
        }
    }
}

fn mean_of(train: &Interactions) -> f32 {
    if train.is_empty() {
        return 0.0;
    }
    (train.rating.iter().map(|&r| f64::from(r)).sum::<f64>() / train.len() as f64) as f32
}

fn small(shape: &DataShape, per_row: u64, what: &str) -> Estimate {
    Estimate {
        bytes: (shape.n_users + shape.n_items) as u64 * per_row + shape.n_ratings as u64 * 12,
        what: what.to_string(),
        flop: shape.n_ratings as f64 * 40.0,
    }
}

// ---------------------------------------------------------------------------------------------

/// Checked plan of a baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselinePlan {
    GlobalMean,
    Biases {
        reg_user: f64,
        reg_item: f64,
        max_iter: usize,
    },
    Popularity {
        threshold: Option<f64>,
    },
    Random {
        seed: u64,
    },
}

/// Checks a baseline configuration.
pub fn plan(family: FamilyName, config: &Config, seed: u64) -> Result<BaselinePlan, FamilyError> {
    let specs = match family {
        FamilyName::GlobalMean => GLOBAL_MEAN_PARAMS,
        FamilyName::Biases => BIASES_PARAMS,
        FamilyName::Popularity => POPULARITY_PARAMS,
        FamilyName::Random => RANDOM_PARAMS,
        _ => return Err(FamilyError::Rule(format!("`{family}` is not a baseline"))),
    };
    let r = ParamReader::new(family, specs, config)?;
    Ok(match family {
        FamilyName::GlobalMean => BaselinePlan::GlobalMean,
        FamilyName::Biases => BaselinePlan::Biases {
            reg_user: r.float("reg_user")?.unwrap_or(15.0),
            reg_item: r.float("reg_item")?.unwrap_or(10.0),
            max_iter: r.usize("max_iter")?.unwrap_or(10),
        },
        FamilyName::Popularity => BaselinePlan::Popularity {
            threshold: r.float("positive_threshold")?,
        },
        _ => BaselinePlan::Random {
            seed: r.int("seed")?.map_or(seed, |s| s as u64),
        },
    })
}

impl FitPlan for BaselinePlan {
    fn family(&self) -> FamilyName {
        match self {
            BaselinePlan::GlobalMean => FamilyName::GlobalMean,
            BaselinePlan::Biases { .. } => FamilyName::Biases,
            BaselinePlan::Popularity { .. } => FamilyName::Popularity,
            BaselinePlan::Random { .. } => FamilyName::Random,
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            predicts_ratings: matches!(
                self,
                BaselinePlan::GlobalMean | BaselinePlan::Biases { .. }
            ),
            ranks: !matches!(self, BaselinePlan::GlobalMean),
            iterative: false,
        }
    }

    fn estimate(&self, shape: &DataShape) -> Estimate {
        small(shape, 16, "per-user and per-item tables")
    }

    fn used_params(&self) -> Config {
        let mut c = Config::new();
        match self {
            BaselinePlan::GlobalMean => {}
            BaselinePlan::Biases {
                reg_user,
                reg_item,
                max_iter,
            } => {
                c.insert("reg_user".into(), ParamValue::Float(*reg_user));
                c.insert("reg_item".into(), ParamValue::Float(*reg_item));
                c.insert("max_iter".into(), (*max_iter).into());
            }
            BaselinePlan::Popularity { threshold } => {
                if let Some(t) = threshold {
                    c.insert("positive_threshold".into(), ParamValue::Float(*t));
                }
            }
            BaselinePlan::Random { seed } => {
                c.insert("seed".into(), ParamValue::Int(*seed as i64));
            }
        }
        c
    }

    fn fit(
        &self,
        train: &Interactions,
        _validation: Option<&Interactions>,
        observer: &mut dyn FitObserver,
    ) -> Result<Box<dyn Recommender>, FitError> {
        if observer.cancelled() {
            return Err(FitError::Cancelled);
        }
        if train.is_empty() {
            return Err(FitError::EmptyTraining);
        }
        Ok(match self {
            BaselinePlan::GlobalMean => Box::new(BiasModel::global(
                mean_of(train),
                train.n_users,
                train.n_items,
            )),
            BaselinePlan::Biases {
                reg_user,
                reg_item,
                max_iter,
            } => Box::new(BiasModel::fit(train, *reg_user, *reg_item, *max_iter)),
            BaselinePlan::Popularity { threshold } => {
                Box::new(PopularityModel::fit(&positives(train, *threshold)))
            }
            BaselinePlan::Random { seed } => Box::new(RandomModel {
                seed: *seed,
                n_users: train.n_users,
                n_items: train.n_items,
            }),
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// `mu + b_u + b_i`, as two-column factors so the blocked scorer ranks by it: user
/// `[mu + b_u, 1]`, item `[1, b_i]`. A global mean has zero biases.
#[derive(Debug, Clone, PartialEq)]
pub struct BiasModel {
    pub family: FamilyName,
    pub global_mean: f32,
    pub user_bias: Vec<f32>,
    pub item_bias: Vec<f32>,
    users: Array2<f32>,
    items: Array2<f32>,
}

impl BiasModel {
    pub fn new(
        family: FamilyName,
        global_mean: f32,
        user_bias: Vec<f32>,
        item_bias: Vec<f32>,
    ) -> Self {
        let users = Array2::from_shape_fn((user_bias.len(), 2), |(u, c)| {
            if c == 0 {
                global_mean + user_bias[u]
            } else {
                1.0
            }
        });
        let items = Array2::from_shape_fn((item_bias.len(), 2), |(i, c)| {
            if c == 0 {
                1.0
            } else {
                item_bias[i]
            }
        });
        Self {
            family,
            global_mean,
            user_bias,
            item_bias,
            users,
            items,
        }
    }

    fn global(mu: f32, n_users: usize, n_items: usize) -> Self {
        Self::new(
            FamilyName::GlobalMean,
            mu,
            vec![0.0; n_users],
            vec![0.0; n_items],
        )
    }

    /// Alternating damped means (Surprise's `BaselineOnly` with `method = "als"`).
    pub fn fit(train: &Interactions, reg_user: f64, reg_item: f64, passes: usize) -> Self {
        let mu = f64::from(mean_of(train));
        let by_user = train.by_user();
        let by_item = train.by_item();
        let mut bu = vec![0f64; train.n_users];
        let mut bi = vec![0f64; train.n_items];
        for _ in 0..passes {
            for (u, b) in bu.iter_mut().enumerate() {
                let (items, ratings) = by_user.row(u);
                let s: f64 = items
                    .iter()
                    .zip(ratings)
                    .map(|(&i, &r)| f64::from(r) - mu - bi[i as usize])
                    .sum();
                let n = reg_user + items.len() as f64;
                *b = if n > 0.0 { s / n } else { 0.0 };
            }
            for (i, b) in bi.iter_mut().enumerate() {
                let (users, ratings) = by_item.row(i);
                let s: f64 = users
                    .iter()
                    .zip(ratings)
                    .map(|(&u, &r)| f64::from(r) - mu - bu[u as usize])
                    .sum();
                let n = reg_item + users.len() as f64;
                *b = if n > 0.0 { s / n } else { 0.0 };
            }
        }
        Self::new(
            FamilyName::Biases,
            mu as f32,
            bu.into_iter().map(|b| b as f32).collect(),
            bi.into_iter().map(|b| b as f32).collect(),
        )
    }

    /// Reads `weights.safetensors`.
    pub fn load(
        dir: &Path,
        family: FamilyName,
        n_users: usize,
        n_items: usize,
    ) -> Result<Self, ArtifactError> {
        let mut t = artifact::read_tensors(dir)?;
        let mu = artifact::take_f32(dir, &mut t, "global_mean", 1)?[0];
        let (bu, bi) = if family == FamilyName::Biases {
            (
                artifact::take_f32(dir, &mut t, "user_bias", n_users)?,
                artifact::take_f32(dir, &mut t, "item_bias", n_items)?,
            )
        } else {
            (vec![0.0; n_users], vec![0.0; n_items])
        };
        Ok(Self::new(family, mu, bu, bi))
    }
}

impl Recommender for BiasModel {
    fn family(&self) -> FamilyName {
        self.family
    }
    fn n_users(&self) -> usize {
        self.user_bias.len()
    }
    fn n_items(&self) -> usize {
        self.item_bias.len()
    }
    fn predicts_ratings(&self) -> bool {
        true
    }
    fn ranks(&self) -> bool {
        self.family != FamilyName::GlobalMean
    }
    fn predict(&self, user: u32, item: u32) -> Option<f32> {
        let bu = self.user_bias.get(user as usize).copied().unwrap_or(0.0);
        let bi = self.item_bias.get(item as usize).copied().unwrap_or(0.0);
        Some(self.global_mean + bu + bi)
    }
    fn ranking_factors(&self) -> Option<(ArrayView2<'_, f32>, ArrayView2<'_, f32>)> {
        Some((self.users.view(), self.items.view()))
    }
    fn score_block(&self, users: &[u32], _history: &Csr, mut out: ArrayViewMut2<'_, f32>) {
        for (r, &u) in users.iter().enumerate() {
            let base = self.global_mean + self.user_bias[u as usize];
            for (o, b) in out.row_mut(r).iter_mut().zip(&self.item_bias) {
                *o = base + b;
            }
        }
    }
    fn save(&self, dir: &Path) -> Result<(), ArtifactError> {
        let mut t = BTreeMap::new();
        t.insert(
            "global_mean".to_string(),
            Tensor::f32(vec![1], vec![self.global_mean]),
        );
        if self.family == FamilyName::Biases {
            t.insert(
                "user_bias".to_string(),
                Tensor::f32(vec![self.user_bias.len()], self.user_bias.clone()),
            );
            t.insert(
                "item_bias".to_string(),
                Tensor::f32(vec![self.item_bias.len()], self.item_bias.clone()),
            );
        }
        artifact::write_tensors(dir, &t)
    }
}

// ---------------------------------------------------------------------------------------------

/// Ranks every user's candidates by training count, then mean rating, then index. The score is
/// the item's place counted from the end (`n_items - position`), which orders exactly so.
#[derive(Debug, Clone, PartialEq)]
pub struct PopularityModel {
    n_users: usize,
    count: Vec<f32>,
    mean: Vec<f32>,
    users: Array2<f32>,
    items: Array2<f32>,
}

impl PopularityModel {
    pub fn fit(train: &Interactions) -> Self {
        let p = Popularity::fit(train);
        let n = p.n_items();
        let count = (0..n as u32).map(|i| p.count(i) as f32).collect();
        let mean = (0..n as u32).map(|i| p.mean(i) as f32).collect();
        Self::new(train.n_users, count, mean, p.ranking())
    }

    fn new(n_users: usize, count: Vec<f32>, mean: Vec<f32>, ranking: &[u32]) -> Self {
        let n = count.len();
        let mut items = Array2::<f32>::zeros((n, 1));
        for (pos, &i) in ranking.iter().enumerate() {
            items[[i as usize, 0]] = (n - pos) as f32;
        }
        Self {
            n_users,
            count,
            mean,
            users: Array2::ones((n_users, 1)),
            items,
        }
    }

    /// Reads `weights.safetensors` and rebuilds the ranking from counts and means.
    pub fn load(dir: &Path, n_users: usize, n_items: usize) -> Result<Self, ArtifactError> {
        let mut t = artifact::read_tensors(dir)?;
        let count = artifact::take_f32(dir, &mut t, "item_count", n_items)?;
        let mean = artifact::take_f32(dir, &mut t, "item_mean", n_items)?;
        let mut order: Vec<u32> = (0..n_items as u32).collect();
        order.sort_by(|&a, &b| {
            let (a_, b_) = (a as usize, b as usize);
            count[b_]
                .total_cmp(&count[a_])
                .then(mean[b_].total_cmp(&mean[a_]))
                .then(a.cmp(&b))
        });
        Ok(Self::new(n_users, count, mean, &order))
    }
}

impl Recommender for PopularityModel {
    fn family(&self) -> FamilyName {
        FamilyName::Popularity
    }
    fn n_users(&self) -> usize {
        self.n_users
    }
    fn n_items(&self) -> usize {
        self.count.len()
    }
    fn predicts_ratings(&self) -> bool {
        false
    }
    fn ranking_factors(&self) -> Option<(ArrayView2<'_, f32>, ArrayView2<'_, f32>)> {
        Some((self.users.view(), self.items.view()))
    }
    fn score_block(&self, users: &[u32], _history: &Csr, mut out: ArrayViewMut2<'_, f32>) {
        for r in 0..users.len() {
            out.row_mut(r).assign(&self.items.column(0));
        }
    }
    fn save(&self, dir: &Path) -> Result<(), ArtifactError> {
        let n = self.count.len();
        let mut t = BTreeMap::new();
        t.insert(
            "item_count".to_string(),
            Tensor::f32(vec![n], self.count.clone()),
        );
        t.insert(
            "item_mean".to_string(),
            Tensor::f32(vec![n], self.mean.clone()),
        );
        artifact::write_tensors(dir, &t)
    }
}

// ---------------------------------------------------------------------------------------------

/// Seeded uniform scores: the same for a (seed, user, item), whatever the order of scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomModel {
    pub seed: u64,
    pub n_users: usize,
    pub n_items: usize,
}

/// SplitMix64's finalizer: a well-mixed 64-bit hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl RandomModel {
    fn score(&self, user: u32, item: u32) -> f32 {
        let h = mix(self.seed ^ mix((u64::from(user) << 32) | u64::from(item)));
        (h >> 40) as f32 / (1u64 << 24) as f32
    }
}

impl Recommender for RandomModel {
    fn family(&self) -> FamilyName {
        FamilyName::Random
    }
    fn n_users(&self) -> usize {
        self.n_users
    }
    fn n_items(&self) -> usize {
        self.n_items
    }
    fn predicts_ratings(&self) -> bool {
        false
    }
    fn score_block(&self, users: &[u32], _history: &Csr, mut out: ArrayViewMut2<'_, f32>) {
        for (r, &u) in users.iter().enumerate() {
            for (i, o) in out.row_mut(r).iter_mut().enumerate() {
                *o = self.score(u, i as u32);
            }
        }
    }
    fn save(&self, _dir: &Path) -> Result<(), ArtifactError> {
        // The seed is in the metadata's params; nothing else to store.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::family::NoObserver;

    fn table() -> Interactions {
        // Item 0: 5, 4 (mean 4.5, 2 ratings); item 1: 1 (1 rating); item 2: 3, 3, 3.
        Interactions::from_rows(
            &[
                (0, 0, 5.0),
                (1, 0, 4.0),
                (0, 1, 1.0),
                (0, 2, 3.0),
                (1, 2, 3.0),
                (2, 2, 3.0),
            ],
            3,
            4,
        )
    }

    #[test]
    fn biases_match_the_alternating_damped_means() {
        let t = table();
        let m = BiasModel::fit(&t, 0.0, 0.0, 1);
        let mu = 19.0 / 6.0;
        // One pass with no damping: b_u is the user's mean residual, then b_i given b_u.
        let bu0 = ((5.0 - mu) + (1.0 - mu) + (3.0 - mu)) / 3.0;
        assert!((m.user_bias[0] as f64 - bu0).abs() < 1e-5);
        assert!((m.global_mean as f64 - mu).abs() < 1e-6);
        let p = m.predict(0, 2).unwrap();
        assert!((p - (m.global_mean + m.user_bias[0] + m.item_bias[2])).abs() < 1e-6);
        // An unknown item predicts from the user's bias alone.
        assert_eq!(m.predict(0, 3), Some(m.global_mean + m.user_bias[0]));
    }

    #[test]
    fn damping_shrinks_biases_towards_zero() {
        let t = table();
        let loose = BiasModel::fit(&t, 0.0, 0.0, 10);
        let tight = BiasModel::fit(&t, 100.0, 100.0, 10);
        assert!(tight.item_bias[1].abs() < loose.item_bias[1].abs());
    }

    #[test]
    fn popularity_ranks_by_count_then_mean_then_index() {
        let m = PopularityModel::fit(&table());
        let (u, v) = m.ranking_factors().unwrap();
        let scores: Vec<f32> = (0..4).map(|i| u.row(0).dot(&v.row(i))).collect();
        // Item 2 (3 ratings) > item 0 (2) > item 1 (1) > item 3 (none).
        assert!(scores[2] > scores[0] && scores[0] > scores[1] && scores[1] > scores[3]);
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        assert_eq!(PopularityModel::load(dir.path(), 3, 4).unwrap(), m);
    }

    #[test]
    fn random_scores_are_seeded_and_order_free() {
        let m = RandomModel {
            seed: 7,
            n_users: 2,
            n_items: 50,
        };
        let h = Csr::default();
        let mut a = Array2::zeros((2, 50));
        m.score_block(&[0, 1], &h, a.view_mut());
        let mut b = Array2::zeros((1, 50));
        m.score_block(&[1], &h, b.view_mut());
        assert_eq!(a.row(1), b.row(0));
        assert_ne!(a.row(0), a.row(1));
        assert!(a.iter().all(|&s| (0.0..1.0).contains(&s)));
    }

    #[test]
    fn a_global_mean_predicts_the_mean_and_does_not_rank() {
        let p = plan(FamilyName::GlobalMean, &Config::new(), 1).unwrap();
        assert!(!p.capabilities().ranks);
        let m = p.fit(&table(), None, &mut NoObserver).unwrap();
        assert!((m.predict(0, 0).unwrap() - 19.0 / 6.0).abs() < 1e-6);
        assert!(!m.ranks());
    }

    #[test]
    fn a_baseline_refuses_parameters_it_does_not_have() {
        let c: Config = [("rank".to_string(), ParamValue::Int(3))].into();
        assert!(matches!(
            plan(FamilyName::Popularity, &c, 1),
            Err(FamilyError::UnknownParam { .. })
        ));
    }
}
