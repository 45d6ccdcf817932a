//! `recflow experiments list`, `recflow runs list|show|compare|best`, `recflow sync`, and model
//! registration: reading runs from either backend and printing them as a table, CSV or JSON.

use std::collections::BTreeSet;

use crate::cli::{ExperimentsCommand, RunsCommand, RunsListArgs, StoreArgs, SyncArgs};
use crate::commands::common::open_store;
use crate::commands::Context;
use crate::eval::keys::{self, Direction};
use crate::output::{fmt_value, terminal_width, Table};
use crate::settings::{tracking_connection, tracking_target};
use crate::tracking::{self, Run, RunQuery, Tracker};

fn open(ctx: &Context, store: &StoreArgs) -> anyhow::Result<Box<dyn Tracker>> {
    open_store(&tracking_target(
        store.tracking_uri.as_deref(),
        None,
        &ctx.env,
    ))
}

/// Prints rows as an aligned table fitting the terminal, or CSV.
fn print_table(
    ctx: &Context,
    header: &[String],
    rows: &[Vec<String>],
    csv: bool,
) -> anyhow::Result<()> {
    let mut t = Table::new(header.iter().cloned()).keep([0]);
    for r in rows {
        t.push(r.iter().cloned());
    }
    if csv {
        ctx.out.csv(&t)?;
    } else {
        ctx.out.table(&t, terminal_width())?;
    }
    Ok(())
}

fn fmt_metric(v: f64) -> String {
    fmt_value(v)
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
        return Ok(ctx.out.json(&runs)?);
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
    print_table(ctx, &cols, &rows, a.store.csv)
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
        return Ok(ctx.out.json(&serde_json::json!({
            "run": run,
            "children": children.iter().map(|c| &c.info.run_id).collect::<Vec<_>>(),
            "artifacts": artifacts,
        }))?);
    }
    ctx.out.line(format!(
        "run {} ({}), {}, experiment {}",
        run.info.run_id, run.info.run_name, run.info.status, run.info.experiment_id
    ))?;
    ctx.out.line("params:")?;
    for (k, v) in &run.params {
        ctx.out.line(format!("  {k} = {v}"))?;
    }
    ctx.out.line("metrics (latest):")?;
    for (k, m) in &run.metrics {
        ctx.out.line(format!("  {k} = {}", fmt_metric(m.value)))?;
    }
    ctx.out.line("tags:")?;
    for (k, v) in run
        .tags
        .iter()
        .filter(|(k, _)| k.as_str() != tracking::TAG_NOTE)
    {
        ctx.out.line(format!("  {k} = {v}"))?;
    }
    ctx.out.line("artifacts:")?;
    for a in &artifacts {
        ctx.out
            .line(format!("  {}{}", a.path, if a.is_dir { "/" } else { "" }))?;
    }
    if !children.is_empty() {
        ctx.out.line(format!("children ({}):", children.len()))?;
        for c in &children {
            ctx.out
                .line(format!("  {} {}", c.info.run_id, c.info.run_name))?;
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
        return Ok(ctx.out.json(&runs)?);
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
        let mark = if differs && !store.csv { "≠ " } else { "" };
        let pad = if store.csv { "" } else { "  " };
        let mut row = vec![format!(
            "{}params.{p}",
            if mark.is_empty() { pad } else { mark }
        )];
        row.extend(vals);
        rows.push(row);
    }
    for m in metrics {
        let vals: Vec<Option<f64>> = runs.iter().map(|r| r.metric(m)).collect();
        let best = if store.csv {
            None
        } else {
            best_value(&vals, keys::direction(m))
        };
        let pad = if store.csv { "" } else { "  " };
        let mut row = vec![format!("{pad}metrics.{m}")];
        row.extend(vals.iter().map(|v| match v {
            // CSV keeps every digit, as `mlflow.search_runs` does.
            Some(x) if store.csv => x.to_string(),
            Some(x) => format!(
                "{}{}",
                fmt_metric(*x),
                if Some(*x) == best { " *" } else { "" }
            ),
            None => String::new(),
        }));
        rows.push(row);
    }
    print_table(ctx, &header, &rows, store.csv)?;
    if !store.csv {
        ctx.out
            .line("(≠ params differ; * best value of the metric in its direction, none when all are equal)")?;
    }
    Ok(())
}

/// The run best on `metric` (a full key, `metrics.` optional), in the registry's direction for
/// it unless `forced`; a metric the registry does not know needs `--max` or `--min`.
/// The value to star in a row: the best in the metric's direction, and only when the metric's
/// direction is known and the values are not all equal.
fn best_value(vals: &[Option<f64>], direction: Option<Direction>) -> Option<f64> {
    let d = direction?;
    let present: Vec<f64> = vals.iter().flatten().copied().collect();
    let first = *present.first()?;
    if present.iter().all(|&v| v == first) {
        return None;
    }
    present
        .into_iter()
        .reduce(|a, v| if d.better(v, a) { v } else { a })
}

fn best(
    ctx: &Context,
    experiment: &str,
    metric: &str,
    forced: Option<Direction>,
    store: &StoreArgs,
) -> anyhow::Result<()> {
    let metric = metric.strip_prefix("metrics.").unwrap_or(metric);
    let direction = match forced.or_else(|| keys::direction(metric)) {
        Some(d) => d,
        None => anyhow::bail!(
            "recflow does not know which way `{metric}` goes\nhint: add `--max` (highest wins) or `--min` (lowest wins)"
        ),
    };
    let t = open(ctx, store)?;
    let ids = experiment_ids(t.as_ref(), Some(experiment))?;
    let order = format!(
        "metrics.`{metric}` {}",
        match direction {
            Direction::Higher => "DESC",
            Direction::Lower => "ASC",
        }
    );
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
        return Ok(ctx.out.json(&run)?);
    }
    ctx.out.line(format!(
        "{} {} {metric}={}",
        run.info.run_id,
        run.info.run_name,
        run.metric(metric).map(fmt_metric).unwrap_or_default()
    ))?;
    Ok(())
}

pub fn run_experiments(ctx: &Context, c: &ExperimentsCommand) -> anyhow::Result<()> {
    let ExperimentsCommand::List(store) = c;
    let t = open(ctx, store)?;
    let exps = t.list_experiments()?;
    if ctx.global.json {
        return Ok(ctx.out.json(&exps)?);
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
    print_table(ctx, &header, &rows, store.csv)
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
            min,
            store,
        } => {
            let forced = match (max, min) {
                (true, _) => Some(Direction::Higher),
                (_, true) => Some(Direction::Lower),
                _ => None,
            };
            best(ctx, experiment, metric, forced, store)
        }
    }
}

pub fn run_sync(ctx: &Context, a: &SyncArgs) -> anyhow::Result<()> {
    let conn = tracking_connection(&ctx.env);
    let from = tracking::open_tracker(&a.from, &conn)?;
    let to = tracking::open_tracker(&a.to, &conn)?;
    to.ping()?;
    let report = tracking::sync(from.as_ref(), to.as_ref(), a.experiment.as_deref())?;
    if ctx.global.json {
        return Ok(ctx.out.json(&report)?);
    }
    ctx.out.line(format!(
        "copied {} run(s) ({} metric values, {} artifact files) from {} experiment(s); {} already synced, {} still running (left for later)",
        report.copied.len(),
        report.metric_values,
        report.artifact_files,
        report.experiments,
        report.already_synced,
        report.skipped_running
    ))?;
    Ok(())
}
