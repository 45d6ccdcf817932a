//! `recflow train-als` and `recflow train`: resolve settings (checked before any work), run the
//! pipeline with progress, save the selected model, print the search and the test report. With
//! `--tracking-uri`/`--experiment`, `train` logs the run tree of `recflow run` and `train-als`
//! one MLflow run with its model.

use crate::cli::{TrainAlsArgs, TrainArgs};
use crate::commands::common::{load_data, open_store, print_results, results_json};
use crate::commands::{Context, Interrupted};
use crate::eval::keys::Split;
use crate::model::artifact::SavedModel;
use crate::model::family::format_float;
use crate::pipeline::mlflow_model;
use crate::pipeline::progress::ProgressObserver;
use crate::pipeline::report::Leaderboard;
use crate::pipeline::report::{warnings, with_comparisons};
use crate::pipeline::saved::{saved_model, ModelContext};
use crate::pipeline::train::EntryOutcome;
use crate::pipeline::train::{self, TrainError};
use crate::settings::TrainTracking;
use crate::settings::{resolve_train, resolve_train_als, TrainCommand};
use crate::tracking::{self, Batch, Metric, NewRun, Param, RunStatus, Tag, Tracker};

fn run_pipeline(ctx: &Context, s: &TrainCommand) -> anyhow::Result<()> {
    if ctx.show_settings(s)? {
        return Ok(());
    }
    if let Some(tree) = &s.tree {
        return crate::commands::run::execute(ctx, tree);
    }
    // An unreachable tracking server stops the command before any training.
    let tracker = match &s.tracking {
        Some(t) => Some(open_store(&t.target)?),
        None => None,
    };
    ctx.catch_signals()?;
    let (mut ds, data_dir) = load_data(ctx, &s.data)?;
    let fixed_test = match &s.test_file {
        Some(p) => Some(crate::data::testfile::attach_test_file(&mut ds, p)?),
        None => None,
    };
    let stop = ctx.stop.clone();
    let mut progress = ProgressObserver::new(&ctx.progress, move || stop.requested());
    let outcome = match train::run(
        &s.pipeline,
        &ds.interactions,
        fixed_test.as_ref(),
        &mut progress,
    ) {
        Err(TrainError::Cancelled) => {
            return Err(Interrupted(ctx.stop.signal().unwrap_or(crate::commands::SIGINT)).into())
        }
        r => r?,
    };
    let board = with_comparisons(&s.pipeline, &outcome);
    let warns = warnings(&s.pipeline, &outcome);
    let Some(w) = outcome.winner else {
        anyhow::bail!(
            "no entry reports the selection metric `{}`",
            s.pipeline.select.name
        );
    };
    let win = &outcome.entries[w];
    let mctx = ModelContext {
        settings: &s.pipeline,
        entry: &s.pipeline.entries[win.entry],
        prepared: None,
        data_dir: &data_dir,
        git_commit: crate::pipeline::experiment::git_info().map(|g| g.commit),
        run_id: None,
        test_file: s.test_file.as_ref().map(|p| p.display().to_string()),
    };
    let saved = saved_model(
        &mctx,
        &outcome,
        win,
        &ds.user_ids,
        &ds.item_ids,
        ds.item_meta.as_deref(),
    );
    saved.save(&s.model_dir)?;
    let logged = match (&tracker, &s.tracking) {
        (Some(t), Some(target)) => Some(log_training(
            t.as_ref(),
            target,
            s,
            win,
            &board,
            &saved,
            &data_dir,
        )?),
        _ => None,
    };
    if ctx.out.is_json() {
        let mut v = results_json(&outcome, &board, &warns, &s.model_dir);
        if let Some((run_id, model_id)) = &logged {
            v["run_id"] = serde_json::json!(run_id);
            v["model_id"] = serde_json::json!(model_id);
            v["model_uri"] = serde_json::json!(format!("models:/{model_id}"));
        }
        return Ok(ctx.out.json(&v)?);
    }
    print_results(ctx, &outcome, &board, &warns, &s.model_dir)?;
    if let (Some((run_id, model_id)), Some(t)) = (&logged, &s.tracking) {
        ctx.out.line(format!(
            "logged run {run_id} (model models:/{model_id}) to experiment `{}` at {}",
            t.experiment,
            tracking::mask_uri(&t.target.uri)
        ))?;
    }
    Ok(())
}

/// Logs the training as one MLflow run: the selected configuration as params, its test figures
/// (with intervals), timings and learning curve as metrics, the leaderboard, and the model as a
/// LoggedModel of the run. The run ends FAILED when a step fails. Returns (run id, model id).
fn log_training(
    tracker: &dyn Tracker,
    t: &TrainTracking,
    s: &TrainCommand,
    win: &EntryOutcome,
    board: &Leaderboard,
    saved: &SavedModel,
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, String)> {
    let source = format!("recflow {}", t.command);
    let experiment_id = tracker.get_or_create_experiment(&t.experiment, None, &[])?;
    let name = format!(
        "{}-{}",
        t.command,
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    );
    let mut run = NewRun::new(experiment_id.clone(), name)
        .with_tag(tracking::TAG_SOURCE_NAME, source)
        .with_tag(tracking::TAG_SOURCE_TYPE, "LOCAL")
        .with_tag(tracking::TAG_RECFLOW_VERSION, env!("CARGO_PKG_VERSION"))
        .with_tag(tracking::TAG_ENGINE, "local");
    if let Some(u) = &t.user {
        run = run
            .with_user(u.clone())
            .with_tag(tracking::TAG_USER, u.clone());
    }
    if let Some(g) = crate::pipeline::experiment::git_info() {
        run = run
            .with_tag(tracking::TAG_GIT_COMMIT, g.commit)
            .with_tag(tracking::TAG_GIT_DIRTY, g.dirty.to_string());
    }
    let run_tags = run.tags.clone();
    let run_id = tracker.create_run(&run)?.run_id;
    let result = (|| -> anyhow::Result<String> {
        let mut params: Vec<Param> = win
            .final_used
            .iter()
            .map(|(k, v)| Param::new(k, v.to_string()))
            .collect();
        params.push(Param::new("family", saved.metadata.family.to_string()));
        params.push(Param::new("data", data_dir.display().to_string()));
        let sp = &s.pipeline;
        params.push(Param::new("split.strategy", sp.split.strategy.to_string()));
        params.push(Param::new("split.seed", sp.split.seed.to_string()));
        params.push(Param::new(
            "split.test_fraction",
            format_float(sp.split.test_fraction),
        ));
        params.push(Param::new(
            "split.validation_fraction",
            format_float(sp.validation_fraction),
        ));
        let mut test: Vec<Metric> = win
            .test
            .metrics(Split::Test)
            .into_iter()
            .map(|(k, v)| Metric::new(k, v, 0))
            .collect();
        for (k, ci) in &win.test_ci {
            let key = format!("{}_{k}", Split::Test);
            test.push(Metric::new(format!("{key}_ci_low"), ci.low, 0));
            test.push(Metric::new(format!("{key}_ci_high"), ci.high, 0));
        }
        let mut metrics = test.clone();
        metrics.push(Metric::new("fit_seconds", win.fit_seconds, 0));
        metrics.push(Metric::new("eval_seconds", win.eval_seconds, 0));
        for r in &win.best_trial().history {
            let step = r.iteration as i64;
            if let Some(l) = r.train_loss {
                metrics.push(Metric::new("train_loss", l, step));
            }
            metrics.push(Metric::new("iteration_seconds", r.seconds, step));
            for (k, v) in &r.metrics {
                metrics.push(Metric::new(k.clone(), *v, step));
            }
        }
        tracker.log_batch(
            &run_id,
            &Batch {
                params,
                metrics,
                tags: vec![Tag::new(
                    tracking::TAG_SELECTED_CONFIG,
                    crate::pipeline::search::label(&win.best_trial().point),
                )],
            },
        )?;
        let scratch = tempfile::tempdir()?;
        let board_file = scratch.path().join("leaderboard.csv");
        let (header, rows) = board.cells(|v| format!("{v}"));
        let mut table = crate::output::Table::new(header);
        for r in rows {
            table.push(r);
        }
        std::fs::write(&board_file, table.to_csv())?;
        tracker.log_artifact(&run_id, &board_file, None)?;
        let root = scratch.path().join("model");
        let written = mlflow_model::write(&root, &s.model_dir, saved)?;
        let model = mlflow_model::to_log(
            &experiment_id,
            &run_id,
            written,
            saved,
            test,
            &run_tags,
            Vec::new(),
        );
        Ok(tracker.log_model(&model)?.model_id)
    })();
    let status = if result.is_ok() {
        RunStatus::Finished
    } else {
        RunStatus::Failed
    };
    tracker.end_run(&run_id, status, tracking::now_ms())?;
    Ok((run_id, result?))
}

pub fn run_train_als(ctx: &Context, a: &TrainAlsArgs) -> anyhow::Result<()> {
    run_pipeline(ctx, &resolve_train_als(a, &ctx.env)?)
}

pub fn run_train(ctx: &Context, a: &TrainArgs) -> anyhow::Result<()> {
    run_pipeline(ctx, &resolve_train(a, &ctx.env)?)
}
