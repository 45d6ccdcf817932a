//! `recflow experiments list`, `recflow runs list|show|compare|pivot|best`, `recflow sync`, and
//! model registration: reading runs from either backend and printing them as a table, CSV, JSON,
//! Markdown or LaTeX. Every best value is marked in the metric registry's direction.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context as _};

use crate::cli::{
    ExperimentsCommand, PivotAgg, RunsCommand, RunsCompareArgs, RunsListArgs, RunsPivotArgs,
    StoreArgs, SyncArgs, TableFormat,
};
use crate::commands::common::{open_store, resolve_run};
use crate::commands::Context;
use crate::eval::keys::{self, Direction, MetricKey, Split};
use crate::eval::stats::{holm, paired, Bootstrap};
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

/// The format asked for: `--json` (global), `--csv`, else `--format`.
fn format_of(ctx: &Context, store: &StoreArgs) -> TableFormat {
    if ctx.global.json {
        TableFormat::Json
    } else if store.csv {
        TableFormat::Csv
    } else {
        store.format.unwrap_or(TableFormat::Table)
    }
}

/// Prints a table in a text format (JSON is each command's own).
fn emit(ctx: &Context, fmt: TableFormat, t: &Table) -> anyhow::Result<()> {
    match fmt {
        TableFormat::Csv => ctx.out.csv(t)?,
        TableFormat::Md => ctx.out.data(t.to_markdown())?,
        TableFormat::Latex => ctx.out.data(t.to_latex())?,
        TableFormat::Table | TableFormat::Json => ctx.out.table_blocks(t, terminal_width())?,
    }
    Ok(())
}

/// Key patterns (`val_*`, `rank`); `None` when none were given (everything matches).
struct Globs(Option<Vec<glob::Pattern>>);

impl Globs {
    fn new(patterns: &[String], prefix: &str) -> anyhow::Result<Self> {
        if patterns.is_empty() {
            return Ok(Globs(None));
        }
        let p = patterns
            .iter()
            .map(|s| {
                let s = s.trim();
                glob::Pattern::new(s.strip_prefix(prefix).unwrap_or(s))
                    .with_context(|| format!("`{s}` is not a valid key pattern"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Globs(Some(p)))
    }

    fn matches(&self, key: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|ps| ps.iter().any(|p| p.matches(key)))
    }
}

/// A metric value at full precision, as `mlflow.search_runs` gives it: the shortest text that
/// reads back to the same float, with an exponent for very small or large values (`3.2e-56`).
fn full(v: f64) -> String {
    format!("{v:?}")
}

/// What a column or grouping key names in a run.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Attr(&'static str),
    Param(String),
    Metric(String),
    Tag(String),
}

impl Field {
    /// Parses `run_id`, `params.rank`, `metrics.val_rmse`, `tags.x`; `None` for anything else.
    fn parse(s: &str) -> Option<Field> {
        const ATTRS: [&str; 8] = [
            "run_id",
            "name",
            "run_name",
            "status",
            "start_time",
            "end_time",
            "parent",
            "experiment_id",
        ];
        if let Some(a) = ATTRS.iter().find(|a| **a == s) {
            return Some(Field::Attr(if *a == "run_name" { "name" } else { a }));
        }
        if let Some(k) = s.strip_prefix("params.") {
            return Some(Field::Param(k.to_string()));
        }
        if let Some(k) = s.strip_prefix("metrics.") {
            return Some(Field::Metric(k.to_string()));
        }
        s.strip_prefix("tags.").map(|k| Field::Tag(k.to_string()))
    }

    fn text(&self, run: &Run) -> Option<String> {
        let time = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        };
        match self {
            Field::Attr("run_id") => Some(run.info.run_id.clone()),
            Field::Attr("name") => Some(run.info.run_name.clone()),
            Field::Attr("status") => Some(run.info.status.to_string()),
            Field::Attr("start_time") => time(run.info.start_time),
            Field::Attr("end_time") => run.info.end_time.and_then(time),
            Field::Attr("parent") => run.parent_run_id().map(str::to_string),
            Field::Attr("experiment_id") => Some(run.info.experiment_id.clone()),
            Field::Attr(_) => None,
            Field::Param(k) => run.params.get(k).cloned(),
            Field::Metric(k) => run.metric(k).map(full),
            Field::Tag(k) => run.tags.get(k).cloned(),
        }
    }

    fn json(&self, run: &Run) -> serde_json::Value {
        match self {
            Field::Metric(k) => run
                .metric(k)
                .map_or(serde_json::Value::Null, serde_json::Value::from),
            f => f
                .text(run)
                .map_or(serde_json::Value::Null, serde_json::Value::from),
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

/// Every key of `kind` (`params.`, `metrics.`, `tags.`) the runs have.
fn keys_of(runs: &[Run], kind: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in runs {
        match kind {
            "params." => out.extend(r.params.keys().cloned()),
            "metrics." => out.extend(r.metrics.keys().cloned()),
            _ => out.extend(r.tags.keys().cloned()),
        }
    }
    out
}

/// The columns asked for, globs expanded against the runs' keys; a column no run has is an
/// error naming the nearest key.
fn expand_columns(runs: &[Run], asked: &[String]) -> anyhow::Result<Vec<(String, Field)>> {
    let mut out: Vec<(String, Field)> = Vec::new();
    for c in asked.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        let Some((kind, rest)) = ["params.", "metrics.", "tags."]
            .into_iter()
            .find_map(|k| c.strip_prefix(k).map(|r| (k, r)))
        else {
            match Field::parse(c) {
                Some(f) => out.push((c.to_string(), f)),
                None => bail!(
                    "unknown column `{c}`\nhint: columns are run_id, name, status, start_time, end_time, parent, experiment_id, or params.<key>, metrics.<key>, tags.<key> (globs allowed: `metrics.val_*`)"
                ),
            }
            continue;
        };
        let have = keys_of(runs, kind);
        if rest.contains(['*', '?', '[']) {
            let p = glob::Pattern::new(rest)
                .with_context(|| format!("`{c}` is not a valid column pattern"))?;
            let hits: Vec<&String> = have.iter().filter(|k| p.matches(k)).collect();
            if hits.is_empty() && !runs.is_empty() {
                bail!("no run has a key matching `{c}`");
            }
            for k in hits {
                let name = format!("{kind}{k}");
                let f = Field::parse(&name).unwrap_or(Field::Attr(""));
                out.push((name, f));
            }
        } else {
            if !runs.is_empty() && !have.contains(rest) {
                let near = have
                    .iter()
                    .map(|k| (strsim::jaro_winkler(k, rest), k))
                    .filter(|(s, _)| *s > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, k)| format!("\nhint: did you mean `{kind}{k}`?"))
                    .unwrap_or_default();
                bail!("no run found has the column `{c}`{near}");
            }
            out.push((c.to_string(), Field::parse(c).unwrap_or(Field::Attr(""))));
        }
    }
    Ok(out)
}

/// The default metric columns of `runs list`: the selection-style figures present, split-named.
fn default_columns(runs: &[Run]) -> Vec<(String, Field)> {
    let mut cols: Vec<(String, Field)> = ["run_id", "name", "status", "start_time"]
        .iter()
        .map(|c| (c.to_string(), Field::parse(c).unwrap_or(Field::Attr(""))))
        .collect();
    let have = keys_of(runs, "metrics.");
    let wanted = [
        "val_rmse",
        "test_rmse",
        "val_ndcg_at_10",
        "test_ndcg_at_10",
        "best.test_rmse",
        "best.test_ndcg_at_10",
    ];
    for m in wanted.iter().filter(|m| have.contains(**m)) {
        cols.push((format!("metrics.{m}"), Field::Metric(m.to_string())));
    }
    cols
}

/// `runs` with each child right after its parent (when both are there), parents in the order
/// found; with the depth of each.
fn as_tree(runs: Vec<Run>) -> Vec<(usize, Run)> {
    let ids: BTreeSet<String> = runs.iter().map(|r| r.info.run_id.clone()).collect();
    let mut children: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    let mut top = Vec::new();
    for r in runs {
        match r.parent_run_id() {
            Some(p) if ids.contains(p) => children.entry(p.to_string()).or_default().push(r),
            _ => top.push(r),
        }
    }
    let mut out = Vec::new();
    for r in top {
        let kids = children.remove(&r.info.run_id).unwrap_or_default();
        out.push((0, r));
        // Children in start order, as the search found them (newest first by default).
        out.extend(kids.into_iter().map(|k| (1, k)));
    }
    out
}

fn list(ctx: &Context, a: &RunsListArgs) -> anyhow::Result<()> {
    let t = open(ctx, &a.store)?;
    let ids = experiment_ids(t.as_ref(), a.experiment.as_deref())?;
    let mut runs = t.search_runs(&RunQuery {
        experiment_ids: ids,
        filter: a.filter.clone(),
        order_by: a.order_by.clone(),
        // Children are dropped after the search: fetch what is needed for `max` parents.
        max_results: if a.parents_only {
            usize::MAX
        } else {
            a.max_results
        },
    })?;
    if a.parents_only {
        runs.retain(|r| r.parent_run_id().is_none());
        runs.truncate(a.max_results);
    }
    let cols = if a.columns.is_empty() {
        default_columns(&runs)
    } else {
        expand_columns(&runs, &a.columns)?
    };
    let fmt = format_of(ctx, &a.store);
    if fmt == TableFormat::Json {
        if a.columns.is_empty() {
            return Ok(ctx.out.json(&runs)?);
        }
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = runs
            .iter()
            .map(|r| cols.iter().map(|(n, f)| (n.clone(), f.json(r))).collect())
            .collect();
        return Ok(ctx.out.json(&rows)?);
    }
    let tree = if a.flat || fmt != TableFormat::Table {
        runs.into_iter().map(|r| (0, r)).collect()
    } else {
        as_tree(runs)
    };
    let mut table = Table::new(cols.iter().map(|(n, _)| n.clone())).keep([0]);
    for (depth, r) in &tree {
        table.push(cols.iter().map(|(_, f)| {
            let v = f.text(r).unwrap_or_default();
            match f {
                // Tables show 4 decimals; CSV and the other formats keep every digit.
                Field::Metric(k) if fmt == TableFormat::Table => {
                    r.metric(k).map(fmt_value).unwrap_or_default()
                }
                Field::Attr("name") if *depth > 0 => format!("└ {v}"),
                _ => v,
            }
        }));
    }
    emit(ctx, fmt, &table)
}

/// `show` and `best` print lines or JSON: a table format is refused rather than ignored.
fn text_or_json(ctx: &Context, store: &StoreArgs, command: &str) -> anyhow::Result<()> {
    match format_of(ctx, store) {
        TableFormat::Table | TableFormat::Json => Ok(()),
        _ => bail!("`{command}` prints text or JSON (`--json`); `--csv` and `--format` apply to list, compare and pivot"),
    }
}

fn show(ctx: &Context, run_id: &str, store: &StoreArgs) -> anyhow::Result<()> {
    text_or_json(ctx, store, "runs show")?;
    let t = open(ctx, store)?;
    let run = resolve_run(t.as_ref(), run_id)?;
    let run_id = run.info.run_id.as_str();
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
        ctx.out.line(format!("  {k} = {}", fmt_value(m.value)))?;
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

/// The runs `compare` works on: the ids given (prefixes resolved), then `--children-of`'s.
fn compared_runs(t: &dyn Tracker, a: &RunsCompareArgs) -> anyhow::Result<Vec<Run>> {
    let mut runs: Vec<Run> = a
        .run_ids
        .iter()
        .map(|id| resolve_run(t, id))
        .collect::<anyhow::Result<_>>()?;
    if let Some(p) = &a.children_of {
        let parent = resolve_run(t, p)?;
        let mut kids = t.search_runs(&RunQuery {
            experiment_ids: vec![parent.info.experiment_id.clone()],
            filter: Some(format!(
                "tags.`mlflow.parentRunId` = '{}'",
                parent.info.run_id
            )),
            order_by: vec![],
            max_results: usize::MAX,
        })?;
        // Oldest first: the order the search fitted them; runs named already are not repeated.
        kids.sort_by_key(|r| (r.info.start_time, r.info.run_id.clone()));
        kids.retain(|k| !runs.iter().any(|r| r.info.run_id == k.info.run_id));
        if kids.is_empty() {
            bail!(
                "run {} ({}) has no child runs",
                parent.info.run_id,
                parent.info.run_name
            );
        }
        runs.extend(kids);
    }
    if runs.len() < 2 {
        bail!("compare needs at least two runs\nhint: give two or more run ids (prefixes work), or `--children-of PARENT`");
    }
    Ok(runs)
}

/// One row of a side-by-side comparison.
struct Row {
    key: String,
    /// Params and tags as text.
    text: Vec<Option<String>>,
    /// Metrics as numbers.
    num: Vec<Option<f64>>,
    metric: bool,
}

impl Row {
    fn differs(&self) -> bool {
        if self.metric {
            let first = self.num.first().copied().flatten();
            self.num.iter().any(|v| *v != first)
        } else {
            let first = self.text.first().cloned().flatten();
            self.text.iter().any(|v| *v != first)
        }
    }
}

fn compare(ctx: &Context, a: &RunsCompareArgs) -> anyhow::Result<()> {
    let t = open(ctx, &a.store)?;
    let runs = compared_runs(t.as_ref(), a)?;
    let fmt = format_of(ctx, &a.store);
    if a.significance {
        return significance(ctx, t.as_ref(), &runs, a, fmt);
    }
    if !a.group_by.is_empty() {
        return grouped(ctx, &runs, a, fmt);
    }
    let (pglob, mglob) = (
        Globs::new(&a.params, "params.")?,
        Globs::new(&a.metrics, "metrics.")?,
    );
    let mut rows: Vec<Row> = Vec::new();
    for p in keys_of(&runs, "params.")
        .into_iter()
        .filter(|k| pglob.matches(k))
    {
        rows.push(Row {
            key: format!("params.{p}"),
            text: runs.iter().map(|r| r.params.get(&p).cloned()).collect(),
            num: Vec::new(),
            metric: false,
        });
    }
    for m in keys_of(&runs, "metrics.")
        .into_iter()
        .filter(|k| mglob.matches(k))
    {
        rows.push(Row {
            key: format!("metrics.{m}"),
            text: Vec::new(),
            num: runs.iter().map(|r| r.metric(&m)).collect(),
            metric: true,
        });
    }
    if rows.is_empty() && (!a.params.is_empty() || !a.metrics.is_empty()) {
        bail!("no param or metric of these runs matches `--params`/`--metrics`");
    }
    let same = rows.iter().filter(|r| !r.differs()).count();
    if a.diff_only {
        rows.retain(Row::differs);
    }
    if a.long {
        return long_form(ctx, &runs, &rows, fmt);
    }
    match fmt {
        TableFormat::Json | TableFormat::Csv => {
            // One row per run, as `mlflow.search_runs` gives them: full precision, no markers.
            let mut header = vec!["run_id".to_string(), "run_name".to_string()];
            header.extend(rows.iter().map(|r| r.key.clone()));
            if fmt == TableFormat::Json {
                let out: Vec<serde_json::Value> = runs
                    .iter()
                    .enumerate()
                    .map(|(i, run)| {
                        let mut params = serde_json::Map::new();
                        let mut metrics = serde_json::Map::new();
                        for r in &rows {
                            if r.metric {
                                if let Some(v) = r.num[i] {
                                    metrics.insert(r.key["metrics.".len()..].into(), v.into());
                                }
                            } else if let Some(v) = &r.text[i] {
                                params.insert(r.key["params.".len()..].into(), v.clone().into());
                            }
                        }
                        serde_json::json!({
                            "run_id": run.info.run_id,
                            "run_name": run.info.run_name,
                            "params": params,
                            "metrics": metrics,
                        })
                    })
                    .collect();
                return Ok(ctx.out.json(&out)?);
            }
            let mut table = Table::new(header);
            for (i, run) in runs.iter().enumerate() {
                let mut cells = vec![run.info.run_id.clone(), run.info.run_name.clone()];
                cells.extend(rows.iter().map(|r| {
                    if r.metric {
                        r.num[i].map(full).unwrap_or_default()
                    } else {
                        r.text[i].clone().unwrap_or_default()
                    }
                }));
                table.push(cells);
            }
            emit(ctx, fmt, &table)
        }
        _ => {
            let md = fmt != TableFormat::Table;
            let mut header = vec![String::from(if md { "key" } else { "" })];
            header.extend(runs.iter().map(|r| short_id(&r.info.run_id).to_string()));
            let mut table = Table::new(header).keep([0]);
            let mut names = vec![String::from("run name")];
            // Long names would widen every run column: the params rows carry the values.
            names.extend(runs.iter().map(|r| {
                let n = &r.info.run_name;
                if md || n.chars().count() <= RUN_NAME_CELL {
                    n.clone()
                } else {
                    let cut: String = n.chars().take(RUN_NAME_CELL - 1).collect();
                    format!("{cut}…")
                }
            }));
            table.push(names);
            for r in &rows {
                let mut cells = Vec::with_capacity(runs.len() + 1);
                if r.metric {
                    let best = best_value(&r.num, keys::direction(&r.key["metrics.".len()..]));
                    cells.push(if md {
                        r.key.clone()
                    } else {
                        format!("  {}", r.key)
                    });
                    cells.extend(r.num.iter().map(|v| match v {
                        Some(x) if Some(*x) == best && md => format!("**{}**", fmt_value(*x)),
                        Some(x) if Some(*x) == best => format!("{} *", fmt_value(*x)),
                        Some(x) => fmt_value(*x),
                        None => String::new(),
                    }));
                } else {
                    cells.push(match (md, r.differs()) {
                        (true, _) => r.key.clone(),
                        (false, true) => format!("≠ {}", r.key),
                        (false, false) => format!("  {}", r.key),
                    });
                    cells.extend(r.text.iter().map(|v| v.clone().unwrap_or_default()));
                }
                table.push(cells);
            }
            emit(ctx, fmt, &table)?;
            if fmt == TableFormat::Table {
                let mut legend = String::from(
                    "(≠ params differ; * best value of the metric in its direction, none when all are equal",
                );
                if same > 0 && !a.diff_only {
                    legend.push_str(&format!(
                        "; {same} row{} the same in every run, `--diff-only` hides {}",
                        if same == 1 { " is" } else { "s are" },
                        if same == 1 { "it" } else { "them" }
                    ));
                }
                legend.push(')');
                ctx.out.line(legend)?;
            }
            Ok(())
        }
    }
}

/// Characters of a run name shown in a side-by-side table's header row.
const RUN_NAME_CELL: usize = 22;

fn short_id(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// `--long`: one line per (run, key, value).
fn long_form(ctx: &Context, runs: &[Run], rows: &[Row], fmt: TableFormat) -> anyhow::Result<()> {
    if fmt == TableFormat::Json {
        let mut out = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            for r in rows {
                let value = if r.metric {
                    r.num[i].map(serde_json::Value::from)
                } else {
                    r.text[i].clone().map(serde_json::Value::from)
                };
                if let Some(v) = value {
                    out.push(serde_json::json!({
                        "run_id": run.info.run_id, "run_name": run.info.run_name,
                        "key": r.key, "value": v,
                    }));
                }
            }
        }
        return Ok(ctx.out.json(&out)?);
    }
    let mut table = Table::new(["run_id", "run_name", "key", "value"]);
    for (i, run) in runs.iter().enumerate() {
        for r in rows {
            let v = if r.metric {
                r.num[i].map(if fmt == TableFormat::Table {
                    fmt_value
                } else {
                    full
                })
            } else {
                r.text[i].clone()
            };
            if let Some(v) = v {
                table.push([
                    run.info.run_id.clone(),
                    run.info.run_name.clone(),
                    r.key.clone(),
                    v,
                ]);
            }
        }
    }
    emit(ctx, fmt, &table)
}

/// The value to mark in a row: the best in the metric's direction, and only when the metric's
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

fn mean_sd(v: &[f64]) -> (f64, Option<f64>) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.len() > 1)
        .then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, sd)
}

/// `--group-by`: runs sharing the values of the grouping keys, each metric's mean ± sd (n - 1)
/// and the count.
fn grouped(
    ctx: &Context,
    runs: &[Run],
    a: &RunsCompareArgs,
    fmt: TableFormat,
) -> anyhow::Result<()> {
    let by: Vec<(String, Field)> = a
        .group_by
        .iter()
        .map(|g| {
            let g = g.trim();
            match Field::parse(g) {
                Some(f @ (Field::Param(_) | Field::Tag(_))) => Ok((g.to_string(), f)),
                _ => Err(anyhow::anyhow!(
                    "`--group-by {g}`: group by params or tags (`params.rank`, `tags.recflow.entry`)"
                )),
            }
        })
        .collect::<anyhow::Result<_>>()?;
    for (name, f) in &by {
        if runs.iter().all(|r| f.text(r).is_none()) {
            bail!("none of the compared runs has `{name}`");
        }
    }
    let mglob = Globs::new(&a.metrics, "metrics.")?;
    let metrics: Vec<String> = keys_of(runs, "metrics.")
        .into_iter()
        .filter(|k| mglob.matches(k))
        .collect();
    let mut groups: BTreeMap<Vec<String>, Vec<&Run>> = BTreeMap::new();
    for r in runs {
        let key: Vec<String> = by
            .iter()
            .map(|(_, f)| f.text(r).unwrap_or_default())
            .collect();
        groups.entry(key).or_default().push(r);
    }
    // Numbers sort as numbers (rank 8 before rank 16).
    let mut groups: Vec<(Vec<String>, Vec<&Run>)> = groups.into_iter().collect();
    groups.sort_by(|x, y| {
        for (p, q) in x.0.iter().zip(&y.0) {
            let o = match (p.parse::<f64>(), q.parse::<f64>()) {
                (Ok(p), Ok(q)) => p.total_cmp(&q),
                _ => p.cmp(q),
            };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    let stats = |rs: &[&Run], m: &str| -> Option<(f64, Option<f64>, usize)> {
        let v: Vec<f64> = rs.iter().filter_map(|r| r.metric(m)).collect();
        (!v.is_empty()).then(|| {
            let (mean, sd) = mean_sd(&v);
            (mean, sd, v.len())
        })
    };
    if fmt == TableFormat::Json {
        let out: Vec<serde_json::Value> = groups
            .iter()
            .map(|(key, rs)| {
                let mut o = serde_json::Map::new();
                for ((name, _), v) in by.iter().zip(key) {
                    o.insert(name.clone(), v.clone().into());
                }
                o.insert("runs".into(), rs.len().into());
                let mut ms = serde_json::Map::new();
                for m in &metrics {
                    if let Some((mean, sd, n)) = stats(rs, m) {
                        ms.insert(
                            m.clone(),
                            serde_json::json!({ "mean": mean, "sd": sd, "n": n }),
                        );
                    }
                }
                o.insert("metrics".into(), ms.into());
                serde_json::Value::Object(o)
            })
            .collect();
        return Ok(ctx.out.json(&out)?);
    }
    let plain = matches!(fmt, TableFormat::Csv);
    let mut header: Vec<String> = by.iter().map(|(n, _)| n.clone()).collect();
    header.push("runs".into());
    for m in &metrics {
        if plain {
            header.push(format!("metrics.{m}.mean"));
            header.push(format!("metrics.{m}.sd"));
        } else {
            header.push(format!("metrics.{m}"));
        }
    }
    let first_metric = by.len() + 1;
    let mut table = Table::new(header)
        .keep(0..by.len())
        .right(first_metric..first_metric + metrics.len() * 2);
    // The best mean of each metric, marked in the metric's direction.
    let best: Vec<Option<f64>> = metrics
        .iter()
        .map(|m| {
            let means: Vec<Option<f64>> = groups
                .iter()
                .map(|(_, rs)| stats(rs, m).map(|s| s.0))
                .collect();
            best_value(&means, keys::direction(m))
        })
        .collect();
    for (key, rs) in &groups {
        let mut cells = key.clone();
        cells.push(rs.len().to_string());
        for (m, b) in metrics.iter().zip(&best) {
            let s = stats(rs, m);
            if plain {
                cells.push(s.map(|s| full(s.0)).unwrap_or_default());
                cells.push(s.and_then(|s| s.1).map(full).unwrap_or_default());
                continue;
            }
            let text = match s {
                Some((mean, Some(sd), n)) => {
                    format!("{} ± {} (n={n})", fmt_value(mean), fmt_value(sd))
                }
                Some((mean, None, _)) => fmt_value(mean),
                None => String::new(),
            };
            let is_best = s.is_some_and(|s| Some(s.0) == *b);
            cells.push(match (is_best, fmt) {
                (true, TableFormat::Table) => format!("{text} *"),
                (true, _) => format!("**{text}**"),
                _ => text,
            });
        }
        table.push(cells);
    }
    emit(ctx, fmt, &table)?;
    if fmt == TableFormat::Table {
        ctx.out.line(format!(
            "({} runs in {} groups; mean ± sd over the runs of a group, n - 1; * best mean in the metric's direction)",
            runs.len(),
            groups.len()
        ))?;
    }
    Ok(())
}

/// One run's per-user values of a metric, users by original id.
fn per_user_values(
    t: &dyn Tracker,
    run: &Run,
    column: &str,
    scratch: &std::path::Path,
) -> anyhow::Result<BTreeMap<String, f64>> {
    use polars::prelude::{ParquetReader, SerReader};
    const ARTIFACT: &str = "eval/per_user_test.parquet";
    let dest = scratch.join(&run.info.run_id);
    std::fs::create_dir_all(&dest)?;
    t.download_artifacts(&run.info.run_id, Some(ARTIFACT), &dest)
        .map_err(|e| {
            anyhow::anyhow!(
                "run {} ({}) has no per-user figures ({ARTIFACT}): {e}\nhint: per-user figures are logged for each entry's final model (tag recflow.role = final) by `recflow run`",
                run.info.run_id,
                run.info.run_name
            )
        })?;
    let path = [dest.join(ARTIFACT), dest.join("per_user_test.parquet")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("run {}: {ARTIFACT} was not downloaded", run.info.run_id))?;
    let file = std::fs::File::open(&path)?;
    let df = ParquetReader::new(file)
        .finish()
        .with_context(|| format!("run {}: {ARTIFACT} is not readable", run.info.run_id))?;
    let cols: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let values = df.column(column).map_err(|_| {
        anyhow::anyhow!(
            "run {} has no per-user `{column}` (it has: {})",
            run.info.run_id,
            cols.join(", ")
        )
    })?;
    let values = values
        .cast(&polars::prelude::DataType::Float64)
        .with_context(|| {
            format!(
                "run {}: per-user `{column}` is not numeric",
                run.info.run_id
            )
        })?;
    let users = df
        .column("user_id")
        .with_context(|| format!("run {}: {ARTIFACT} has no user_id", run.info.run_id))?;
    let users = users
        .str()
        .with_context(|| format!("run {}: user_id in {ARTIFACT} is not text", run.info.run_id))?;
    let values = values.f64()?;
    Ok(users
        .iter()
        .zip(values.iter())
        .filter_map(|(u, v)| Some((u?.to_string(), v?)))
        .collect())
}

/// `--significance`: each run against the first, over the test users both were evaluated on.
fn significance(
    ctx: &Context,
    t: &dyn Tracker,
    runs: &[Run],
    a: &RunsCompareArgs,
    fmt: TableFormat,
) -> anyhow::Result<()> {
    let fps: Vec<Option<&String>> = runs
        .iter()
        .map(|r| r.tags.get(tracking::TAG_SPLIT_FINGERPRINT))
        .collect();
    if let Some(i) = fps.iter().position(Option::is_none) {
        bail!(
            "run {} ({}) records no test split (tag {}), so its users cannot be paired with another run's\nhint: compare final models (tag recflow.role = final) of `recflow run`",
            runs[i].info.run_id,
            runs[i].info.run_name,
            tracking::TAG_SPLIT_FINGERPRINT
        );
    }
    if let Some(i) = fps.iter().position(|f| *f != fps[0]) {
        bail!(
            "runs {} ({}) and {} ({}) were evaluated on different test splits ({} vs {}): their per-user figures do not pair\nhint: compare runs of one data set, split and seed",
            runs[0].info.run_id,
            runs[0].info.run_name,
            runs[i].info.run_id,
            runs[i].info.run_name,
            fps[0].map_or("", |s| s.as_str()),
            fps[i].map_or("", |s| s.as_str())
        );
    }
    let key = match &a.metric {
        Some(m) => m.strip_prefix("metrics.").unwrap_or(m).to_string(),
        None => {
            let shared: BTreeSet<String> = runs
                .iter()
                .map(|r| r.metrics.keys().cloned().collect::<BTreeSet<_>>())
                .reduce(|x, y| x.intersection(&y).cloned().collect())
                .unwrap_or_default();
            let ranking = |k: &&String| {
                MetricKey::parse(k).is_some_and(|m| {
                    m.split == Some(Split::Test)
                        && m.info.per_user
                        && m.info.kind == keys::Kind::Ranking
                        && m.suffix.is_none()
                        && m.namespace.is_none()
                })
            };
            if shared.contains("test_ndcg_at_10") {
                "test_ndcg_at_10".to_string()
            } else if let Some(k) = shared.iter().find(ranking) {
                k.clone()
            } else {
                // Name a run that has none: usually a parent, whose figures are `best.` keys.
                let lacking = runs
                    .iter()
                    .find(|r| !r.metrics.keys().any(|k| ranking(&k)))
                    .unwrap_or(&runs[0]);
                bail!(
                    "run {} ({}) has no test ranking metric of its own to pair{}\nhint: compare final models: `recflow runs list --filter \"tags.`recflow.role` = 'final'\"` lists them",
                    lacking.info.run_id,
                    lacking.info.run_name,
                    if lacking.parent_run_id().is_none() {
                        " (a parent run: its figures are its winner's, under `best.` keys)"
                    } else {
                        ""
                    }
                );
            }
        }
    };
    let parsed = MetricKey::parse(&key).ok_or_else(|| {
        anyhow::anyhow!("`{key}` is not a metric recflow knows\nhint: use a test ranking metric such as test_ndcg_at_10")
    })?;
    if parsed.split != Some(Split::Test) || parsed.suffix.is_some() || parsed.namespace.is_some() {
        bail!("`--significance` pairs per-user test figures: give a `test_` key such as test_ndcg_at_10, not `{key}`");
    }
    if parsed.info.kind != keys::Kind::Ranking || !parsed.info.per_user {
        bail!("`{key}` is not a mean over users, so a paired test of it is not offered\nhint: compare a ranking metric (test_ndcg_at_10, test_recall_at_10)");
    }
    let column = parsed.plain();
    let scratch = tempfile::tempdir()?;
    let values: Vec<BTreeMap<String, f64>> = runs
        .iter()
        .map(|r| per_user_values(t, r, &column, scratch.path()))
        .collect::<anyhow::Result<_>>()?;
    let boot = Bootstrap {
        resamples: a.resamples.max(1),
        seed: a.seed,
    };
    let reference = &values[0];
    struct Cmp {
        run: usize,
        p: crate::eval::stats::Paired,
    }
    let mut cmps = Vec::new();
    for (i, v) in values.iter().enumerate().skip(1) {
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for (u, x) in v {
            if let Some(y) = reference.get(u) {
                xs.push(*x);
                ys.push(*y);
            }
        }
        let p = paired(&xs, &ys, boot).ok_or_else(|| {
            anyhow::anyhow!(
                "runs {} and {} share {} evaluated users: too few to compare",
                short_id(&runs[0].info.run_id),
                short_id(&runs[i].info.run_id),
                xs.len()
            )
        })?;
        cmps.push(Cmp { run: i, p });
    }
    let t_holm = holm(&cmps.iter().map(|c| c.p.t_p).collect::<Vec<_>>());
    let w_holm = holm(&cmps.iter().map(|c| c.p.wilcoxon_p).collect::<Vec<_>>());
    let m = cmps.len();
    let real = |c: &Cmp, tp: f64| c.p.ci.is_some_and(|ci| !ci.contains(0.0)) && tp < 0.05;
    let label = |r: &Run| format!("{} ({})", short_id(&r.info.run_id), r.info.run_name);
    if fmt == TableFormat::Json {
        let out: Vec<serde_json::Value> = cmps
            .iter()
            .zip(t_holm.iter().zip(&w_holm))
            .map(|(c, (tp, wp))| {
                serde_json::json!({
                    "run_id": runs[c.run].info.run_id,
                    "reference_run_id": runs[0].info.run_id,
                    "metric": key,
                    "users": c.p.users,
                    "mean_diff": c.p.mean_diff,
                    "ci_low": c.p.ci.map(|x| x.low),
                    "ci_high": c.p.ci.map(|x| x.high),
                    "t": c.p.t,
                    "t_p": c.p.t_p,
                    "t_p_holm": tp,
                    "wilcoxon": c.p.wilcoxon,
                    "wilcoxon_p": c.p.wilcoxon_p,
                    "wilcoxon_p_holm": wp,
                    "effect_size": c.p.effect_size,
                    "comparisons": m,
                    "resamples": boot.resamples,
                    "seed": boot.seed,
                    "real": real(c, *tp),
                })
            })
            .collect();
        return Ok(ctx.out.json(&out)?);
    }
    let plain = fmt == TableFormat::Csv;
    let num = |x: f64| if plain { full(x) } else { format!("{x:+.4}") };
    let pval = |x: f64| if plain { full(x) } else { format!("{x:.2e}") };
    let mut table = Table::new([
        "run",
        "minus",
        "users",
        "mean diff",
        "95% CI low",
        "95% CI high",
        "t p (Holm)",
        "Wilcoxon p (Holm)",
        "effect size",
        "verdict",
    ])
    .keep([0])
    .right(2..9);
    for (c, (tp, wp)) in cmps.iter().zip(t_holm.iter().zip(&w_holm)) {
        table.push([
            if plain {
                runs[c.run].info.run_id.clone()
            } else {
                label(&runs[c.run])
            },
            if plain {
                runs[0].info.run_id.clone()
            } else {
                label(&runs[0])
            },
            c.p.users.to_string(),
            num(c.p.mean_diff),
            c.p.ci.map(|x| num(x.low)).unwrap_or_default(),
            c.p.ci.map(|x| num(x.high)).unwrap_or_default(),
            pval(*tp),
            pval(*wp),
            if plain {
                full(c.p.effect_size)
            } else {
                format!("{:.2}", c.p.effect_size)
            },
            if real(c, *tp) { "real" } else { "within noise" }.to_string(),
        ]);
    }
    if fmt == TableFormat::Table {
        ctx.out.line(format!(
            "{key}, user by user, each run minus {}:",
            label(&runs[0])
        ))?;
    }
    emit(ctx, fmt, &table)?;
    if fmt == TableFormat::Table {
        ctx.out.line(format!(
            "(paired over the test users both runs were evaluated on; 95% percentile bootstrap over users, {} resamples, seed {}; p values Holm-corrected over {m} comparison{}; real = the interval excludes 0 and the corrected paired t p < 0.05; formulas in docs/statistics.md)",
            boot.resamples,
            boot.seed,
            if m == 1 { "" } else { "s" }
        ))?;
    }
    Ok(())
}

/// `runs pivot`: one metric over two params or tags.
fn pivot(ctx: &Context, a: &RunsPivotArgs) -> anyhow::Result<()> {
    let axis = |s: &str, flag: &str| -> anyhow::Result<Field> {
        match Field::parse(s.trim()) {
            Some(f @ (Field::Param(_) | Field::Tag(_))) => Ok(f),
            _ => bail!("`--{flag} {s}`: use a param or tag (`params.rank`, `tags.recflow.entry`)"),
        }
    };
    let (rf, cf) = (axis(&a.rows, "rows")?, axis(&a.cols, "cols")?);
    let metric = a.value.trim();
    let metric = metric
        .strip_prefix("metrics.")
        .unwrap_or(metric)
        .to_string();
    let t = open(ctx, &a.store)?;
    let ids = experiment_ids(t.as_ref(), Some(&a.experiment))?;
    let runs = t.search_runs(&RunQuery {
        experiment_ids: ids,
        filter: a.filter.clone(),
        order_by: vec![],
        max_results: usize::MAX,
    })?;
    let mut cells: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in &runs {
        if let (Some(x), Some(y), Some(v)) = (rf.text(r), cf.text(r), r.metric(&metric)) {
            cells.entry((x, y)).or_default().push(v);
        }
    }
    if cells.is_empty() {
        bail!(
            "no run of `{}` has `{}`, `{}` and `metrics.{metric}`",
            a.experiment,
            a.rows,
            a.cols
        );
    }
    let order = |vals: BTreeSet<String>| -> Vec<String> {
        let mut v: Vec<String> = vals.into_iter().collect();
        v.sort_by(|p, q| match (p.parse::<f64>(), q.parse::<f64>()) {
            (Ok(p), Ok(q)) => p.total_cmp(&q),
            _ => p.cmp(q),
        });
        v
    };
    let rows = order(cells.keys().map(|k| k.0.clone()).collect());
    let cols = order(cells.keys().map(|k| k.1.clone()).collect());
    let agg = |v: &[f64]| -> f64 {
        match a.agg {
            PivotAgg::Mean => v.iter().sum::<f64>() / v.len() as f64,
            PivotAgg::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
            PivotAgg::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            PivotAgg::Count => v.len() as f64,
        }
    };
    let value = |r: &String, c: &String| cells.get(&(r.clone(), c.clone())).map(|v| agg(v));
    let fmt = format_of(ctx, &a.store);
    if fmt == TableFormat::Json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .flat_map(|r| cols.iter().map(move |c| (r, c)))
            .filter_map(|(r, c)| {
                let n = cells.get(&(r.clone(), c.clone()))?.len();
                Some(serde_json::json!({
                    a.rows.as_str(): r, a.cols.as_str(): c, "value": value(r, c), "runs": n,
                }))
            })
            .collect();
        return Ok(ctx.out.json(&out)?);
    }
    let all: Vec<Option<f64>> = rows
        .iter()
        .flat_map(|r| cols.iter().map(move |c| value(r, c)))
        .collect();
    let best = if a.agg == PivotAgg::Count {
        None
    } else {
        best_value(&all, keys::direction(&metric))
    };
    let mut header = vec![format!("{} \\ {}", a.rows, a.cols)];
    header.extend(cols.iter().cloned());
    let mut table = Table::new(header).keep([0]).right(1..cols.len() + 1);
    for r in &rows {
        let mut line = vec![r.clone()];
        for c in &cols {
            line.push(match value(r, c) {
                None => String::new(),
                Some(v) if fmt == TableFormat::Csv => full(v),
                Some(v) if Some(v) == best && fmt == TableFormat::Table => {
                    format!("{} *", fmt_value(v))
                }
                Some(v) if Some(v) == best => format!("**{}**", fmt_value(v)),
                Some(v) => fmt_value(v),
            });
        }
        table.push(line);
    }
    emit(ctx, fmt, &table)?;
    if fmt == TableFormat::Table {
        let how = match a.agg {
            PivotAgg::Mean => "mean",
            PivotAgg::Min => "min",
            PivotAgg::Max => "max",
            PivotAgg::Count => "count",
        };
        ctx.out.line(format!(
            "(metrics.{metric}, {how} over the runs of a cell; * best in the metric's direction)"
        ))?;
    }
    Ok(())
}

fn best(
    ctx: &Context,
    experiment: &str,
    metric: &str,
    forced: Option<Direction>,
    store: &StoreArgs,
) -> anyhow::Result<()> {
    text_or_json(ctx, store, "runs best")?;
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
        run.metric(metric).map(fmt_value).unwrap_or_default()
    ))?;
    Ok(())
}

pub fn run_experiments(ctx: &Context, c: &ExperimentsCommand) -> anyhow::Result<()> {
    let ExperimentsCommand::List(store) = c;
    let t = open(ctx, store)?;
    let exps = t.list_experiments()?;
    let fmt = format_of(ctx, store);
    if fmt == TableFormat::Json {
        return Ok(ctx.out.json(&exps)?);
    }
    let mut table = Table::new(["experiment_id", "name", "created"]);
    for e in &exps {
        table.push([
            e.experiment_id.clone(),
            e.name.clone(),
            e.creation_time
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
        ]);
    }
    emit(ctx, fmt, &table)
}

pub fn run_runs(ctx: &Context, c: &RunsCommand) -> anyhow::Result<()> {
    match c {
        RunsCommand::List(a) => list(ctx, a),
        RunsCommand::Show { run_id, store } => show(ctx, run_id, store),
        RunsCommand::Compare(a) => compare(ctx, a),
        RunsCommand::Pivot(a) => pivot(ctx, a),
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

/// After a sync, the local pointers at copied runs name their copies: the parent id in
/// `artifacts/metrics/mlflow_run_id.txt` and the run id in the saved model's metadata (the
/// default folders `recflow run` writes). Returns what it changed.
fn remap_local_ids(copied: &[(String, String)]) -> anyhow::Result<Vec<String>> {
    use crate::settings::defaults;
    let copy_of = |id: &str| {
        copied
            .iter()
            .find(|(from, _)| from == id)
            .map(|(_, to)| to.clone())
    };
    let mut changed = Vec::new();
    let id_file = std::path::Path::new(defaults::METRICS_DIR).join("mlflow_run_id.txt");
    if let Ok(text) = std::fs::read_to_string(&id_file) {
        if let Some(to) = copy_of(text.trim()) {
            crate::data::store::write_atomic(&id_file, format!("{to}\n").as_bytes())?;
            changed.push(format!("{}: {} -> {to}", id_file.display(), text.trim()));
        }
    }
    let meta_file = std::path::Path::new(defaults::MODEL_DIR).join("metadata.json");
    if let Ok(text) = std::fs::read_to_string(&meta_file) {
        if let Ok(mut meta) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Some(to) = meta["run_id"].as_str().and_then(copy_of) {
                let from = meta["run_id"].as_str().unwrap_or_default().to_string();
                meta["run_id"] = serde_json::json!(to);
                crate::data::store::write_atomic(
                    &meta_file,
                    serde_json::to_vec_pretty(&meta)?.as_slice(),
                )?;
                changed.push(format!("{}: run {from} -> {to}", meta_file.display()));
            }
        }
    }
    Ok(changed)
}

pub fn run_sync(ctx: &Context, a: &SyncArgs) -> anyhow::Result<()> {
    let conn = tracking_connection(&ctx.env);
    // Opening a file store creates it: a source that is not there is a mistake, not 0 runs.
    if let Ok(tracking::TrackingUri::File(path)) = tracking::TrackingUri::parse(&a.from) {
        if !path.is_dir() {
            bail!(
                "`--from {}`: there is no file store at {}\nhint: point `--from` at the folder `recflow run` logged to (`file:./mlruns` by default)",
                a.from,
                path.display()
            );
        }
    }
    let from = tracking::open_tracker(&a.from, &conn)?;
    let to = tracking::open_tracker(&a.to, &conn)?;
    to.ping()?;
    let report = tracking::sync(from.as_ref(), to.as_ref(), a.experiment.as_deref())?;
    for (run, why) in &report.unreadable {
        ctx.out.warn(format!(
            "run `{run}` could not be read and was not copied: {why}"
        ));
    }
    if !report.held_back.is_empty() {
        ctx.out.warn(format!(
            "{} run(s) whose parent could not be read were left for a later sync: {}",
            report.held_back.len(),
            report.held_back.join(", ")
        ));
    }
    for line in remap_local_ids(&report.copied)? {
        tracing::info!("{line}");
    }
    let incomplete = !report.unreadable.is_empty() || !report.held_back.is_empty();
    if ctx.global.json {
        ctx.out.json(&report)?;
        if incomplete {
            bail!(
                "sync incomplete: {} unreadable run(s) in the source",
                report.unreadable.len()
            );
        }
        return Ok(());
    }
    ctx.out.line(format!(
        "copied {} run(s) ({} metric values, {} artifact files, {} models) from {} experiment(s); {} already synced, {} still running (left for later)",
        report.copied.len(),
        report.metric_values,
        report.artifact_files,
        report.models,
        report.experiments,
        report.already_synced,
        report.skipped_running
    ))?;
    if incomplete {
        bail!(
            "sync incomplete: {} unreadable run(s) in the source\nhint: mend or remove the named runs' meta.yaml, then sync again (runs copied already are skipped)",
            report.unreadable.len()
        );
    }
    Ok(())
}
