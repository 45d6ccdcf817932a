//! Experiment specs: the TOML files under `experiments/`, their serde types, loading with
//! `--set` overrides, and locating every problem at the file's line (through the TOML parser's
//! spans) or at the `--set` that introduced it, before any work starts.
//!
//! A spec is engine-neutral data: domain names are the domain enums' own (`SplitKind`,
//! `InputFormat`, `FamilyName`, `Solver`...), checked when read. Model entries (`[[models]]`)
//! keep their family parameters as plain TOML here; the settings layer checks them against the
//! family.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::format::{ColumnSpec, InputFormat};
use crate::data::split::SplitKind;
use crate::model::als::{RegScaling, Solver};
use crate::model::family::FamilyName;
use crate::names::did_you_mean;

/// Where a problem is: a line of the spec file, a `--set` assignment, or the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Line(PathBuf, usize),
    Set(String),
    File(PathBuf),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(p, l) => write!(f, "{}:{l}", p.display()),
            Location::Set(s) => write!(f, "`--set {s}`"),
            Location::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, Error)]
pub enum SpecError {
    #[error("cannot read spec `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Invalid {
        location: Location,
        message: String,
        hint: Option<String>,
    },
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

    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Invalid { location, .. } => Some(location),
            Self::Io { .. } => None,
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
    /// The one-model form (with `[grid]`): one ALS entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<GridSection>,
    /// `[[models]]`: model entries, checked by the settings layer against their families.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<toml::Table>,
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
    /// The most fits a run may make (`--max-runs` overrides).
    #[serde(default)]
    pub max_runs: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub input: Option<String>,
    pub format: Option<InputFormat>,
    /// `user=..,item=..` or a table `{ user = "reviewerID", item = "asin" }`.
    pub columns: Option<ColumnSpec>,
    pub header: Option<bool>,
    pub min_interactions: Option<usize>,
    /// `"1..5"`, `"1..inf"`.
    pub rating_range: Option<String>,
    pub sample_fraction: Option<f64>,
    pub seed: Option<u64>,
    /// Longer input lines are skipped and counted.
    pub max_line_bytes: Option<usize>,
    /// Item metadata joined into the item map (SNAP `meta_*.json.gz`, or a table with
    /// `item_id` and `title`).
    pub items_meta: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitSection {
    pub strategy: Option<SplitKind>,
    pub test_fraction: Option<f64>,
    pub validation_fraction: Option<f64>,
    /// For `leave_last_n`.
    pub n: Option<usize>,
    pub seed: Option<u64>,
    /// A file (any format the ETL reads, original ids) used as the test split.
    pub test_file: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub kind: Option<FamilyName>,
    pub implicit: Option<bool>,
    pub solver: Option<Solver>,
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
    pub reg_scaling: Option<RegScaling>,
    pub seed: Option<u64>,
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GridSection {
    pub rank: Option<Vec<i64>>,
    pub reg: Option<Vec<f64>>,
    pub alpha: Option<Vec<f64>>,
}

/// `eval.k`: one cut-off or a list of them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Cutoffs {
    One(usize),
    Many(Vec<usize>),
}

impl Cutoffs {
    pub fn values(&self) -> Vec<usize> {
        match self {
            Cutoffs::One(k) => vec![*k],
            Cutoffs::Many(ks) => ks.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// One cut-off (`k = 10`) or several (`k = [5, 10, 20]`).
    pub k: Option<Cutoffs>,
    /// Metrics to report (split-free names); every one by default.
    pub metrics: Option<Vec<String>>,
    /// Selection metric (split-free): `rmse` (lowest wins) or `ndcg_at_10` (highest wins).
    pub select: Option<String>,
    pub relevance_threshold: Option<f64>,
    /// Baseline families added when no entry of theirs is in the spec.
    pub baselines: Option<Vec<FamilyName>>,
    /// Which runs log per-user figures: `final` models only (default) or `all` trials too.
    pub per_user: Option<PerUserScope>,
}

/// `eval.per_user`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PerUserScope {
    Final,
    All,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    pub model_dir: Option<String>,
}

/// The keys each section accepts, for "did you mean" hints and `--set` checks.
fn known_keys(section: &str) -> &'static [&'static str] {
    match section {
        "" => &[
            "experiment",
            "data",
            "split",
            "model",
            "grid",
            "models",
            "eval",
            "output",
        ],
        "experiment" => &["name", "description", "tracking_uri", "tags", "max_runs"],
        "data" => &[
            "input",
            "format",
            "columns",
            "header",
            "min_interactions",
            "rating_range",
            "sample_fraction",
            "seed",
            "max_line_bytes",
            "items_meta",
        ],
        "split" => &[
            "strategy",
            "test_fraction",
            "validation_fraction",
            "n",
            "seed",
            "test_file",
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
        "eval" => &[
            "k",
            "metrics",
            "select",
            "relevance_threshold",
            "baselines",
            "per_user",
        ],
        "output" => &["model_dir"],
        _ => &[],
    }
}

/// Keys whose value is a list: a scalar given with `--set` means a one-element list.
fn is_list_key(path: &[String]) -> bool {
    match path {
        [s, _] if s == "grid" => true,
        [s, k] if s == "eval" && (k == "metrics" || k == "baselines") => true,
        [m, _, g, _] if m == "models" && g == "grid" => true,
        _ => false,
    }
}

/// The spec's text with its spans, and which keys `--set` assigned.
#[derive(Debug, Clone)]
pub struct SpecSource {
    pub path: PathBuf,
    pub text: String,
    /// Key paths set on the command line, with the assignment as written.
    sets: Vec<(Vec<String>, String)>,
}

impl SpecSource {
    /// Where the value at `path` (`["models", "0", "rank"]`, entries by position) came from.
    pub fn locate(&self, path: &[&str]) -> Location {
        let owned: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        for (p, s) in self.sets.iter().rev() {
            if owned.starts_with(p) || p.starts_with(&owned) {
                return Location::Set(s.clone());
            }
        }
        match line_of_path(&self.text, path) {
            Some(l) => Location::Line(self.path.clone(), l),
            None => Location::File(self.path.clone()),
        }
    }

    /// An error at the value of `path`.
    pub fn error(
        &self,
        path: &[&str],
        message: impl Into<String>,
        hint: Option<String>,
    ) -> SpecError {
        SpecError::Invalid {
            location: self.locate(path),
            message: message.into(),
            hint,
        }
    }
}

/// The 1-based line of `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where the key at `path` is written (array elements by position).
pub fn line_of_path(text: &str, path: &[&str]) -> Option<usize> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut span: Range<usize> = root.span();
    let mut table: Option<&toml::de::DeTable<'_>> = Some(root.get_ref());
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    for part in path {
        if let Some(t) = table {
            let (k, v) = t.iter().find(|(k, _)| k.get_ref().as_ref() == *part)?;
            span = k.span();
            value = Some(v.get_ref());
            // `[[models]]` is an array: the next part is a position.
            table = v.get_ref().as_table();
        } else if let Some(arr) = value.and_then(|v| v.as_array()) {
            let i: usize = part.parse().ok()?;
            let item = arr.get(i)?;
            span = item.span();
            value = Some(item.get_ref());
            table = item.get_ref().as_table();
        } else {
            return None;
        }
    }
    Some(line_at(text, span.start))
}

/// Finds keys no section accepts, naming the closest known one.
fn unknown_keys(table: &toml::Table, at: impl Fn(&[&str]) -> Location) -> Result<(), SpecError> {
    let top = known_keys("");
    for (section, value) in table {
        if !top.contains(&section.as_str()) {
            return Err(SpecError::Invalid {
                location: at(&[section]),
                message: format!("unknown section `[{section}]`"),
                hint: did_you_mean(section, top),
            });
        }
        if section == "models" {
            if !value.is_array() {
                return Err(SpecError::Invalid {
                    location: at(&[section]),
                    message: "`models` must be an array of tables (`[[models]]`)".into(),
                    hint: None,
                });
            }
            continue;
        }
        let Some(inner) = value.as_table() else {
            return Err(SpecError::Invalid {
                location: at(&[section]),
                message: format!("`{section}` must be a section (`[{section}]`)"),
                hint: None,
            });
        };
        let keys = known_keys(section);
        for key in inner.keys() {
            if section == "experiment" && key == "tags" || section == "data" && key == "columns" {
                continue;
            }
            if !keys.contains(&key.as_str()) {
                let hint = did_you_mean(key, keys)
                    .or_else(|| Some(format!("`[{section}]` accepts: {}", keys.join(", "))));
                return Err(SpecError::Invalid {
                    location: at(&[section, key]),
                    message: format!("unknown key `{key}` in `[{section}]`"),
                    hint,
                });
            }
        }
    }
    Ok(())
}

/// A value given with `--set`, parsed as TOML (a bare word is a string).
fn set_value(raw: &str) -> toml::Value {
    let raw = raw.trim();
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Applies one `--set section.key=value` or `--set models.<name>.key=value`; returns the key path
/// it set (entries by position).
fn apply_set(table: &mut toml::Table, assignment: &str) -> Result<Vec<String>, SpecError> {
    let bad = |message: String, hint: Option<String>| SpecError::Invalid {
        location: Location::Set(assignment.to_string()),
        message,
        hint,
    };
    let (path, raw) = assignment.split_once('=').ok_or_else(|| {
        bad(
            "expected `section.key=value`".into(),
            Some("for example `--set grid.rank=[32,64]`".into()),
        )
    })?;
    let parts: Vec<String> = path
        .trim()
        .split('.')
        .map(|p| p.trim().to_string())
        .collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad(
            "the key needs its section".into(),
            Some("for example `--set grid.rank=[32,64]` or `--set models.NAME.rank=16`".into()),
        ));
    }
    let mut value = set_value(raw);
    let mut resolved = parts.clone();
    if parts[0] == "models" {
        let name = &parts[1];
        let models = table
            .get_mut("models")
            .and_then(|m| m.as_array_mut())
            .ok_or_else(|| bad("the spec has no `[[models]]` entries".into(), None))?;
        let names: Vec<String> = models
            .iter()
            .filter_map(|m| m.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .collect();
        let pos = names.iter().position(|n| n == name).ok_or_else(|| {
            let list: Vec<&str> = names.iter().map(String::as_str).collect();
            bad(
                format!("no model entry named `{name}`"),
                did_you_mean(name, &list).or(Some(format!("entries: {}", list.join(", ")))),
            )
        })?;
        resolved[1] = pos.to_string();
        if parts.len() < 3 {
            return Err(bad(
                "name a key of the entry: `models.NAME.KEY=VALUE`".into(),
                None,
            ));
        }
        if is_list_key(&resolved) && !value.is_array() {
            value = toml::Value::Array(vec![value]);
        }
        let mut cur = models[pos]
            .as_table_mut()
            .ok_or_else(|| bad("the entry is not a table".into(), None))?;
        for p in &parts[2..parts.len() - 1] {
            cur = cur
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| bad(format!("`{p}` is not a table"), None))?;
        }
        cur.insert(parts[parts.len() - 1].clone(), value);
        return Ok(resolved);
    }
    if parts.len() != 2 {
        return Err(bad("expected `section.key=value` (one dot)".into(), None));
    }
    let (section, key) = (&parts[0], &parts[1]);
    let top = known_keys("");
    if !top.contains(&section.as_str()) {
        return Err(bad(
            format!("unknown section `{section}`"),
            did_you_mean(section, top),
        ));
    }
    let keys = known_keys(section);
    let free = section == "experiment" && key == "tags" || section == "data" && key == "columns";
    if !free && !keys.contains(&key.as_str()) {
        return Err(bad(
            format!("unknown key `{key}` in `[{section}]`"),
            did_you_mean(key, keys)
                .or_else(|| Some(format!("`[{section}]` accepts: {}", keys.join(", ")))),
        ));
    }
    if is_list_key(&parts) && !value.is_array() {
        value = toml::Value::Array(vec![value]);
    }
    let entry = table
        .entry(section.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let inner = entry
        .as_table_mut()
        .ok_or_else(|| bad(format!("`{section}` is not a section"), None))?;
    inner.insert(key.clone(), value);
    Ok(resolved)
}

impl Spec {
    /// Reads, applies `--set` overrides, rejects unknown keys and badly typed values, each
    /// located at its line or its `--set`.
    pub fn load(path: &Path, sets: &[String]) -> Result<(Spec, SpecSource), SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, sets)
    }

    pub fn parse(
        path: &Path,
        text: &str,
        sets: &[String],
    ) -> Result<(Spec, SpecSource), SpecError> {
        let mut source = SpecSource {
            path: path.to_path_buf(),
            text: text.to_string(),
            sets: Vec::new(),
        };
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| SpecError::Invalid {
                    location: match e.span() {
                        Some(s) => Location::Line(path.to_path_buf(), line_at(text, s.start)),
                        None => Location::File(path.to_path_buf()),
                    },
                    message: e.message().to_string(),
                    hint: None,
                })?;
        unknown_keys(&table, |p| source.locate(p))?;
        // Type errors of the file alone are blamed on its lines.
        table
            .clone()
            .try_into::<Spec>()
            .map_err(|e| typed_error(&source, &e))?;
        for s in sets {
            let p = apply_set(&mut table, s)?;
            source.sets.push((p, s.clone()));
        }
        unknown_keys(&table, |p| source.locate(p))?;
        let spec: Spec = table.try_into().map_err(|e| typed_error(&source, &e))?;
        spec.check(&source)?;
        Ok((spec, source))
    }

    /// Value rules that need no other setting, each at its own key.
    fn check(&self, src: &SpecSource) -> Result<(), SpecError> {
        let name = self.experiment.name.trim();
        if name.is_empty() {
            return Err(src.error(
                &["experiment", "name"],
                "`experiment.name` must not be empty",
                None,
            ));
        }
        if self.experiment.name.len() > 500 {
            return Err(src.error(
                &["experiment", "name"],
                "`experiment.name` is longer than MLflow's 500 characters",
                None,
            ));
        }
        if let Some(r) = &self.data.rating_range {
            if let Err(e) = r.parse::<crate::data::etl::RatingRange>() {
                return Err(src.error(&["data", "rating_range"], e, None));
            }
        }
        let fraction =
            |section: &str, key: &str, v: Option<f64>, zero_ok: bool, one_ok: bool| match v {
                Some(f)
                    if !(f.is_finite()
                        && (f > 0.0 || zero_ok && f == 0.0)
                        && (f < 1.0 || one_ok && f == 1.0)) =>
                {
                    Err(src.error(
                        &[section, key],
                        format!(
                            "`{section}.{key}` is {f}; it must be in {}0, 1{}",
                            if zero_ok { "[" } else { "(" },
                            if one_ok { "]" } else { ")" }
                        ),
                        None,
                    ))
                }
                _ => Ok(()),
            };
        fraction(
            "data",
            "sample_fraction",
            self.data.sample_fraction,
            false,
            true,
        )?;
        fraction(
            "split",
            "test_fraction",
            self.split.test_fraction,
            false,
            false,
        )?;
        fraction(
            "split",
            "validation_fraction",
            self.split.validation_fraction,
            true,
            false,
        )?;
        if self.split.n == Some(0) {
            return Err(src.error(&["split", "n"], "`split.n` must be at least 1", None));
        }
        if let Some(g) = &self.grid {
            if let Some(ranks) = &g.rank {
                if ranks.is_empty() || ranks.iter().any(|&r| r < 1) {
                    return Err(src.error(
                        &["grid", "rank"],
                        "`grid.rank` needs at least one value, each at least 1",
                        None,
                    ));
                }
            }
            for (key, list) in [("reg", &g.reg), ("alpha", &g.alpha)] {
                if let Some(vals) = list {
                    if vals.is_empty() || vals.iter().any(|v| !v.is_finite() || *v < 0.0) {
                        return Err(src.error(
                            &["grid", key],
                            format!("`grid.{key}` needs at least one value, each finite and >= 0"),
                            None,
                        ));
                    }
                }
            }
        }
        if let Some(k) = &self.eval.k {
            let ks = k.values();
            let max = crate::eval::MoreK::MAX + 1;
            let mut sorted = ks.clone();
            sorted.sort_unstable();
            sorted.dedup();
            let problem = if ks.is_empty() {
                Some("`eval.k` is an empty list".to_string())
            } else if ks.contains(&0) {
                Some("`eval.k` must be at least 1".to_string())
            } else if let Some(&big) = ks.iter().find(|&&k| k > crate::settings::defaults::MAX_K) {
                Some(format!(
                    "`eval.k` = {big} is more than {} items a list can hold",
                    crate::settings::defaults::MAX_K
                ))
            } else if sorted.len() != ks.len() {
                Some("`eval.k` lists a cut-off twice".to_string())
            } else if ks.len() > max {
                Some(format!(
                    "`eval.k` lists {} cut-offs; at most {max}",
                    ks.len()
                ))
            } else {
                None
            };
            if let Some(p) = problem {
                return Err(src.error(
                    &["eval", "k"],
                    p,
                    Some("write one cut-off (`k = 10`) or a short list (`k = [5, 10, 20]`)".into()),
                ));
            }
        }
        if !self.models.is_empty() && (self.model.is_some() || self.grid.is_some()) {
            return Err(src.error(
                &["models"],
                "a spec has either `[[models]]` entries or the one-model `[model]` and `[grid]`, not both",
                Some("move `[model]` and `[grid]` into a `[[models]]` entry".into()),
            ));
        }
        for k in self.experiment.tags.keys() {
            if k.starts_with("mlflow.") || k.starts_with("recflow.") {
                return Err(src.error(
                    &["experiment", "tags"],
                    format!("tag `{k}` is in a reserved namespace (`mlflow.` and `recflow.` are recflow's own)"),
                    Some("rename the tag".into()),
                ));
            }
            if let Err(e) = crate::tracking::validate_key("tag", k) {
                return Err(src.error(&["experiment", "tags"], e.to_string(), None));
            }
        }
        Ok(())
    }
}

/// A serde error located at the key it names (`in `grid.rank``), at its line or its `--set`.
fn typed_error(src: &SpecSource, e: &toml::de::Error) -> SpecError {
    let text = e.to_string();
    let key = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("in `").and_then(|k| k.strip_suffix('`')))
        .unwrap_or_default()
        .to_string();
    let path: Vec<&str> = key.split('.').filter(|p| !p.is_empty()).collect();
    let message = if key.is_empty() {
        e.message().to_string()
    } else {
        format!("`{key}`: {}", e.message())
    };
    SpecError::Invalid {
        location: if path.is_empty() {
            Location::File(src.path.clone())
        } else {
            src.locate(&path)
        },
        message,
        hint: Some("see experiments/README.md for every key and its type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_keys_of_each_section_are_its_fields() {
        fn fields<T: Serialize + Default>() -> Vec<String> {
            let mut v: Vec<String> = serde_json::to_value(T::default())
                .unwrap()
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            v.sort();
            v
        }
        let known = |s: &str| {
            let mut v: Vec<String> = known_keys(s).iter().map(|k| k.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(known("experiment"), fields::<ExperimentSection>());
        assert_eq!(known("data"), fields::<DataSection>());
        assert_eq!(known("split"), fields::<SplitSection>());
        assert_eq!(known("model"), fields::<ModelSection>());
        assert_eq!(known("grid"), fields::<GridSection>());
        assert_eq!(known("eval"), fields::<EvalSection>());
        assert_eq!(known("output"), fields::<OutputSection>());
    }

    fn parse(text: &str) -> Result<Spec, SpecError> {
        Spec::parse(Path::new("experiments/x.toml"), text, &[]).map(|s| s.0)
    }

    fn parse_set(text: &str, sets: &[&str]) -> Result<Spec, SpecError> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Spec::parse(Path::new("x.toml"), text, &sets).map(|s| s.0)
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
        assert!(e.to_string().starts_with("experiments/x.toml:4:"), "{e}");
        assert!(e.to_string().contains("did you mean `temporal`?"), "{e}");
    }

    #[test]
    fn a_type_error_names_the_key_and_its_line() {
        let e = parse("[experiment]\nname = \"a\"\n[grid]\nrank = \"8,16\"\n").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("experiments/x.toml:4: `grid.rank`"),
            "{text}"
        );
    }

    #[test]
    fn toml_syntax_errors_carry_a_line() {
        let e = parse("[experiment]\nname = \"a\"\n[grid]\nrank = [8,\n").unwrap_err();
        assert!(matches!(e.location(), Some(Location::Line(_, _))), "{e}");
    }

    #[test]
    fn set_overrides_values_and_is_blamed_for_its_own_errors() {
        let text = "[experiment]\nname = \"a\"\n[grid]\nrank = [8]\n";
        let s = parse_set(
            text,
            &[
                "grid.rank=[16, 32]",
                "model.implicit=true",
                "experiment.name=b",
            ],
        )
        .unwrap();
        assert_eq!(s.grid.unwrap().rank, Some(vec![16, 32]));
        assert_eq!(s.model.unwrap().implicit, Some(true));
        assert_eq!(s.experiment.name, "b");
        let e = parse_set(text, &["grid.rnk=[1]"]).unwrap_err();
        assert_eq!(e.location(), Some(&Location::Set("grid.rnk=[1]".into())));
        assert_eq!(e.hint().as_deref(), Some("did you mean `rank`?"));
        assert!(parse_set(text, &["rank=1"]).is_err());
        let e = parse_set(text, &["grid.rank=\"x\""]).unwrap_err();
        assert_eq!(e.location(), Some(&Location::Set("grid.rank=\"x\"".into())));
    }

    #[test]
    fn a_scalar_set_on_a_list_key_means_a_one_element_list() {
        let s = parse_set("[experiment]\nname = \"a\"\n", &["grid.rank=4"]).unwrap();
        assert_eq!(s.grid.unwrap().rank, Some(vec![4]));
    }

    #[test]
    fn set_addresses_a_model_entry_by_name() {
        let text = "[experiment]\nname = \"a\"\n[[models]]\nname = \"e\"\nfamily = \"ease\"\n";
        let s = parse_set(text, &["models.e.lambda=200", "models.e.grid.lambda=100"]).unwrap();
        assert_eq!(s.models[0]["lambda"].as_integer(), Some(200));
        assert!(s.models[0]["grid"]["lambda"].is_array());
        let e = parse_set(text, &["models.x.lambda=1"]).unwrap_err();
        assert!(e.to_string().contains("no model entry named `x`"), "{e}");
    }

    #[test]
    fn reserved_tag_namespaces_are_refused() {
        let e = parse("[experiment]\nname = \"a\"\ntags = { \"mlflow.parentRunId\" = \"x\" }\n")
            .unwrap_err();
        assert!(e.to_string().contains("reserved namespace"), "{e}");
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
    fn lines_of_keys_are_found_through_spans() {
        let text = "[experiment]\nname = \"a\"\n\n[[models]]\nname = \"x\"\nrank = 3\n[[models]]\nname = \"y\"\nlambda = 5\n";
        assert_eq!(line_of_path(text, &["models", "1", "lambda"]), Some(9));
        assert_eq!(line_of_path(text, &["models", "0", "rank"]), Some(6));
        assert_eq!(line_of_path(text, &["experiment", "name"]), Some(2));
    }
}
