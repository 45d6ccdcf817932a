//! `recflow download`, and fetching the ETL input when it is missing.

use std::path::{Path, PathBuf};

use crate::cli::DownloadArgs;
use crate::commands::{show_path, Context, WithHint};
use crate::data::download::download;

fn default_url(ctx: &Context) -> String {
    ctx.env
        .get("RAW_REVIEWS_URL")
        .unwrap_or("https://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Electronics_5.json.gz")
        .to_string()
}

/// Makes sure `input` exists: downloads it from RAW_REVIEWS_URL when `may_download` (the input is
/// RAW_REVIEWS_PATH, or `--download` was given), else fails with what to do.
pub fn ensure_input(
    ctx: &Context,
    input: &Path,
    may_download: bool,
    _forced: bool,
) -> anyhow::Result<()> {
    if input.exists() {
        return Ok(());
    }
    if !may_download {
        return Err(anyhow::anyhow!("input file `{}` does not exist", input.display()))
            .hint("check the path, or pass `--download` to fetch RAW_REVIEWS_URL into it (`recflow generate` makes a sample)");
    }
    let url = default_url(ctx);
    tracing::info!("{} is missing: downloading {url}", input.display());
    let report = download(&url, input, ctx.progress.is_enabled())?;
    tracing::info!("downloaded {} bytes to {}", report.bytes, input.display());
    Ok(())
}

pub fn run(ctx: &Context, a: &DownloadArgs) -> anyhow::Result<()> {
    let url = a.url.clone().unwrap_or_else(|| default_url(ctx));
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(
            ctx.env
                .get("RAW_REVIEWS_PATH")
                .unwrap_or("data/raw/reviews_electronics.json.gz"),
        )
    });
    let report = download(&url, &out, ctx.progress.is_enabled())?;
    if ctx.global.json {
        return ctx.print_json(&report);
    }
    ctx.say(format!(
        "{} -> {} ({} bytes{}{})",
        crate::tracking::mask_uri(&url),
        show_path(&out),
        report.bytes,
        if report.resumed_from > 0 {
            format!(", resumed at {}", report.resumed_from)
        } else {
            String::new()
        },
        if report.gzip_verified {
            ", gzip verified"
        } else {
            ""
        }
    ));
    Ok(())
}
