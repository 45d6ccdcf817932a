//! `recflow etl`: resolve the ETL settings, fetch the input if allowed, run, report.

use crate::cli::EtlArgs;
use crate::commands::common::ensure_input;
use crate::commands::{show_path, Context};
use crate::data::etl::{run_etl, EtlSummary};
use crate::settings::{resolve_etl, EtlCommand};

pub fn run(ctx: &Context, args: &EtlArgs) -> anyhow::Result<()> {
    let s = resolve_etl(args, &ctx.env)?;
    if ctx.show_settings(&s)? {
        return Ok(());
    }
    ensure_input(ctx, &s.etl.input, s.download_url.as_deref())?;
    let summary = run_etl(&s.etl, &ctx.progress)?;
    report(ctx, &s, &summary)
}

fn report(ctx: &Context, s: &EtlCommand, sum: &EtlSummary) -> anyhow::Result<()> {
    let out = &ctx.out;
    if out.is_json() {
        return Ok(out.json(sum)?);
    }
    out.line(format!(
        "input      {} ({} bytes, {})",
        sum.input.path, sum.input.bytes, sum.input.format
    ))?;
    out.line(format!("rows read  {}", sum.rows_read))?;
    let drops: Vec<String> = sum
        .drops
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    out.line(format!(
        "dropped    {}",
        if drops.is_empty() {
            "none".into()
        } else {
            drops.join(", ")
        }
    ))?;
    out.line(format!(
        "k-core     {} rounds at N={}, removed {} ratings",
        sum.kcore_rounds, sum.min_interactions, sum.kcore_removed
    ))?;
    out.line(format!(
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
    ))?;
    out.line(format!(
        "written    {}/ in {:.2}s",
        show_path(&s.etl.output),
        sum.seconds
    ))?;
    Ok(())
}
