//! What a finished run says: the leaderboard (each entry's final model with its figures, the
//! winner on validation, the best baseline) and the warnings a careful reader would want
//! (a model that loses to a baseline, a best point on the edge of its search, collapsed factors,
//! validation that got worse while training went on). Pure data: printing and logging happen in
//! the layers above.

use serde::Serialize;

use crate::eval::keys::{Direction, Split};
use crate::pipeline::search::{Entry, Space};
use crate::pipeline::select::ties;
use crate::pipeline::train::{Outcome, PipelineSettings};

/// One row: an entry's final model.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub entry: String,
    pub family: String,
    pub baseline: bool,
    /// The selected configuration's searched values (`rank=16 reg=0.1`).
    pub config: String,
    /// The experiment's selection metric on the selection split, when the entry reports it.
    pub selection: Option<f64>,
    /// Whether the entry takes part in the ranking (it reports the selection metric).
    pub ranked: bool,
    pub winner: bool,
    /// Test-split figures (`test_` keys).
    pub test: Vec<(String, f64)>,
    pub fit_seconds: f64,
}

/// Every entry's final model, best first on the selection metric (unranked entries last).
#[derive(Debug, Clone, Serialize)]
pub struct Leaderboard {
    /// `val_ndcg_at_10` (or `test_...` when selection used the test split).
    pub selection_key: String,
    pub direction: Direction,
    pub rows: Vec<Row>,
    /// Row index of the best baseline on the selection metric.
    pub best_baseline: Option<usize>,
    /// Row index of the winner.
    pub winner: Option<usize>,
}

pub fn leaderboard(settings: &PipelineSettings, outcome: &Outcome) -> Leaderboard {
    let key = settings.select.on(outcome.selected_on);
    let dir = settings.select.direction;
    let mut rows: Vec<Row> = outcome
        .entries
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let e = &settings.entries[o.entry];
            let t = o.best_trial();
            Row {
                entry: e.name.clone(),
                family: e.family.to_string(),
                baseline: e.family.is_baseline(),
                config: crate::pipeline::search::label(&t.point),
                selection: if o.ranked { t.metric(&key) } else { None },
                ranked: o.ranked,
                winner: outcome.winner == Some(i),
                test: o.test.metrics(Split::Test),
                fit_seconds: o.fit_seconds,
            }
        })
        .collect();
    // Best first; unranked keep their order after the ranked ones.
    rows.sort_by(|a, b| match (a.selection, b.selection) {
        (Some(x), Some(y)) => match dir {
            Direction::Lower => x.total_cmp(&y),
            Direction::Higher => y.total_cmp(&x),
        },
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let best_baseline = rows
        .iter()
        .position(|r| r.baseline && r.selection.is_some());
    let winner = rows.iter().position(|r| r.winner);
    Leaderboard {
        selection_key: key,
        direction: dir,
        rows,
        best_baseline,
        winner,
    }
}

impl Leaderboard {
    /// Every test key any row has, in a stable order (rating metrics first).
    pub fn test_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for r in &self.rows {
            for (k, _) in &r.test {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    /// Header and rows for a table or CSV: entry, family, config, the selection metric, the
    /// test figures, fit seconds. Numbers in full precision; `format` shortens them for people.
    pub fn cells(&self, format: impl Fn(f64) -> String) -> (Vec<String>, Vec<Vec<String>>) {
        let keys = self.test_keys();
        let mut header = vec![
            "entry".to_string(),
            "family".into(),
            "config".into(),
            self.selection_key.clone(),
        ];
        header.extend(keys.iter().cloned());
        header.push("fit_seconds".into());
        let rows = self
            .rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    r.entry.clone(),
                    r.family.clone(),
                    r.config.clone(),
                    r.selection.map(&format).unwrap_or_default(),
                ];
                for k in &keys {
                    row.push(
                        r.test
                            .iter()
                            .find(|(t, _)| t == k)
                            .map(|(_, v)| format(*v))
                            .unwrap_or_default(),
                    );
                }
                row.push(format!("{:.2}", r.fit_seconds));
                row
            })
            .collect();
        (header, rows)
    }

    /// The leaderboard as a Markdown table (the parent run's note).
    pub fn markdown(&self) -> String {
        let (header, rows) = self.cells(|v| format!("{v:.4}"));
        let mut md = format!(
            "| {} |\n|{}|\n",
            header.join(" | "),
            "---|".repeat(header.len())
        );
        for (i, r) in rows.iter().enumerate() {
            let mut r = r.clone();
            if Some(i) == self.winner {
                r[0] = format!("**{}** (winner)", r[0]);
            } else if Some(i) == self.best_baseline {
                r[0] = format!("{} (best baseline)", r[0]);
            }
            md.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        md
    }

    /// The winner's selection figure against the best baseline's: (winner, baseline, delta).
    pub fn versus_baseline(&self) -> Option<(&Row, &Row, f64)> {
        let w = &self.rows[self.winner?];
        let b = &self.rows[self.best_baseline?];
        if w.baseline {
            return None;
        }
        Some((w, b, w.selection? - b.selection?))
    }
}

/// A warning about the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// `loses_to_baseline`, `edge`, `collapsed`, `worse_after`.
    pub kind: &'static str,
    pub entry: String,
    pub message: String,
}

pub fn warnings(settings: &PipelineSettings, outcome: &Outcome) -> Vec<Warning> {
    let mut out = Vec::new();
    let board = leaderboard(settings, outcome);
    let key = &board.selection_key;
    let dir = board.direction;
    if let Some(b) = board.best_baseline.map(|i| &board.rows[i]) {
        for r in board.rows.iter().filter(|r| !r.baseline) {
            if let (Some(v), Some(bv)) = (r.selection, b.selection) {
                if dir.better(bv, v) && !ties(v, bv) {
                    out.push(Warning {
                        kind: "loses_to_baseline",
                        entry: r.entry.clone(),
                        message: format!(
                            "`{}` ({key} {v:.4}) loses to the baseline `{}` ({bv:.4})",
                            r.entry, b.entry
                        ),
                    });
                }
            }
        }
    }
    for o in &outcome.entries {
        let e = &settings.entries[o.entry];
        let t = o.best_trial();
        out.extend(edge_warnings(e, &t.point));
        if let Some((a, z)) = o.collapsed {
            out.push(Warning {
                kind: "collapsed",
                entry: e.name.clone(),
                message: format!(
                    "`{}`'s factors collapsed: with them zeroed it scores {z:.4} against {a:.4} ({}), a biases-only model; lower `reg` or widen its search",
                    e.name,
                    o.select.on(outcome.selected_on)
                ),
            });
        }
        if e.early_stopping.is_none() {
            let k = o.select.on(outcome.selected_on);
            let curve: Vec<(usize, f64)> = t
                .history
                .iter()
                .filter_map(|h| {
                    h.metrics
                        .iter()
                        .find(|(m, _)| *m == k)
                        .map(|(_, v)| (h.iteration, *v))
                })
                .collect();
            if let (Some(&(best_it, best)), Some(&(last_it, last))) = (
                curve.iter().reduce(|a, b| {
                    if o.select.direction.better(b.1, a.1) {
                        b
                    } else {
                        a
                    }
                }),
                curve.last(),
            ) {
                if best_it < last_it && !ties(best, last) {
                    out.push(Warning {
                        kind: "worse_after",
                        entry: e.name.clone(),
                        message: format!(
                            "`{}`: {k} was best at iteration {best_it} ({best:.4}) and got worse to {last:.4} by iteration {last_it}; set `early_stopping = {{ metric = \"{}\", patience = 3 }}`",
                            e.name, o.select.name
                        ),
                    });
                }
            }
        }
    }
    out
}

/// A best point on the edge of a searched numeric axis: which axis, which direction.
fn edge_warnings(e: &Entry, point: &crate::model::family::Config) -> Vec<Warning> {
    let mut out = Vec::new();
    for (name, space) in e.searched() {
        let Some(v) = point.get(&name).and_then(|v| v.as_f64()) else {
            continue;
        };
        let (lo, hi, at) = match &space {
            Space::List(values) => {
                let nums: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
                if nums.len() < 3 {
                    continue;
                }
                let lo = nums.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = nums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (
                    lo,
                    hi,
                    if v == lo {
                        -1
                    } else if v == hi {
                        1
                    } else {
                        0
                    },
                )
            }
            Space::Range(r) => {
                let (a, b, x) = if r.log {
                    (r.min.ln(), r.max.ln(), v.max(f64::MIN_POSITIVE).ln())
                } else {
                    (r.min, r.max, v)
                };
                let span = (b - a).max(f64::MIN_POSITIVE);
                let pos = (x - a) / span;
                (
                    r.min,
                    r.max,
                    if pos <= 0.05 {
                        -1
                    } else if pos >= 0.95 {
                        1
                    } else {
                        0
                    },
                )
            }
        };
        if at != 0 {
            let (side, bound) = if at < 0 {
                ("smallest", lo)
            } else {
                ("largest", hi)
            };
            out.push(Warning {
                kind: "edge",
                entry: e.name.clone(),
                message: format!(
                    "`{}`: the best `{name}` ({v}) is at the {side} value searched ({bound}); widen the search {}",
                    e.name,
                    if at < 0 { "downward" } else { "upward" }
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::keys::SelectMetric;
    use crate::eval::metrics::RankingMetrics;
    use crate::eval::EvalReport;
    use crate::model::artifact::SplitSizes;
    use crate::model::baselines::RandomModel;
    use crate::model::family::{Config, FamilyName, ParamValue};
    use crate::pipeline::search::{Entry, Search};
    use crate::pipeline::train::{EntryOutcome, IterationRecord, Trial};
    use std::sync::Arc;

    fn entry(name: &str, family: FamilyName, search: Search) -> Entry {
        Entry {
            name: name.into(),
            family,
            fixed: Config::new(),
            search,
            repeats: 1,
            early_stopping: None,
        }
    }

    fn trial(point: Config, ndcg: f64, history: Vec<IterationRecord>) -> Trial {
        Trial {
            point,
            used: Config::new(),
            metrics: vec![("val_ndcg_at_10".into(), ndcg)],
            sd: Vec::new(),
            per_repeat: Vec::new(),
            counts: Vec::new(),
            history,
            best_iteration: None,
            fit_seconds: 0.0,
            eval_seconds: 0.0,
        }
    }

    fn outcome(entry: usize, trials: Vec<Trial>, best: usize) -> EntryOutcome {
        EntryOutcome {
            entry,
            trials,
            best,
            select: SelectMetric::parse("ndcg_at_10", &[10]).unwrap(),
            ranked: true,
            final_model: Arc::new(RandomModel {
                seed: 1,
                n_users: 1,
                n_items: 1,
            }),
            final_used: Config::new(),
            test: EvalReport {
                k: 10,
                threshold: None,
                rating: None,
                ranking: Some(RankingMetrics::default()),
            },
            fit_seconds: 0.0,
            eval_seconds: 0.0,
            collapsed: None,
        }
    }

    fn settings(entries: Vec<Entry>) -> PipelineSettings {
        PipelineSettings::for_tests(entries, "ndcg_at_10")
    }

    fn point(k: &str, v: i64) -> Config {
        [(k.to_string(), ParamValue::Int(v))].into()
    }

    fn kinds(w: &[Warning]) -> Vec<&'static str> {
        w.iter().map(|w| w.kind).collect()
    }

    #[test]
    fn a_model_below_the_best_baseline_is_warned_about_and_the_winner_is_best_on_validation() {
        let s = settings(vec![
            entry("knn", FamilyName::ItemKnn, Search::default()),
            entry("popularity", FamilyName::Popularity, Search::default()),
        ]);
        let o = Outcome {
            sizes: SplitSizes::default(),
            selected_on: crate::eval::keys::Split::Val,
            entries: vec![
                outcome(0, vec![trial(Config::new(), 0.01, vec![])], 0),
                outcome(1, vec![trial(Config::new(), 0.02, vec![])], 0),
            ],
            winner: Some(1),
            train: Default::default(),
        };
        let w = warnings(&s, &o);
        assert_eq!(kinds(&w), vec!["loses_to_baseline"]);
        assert!(w[0].message.contains("`knn`") && w[0].message.contains("`popularity`"));
        let b = leaderboard(&s, &o);
        assert_eq!(b.rows[0].entry, "popularity");
        assert_eq!(b.winner, Some(0));
        assert_eq!(b.best_baseline, Some(0));
    }

    #[test]
    fn a_best_point_on_the_edge_of_its_grid_names_the_axis_and_direction() {
        let grid = Search::Grid {
            axes: [(
                "neighbors".to_string(),
                vec![10.into(), 20.into(), 40.into()],
            )]
            .into(),
        };
        let s = settings(vec![entry("knn", FamilyName::ItemKnn, grid)]);
        let trials = vec![
            trial(point("neighbors", 10), 0.01, vec![]),
            trial(point("neighbors", 20), 0.02, vec![]),
            trial(point("neighbors", 40), 0.03, vec![]),
        ];
        let o = Outcome {
            sizes: SplitSizes::default(),
            selected_on: crate::eval::keys::Split::Val,
            entries: vec![outcome(0, trials, 2)],
            winner: Some(0),
            train: Default::default(),
        };
        let w = warnings(&s, &o);
        assert_eq!(kinds(&w), vec!["edge"]);
        assert!(
            w[0].message.contains("largest") && w[0].message.contains("upward"),
            "{}",
            w[0].message
        );
    }

    #[test]
    fn validation_that_got_worse_after_its_best_iteration_is_warned_about() {
        let s = settings(vec![entry("als", FamilyName::Als, Search::default())]);
        let curve = |it: usize, v: f64| IterationRecord {
            iteration: it,
            train_loss: Some(1.0),
            seconds: 0.0,
            metrics: vec![("val_ndcg_at_10".into(), v)],
        };
        let history = vec![curve(1, 0.03), curve(2, 0.05), curve(3, 0.04)];
        let mut o = outcome(0, vec![trial(Config::new(), 0.04, history)], 0);
        o.collapsed = Some((0.04, 0.04));
        let out = Outcome {
            sizes: SplitSizes::default(),
            selected_on: crate::eval::keys::Split::Val,
            entries: vec![o],
            winner: Some(0),
            train: Default::default(),
        };
        let w = warnings(&s, &out);
        assert_eq!(kinds(&w), vec!["collapsed", "worse_after"]);
        assert!(w[1].message.contains("iteration 2"), "{}", w[1].message);
    }
}
