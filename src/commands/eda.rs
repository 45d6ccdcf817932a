//! `recflow eda`: statistics, plots and an HTML report of processed data.

use crate::cli::EdaArgs;
use crate::commands::{show_path, Context, WithHint};
use crate::data::store;
use crate::eda;

pub fn run(ctx: &Context, a: &EdaArgs) -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    let ds = store::load_dataset(&a.input).hint(format!(
        "run `recflow etl --output {}` first, or point `--input` at a folder with its outputs",
        a.input.display()
    ))?;
    let stats = eda::compute_stats(&ds);
    let files = eda::write_report(&stats, &ds, &a.out)?;
    let seconds = t0.elapsed().as_secs_f64();
    if ctx.global.json {
        return ctx.print_json(
            &serde_json::json!({ "stats": stats, "files": files.all(), "seconds": seconds }),
        );
    }
    ctx.say(eda::stats_table(&stats));
    ctx.say(format!(
        "report: {} ({} plots, {:.2}s)",
        show_path(&files.report_html),
        files.plots.len(),
        seconds
    ));
    Ok(())
}
