//! `recflow recommend`: top-K for one user (popular items for a user the model has never seen),
//! or for every user into a Parquet file.

use polars::prelude::Column;

use crate::cli::RecommendArgs;
use crate::commands::{show_path, Context, WithHint};
use crate::data::store;
use crate::eval::topk::{for_each_top_k, top_k, TopKOptions};
use crate::model::artifact::SavedModel;

#[derive(serde::Serialize)]
struct Rec<'a> {
    rank: usize,
    item_id: &'a str,
    score: f64,
}

pub fn run(ctx: &Context, a: &RecommendArgs) -> anyhow::Result<()> {
    if a.k == 0 || a.k > 100_000 {
        anyhow::bail!("`-k` must be between 1 and 100000, got {}", a.k);
    }
    let model = SavedModel::load(&a.model)?;
    let seen = (!a.include_seen).then(|| model.train.by_user());
    if a.all {
        let out = a
            .out
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("`--all` needs `--out FILE.parquet`"))?;
        return all_users(ctx, &model, seen.as_ref(), a.k, out);
    }
    let user_id = a.user.as_deref().unwrap_or_default();
    let known = model.user_ids.iter().position(|u| u == user_id);
    let (strategy, recs): (&str, Vec<Rec>) = match known {
        Some(u) => {
            let lists = top_k(
                model.user_factors.view(),
                model.item_factors.view(),
                &[u as u32],
                seen.as_ref(),
                a.k,
            )?;
            let list = lists.into_iter().next().unwrap_or_default();
            (
                "als",
                list.iter()
                    .enumerate()
                    .map(|(r, (i, s))| Rec {
                        rank: r + 1,
                        item_id: &model.item_ids[*i as usize],
                        score: *s as f64,
                    })
                    .collect(),
            )
        }
        None => (
            "popular",
            model
                .popular
                .iter()
                .take(a.k)
                .enumerate()
                .map(|(r, p)| Rec {
                    rank: r + 1,
                    item_id: &model.item_ids[p.item as usize],
                    score: p.count as f64,
                })
                .collect(),
        ),
    };
    if ctx.global.json {
        return ctx.print_json(
            &serde_json::json!({ "user_id": user_id, "strategy": strategy, "items": recs }),
        );
    }
    if strategy == "popular" {
        ctx.say(format!("user `{user_id}` is not in the model: the {} most popular items (score = number of ratings)", recs.len()));
    } else {
        ctx.say(format!(
            "top {} for user `{user_id}`{}:",
            recs.len(),
            if a.include_seen {
                ""
            } else {
                " (items already rated excluded)"
            }
        ));
    }
    ctx.say(format!(
        "  {:>4}  {:<20} {:>10}",
        "rank", "item_id", "score"
    ));
    for r in &recs {
        ctx.say(format!(
            "  {:>4}  {:<20} {:>10.4}",
            r.rank, r.item_id, r.score
        ));
    }
    Ok(())
}

fn all_users(
    ctx: &Context,
    model: &SavedModel,
    seen: Option<&crate::data::interactions::Csr>,
    k: usize,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let users: Vec<u32> = (0..model.user_ids.len() as u32).collect();
    let t0 = std::time::Instant::now();
    let bar = ctx.progress.steps(users.len() as u64, "scoring users");
    let (mut uid, mut rank, mut iid, mut score) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for_each_top_k(
        model.user_factors.view(),
        model.item_factors.view(),
        &users,
        seen,
        k,
        TopKOptions::default(),
        |u, list| {
            bar.inc(1);
            for (r, (i, s)) in list.into_iter().enumerate() {
                uid.push(model.user_ids[u as usize].as_str());
                rank.push(r as i32 + 1);
                iid.push(model.item_ids[i as usize].as_str());
                score.push(s);
            }
            Ok::<(), crate::eval::topk::TopKError>(())
        },
    )?;
    bar.finish();
    let seconds = t0.elapsed().as_secs_f64();
    let rows = uid.len();
    let cols = vec![
        Column::new("user_id".into(), uid),
        Column::new("rank".into(), rank),
        Column::new("item_id".into(), iid),
        Column::new("score".into(), score),
    ];
    // Written beside the target and renamed, so a failure never leaves half a file.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".recs-")
        .suffix(".parquet")
        .tempfile_in(dir)
        .hint("choose a writable `--out`")?;
    store::write_parquet(tmp.path(), cols)?;
    tmp.persist(out)
        .map_err(|e| e.error)
        .hint("choose a writable `--out`")?;
    if ctx.global.json {
        return ctx.print_json(&serde_json::json!({ "users": users.len(), "rows": rows, "k": k, "seconds": seconds, "out": out.display().to_string() }));
    }
    ctx.say(format!(
        "top {k} for {} users ({rows} rows) in {seconds:.2}s -> {}",
        users.len(),
        show_path(out)
    ));
    Ok(())
}
