//! `recflow download`: stream RAW_REVIEWS_URL to RAW_REVIEWS_PATH, resuming a partial file.

use crate::cli::DownloadArgs;
use crate::commands::{show_path, Context};
use crate::data::download::download;
use crate::settings::resolve_download;

pub fn run(ctx: &Context, a: &DownloadArgs) -> anyhow::Result<()> {
    let s = resolve_download(a, &ctx.env);
    if ctx.show_settings(&s)? {
        return Ok(());
    }
    let report = download(&s.url, &s.out, &ctx.progress)?;
    if ctx.out.is_json() {
        return Ok(ctx.out.json(&report)?);
    }
    ctx.out.line(format!(
        "{} -> {} ({} bytes{}{})",
        crate::tracking::mask_uri(&s.url),
        show_path(&s.out),
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
    ))?;
    Ok(())
}
