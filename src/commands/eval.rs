//! `recflow eval`: recompute a saved model's metrics on a split of the processed data.

use std::collections::BTreeMap;

use anyhow::bail;
use polars::prelude::Column;

use crate::cli::EvalArgs;
use crate::commands::train::{load_processed, strategy};
use crate::commands::{Context, WithHint};
use crate::data::split::{sample, split, SplitParams, SplitStrategy};
use crate::data::store;
use crate::eval::{evaluate, EvalSettings, RankingFactors};
use crate::model::artifact::SavedModel;

fn model_split(meta: &serde_json::Value) -> SplitParams {
    let strategy = match meta["strategy"].as_str() {
        Some("per_user") => SplitStrategy::PerUser,
        Some("temporal") => SplitStrategy::Temporal,
        Some("leave_last_n") => {
            SplitStrategy::LeaveLastN(meta["leave_n"].as_u64().unwrap_or(1) as usize)
        }
        _ => SplitStrategy::Random,
    };
    SplitParams {
        strategy,
        test_fraction: meta["test_fraction"].as_f64().unwrap_or(0.2),
        seed: meta["seed"].as_u64().unwrap_or(42),
    }
}

pub fn run(ctx: &Context, a: &EvalArgs) -> anyhow::Result<()> {
    let model = SavedModel::load(&a.model)?;
    let ds = load_processed(ctx, &a.data)?;
    if ds.user_ids != model.user_ids || ds.item_ids != model.item_ids {
        return Err(anyhow::anyhow!(
            "the model in `{}` was trained on other data than `{}` ({} users × {} items vs {} × {})",
            a.model.display(),
            a.data.data.display(),
            model.user_ids.len(),
            model.item_ids.len(),
            ds.user_ids.len(),
            ds.item_ids.len()
        ))
        .hint("point `--data` at the processed folder the model was trained on");
    }
    let meta = &model.metadata.split;
    let mut params = model_split(meta);
    if let Some(s) = a.split {
        params.strategy = strategy(s, 1);
    }
    if let Some(f) = a.test_fraction {
        params.test_fraction = f;
    }
    if let Some(s) = a.seed {
        params.seed = s;
    }
    let fraction = meta["sample_fraction"].as_f64().unwrap_or(1.0);
    let data = if fraction < 1.0 {
        sample(
            &ds.interactions,
            fraction,
            meta["sample_seed"].as_u64().unwrap_or(42),
        )?
    } else {
        ds.interactions.clone()
    };
    let halves = split(&data, &params)?;
    if halves.test.is_empty() {
        bail!("the test split is empty");
    }
    if let Some(dir) = &a.save_split {
        std::fs::create_dir_all(dir).hint("choose a writable `--save-split` folder")?;
        for (name, part) in [
            ("train.parquet", &halves.train),
            ("test.parquet", &halves.test),
        ] {
            store::write_parquet(
                &dir.join(name),
                vec![
                    Column::new(
                        "user_idx".into(),
                        part.user.iter().map(|&u| u as i32).collect::<Vec<i32>>(),
                    ),
                    Column::new(
                        "item_idx".into(),
                        part.item.iter().map(|&i| i as i32).collect::<Vec<i32>>(),
                    ),
                    Column::new("rating".into(), &part.rating),
                ],
            )?;
        }
    }
    let settings = EvalSettings {
        k: a.k.or(meta["k"].as_u64().map(|k| k as usize)).unwrap_or(10),
        threshold: a
            .relevance_threshold
            .or(meta["relevance_threshold"].as_f64().map(|t| t as f32)),
        ..EvalSettings::default()
    };
    let u = &model.user_factors;
    let v = &model.item_factors;
    let predict = |user: u32, item: u32| u.row(user as usize).dot(&v.row(item as usize));
    let predictor: Option<&dyn Fn(u32, u32) -> f32> = if model.metadata.implicit {
        None
    } else {
        Some(&predict)
    };
    let t0 = std::time::Instant::now();
    let report = evaluate(
        RankingFactors {
            users: u.view(),
            items: v.view(),
        },
        predictor,
        &halves.train,
        &halves.test,
        &settings,
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    let metrics: BTreeMap<String, f64> = report.metrics().into_iter().collect();
    if ctx.global.json {
        return ctx.print_json(&serde_json::json!({
            "model": a.model.display().to_string(),
            "split": { "strategy": params.strategy.name(), "test_fraction": params.test_fraction, "seed": params.seed },
            "k": settings.k,
            "relevance_threshold": settings.threshold,
            "metrics": metrics,
            "counts": report.counts().into_iter().collect::<BTreeMap<_, _>>(),
            "eval_seconds": seconds,
        }));
    }
    ctx.say(format!(
        "{} on a {} split (test fraction {}, seed {}), {} test ratings:",
        a.model.display(),
        params.strategy.name(),
        params.test_fraction,
        params.seed,
        halves.test.len()
    ));
    ctx.say(format!(
        "  {:<16} {:>10} {:>12}",
        "metric", "model", "popularity"
    ));
    for (name, v) in report
        .metrics()
        .iter()
        .filter(|(n, _)| !n.starts_with("popularity."))
    {
        let pop = metrics
            .get(&format!("popularity.{name}"))
            .map(|v| format!("{v:.4}"))
            .unwrap_or_else(|| "-".into());
        ctx.say(format!("  {name:<16} {v:>10.4} {pop:>12}"));
    }
    let counts: Vec<String> = report
        .counts()
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    ctx.say(format!("  ({}; {:.2}s)", counts.join(", "), seconds));
    Ok(())
}
