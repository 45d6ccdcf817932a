//! A trained model on disk: factors, id maps, the training interactions, popular items and
//! `metadata.json`, with the factors also in Spark's ALSModel layout.
//!
//! Biases are folded into the stored factors (user `[x_u, b_u + mu, 1]`, item `[y_i, 1, b_i]`) so
//! one dot product gives the model's prediction, in recflow and in Spark's `ALSModel.transform`
//! alike. Knows nothing about how the model was trained or evaluated.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::interactions::Interactions;
use crate::data::store::{self, StoreError};
use crate::model::popularity::Popularity;

pub const METADATA: &str = "metadata.json";
pub const TRAIN: &str = "train_interactions.parquet";
pub const POPULAR: &str = "popular_items.parquet";
pub const USER_FACTORS: &str = "userFactors";
pub const ITEM_FACTORS: &str = "itemFactors";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("`{}` is not a recflow model folder (no metadata.json)", .0.display())]
    NotAModel(PathBuf),
    #[error("`{}`: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("cannot replace `{}`", path.display())]
    Replace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ArtifactError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotAModel(_) => {
                Some("train one with `recflow train-als` (it writes artifacts/als_model)".into())
            }
            Self::Store(e) => e.hint(),
            _ => None,
        }
    }
}

/// What `metadata.json` records about a model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMetadata {
    pub format_version: u32,
    pub model: String,
    pub implicit: bool,
    pub rank: usize,
    /// Columns of the stored factors (rank + 2 with biases folded in).
    pub scoring_rank: usize,
    pub biases: bool,
    pub params: serde_json::Value,
    pub metrics: BTreeMap<String, f64>,
    pub data: serde_json::Value,
    pub split: serde_json::Value,
    pub seed: u64,
    pub timings: BTreeMap<String, f64>,
    pub n_users: usize,
    pub n_items: usize,
    pub n_train: usize,
    pub recflow_version: String,
    pub git_commit: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub run_id: Option<String>,
}

impl ModelMetadata {
    pub fn format_version() -> u32 {
        FORMAT_VERSION
    }
}

/// An item ranked for cold-start users: count first, then a damped mean rating.
#[derive(Debug, Clone, PartialEq)]
pub struct PopularItem {
    pub item: u32,
    pub count: u64,
    pub score: f64,
}

/// A model as saved and loaded.
#[derive(Debug, Clone)]
pub struct SavedModel {
    /// Scoring factors: `user_factors.row(u) · item_factors.row(i)` is the prediction.
    pub user_factors: Array2<f32>,
    pub item_factors: Array2<f32>,
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    /// What each user already has (for `exclude_seen`).
    pub train: Interactions,
    pub popular: Vec<PopularItem>,
    pub metadata: ModelMetadata,
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

fn corrupt(path: &Path, message: impl Into<String>) -> ArtifactError {
    ArtifactError::Corrupt {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Spark ALSModel metadata (one JSON line in `metadata/part-00000`).
fn spark_metadata(meta: &ModelMetadata) -> serde_json::Value {
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
        "rank": meta.scoring_rank,
    })
}

fn write_factors(dir: &Path, name: &str, m: &Array2<f32>) -> Result<(), ArtifactError> {
    let sub = dir.join(name);
    fs::create_dir_all(&sub).map_err(|e| ArtifactError::Replace {
        path: sub.clone(),
        source: e,
    })?;
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
    fs::write(sub.join("_SUCCESS"), b"").map_err(|e| ArtifactError::Replace {
        path: sub,
        source: e,
    })?;
    Ok(())
}

fn read_factors(dir: &Path, name: &str, rank: usize) -> Result<Array2<f32>, ArtifactError> {
    let sub = dir.join(name);
    let mut parts: Vec<PathBuf> = fs::read_dir(&sub)
        .map_err(|_| corrupt(&sub, "missing factor folder"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    let mut rows: Vec<(i64, Vec<f32>)> = Vec::new();
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
            if v.len() != rank {
                return Err(corrupt(
                    &part,
                    format!("row {id} has {} features, expected {rank}", v.len()),
                ));
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
    Array2::from_shape_vec((n, rank), flat).map_err(|e| corrupt(&sub, e.to_string()))
}

impl SavedModel {
    /// Writes the model into `dir`, replacing any model there only once every file is written.
    pub fn save(&self, dir: &Path) -> Result<(), ArtifactError> {
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(|e| ArtifactError::Replace {
            path: parent.to_path_buf(),
            source: e,
        })?;
        let tmp = tempfile::Builder::new()
            .prefix(".model-")
            .tempdir_in(parent)
            .map_err(|e| ArtifactError::Replace {
                path: parent.to_path_buf(),
                source: e,
            })?;
        let t = tmp.path();
        write_factors(t, USER_FACTORS, &self.user_factors)?;
        write_factors(t, ITEM_FACTORS, &self.item_factors)?;
        let meta_dir = t.join("metadata");
        fs::create_dir_all(&meta_dir).map_err(|e| ArtifactError::Replace {
            path: meta_dir.clone(),
            source: e,
        })?;
        let line = format!("{}\n", spark_metadata(&self.metadata));
        fs::write(meta_dir.join("part-00000-recflow-c000.txt"), line).map_err(|e| {
            ArtifactError::Replace {
                path: meta_dir.clone(),
                source: e,
            }
        })?;
        fs::write(meta_dir.join("_SUCCESS"), b"").map_err(|e| ArtifactError::Replace {
            path: meta_dir.clone(),
            source: e,
        })?;
        let idx = |n: usize| (0..n as i32).collect::<Vec<i32>>();
        store::write_parquet(
            &t.join(store::USER_MAP),
            vec![
                Column::new("user_idx".into(), idx(self.user_ids.len())),
                Column::new("user_id".into(), &self.user_ids),
            ],
        )?;
        store::write_parquet(
            &t.join(store::ITEM_MAP),
            vec![
                Column::new("item_idx".into(), idx(self.item_ids.len())),
                Column::new("item_id".into(), &self.item_ids),
            ],
        )?;
        let tr = &self.train;
        store::write_parquet(
            &t.join(TRAIN),
            vec![
                Column::new(
                    "user_idx".into(),
                    tr.user.iter().map(|&u| u as i32).collect::<Vec<i32>>(),
                ),
                Column::new(
                    "item_idx".into(),
                    tr.item.iter().map(|&i| i as i32).collect::<Vec<i32>>(),
                ),
                Column::new("rating".into(), &tr.rating),
            ],
        )?;
        store::write_parquet(
            &t.join(POPULAR),
            vec![
                Column::new(
                    "item_idx".into(),
                    self.popular
                        .iter()
                        .map(|p| p.item as i32)
                        .collect::<Vec<i32>>(),
                ),
                Column::new(
                    "item_id".into(),
                    self.popular
                        .iter()
                        .map(|p| self.item_ids[p.item as usize].as_str())
                        .collect::<Vec<&str>>(),
                ),
                Column::new(
                    "count_ratings".into(),
                    self.popular
                        .iter()
                        .map(|p| p.count as i64)
                        .collect::<Vec<i64>>(),
                ),
                Column::new(
                    "damped_mean_rating".into(),
                    self.popular.iter().map(|p| p.score).collect::<Vec<f64>>(),
                ),
            ],
        )?;
        let meta =
            serde_json::to_vec_pretty(&self.metadata).map_err(|e| corrupt(dir, e.to_string()))?;
        fs::write(t.join(METADATA), meta).map_err(|e| ArtifactError::Replace {
            path: t.join(METADATA),
            source: e,
        })?;
        // Swap folders: the old model stays whole until the new one is complete.
        let tmp_path = tmp.keep();
        let old = parent.join(format!(".old-model-{}", uuid::Uuid::new_v4().simple()));
        let had_old = dir.exists();
        if had_old {
            fs::rename(dir, &old).map_err(|e| ArtifactError::Replace {
                path: dir.to_path_buf(),
                source: e,
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

    /// Reads a model folder written by [`SavedModel::save`].
    pub fn load(dir: &Path) -> Result<Self, ArtifactError> {
        let meta_path = dir.join(METADATA);
        let text = fs::read_to_string(&meta_path)
            .map_err(|_| ArtifactError::NotAModel(dir.to_path_buf()))?;
        let metadata: ModelMetadata =
            serde_json::from_str(&text).map_err(|e| corrupt(&meta_path, e.to_string()))?;
        let user_factors = read_factors(dir, USER_FACTORS, metadata.scoring_rank)?;
        let item_factors = read_factors(dir, ITEM_FACTORS, metadata.scoring_rank)?;
        let user_ids = store::read_id_map(&dir.join(store::USER_MAP), "user_idx", "user_id")?;
        let item_ids = store::read_id_map(&dir.join(store::ITEM_MAP), "item_idx", "item_id")?;
        if user_ids.len() != user_factors.nrows() || item_ids.len() != item_factors.nrows() {
            return Err(corrupt(dir, "id maps and factors disagree in size"));
        }
        let train_path = dir.join(TRAIN);
        let file = fs::File::open(&train_path).map_err(|e| corrupt(&train_path, e.to_string()))?;
        let df = ParquetReader::new(file)
            .finish()
            .map_err(|e| corrupt(&train_path, e.to_string()))?;
        let col_u32 = |name: &str| -> Result<Vec<u32>, ArtifactError> {
            let c = df
                .column(name)
                .and_then(|c| c.cast(&DataType::UInt32))
                .map_err(|e| corrupt(&train_path, e.to_string()))?;
            Ok(c.u32()
                .map_err(|e| corrupt(&train_path, e.to_string()))?
                .iter()
                .map(|v| v.unwrap_or(0))
                .collect())
        };
        let user = col_u32("user_idx")?;
        let item = col_u32("item_idx")?;
        let rating = df
            .column("rating")
            .and_then(|c| c.cast(&DataType::Float32))
            .map_err(|e| corrupt(&train_path, e.to_string()))?;
        let rating: Vec<f32> = rating
            .f32()
            .map_err(|e| corrupt(&train_path, e.to_string()))?
            .iter()
            .map(|v| v.unwrap_or(0.0))
            .collect();
        let train = Interactions::new(user, item, rating, None, user_ids.len(), item_ids.len())
            .map_err(|e| corrupt(&train_path, e.to_string()))?;
        let popular = cold_start_ranking(&train);
        Ok(Self {
            user_factors,
            item_factors,
            user_ids,
            item_ids,
            train,
            popular,
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(rank: usize) -> ModelMetadata {
        ModelMetadata {
            format_version: FORMAT_VERSION,
            model: "als".into(),
            implicit: false,
            rank,
            scoring_rank: rank,
            biases: false,
            params: serde_json::json!({"rank": rank}),
            metrics: BTreeMap::from([("rmse".to_string(), 0.9)]),
            data: serde_json::json!({}),
            split: serde_json::json!({}),
            seed: 1,
            timings: BTreeMap::new(),
            n_users: 2,
            n_items: 3,
            n_train: 3,
            recflow_version: "0".into(),
            git_commit: None,
            created_at: "now".into(),
            run_id: None,
        }
    }

    #[test]
    fn save_then_load_round_trips_factors_maps_and_train() {
        let dir = tempfile::tempdir().unwrap();
        let train = Interactions::new(
            vec![0, 0, 1],
            vec![0, 2, 2],
            vec![5.0, 3.0, 4.0],
            None,
            2,
            3,
        )
        .unwrap();
        let m = SavedModel {
            user_factors: Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
            item_factors: Array2::from_shape_vec((3, 2), vec![0.5, 0.25, -1.0, 0.0, 2.0, 1.5])
                .unwrap(),
            user_ids: vec!["a".into(), "b".into()],
            item_ids: vec!["x".into(), "y".into(), "z".into()],
            popular: cold_start_ranking(&train),
            train,
            metadata: meta(2),
        };
        let path = dir.path().join("model");
        m.save(&path).unwrap();
        // A second save replaces the first whole.
        m.save(&path).unwrap();
        let back = SavedModel::load(&path).unwrap();
        assert_eq!(back.user_factors, m.user_factors);
        assert_eq!(back.item_factors, m.item_factors);
        assert_eq!(back.item_ids, m.item_ids);
        assert_eq!(back.train, m.train);
        assert_eq!(back.metadata, m.metadata);
        assert!(path.join("metadata/part-00000-recflow-c000.txt").exists());
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary folders left");
    }

    #[test]
    fn cold_start_puts_count_first_and_damps_single_ratings() {
        // Item 0: one 5-star rating. Item 1: two ratings of 4. Item 2: two ratings of 5.
        let train = Interactions::new(
            vec![0, 1, 2, 1, 2],
            vec![0, 1, 1, 2, 2],
            vec![5.0, 4.0, 4.0, 5.0, 5.0],
            None,
            3,
            3,
        )
        .unwrap();
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
}
