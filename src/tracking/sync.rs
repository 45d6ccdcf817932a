//! Copying runs from one store to another (`recflow sync`): typically from a local file store
//! to an MLflow server after logging offline.
//!
//! Each run is copied whole: params, every metric's full history, tags, dataset inputs,
//! artifacts, status and times, with `mlflow.parentRunId` pointing at the parent's copy. The
//! copy is marked with `recflow.synced_from = <source run id>` last, once complete, and runs
//! already marked on the target are skipped, so a second sync copies nothing new and a sync cut
//! short is finished by the next one. Runs still `RUNNING` are left for a later sync.
//! This module knows nothing about how either store works.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{
    now_ms, walk_files, without_identity, Batch, ModelToLog, NewRun, Param, Run, RunQuery,
    RunStatus, Tag, Tracker, TrackingError, TAG_BEST_RUN_ID, TAG_PARENT_RUN_ID,
    TAG_PARTIAL_REMOTE_RUN, TAG_RUN_NAME, TAG_SYNCED_FROM,
};

/// Runs per search; MLflow's maximum page.
const MAX_RUNS: usize = 50_000;
/// Marks a partial run on the server that a synced copy replaces.
const TAG_SUPERSEDED_BY: &str = "recflow.superseded_by";

/// What [`sync`] did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SyncReport {
    pub experiments: usize,
    /// (source run id, target run id) of each run copied.
    pub copied: Vec<(String, String)>,
    pub already_synced: usize,
    /// Runs still running at the source, left for a later sync.
    pub skipped_running: usize,
    pub metric_values: usize,
    pub artifact_files: usize,
    /// Logged models copied with their source runs.
    pub models: usize,
    /// Source runs that could not be read: (run, what is wrong). Nothing of them was copied.
    pub unreadable: Vec<(String, String)>,
    /// Runs whose parent is unreadable, left for a sync after the parent is mended (a copy
    /// would point at a parent the target never gets).
    pub held_back: Vec<String>,
}

/// Copies the runs of `experiment` (every experiment when `None`) from `from` to `to`.
pub fn sync(
    from: &dyn Tracker,
    to: &dyn Tracker,
    experiment: Option<&str>,
) -> Result<SyncReport, TrackingError> {
    let experiments = match experiment {
        Some(name) => vec![from
            .get_experiment_by_name(name)?
            .filter(|e| e.lifecycle_stage == "active")
            .ok_or_else(|| TrackingError::ExperimentNotFound(name.to_string()))?],
        None => from.list_experiments()?,
    };
    let mut report = SyncReport::default();
    for exp in experiments {
        let mut query = RunQuery::new(vec![exp.experiment_id.clone()]);
        query.max_results = MAX_RUNS;
        let runs = from.search_runs(&query)?;
        if runs.is_empty() {
            continue;
        }
        report.experiments += 1;
        let bad = from.unreadable_runs(&exp.experiment_id)?;
        // Run folders are named by run id: a child naming one of them has no readable parent.
        let mut missing: HashSet<String> = bad.iter().map(|(name, _)| name.clone()).collect();
        report.unreadable.extend(bad);
        let first = report.copied.len();
        // Tags naming another run, read now: the runs are not fetched again to remap them.
        let best: HashMap<String, String> = runs
            .iter()
            .filter_map(|r| Some((r.info.run_id.clone(), r.tags.get(TAG_BEST_RUN_ID)?.clone())))
            .collect();
        let tags: Vec<Tag> = exp.tags.iter().map(|(k, v)| Tag::new(k, v)).collect();
        let target_exp = to.get_or_create_experiment(&exp.name, None, &tags)?;
        let mut target_query = RunQuery::new(vec![target_exp.clone()]);
        target_query.max_results = MAX_RUNS;
        // Source run id -> its copy, for runs synced before.
        let mut copies: HashMap<String, String> = to
            .search_runs(&target_query)?
            .into_iter()
            .filter_map(|r| Some((r.tags.get(TAG_SYNCED_FROM)?.clone(), r.info.run_id)))
            .collect();
        // Source model id -> the copies of runs that record it without having made it.
        let mut linked: HashMap<String, Vec<String>> = HashMap::new();
        for run in parents_first(runs) {
            let id = run.info.run_id.clone();
            if copies.contains_key(&id) {
                report.already_synced += 1;
                continue;
            }
            if run.info.status == RunStatus::Running {
                tracing::warn!("run `{id}` is still running; sync it once it has ended");
                report.skipped_running += 1;
                continue;
            }
            if run.parent_run_id().is_some_and(|p| missing.contains(p)) {
                missing.insert(id.clone());
                report.held_back.push(id);
                continue;
            }
            let target_id = copy_run(
                from,
                to,
                &run,
                &target_exp,
                &copies,
                &mut linked,
                &mut report,
            )?;
            copies.insert(id.clone(), target_id.clone());
            report.copied.push((id, target_id));
        }
        remap_run_ids(to, &report.copied[first..], &best, &copies)?;
    }
    Ok(report)
}

/// Tags that name another run of the source (`best_run_id`) are pointed at its copy, once
/// every run of the experiment is copied (a parent is copied before the child it names).
fn remap_run_ids(
    to: &dyn Tracker,
    copied: &[(String, String)],
    best: &HashMap<String, String>,
    copies: &HashMap<String, String>,
) -> Result<(), TrackingError> {
    for (source, target) in copied {
        if let Some(copy) = best.get(source).and_then(|b| copies.get(b)) {
            to.set_tags(target, &[Tag::new(TAG_BEST_RUN_ID, copy)])?;
        }
    }
    Ok(())
}

fn copy_run(
    from: &dyn Tracker,
    to: &dyn Tracker,
    run: &Run,
    target_exp: &str,
    copies: &HashMap<String, String>,
    linked: &mut HashMap<String, Vec<String>>,
    report: &mut SyncReport,
) -> Result<String, TrackingError> {
    let source_id = &run.info.run_id;
    let tags: Vec<Tag> = run
        .tags
        .iter()
        .filter(|(k, _)| k.as_str() != TAG_RUN_NAME && k.as_str() != TAG_SYNCED_FROM)
        .map(|(k, v)| match (k.as_str(), copies.get(v)) {
            // A parent copied earlier; a parent not in the source keeps its id (it may be a
            // run the target already has, e.g. for a run saved locally after an outage).
            (TAG_PARENT_RUN_ID, Some(copy)) => Tag::new(k, copy),
            _ => Tag::new(k, v),
        })
        .collect();
    let new_run = NewRun {
        experiment_id: target_exp.to_string(),
        run_name: Some(run.info.run_name.clone()).filter(|n| !n.is_empty()),
        user_id: run.info.user_id.clone(),
        start_time: run.info.start_time,
        tags,
    };
    let target = to.create_run(&new_run)?.run_id;

    let mut metrics = Vec::new();
    for key in run.metrics.keys() {
        metrics.extend(from.get_metric_history(source_id, key)?);
    }
    report.metric_values += metrics.len();
    let params = run.params.iter().map(|(k, v)| Param::new(k, v)).collect();
    to.log_batch(
        &target,
        &Batch {
            metrics,
            params,
            tags: Vec::new(),
        },
    )?;
    for input in &run.inputs {
        to.log_input(&target, input)?;
    }
    if !from.list_artifacts(source_id, None)?.is_empty() {
        let tmp = tempfile::tempdir().map_err(|e| TrackingError::io(std::env::temp_dir(), e))?;
        from.download_artifacts(source_id, None, tmp.path())?;
        report.artifact_files += walk_files(tmp.path())?.len();
        to.log_artifacts(&target, tmp.path(), None)?;
    }
    for model in from.run_models(source_id)? {
        if model.source_run_id.as_deref() != Some(source_id.as_str()) {
            // Made by another run (a parent records its winner's model): linked when that run's
            // copy logs it, which comes later (parents are copied first).
            linked
                .entry(model.model_id)
                .or_default()
                .push(target.clone());
            continue;
        }
        copy_model(from, to, &model, target_exp, &target, linked)?;
        report.models += 1;
    }
    to.end_run(
        &target,
        run.info.status,
        run.info.end_time.unwrap_or(run.info.start_time),
    )?;
    to.set_tags(&target, &[Tag::new(TAG_SYNCED_FROM, source_id)])?;
    supersede_partial(to, run, &target);
    Ok(target)
}

/// Copies one logged model made by the run copied as `target`.
fn copy_model(
    from: &dyn Tracker,
    to: &dyn Tracker,
    model: &super::LoggedModel,
    target_exp: &str,
    target: &str,
    linked: &HashMap<String, Vec<String>>,
) -> Result<(), TrackingError> {
    let tmp = tempfile::tempdir().map_err(|e| TrackingError::io(std::env::temp_dir(), e))?;
    from.download_model(model, tmp.path())?;
    let mlmodel_path = tmp.path().join("MLmodel");
    let fields = match std::fs::read_to_string(&mlmodel_path) {
        Ok(text) => {
            super::filestore::yaml::parse(&text).map_err(|reason| TrackingError::Corrupt {
                path: mlmodel_path.clone(),
                reason,
            })?
        }
        Err(e) => return Err(TrackingError::io(&mlmodel_path, e)),
    };
    std::fs::remove_file(&mlmodel_path).map_err(|e| TrackingError::io(&mlmodel_path, e))?;
    to.log_model(&ModelToLog {
        experiment_id: target_exp.to_string(),
        name: model.name.clone(),
        source_run_id: target.to_string(),
        dir: tmp.path().to_path_buf(),
        mlmodel: without_identity(&fields),
        params: model.params.iter().map(|(k, v)| Param::new(k, v)).collect(),
        metrics: model.metrics.clone(),
        tags: model.tags.iter().map(|(k, v)| Tag::new(k, v)).collect(),
        model_type: None,
        output_of: linked.get(&model.model_id).cloned().unwrap_or_default(),
        model_id: None,
    })?;
    Ok(())
}

/// A run saved locally after an outage may have a partial twin on the server: end it as
/// KILLED and point it at the complete copy. Best effort: the copy is what matters.
fn supersede_partial(to: &dyn Tracker, run: &Run, copy: &str) {
    let Some(partial) = run.tags.get(TAG_PARTIAL_REMOTE_RUN) else {
        return;
    };
    let Ok(existing) = to.get_run(partial) else {
        return;
    };
    let result = to
        .set_tags(partial, &[Tag::new(TAG_SUPERSEDED_BY, copy)])
        .and_then(|()| match existing.info.status {
            RunStatus::Running => to.end_run(partial, RunStatus::Killed, now_ms()),
            _ => Ok(()),
        });
    if let Err(e) = result {
        tracing::warn!("could not mark the partial run `{partial}` as superseded: {e}");
    }
}

/// Orders runs so that every parent in the set comes before its children (otherwise oldest
/// first), so a child's copy can name its parent's copy.
fn parents_first(runs: Vec<Run>) -> Vec<Run> {
    let ids: HashSet<String> = runs.iter().map(|r| r.info.run_id.clone()).collect();
    let mut by_parent: BTreeMap<Option<String>, Vec<Run>> = BTreeMap::new();
    for r in runs {
        let parent = r
            .parent_run_id()
            .filter(|p| ids.contains(*p) && *p != r.info.run_id)
            .map(str::to_string);
        by_parent.entry(parent).or_default().push(r);
    }
    for children in by_parent.values_mut() {
        children.sort_by(|a, b| {
            a.info
                .start_time
                .cmp(&b.info.start_time)
                .then_with(|| a.info.run_id.cmp(&b.info.run_id))
        });
    }
    let mut out = Vec::new();
    let mut stack: Vec<Run> = by_parent
        .remove(&None)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .collect();
    while let Some(r) = stack.pop() {
        if let Some(children) = by_parent.remove(&Some(r.info.run_id.clone())) {
            stack.extend(children.into_iter().rev());
        }
        out.push(r);
    }
    // Cycles of parents (corrupt tags) are copied last rather than dropped.
    out.extend(by_parent.into_values().flatten());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::{DatasetInput, FileStore, Metric, Param};

    fn two_stores() -> (tempfile::TempDir, FileStore, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let a = FileStore::open(dir.path().join("a")).unwrap();
        let b = FileStore::open(dir.path().join("b")).unwrap();
        (dir, a, b)
    }

    #[test]
    fn sync_copies_everything_once_and_remaps_parents() {
        let (dir, src, dst) = two_stores();
        let exp = src
            .get_or_create_experiment("recsys", Some("grid search"), &[])
            .unwrap();
        let mut parent_run = NewRun::new(&exp, "grid");
        parent_run.start_time = 1000;
        let parent = src.create_run(&parent_run).unwrap();
        let mut child_run = NewRun::new(&exp, "rank=10")
            .with_parent(&parent.run_id)
            .with_user("ann");
        child_run.start_time = 1001;
        let child = src.create_run(&child_run).unwrap();
        src.log_batch(
            &child.run_id,
            &Batch {
                params: vec![Param::new("rank", "10")],
                metrics: (0..5)
                    .map(|i| Metric {
                        key: "train/loss".into(),
                        value: 1.0 / (i + 1) as f64,
                        timestamp: 10 + i,
                        step: i,
                    })
                    .collect(),
                tags: vec![Tag::new("note", "x")],
            },
        )
        .unwrap();
        src.log_input(
            &child.run_id,
            &DatasetInput::local("ml100k", "d1", "/x").with_context("training"),
        )
        .unwrap();
        let art = dir.path().join("art");
        std::fs::create_dir_all(art.join("model")).unwrap();
        std::fs::write(art.join("model/f.bin"), "123").unwrap();
        src.log_artifacts(&child.run_id, &art, None).unwrap();
        src.end_run(&child.run_id, RunStatus::Finished, 2000)
            .unwrap();
        src.end_run(&parent.run_id, RunStatus::Failed, 2001)
            .unwrap();
        let running = src.create_run(&NewRun::new(&exp, "still going")).unwrap();

        let report = sync(&src, &dst, None).unwrap();
        assert_eq!(report.copied.len(), 2);
        assert_eq!(report.skipped_running, 1);
        assert_eq!(report.metric_values, 5);
        assert_eq!(report.artifact_files, 1);

        let dst_exp = dst.get_experiment_by_name("recsys").unwrap().unwrap();
        assert_eq!(
            dst_exp
                .tags
                .get(crate::tracking::TAG_NOTE)
                .map(String::as_str),
            Some("grid search")
        );
        let runs = dst
            .search_runs(&RunQuery::new(vec![dst_exp.experiment_id.clone()]))
            .unwrap();
        assert_eq!(runs.len(), 2);
        let copy_of = |src_id: &str| {
            runs.iter()
                .find(|r| r.tags.get(TAG_SYNCED_FROM).map(String::as_str) == Some(src_id))
                .unwrap()
        };
        let p = copy_of(&parent.run_id);
        let c = copy_of(&child.run_id);
        assert_eq!(c.parent_run_id(), Some(p.info.run_id.as_str()));
        assert_eq!(
            (c.info.run_name.as_str(), c.info.user_id.as_str()),
            ("rank=10", "ann")
        );
        assert_eq!(
            (c.info.status, c.info.start_time, c.info.end_time),
            (RunStatus::Finished, 1001, Some(2000))
        );
        assert_eq!(p.info.status, RunStatus::Failed);
        assert_eq!(c.params.get("rank").map(String::as_str), Some("10"));
        assert_eq!(c.tags.get("note").map(String::as_str), Some("x"));
        assert_eq!(c.inputs.len(), 1);
        let hist = dst
            .get_metric_history(&c.info.run_id, "train/loss")
            .unwrap();
        assert_eq!(
            hist,
            src.get_metric_history(&child.run_id, "train/loss").unwrap()
        );
        let out = dir.path().join("out");
        dst.download_artifacts(&c.info.run_id, None, &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("model/f.bin")).unwrap(),
            "123"
        );

        // A second sync copies nothing; once the running run ends it is copied.
        let again = sync(&src, &dst, Some("recsys")).unwrap();
        assert!(again.copied.is_empty());
        assert_eq!(again.already_synced, 2);
        src.end_run(&running.run_id, RunStatus::Killed, 3000)
            .unwrap();
        let third = sync(&src, &dst, Some("recsys")).unwrap();
        assert_eq!(third.copied.len(), 1);
        assert!(sync(&src, &dst, Some("nope")).is_err());
    }

    #[test]
    fn parents_come_before_children() {
        let (_d, s, _) = two_stores();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        // The child starts before its parent to show order comes from the links.
        let mut p = NewRun::new(&exp, "p");
        p.start_time = 50;
        let parent = s.create_run(&p).unwrap();
        let mut c = NewRun::new(&exp, "c").with_parent(&parent.run_id);
        c.start_time = 10;
        s.create_run(&c).unwrap();
        let mut q = RunQuery::new(vec![exp]);
        q.max_results = 10;
        let ordered = parents_first(s.search_runs(&q).unwrap());
        let names: Vec<&str> = ordered.iter().map(|r| r.info.run_name.as_str()).collect();
        assert_eq!(names, ["p", "c"]);
    }

    #[test]
    fn best_run_id_points_at_the_copy_and_an_unreadable_parent_holds_its_children_back() {
        let (dir, src, dst) = two_stores();
        let exp = src.get_or_create_experiment("e", None, &[]).unwrap();
        let parent = src.create_run(&NewRun::new(&exp, "p")).unwrap();
        let child = src
            .create_run(&NewRun::new(&exp, "c").with_parent(&parent.run_id))
            .unwrap();
        src.set_tags(&parent.run_id, &[Tag::new(TAG_BEST_RUN_ID, &child.run_id)])
            .unwrap();
        for id in [&child.run_id, &parent.run_id] {
            src.end_run(id, RunStatus::Finished, 5).unwrap();
        }
        // A second tree whose parent's meta.yaml is broken.
        let broken = src.create_run(&NewRun::new(&exp, "broken")).unwrap();
        let orphan = src
            .create_run(&NewRun::new(&exp, "orphan").with_parent(&broken.run_id))
            .unwrap();
        src.end_run(&orphan.run_id, RunStatus::Finished, 5).unwrap();
        let meta = dir
            .path()
            .join("a")
            .join(&exp)
            .join(&broken.run_id)
            .join("meta.yaml");
        std::fs::write(&meta, "run_id: [unclosed\n").unwrap();

        let report = sync(&src, &dst, None).unwrap();
        assert_eq!(report.copied.len(), 2, "{report:?}");
        assert_eq!(report.unreadable.len(), 1);
        assert_eq!(report.unreadable[0].0, broken.run_id);
        assert_eq!(report.held_back, vec![orphan.run_id.clone()]);
        let copy = |id: &str| {
            report
                .copied
                .iter()
                .find(|(s, _)| s == id)
                .map(|(_, t)| t.clone())
                .unwrap()
        };
        let p = dst.get_run(&copy(&parent.run_id)).unwrap();
        assert_eq!(
            p.tags.get(TAG_BEST_RUN_ID),
            Some(&copy(&child.run_id)),
            "best_run_id names the child's copy"
        );
    }
}
