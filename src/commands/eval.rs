//! `recflow eval`: recompute a saved model's metrics on a split of the data it was trained on
//! (the model's own split unless overridden; `--test-file` as in `train`).

use std::collections::BTreeMap;

use anyhow::bail;

use crate::cli::EvalCmdArgs;
use crate::commands::{show_path, Context, WithHint};
use crate::data::split::{sample, split, Split};
use crate::data::store;
use crate::eval::evaluate;
use crate::eval::keys::Split as MetricSplit;
use crate::model::artifact::SavedModel;
use crate::output::{fmt_value, terminal_width, Table};
use crate::settings::resolve_eval;

pub fn run(ctx: &Context, a: &EvalCmdArgs) -> anyhow::Result<()> {
    let model = SavedModel::load(&a.model)?;
    let s = resolve_eval(a, &model.metadata)?;
    if ctx.show_settings(&s)? {
        return Ok(());
    }
    let mut ds = store::load_dataset(&s.data_dir)
        .hint("point `--data` at the processed folder the model was trained on")?;
    let (base_users, base_items) = (ds.user_ids.len(), ds.item_ids.len());
    let mut data = if s.sample_fraction < 1.0 {
        sample(&ds.interactions, s.sample_fraction, s.sample_seed)?
    } else {
        ds.interactions.clone()
    };
    // A model trained with a test file knows its extra ids: the data's id spaces grow to match.
    data.n_users = data.n_users.max(model.user_ids.len());
    data.n_items = data.n_items.max(model.item_ids.len());
    // A test file may add ids the processed data lacks (a model trained with it has them too).
    let test = match &s.test_file {
        Some(p) => Some(crate::data::testfile::attach_test_file(&mut ds, p)?),
        None => None,
    };
    let prefix = |a: &[String], b: &[String]| a.iter().zip(b).all(|(x, y)| x == y);
    if !prefix(&ds.user_ids, &model.user_ids)
        || !prefix(&ds.item_ids, &model.item_ids)
        || model.user_ids.len() < base_users
        || model.item_ids.len() < base_items
    {
        return Err(anyhow::anyhow!(
            "the model in `{}` was trained on other data than `{}` ({} users × {} items vs {} × {})",
            a.model.display(),
            s.data_dir.display(),
            model.user_ids.len(),
            model.item_ids.len(),
            ds.user_ids.len(),
            ds.item_ids.len()
        ))
        .hint("point `--data` at the processed folder the model was trained on");
    }
    let halves = match test {
        Some(mut test) => {
            let mut train = data;
            train.n_users = train.n_users.max(ds.user_ids.len());
            train.n_items = train.n_items.max(ds.item_ids.len());
            test.n_users = train.n_users;
            test.n_items = train.n_items;
            Split { train, test }
        }
        None => split(&data, &s.split)?,
    };
    if halves.test.is_empty() {
        bail!("the test split is empty");
    }
    if let Some(dir) = &s.save_split {
        std::fs::create_dir_all(dir).hint("choose a writable `--save-split` folder")?;
        store::write_interactions(&dir.join("train.parquet"), &halves.train)?;
        store::write_interactions(&dir.join("test.parquet"), &halves.test)?;
    }
    // Users and items a test file adds are cold: the model has no rows for them.
    let scored = crate::model::recommend::Padded::new(
        model.model.as_ref(),
        halves.train.n_users,
        halves.train.n_items,
    );
    let t0 = std::time::Instant::now();
    let report = evaluate(&scored, &halves.train, &halves.test, &s.eval)?;
    let seconds = t0.elapsed().as_secs_f64();
    let metrics: BTreeMap<String, f64> = report.metrics(MetricSplit::Test).into_iter().collect();
    let boot = crate::eval::stats::Bootstrap::default();
    let intervals: BTreeMap<String, crate::eval::stats::Interval> = report
        .intervals(boot)
        .into_iter()
        .map(|(k, ci)| (format!("{}_{k}", MetricSplit::Test), ci))
        .collect();
    if let Some(path) = &s.per_user {
        write_per_user_file(path, &report, &ds.user_ids)?;
    }
    if ctx.out.is_json() {
        return Ok(ctx.out.json(&serde_json::json!({
            "model": a.model.display().to_string(),
            "split": { "strategy": s.split.strategy.kind(), "test_fraction": s.split.test_fraction, "seed": s.split.seed,
                       "test_file": s.test_file },
            "k": s.k,
            "relevance_threshold": s.relevance_threshold,
            "metrics": metrics,
            "intervals": intervals.iter().map(|(k, ci)| (k.clone(), serde_json::json!({"low": ci.low, "high": ci.high}))).collect::<BTreeMap<_, _>>(),
            "bootstrap": { "resamples": boot.resamples, "seed": boot.seed },
            "per_user": s.per_user,
            "counts": report.counts().into_iter().collect::<BTreeMap<_, _>>(),
            "eval_seconds": seconds,
        }))?);
    }
    let how = match &s.test_file {
        Some(p) => format!("the test file {}", show_path(p)),
        None => format!(
            "a {} split (test fraction {}, seed {})",
            s.split.strategy.kind(),
            s.split.test_fraction,
            s.split.seed
        ),
    };
    ctx.out.line(format!(
        "{} ({}) on {how}, {} test ratings:",
        show_path(&a.model),
        model.metadata.family,
        halves.test.len()
    ))?;
    let mut t = Table::new(["metric", "value", "95% CI"]).right([1]);
    for (k, v) in &metrics {
        let ci = intervals
            .get(k)
            .map(|ci| format!("[{}, {}]", fmt_value(ci.low), fmt_value(ci.high)))
            .unwrap_or_default();
        t.push([k.clone(), fmt_value(*v), ci]);
    }
    ctx.out.table(&t, terminal_width())?;
    let counts: Vec<String> = report
        .counts()
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    ctx.out
        .line(format!("  ({}; {:.2}s)", counts.join(", "), seconds))?;
    ctx.out.line(format!(
        "  (95% CI: percentile bootstrap over test users, {} resamples, seed {})",
        boot.resamples, boot.seed
    ))?;
    if let Some(p) = &s.per_user {
        ctx.out
            .line(format!("  per-user figures written to {}", show_path(p)))?;
    }
    Ok(())
}

/// Writes the per-user figures through a temporary file beside `path`, renamed into place, so
/// a failed write never leaves half a file or replaces an earlier one.
fn write_per_user_file(
    path: &std::path::Path,
    report: &crate::eval::EvalReport,
    user_ids: &[String],
) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!(
            "`--per-user {}` is a folder\nhint: give a file name such as per_user.parquet",
            path.display()
        );
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).hint("choose a writable `--per-user` location")?;
    let tmp = tempfile::Builder::new()
        .prefix(".per-user-")
        .suffix(".parquet")
        .tempfile_in(&dir)
        .hint("choose a writable `--per-user` location")?;
    crate::pipeline::saved::write_per_user(tmp.path(), report, user_ids)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .hint("choose a writable `--per-user` location")?;
    Ok(())
}
