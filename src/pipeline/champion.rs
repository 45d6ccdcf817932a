//! Whether a newly registered model takes the registry's `champion` alias: only when it beats
//! the current champion on the selection metric's test value, both evaluated on one test split
//! (the runs' `recflow.split_fingerprint` tags agree). `--force` moves it anyway.

use serde::Serialize;

use crate::eval::keys::Direction;

/// The registry alias recflow manages.
pub const CHAMPION: &str = "champion";

/// A model version and what it scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Contender {
    pub version: String,
    /// The selection metric's test value on the version's run (`best.test_ndcg_at_10`).
    pub value: Option<f64>,
    pub split: Option<String>,
}

/// What happened to the alias, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub moved: bool,
    pub reason: String,
}

/// Decides for `new` against the current champion `old` on `key`.
pub fn decide(
    key: &str,
    direction: Direction,
    new: &Contender,
    old: Option<&Contender>,
    force: bool,
) -> Decision {
    let fig = |c: &Contender| c.value.map_or("no figure".into(), |v| format!("{v:.6}"));
    let Some(old) = old else {
        return Decision {
            moved: true,
            reason: format!(
                "version {} is the first champion ({key} {})",
                new.version,
                fig(new)
            ),
        };
    };
    let verdict = match (new.value, old.value) {
        _ if new.split.is_none() || new.split != old.split => Err(format!(
            "version {} and the champion, version {}, were not evaluated on one test split, so their {key} do not compare",
            new.version, old.version
        )),
        (Some(a), Some(b)) if direction.better(a, b) => Ok(format!(
            "version {} beats the champion, version {}, on {key}: {} against {}",
            new.version,
            old.version,
            fig(new),
            fig(old)
        )),
        (Some(_), Some(_)) => Err(format!(
            "version {} does not beat the champion, version {}, on {key}: {} against {} ({} is better)",
            new.version,
            old.version,
            fig(new),
            fig(old),
            direction.word()
        )),
        _ => Err(format!(
            "version {} or the champion, version {}, has no {key} to compare",
            new.version, old.version
        )),
    };
    match (verdict, force) {
        (Ok(reason), _) => Decision {
            moved: true,
            reason,
        },
        (Err(reason), true) => Decision {
            moved: true,
            reason: format!("{reason}; moved anyway (--force)"),
        },
        (Err(reason), false) => Decision {
            moved: false,
            reason: format!("{reason}; the alias stays (--force moves it)"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(version: &str, value: Option<f64>, split: &str) -> Contender {
        Contender {
            version: version.into(),
            value,
            split: Some(split.into()),
        }
    }

    #[test]
    fn the_alias_moves_only_to_a_better_model_on_the_same_split_unless_forced() {
        let key = "best.test_rmse";
        let lower = Direction::Lower;
        let champ = c("1", Some(1.007), "a");
        assert!(decide(key, lower, &c("2", Some(1.0), "a"), None, false).moved);
        assert!(decide(key, lower, &c("2", Some(0.99), "a"), Some(&champ), false).moved);
        // The case: RMSE 1.16 must not take the alias from 1.007.
        let worse = decide(key, lower, &c("2", Some(1.16), "a"), Some(&champ), false);
        assert!(
            !worse.moved && worse.reason.contains("does not beat"),
            "{worse:?}"
        );
        let other = decide(key, lower, &c("2", Some(0.5), "b"), Some(&champ), false);
        assert!(
            !other.moved && other.reason.contains("test split"),
            "{other:?}"
        );
        let forced = decide(key, lower, &c("2", Some(1.16), "a"), Some(&champ), true);
        assert!(forced.moved && forced.reason.contains("--force"));
        let missing = decide(key, lower, &c("2", None, "a"), Some(&champ), false);
        assert!(!missing.moved);
        // Higher is better for ranking metrics; a tie does not move it.
        let ndcg = c("1", Some(0.05), "a");
        let hi = Direction::Higher;
        assert!(decide("k", hi, &c("2", Some(0.06), "a"), Some(&ndcg), false).moved);
        assert!(!decide("k", hi, &c("2", Some(0.05), "a"), Some(&ndcg), false).moved);
    }
}
