//! `recflow etl`: resolve the ETL settings, fetch the input if allowed, run, report.

use std::path::PathBuf;

use crate::cli::EtlArgs;
use crate::commands::{show_path, Context, WithHint};
use crate::data::etl::{run_etl, EtlSettings, EtlSummary};
use crate::data::format::InputFormat;

pub fn resolve(ctx: &Context, args: &EtlArgs) -> anyhow::Result<EtlSettings> {
    let default_input = ctx
        .env
        .get("RAW_REVIEWS_PATH")
        .unwrap_or("data/raw/reviews_electronics.json.gz");
    let input = args
        .input
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_input));
    let format = match args.format {
        Some(f) => f,
        None => InputFormat::from_path(&input)
            .hint("name the format with `--format json|csv|tsv|parquet`")?,
    };
    let min_interactions = match args.min_interactions {
        Some(n) => n,
        None => {
            let raw = ctx.env.get("MIN_INTERACTIONS").unwrap_or("5");
            raw.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "MIN_INTERACTIONS must be a whole number, got `{raw}` ({})",
                    ctx.env.source("MIN_INTERACTIONS")
                )
            })?
        }
    };
    Ok(EtlSettings {
        input,
        format,
        columns: args.columns.clone().unwrap_or_default(),
        has_header: args.has_header(),
        min_interactions,
        rating_range: args.rating_range,
        strict: args.strict,
        output: args.output.clone(),
    })
}

pub fn run(ctx: &Context, args: &EtlArgs) -> anyhow::Result<()> {
    let (settings, summary) = run_quietly(ctx, args)?;
    report(ctx, &settings, &summary)
}

/// Runs the ETL without printing a report (other commands call it when data is missing).
pub fn run_quietly(ctx: &Context, args: &EtlArgs) -> anyhow::Result<(EtlSettings, EtlSummary)> {
    let settings = resolve(ctx, args)?;
    let may_download = args.input.is_none() || args.download;
    crate::commands::download::ensure_input(ctx, &settings.input, may_download, args.download)?;
    let summary = run_etl(&settings, &ctx.progress)?;
    Ok((settings, summary))
}

fn report(ctx: &Context, s: &EtlSettings, sum: &EtlSummary) -> anyhow::Result<()> {
    if ctx.global.json {
        return ctx.print_json(sum);
    }
    ctx.say(format!(
        "input      {} ({} bytes, {})",
        sum.input.path, sum.input.bytes, sum.input.format
    ));
    ctx.say(format!("rows read  {}", sum.rows_read));
    let drops: Vec<String> = sum
        .drops
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    ctx.say(format!(
        "dropped    {}",
        if drops.is_empty() {
            "none".into()
        } else {
            drops.join(", ")
        }
    ));
    ctx.say(format!(
        "k-core     {} rounds at N={}, removed {} ratings",
        sum.kcore_rounds, sum.min_interactions, sum.kcore_removed
    ));
    ctx.say(format!(
        "result     {} users × {} items, {} ratings, density {:.6}{}",
        sum.users,
        sum.items,
        sum.ratings,
        sum.density,
        if sum.implicit {
            " (implicit: no rating column)"
        } else {
            ""
        }
    ));
    ctx.say(format!(
        "written    {}/ in {:.2}s",
        show_path(&s.output),
        sum.seconds
    ));
    Ok(())
}
