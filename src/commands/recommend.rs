//! `recflow recommend`: top-K for one user, or for every user into a Parquet file, by the one
//! recommending rule (`model::recommend`): known users get the model's list, training items
//! excluded; cold users get the cold-start list, shown with each item's rating count and damped
//! mean, as the server shows it.

use std::collections::HashMap;

use polars::prelude::Column;

use crate::cli::RecommendArgs;
use crate::commands::{show_path, Context, WithHint};
use crate::data::store;
use crate::eval::topk::{TopKError, TopKOptions};
use crate::model::artifact::SavedModel;
use crate::model::recommend::{cold_start, for_each_top, lookup, top_k, UserLookup};
use crate::output::{terminal_width, Table};
use crate::settings::defaults;

#[derive(serde::Serialize)]
struct Rec<'a> {
    rank: usize,
    item_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    score: f64,
    /// Training ratings of the item (cold-start answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    /// The item's damped mean rating (cold-start answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    damped_mean: Option<f64>,
    /// With `--explain`: the user's training items that weigh most in the score.
    #[serde(skip_serializing_if = "Option::is_none")]
    because: Option<Vec<Because<'a>>>,
}

#[derive(serde::Serialize)]
struct Because<'a> {
    item_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    weight: f32,
}

/// Items named by an explanation.
const EXPLAIN_ITEMS: usize = 3;

fn title(model: &SavedModel, i: u32) -> Option<&str> {
    model.item_meta.as_ref()?.get(i as usize)?.title.as_deref()
}

pub fn run(ctx: &Context, a: &RecommendArgs) -> anyhow::Result<()> {
    if a.k == 0 || a.k > defaults::MAX_K {
        anyhow::bail!(
            "`-k` must be between 1 and {}, got {}",
            defaults::MAX_K,
            a.k
        );
    }
    if ctx.show_settings(&serde_json::json!({
        "model": a.model, "user": a.user, "all": a.all, "out": a.out, "k": a.k, "include_seen": a.include_seen,
    }))? {
        return Ok(());
    }
    let model = SavedModel::load(&a.model)?;
    let history = model.history.by_user();
    let exclude = (!a.include_seen).then_some(&history);
    if a.all {
        let out = a
            .out
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("`--all` needs `--out FILE.parquet`"))?;
        return all_users(ctx, &model, &history, exclude, a.k, out);
    }
    let user_id = a.user.as_deref().unwrap_or_default();
    let index: HashMap<String, u32> = model
        .user_ids
        .iter()
        .enumerate()
        .map(|(i, u)| (u.clone(), i as u32))
        .collect();
    let family = model.metadata.family.to_string();
    let (strategy, recs): (&str, Vec<Rec>) =
        match lookup(&index, user_id, model.model.as_ref(), &history) {
            UserLookup::Known(u) => {
                let lists = top_k(model.model.as_ref(), &history, &[u], exclude, a.k)?;
                let list = lists.into_iter().next().unwrap_or_default();
                (
                    family.as_str(),
                    list.iter()
                        .enumerate()
                        .map(|(r, (i, s))| Rec {
                            rank: r + 1,
                            item_id: &model.item_ids[*i as usize],
                            title: title(&model, *i),
                            score: f64::from(*s),
                            count: None,
                            damped_mean: None,
                            because: a.explain.then(|| {
                                model
                                    .model
                                    .explain(u, *i, &history, EXPLAIN_ITEMS)
                                    .into_iter()
                                    .map(|(j, weight)| Because {
                                        item_id: &model.item_ids[j as usize],
                                        title: title(&model, j),
                                        weight,
                                    })
                                    .collect()
                            }),
                        })
                        .collect(),
                )
            }
            UserLookup::Cold => (
                "popular",
                cold_start(&model.popular, &[], a.k)
                    .into_iter()
                    .enumerate()
                    .map(|(r, p)| Rec {
                        rank: r + 1,
                        item_id: &model.item_ids[p.item as usize],
                        title: title(&model, p.item),
                        score: p.score,
                        count: Some(p.count),
                        damped_mean: Some(p.score),
                        because: None,
                    })
                    .collect(),
            ),
        };
    if ctx.out.is_json() {
        return Ok(ctx.out.json(
            &serde_json::json!({ "user_id": user_id, "strategy": strategy, "items": recs }),
        )?);
    }
    let cold = strategy == "popular";
    if cold {
        ctx.out.line(format!(
            "user `{user_id}` has no training rating in the model: the {} most popular items (by rating count, ties by damped mean rating)",
            recs.len()
        ))?;
    } else {
        ctx.out.line(format!(
            "top {} for user `{user_id}` ({family}){}:",
            recs.len(),
            if a.include_seen {
                ""
            } else {
                ", items already rated excluded"
            }
        ))?;
    }
    let titles = model.item_meta.is_some();
    let explained = recs.iter().any(|r| r.because.is_some());
    let mut head = vec!["rank", "item_id"];
    if titles {
        head.push("title");
    }
    let first_figure = head.len();
    head.extend(if cold {
        &["ratings", "damped_mean"][..]
    } else {
        &["score"][..]
    });
    let right: Vec<usize> = std::iter::once(0).chain(first_figure..head.len()).collect();
    if explained {
        head.push("because you rated");
    }
    let mut t = Table::new(head).right(right);
    for r in &recs {
        let mut row = vec![r.rank.to_string(), r.item_id.to_string()];
        if titles {
            row.push(r.title.unwrap_or("").to_string());
        }
        if cold {
            row.push(r.count.unwrap_or(0).to_string());
            row.push(format!("{:.4}", r.damped_mean.unwrap_or(0.0)));
        } else {
            row.push(format!("{:.4}", r.score));
        }
        if let Some(why) = &r.because {
            let names: Vec<&str> = why.iter().map(|b| b.title.unwrap_or(b.item_id)).collect();
            row.push(names.join("; "));
        }
        t.push(row);
    }
    ctx.out.table(&t, terminal_width())?;
    Ok(())
}

fn all_users(
    ctx: &Context,
    model: &SavedModel,
    history: &crate::data::interactions::Csr,
    exclude: Option<&crate::data::interactions::Csr>,
    k: usize,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let (known, cold): (Vec<u32>, Vec<u32>) = (0..model.user_ids.len() as u32).partition(|&u| {
        matches!(
            crate::model::recommend::lookup_index(Some(u), model.model.as_ref(), history),
            UserLookup::Known(_)
        )
    });
    let t0 = std::time::Instant::now();
    let bar = ctx.progress.steps(known.len() as u64, "scoring users");
    let (mut uid, mut rank, mut iid, mut score, mut strategy) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let family = model.metadata.family.to_string();
    for_each_top(
        model.model.as_ref(),
        history,
        &known,
        exclude,
        k,
        TopKOptions::default(),
        |u, list| {
            bar.inc(1);
            for (r, (i, s)) in list.into_iter().enumerate() {
                uid.push(model.user_ids[u as usize].as_str());
                rank.push(r as i32 + 1);
                iid.push(model.item_ids[i as usize].as_str());
                score.push(s);
                strategy.push(family.as_str());
            }
            Ok::<(), TopKError>(())
        },
    )?;
    bar.finish();
    let popular = cold_start(&model.popular, &[], k);
    for &u in &cold {
        for (r, p) in popular.iter().enumerate() {
            uid.push(model.user_ids[u as usize].as_str());
            rank.push(r as i32 + 1);
            iid.push(model.item_ids[p.item as usize].as_str());
            score.push(p.score as f32);
            strategy.push("popular");
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let rows = uid.len();
    let cols = vec![
        Column::new("user_id".into(), uid),
        Column::new("rank".into(), rank),
        Column::new("item_id".into(), iid),
        Column::new("score".into(), score),
        Column::new("strategy".into(), strategy),
    ];
    // Written beside the target and renamed, so a failure never leaves half a file.
    store::write_parquet(out, cols).hint("choose a writable `--out`")?;
    if ctx.out.is_json() {
        return Ok(ctx.out.json(&serde_json::json!({ "users": known.len() + cold.len(), "cold_users": cold.len(), "rows": rows, "k": k, "seconds": seconds, "out": out.display().to_string() }))?);
    }
    ctx.out.line(format!(
        "top {k} for {} users ({} cold, given the popular list; {rows} rows) in {seconds:.2}s -> {}",
        known.len() + cold.len(),
        cold.len(),
        show_path(out)
    ))?;
    Ok(())
}
