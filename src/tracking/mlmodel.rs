//! MLflow's `MLmodel` file (`mlflow/models/model.py`): which run logged the model, when, and the
//! flavors that can load it, written through the file store's YAML writer so values are quoted
//! the way PyYAML reads them back.

use super::filestore::yaml::{self, Yaml};

/// The fields of a LoggedModel's `MLmodel` only the store knows; [`logged_mlmodel`] sets them and
/// [`without_identity`] removes them from a copy.
const IDENTITY: &[&str] = &[
    "artifact_path",
    "model_id",
    "model_uuid",
    "run_id",
    "utc_time_created",
    "model_size_bytes",
];

/// The `MLmodel` text of an MLflow 3 LoggedModel: the caller's `fields` plus its identity, as
/// MLflow 3.17 writes it (`model_uuid` equal to `model_id`, `artifact_path` the model's
/// artifact location).
pub(crate) fn logged_mlmodel(
    fields: &[(String, Yaml)],
    model_id: &str,
    artifact_location: &str,
    run_id: &str,
    size_bytes: u64,
) -> String {
    let mut map = without_identity(fields);
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f");
    map.extend([
        ("artifact_path".into(), Yaml::str(artifact_location)),
        ("model_id".into(), Yaml::str(model_id)),
        ("model_uuid".into(), Yaml::str(model_id)),
        ("run_id".into(), Yaml::str(run_id)),
        ("utc_time_created".into(), Yaml::str(now.to_string())),
        (
            "model_size_bytes".into(),
            Yaml::Int(i64::try_from(size_bytes).unwrap_or(i64::MAX)),
        ),
    ]);
    yaml::to_string(&map)
}

/// `fields` without the identity of the model they were read from.
pub(crate) fn without_identity(fields: &[(String, Yaml)]) -> Vec<(String, Yaml)> {
    fields
        .iter()
        .filter(|(k, _)| !IDENTITY.contains(&k.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_mlmodel_carries_its_identity_and_nests_flavors_in_block_style() {
        let fields = vec![(
            "flavors".to_string(),
            Yaml::Map(vec![(
                "recflow".into(),
                Yaml::Map(vec![("recflow_version".into(), Yaml::str("0.1.0"))]),
            )]),
        )];
        let text = logged_mlmodel(&fields, "m-abc", "file:///x/artifacts", "run1", 42);
        assert!(
            text.contains("flavors:\n  recflow:\n    recflow_version:"),
            "{text}"
        );
        let parsed = yaml::parse(&text).unwrap();
        for (k, v) in [
            ("model_id", "m-abc"),
            ("model_uuid", "m-abc"),
            ("run_id", "run1"),
            ("artifact_path", "file:///x/artifacts"),
        ] {
            assert_eq!(yaml::get(&parsed, k), Some(&Yaml::str(v)), "{k}");
        }
        assert_eq!(yaml::get(&parsed, "model_size_bytes"), Some(&Yaml::Int(42)));
        let Some(Yaml::Map(flavors)) = yaml::get(&parsed, "flavors") else {
            panic!("no flavors in {text}");
        };
        let Some(Yaml::Map(recflow)) = yaml::get(flavors, "recflow") else {
            panic!("no recflow flavor in {text}");
        };
        // A version string must stay a string, not become a float.
        assert_eq!(
            yaml::get(recflow, "recflow_version"),
            Some(&Yaml::str("0.1.0"))
        );
        let created = yaml::get(&parsed, "utc_time_created").and_then(Yaml::as_string);
        assert!(
            chrono::NaiveDateTime::parse_from_str(&created.unwrap(), "%Y-%m-%d %H:%M:%S%.6f")
                .is_ok()
        );
        // A copy logged elsewhere gets a new identity: the old one is dropped.
        let copied = without_identity(&parsed);
        assert_eq!(copied.len(), 1, "{copied:?}");
    }
}
