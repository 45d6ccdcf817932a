//! `recflow experiments list`, `recflow runs list|show|compare|best`, `recflow sync`, and model
//! registration: reading runs from either backend and printing them as a table, CSV or JSON.

use std::collections::BTreeSet;

use crate::cli::{ExperimentsCommand, RunsCommand, RunsListArgs, StoreArgs, SyncArgs};
use crate::commands::run::{tracking_settings, tracking_uri};
use crate::commands::Context;
use crate::tracking::{self, Run, RunQuery, Tracker, TrackingSettings};

fn open(ctx: &Context, store: &StoreArgs) -> anyhow::Result<Box<dyn Tracker>> {
    let uri = tracking_uri(ctx, store.tracking_uri.as_deref(), None);
    let t = tracking::open_tracker(&uri, &tracking_settings(ctx))?;
    t.ping()?;
    Ok(t)
}

/// Prints rows as an aligned table fitting the terminal, or CSV.
fn print_table(ctx: &Context, header: &[String], rows: &[Vec<String>], csv: bool) {
    if csv {
        let esc = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        println!(
            "{}",
            header.iter().map(|h| esc(h)).collect::<Vec<_>>().join(",")
        );
        for r in rows {
            println!("{}", r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(","));
        }
        return;
    }
    let width = terminal_width();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Shrink the widest columns until the table fits.
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(&widths) > width {
        let (i, &m) = widths
            .iter()
            .enumerate()
            .max_by_key(|(_, w)| **w)
            .unwrap_or((0, &0));
        if m <= 8 {
            break;
        }
        widths[i] = m - 1;
    }
    let cut = |s: &str, w: usize| -> String {
        if s.chars().count() <= w {
            format!("{s:<w$}")
        } else {
            let t: String = s.chars().take(w.saturating_sub(1)).collect();
            format!("{t}…")
        }
    };
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| cut(c, *w))
            .collect::<Vec<_>>()
            .join("  ")
    };
    ctx.say(line(header).trim_end());
    for r in rows {
        ctx.say(line(r).trim_end());
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(160)
}

fn fmt_metric(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v}")
    } else {
        format!("{v:.4}")
    }
}

fn cell(run: &Run, col: &str) -> String {
    match col {
        "run_id" => run.info.run_id.clone(),
        "name" | "run_name" => run.info.run_name.clone(),
        "status" => run.info.status.to_string(),
        "start_time" => chrono::DateTime::from_timestamp_millis(run.info.start_time)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default(),
        "parent" => run.parent_run_id().unwrap_or("").to_string(),
        c => {
            if let Some(k) = c.strip_prefix("metrics.") {
                run.metric(k).map(fmt_metric).unwrap_or_default()
            } else if let Some(k) = c.strip_prefix("params.") {
                run.params.get(k).cloned().unwrap_or_default()
            } else if let Some(k) = c.strip_prefix("tags.") {
                run.tags.get(k).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
    }
}

fn experiment_ids(t: &dyn Tracker, name: Option<&str>) -> anyhow::Result<Vec<String>> {
    Ok(match name {
        Some(n) => vec![
            t.get_experiment_by_name(n)?
                .ok_or_else(|| anyhow::anyhow!("experiment `{n}` not found in the tracking store"))?
                .experiment_id,
        ],
        None => t
            .list_experiments()?
            .into_iter()
            .map(|e| e.experiment_id)
            .collect(),
    })
}

fn list(ctx: &Context, a: &RunsListArgs) -> anyhow::Result<()> {
    let t = open(ctx, &a.store)?;
    let ids = experiment_ids(t.as_ref(), a.experiment.as_deref())?;
    let runs = t.search_runs(&RunQuery {
        experiment_ids: ids,
        filter: a.filter.clone(),
        order_by: a.order_by.clone(),
        max_results: a.max,
    })?;
    if ctx.global.json {
        return ctx.print_json(&runs);
    }
    let cols: Vec<String> = if a.columns.is_empty() {
        let mut c = vec![
            "run_id".to_string(),
            "name".into(),
            "status".into(),
            "start_time".into(),
        ];
        let metrics: BTreeSet<&str> = runs
            .iter()
            .flat_map(|r| r.metrics.keys().map(String::as_str))
            .collect();
        for m in ["rmse", "precision_at_10", "ndcg_at_10"] {
            if metrics.contains(m) {
                c.push(format!("metrics.{m}"));
            }
        }
        c
    } else {
        a.columns.clone()
    };
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| cols.iter().map(|c| cell(r, c)).collect())
        .collect();
    print_table(ctx, &cols, &rows, a.store.csv);
    Ok(())
}

fn show(ctx: &Context, run_id: &str, store: &StoreArgs) -> anyhow::Result<()> {
    let t = open(ctx, store)?;
    let run = t.get_run(run_id)?;
    let children = t.search_runs(&RunQuery {
        experiment_ids: vec![run.info.experiment_id.clone()],
        filter: Some(format!("tags.`mlflow.parentRunId` = '{run_id}'")),
        order_by: vec![],
        max_results: 10_000,
    })?;
    let artifacts = t.list_artifacts(run_id, None)?;
    if ctx.global.json {
        return ctx.print_json(&serde_json::json!({
            "run": run,
            "children": children.iter().map(|c| &c.info.run_id).collect::<Vec<_>>(),
            "artifacts": artifacts,
        }));
    }
    ctx.say(format!(
        "run {} ({}), {}, experiment {}",
        run.info.run_id, run.info.run_name, run.info.status, run.info.experiment_id
    ));
    ctx.say("params:");
    for (k, v) in &run.params {
        ctx.say(format!("  {k} = {v}"));
    }
    ctx.say("metrics (latest):");
    for (k, m) in &run.metrics {
        ctx.say(format!("  {k} = {}", fmt_metric(m.value)));
    }
    ctx.say("tags:");
    for (k, v) in run
        .tags
        .iter()
        .filter(|(k, _)| k.as_str() != tracking::TAG_NOTE)
    {
        ctx.say(format!("  {k} = {v}"));
    }
    ctx.say("artifacts:");
    for a in &artifacts {
        ctx.say(format!("  {}{}", a.path, if a.is_dir { "/" } else { "" }));
    }
    if !children.is_empty() {
        ctx.say(format!("children ({}):", children.len()));
        for c in &children {
            ctx.say(format!("  {} {}", c.info.run_id, c.info.run_name));
        }
    }
    Ok(())
}

fn compare(ctx: &Context, ids: &[String], store: &StoreArgs) -> anyhow::Result<()> {
    let t = open(ctx, store)?;
    let runs: Vec<Run> = ids
        .iter()
        .map(|id| t.get_run(id))
        .collect::<Result<_, _>>()?;
    let params: BTreeSet<&String> = runs.iter().flat_map(|r| r.params.keys()).collect();
    let metrics: BTreeSet<&String> = runs.iter().flat_map(|r| r.metrics.keys()).collect();
    if ctx.global.json {
        return ctx.print_json(&runs);
    }
    let mut header = vec![String::from("")];
    header.extend(runs.iter().map(|r| {
        format!(
            "{} ({})",
            &r.info.run_id[..r.info.run_id.len().min(8)],
            r.info.run_name
        )
    }));
    let mut rows = Vec::new();
    for p in params {
        let vals: Vec<String> = runs
            .iter()
            .map(|r| r.params.get(p).cloned().unwrap_or_default())
            .collect();
        let differs = vals.iter().collect::<BTreeSet<_>>().len() > 1;
        let mut row = vec![format!("{}params.{p}", if differs { "≠ " } else { "  " })];
        row.extend(vals);
        rows.push(row);
    }
    for m in metrics {
        let vals: Vec<Option<f64>> = runs.iter().map(|r| r.metric(m)).collect();
        let lower_better = crate::train::Selection::direction_of(m) == crate::train::Direction::Min;
        let best = vals
            .iter()
            .flatten()
            .copied()
            .fold(None, |acc: Option<f64>, v| match acc {
                None => Some(v),
                Some(a) => Some(if (lower_better && v < a) || (!lower_better && v > a) {
                    v
                } else {
                    a
                }),
            });
        let mut row = vec![format!("  metrics.{m}")];
        row.extend(vals.iter().map(|v| match v {
            Some(x) => format!(
                "{}{}",
                fmt_metric(*x),
                if Some(*x) == best && runs.len() > 1 {
                    " *"
                } else {
                    ""
                }
            ),
            None => String::new(),
        }));
        rows.push(row);
    }
    print_table(ctx, &header, &rows, store.csv);
    if !store.csv {
        ctx.say("(≠ params differ; * best value of the metric)");
    }
    Ok(())
}

fn best(
    ctx: &Context,
    experiment: &str,
    metric: &str,
    max: bool,
    store: &StoreArgs,
) -> anyhow::Result<()> {
    let t = open(ctx, store)?;
    let ids = experiment_ids(t.as_ref(), Some(experiment))?;
    let order = format!("metrics.`{metric}` {}", if max { "DESC" } else { "ASC" });
    let runs = t.search_runs(&RunQuery {
        experiment_ids: ids,
        filter: Some(format!("metrics.`{metric}` > -1e308")),
        order_by: vec![order],
        max_results: 1,
    })?;
    let run = runs
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no run of `{experiment}` has metric `{metric}`"))?;
    if ctx.global.json {
        return ctx.print_json(&run);
    }
    ctx.say(format!(
        "{} {} {metric}={}",
        run.info.run_id,
        run.info.run_name,
        run.metric(metric).map(fmt_metric).unwrap_or_default()
    ));
    Ok(())
}

pub fn run_experiments(ctx: &Context, c: &ExperimentsCommand) -> anyhow::Result<()> {
    let ExperimentsCommand::List(store) = c;
    let t = open(ctx, store)?;
    let exps = t.list_experiments()?;
    if ctx.global.json {
        return ctx.print_json(&exps);
    }
    let header: Vec<String> = ["experiment_id", "name", "created"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows: Vec<Vec<String>> = exps
        .iter()
        .map(|e| {
            vec![
                e.experiment_id.clone(),
                e.name.clone(),
                e.creation_time
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print_table(ctx, &header, &rows, store.csv);
    Ok(())
}

pub fn run_runs(ctx: &Context, c: &RunsCommand) -> anyhow::Result<()> {
    match c {
        RunsCommand::List(a) => list(ctx, a),
        RunsCommand::Show { run_id, store } => show(ctx, run_id, store),
        RunsCommand::Compare { run_ids, store } => compare(ctx, run_ids, store),
        RunsCommand::Best {
            experiment,
            metric,
            max,
            store,
        } => best(ctx, experiment, metric, *max, store),
    }
}

pub fn run_sync(ctx: &Context, a: &SyncArgs) -> anyhow::Result<()> {
    let conn = tracking_settings(ctx);
    let from = tracking::open_tracker(&a.from, &conn)?;
    let to = tracking::open_tracker(&a.to, &conn)?;
    to.ping()?;
    let report = tracking::sync(from.as_ref(), to.as_ref(), a.experiment.as_deref())?;
    if ctx.global.json {
        return ctx.print_json(&report);
    }
    ctx.say(format!(
        "copied {} run(s) ({} metric values, {} artifact files) from {} experiment(s); {} already synced, {} still running (left for later)",
        report.copied.len(),
        report.metric_values,
        report.artifact_files,
        report.experiments,
        report.already_synced,
        report.skipped_running
    ));
    Ok(())
}

/// Registers the run's logged model in the server's Model Registry with the alias `champion`.
pub fn register(
    _ctx: &Context,
    uri: &str,
    conn: &TrackingSettings,
    name: &str,
    run_id: &str,
) -> anyhow::Result<()> {
    let store = tracking::RestStore::new(uri, conn)?;
    let version = store.register_model(name, run_id, "model", "champion")?;
    tracing::info!("registered `{name}` version {version} (alias `champion`)");
    Ok(())
}
