//! Events of a pipeline run, for progress bars and tracking. Every method has an empty default,
//! so an observer implements only what it shows.

use crate::model::artifact::SplitSizes;
use crate::model::family::{DataShape, IterationReport};
use crate::pipeline::search::{Candidate, Entry};
use crate::pipeline::train::{EntryOutcome, Trial};

/// What is being fitted: a search trial on the selection split, or an entry's final refit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Trial,
    Final,
}

/// One iteration's figures: the fit's own report and the validation metrics computed on it
/// (`val_rmse`, `val_ndcg_at_10`), under their keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<'a> {
    pub report: &'a IterationReport,
    pub metrics: &'a [(String, f64)],
}

pub trait Observer: Send {
    /// Before the first fit: every candidate, and the split's sizes.
    fn started(
        &mut self,
        _entries: &[Entry],
        _candidates: &[Candidate],
        _sizes: &SplitSizes,
        _shape: &DataShape,
    ) {
    }
    fn fit_started(&mut self, _entry: &Entry, _candidate: &Candidate, _role: Role) {}
    fn iteration(&mut self, _entry: &Entry, _role: Role, _step: &Step<'_>) {}
    fn trial_finished(&mut self, _entry: &Entry, _candidate: &Candidate, _trial: &Trial) {}
    fn final_finished(&mut self, _entry: &Entry, _outcome: &EntryOutcome) {}
    /// Checked between fits and iterations: `true` stops the run.
    fn cancelled(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
#[cfg(test)]
pub struct Silent;
#[cfg(test)]
impl Observer for Silent {}
