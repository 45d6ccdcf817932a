//! Draws a bar over a run's fits and logs a line per finished fit.

use crate::model::artifact::SplitSizes;
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
    fn started(&mut self, entries: &[Entry], candidates: &[Candidate], sizes: &SplitSizes) {
        let trials: usize = candidates.iter().map(|c| c.plans.len()).sum();
        self.total = trials + entries.len();
        self.bar.set_length(self.total as u64);
        tracing::info!(
            "{} entries, {} fits ({} trials and {} final refits): {} ratings -> train {}, validation {}, test {}",
            entries.len(),
            self.total,
            trials,
            entries.len(),
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
