//! A trained model on disk (format 2): typed `metadata.json`, id maps, the per-user history
//! (every training rating, so recommending knows what each user already has), the cold-start
//! list, and the family's own files (`weights.safetensors`; factor models also in Spark's
//! ALSModel layout). `docs/model-format.md` describes the layout for users.
//!
//! Models written by earlier releases (format 1: ALS only, the history as
//! `train_interactions.parquet`) still load. Knows nothing about how the model was trained or
//! evaluated.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::interactions::Interactions;
use crate::data::split::SplitStrategy;
use crate::data::store::{self, StoreError};
use crate::model::family::{Config, FamilyName, ParamValue, Recommender};
use crate::model::popularity::Popularity;

pub const METADATA: &str = "metadata.json";
pub const HISTORY: &str = "history.parquet";
/// Format 1's name of the history.
pub const TRAIN_V1: &str = "train_interactions.parquet";
pub const POPULAR: &str = "popular_items.parquet";
pub const WEIGHTS: &str = "weights.safetensors";
pub const USER_FACTORS: &str = "userFactors";
pub const ITEM_FACTORS: &str = "itemFactors";
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("`{}` is not a recflow model folder (no metadata.json)", .0.display())]
    NotAModel(PathBuf),
    #[error("`{}`: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "`{}` was written by a newer recflow (model format {found}; this one reads up to {FORMAT_VERSION})",
        path.display()
    )]
    NewerFormat { path: PathBuf, found: u32 },
    #[error("`{}` holds a format-1 model this release cannot read: {message}", path.display())]
    OldFormat { path: PathBuf, message: String },
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot replace `{}`", path.display())]
    Replace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a recflow model folder, so it is not replaced", path.display())]
    NotOurs { path: PathBuf },
    #[error("`{}` is the working folder or one above it, so it is not replaced", path.display())]
    WorkingFolder { path: PathBuf },
}

impl ArtifactError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotAModel(_) => Some(
                "train one with `recflow train-als` or `recflow run` (they write artifacts/model)"
                    .into(),
            ),
            Self::OldFormat { .. } => Some(
                "re-save it: train it again with the same settings (`recflow train-als ...`), \
                 or keep the older recflow release to read it"
                    .into(),
            ),
            Self::NotOurs { .. } => {
                Some("choose an empty or new folder, or one holding a recflow model".into())
            }
            Self::WorkingFolder { .. } => Some(
                "name a folder inside the working folder, e.g. `--model-dir artifacts/model`"
                    .into(),
            ),
            Self::Store(e) => e.hint(),
            _ => None,
        }
    }
}

/// The data a model was trained on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DataInfo {
    /// The processed-data folder.
    pub path: String,
    /// The processed copy's fingerprint (input hash and ETL settings), when known.
    pub fingerprint: Option<String>,
    pub input: Option<String>,
    pub input_sha256: Option<String>,
    pub users: usize,
    pub items: usize,
    pub ratings: usize,
}

/// Rows in each part of the data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSizes {
    pub sampled: usize,
    pub train: usize,
    pub validation: usize,
    pub test: usize,
    /// The test split's identity: the first 8 bytes of SHA-256 over its (user, item) index pairs.
    /// Per-user figures of two runs pair up only when this and the data fingerprint agree.
    #[serde(default)]
    pub test_digest: u64,
}

/// How the data was split and evaluated.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SplitInfo {
    pub strategy: SplitStrategy,
    pub test_fraction: f64,
    pub validation_fraction: f64,
    pub seed: u64,
    pub sample_fraction: f64,
    pub sample_seed: u64,
    /// The file used as the test split, when one was given.
    pub test_file: Option<String>,
    /// `val` when selection used a validation split, `test` when it had none.
    pub selected_on: String,
    pub k: usize,
    pub relevance_threshold: Option<f32>,
    pub sizes: SplitSizes,
}

/// What `metadata.json` records about a model (format 2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMetadata {
    pub format_version: u32,
    pub family: FamilyName,
    /// Every parameter the model used, as written in a spec.
    pub params: Config,
    /// The experiment entry the model came from, when it came from a spec.
    #[serde(default)]
    pub entry: Option<String>,
    pub predicts_ratings: bool,
    /// Leading latent columns of factor models (the folded bias columns excluded).
    #[serde(default)]
    pub latent: Option<usize>,
    pub data: DataInfo,
    pub split: SplitInfo,
    /// Test-split figures (`test_` keys).
    pub metrics: BTreeMap<String, f64>,
    pub timings: BTreeMap<String, f64>,
    pub n_users: usize,
    pub n_items: usize,
    pub n_history: usize,
    pub recflow_version: String,
    pub git_commit: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub run_id: Option<String>,
}

/// An item ranked for cold-start users: count first, then a damped mean rating.
#[derive(Debug, Clone, PartialEq)]
pub struct PopularItem {
    pub item: u32,
    pub count: u64,
    pub score: f64,
}

/// Items for cold start, from the training data: most rated first, ties by the damped mean
/// rating (see [`Popularity`]), so one 5-star rating cannot top the list. Items never rated are
/// left out.
pub fn cold_start_ranking(train: &Interactions) -> Vec<PopularItem> {
    let pop = Popularity::fit(train);
    pop.cold_start_ranking()
        .iter()
        .filter(|&&i| pop.count(i) > 0)
        .map(|&i| PopularItem {
            item: i,
            count: pop.count(i) as u64,
            score: pop.damped_mean(i),
        })
        .collect()
}

/// A model as saved and loaded.
pub struct SavedModel {
    pub metadata: ModelMetadata,
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    /// Every training rating (timestamps dropped): what each user already has.
    pub history: Interactions,
    pub popular: Vec<PopularItem>,
    pub model: std::sync::Arc<dyn Recommender>,
    /// Titles, categories and image URLs by item index, when the data had them (columns of
    /// the model's item map, as in the processed data).
    pub item_meta: Option<Vec<crate::data::meta::ItemMeta>>,
}

impl std::fmt::Debug for SavedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedModel")
            .field("metadata", &self.metadata)
            .field("users", &self.user_ids.len())
            .field("items", &self.item_ids.len())
            .finish()
    }
}

fn corrupt(path: &Path, message: impl Into<String>) -> ArtifactError {
    ArtifactError::Corrupt {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `dir` is the working folder or one of its ancestors (`.`, `..`, `a/..`, an absolute
/// path to either): replacing it would pull the ground from under the process.
fn holds_working_folder(dir: &Path) -> bool {
    use std::path::Component;
    if dir.components().next_back().is_some_and(|c| {
        matches!(
            c,
            Component::CurDir | Component::ParentDir | Component::RootDir
        )
    }) {
        return true;
    }
    match (
        fs::canonicalize(dir),
        std::env::current_dir().and_then(fs::canonicalize),
    ) {
        (Ok(d), Ok(cwd)) => cwd.starts_with(d),
        _ => false,
    }
}

/// Whether `dir` holds a recflow model (any format): its metadata says so.
pub fn is_model_dir(dir: &Path) -> bool {
    fs::read_to_string(dir.join(METADATA))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("format_version").is_some_and(|f| f.is_u64()))
}

// ---------------------------------------------------------------------------------------------
// Spark's ALSModel layout

/// Spark ALSModel metadata (one JSON line in `metadata/part-00000`).
fn spark_metadata(rank: usize) -> serde_json::Value {
    let ts = chrono::Utc::now().timestamp_millis();
    serde_json::json!({
        "class": "org.apache.spark.ml.recommendation.ALSModel",
        "timestamp": ts,
        "sparkVersion": "4.3.0",
        "uid": format!("ALS_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        "paramMap": {
            "userCol": "user",
            "itemCol": "item",
            "predictionCol": "prediction",
            "coldStartStrategy": "drop",
        },
        "defaultParamMap": {
            "blockSize": 4096,
            "coldStartStrategy": "nan",
            "itemCol": "item",
            "predictionCol": "prediction",
            "userCol": "user",
        },
        "rank": rank,
    })
}

fn write_factors(dir: &Path, name: &str, m: &Array2<f32>) -> Result<(), ArtifactError> {
    let sub = dir.join(name);
    fs::create_dir_all(&sub).map_err(write_err(&sub))?;
    let (rows, cols) = m.dim();
    let mut b = ListPrimitiveChunkedBuilder::<Float32Type>::new(
        "features".into(),
        rows,
        rows * cols,
        DataType::Float32,
    );
    for r in m.rows() {
        match r.as_slice() {
            Some(s) => b.append_slice(s),
            None => b.append_slice(&r.to_vec()),
        }
    }
    let features = b.finish().into_series().into_column();
    let ids = Column::new("id".into(), (0..rows as i32).collect::<Vec<i32>>());
    store::write_parquet(
        &sub.join("part-00000-recflow-c000.snappy.parquet"),
        vec![ids, features],
    )?;
    fs::write(sub.join("_SUCCESS"), b"").map_err(write_err(&sub))?;
    Ok(())
}

/// Writes user and item factors in Spark's ALSModel layout (`metadata/`, `userFactors/`,
/// `itemFactors/`), which `ALSModel.load` reads.
pub fn write_spark_layout(
    dir: &Path,
    users: &Array2<f32>,
    items: &Array2<f32>,
) -> Result<(), ArtifactError> {
    write_factors(dir, USER_FACTORS, users)?;
    write_factors(dir, ITEM_FACTORS, items)?;
    let meta_dir = dir.join("metadata");
    fs::create_dir_all(&meta_dir).map_err(write_err(&meta_dir))?;
    let line = format!("{}\n", spark_metadata(users.ncols()));
    fs::write(meta_dir.join("part-00000-recflow-c000.txt"), line).map_err(write_err(&meta_dir))?;
    fs::write(meta_dir.join("_SUCCESS"), b"").map_err(write_err(&meta_dir))?;
    Ok(())
}

fn read_factors(dir: &Path, name: &str) -> Result<Array2<f32>, ArtifactError> {
    let sub = dir.join(name);
    let mut parts: Vec<PathBuf> = fs::read_dir(&sub)
        .map_err(|_| corrupt(&sub, "missing factor folder"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    let mut rows: Vec<(i64, Vec<f32>)> = Vec::new();
    let mut rank: Option<usize> = None;
    for part in parts {
        let file = fs::File::open(&part).map_err(|e| corrupt(&part, e.to_string()))?;
        let df = ParquetReader::new(file)
            .finish()
            .map_err(|e| corrupt(&part, e.to_string()))?;
        let ids = df
            .column("id")
            .and_then(|c| c.cast(&DataType::Int64))
            .map_err(|e| corrupt(&part, e.to_string()))?;
        let ids = ids
            .i64()
            .map_err(|e| corrupt(&part, e.to_string()))?
            .clone();
        let feats = df
            .column("features")
            .and_then(|c| c.cast(&DataType::List(Box::new(DataType::Float32))))
            .map_err(|e| corrupt(&part, e.to_string()))?;
        let feats = feats
            .list()
            .map_err(|e| corrupt(&part, e.to_string()))?
            .clone();
        for (id, f) in ids.iter().zip(feats.amortized_iter()) {
            let (Some(id), Some(f)) = (id, f) else {
                return Err(corrupt(&part, "null id or features"));
            };
            let v: Vec<f32> = f
                .as_ref()
                .f32()
                .map_err(|e| corrupt(&part, e.to_string()))?
                .iter()
                .map(|x| x.unwrap_or(f32::NAN))
                .collect();
            match rank {
                None => rank = Some(v.len()),
                Some(r) if r != v.len() => {
                    return Err(corrupt(
                        &part,
                        format!("row {id} has {} features, expected {r}", v.len()),
                    ))
                }
                _ => {}
            }
            rows.push((id, v));
        }
    }
    rows.sort_by_key(|r| r.0);
    let n = rows.len();
    if rows.iter().enumerate().any(|(k, r)| r.0 != k as i64) {
        return Err(corrupt(&sub, "ids are not 0..n"));
    }
    let flat: Vec<f32> = rows.into_iter().flat_map(|r| r.1).collect();
    if flat.iter().any(|x| !x.is_finite()) {
        return Err(corrupt(&sub, "factors contain NaN or infinity"));
    }
    Array2::from_shape_vec((n, rank.unwrap_or(0)), flat).map_err(|e| corrupt(&sub, e.to_string()))
}

/// Reads the factors of a Spark ALSModel layout.
pub fn read_spark_layout(dir: &Path) -> Result<(Array2<f32>, Array2<f32>), ArtifactError> {
    let users = read_factors(dir, USER_FACTORS)?;
    let items = read_factors(dir, ITEM_FACTORS)?;
    if users.ncols() != items.ncols() && users.nrows() > 0 && items.nrows() > 0 {
        return Err(corrupt(dir, "user and item factors differ in rank"));
    }
    Ok((users, items))
}

// ---------------------------------------------------------------------------------------------
// Tensors (`weights.safetensors`)

/// One tensor's values.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

/// A named tensor to write or as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self {
            shape,
            data: TensorData::F32(data),
        }
    }
    pub fn i32(shape: Vec<usize>, data: Vec<i32>) -> Self {
        Self {
            shape,
            data: TensorData::I32(data),
        }
    }
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Self {
        Self {
            shape,
            data: TensorData::I64(data),
        }
    }
}

/// Writes `weights.safetensors` in `dir`.
pub fn write_tensors(dir: &Path, tensors: &BTreeMap<String, Tensor>) -> Result<(), ArtifactError> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let (dtype, raw) = match &t.data {
                TensorData::F32(v) => {
                    (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
                TensorData::I32(v) => {
                    (Dtype::I32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
                TensorData::I64(v) => {
                    (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
            };
            (name.clone(), dtype, t.shape.clone(), raw)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| corrupt(dir, format!("tensor `{n}`: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let path = dir.join(WEIGHTS);
    safetensors::serialize_to_file(views, None, &path).map_err(|e| corrupt(&path, e.to_string()))
}

/// Reads `weights.safetensors` in `dir`.
pub fn read_tensors(dir: &Path) -> Result<BTreeMap<String, Tensor>, ArtifactError> {
    use safetensors::tensor::Dtype;
    let path = dir.join(WEIGHTS);
    let bytes = fs::read(&path).map_err(|e| corrupt(&path, e.to_string()))?;
    let st =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| corrupt(&path, e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data = match view.dtype() {
            Dtype::F32 => TensorData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Dtype::I32 => TensorData::I32(
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Dtype::I64 => TensorData::I64(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            other => {
                return Err(corrupt(
                    &path,
                    format!("tensor `{name}` has type {other:?}"),
                ))
            }
        };
        out.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Takes an f32 tensor of `len` values out of a read set.
pub fn take_f32(
    dir: &Path,
    tensors: &mut BTreeMap<String, Tensor>,
    name: &str,
    len: usize,
) -> Result<Vec<f32>, ArtifactError> {
    match tensors.remove(name) {
        Some(Tensor {
            data: TensorData::F32(v),
            ..
        }) if v.len() == len => {
            if v.iter().any(|x| !x.is_finite()) {
                return Err(corrupt(
                    &dir.join(WEIGHTS),
                    format!("`{name}` has NaN or infinity"),
                ));
            }
            Ok(v)
        }
        Some(t) => Err(corrupt(
            &dir.join(WEIGHTS),
            format!(
                "`{name}` has shape {:?}, expected {len} f32 values",
                t.shape
            ),
        )),
        None => Err(corrupt(&dir.join(WEIGHTS), format!("no tensor `{name}`"))),
    }
}

// ---------------------------------------------------------------------------------------------
// The model folder

impl SavedModel {
    /// Writes the model into `dir`, replacing a model there only once every file is written.
    /// A folder that exists and holds anything but a recflow model is refused.
    pub fn save(&self, dir: &Path) -> Result<(), ArtifactError> {
        if holds_working_folder(dir) {
            return Err(ArtifactError::WorkingFolder {
                path: dir.to_path_buf(),
            });
        }
        if dir.exists()
            && !is_model_dir(dir)
            && fs::read_dir(dir).map_or(true, |mut d| d.next().is_some())
        {
            return Err(ArtifactError::NotOurs {
                path: dir.to_path_buf(),
            });
        }
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(write_err(parent))?;
        let tmp = tempfile::Builder::new()
            .prefix(".model-")
            .tempdir_in(parent)
            .map_err(write_err(parent))?;
        let t = tmp.path();
        store::write_parquet(
            &t.join(store::USER_MAP),
            store::id_map_columns("user_idx", "user_id", &self.user_ids),
        )?;
        store::write_parquet(
            &t.join(store::ITEM_MAP),
            store::item_map_columns(&self.item_ids, self.item_meta.as_deref()),
        )?;
        store::write_interactions(
            &t.join(HISTORY),
            &Interactions {
                timestamp: None,
                ..self.history.clone()
            },
        )?;
        write_popular(&t.join(POPULAR), &self.popular, &self.item_ids)?;
        self.model.save(t)?;
        let meta =
            serde_json::to_vec_pretty(&self.metadata).map_err(|e| corrupt(dir, e.to_string()))?;
        fs::write(t.join(METADATA), meta).map_err(write_err(&t.join(METADATA)))?;
        // Swap folders: the old model stays whole until the new one is complete.
        let tmp_path = tmp.keep();
        let old = parent.join(format!(".old-model-{}", uuid::Uuid::new_v4().simple()));
        let had_old = dir.exists();
        if had_old {
            fs::rename(dir, &old).map_err(|e| {
                let _ = fs::remove_dir_all(&tmp_path);
                ArtifactError::Replace {
                    path: dir.to_path_buf(),
                    source: e,
                }
            })?;
        }
        if let Err(e) = fs::rename(&tmp_path, dir) {
            if had_old {
                let _ = fs::rename(&old, dir);
            }
            let _ = fs::remove_dir_all(&tmp_path);
            return Err(ArtifactError::Replace {
                path: dir.to_path_buf(),
                source: e,
            });
        }
        if had_old {
            let _ = fs::remove_dir_all(&old);
        }
        Ok(())
    }

    /// Reads a model folder written by [`SavedModel::save`] (or a format-1 ALS model).
    pub fn load(dir: &Path) -> Result<Self, ArtifactError> {
        let meta_path = dir.join(METADATA);
        let text = fs::read_to_string(&meta_path)
            .map_err(|_| ArtifactError::NotAModel(dir.to_path_buf()))?;
        let raw: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| corrupt(&meta_path, e.to_string()))?;
        let version =
            raw.get("format_version")
                .and_then(|v| v.as_u64())
                .ok_or_else(|| corrupt(&meta_path, "no `format_version`"))? as u32;
        let (metadata, history_file) = match version {
            1 => (metadata_from_v1(dir, &raw)?, TRAIN_V1),
            FORMAT_VERSION => (
                serde_json::from_value::<ModelMetadata>(raw)
                    .map_err(|e| corrupt(&meta_path, e.to_string()))?,
                HISTORY,
            ),
            found => {
                return Err(ArtifactError::NewerFormat {
                    path: dir.to_path_buf(),
                    found,
                })
            }
        };
        let user_ids = store::read_id_map(&dir.join(store::USER_MAP), "user_idx", "user_id")?;
        let item_ids = store::read_id_map(&dir.join(store::ITEM_MAP), "item_idx", "item_id")?;
        let history =
            store::read_interactions(&dir.join(history_file), user_ids.len(), item_ids.len())
                .map_err(|e| corrupt(&dir.join(history_file), e.to_string()))?;
        let model: std::sync::Arc<dyn Recommender> =
            crate::model::load_recommender(dir, &metadata)?.into();
        if model.n_users() != user_ids.len() || model.n_items() != item_ids.len() {
            return Err(corrupt(dir, "id maps and the model disagree in size"));
        }
        let popular = cold_start_ranking(&history);
        let item_meta = store::read_item_meta(dir)?;
        Ok(Self {
            metadata,
            user_ids,
            item_ids,
            history,
            popular,
            model,
            item_meta,
        })
    }
}

fn write_popular(
    path: &Path,
    popular: &[PopularItem],
    item_ids: &[String],
) -> Result<(), ArtifactError> {
    store::write_parquet(
        path,
        vec![
            Column::new(
                "item_idx".into(),
                popular.iter().map(|p| p.item as i32).collect::<Vec<i32>>(),
            ),
            Column::new(
                "item_id".into(),
                popular
                    .iter()
                    .map(|p| item_ids[p.item as usize].as_str())
                    .collect::<Vec<&str>>(),
            ),
            Column::new(
                "count_ratings".into(),
                popular.iter().map(|p| p.count as i64).collect::<Vec<i64>>(),
            ),
            Column::new(
                "damped_mean_rating".into(),
                popular.iter().map(|p| p.score).collect::<Vec<f64>>(),
            ),
        ],
    )?;
    Ok(())
}

/// Format 1 (ALS only, untyped `params`, `data`, `split`) to format 2.
fn metadata_from_v1(dir: &Path, v: &serde_json::Value) -> Result<ModelMetadata, ArtifactError> {
    let old = |message: &str| ArtifactError::OldFormat {
        path: dir.to_path_buf(),
        message: message.to_string(),
    };
    let u = |x: &serde_json::Value| x.as_u64().map(|n| n as usize);
    let p = &v["params"];
    let implicit = v["implicit"]
        .as_bool()
        .ok_or_else(|| old("no `implicit`"))?;
    let rank = u(&v["rank"]).ok_or_else(|| old("no `rank`"))?;
    let mut params = Config::new();
    params.insert("implicit".into(), implicit.into());
    params.insert("rank".into(), rank.into());
    for key in ["reg", "alpha"] {
        if let Some(x) = p[key].as_f64() {
            if key == "reg" || implicit {
                params.insert(key.into(), ParamValue::Float(x));
            }
        }
    }
    for key in ["max_iter", "seed"] {
        if let Some(x) = p[key].as_u64() {
            params.insert(key.into(), ParamValue::Int(x as i64));
        }
    }
    if let Some(s) = p["solver"].as_str() {
        params.insert("solver".into(), s.into());
    }
    if let Some(b) = p["biases"].as_bool() {
        params.insert("biases".into(), b.into());
    }
    let d = &v["data"];
    let s = &v["split"];
    let strategy = match s["strategy"].as_str().unwrap_or("random") {
        "per_user" => SplitStrategy::PerUser,
        "temporal" => SplitStrategy::Temporal,
        "leave_last_n" => SplitStrategy::LeaveLastN(u(&s["leave_n"]).unwrap_or(1)),
        "random" => SplitStrategy::Random,
        other => return Err(old(&format!("unknown split strategy `{other}`"))),
    };
    let sizes = &s["sizes"];
    let n_users = u(&v["n_users"]).ok_or_else(|| old("no `n_users`"))?;
    let n_items = u(&v["n_items"]).ok_or_else(|| old("no `n_items`"))?;
    let metrics = v["metrics"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| {
                    x.as_f64()
                        .map(|x| (crate::eval::keys::legacy_key(k, false), x))
                })
                .filter(|(k, _)| crate::eval::keys::MetricKey::parse(k).is_some())
                .collect()
        })
        .unwrap_or_default();
    Ok(ModelMetadata {
        format_version: FORMAT_VERSION,
        family: FamilyName::Als,
        params,
        entry: None,
        predicts_ratings: !implicit,
        latent: Some(if v["biases"].as_bool().unwrap_or(false) {
            u(&v["scoring_rank"]).unwrap_or(rank + 2).saturating_sub(2)
        } else {
            u(&v["scoring_rank"]).unwrap_or(rank)
        }),
        data: DataInfo {
            path: d["path"].as_str().unwrap_or_default().to_string(),
            fingerprint: d["fingerprint"].as_str().map(str::to_string),
            input: d["input"].as_str().map(str::to_string),
            input_sha256: d["input_sha256"].as_str().map(str::to_string),
            users: u(&d["users"]).unwrap_or(n_users),
            items: u(&d["items"]).unwrap_or(n_items),
            ratings: u(&d["ratings"]).unwrap_or(0),
        },
        split: SplitInfo {
            strategy,
            test_fraction: s["test_fraction"].as_f64().unwrap_or(0.2),
            validation_fraction: s["validation_fraction"].as_f64().unwrap_or(0.0),
            seed: s["seed"].as_u64().ok_or_else(|| old("no split `seed`"))?,
            sample_fraction: s["sample_fraction"].as_f64().unwrap_or(1.0),
            sample_seed: s["sample_seed"].as_u64().unwrap_or(42),
            test_file: s["test_file"].as_str().map(str::to_string),
            selected_on: match s["selected_on"].as_str() {
                Some("validation") => "val".into(),
                _ => "test".into(),
            },
            k: u(&s["k"]).unwrap_or(10),
            relevance_threshold: s["relevance_threshold"].as_f64().map(|t| t as f32),
            sizes: SplitSizes {
                sampled: u(&sizes["sampled"]).unwrap_or(0),
                train: u(&sizes["train"]).unwrap_or(0),
                validation: u(&sizes["validation"]).unwrap_or(0),
                test: u(&sizes["test"]).unwrap_or(0),
                test_digest: sizes["test_digest"].as_u64().unwrap_or(0),
            },
        },
        metrics,
        timings: serde_json::from_value(v["timings"].clone()).unwrap_or_default(),
        n_users,
        n_items,
        n_history: u(&v["n_train"]).unwrap_or(0),
        recflow_version: v["recflow_version"].as_str().unwrap_or("0").to_string(),
        git_commit: v["git_commit"].as_str().map(str::to_string),
        created_at: v["created_at"].as_str().unwrap_or_default().to_string(),
        run_id: v["run_id"].as_str().map(str::to_string),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::als::family::FactorModel;

    pub(crate) fn split_info() -> SplitInfo {
        SplitInfo {
            strategy: SplitStrategy::Random,
            test_fraction: 0.2,
            validation_fraction: 0.1,
            seed: 42,
            sample_fraction: 1.0,
            sample_seed: 42,
            test_file: None,
            selected_on: "val".into(),
            k: 10,
            relevance_threshold: None,
            sizes: SplitSizes::default(),
        }
    }

    pub(crate) fn metadata(family: FamilyName, n_users: usize, n_items: usize) -> ModelMetadata {
        ModelMetadata {
            format_version: FORMAT_VERSION,
            family,
            params: Config::new(),
            entry: None,
            predicts_ratings: true,
            latent: Some(2),
            data: DataInfo::default(),
            split: split_info(),
            metrics: BTreeMap::from([("test_rmse".to_string(), 0.9)]),
            timings: BTreeMap::new(),
            n_users,
            n_items,
            n_history: 3,
            recflow_version: "0".into(),
            git_commit: None,
            created_at: "now".into(),
            run_id: None,
        }
    }

    fn saved() -> SavedModel {
        let history = Interactions::from_rows(&[(0, 0, 5.0), (0, 2, 3.0), (1, 2, 4.0)], 2, 3);
        SavedModel {
            metadata: metadata(FamilyName::Als, 2, 3),
            user_ids: vec!["a".into(), "b".into()],
            item_ids: vec!["x".into(), "y".into(), "z".into()],
            popular: cold_start_ranking(&history),
            history,
            model: std::sync::Arc::new(FactorModel::new(
                Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
                Array2::from_shape_vec((3, 2), vec![0.5, 0.25, -1.0, 0.0, 2.0, 1.5]).unwrap(),
                true,
                2,
            )),
            item_meta: None,
        }
    }

    #[test]
    fn save_then_load_round_trips_the_model_maps_and_history() {
        let dir = tempfile::tempdir().unwrap();
        let m = saved();
        let path = dir.path().join("model");
        m.save(&path).unwrap();
        // A second save replaces the first whole.
        m.save(&path).unwrap();
        let back = SavedModel::load(&path).unwrap();
        assert_eq!(back.item_ids, m.item_ids);
        assert_eq!(back.history, m.history);
        assert_eq!(back.metadata, m.metadata);
        assert_eq!(back.model.predict(1, 2), m.model.predict(1, 2));
        assert!(path.join("metadata/part-00000-recflow-c000.txt").exists());
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary folders left");
    }

    #[test]
    fn item_titles_travel_with_the_model_and_a_model_without_them_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = saved();
        let meta = |t: Option<&str>| crate::data::meta::ItemMeta {
            title: t.map(String::from),
            category: t.map(|_| "Electronics > Audio".to_string()),
            image_url: None,
        };
        m.item_meta = Some(vec![
            meta(Some("<b>\"X\"</b>")),
            meta(None),
            meta(Some("Zed")),
        ]);
        m.save(&dir.path().join("with")).unwrap();
        let back = SavedModel::load(&dir.path().join("with")).unwrap();
        assert_eq!(back.item_meta, m.item_meta);
        m.item_meta = None;
        m.save(&dir.path().join("without")).unwrap();
        assert_eq!(
            SavedModel::load(&dir.path().join("without"))
                .unwrap()
                .item_meta,
            None
        );
    }

    #[test]
    fn a_folder_that_is_not_a_model_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("mydocs");
        fs::create_dir_all(docs.join("photos")).unwrap();
        fs::write(docs.join("thesis.tex"), "a").unwrap();
        let e = saved().save(&docs).unwrap_err();
        assert!(matches!(e, ArtifactError::NotOurs { .. }), "{e}");
        assert!(docs.join("thesis.tex").exists() && docs.join("photos").exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no staging folder left");
    }

    #[test]
    fn the_working_folder_and_folders_above_it_are_never_replaced() {
        for d in [".", "..", "src/..", "/"] {
            let e = saved().save(Path::new(d)).unwrap_err();
            assert!(matches!(e, ArtifactError::WorkingFolder { .. }), "{d}: {e}");
        }
        let cwd = std::env::current_dir().unwrap();
        let e = saved().save(&cwd).unwrap_err();
        assert!(matches!(e, ArtifactError::WorkingFolder { .. }), "{e}");
        if let Some(up) = cwd.parent() {
            let e = saved().save(up).unwrap_err();
            assert!(matches!(e, ArtifactError::WorkingFolder { .. }), "{e}");
        }
        let staging = fs::read_dir(".")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".model-"))
            .count();
        assert_eq!(staging, 0, "no staging folder left in the working folder");
    }

    #[test]
    fn a_failed_save_leaves_no_staging_folder() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the model folder should be: the save fails after staging began or before.
        let target = dir.path().join("model");
        fs::write(&target, "not a folder").unwrap();
        assert!(saved().save(&target).is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["model"], "no `.model-*` or `.old-model-*` left");
        assert_eq!(fs::read_to_string(&target).unwrap(), "not a folder");
    }

    #[test]
    fn tensors_round_trip_through_safetensors() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = BTreeMap::new();
        t.insert("a".to_string(), Tensor::f32(vec![2], vec![1.5, -2.0]));
        t.insert("b".to_string(), Tensor::i64(vec![3], vec![0, 4, 9]));
        write_tensors(dir.path(), &t).unwrap();
        assert_eq!(read_tensors(dir.path()).unwrap(), t);
    }

    #[test]
    fn cold_start_puts_count_first_and_damps_single_ratings() {
        // Item 0: one 5-star rating. Item 1: two ratings of 4. Item 2: two ratings of 5.
        let train = Interactions::from_rows(
            &[
                (0, 0, 5.0),
                (1, 1, 4.0),
                (2, 1, 4.0),
                (1, 2, 5.0),
                (2, 2, 5.0),
            ],
            3,
            3,
        );
        let order: Vec<u32> = cold_start_ranking(&train).iter().map(|p| p.item).collect();
        assert_eq!(order, vec![2, 1, 0]);
    }

    #[test]
    fn loading_a_folder_without_metadata_says_it_is_not_a_model() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            SavedModel::load(dir.path()),
            Err(ArtifactError::NotAModel(_))
        ));
    }

    #[test]
    fn a_format_1_model_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let m = saved();
        let path = dir.path().join("old");
        m.save(&path).unwrap();
        // Rewrite it the way format 1 laid it out.
        fs::rename(path.join(HISTORY), path.join(TRAIN_V1)).unwrap();
        let v1 = serde_json::json!({
            "format_version": 1, "model": "als", "implicit": false, "rank": 2, "scoring_rank": 2,
            "biases": false, "params": {"rank": 2, "reg": 0.1, "alpha": 1.0, "max_iter": 10,
            "implicit": false, "solver": "cholesky", "seed": 7, "biases": false},
            "metrics": {"rmse": 0.9, "popularity.ndcg_at_10": 0.1, "users_unscored": 3.0},
            "data": {"path": "data/processed"}, "split": {"strategy": "random", "test_fraction": 0.2,
            "seed": 42, "selected_on": "validation", "k": 10},
            "seed": 7, "timings": {}, "n_users": 2, "n_items": 3, "n_train": 3,
            "recflow_version": "0.1.0", "git_commit": null, "created_at": "x"
        });
        fs::write(path.join(METADATA), v1.to_string()).unwrap();
        let back = SavedModel::load(&path).unwrap();
        assert_eq!(back.metadata.family, FamilyName::Als);
        assert_eq!(back.metadata.split.seed, 42);
        assert_eq!(back.metadata.metrics.get("test_rmse"), Some(&0.9));
        assert!(!back.metadata.metrics.contains_key("users_unscored"));
        assert_eq!(back.metadata.split.selected_on, "val");
    }
}
