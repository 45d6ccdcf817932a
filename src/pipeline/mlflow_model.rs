//! A saved model in MLflow's model format, ready to log as an MLflow 3 LoggedModel: the recflow
//! model folder as `data/`, a `python_function` flavor whose loader (`code/recflow_pyfunc.py`,
//! numpy and pyarrow only) answers as `recflow recommend` does, a signature, an input example
//! and the environment files MLflow writes (`python_env.yaml`, `requirements.txt`,
//! `conda.yaml`). The `recflow` flavor says how recflow itself serves it.

use std::fs;
use std::io;
use std::path::Path;

use crate::model::artifact::SavedModel;
use crate::tracking::filestore::yaml::Yaml;
use crate::tracking::{Metric, ModelToLog, Param, Tag};

/// The loader MLflow imports (`loader_module`), written into every logged model.
pub const PYFUNC_SOURCE: &str = include_str!("recflow_pyfunc.py");
const PYFUNC_MODULE: &str = "recflow_pyfunc";
/// What the loader was tested with (scripts/requirements-test.txt pins the same).
const PYTHON_VERSION: &str = "3.11";
const REQUIREMENTS: &[&str] = &["mlflow==3.17.2", "numpy==2.4.6", "pyarrow==25.0.1"];

/// Column specs (MLflow's `Schema.to_json`): what `predict` takes and gives.
fn signature() -> Vec<(String, Yaml)> {
    let col = |name: &str, ty: &str, required: bool| serde_json::json!({ "type": ty, "name": name, "required": required });
    // `item_id` is in every signature, so a ranking model sees it and says that it does not
    // predict ratings (MLflow drops columns a signature lacks).
    let inputs = [
        col("user_id", "string", true),
        col("k", "long", false),
        col("item_id", "string", false),
    ];
    let outputs = [
        col("user_id", "string", true),
        col("rank", "long", true),
        col("item_id", "string", true),
        col("score", "double", true),
        col("strategy", "string", true),
    ];
    let params = [serde_json::json!({ "name": "k", "type": "long", "default": 10, "shape": null })];
    let json = |v: &[serde_json::Value]| Yaml::str(serde_json::Value::from(v.to_vec()).to_string());
    vec![
        ("inputs".into(), json(&inputs)),
        ("outputs".into(), json(&outputs)),
        ("params".into(), json(&params)),
    ]
}

/// A model's MLflow folder, written, and the `MLmodel` fields the tracking store completes.
pub struct Written {
    pub root: std::path::PathBuf,
    mlmodel: Vec<(String, Yaml)>,
}

/// Writes the model's MLflow folder into `root` (empty or new) from the saved model folder
/// `model_dir`.
pub fn write(root: &Path, model_dir: &Path, saved: &SavedModel) -> io::Result<Written> {
    let meta = &saved.metadata;
    copy_dir(model_dir, &root.join("data"))?;
    fs::create_dir_all(root.join("code"))?;
    fs::write(
        root.join("code").join(format!("{PYFUNC_MODULE}.py")),
        PYFUNC_SOURCE,
    )?;
    fs::write(
        root.join("requirements.txt"),
        format!("{}\n", REQUIREMENTS.join("\n")),
    )?;
    fs::write(
        root.join("python_env.yaml"),
        format!(
            "python: {PYTHON_VERSION}\nbuild_dependencies:\n- pip\n- setuptools\n- wheel\ndependencies:\n- -r requirements.txt\n"
        ),
    )?;
    let pip: String = REQUIREMENTS.iter().map(|r| format!("  - {r}\n")).collect();
    fs::write(
        root.join("conda.yaml"),
        format!(
            "channels:\n- conda-forge\ndependencies:\n- python={PYTHON_VERSION}\n- pip\n- pip:\n{pip}name: mlflow-env\n"
        ),
    )?;
    // The first user the model knows (it has training ratings), so the example answers.
    let example_user = (0..saved.user_ids.len())
        .find(|&u| saved.history.user.contains(&(u as u32)))
        .map_or_else(String::new, |u| saved.user_ids[u].clone());
    let columns = serde_json::json!(["user_id", "k"]);
    let data = serde_json::json!([[example_user, 10]]);
    fs::write(
        root.join("input_example.json"),
        serde_json::json!({ "columns": columns, "data": data }).to_string(),
    )?;
    fs::write(
        root.join("serving_input_example.json"),
        serde_json::to_string_pretty(
            &serde_json::json!({ "dataframe_split": { "columns": columns, "data": data } }),
        )
        .unwrap_or_default(),
    )?;
    let s = |v: &str| Yaml::str(v);
    let pyfunc = vec![
        ("code".into(), s("code")),
        ("data".into(), s("data")),
        (
            "env".into(),
            Yaml::Map(vec![
                ("conda".into(), s("conda.yaml")),
                ("virtualenv".into(), s("python_env.yaml")),
            ]),
        ),
        ("loader_module".into(), s(PYFUNC_MODULE)),
        ("python_version".into(), s(PYTHON_VERSION)),
        ("streamable".into(), Yaml::Bool(false)),
    ];
    let recflow = vec![
        ("data".into(), s("data")),
        ("family".into(), s(&meta.family.to_string())),
        (
            "format_version".into(),
            Yaml::Int(i64::from(meta.format_version)),
        ),
        ("recflow_version".into(), s(&meta.recflow_version)),
        (
            "loader".into(),
            s("recflow serve --model <this folder>/data"),
        ),
    ];
    let mlmodel = vec![
        (
            "flavors".into(),
            Yaml::Map(vec![
                ("python_function".into(), Yaml::Map(pyfunc)),
                ("recflow".into(), Yaml::Map(recflow)),
            ]),
        ),
        ("signature".into(), Yaml::Map(signature())),
        (
            "saved_input_example_info".into(),
            Yaml::Map(vec![
                ("artifact_path".into(), s("input_example.json")),
                ("pandas_orient".into(), s("split")),
                ("serving_input_path".into(), s("serving_input_example.json")),
                ("type".into(), s("dataframe")),
            ]),
        ),
    ];
    Ok(Written {
        root: root.to_path_buf(),
        mlmodel,
    })
}

/// The LoggedModel of `saved` made by `run_id`: its params are the configuration it was fitted
/// with, its metrics the run's figures of it, its tags the run's user, source and version tags
/// plus its family and entry.
pub fn to_log(
    experiment_id: &str,
    run_id: &str,
    written: Written,
    saved: &SavedModel,
    metrics: Vec<Metric>,
    run_tags: &[Tag],
    output_of: Vec<String>,
) -> ModelToLog {
    let meta = &saved.metadata;
    let mut tags: Vec<Tag> = run_tags
        .iter()
        .filter(|t| t.key.starts_with("mlflow.") || t.key == crate::tracking::TAG_RECFLOW_VERSION)
        .cloned()
        .collect();
    tags.push(Tag::new("recflow.family", meta.family.to_string()));
    if let Some(e) = &meta.entry {
        tags.push(Tag::new(crate::tracking::TAG_ENTRY, e.clone()));
    }
    ModelToLog {
        experiment_id: experiment_id.to_string(),
        name: "model".into(),
        source_run_id: run_id.to_string(),
        dir: written.root,
        mlmodel: written.mlmodel,
        params: meta
            .params
            .iter()
            .map(|(k, v)| Param::new(k, v.to_string()))
            .collect(),
        metrics,
        tags,
        model_type: None,
        output_of,
        model_id: None,
    }
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
