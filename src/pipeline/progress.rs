//! Draws a bar over a run's fits and logs a line per finished fit.

use crate::model::artifact::SplitSizes;
use crate::model::family::{DataShape, EFFECTIVE_FLOPS};
use crate::pipeline::observer::{Observer, Role, Step};
use crate::pipeline::search::{Candidate, Entry};
use crate::pipeline::train::{EntryOutcome, Trial};
use crate::progress::{Bar, Progress};

/// A bar over every fit (trials and final refits), with the current one and its iteration.
pub struct ProgressObserver {
    bar: Bar,
    total: usize,
    done: usize,
    current: String,
    /// Says when the run should stop (a signal arrived).
    stop: Box<dyn Fn() -> bool + Send>,
}

impl ProgressObserver {
    pub fn new(progress: &Progress, stop: impl Fn() -> bool + Send + 'static) -> Self {
        Self {
            bar: progress.steps(0, "fits"),
            total: 0,
            done: 0,
            current: String::new(),
            stop: Box::new(stop),
        }
    }
}

/// `val_rmse 0.9123, val_ndcg_at_10 0.0412`: the first figures of a result.
pub fn short(metrics: &[(String, f64)]) -> String {
    metrics
        .iter()
        .filter(|(k, _)| k.ends_with("rmse") || k.contains("ndcg_at") || k.contains("precision_at"))
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Observer for ProgressObserver {
    fn started(
        &mut self,
        entries: &[Entry],
        candidates: &[Candidate],
        sizes: &SplitSizes,
        shape: &DataShape,
    ) {
        let trials: usize = candidates.iter().map(|c| c.plans.len()).sum();
        self.total = trials + entries.len();
        self.bar.set_length(self.total as u64);
        // Each entry's final refit costs about its most expensive trial.
        let finals: f64 = (0..entries.len())
            .map(|i| {
                candidates
                    .iter()
                    .filter(|c| c.entry == i)
                    .map(|c| c.plans[0].estimate(shape).flop)
                    .fold(0.0, f64::max)
            })
            .sum();
        let flop: f64 = candidates
            .iter()
            .flat_map(|c| c.plans.iter())
            .map(|p| p.estimate(shape).flop)
            .sum::<f64>()
            + finals;
        let threads = rayon::current_num_threads().max(1) as f64;
        tracing::info!(
            "{} entries, {} fits ({} trials and {} final refits), roughly {} of fitting: {} ratings -> train {}, validation {}, test {}",
            entries.len(),
            self.total,
            trials,
            entries.len(),
            human_seconds(flop / (EFFECTIVE_FLOPS * threads)),
            sizes.sampled,
            sizes.train,
            sizes.validation,
            sizes.test
        );
    }

    fn fit_started(&mut self, entry: &Entry, candidate: &Candidate, role: Role) {
        self.current = match role {
            Role::Trial => format!("{} {}", entry.name, candidate.label()),
            Role::Final => format!("{} final", entry.name),
        };
        self.bar.set_message(self.current.clone());
    }

    fn iteration(&mut self, _entry: &Entry, _role: Role, step: &Step<'_>) {
        let loss = step
            .report
            .train_loss
            .map(|v| format!(" loss {v:.4e}"))
            .unwrap_or_default();
        let val = short(step.metrics);
        self.bar.set_message(format!(
            "{} iter {}{loss} {val}",
            self.current, step.report.iteration
        ));
        tracing::debug!(
            "iteration {}{loss} {val} ({:.3}s)",
            step.report.iteration,
            step.report.seconds
        );
    }

    fn trial_finished(&mut self, entry: &Entry, candidate: &Candidate, trial: &Trial) {
        self.done += candidate.plans.len();
        self.bar.set_position(self.done as u64);
        tracing::info!(
            "{} {}: {} (fit {:.2}s)",
            entry.name,
            candidate.label(),
            short(&trial.metrics),
            trial.fit_seconds
        );
    }

    fn final_finished(&mut self, entry: &Entry, outcome: &EntryOutcome) {
        self.done += 1;
        self.bar.set_position(self.done as u64);
        if self.done >= self.total {
            self.bar.finish();
        }
        tracing::info!(
            "{} final ({}): {} (fit {:.2}s)",
            entry.name,
            crate::pipeline::search::label(&outcome.best_trial().point),
            short(&outcome.test.metrics(crate::eval::keys::Split::Test)),
            outcome.fit_seconds
        );
    }

    fn cancelled(&self) -> bool {
        (self.stop)()
    }
}

/// `0.4 s`, `12 s`, `3 min`, `1.5 h`.
fn human_seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{s:.1} s")
    } else if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}
