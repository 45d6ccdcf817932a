//! `recflow etl`: resolve the ETL settings, fetch the input if allowed, run, report.

use std::path::Path;

use anyhow::Context as _;

use crate::cli::EtlArgs;
use crate::commands::common::ensure_input;
use crate::commands::{show_path, Context};
use crate::data::etl::{run_etl, EtlSummary};
use crate::data::store::Staging;
use crate::settings::{resolve_etl, EtlCommand};

pub fn run(ctx: &Context, args: &EtlArgs) -> anyhow::Result<()> {
    let mut s = resolve_etl(args, &ctx.env)?;
    if ctx.show_settings(&s)? {
        return Ok(());
    }
    // A pipe or stdin is copied into a staging folder of the output first: the ETL reads its
    // input twice (to hash it and to parse it), and a pipe can be read once.
    let _copy = match stream_kind(&s.etl.input) {
        Some(what) => {
            let copy = Staging::new(&s.etl.output)?;
            let path = copy.path("input");
            tracing::info!("reading {what} into {}", path.display());
            copy_stream(&s.etl.input, &path)?;
            s.etl.input_label = Some(s.etl.input.display().to_string());
            s.etl.input = path;
            Some(copy)
        }
        None => {
            ensure_input(ctx, &s.etl.input, s.download_url.as_deref())?;
            None
        }
    };
    let summary = run_etl(&s.etl, &ctx.progress)?;
    report(ctx, &s, &summary)
}

/// "standard input" for `-`, "the pipe" for a FIFO (`<(zcat ...)`, a named pipe); `None` for
/// anything else.
fn stream_kind(input: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if input.as_os_str() == "-" {
        return Some("standard input");
    }
    let meta = std::fs::metadata(input).ok()?;
    meta.file_type().is_fifo().then_some("the pipe")
}

fn copy_stream(input: &Path, to: &Path) -> anyhow::Result<()> {
    let mut out =
        std::fs::File::create(to).with_context(|| format!("cannot write `{}`", to.display()))?;
    let copied = if input.as_os_str() == "-" {
        std::io::copy(&mut std::io::stdin().lock(), &mut out)
    } else {
        std::fs::File::open(input).and_then(|mut f| std::io::copy(&mut f, &mut out))
    };
    copied.with_context(|| format!("cannot read `{}`", input.display()))?;
    Ok(())
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
    if let Some(m) = &sum.items_meta {
        out.line(format!(
            "items meta {} of {} items with a title, {} with a category, {} with an image URL ({} described in {})",
            m.with_title, sum.items, m.with_category, m.with_image_url, m.items_in_file, m.path
        ))?;
        if m.with_title == 0 {
            out.warn(format!(
                "no item of the ratings is described in `{}`: are its ids (`asin`, `item_id`) the ratings' item ids?",
                m.path
            ));
        }
    }
    out.line(format!(
        "written    {}/ in {:.2}s",
        show_path(&s.etl.output),
        sum.seconds
    ))?;
    Ok(())
}
