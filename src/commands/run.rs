//! `recflow run SPEC`: resolve the spec against the environment and the command line (every
//! value checked before any work), open the tracker (failing fast when it is unreachable), run
//! the experiment, print the leaderboard and where to look.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::cli::RunArgs;
use crate::commands::common::{load_data, open_store, print_results, results_json};
use crate::commands::{show_path, Context, Interrupted, OnlySpooled};
use crate::data::cache::Prepared;
use crate::pipeline::experiment::{self, ExperimentError, OpenRuns};
use crate::pipeline::progress::ProgressObserver;
use crate::pipeline::train::TrainError;
use crate::settings::{defaults, resolve_run, RunData, RunSettings};
use crate::spec::Spec;
use crate::tracking::{self, BufferedTracker, FileStore, Tracker, TrackingUri};

pub fn run(ctx: &Context, args: &RunArgs) -> anyhow::Result<()> {
    let (spec, src) = Spec::load(&args.spec, &args.set)?;
    let s = resolve_run(args, &spec, &src, &ctx.env)?;
    if ctx.show_settings(&s)? {
        return Ok(());
    }
    execute(ctx, &s)
}

/// Runs an experiment with its run tree (`recflow run`, and `recflow train` with tracking) and
/// prints the leaderboard and where to look.
pub(crate) fn execute(ctx: &Context, s: &RunSettings) -> anyhow::Result<()> {
    let store = open_store(&s.tracking)?;
    let buffered: Arc<BufferedTracker> = Arc::new(BufferedTracker::new(store));
    let tracker: Arc<dyn Tracker> = buffered.clone();
    let open: OpenRuns = Arc::new(Mutex::new(Vec::new()));
    ctx.catch_signals()?;
    let stop = ctx.stop.clone();
    let mut progress = ProgressObserver::new(&ctx.progress, move || stop.requested());
    let result = match &s.data {
        RunData::Etl {
            etl,
            processed_root,
        } => experiment::run(
            &s.experiment,
            etl,
            processed_root,
            tracker.as_ref(),
            &ctx.progress,
            &mut progress,
            open,
        ),
        RunData::Processed { data } => {
            let (ds, dir) = load_data(ctx, data)?;
            let prepared = Prepared::existing(&dir)?;
            experiment::run_prepared(
                &s.experiment,
                prepared,
                ds,
                tracker.as_ref(),
                &mut progress,
                open,
            )
        }
    };
    // Whatever the server did not take is written to a local store, complete.
    let local = FileStore::open(PathBuf::from(defaults::SPOOL_STORE))?;
    let spooled = buffered.finish(&local)?;
    let report = match result {
        Err(ExperimentError::Train(TrainError::Cancelled)) => {
            ctx.out.warn("stopped: the open runs were ended as KILLED");
            return Err(Interrupted(ctx.stop.signal().unwrap_or(crate::commands::SIGINT)).into());
        }
        r => r?,
    };
    if !spooled.all_delivered() {
        let local_uri = spooled
            .local_uri
            .clone()
            .unwrap_or_else(|| "file:./mlruns".into());
        ctx.out.warn(format!(
            "the tracking server did not take {} run(s); they were saved to {local_uri}\nhint: send them with `recflow sync --from {local_uri} --to {}`",
            spooled.saved.len(),
            // No credentials in a command to copy: `sync` takes them from the environment.
            tracking::link_uri(&s.tracking.uri)
        ));
        return Err(OnlySpooled(local_uri).into());
    }
    let registered = match &s.register {
        Some(name) => {
            let (Some(model_id), Some(best)) = (&report.model_id, &report.best_run_id) else {
                anyhow::bail!("`--register {name}`: the winner's model was not logged to MLflow");
            };
            Some(register(
                ctx,
                s,
                name,
                &report.parent_run_id,
                best,
                model_id,
            )?)
        }
        None => None,
    };
    let e = &s.experiment;
    if ctx.out.is_json() {
        let mut v = results_json(
            &report.outcome,
            &report.leaderboard,
            &report.warnings,
            &e.model_dir,
        );
        v["experiment"] = serde_json::json!(e.name);
        v["experiment_id"] = serde_json::json!(report.experiment_id);
        v["parent_run_id"] = serde_json::json!(report.parent_run_id);
        v["child_run_ids"] = serde_json::json!(report.child_run_ids);
        v["best_run_id"] = serde_json::json!(report.best_run_id);
        v["model_id"] = serde_json::json!(report.model_id);
        v["model_uri"] =
            serde_json::json!(report.model_id.as_ref().map(|m| format!("models:/{m}")));
        v["data"] = serde_json::json!(report.prepared.dir.display().to_string());
        v["reused_data"] = serde_json::json!(report.prepared.reused);
        v["tracking_uri"] = serde_json::json!(tracking::mask_uri(&s.tracking.uri));
        v["registered"] = serde_json::json!(registered);
        v["ui"] = serde_json::json!(link(
            &s.tracking.uri,
            &report.experiment_id,
            &report.parent_run_id
        ));
        return Ok(ctx.out.json(&v)?);
    }
    print_results(
        ctx,
        &report.outcome,
        &report.leaderboard,
        &report.warnings,
        &e.model_dir,
    )?;
    let winner = report
        .outcome
        .winner
        .map(|i| {
            e.pipeline.entries[report.outcome.entries[i].entry]
                .name
                .clone()
        })
        .unwrap_or_default();
    ctx.out.line(format!(
        "\nexperiment `{}`: run {} with {} nested runs, logged to {}; winner `{winner}` saved to {}",
        e.name,
        report.parent_run_id,
        report.child_run_ids.len(),
        tracking::mask_uri(&s.tracking.uri),
        show_path(&e.model_dir)
    ))?;
    ctx.out.line(format!(
        "data: {}{}",
        show_path(&report.prepared.dir),
        if report.prepared.reused {
            " (reused)"
        } else {
            ""
        }
    ))?;
    ctx.out.line(format!(
        "view: {}",
        link(
            &s.tracking.uri,
            &report.experiment_id,
            &report.parent_run_id
        )
    ))?;
    if let Some(w) = &report.tracking_warning {
        ctx.out.warn(format!("some tracking calls failed: {w}"));
    }
    Ok(())
}

/// Registers the parent run's model as a new version of `name` and moves the `champion` alias
/// to it when it beats the current champion (see [`champion::decide`]); the decision is printed
/// and kept as the version's tag `recflow.champion_decision`.
fn register(
    ctx: &Context,
    s: &RunSettings,
    name: &str,
    parent: &str,
    best_run: &str,
    model_id: &str,
) -> anyhow::Result<serde_json::Value> {
    use crate::pipeline::champion::{self, Contender, CHAMPION};
    let store = tracking::RestStore::new(&s.tracking.uri, &s.tracking.connection)?;
    let key = format!(
        "best.{}",
        s.experiment
            .pipeline
            .select
            .on(crate::eval::keys::Split::Test)
    );
    // A version's run is the winner's final child (its parent holds the `best.` figures and
    // the split), or a parent for versions registered by earlier releases.
    let contender = |version: String, run_id: &str| -> Contender {
        let run = store
            .get_run(run_id)
            .ok()
            .and_then(|r| match r.parent_run_id() {
                Some(p) if r.metric(&key).is_none() => store.get_run(p).ok(),
                _ => Some(r),
            });
        Contender {
            version,
            value: run.as_ref().and_then(|r| r.metric(&key)),
            split: run.and_then(|r| r.tags.get(tracking::TAG_SPLIT_FINGERPRINT).cloned()),
        }
    };
    let current = store.alias_version(name, CHAMPION)?;
    let version = store.create_version(name, best_run, model_id)?;
    let new = contender(version.clone(), parent);
    let old = current.map(|(v, run)| contender(v, &run));
    let decision = champion::decide(
        &key,
        s.experiment.pipeline.select.direction,
        &new,
        old.as_ref(),
        s.force,
    );
    if decision.moved {
        store.set_alias(name, CHAMPION, &version)?;
    }
    store.set_version_tag(name, &version, TAG_CHAMPION_DECISION, &decision.reason)?;
    let line = format!("registered `{name}` version {version}: {}", decision.reason);
    if decision.moved {
        tracing::info!("{line}");
    } else {
        ctx.out.warn(line);
    }
    Ok(serde_json::json!({
        "name": name,
        "version": version,
        "champion": decision.moved,
        "decision": decision.reason,
    }))
}

/// The tag on a registered version that says what happened to the `champion` alias.
const TAG_CHAMPION_DECISION: &str = "recflow.champion_decision";

/// The MLflow UI page of a run, without credentials. MLflow 3 opens an experiment on its GenAI
/// pages unless the link asks for the machine-learning view (`workflowType`, read from the
/// route's query).
fn link(uri: &str, experiment_id: &str, run_id: &str) -> String {
    let page = format!("#/experiments/{experiment_id}/runs/{run_id}?{UI_WORKFLOW}");
    match TrackingUri::parse(uri) {
        Ok(TrackingUri::Http(base)) => {
            format!("{}/{page}", tracking::link_uri(base.trim_end_matches('/')))
        }
        _ => format!("make ui, then http://127.0.0.1:5000/{page}"),
    }
}

const UI_WORKFLOW: &str = "workflowType=machine_learning";
