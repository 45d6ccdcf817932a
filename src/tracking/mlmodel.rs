//! MLflow's `MLmodel` file (`mlflow/models/model.py`): which run logged the model, when, and the
//! flavors that can load it, written through the file store's YAML writer so values are quoted
//! the way PyYAML reads them back.

use super::filestore::yaml::{self, Yaml};

/// One flavor of an `MLmodel` file: its name and its settings (strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavor {
    pub name: String,
    pub settings: Vec<(String, String)>,
}

/// The `MLmodel` text for a model logged under `artifact_path` by `run_id`, with a fresh
/// `model_uuid` and the creation time in MLflow's format (`%Y-%m-%d %H:%M:%S.%f`, UTC).
pub fn mlmodel_yaml(artifact_path: &str, run_id: &str, flavors: &[Flavor]) -> String {
    let flavors = flavors
        .iter()
        .map(|f| {
            let settings = f
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), Yaml::str(v)))
                .collect();
            (f.name.clone(), Yaml::Map(settings))
        })
        .collect();
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f");
    yaml::to_string(&[
        ("artifact_path".into(), Yaml::str(artifact_path)),
        ("flavors".into(), Yaml::Map(flavors)),
        (
            "model_uuid".into(),
            Yaml::str(uuid::Uuid::new_v4().simple().to_string()),
        ),
        ("run_id".into(), Yaml::str(run_id)),
        ("utc_time_created".into(), Yaml::str(now.to_string())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlmodel_nests_flavors_in_block_style_and_reads_back() {
        let text = mlmodel_yaml(
            "model",
            "abc123",
            &[Flavor {
                name: "recflow".into(),
                settings: vec![
                    ("family".into(), "ease".into()),
                    ("recflow_version".into(), "0.1.0".into()),
                    (
                        "loader".into(),
                        "recflow serve --model <this folder>/data".into(),
                    ),
                ],
            }],
        );
        assert!(
            text.contains("flavors:\n  recflow:\n    family: ease\n"),
            "{text}"
        );
        let parsed = yaml::parse(&text).unwrap();
        assert_eq!(yaml::get(&parsed, "run_id"), Some(&Yaml::str("abc123")));
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
    }
}
