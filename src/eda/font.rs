//! The one font plot text is measured and drawn with, loaded from a file at run time.
//!
//! plotters' `ab_glyph` backend needs no system font library (no fontconfig, no freetype); it only
//! needs font bytes registered under the family name the plots ask for. Knows nothing about plots.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use plotters::style::{register_font, FontStyle};

use super::EdaError;

/// The family every plot asks for; SVG files name it too, so browsers use their own sans-serif.
pub(crate) const FAMILY: &str = "sans-serif";

/// Where DejaVu Sans (or a close substitute) lives on common systems, tried in order.
pub const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Whether a regular face has been registered (plotters keeps fonts in a process-wide table).
static LOADED: Mutex<bool> = Mutex::new(false);

/// Makes sure a font is registered, trying [`FONT_CANDIDATES`] on first use.
pub(crate) fn ensure_font() -> Result<(), EdaError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if *loaded {
        return Ok(());
    }
    let path = FONT_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| EdaError::NoFont {
            tried: FONT_CANDIDATES
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    register(path)?;
    *loaded = true;
    Ok(())
}

fn register(path: &Path) -> Result<(), EdaError> {
    let bytes = read_static(path)?;
    register_font(FAMILY, FontStyle::Normal, bytes).map_err(|_| EdaError::BadFont {
        path: path.to_path_buf(),
    })?;
    // A missing or broken bold face is fine: plotters falls back to the regular one.
    if let Some(bold) = bold_sibling(path).filter(|p| p.is_file()) {
        if let Ok(bytes) = read_static(&bold) {
            let _ = register_font(FAMILY, FontStyle::Bold, bytes);
        }
    }
    Ok(())
}

/// plotters keeps `&'static` font bytes; a font is loaded once or twice per process, so the
/// leak is bounded.
fn read_static(path: &Path) -> Result<&'static [u8], EdaError> {
    let bytes = std::fs::read(path).map_err(|source| EdaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Box::leak(bytes.into_boxed_slice()))
}

fn bold_sibling(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?.to_str()?;
    let ext = path.extension()?.to_str()?;
    let base = stem.strip_suffix("-Regular").unwrap_or(stem);
    Some(path.with_file_name(format!("{base}-Bold.{ext}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bold_sibling_follows_dejavu_and_liberation_names() {
        assert_eq!(
            bold_sibling(Path::new("/f/DejaVuSans.ttf")),
            Some(PathBuf::from("/f/DejaVuSans-Bold.ttf"))
        );
        assert_eq!(
            bold_sibling(Path::new("/f/LiberationSans-Regular.ttf")),
            Some(PathBuf::from("/f/LiberationSans-Bold.ttf"))
        );
    }

    #[test]
    fn a_file_that_is_not_a_font_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-font.ttf");
        std::fs::write(&path, b"hello").unwrap();
        assert!(matches!(register(&path), Err(EdaError::BadFont { .. })));
    }
}
