//! A test split the user made: a ratings file (any format the ETL reads, original ids) mapped
//! onto processed data's dense ids. Ids the data has never seen get new indices at the end, so
//! the model has no row for them and they count as cold.

use std::collections::HashMap;
use std::path::Path;

use super::format::{FormatError, InputFormat};
use super::interactions::{Interactions, InteractionsError};
use super::read::{read_ratings, ReadError, ReadOptions};
use super::store::Dataset;
use crate::progress::Progress;

#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    #[error("test file `{}`", path.display())]
    Format {
        path: std::path::PathBuf,
        #[source]
        source: FormatError,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Interactions(#[from] InteractionsError),
}

impl TestFileError {
    pub fn hint(&self) -> Option<String> {
        match self {
            TestFileError::Format { .. } => {
                Some("name a .csv, .tsv, .json or .parquet test file".into())
            }
            TestFileError::Read(e) => e.hint(),
            TestFileError::Interactions(_) => None,
        }
    }
}

/// Reads `path` as the test split of `ds`, extending `ds`'s id maps with ids it has never seen.
pub fn attach_test_file(ds: &mut Dataset, path: &Path) -> Result<Interactions, TestFileError> {
    let format = InputFormat::from_path(path).map_err(|source| TestFileError::Format {
        path: path.to_path_buf(),
        source,
    })?;
    let opts = ReadOptions {
        format,
        columns: Default::default(),
        has_header: None,
        strict: false,
        max_line_bytes: crate::data::read::DEFAULT_MAX_LINE_BYTES,
    };
    let raw = read_ratings(path, &opts, &Progress::hidden())?;
    let index = |ids: &mut Vec<String>, names: &[String]| -> Vec<u32> {
        let mut map: HashMap<String, u32> = ids
            .iter()
            .enumerate()
            .map(|(k, s)| (s.clone(), k as u32))
            .collect();
        names
            .iter()
            .map(|n| {
                *map.entry(n.clone()).or_insert_with(|| {
                    ids.push(n.clone());
                    ids.len() as u32 - 1
                })
            })
            .collect()
    };
    let umap = index(&mut ds.user_ids, &raw.user_names);
    let imap = index(&mut ds.item_ids, &raw.item_names);
    let (n_users, n_items) = (ds.user_ids.len(), ds.item_ids.len());
    ds.interactions.n_users = n_users;
    ds.interactions.n_items = n_items;
    let test = Interactions::new(
        raw.user.iter().map(|&c| umap[c as usize]).collect(),
        raw.item.iter().map(|&c| imap[c as usize]).collect(),
        raw.rating.clone(),
        None,
        n_users,
        n_items,
    )?;
    tracing::info!("test file {}: {} ratings", path.display(), test.len());
    Ok(test)
}
