//! The saved form of an entry's final model: the model, id maps, the training ratings as the
//! per-user history, the cold-start list and typed metadata.

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::cache::Prepared;
use crate::data::store;
use crate::eval::keys::Split;
use crate::model::artifact::{
    cold_start_ranking, DataInfo, ModelMetadata, SavedModel, SplitInfo, FORMAT_VERSION,
};
use crate::model::family::FamilyName;
use crate::pipeline::search::Entry;
use crate::pipeline::train::{EntryOutcome, Outcome, PipelineSettings};

/// What a saved model records besides the fit itself.
pub struct ModelContext<'a> {
    pub settings: &'a PipelineSettings,
    pub entry: &'a Entry,
    /// The processed copy of `recflow run`, when the data came from the cache.
    pub prepared: Option<&'a Prepared>,
    /// The processed-data folder.
    pub data_dir: &'a Path,
    pub git_commit: Option<String>,
    pub run_id: Option<String>,
    pub test_file: Option<String>,
}

/// The data's description: the ETL summary's input, hash and settings when present.
pub fn data_info(
    data_dir: &Path,
    prepared: Option<&Prepared>,
    users: usize,
    items: usize,
    ratings: usize,
) -> DataInfo {
    let summary: Option<serde_json::Value> = std::fs::read_to_string(data_dir.join(store::SUMMARY))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let path = std::fs::canonicalize(data_dir)
        .unwrap_or_else(|_| data_dir.to_path_buf())
        .display()
        .to_string();
    DataInfo {
        path,
        fingerprint: prepared.map(|p| p.fingerprint.clone()),
        input: summary
            .as_ref()
            .and_then(|s| s["input"]["path"].as_str().map(str::to_string)),
        input_sha256: summary
            .as_ref()
            .and_then(|s| s["input"]["sha256"].as_str().map(str::to_string)),
        users,
        items,
        ratings,
    }
}

/// Builds the saved model of `win` (one entry's outcome).
pub fn saved_model(
    ctx: &ModelContext<'_>,
    outcome: &Outcome,
    win: &EntryOutcome,
    user_ids: &[String],
    item_ids: &[String],
    item_meta: Option<&[crate::data::meta::ItemMeta]>,
) -> SavedModel {
    let s = ctx.settings;
    let history = crate::data::interactions::Interactions {
        timestamp: None,
        ..outcome.train.clone()
    };
    let mut metrics: BTreeMap<String, f64> = win.test.metrics(Split::Test).into_iter().collect();
    metrics.extend(win.best_trial().metrics.iter().cloned());
    let model = win.final_model.as_ref();
    let latent = match model.family() {
        FamilyName::Als => model.ranking_factors().map(|(u, _)| {
            u.ncols()
                .saturating_sub(if model.predicts_ratings() { 2 } else { 0 })
        }),
        _ => None,
    };
    let metadata = ModelMetadata {
        format_version: FORMAT_VERSION,
        family: model.family(),
        params: win.final_used.clone(),
        entry: Some(ctx.entry.name.clone()),
        predicts_ratings: model.predicts_ratings(),
        latent,
        data: data_info(
            ctx.data_dir,
            ctx.prepared,
            user_ids.len(),
            item_ids.len(),
            outcome.sizes.sampled,
        ),
        split: SplitInfo {
            strategy: s.split.strategy,
            test_fraction: s.split.test_fraction,
            validation_fraction: s.validation_fraction,
            seed: s.split.seed,
            sample_fraction: s.sample_fraction,
            sample_seed: s.sample_seed,
            test_file: ctx.test_file.clone(),
            selected_on: outcome.selected_on.to_string(),
            k: s.eval.k,
            relevance_threshold: s.eval.threshold,
            sizes: outcome.sizes,
        },
        metrics,
        timings: BTreeMap::from([
            ("fit_seconds".to_string(), win.fit_seconds),
            ("eval_seconds".to_string(), win.eval_seconds),
        ]),
        n_users: user_ids.len(),
        n_items: item_ids.len(),
        n_history: history.len(),
        recflow_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: ctx.git_commit.clone(),
        created_at: chrono::Utc::now().to_rfc3339(),
        run_id: ctx.run_id.clone(),
    };
    SavedModel {
        popular: cold_start_ranking(&history),
        history,
        metadata,
        user_ids: user_ids.to_vec(),
        item_ids: item_ids.to_vec(),
        model: win.final_model.clone(),
        item_meta: item_meta.map(<[_]>::to_vec),
    }
}

/// Writes an evaluation's per-user figures as Parquet (`eval/per_user_<split>.parquet`): one row
/// per user with original ids; ranking columns (`relevant`, `precision_at_K`, `recall_at_K`,
/// `ndcg_at_K`, `map_at_K`) and rating columns (`pairs`, `sq_err`, `abs_err`) are null where
/// the user was not evaluated that way.
pub fn write_per_user(
    path: &std::path::Path,
    report: &crate::eval::EvalReport,
    user_ids: &[String],
) -> Result<(), crate::data::store::StoreError> {
    use crate::eval::metrics::UserRanking;
    use polars::prelude::Column;
    use std::collections::BTreeMap;
    let (rank, rate) = (&report.per_user.ranking, &report.per_user.rating);
    let mut users: BTreeMap<u32, (Option<usize>, Option<usize>)> = BTreeMap::new();
    for (i, u) in rank.iter().enumerate() {
        users.entry(u.user).or_default().0 = Some(i);
    }
    for (i, e) in rate.iter().enumerate() {
        users.entry(e.user).or_default().1 = Some(i);
    }
    let ids: Vec<String> = users
        .keys()
        .map(|&u| {
            user_ids
                .get(u as usize)
                .cloned()
                .unwrap_or_else(|| u.to_string())
        })
        .collect();
    // One cut-off's four columns; every cut-off's list holds the same users in the same order.
    let ranking_columns = |cols: &mut Vec<Column>, k: usize, list: &[UserRanking]| {
        let col = |f: fn(&UserRanking) -> f64| -> Vec<Option<f64>> {
            users
                .values()
                .map(|(i, _)| i.and_then(|i| list.get(i)).map(f))
                .collect()
        };
        cols.push(Column::new(
            format!("precision_at_{k}").into(),
            col(|u| u.precision),
        ));
        cols.push(Column::new(
            format!("recall_at_{k}").into(),
            col(|u| u.recall),
        ));
        cols.push(Column::new(format!("ndcg_at_{k}").into(), col(|u| u.ndcg)));
        cols.push(Column::new(
            format!("map_at_{k}").into(),
            col(|u| u.average_precision),
        ));
    };
    let e = |f: fn(&crate::eval::metrics::UserErrors) -> f64| -> Vec<Option<f64>> {
        users
            .values()
            .map(|(_, i)| i.map(|i| f(&rate[i])))
            .collect()
    };
    let k = report.k;
    let mut cols = vec![Column::new("user_id".into(), ids)];
    if report.ranking.is_some() {
        let relevant: Vec<Option<u32>> = users
            .values()
            .map(|(i, _)| i.map(|i| rank[i].relevant))
            .collect();
        cols.push(Column::new("relevant".into(), relevant));
        ranking_columns(&mut cols, k, rank);
        for (m, list) in &report.more {
            ranking_columns(&mut cols, m.k, list);
        }
    }
    if report.rating.is_some() {
        let pairs: Vec<Option<u32>> = users
            .values()
            .map(|(_, i)| i.map(|i| rate[i].pairs))
            .collect();
        cols.push(Column::new("pairs".into(), pairs));
        cols.push(Column::new("sq_err".into(), e(|u| u.sq_err)));
        cols.push(Column::new("abs_err".into(), e(|u| u.abs_err)));
    }
    crate::data::store::write_parquet(path, cols)
}
