//! Experiment specs: the TOML files under `experiments/`, their serde types, loading with
//! `--set` overrides, and checks that name the file, line and key before any work starts.
//!
//! A spec is engine-neutral data: strategy and solver names are plain strings checked against
//! the lists below, so the same file can later be handed to another engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const SPLIT_STRATEGIES: &[&str] = &["random", "per_user", "temporal", "leave_last_n"];
pub const SOLVERS: &[&str] = &["cholesky", "cg", "gibbs"];
pub const REG_SCALINGS: &[&str] = &["count", "none"];
pub const FORMATS: &[&str] = &["json", "csv", "tsv", "parquet"];

#[derive(Debug, Error)]
pub enum SpecError {
    #[error("cannot read spec `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", location(path, *line))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
        hint: Option<String>,
    },
}

fn location(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}

impl SpecError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Invalid { hint, .. } => hint.clone(),
            Self::Io { .. } => {
                Some("specs live under `experiments/`; see experiments/README.md".into())
            }
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub experiment: ExperimentSection,
    #[serde(default)]
    pub data: DataSection,
    #[serde(default)]
    pub split: SplitSection,
    #[serde(default)]
    pub model: ModelSection,
    #[serde(default)]
    pub grid: GridSection,
    #[serde(default)]
    pub eval: EvalSection,
    #[serde(default)]
    pub output: OutputSection,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSection {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tracking_uri: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub input: Option<String>,
    pub format: Option<String>,
    /// `user=..,item=..` or a table `{ user = "reviewerID", item = "asin" }`.
    pub columns: Option<crate::data::format::ColumnSpec>,
    pub header: Option<bool>,
    pub min_interactions: Option<usize>,
    /// `"1..5"`, `"1..inf"`.
    pub rating_range: Option<String>,
    pub sample_fraction: Option<f64>,
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitSection {
    pub strategy: Option<String>,
    pub test_fraction: Option<f64>,
    pub validation_fraction: Option<f64>,
    /// For `leave_last_n`.
    pub n: Option<usize>,
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub kind: Option<String>,
    pub implicit: Option<bool>,
    pub solver: Option<String>,
    pub cg_steps: Option<usize>,
    pub max_iter: Option<usize>,
    /// Gibbs solver: sweeps discarded before samples are kept.
    pub burn_in: Option<usize>,
    /// Gibbs solver: samples kept after burn-in.
    pub samples: Option<usize>,
    /// Gibbs solver: SVD++-style rated-set features.
    pub rated_sets: Option<bool>,
    pub alpha: Option<f64>,
    pub biases: Option<bool>,
    pub reg_scaling: Option<String>,
    pub seed: Option<u64>,
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GridSection {
    pub rank: Option<Vec<usize>>,
    pub reg: Option<Vec<f64>>,
    pub alpha: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    pub k: Option<usize>,
    pub metrics: Option<Vec<String>>,
    /// Selection metric, e.g. `rmse` (lowest wins) or `ndcg_at_10` (highest wins).
    pub select: Option<String>,
    pub relevance_threshold: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    pub model_dir: Option<String>,
}

/// The keys each section accepts, for "did you mean" hints.
fn known_keys(section: &str) -> &'static [&'static str] {
    match section {
        "" => &[
            "experiment",
            "data",
            "split",
            "model",
            "grid",
            "eval",
            "output",
        ],
        "experiment" => &["name", "description", "tracking_uri", "tags"],
        "data" => &[
            "input",
            "format",
            "columns",
            "header",
            "min_interactions",
            "rating_range",
            "sample_fraction",
            "seed",
        ],
        "split" => &[
            "strategy",
            "test_fraction",
            "validation_fraction",
            "n",
            "seed",
        ],
        "model" => &[
            "kind",
            "implicit",
            "solver",
            "cg_steps",
            "max_iter",
            "burn_in",
            "samples",
            "rated_sets",
            "alpha",
            "biases",
            "reg_scaling",
            "seed",
            "threads",
        ],
        "grid" => &["rank", "reg", "alpha"],
        "eval" => &["k", "metrics", "select", "relevance_threshold"],
        "output" => &["model_dir"],
        _ => &[],
    }
}

fn did_you_mean(word: &str, candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(s, _)| *s > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// The 1-based line where `key` is set inside `[section]` (or at top level), if it can be found.
pub fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') && !line.starts_with("[[") {
            current = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
            if key.is_empty() && current == section {
                return Some(n + 1);
            }
            continue;
        }
        if current == section {
            if let Some((k, _)) = line.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return Some(n + 1);
                }
            }
        }
    }
    None
}

fn invalid(
    path: &Path,
    text: &str,
    section: &str,
    key: &str,
    message: String,
    hint: Option<String>,
) -> SpecError {
    SpecError::Invalid {
        path: path.to_path_buf(),
        line: line_of(text, section, key),
        message,
        hint,
    }
}

/// Finds keys no section accepts, naming the closest known one.
fn unknown_keys(path: &Path, text: &str, table: &toml::Table) -> Result<(), SpecError> {
    for (section, value) in table {
        let top = known_keys("");
        if !top.contains(&section.as_str()) {
            return Err(invalid(
                path,
                text,
                section,
                "",
                format!("unknown section `[{section}]`"),
                did_you_mean(section, top),
            ));
        }
        let Some(inner) = value.as_table() else {
            return Err(invalid(
                path,
                text,
                "",
                section,
                format!("`{section}` must be a section (`[{section}]`)"),
                None,
            ));
        };
        let keys = known_keys(section);
        for key in inner.keys() {
            if section == "experiment" && key == "tags" || section == "data" && key == "columns" {
                continue;
            }
            if !keys.contains(&key.as_str()) {
                let hint = did_you_mean(key, keys)
                    .or_else(|| Some(format!("`[{section}]` accepts: {}", keys.join(", "))));
                return Err(invalid(
                    path,
                    text,
                    section,
                    key,
                    format!("unknown key `{key}` in `[{section}]`"),
                    hint,
                ));
            }
        }
    }
    Ok(())
}

/// Applies one `--set section.key=value` (value parsed as TOML, else taken as a string).
pub fn apply_set(table: &mut toml::Table, assignment: &str) -> Result<(), String> {
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| format!("`--set {assignment}`: expected `section.key=value`"))?;
    let (section, key) = path.trim().split_once('.').ok_or_else(|| {
        format!("`--set {assignment}`: the key needs its section, e.g. `grid.rank=[32,64]`")
    })?;
    let raw = raw.trim();
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let entry = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let inner = entry
        .as_table_mut()
        .ok_or_else(|| format!("`--set {assignment}`: `{section}` is not a section"))?;
    inner.insert(key.to_string(), value);
    Ok(())
}

impl Spec {
    /// Reads, applies `--set` overrides, rejects unknown keys and bad values.
    pub fn load(path: &Path, sets: &[String]) -> Result<(Spec, String), SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, sets).map(|s| (s, text))
    }

    pub fn parse(path: &Path, text: &str, sets: &[String]) -> Result<Spec, SpecError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| SpecError::Invalid {
                    path: path.to_path_buf(),
                    line: e
                        .span()
                        .map(|s| text[..s.start.min(text.len())].lines().count().max(1)),
                    message: e.message().to_string(),
                    hint: None,
                })?;
        unknown_keys(path, text, &table)?;
        for s in sets {
            apply_set(&mut table, s).map_err(|message| SpecError::Invalid {
                path: path.to_path_buf(),
                line: None,
                message,
                hint: None,
            })?;
        }
        unknown_keys(path, text, &table)?;
        let spec: Spec = table
            .try_into()
            .map_err(|e: toml::de::Error| SpecError::Invalid {
                path: path.to_path_buf(),
                line: None,
                message: e.message().to_string(),
                hint: Some("see experiments/README.md for every key and its type".into()),
            })?;
        spec.check(path, text)?;
        Ok(spec)
    }

    /// Value rules, each with its own message.
    fn check(&self, path: &Path, text: &str) -> Result<(), SpecError> {
        let bad = |section: &str, key: &str, message: String, hint: Option<String>| {
            Err(invalid(path, text, section, key, message, hint))
        };
        if self.experiment.name.trim().is_empty() {
            return bad(
                "experiment",
                "name",
                "`experiment.name` must not be empty".into(),
                None,
            );
        }
        if self.experiment.name.len() > 500 {
            return bad(
                "experiment",
                "name",
                "`experiment.name` is longer than MLflow's 500 characters".into(),
                None,
            );
        }
        let one_of = |section: &str,
                      key: &str,
                      v: &Option<String>,
                      allowed: &[&str]|
         -> Result<(), SpecError> {
            match v {
                Some(v) if !allowed.contains(&v.as_str()) => Err(invalid(
                    path,
                    text,
                    section,
                    key,
                    format!(
                        "`{section}.{key}` is `{v}`; expected one of {}",
                        allowed.join(", ")
                    ),
                    did_you_mean(v, allowed),
                )),
                _ => Ok(()),
            }
        };
        one_of("data", "format", &self.data.format, FORMATS)?;
        one_of("split", "strategy", &self.split.strategy, SPLIT_STRATEGIES)?;
        one_of("model", "solver", &self.model.solver, SOLVERS)?;
        one_of(
            "model",
            "reg_scaling",
            &self.model.reg_scaling,
            REG_SCALINGS,
        )?;
        one_of("model", "kind", &self.model.kind, &["als"])?;
        if let Some(r) = &self.data.rating_range {
            if let Err(e) = r.parse::<crate::data::etl::RatingRange>() {
                return bad("data", "rating_range", e, None);
            }
        }
        let fraction =
            |section: &str, key: &str, v: Option<f64>, zero_ok: bool| -> Result<(), SpecError> {
                match v {
                    Some(f)
                        if !(f.is_finite() && (f > 0.0 || zero_ok && f == 0.0) && f < 1.0
                            || key == "sample_fraction" && f == 1.0) =>
                    {
                        Err(invalid(
                            path,
                            text,
                            section,
                            key,
                            format!(
                                "`{section}.{key}` is {f}; it must be in {}0, 1{}",
                                if zero_ok { "[" } else { "(" },
                                if key == "sample_fraction" { "]" } else { ")" }
                            ),
                            None,
                        ))
                    }
                    _ => Ok(()),
                }
            };
        fraction("data", "sample_fraction", self.data.sample_fraction, false)?;
        fraction("split", "test_fraction", self.split.test_fraction, false)?;
        fraction(
            "split",
            "validation_fraction",
            self.split.validation_fraction,
            true,
        )?;
        if let Some(ranks) = &self.grid.rank {
            if ranks.is_empty() || ranks.contains(&0) {
                return bad(
                    "grid",
                    "rank",
                    "`grid.rank` needs at least one value, each at least 1".into(),
                    None,
                );
            }
        }
        for (key, list) in [("reg", &self.grid.reg), ("alpha", &self.grid.alpha)] {
            if let Some(vals) = list {
                if vals.is_empty() || vals.iter().any(|v| !v.is_finite() || *v < 0.0) {
                    return bad(
                        "grid",
                        key,
                        format!("`grid.{key}` needs at least one value, each finite and >= 0"),
                        None,
                    );
                }
            }
        }
        if self.model.max_iter == Some(0) {
            return bad(
                "model",
                "max_iter",
                "`model.max_iter` must be at least 1".into(),
                None,
            );
        }
        if self.eval.k == Some(0) {
            return bad("eval", "k", "`eval.k` must be at least 1".into(), None);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Spec, SpecError> {
        Spec::parse(Path::new("experiments/x.toml"), text, &[])
    }

    #[test]
    fn unknown_key_names_file_line_and_closest_key() {
        let e =
            parse("[experiment]\nname = \"a\"\n\n[grid]\nrank = [8]\nregg = [0.1]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "experiments/x.toml:6: unknown key `regg` in `[grid]`"
        );
        assert_eq!(e.hint().as_deref(), Some("did you mean `reg`?"));
    }

    #[test]
    fn bad_value_names_its_line() {
        let e = parse("[experiment]\nname = \"a\"\n[split]\ntest_fraction = 1.5\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("experiments/x.toml:4: `split.test_fraction` is 1.5"),
            "{e}"
        );
        let e = parse("[experiment]\nname = \"a\"\n[split]\nstrategy = \"temporl\"\n").unwrap_err();
        assert_eq!(e.hint().as_deref(), Some("did you mean `temporal`?"));
    }

    #[test]
    fn toml_syntax_errors_carry_a_line() {
        let e = parse("[experiment]\nname = \"a\"\n[grid]\nrank = [8,\n").unwrap_err();
        assert!(matches!(e, SpecError::Invalid { line: Some(_), .. }), "{e}");
    }

    #[test]
    fn set_overrides_values_and_is_checked() {
        let text = "[experiment]\nname = \"a\"\n[grid]\nrank = [8]\n";
        let s = Spec::parse(
            Path::new("x.toml"),
            text,
            &[
                "grid.rank=[16, 32]".into(),
                "model.implicit=true".into(),
                "experiment.name=b".into(),
            ],
        )
        .unwrap();
        assert_eq!(s.grid.rank, Some(vec![16, 32]));
        assert_eq!(s.model.implicit, Some(true));
        assert_eq!(s.experiment.name, "b");
        assert!(Spec::parse(Path::new("x.toml"), text, &["grid.rnk=[1]".into()]).is_err());
        assert!(Spec::parse(Path::new("x.toml"), text, &["rank=1".into()]).is_err());
    }

    #[test]
    fn columns_accept_a_table() {
        let s = parse(
            "[experiment]\nname = \"a\"\n[data]\ncolumns = { user = \"reviewerID\", item = 1 }\n",
        )
        .unwrap();
        let c = s.data.columns.unwrap();
        assert_eq!(
            c.user,
            Some(crate::data::format::ColumnRef::Name("reviewerID".into()))
        );
        assert_eq!(c.item, Some(crate::data::format::ColumnRef::Index(1)));
    }

    #[test]
    fn every_shipped_example_spec_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "toml") {
                Spec::load(&p, &[]).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 4);
    }
}
