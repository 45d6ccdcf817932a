//! The processed-data cache of `recflow run`: one processed copy per input fingerprint (the
//! input's SHA-256 and every ETL setting but the output folder), under
//! `<root>/<name>-<fingerprint>/`, built in a temporary folder and renamed so concurrent runs
//! never see half a copy. The input is hashed once: the ETL reuses the hash.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::etl::{run_etl_hashed, sha256_file, EtlError, EtlSettings, EtlSummary};
use super::read::ReadError;
use super::store::{self, StoreError};
use crate::progress::Progress;

/// Processed data ready to load.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub dir: PathBuf,
    /// `None` for a processed folder without its ETL summary (made by other tools).
    pub summary: Option<EtlSummary>,
    pub reused: bool,
    pub fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Etl(#[from] EtlError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot prepare `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CacheError {
    pub fn hint(&self) -> Option<String> {
        match self {
            CacheError::Etl(e) => e.hint(),
            CacheError::Store(e) => e.hint(),
            CacheError::Io { .. } => None,
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Prepared {
    /// A processed folder made earlier (`recflow etl`): its fingerprint is the SHA-256 of its
    /// interactions file, since the input and settings it came from are not known for sure.
    pub fn existing(dir: &Path) -> Result<Prepared, CacheError> {
        let file = dir.join(store::INTERACTIONS);
        let sha = sha256_file(&file).map_err(io(&file))?;
        let summary = fs::read_to_string(dir.join(store::SUMMARY))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        Ok(Prepared {
            dir: dir.to_path_buf(),
            summary,
            // Not the cache's copy: the user's own folder, used as it is.
            reused: false,
            fingerprint: sha[..12].to_string(),
        })
    }
}

/// The fingerprint of an input hash and ETL settings: 12 hex digits.
pub fn fingerprint(input_sha256: &str, etl: &EtlSettings) -> String {
    let mut h = Sha256::new();
    h.update(input_sha256.as_bytes());
    let mut settings = serde_json::json!({
        "format": etl.format, "columns": etl.columns, "has_header": etl.has_header,
        "min_interactions": etl.min_interactions, "rating_range": etl.rating_range.map_or_else(|| "inferred".to_string(), |r| r.to_string()), "strict": etl.strict,
    });
    // Only a changed limit enters the key, so caches made before the setting existed still match.
    if etl.max_line_bytes != crate::data::read::DEFAULT_MAX_LINE_BYTES {
        settings["max_line_bytes"] = etl.max_line_bytes.into();
    }
    // The metadata file by content: an edited file makes a new copy.
    if let Some(p) = &etl.items_meta {
        settings["items_meta"] = sha256_file(p)
            .unwrap_or_else(|_| p.display().to_string())
            .into();
    }
    h.update(settings.to_string().as_bytes());
    format!("{:x}", h.finalize())[..12].to_string()
}

/// `name` with characters unsafe in a folder name replaced by `-`.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Runs the ETL into `root/<name>-<fingerprint>/` unless that folder is already there.
pub fn prepare(
    etl: &EtlSettings,
    name: &str,
    root: &Path,
    progress: &Progress,
) -> Result<Prepared, CacheError> {
    let sha = sha256_file(&etl.input).map_err(|e| {
        CacheError::Etl(EtlError::Read(
            if e.kind() == std::io::ErrorKind::NotFound {
                ReadError::Missing(etl.input.clone())
            } else {
                ReadError::Io {
                    path: etl.input.clone(),
                    source: e,
                }
            },
        ))
    })?;
    let fp = fingerprint(&sha, etl);
    let dir = root.join(format!("{}-{fp}", slug(name)));
    let summary_path = dir.join(store::SUMMARY);
    if let Some(summary) = fs::read_to_string(&summary_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        tracing::info!("reusing processed data in {}", dir.display());
        return Ok(Prepared {
            dir,
            summary: Some(summary),
            reused: true,
            fingerprint: fp,
        });
    }
    fs::create_dir_all(root).map_err(io(root))?;
    let tmp = tempfile::Builder::new()
        .prefix(".etl-")
        .tempdir_in(root)
        .map_err(io(root))?;
    let settings = EtlSettings {
        output: tmp.path().to_path_buf(),
        ..etl.clone()
    };
    let summary = run_etl_hashed(&settings, progress, Some(sha))?;
    let tmp_path = tmp.keep();
    if let Err(e) = fs::rename(&tmp_path, &dir) {
        let _ = fs::remove_dir_all(&tmp_path);
        // Another run finished the same copy first: use it.
        if !summary_path.exists() {
            return Err(io(&dir)(e));
        }
    }
    tracing::info!("processed data written to {}", dir.display());
    Ok(Prepared {
        dir,
        summary: Some(summary),
        reused: false,
        fingerprint: fp,
    })
}
