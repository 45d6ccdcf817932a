//! What an experiment fits: model entries, each a family with fixed parameters and a search
//! (a grid, or seeded random trials over lists and ranges), repeated over seeds, and the
//! configurations they expand to, every one checked by its family before any work.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use thiserror::Error;

use crate::eval::keys::SelectMetric;
use crate::model::family::{Config, FamilyError, FamilyName, FitPlan, ParamValue};
use crate::model::{self, FitOptions};

/// A range of a random search: `{ min = .., max = .., log = true, int = false }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Range {
    pub min: f64,
    pub max: f64,
    pub log: bool,
    pub int: bool,
}

/// Values a searched parameter takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Space {
    List(Vec<ParamValue>),
    Range(Range),
}

/// How an entry's configurations are chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Search {
    /// Every combination of the lists (no axes: the fixed parameters alone).
    Grid {
        axes: BTreeMap<String, Vec<ParamValue>>,
    },
    /// `trials` draws, seeded, each parameter from its list or range.
    Random {
        trials: usize,
        seed: u64,
        space: BTreeMap<String, Space>,
    },
}

impl Default for Search {
    fn default() -> Self {
        Search::Grid {
            axes: BTreeMap::new(),
        }
    }
}

/// Early stopping on a validation metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EarlyStopping {
    pub metric: SelectMetric,
    /// Iterations without improvement before stopping.
    pub patience: usize,
}

/// One model entry of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Unique within the experiment; used in run names.
    pub name: String,
    pub family: FamilyName,
    /// Parameters every configuration shares.
    pub fixed: Config,
    pub search: Search,
    /// Fits per configuration, with seeds `seed, seed + 1, ...`; selection uses the mean.
    pub repeats: usize,
    pub early_stopping: Option<EarlyStopping>,
}

/// A configuration to fit: the entry's fixed parameters and one point of its search.
pub struct Candidate {
    /// Index of the entry.
    pub entry: usize,
    /// Index within the entry's configurations.
    pub index: usize,
    pub config: Config,
    /// The searched parameters' values (what tells configurations apart), for names and tables.
    pub point: Config,
    /// One checked plan per repeat (seeds differ).
    pub plans: Vec<Box<dyn FitPlan>>,
}

impl Candidate {
    /// `rank=16 reg=0.1`, or `defaults` when nothing is searched.
    pub fn label(&self) -> String {
        label(&self.point)
    }
}

/// `rank=16 reg=0.1` for a point.
pub fn label(point: &Config) -> String {
    if point.is_empty() {
        return "defaults".into();
    }
    point
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A search that cannot run.
#[derive(Debug, Error)]
pub enum SearchError {
    #[error("entry `{entry}`, configuration {point}: {source}")]
    Family {
        entry: String,
        point: String,
        #[source]
        source: FamilyError,
    },
    #[error("entry `{entry}`: the range of `{name}` {problem}")]
    BadRange {
        entry: String,
        name: String,
        problem: String,
    },
    #[error("entry `{entry}`: `{name}` is searched but given no values")]
    EmptyAxis { entry: String, name: String },
    #[error("entry `{entry}`: `repeats` must be at least 1")]
    ZeroRepeats { entry: String },
    #[error("the search makes {runs} runs, more than the limit of {limit}")]
    TooManyRuns { runs: usize, limit: usize },
}

impl SearchError {
    pub fn hint(&self) -> Option<String> {
        match self {
            SearchError::Family { source, .. } => source.hint(),
            SearchError::TooManyRuns { .. } => {
                Some("shrink the grid or the trials, or raise the limit with `--max-runs N`".into())
            }
            _ => None,
        }
    }
}

impl Range {
    /// Checks min <= max, finiteness, and a log range above 0.
    pub fn check(&self) -> Result<(), String> {
        if !(self.min.is_finite() && self.max.is_finite()) {
            return Err("must have finite `min` and `max`".into());
        }
        if self.min > self.max {
            return Err(format!("has min {} above max {}", self.min, self.max));
        }
        if self.log && self.min <= 0.0 {
            return Err(format!(
                "is on a log scale but touches 0 or below (min {})",
                self.min
            ));
        }
        Ok(())
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> ParamValue {
        let u: f64 = rng.gen();
        let x = if self.log {
            (self.min.ln() + u * (self.max.ln() - self.min.ln())).exp()
        } else {
            self.min + u * (self.max - self.min)
        };
        if self.int {
            ParamValue::Int(x.round().clamp(self.min.ceil(), self.max.floor()) as i64)
        } else {
            // Six significant digits: logged params stay readable.
            let digits = 6 - x.abs().log10().ceil().max(-300.0) as i32;
            let scale = 10f64.powi(digits.clamp(0, 15));
            ParamValue::Float((x * scale).round() / scale)
        }
    }
}

impl Entry {
    /// The points of the entry's search, in order.
    pub fn points(&self) -> Result<Vec<Config>, SearchError> {
        if self.repeats == 0 {
            return Err(SearchError::ZeroRepeats {
                entry: self.name.clone(),
            });
        }
        match &self.search {
            Search::Grid { axes } => {
                let mut points = vec![Config::new()];
                for (name, values) in axes {
                    if values.is_empty() {
                        return Err(SearchError::EmptyAxis {
                            entry: self.name.clone(),
                            name: name.clone(),
                        });
                    }
                    points = points
                        .into_iter()
                        .flat_map(|p| {
                            values.iter().map(move |v| {
                                let mut q = p.clone();
                                q.insert(name.clone(), v.clone());
                                q
                            })
                        })
                        .collect();
                }
                Ok(points)
            }
            Search::Random {
                trials,
                seed,
                space,
            } => {
                for (name, s) in space {
                    match s {
                        Space::Range(r) => r.check().map_err(|problem| SearchError::BadRange {
                            entry: self.name.clone(),
                            name: name.clone(),
                            problem,
                        })?,
                        Space::List(v) if v.is_empty() => {
                            return Err(SearchError::EmptyAxis {
                                entry: self.name.clone(),
                                name: name.clone(),
                            })
                        }
                        Space::List(_) => {}
                    }
                }
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                Ok((0..*trials)
                    .map(|_| {
                        space
                            .iter()
                            .map(|(name, s)| {
                                let v = match s {
                                    Space::List(v) => v[rng.gen_range(0..v.len())].clone(),
                                    Space::Range(r) => r.draw(&mut rng),
                                };
                                (name.clone(), v)
                            })
                            .collect()
                    })
                    .collect())
            }
        }
    }

    /// How many fits the entry makes in its search (the final refit excluded).
    pub fn runs(&self) -> Result<usize, SearchError> {
        Ok(self.points()?.len() * self.repeats)
    }

    /// Searched parameters with their values, for edge warnings: the grid's lists, or the random
    /// search's ranges.
    pub fn searched(&self) -> BTreeMap<String, Space> {
        match &self.search {
            Search::Grid { axes } => axes
                .iter()
                .map(|(k, v)| (k.clone(), Space::List(v.clone())))
                .collect(),
            Search::Random { space, .. } => space.clone(),
        }
    }
}

/// Expands and checks every configuration of every entry, refusing more than `max_runs` fits.
pub fn candidates(
    entries: &[Entry],
    options: &FitOptions,
    max_runs: usize,
) -> Result<Vec<Candidate>, SearchError> {
    let mut total = 0;
    for e in entries {
        total += e.runs()?;
    }
    if total > max_runs {
        return Err(SearchError::TooManyRuns {
            runs: total,
            limit: max_runs,
        });
    }
    let mut out = Vec::new();
    for (ei, e) in entries.iter().enumerate() {
        for (index, point) in e.points()?.into_iter().enumerate() {
            let mut config = e.fixed.clone();
            config.extend(point.clone());
            let mut plans = Vec::with_capacity(e.repeats);
            for r in 0..e.repeats {
                let opts = FitOptions {
                    seed: options.seed + r as u64,
                    ..*options
                };
                let mut c = config.clone();
                if r > 0 {
                    // A repeat changes the seed the configuration would use.
                    if let Some(ParamValue::Int(s)) = config.get("seed") {
                        c.insert("seed".into(), ParamValue::Int(s + r as i64));
                    }
                }
                let plan =
                    model::plan(e.family, &c, &opts).map_err(|source| SearchError::Family {
                        entry: e.name.clone(),
                        point: label(&point),
                        source,
                    })?;
                plans.push(plan);
            }
            out.push(Candidate {
                entry: ei,
                index,
                config,
                point,
                plans,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(search: Search) -> Entry {
        Entry {
            name: "als".into(),
            family: FamilyName::Als,
            fixed: Config::new(),
            search,
            repeats: 1,
            early_stopping: None,
        }
    }

    fn grid(axes: &[(&str, Vec<ParamValue>)]) -> Search {
        Search::Grid {
            axes: axes
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn a_grid_is_every_combination() {
        let e = entry(grid(&[
            ("rank", vec![8.into(), 16.into()]),
            ("reg", vec![0.1.into(), 0.2.into(), 0.3.into()]),
        ]));
        assert_eq!(e.points().unwrap().len(), 6);
        let c = candidates(&[e], &FitOptions::default(), 100).unwrap();
        assert_eq!(c[0].label(), "rank=8 reg=0.1");
    }

    #[test]
    fn random_search_is_seeded_and_stays_in_range() {
        let space: BTreeMap<String, Space> = [
            (
                "reg".to_string(),
                Space::Range(Range {
                    min: 0.01,
                    max: 1.0,
                    log: true,
                    int: false,
                }),
            ),
            (
                "rank".to_string(),
                Space::Range(Range {
                    min: 4.0,
                    max: 64.0,
                    log: false,
                    int: true,
                }),
            ),
        ]
        .into();
        let e = entry(Search::Random {
            trials: 20,
            seed: 3,
            space,
        });
        let a = e.points().unwrap();
        assert_eq!(a, e.points().unwrap());
        assert_eq!(a.len(), 20);
        for p in &a {
            let reg = p["reg"].as_f64().unwrap();
            assert!((0.01..=1.0).contains(&reg));
            assert!(matches!(p["rank"], ParamValue::Int(r) if (4..=64).contains(&r)));
        }
    }

    #[test]
    fn bad_ranges_and_limits_are_refused_before_work() {
        for r in [
            Range {
                min: 2.0,
                max: 1.0,
                log: false,
                int: false,
            },
            Range {
                min: 0.0,
                max: 1.0,
                log: true,
                int: false,
            },
        ] {
            let e = entry(Search::Random {
                trials: 2,
                seed: 1,
                space: [("reg".to_string(), Space::Range(r))].into(),
            });
            assert!(matches!(e.points(), Err(SearchError::BadRange { .. })));
        }
        let ranks: Vec<ParamValue> = (1..=10_000).map(|r: i64| r.into()).collect();
        let e = entry(grid(&[("rank", ranks)]));
        assert!(matches!(
            candidates(&[e], &FitOptions::default(), 1000),
            Err(SearchError::TooManyRuns { runs: 10_000, .. })
        ));
        let mut e = entry(Search::default());
        e.repeats = 0;
        assert!(matches!(e.points(), Err(SearchError::ZeroRepeats { .. })));
    }

    #[test]
    fn a_bad_configuration_names_its_entry_and_point() {
        let e = entry(grid(&[("rank", vec![0.into()])]));
        let err = candidates(&[e], &FitOptions::default(), 10).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("entry `als`, configuration rank=0"),
            "{err}"
        );
    }
}
