//! MLflow's rules for keys, values and names (`mlflow/utils/validation.py`), checked before a
//! store sees them so both stores refuse the same input with the same message.

use std::collections::BTreeMap;

use super::{Batch, DatasetInput, Param, Tag, TrackingError, TAG_NOTE};

pub const MAX_KEY_CHARS: usize = 250;
pub const MAX_PARAM_VALUE_CHARS: usize = 6000;
pub const MAX_TAG_VALUE_CHARS: usize = 8000;
pub const MAX_EXPERIMENT_NAME_CHARS: usize = 500;
pub const MAX_DATASET_DIGEST_CHARS: usize = 36;

/// Checks a registered model name against MLflow's rules: not empty, at most 250 characters,
/// and none of `/`, `:` or `%` (they break `models:/NAME/VERSION` URIs).
pub fn validate_registered_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("a registered model name must not be empty".into());
    }
    if name.chars().count() > MAX_KEY_CHARS {
        return Err(format!("it is longer than {MAX_KEY_CHARS} characters"));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | ':' | '%')) {
        return Err(format!(
            "it contains `{c}`, which MLflow's model URIs cannot hold"
        ));
    }
    Ok(())
}

/// Checks a metric, param or tag key against MLflow's rules: `[/\w.\- :]`, at most 250
/// characters, and a normalized relative path (it becomes a file path in the file store).
pub(crate) fn validate_key(kind: &'static str, key: &str) -> Result<(), TrackingError> {
    let bad = |reason: &str| TrackingError::InvalidKey {
        kind,
        key: key.to_string(),
        reason: reason.to_string(),
    };
    if key.is_empty() {
        return Err(bad("it is empty"));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(bad("it is longer than 250 characters"));
    }
    if let Some(c) = key
        .chars()
        .find(|&c| !(c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':')))
    {
        return Err(bad(&format!(
            "`{c}` is not allowed; keys may only contain letters, digits, `_`, `-`, `.`, ` `, `:` \
             and `/`"
        )));
    }
    let normalized = !key.starts_with('/')
        && !key.starts_with("..")
        && !key.ends_with('/')
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if !normalized {
        return Err(bad(
            "it must be a normalized relative path (no leading `/`, `..`, `//` or `./`)",
        ));
    }
    Ok(())
}

/// Cuts a value to `limit` characters, as MLflow does, with a warning.
fn truncate_value(key: &str, value: &str, limit: usize, kind: &str) -> String {
    match value.char_indices().nth(limit) {
        None => value.to_string(),
        Some((cut, _)) => {
            tracing::warn!(
                "{kind} `{key}` is {} characters long; truncated to MLflow's limit of {limit}",
                value.chars().count()
            );
            value[..cut].to_string()
        }
    }
}

/// Checks a batch's keys and makes its values fit MLflow's limits. Params repeated with the
/// same value collapse into one; a repeated param with another value is an error.
pub(crate) fn normalize_batch(run_id: &str, batch: &Batch) -> Result<Batch, TrackingError> {
    let mut params: Vec<Param> = Vec::with_capacity(batch.params.len());
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &batch.params {
        validate_key("param", &p.key)?;
        let value = truncate_value(&p.key, &p.value, MAX_PARAM_VALUE_CHARS, "param");
        match seen.get(p.key.as_str()) {
            Some(&i) if params[i].value == value => {}
            Some(&i) => {
                return Err(TrackingError::ParamChanged {
                    run_id: run_id.to_string(),
                    key: p.key.clone(),
                    old: params[i].value.clone(),
                    new: value,
                })
            }
            None => {
                seen.insert(&p.key, params.len());
                params.push(Param {
                    key: p.key.clone(),
                    value,
                });
            }
        }
    }
    for m in &batch.metrics {
        validate_key("metric", &m.key)?;
    }
    let mut tags = Vec::with_capacity(batch.tags.len());
    for t in &batch.tags {
        validate_key("tag", &t.key)?;
        let value = truncate_value(&t.key, &t.value, MAX_TAG_VALUE_CHARS, "tag");
        tags.push(Tag {
            key: t.key.clone(),
            value,
        });
    }
    Ok(Batch {
        metrics: batch.metrics.clone(),
        params,
        tags,
    })
}

/// The tags a new experiment gets: `tags`, with `description` as its note (replacing any note
/// among them), every key checked.
pub(crate) fn experiment_tags(
    tags: &[Tag],
    description: Option<&str>,
) -> Result<Vec<Tag>, TrackingError> {
    let mut wanted: Vec<Tag> = tags.to_vec();
    if let Some(d) = description {
        wanted.retain(|t| t.key != TAG_NOTE);
        wanted.push(Tag::new(TAG_NOTE, d));
    }
    for t in &wanted {
        validate_key("tag", &t.key)?;
    }
    Ok(wanted)
}

pub(crate) fn validate_experiment_name(name: &str) -> Result<(), TrackingError> {
    let bad = |reason: &str| TrackingError::InvalidExperimentName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    if name.chars().count() > MAX_EXPERIMENT_NAME_CHARS {
        return Err(bad("it is longer than MLflow's 500 characters"));
    }
    Ok(())
}

pub(crate) fn validate_dataset(input: &DatasetInput) -> Result<(), TrackingError> {
    if input.name.is_empty() {
        return Err(TrackingError::InvalidValue {
            key: "dataset.name".into(),
            reason: "it is empty".into(),
        });
    }
    if input.digest.chars().count() > MAX_DATASET_DIGEST_CHARS {
        return Err(TrackingError::InvalidValue {
            key: format!("dataset `{}` digest", input.name),
            reason: format!("`{}` is longer than MLflow's 36 characters", input.digest),
        });
    }
    Ok(())
}

/// Checks an artifact path: relative, `/`-separated, without `..`.
pub(crate) fn validate_artifact_path(path: &str) -> Result<(), TrackingError> {
    let bad = |reason: &str| TrackingError::InvalidArtifactPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.starts_with('/') || path.contains('\\') {
        return Err(bad("it must be a relative path with `/` separators"));
    }
    if path.split('/').any(|seg| seg == "..") {
        return Err(bad("it must not contain `..`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_mlflow_rules() {
        for ok in [
            "rmse",
            "train/loss",
            "popularity.precision_at_10",
            "a b:c-d",
            "größe",
        ] {
            assert!(validate_key("metric", ok).is_ok(), "{ok}");
        }
        let bad_keys = [
            "", "/a", "a/", "a//b", "a/./b", "a/../b", "..", ".", "...a", "a?b", "a\\b", "x=1",
        ];
        for bad in bad_keys {
            let err = validate_key("param", bad).unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        assert!(validate_key("tag", &"k".repeat(251)).is_err());
        assert!(validate_key("tag", &"k".repeat(250)).is_ok());
    }

    #[test]
    fn normalize_batch_truncates_long_values_and_rejects_conflicting_params() {
        let batch = Batch {
            params: vec![
                Param::new("a", "x".repeat(7000)),
                Param::new("b", "1"),
                Param::new("b", "1"),
            ],
            tags: vec![Tag::new("t", "y".repeat(9000))],
            metrics: vec![],
        };
        let n = normalize_batch("r", &batch).unwrap();
        assert_eq!(n.params.len(), 2);
        assert_eq!(n.params[0].value.len(), MAX_PARAM_VALUE_CHARS);
        assert_eq!(n.tags[0].value.len(), MAX_TAG_VALUE_CHARS);
        let conflict = Batch {
            params: vec![Param::new("b", "1"), Param::new("b", "2")],
            ..Batch::default()
        };
        let err = normalize_batch("r", &conflict).unwrap_err();
        assert!(matches!(err, TrackingError::ParamChanged { ref key, .. } if key == "b"));
    }
}
