//! Artifact paths and the local file walks the stores share.

use std::path::{Path, PathBuf};

use super::TrackingError;

/// Joins artifact path segments, dropping empty ones.
pub(crate) fn join_artifact_path(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|p| p.split('/'))
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Copies the files under `src` (any depth) into `dest`.
pub(crate) fn copy_tree(src: &Path, dest: &Path) -> Result<(), TrackingError> {
    for (file, rel) in walk_files(src)? {
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| TrackingError::io(parent, e))?;
        }
        std::fs::copy(&file, &to).map_err(|e| TrackingError::io(&file, e))?;
    }
    Ok(())
}

/// The files under `dir` as (absolute path, `/`-separated path relative to `dir`), sorted.
pub(crate) fn walk_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, TrackingError> {
    fn visit(
        dir: &Path,
        prefix: &str,
        out: &mut Vec<(PathBuf, String)>,
    ) -> Result<(), TrackingError> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| TrackingError::io(dir, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| TrackingError::io(dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            let file_type = entry.file_type().map_err(|e| TrackingError::io(&path, e))?;
            let is_dir = file_type.is_dir() || (file_type.is_symlink() && path.is_dir());
            if is_dir {
                visit(&path, &rel, out)?;
            } else {
                out.push((path, rel));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(dir, "", &mut out)?;
    Ok(out)
}
