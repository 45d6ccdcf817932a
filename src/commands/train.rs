//! `recflow train-als` and `recflow train`: resolve settings (checked before any work), run the
//! pipeline with progress, save the selected model, print the search and the test report.

use crate::cli::{TrainAlsArgs, TrainArgs};
use crate::commands::common::{load_data, print_results, results_json};
use crate::commands::{Context, Interrupted};
use crate::pipeline::progress::ProgressObserver;
use crate::pipeline::report::{warnings, with_comparisons};
use crate::pipeline::saved::{saved_model, ModelContext};
use crate::pipeline::train::{self, TrainError};
use crate::settings::{resolve_train, resolve_train_als, TrainCommand};

fn run_pipeline(ctx: &Context, s: &TrainCommand) -> anyhow::Result<()> {
    if ctx.show_settings(s)? {
        return Ok(());
    }
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
    saved_model(&mctx, &outcome, win, &ds.user_ids, &ds.item_ids).save(&s.model_dir)?;
    if ctx.out.is_json() {
        return Ok(ctx
            .out
            .json(&results_json(&outcome, &board, &warns, &s.model_dir))?);
    }
    print_results(ctx, &outcome, &board, &warns, &s.model_dir)
}

pub fn run_train_als(ctx: &Context, a: &TrainAlsArgs) -> anyhow::Result<()> {
    run_pipeline(ctx, &resolve_train_als(a, &ctx.env)?)
}

pub fn run_train(ctx: &Context, a: &TrainArgs) -> anyhow::Result<()> {
    run_pipeline(ctx, &resolve_train(a, &ctx.env)?)
}
