//! Pieces several commands share (not a command itself): preparing processed data, opening a
//! tracking store, and printing a pipeline's results.

use std::path::{Path, PathBuf};

use crate::commands::{show_path, Context, WithHint};
use crate::data::etl::run_etl;
use crate::data::store::{self, Dataset};
use crate::eval::keys::Split;
use crate::output::{fmt_value, terminal_width, Table};
use crate::pipeline::report::{Leaderboard, Warning};
use crate::pipeline::train::Outcome;
use crate::settings::{DataSource, TrackingTarget};
use crate::tracking::{self, Tracker};

/// Loads the processed data, running the ETL first when the settings say so (never a download).
pub fn load_data(ctx: &Context, source: &DataSource) -> anyhow::Result<(Dataset, PathBuf)> {
    if let DataSource::EtlFirst { etl } = source {
        tracing::info!(
            "no processed data in {}: running the ETL of {} first",
            show_path(&etl.output),
            show_path(&etl.input)
        );
        run_etl(etl, &ctx.progress)?;
    }
    let dir = source.dir().to_path_buf();
    let ds = store::load_dataset(&dir).hint(format!(
        "run `recflow etl --output {}` first, or point `--data` at a folder with its outputs",
        dir.display()
    ))?;
    Ok((ds, dir))
}

/// Opens a tracking store and checks it answers (a server that does not stops us here).
pub fn open_store(target: &TrackingTarget) -> anyhow::Result<Box<dyn Tracker>> {
    let t = tracking::open_tracker(&target.uri, &target.connection)?;
    t.ping()?;
    Ok(t)
}

/// Makes sure `input` exists, downloading it from `url` when one is allowed.
pub fn ensure_input(ctx: &Context, input: &Path, url: Option<&str>) -> anyhow::Result<()> {
    match crate::data::read::check_input(input) {
        Ok(_) => return Ok(()),
        Err(crate::data::read::ReadError::Missing(_)) => {}
        // A link, a folder or a pipe: say what it is, and never download over it.
        Err(e) => return Err(e.into()),
    }
    let Some(url) = url else {
        return Err(anyhow::anyhow!("input file `{}` does not exist", input.display()))
            .hint("check the path, or pass `--download` to fetch RAW_REVIEWS_URL into it (`recflow generate` makes a sample)");
    };
    tracing::info!(
        "{} is missing: downloading {}",
        input.display(),
        tracking::mask_uri(url)
    );
    let report = crate::data::download::download(url, input, &ctx.progress)?;
    tracing::info!("downloaded {} bytes to {}", report.bytes, input.display());
    Ok(())
}

/// Prints the leaderboard, the winner's test figures and the warnings.
pub fn print_results(
    ctx: &Context,
    outcome: &Outcome,
    board: &Leaderboard,
    warnings: &[Warning],
    model_dir: &Path,
) -> anyhow::Result<()> {
    let out = &ctx.out;
    let single = outcome.entries.len() == 1;
    // A search's trials, when there is one entry with several configurations.
    if let Some(o) = outcome
        .entries
        .first()
        .filter(|o| single && o.trials.len() > 1)
    {
        out.line(format!(
            "search ({} configurations, metrics on the {} split):",
            o.trials.len(),
            outcome.selected_on
        ))?;
        let keys: Vec<String> = o.trials[0]
            .metrics
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k.ends_with("_rmse") || k.contains("ndcg_at") || k.contains("precision_at"))
            .collect();
        let mut header = vec!["".to_string(), "config".to_string()];
        header.extend(keys.iter().cloned());
        header.push("fit_s".into());
        let n = header.len();
        let mut t = Table::new(header).right(2..n);
        for (i, tr) in o.trials.iter().enumerate() {
            let mut row = vec![
                if i == o.best { "*" } else { "" }.to_string(),
                crate::pipeline::search::label(&tr.point),
            ];
            for k in &keys {
                row.push(tr.metric(k).map(|v| format!("{v:.4}")).unwrap_or_default());
            }
            row.push(format!("{:.2}", tr.fit_seconds));
            t.push(row);
        }
        out.table(&t, terminal_width())?;
        out.line(format!(
            "  * selected: {} ({})",
            o.select.name,
            o.select.direction.word()
        ))?;
    }
    if !single {
        out.line(format!(
            "leaderboard (selected on {}, {}; test figures of each entry's final model):",
            board.selection_key,
            board.direction.word()
        ))?;
        // People get the headline columns; `leaderboard.csv` and `--json` have every figure.
        let (header, rows) = board.cells(|v| format!("{v:.4}"));
        let shown: Vec<usize> = header
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                *i < 4
                    || h.as_str() == "fit_seconds"
                    || [
                        "test_rmse",
                        "test_ndcg_at",
                        "test_precision_at",
                        "test_recall_at",
                    ]
                    .iter()
                    .any(|p| h.starts_with(p))
            })
            .map(|(i, _)| i)
            .collect();
        let pick = |r: &[String]| -> Vec<String> { shown.iter().map(|&i| r[i].clone()).collect() };
        let n = shown.len();
        let mut t = Table::new(pick(&header))
            .right(3..n)
            .keep((0..n).filter(|&i| i != 2));
        for (i, row) in rows.into_iter().enumerate() {
            let mut r = pick(&row);
            if Some(i) == board.winner {
                r[0] = format!("{} *", r[0]);
            } else if Some(i) == board.best_baseline {
                r[0] = format!("{} (best baseline)", r[0]);
            }
            t.push(r);
        }
        out.table(&t, terminal_width())?;
        if let Some((w, b, d)) = board.versus_baseline() {
            out.line(format!(
                "  * winner `{}`: {} {:+.4} against the best baseline `{}`",
                w.entry, board.selection_key, d, b.entry
            ))?;
        }
        for c in &board.comparisons {
            out.line(format!("  {}", c.sentence()))?;
        }
    }
    if let Some(w) = outcome.winner.map(|i| &outcome.entries[i]) {
        let metrics = w.test.metrics(Split::Test);
        out.line(format!(
            "\ntest split ({} ratings), {}:",
            outcome.sizes.test,
            crate::pipeline::search::label(&w.final_used)
        ))?;
        let mut t = Table::new(["metric", "value"]).right([1]);
        for (k, v) in &metrics {
            t.push([k.clone(), fmt_value(*v)]);
        }
        out.table(&t, terminal_width())?;
        let counts: Vec<String> = w
            .test
            .counts()
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.line(format!("  ({})", counts.join(", ")))?;
        out.line(format!(
            "fit {:.2}s, eval {:.2}s; model saved to {}",
            w.fit_seconds,
            w.eval_seconds,
            show_path(model_dir)
        ))?;
    }
    for w in warnings {
        out.warn(&w.message);
    }
    Ok(())
}

/// The results as JSON.
pub fn results_json(
    outcome: &Outcome,
    board: &Leaderboard,
    warnings: &[Warning],
    model_dir: &Path,
) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = outcome
        .entries
        .iter()
        .map(|o| {
            serde_json::json!({
                "select": o.select.name,
                "ranked": o.ranked,
                "trials": o.trials.iter().enumerate().map(|(i, t)| serde_json::json!({
                    "config": t.point, "selected": i == o.best,
                    "metrics": t.metrics.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                    "fit_seconds": t.fit_seconds, "best_iteration": t.best_iteration,
                })).collect::<Vec<_>>(),
                "final": { "params": o.final_used,
                    "test": o.test.metrics(Split::Test).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                    "counts": o.test.counts().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                    "fit_seconds": o.fit_seconds, "eval_seconds": o.eval_seconds },
            })
        })
        .collect();
    let winner = outcome.winner.map(|i| {
        let o = &outcome.entries[i];
        serde_json::json!({
            "entry": board.rows.iter().find(|r| r.winner).map(|r| r.entry.clone()),
            "params": o.final_used,
            "test": o.test.metrics(Split::Test).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        })
    });
    serde_json::json!({
        "winner": winner,
        "selected_on": outcome.selected_on.to_string(),
        "sizes": outcome.sizes,
        "leaderboard": board,
        "entries": entries,
        "warnings": warnings,
        "model_dir": model_dir.display().to_string(),
    })
}

/// The run named by `id`: a full run id, or a unique prefix of one (8 characters are usually
/// enough), looked up in every active experiment. An ambiguous prefix is an error listing the
/// matches.
pub fn resolve_run(t: &dyn Tracker, id: &str) -> anyhow::Result<tracking::Run> {
    let id = id.trim();
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(t.get_run(id)?);
    }
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        anyhow::bail!("`{id}` is not a run id\nhint: `recflow runs list` shows the ids");
    }
    let experiment_ids = t
        .list_experiments()?
        .into_iter()
        .map(|e| e.experiment_id)
        .collect();
    let runs = t.search_runs(&tracking::RunQuery {
        experiment_ids,
        filter: None,
        order_by: vec![],
        max_results: usize::MAX,
    })?;
    let mut hits: Vec<tracking::Run> = runs
        .into_iter()
        .filter(|r| r.info.run_id.starts_with(id))
        .collect();
    match hits.len() {
        0 => anyhow::bail!(
            "run `{id}` not found: no run id in {} starts with it\nhint: `recflow runs list` shows the ids",
            tracking::mask_uri(&t.uri())
        ),
        1 => Ok(hits.remove(0)),
        n => {
            let shown: Vec<String> = hits
                .iter()
                .take(10)
                .map(|r| {
                    format!(
                        "  {} {} (experiment {})",
                        r.info.run_id, r.info.run_name, r.info.experiment_id
                    )
                })
                .collect();
            anyhow::bail!(
                "run id prefix `{id}` matches {n} runs:\n{}{}\nhint: give more characters of the id",
                shown.join("\n"),
                if n > 10 { "\n  ..." } else { "" }
            )
        }
    }
}
