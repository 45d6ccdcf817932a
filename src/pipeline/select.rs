//! Selection: the best of several results on one metric, its direction from the registry, ties
//! (equal to 4 decimals, DECISIONS.md) broken by a second figure (precision at K, higher wins),
//! then by order.

use crate::eval::keys::Direction;

/// One result's figures for selection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    /// The selection metric; `None` (not reported) ranks last.
    pub value: Option<f64>,
    /// The tie-break figure, higher is better.
    pub tie: Option<f64>,
}

impl Ranked {
    pub fn new(value: Option<f64>, tie: Option<f64>) -> Self {
        Self { value, tie }
    }
}

/// Rounds to 4 decimals as an orderable integer, best first (smaller is better), non-finite and
/// missing values last.
fn key(v: Option<f64>, direction: Direction) -> i64 {
    match v {
        Some(v) if v.is_finite() => {
            let r = (v * 1e4).round() as i64;
            match direction {
                Direction::Lower => r,
                Direction::Higher => -r,
            }
        }
        _ => i64::MAX,
    }
}

/// Index of the best result (0 when `results` is empty).
pub fn best_index(results: &[Ranked], direction: Direction) -> usize {
    let mut best: Option<(usize, i64, i64)> = None;
    for (i, r) in results.iter().enumerate() {
        let primary = key(r.value, direction);
        let second = key(r.tie, Direction::Higher);
        if best.is_none_or(|(_, p, s)| (primary, second) < (p, s)) {
            best = Some((i, primary, second));
        }
    }
    best.map_or(0, |b| b.0)
}

/// Whether `a` and `b` tie under the selection rule (equal to 4 decimals).
pub fn ties(a: f64, b: f64) -> bool {
    (a * 1e4).round() == (b * 1e4).round()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_rmse_wins_and_ties_to_4_decimals_go_to_precision() {
        let r = [
            Ranked::new(Some(0.91231), Some(0.01)),
            Ranked::new(Some(0.91234), Some(0.05)),
            Ranked::new(Some(0.95), Some(0.9)),
        ];
        assert_eq!(best_index(&r, Direction::Lower), 1);
    }

    #[test]
    fn highest_ndcg_wins_and_missing_values_rank_last() {
        let r = [
            Ranked::new(None, None),
            Ranked::new(Some(0.2), None),
            Ranked::new(Some(0.3), None),
        ];
        assert_eq!(best_index(&r, Direction::Higher), 2);
        assert_eq!(best_index(&r[..2], Direction::Lower), 1);
    }

    #[test]
    fn equal_results_keep_the_first() {
        let r = [Ranked::new(Some(1.0), None), Ranked::new(Some(1.0), None)];
        assert_eq!(best_index(&r, Direction::Higher), 0);
        assert!(ties(0.12344, 0.12341));
    }
}
