//! `recflow run SPEC`: resolve the spec against the environment and the command line, open the
//! tracker (failing fast when it is unreachable), run the experiment, print where to look.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::cli::RunArgs;
use crate::commands::train::Progress as GridProgress;
use crate::commands::{show_path, Context, WithHint};
use crate::data::etl::{EtlSettings, RatingRange};
use crate::data::format::InputFormat;
use crate::data::split::{SplitParams, SplitStrategy};
use crate::eval::EvalSettings;
use crate::experiment::{self, ExperimentSettings, OpenRuns};
use crate::model::als::{AlsParams, RegScaling, Solver};
use crate::spec::Spec;
use crate::tracking::{
    self, BufferedTracker, FileStore, RunStatus, Tracker, TrackingSettings, TrackingUri,
};
use crate::train::{Axes, Grid, Selection, TrainSettings};

/// Tracking connection settings from the environment (secrets stay in memory only).
pub fn tracking_settings(ctx: &Context) -> TrackingSettings {
    let get = |k: &str| ctx.env.get(k).map(str::to_string).filter(|v| !v.is_empty());
    TrackingSettings {
        username: get("MLFLOW_TRACKING_USERNAME"),
        password: get("MLFLOW_TRACKING_PASSWORD"),
        token: get("MLFLOW_TRACKING_TOKEN"),
        insecure_tls: get("MLFLOW_TRACKING_INSECURE_TLS")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes")),
        ca_bundle: get("MLFLOW_TRACKING_SERVER_CERT_PATH").map(PathBuf::from),
        ..TrackingSettings::default()
    }
}

/// The tracking URI: command line > spec > environment > `.env` > default.
pub fn tracking_uri(ctx: &Context, cli: Option<&str>, spec: Option<&str>) -> String {
    cli.or(spec)
        .map(str::to_string)
        .or_else(|| ctx.env.get("MLFLOW_TRACKING_URI").map(str::to_string))
        .unwrap_or_else(|| "file:./mlruns".into())
}

fn resolve(
    ctx: &Context,
    args: &RunArgs,
    spec: &Spec,
    text: &str,
) -> anyhow::Result<ExperimentSettings> {
    let d = &spec.data;
    let input = PathBuf::from(
        d.input
            .clone()
            .or_else(|| ctx.env.get("RAW_REVIEWS_PATH").map(str::to_string))
            .unwrap_or_else(|| "data/raw/reviews_electronics.json.gz".into()),
    );
    let format = match d.format.as_deref() {
        Some("json") => InputFormat::Json,
        Some("csv") => InputFormat::Csv,
        Some("tsv") => InputFormat::Tsv,
        Some("parquet") => InputFormat::Parquet,
        _ => InputFormat::from_path(&input).hint("set `data.format` in the spec")?,
    };
    let min_interactions = match d.min_interactions {
        Some(n) => n,
        None => ctx
            .env
            .get("MIN_INTERACTIONS")
            .unwrap_or("5")
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("MIN_INTERACTIONS must be a whole number"))?,
    };
    let rating_range: RatingRange = match &d.rating_range {
        Some(r) => r.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        None => RatingRange::default(),
    };
    let etl = EtlSettings {
        input,
        format,
        columns: d.columns.clone().unwrap_or_default(),
        has_header: d.header,
        min_interactions,
        rating_range,
        strict: false,
        output: PathBuf::from("data/processed"),
    };
    let sp = &spec.split;
    let strategy = match sp.strategy.as_deref().unwrap_or("random") {
        "per_user" => SplitStrategy::PerUser,
        "temporal" => SplitStrategy::Temporal,
        "leave_last_n" => SplitStrategy::LeaveLastN(sp.n.unwrap_or(1)),
        _ => SplitStrategy::Random,
    };
    let m = &spec.model;
    let implicit = m.implicit.unwrap_or(false);
    let k = spec.eval.k.unwrap_or(10);
    let seed = m.seed.or(sp.seed).unwrap_or(42);
    let solver = match m.solver.as_deref() {
        Some("cg") => Solver::Cg,
        Some("gibbs") => Solver::Gibbs,
        _ => Solver::Cholesky,
    };
    let max_iter = m.max_iter.unwrap_or_else(|| solver.default_max_iter());
    let base = AlsParams::new()
        .implicit(implicit)
        .solver(solver)
        .cg_steps(m.cg_steps.unwrap_or(3))
        .burn_in(m.burn_in)
        .samples(m.samples)
        .rated_sets(m.rated_sets.unwrap_or(false))
        .biases(m.biases.unwrap_or(!implicit))
        .reg_scaling(if m.reg_scaling.as_deref() == Some("none") {
            RegScaling::None
        } else {
            RegScaling::Count
        })
        .max_iter(max_iter)
        .seed(seed);
    let g = &spec.grid;
    let train = TrainSettings {
        sample_fraction: d.sample_fraction.unwrap_or(1.0),
        sample_seed: d.seed.unwrap_or(42),
        split: SplitParams {
            strategy,
            test_fraction: sp.test_fraction.unwrap_or(0.2),
            seed: sp.seed.unwrap_or(42),
        },
        validation_fraction: sp.validation_fraction.unwrap_or(0.1),
        base,
        grid: Grid {
            ranks: g.rank.clone().unwrap_or_else(|| vec![32, 50, 64]),
            regs: g.reg.clone().unwrap_or_else(|| vec![0.05, 0.1, 0.2]),
            alphas: g
                .alpha
                .clone()
                .unwrap_or_else(|| vec![m.alpha.unwrap_or(1.0)]),
        },
        eval: EvalSettings {
            k,
            threshold: spec.eval.relevance_threshold.map(|t| t as f32),
            ..EvalSettings::default()
        },
        selection: match &spec.eval.select {
            Some(metric) => Selection::by_metric(metric, implicit, k),
            None => Selection::default_for(implicit, k),
        },
        threads: m.threads,
        test_file: None,
    };
    let mut params = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        params.insert(k.to_string(), v);
    };
    put("data.input", etl.input.display().to_string());
    put("data.format", etl.format.to_string());
    put("data.min_interactions", etl.min_interactions.to_string());
    put("data.rating_range", etl.rating_range.to_string());
    put("data.sample_fraction", train.sample_fraction.to_string());
    put("data.sample_seed", train.sample_seed.to_string());
    put("split.strategy", strategy.name().to_string());
    put("split.test_fraction", train.split.test_fraction.to_string());
    put(
        "split.validation_fraction",
        train.validation_fraction.to_string(),
    );
    put("split.seed", train.split.seed.to_string());
    if let SplitStrategy::LeaveLastN(n) = strategy {
        put("split.n", n.to_string());
    }
    put("model", "als".into());
    put("implicit", implicit.to_string());
    put(
        "solver",
        m.solver.clone().unwrap_or_else(|| "cholesky".into()),
    );
    put("cg_steps", m.cg_steps.unwrap_or(3).to_string());
    if let Ok(p) = train.base.clone().check() {
        if p.solver() == Solver::Gibbs {
            put("burn_in", p.burn_in().to_string());
            put("samples", p.samples().to_string());
            put("rated_sets", p.rated_sets().to_string());
        }
    }
    put("max_iter", max_iter.to_string());
    put("biases", m.biases.unwrap_or(!implicit).to_string());
    put(
        "reg_scaling",
        m.reg_scaling.clone().unwrap_or_else(|| "count".into()),
    );
    put("seed", seed.to_string());
    put("grid.rank", format!("{:?}", train.grid.ranks));
    put(
        "grid.reg",
        if solver == Solver::Gibbs {
            "not an axis (gibbs learns its priors)".into()
        } else {
            format!("{:?}", train.grid.regs)
        },
    );
    put("grid.alpha", format!("{:?}", train.grid.alphas));
    put("eval.k", k.to_string());
    put("eval.select", train.selection.metric.clone());
    put(
        "eval.relevance_threshold",
        spec.eval
            .relevance_threshold
            .map_or("off".into(), |t| t.to_string()),
    );
    put("engine", "recflow".into());
    put(
        "environment",
        ctx.env.get("ENVIRONMENT").unwrap_or("local").to_string(),
    );
    let resolved = toml::to_string_pretty(spec).unwrap_or_else(|_| text.to_string());
    Ok(ExperimentSettings {
        name: spec.experiment.name.clone(),
        description: spec.experiment.description.clone(),
        tags: spec.experiment.tags.clone(),
        spec_path: args.spec.clone(),
        resolved_spec: resolved,
        etl,
        processed_root: PathBuf::from("data/processed"),
        train,
        model_dir: PathBuf::from(
            spec.output
                .model_dir
                .clone()
                .unwrap_or_else(|| "artifacts/als_model".into()),
        ),
        params: params.into_iter().collect(),
        user: std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "recflow".into()),
        git: experiment::git_info(),
        metrics_dir: PathBuf::from("artifacts/metrics"),
    })
}

/// Ends every open run as KILLED on Ctrl-C or SIGTERM, then exits with 130.
fn on_interrupt(tracker: Arc<dyn Tracker>, open: OpenRuns) {
    let _ = ctrlc::set_handler(move || {
        eprintln!("\ninterrupted: marking open runs KILLED");
        let ids: Vec<String> = open.lock().map(|v| v.clone()).unwrap_or_default();
        for id in ids.iter().rev() {
            let _ = tracker.end_run(id, RunStatus::Killed, tracking::now_ms());
        }
        std::process::exit(130);
    });
}

pub fn run(ctx: &Context, args: &RunArgs) -> anyhow::Result<()> {
    let (spec, text) = Spec::load(&args.spec, &args.set)?;
    let settings = resolve(ctx, args, &spec, &text)?;
    let uri = tracking_uri(
        ctx,
        args.tracking_uri.as_deref(),
        spec.experiment.tracking_uri.as_deref(),
    );
    let conn = tracking_settings(ctx);
    let remote = matches!(TrackingUri::parse(&uri)?, TrackingUri::Http(_));
    let store = tracking::open_tracker(&uri, &conn)?;
    // An unreachable server stops us before any work.
    store.ping()?;
    if args.register.is_some() && !remote {
        anyhow::bail!("`--register` needs an MLflow server (`--tracking-uri http://...`); the file store has no Model Registry");
    }
    let buffered: Arc<BufferedTracker> = Arc::new(BufferedTracker::new(store));
    let tracker: Arc<dyn Tracker> = buffered.clone();
    let open: OpenRuns = Arc::new(Mutex::new(Vec::new()));
    on_interrupt(tracker.clone(), open.clone());
    let mut progress = GridProgress::new(
        ctx,
        settings
            .train
            .base
            .clone()
            .check()
            .map_or(0, |p| p.max_iter()),
        Axes::of(&settings.train.base),
    );
    let result = experiment::run(
        &settings,
        tracker.as_ref(),
        &ctx.progress,
        &mut progress,
        open,
    );
    // Whatever the server did not take is written to a local store, complete.
    let local = FileStore::open(PathBuf::from("mlruns"))?;
    let spooled = buffered.finish(&local)?;
    if !spooled.all_delivered() {
        eprintln!(
            "warning: the tracking server did not take {} run(s); they were saved to {}\nhint: copy them later with `recflow sync --from {} --to {}`",
            spooled.saved.len(),
            spooled.local_uri.clone().unwrap_or_else(|| "mlruns".into()),
            spooled.local_uri.clone().unwrap_or_else(|| "file:./mlruns".into()),
            tracking::mask_uri(&uri)
        );
    }
    let report = result?;
    if let Some(name) = &args.register {
        crate::commands::runs::register(ctx, &uri, &conn, name, &report.parent_run_id)?;
    }
    print_report(ctx, &settings, &report, &uri)
}

fn print_report(
    ctx: &Context,
    s: &ExperimentSettings,
    r: &experiment::Report,
    uri: &str,
) -> anyhow::Result<()> {
    let link = match TrackingUri::parse(uri) {
        Ok(TrackingUri::Http(base)) => format!(
            "{}/#/experiments/{}/runs/{}",
            base.trim_end_matches('/'),
            r.experiment_id,
            r.parent_run_id
        ),
        _ => format!(
            "make ui, then http://127.0.0.1:5000/#/experiments/{}/runs/{}",
            r.experiment_id, r.parent_run_id
        ),
    };
    if ctx.global.json {
        return ctx.print_json(&serde_json::json!({
            "experiment": s.name,
            "experiment_id": r.experiment_id,
            "parent_run_id": r.parent_run_id,
            "child_run_ids": r.child_run_ids,
            "best_run_id": r.best_run_id,
            "data": r.prepared_dir.display().to_string(),
            "reused_data": r.reused_data,
            "model_dir": s.model_dir.display().to_string(),
            "selected_on": r.outcome.selected_on,
            "test": r.outcome.test.metrics().into_iter().collect::<BTreeMap<_, _>>(),
            "tracking_uri": tracking::mask_uri(uri),
            "ui": link,
        }));
    }
    crate::commands::train::report(ctx, &s.train, &r.outcome, &s.model_dir)?;
    ctx.say(format!(
        "\nexperiment `{}`: run {} with {} nested runs, logged to {}",
        s.name,
        r.parent_run_id,
        r.child_run_ids.len(),
        tracking::mask_uri(uri)
    ));
    ctx.say(format!(
        "data: {}{}",
        show_path(&r.prepared_dir),
        if r.reused_data { " (reused)" } else { "" }
    ));
    ctx.say(format!("view: {link}"));
    if let Some(w) = &r.tracking_warning {
        ctx.say(format!("warning: some tracking calls failed: {w}"));
    }
    Ok(())
}
