//! `recflow eda`: statistics, plots and an HTML report of processed data.

use crate::cli::EdaArgs;
use crate::commands::{show_path, Context, WithHint};
use crate::data::store;
use crate::eda;
use crate::settings::resolve_eda_input;

pub fn run(ctx: &Context, a: &EdaArgs) -> anyhow::Result<()> {
    let input = resolve_eda_input(a.input.as_deref())?;
    if ctx.show_settings(&serde_json::json!({ "input": input, "out": a.out }))? {
        return Ok(());
    }
    let t0 = std::time::Instant::now();
    let ds = store::load_dataset(&input).hint(format!(
        "run `recflow etl --output {}` first, or point `--input` at a folder with its outputs",
        input.display()
    ))?;
    let stats = eda::compute_stats(&ds);
    let files = eda::write_report(&stats, &ds, &a.out)?;
    let seconds = t0.elapsed().as_secs_f64();
    if ctx.out.is_json() {
        return Ok(ctx.out.json(
            &serde_json::json!({ "stats": stats, "files": files.all(), "seconds": seconds }),
        )?);
    }
    ctx.out.line(eda::stats_table(&stats))?;
    ctx.out.line(format!(
        "report: {} ({} plots, {:.2}s)",
        show_path(&files.report_html),
        files.plots.len(),
        seconds
    ))?;
    Ok(())
}
