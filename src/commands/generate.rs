//! `recflow generate`: synthetic Amazon-format reviews.

use crate::cli::GenerateArgs;
use crate::commands::{show_path, Context};
use crate::data::generate::{generate, generate_items_meta, GenerateParams};

pub fn run(ctx: &Context, a: &GenerateArgs) -> anyhow::Result<()> {
    let params = GenerateParams {
        users: a.users,
        items: a.items,
        ratings: a.ratings,
        seed: a.seed,
    };
    let t0 = std::time::Instant::now();
    let summary = generate(&params, &a.out, &ctx.progress)?;
    let meta = a
        .items_meta
        .as_deref()
        .map(|path| generate_items_meta(&params, path))
        .transpose()?;
    let seconds = t0.elapsed().as_secs_f64();
    tracing::info!("generated {} reviews in {:.2}s", summary.ratings, seconds);
    if ctx.out.is_json() {
        let mut v = serde_json::to_value(&summary)?;
        if let Some(m) = &meta {
            v["items_meta"] = serde_json::to_value(m)?;
        }
        return Ok(ctx.out.json(&v)?);
    }
    let total: u64 = summary.stars.iter().sum::<u64>().max(1);
    let shares: Vec<String> = summary
        .stars
        .iter()
        .enumerate()
        .map(|(s, n)| format!("{}★ {:.0}%", s + 1, 100.0 * *n as f64 / total as f64))
        .collect();
    ctx.out.line(format!(
        "{} reviews by {} users on {} items -> {} ({:.1} MiB gzipped, {:.2}s)",
        summary.ratings,
        summary.users,
        summary.items,
        show_path(&a.out),
        summary.bytes as f64 / (1 << 20) as f64,
        seconds
    ))?;
    ctx.out.line(format!("stars: {}", shares.join(", ")))?;
    if let Some(m) = meta {
        ctx.out.line(format!(
            "titles and categories of {} items -> {}",
            m.items,
            show_path(&m.path)
        ))?;
    }
    Ok(())
}
