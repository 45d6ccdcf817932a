//! What a finished run says: the leaderboard (each entry's final model with its figures, the
//! winner on validation, the best baseline) and the warnings a careful reader would want
//! (a model that loses to a baseline, a best point on the edge of its search, collapsed factors,
//! validation that got worse while training went on). Pure data: printing and logging happen in
//! the layers above.

use serde::Serialize;

use crate::eval::keys::{Direction, Split};
use crate::eval::stats::{holm, paired, Bootstrap};
use crate::model::family::ParamValue;
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
    /// 95% bootstrap intervals over test users: (`test_` key, low, high).
    pub test_ci: Vec<(String, f64, f64)>,
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
    /// Each model against the best baseline, user by user (see [`with_comparisons`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<Comparison>,
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
                test_ci: o
                    .test_ci
                    .iter()
                    .map(|(k, ci)| (format!("{}_{k}", Split::Test), ci.low, ci.high))
                    .collect(),
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
        comparisons: Vec::new(),
    }
}

/// The leaderboard with its paired comparisons against the best baseline (they resample users,
/// so they are computed once, for the board that is shown and logged).
pub fn with_comparisons(settings: &PipelineSettings, outcome: &Outcome) -> Leaderboard {
    let mut board = leaderboard(settings, outcome);
    board.comparisons = comparisons(&board, settings, outcome, settings.bootstrap());
    board
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

    /// The paired comparisons as Markdown bullets (empty when there are none).
    pub fn comparisons_markdown(&self) -> String {
        if self.comparisons.is_empty() {
            return String::new();
        }
        let mut md =
            String::from("\n**Against the best baseline** (test split, user by user):\n\n");
        for c in &self.comparisons {
            md.push_str(&format!("- {}\n", c.sentence()));
        }
        md
    }
}

/// A final model against the best baseline on the test split, user by user (`entry - baseline`
/// on the users both were evaluated on).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub entry: String,
    pub baseline: String,
    /// `test_ndcg_at_10`.
    pub key: String,
    pub users: usize,
    pub mean_diff: f64,
    /// 95% bootstrap interval of the mean difference.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub t_p: f64,
    pub wilcoxon_p: f64,
    /// Cohen's d of the paired differences.
    pub effect_size: f64,
    /// The p values after Holm's correction over every comparison of the run (`of` of them).
    pub t_p_holm: f64,
    pub wilcoxon_p_holm: f64,
    pub of: usize,
}

impl Comparison {
    /// Whether the difference holds up: the interval excludes 0 and the corrected paired t test
    /// is below 5%.
    pub fn is_real(&self) -> bool {
        let excludes_zero = match (self.ci_low, self.ci_high) {
            (Some(l), Some(h)) => l > 0.0 || h < 0.0,
            _ => false,
        };
        excludes_zero && self.t_p_holm < 0.05
    }

    /// One line for people: `ease - popularity on test_ndcg_at_10: +0.0523 [+0.0410, +0.0641]
    /// over 943 users; paired t p 1.2e-10, Wilcoxon p 3.1e-9 (Holm, 4 comparisons): real`.
    pub fn sentence(&self) -> String {
        let ci = match (self.ci_low, self.ci_high) {
            (Some(l), Some(h)) => format!(" [95% CI {l:+.4}, {h:+.4}]"),
            _ => String::new(),
        };
        format!(
            "`{}` - `{}` on {}: {:+.4}{ci} over {} users; paired t p {:.2e}, Wilcoxon p {:.2e} \
             (Holm over {} comparison{}), effect size {:.2}: {}",
            self.entry,
            self.baseline,
            self.key,
            self.mean_diff,
            self.users,
            self.t_p_holm,
            self.wilcoxon_p_holm,
            self.of,
            if self.of == 1 { "" } else { "s" },
            self.effect_size,
            if self.is_real() {
                "a real difference"
            } else {
                "within noise"
            }
        )
    }
}

/// Each non-baseline entry of `board` against its best baseline (chosen on validation), on
/// the test split's per-user values of the selection metric. Ranking metrics only: RMSE is not a
/// mean over users, so its paired test would need another statistic (not offered yet).
pub fn comparisons(
    board: &Leaderboard,
    settings: &PipelineSettings,
    outcome: &Outcome,
    boot: Bootstrap,
) -> Vec<Comparison> {
    let Some(base_row) = board.best_baseline.map(|i| &board.rows[i]) else {
        return Vec::new();
    };
    let by_name = |name: &str| {
        outcome
            .entries
            .iter()
            .find(|o| settings.entries[o.entry].name == name)
    };
    let Some(base) = by_name(&base_row.entry) else {
        return Vec::new();
    };
    let select = &settings.select;
    if select.is_rating() {
        return Vec::new();
    }
    let metric_base = select.info.base;
    let key = select.on(Split::Test);
    let values = |o: &crate::pipeline::train::EntryOutcome| -> Vec<(u32, f64)> {
        o.test
            .per_user
            .ranking
            .iter()
            .filter_map(|u| u.value(metric_base).map(|v| (u.user, v)))
            .collect()
    };
    let b = values(base);
    let mut out: Vec<Comparison> = Vec::new();
    let mut t_ps = Vec::new();
    let mut w_ps = Vec::new();
    for row in board.rows.iter().filter(|r| !r.baseline && r.ranked) {
        let Some(o) = by_name(&row.entry) else {
            continue;
        };
        let (xs, ys): (Vec<f64>, Vec<f64>) = crate::eval::stats::shared_users(&values(o), &b)
            .into_iter()
            .unzip();
        let Some(p) = paired(&xs, &ys, boot) else {
            continue;
        };
        t_ps.push(p.t_p);
        w_ps.push(p.wilcoxon_p);
        out.push(Comparison {
            entry: row.entry.clone(),
            baseline: base_row.entry.clone(),
            key: key.clone(),
            users: p.users,
            mean_diff: p.mean_diff,
            ci_low: p.ci.map(|c| c.low),
            ci_high: p.ci.map(|c| c.high),
            t_p: p.t_p,
            wilcoxon_p: p.wilcoxon_p,
            effect_size: p.effect_size,
            t_p_holm: 0.0,
            wilcoxon_p_holm: 0.0,
            of: 0,
        });
    }
    let (t_adj, w_adj) = (holm(&t_ps), holm(&w_ps));
    let n = out.len();
    for (c, (t, w)) in out.iter_mut().zip(t_adj.into_iter().zip(w_adj)) {
        c.t_p_holm = t;
        c.wilcoxon_p_holm = w;
        c.of = n;
    }
    out
}

/// A warning about the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// `loses_to_baseline`, `edge`, `collapsed`, `worse_after`, `within_noise`.
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
        // A collapsed model is a biases-only model: every configuration near it scores alike, so
        // its edges are not a reason to widen the search (the collapse warning says what is).
        if o.collapsed.is_none() {
            out.extend(edge_warnings(e, &t.point));
        }
        if let Some(n) = o.noise.as_ref().filter(|n| n.within_noise()) {
            let key = o.select.on(outcome.selected_on);
            let other = &o.trials[n.runner_up];
            let fig = |t: &crate::pipeline::train::Trial| {
                t.metric(&key)
                    .map(|v| format!("{v:.4}"))
                    .unwrap_or_default()
            };
            out.push(Warning {
                kind: "within_noise",
                entry: e.name.clone(),
                message: format!(
                    "`{}`: the top configurations are within noise of each other: `{}` ({key} {}) and `{}` ({}) differ by {:+.4}, 95% CI [{:+.4}, {:+.4}] over {} users; either could be best, so choose between them on other grounds (fit time, size)",
                    e.name,
                    crate::pipeline::search::label(&t.point),
                    fig(t),
                    crate::pipeline::search::label(&other.point),
                    fig(other),
                    n.diff,
                    n.ci.low,
                    n.ci.high,
                    n.users
                ),
            });
        }
        if let Some((a, z)) = o.collapsed {
            // The sampler learns its own priors, so there is no reg to lower: the data held no
            // signal beyond the biases at this rank.
            let gibbs = [e.fixed.get("solver"), t.point.get("solver")]
                .into_iter()
                .flatten()
                .any(|v| matches!(v, ParamValue::Str(s) if s == "gibbs"));
            // Lower regs already searched (and scored worse) mean the data, not the grid, is why.
            let lower_searched = t
                .point
                .get("reg")
                .and_then(ParamValue::as_f64)
                .is_some_and(|r| match e.searched().get("reg") {
                    Some(Space::List(v)) => v.iter().filter_map(ParamValue::as_f64).any(|x| x < r),
                    Some(Space::Range(g)) => g.min < r,
                    None => false,
                });
            let hint = if gibbs {
                "the sampler found no signal beyond the biases; a `biases` entry predicts as well at a fraction of the cost, or try `rated_sets = true`"
            } else if lower_searched {
                "lower `reg` values were searched and scored worse, so the factors add nothing here; a `biases` entry predicts as well at a fraction of the cost"
            } else {
                "lower `reg` or widen its search"
            };
            out.push(Warning {
                kind: "collapsed",
                entry: e.name.clone(),
                message: format!(
                    "`{}`'s factors collapsed: with them zeroed it scores {z:.4} against {a:.4} ({}), a biases-only model; {hint}",
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
                            "`{}`: {k} was best at iteration {best_it} ({best:.4}) and got worse to {last:.4} by iteration {last_it}; set `early_stopping = {{ metric = \"{}\", patience = 3 }}` on the entry in an experiment spec (`recflow run`)",
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
            user_values: None,
            report: None,
        }
    }

    /// A run of one entry, selected on validation, that wins.
    fn one_entry(o: EntryOutcome) -> Outcome {
        Outcome {
            sizes: SplitSizes::default(),
            selected_on: crate::eval::keys::Split::Val,
            entries: vec![o],
            winner: Some(0),
            train: Default::default(),
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
                per_user: Default::default(),
                more: Vec::new(),
            },
            test_ci: Vec::new(),
            fit_seconds: 0.0,
            eval_seconds: 0.0,
            collapsed: None,
            noise: None,
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
        let out = one_entry(o);
        let w = warnings(&s, &out);
        assert_eq!(kinds(&w), vec!["collapsed", "worse_after"]);
        assert!(w[1].message.contains("iteration 2"), "{}", w[1].message);
    }

    #[test]
    fn a_collapsed_model_at_the_top_reg_gets_no_edge_warning_when_lower_regs_scored_worse() {
        let regs: Vec<ParamValue> = [0.1, 0.3, 1.0].map(ParamValue::Float).to_vec();
        let axes = [("reg".to_string(), regs)].into();
        let s = settings(vec![entry("als", FamilyName::Als, Search::Grid { axes })]);
        let at = |r: f64| [("reg".to_string(), ParamValue::Float(r))].into();
        let trials = vec![
            trial(at(0.1), 0.02, vec![]),
            trial(at(0.3), 0.03, vec![]),
            trial(at(1.0), 0.04, vec![]),
        ];
        let mut o = outcome(0, trials, 2);
        o.collapsed = Some((0.04, 0.04));
        let out = one_entry(o);
        let w = warnings(&s, &out);
        assert!(!kinds(&w).contains(&"edge"), "{w:?}");
        let c = w.iter().find(|w| w.kind == "collapsed").unwrap();
        assert!(
            c.message.contains("searched and scored worse"),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_collapsed_gibbs_model_is_not_told_to_lower_a_reg_it_does_not_have() {
        let mut e = entry("bayes", FamilyName::Als, Search::default());
        e.fixed
            .insert("solver".into(), ParamValue::Str("gibbs".into()));
        let s = settings(vec![e]);
        let mut o = outcome(0, vec![trial(Config::new(), 0.04, vec![])], 0);
        o.collapsed = Some((0.04, 0.04));
        let out = one_entry(o);
        let w = warnings(&s, &out);
        let c = w.iter().find(|w| w.kind == "collapsed").unwrap();
        assert!(!c.message.contains("lower `reg`"), "{}", c.message);
        assert!(c.message.contains("`biases` entry"), "{}", c.message);
    }

    #[test]
    fn top_configurations_whose_paired_interval_holds_zero_are_warned_about_as_noise() {
        let s = settings(vec![entry("knn", FamilyName::ItemKnn, Search::default())]);
        let trials = vec![
            trial(point("neighbors", 10), 0.0535, vec![]),
            trial(point("neighbors", 20), 0.0533, vec![]),
        ];
        let check = |low: f64, high: f64| {
            let mut o = outcome(0, trials.clone(), 0);
            o.noise = Some(crate::pipeline::train::NoiseCheck {
                runner_up: 1,
                users: 500,
                diff: 0.0002,
                ci: crate::eval::stats::Interval { low, high },
            });
            warnings(
                &s,
                &Outcome {
                    sizes: SplitSizes::default(),
                    selected_on: crate::eval::keys::Split::Val,
                    entries: vec![o],
                    winner: Some(0),
                    train: Default::default(),
                },
            )
        };
        let w = check(-0.003, 0.004);
        assert_eq!(kinds(&w), vec!["within_noise"]);
        assert!(
            w[0].message.contains("neighbors=10") && w[0].message.contains("neighbors=20"),
            "{}",
            w[0].message
        );
        assert!(check(0.0001, 0.0004).is_empty());
    }
}
