//! Processed data on disk: the ETL's Parquet outputs, written atomically and read back.
//!
//! Knows the file names and column layout of `data/processed/`; nothing about how they were made.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;
use thiserror::Error;

use super::interactions::Interactions;

pub const INTERACTIONS: &str = "interactions.parquet";
pub const USER_MAP: &str = "user_map.parquet";
pub const ITEM_MAP: &str = "item_map.parquet";
/// The item map's optional metadata columns (`recflow etl --items-meta`).
pub const TITLE: &str = "title";
pub const CATEGORY: &str = "category";
pub const IMAGE_URL: &str = "image_url";
pub const POPULAR_ITEMS: &str = "popular_items.parquet";
pub const SUMMARY: &str = "etl_summary.json";
/// Held exclusively while a set of outputs is moved into place and shared while one is read, so
/// two ETLs into one folder never leave a mixed set and a reader sees one whole set.
pub const LOCK: &str = ".recflow.lock";
/// In each staging folder: the process that owns it (`pid start-time`), so a later ETL can
/// remove the folders of processes that were killed, and only those.
const OWNER: &str = ".owner";
const STAGING_PREFIX: &str = ".staging-";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot write to `{}`", path.display())]
    Unwritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{}`", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("`{}` is missing", path.display())]
    Missing { path: PathBuf },
    #[error("`{}` has unexpected content: {message}", path.display())]
    Layout { path: PathBuf, message: String },
    #[error("cannot serialize `{}`", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Unwritable { .. } => {
                Some("choose another folder with `--output`, or fix its permissions".into())
            }
            Self::Missing { .. } => Some("run `recflow etl` first".into()),
            _ => None,
        }
    }
}

fn unwritable(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Unwritable {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so readers
/// never see a half-written file and a failure leaves the old one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(unwritable(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(unwritable(dir))?;
    tmp.write_all(bytes).map_err(unwritable(path))?;
    tmp.as_file().sync_all().map_err(unwritable(path))?;
    tmp.persist(path).map_err(|e| StoreError::Unwritable {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Writes a frame as Parquet (snappy: what Spark, pandas and polars all read by default).
pub fn write_parquet(path: &Path, columns: Vec<Column>) -> Result<(), StoreError> {
    let height = columns.first().map_or(0, |c| c.len());
    let perr = |source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let mut df = DataFrame::new(height, columns).map_err(perr)?;
    // Written beside the target and renamed, so a failure never leaves half a file.
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".parquet-")
        .tempfile_in(dir)
        .map_err(unwritable(path))?;
    ParquetWriter::new(tmp.as_file())
        .with_compression(ParquetCompression::Snappy)
        .finish(&mut df)
        .map_err(perr)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(unwritable(path))?;
    Ok(())
}

/// A set of output files built in a hidden temporary folder inside the destination and moved into
/// place only by [`Staging::commit`]. Dropped without commit, it removes itself and the previous
/// outputs stay untouched.
pub struct Staging {
    dest: PathBuf,
    tmp: tempfile::TempDir,
    files: std::cell::RefCell<Vec<String>>,
}

impl Staging {
    pub fn new(dest: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dest).map_err(unwritable(dest))?;
        remove_stale_staging(dest);
        let tmp = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(dest)
            .map_err(unwritable(dest))?;
        if let Some(me) = process_identity(std::process::id()) {
            let path = tmp.path().join(OWNER);
            fs::write(&path, me).map_err(unwritable(&path))?;
        }
        Ok(Self {
            dest: dest.to_path_buf(),
            tmp,
            files: Default::default(),
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn write_frame(&self, name: &str, columns: Vec<Column>) -> Result<(), StoreError> {
        write_parquet(&self.path(name), columns)?;
        self.files.borrow_mut().push(name.to_string());
        Ok(())
    }

    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let path = self.path(name);
        let text = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json {
            path: path.clone(),
            source,
        })?;
        fs::write(&path, text).map_err(unwritable(&path))?;
        self.files.borrow_mut().push(name.to_string());
        Ok(())
    }

    /// Moves every file into the destination, in the order written (the summary last), under
    /// the folder's exclusive lock.
    pub fn commit(self) -> Result<(), StoreError> {
        let lock_path = self.dest.join(LOCK);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(unwritable(&lock_path))?;
        lock.lock().map_err(unwritable(&lock_path))?;
        for name in self.files.borrow().iter() {
            let to = self.dest.join(name);
            fs::rename(self.path(name), &to).map_err(unwritable(&to))?;
        }
        Ok(())
    }
}

/// `pid start-time` of a running process (the start time tells a reused pid apart), from
/// `/proc`; `None` where there is no `/proc` to ask.
fn process_identity(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, counted after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{pid} {start}"))
}

/// Removes the staging folders in `dest` whose owning process has ended (killed ETLs), with a
/// log line each. A folder whose owner is running, or that names no owner, is left alone; on a
/// system without `/proc` nothing is removed.
fn remove_stale_staging(dest: &Path) {
    if !Path::new("/proc/self/stat").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(dest) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(STAGING_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let Ok(owner) = fs::read_to_string(dir.join(OWNER)) else {
            continue;
        };
        let Some(pid) = owner
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if process_identity(pid).as_deref() == Some(owner.trim()) {
            continue;
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => tracing::info!(
                "removed `{}`, left by an ETL that ended before finishing (process {pid})",
                dir.display()
            ),
            Err(e) => tracing::warn!("cannot remove `{}`: {e}", dir.display()),
        }
    }
}

/// The shared lock of a processed-data folder, while it is read: `None` when the folder has no
/// lock file (written by no ETL of this version, so no commit can be under way).
fn read_lock(dir: &Path) -> Option<fs::File> {
    let f = fs::File::open(dir.join(LOCK)).ok()?;
    f.lock_shared().ok()?;
    Some(f)
}

/// Processed data read back: interactions over dense ids, and the ids themselves.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub interactions: Interactions,
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    /// Titles, categories and image URLs by item index, when the ETL had `--items-meta`.
    pub item_meta: Option<Vec<super::meta::ItemMeta>>,
}

fn read_frame(path: &Path) -> Result<DataFrame, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    let file = fs::File::open(path).map_err(|e| StoreError::Read {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    ParquetReader::new(file)
        .finish()
        .map_err(|source| StoreError::Read {
            path: path.to_path_buf(),
            source,
        })
}

fn column<'a>(df: &'a DataFrame, path: &Path, name: &str) -> Result<&'a Series, StoreError> {
    df.column(name)
        .map(|c| c.as_materialized_series())
        .map_err(|_| StoreError::Layout {
            path: path.to_path_buf(),
            message: format!("no `{name}` column"),
        })
}

fn layout(path: &Path) -> impl Fn(PolarsError) -> StoreError + '_ {
    move |e| StoreError::Layout {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Reads `(idx, id)` from a map file, checking indices are `0..n` in order.
pub fn read_id_map(path: &Path, idx_col: &str, id_col: &str) -> Result<Vec<String>, StoreError> {
    let df = read_frame(path)?;
    let idx = column(&df, path, idx_col)?
        .cast(&DataType::Int64)
        .map_err(layout(path))?;
    let ids = column(&df, path, id_col)?
        .cast(&DataType::String)
        .map_err(layout(path))?;
    let idx = idx.i64().map_err(layout(path))?;
    let ids = ids.str().map_err(layout(path))?;
    let mut out = vec![String::new(); df.height()];
    for (k, (i, s)) in idx.iter().zip(ids.iter()).enumerate() {
        let i = i
            .filter(|&i| i >= 0 && (i as usize) < out.len())
            .ok_or_else(|| StoreError::Layout {
                path: path.to_path_buf(),
                message: format!("row {k}: index out of range"),
            })?;
        out[i as usize] = s.unwrap_or_default().to_string();
    }
    Ok(out)
}

/// The item map's metadata columns, by item index; `None` when the ETL had no `--items-meta`.
pub fn read_item_meta(dir: &Path) -> Result<Option<Vec<super::meta::ItemMeta>>, StoreError> {
    let path = dir.join(ITEM_MAP);
    let df = read_frame(&path)?;
    if df.column(TITLE).is_err() {
        return Ok(None);
    }
    let idx = column(&df, &path, "item_idx")?
        .cast(&DataType::Int64)
        .map_err(layout(&path))?;
    let idx = idx.i64().map_err(layout(&path))?;
    let mut out = vec![super::meta::ItemMeta::default(); df.height()];
    type Field = fn(&mut super::meta::ItemMeta) -> &mut Option<String>;
    let fields: [(&str, Field); 3] = [
        (TITLE, |m| &mut m.title),
        (CATEGORY, |m| &mut m.category),
        (IMAGE_URL, |m| &mut m.image_url),
    ];
    for (name, field) in fields {
        let Ok(c) = df.column(name) else { continue };
        let c = c.cast(&DataType::String).map_err(layout(&path))?;
        let c = c.str().map_err(layout(&path))?;
        for (i, v) in idx.iter().zip(c.iter()) {
            if let (Some(i), Some(v)) = (i, v) {
                if let Some(m) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                    *field(m) = Some(v.to_string());
                }
            }
        }
    }
    Ok(Some(out))
}

/// The columns of an interactions table as written: `user_idx`, `item_idx` (int32), `rating`
/// (float32) and, when present, `timestamp` (int64).
pub fn interaction_columns(t: &Interactions) -> Vec<Column> {
    let mut cols = vec![
        Column::new(
            "user_idx".into(),
            t.user.iter().map(|&u| u as i32).collect::<Vec<i32>>(),
        ),
        Column::new(
            "item_idx".into(),
            t.item.iter().map(|&i| i as i32).collect::<Vec<i32>>(),
        ),
        Column::new("rating".into(), &t.rating),
    ];
    if let Some(ts) = &t.timestamp {
        cols.push(Column::new("timestamp".into(), ts));
    }
    cols
}

/// Writes an interactions table (atomically, see [`write_parquet`]).
pub fn write_interactions(path: &Path, t: &Interactions) -> Result<(), StoreError> {
    write_parquet(path, interaction_columns(t))
}

/// `(idx, id)` columns of an id map.
pub fn id_map_columns(idx_col: &str, id_col: &str, ids: &[String]) -> Vec<Column> {
    vec![
        Column::new(idx_col.into(), (0..ids.len() as i32).collect::<Vec<i32>>()),
        Column::new(id_col.into(), ids),
    ]
}

/// The item map's columns: `item_idx`, `item_id` and, when there is metadata (by item index),
/// `title`, `category` and `image_url` (null where unknown).
pub fn item_map_columns(ids: &[String], meta: Option<&[super::meta::ItemMeta]>) -> Vec<Column> {
    let mut cols = id_map_columns("item_idx", "item_id", ids);
    if let Some(meta) = meta {
        type Field = fn(&super::meta::ItemMeta) -> Option<&str>;
        let fields: [(&str, Field); 3] = [
            (TITLE, |m| m.title.as_deref()),
            (CATEGORY, |m| m.category.as_deref()),
            (IMAGE_URL, |m| m.image_url.as_deref()),
        ];
        for (name, f) in fields {
            cols.push(Column::new(
                name.into(),
                meta.iter().map(f).collect::<Vec<Option<&str>>>(),
            ));
        }
    }
    cols
}

/// Reads an interactions table written by [`write_interactions`] (or the ETL) over id spaces of
/// `n_users` users and `n_items` items.
pub fn read_interactions(
    path: &Path,
    n_users: usize,
    n_items: usize,
) -> Result<Interactions, StoreError> {
    let df = read_frame(path)?;
    let to_u32 = |name: &str| -> Result<Vec<u32>, StoreError> {
        let s = column(&df, path, name)?
            .cast(&DataType::Int64)
            .map_err(layout(path))?;
        s.i64()
            .map_err(layout(path))?
            .iter()
            .map(|v| {
                v.filter(|&v| v >= 0 && v <= u32::MAX as i64)
                    .map(|v| v as u32)
            })
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| StoreError::Layout {
                path: path.to_path_buf(),
                message: format!("`{name}` has nulls or negative values"),
            })
    };
    let user = to_u32("user_idx")?;
    let item = to_u32("item_idx")?;
    let rating = column(&df, path, "rating")?
        .cast(&DataType::Float32)
        .map_err(layout(path))?;
    let rating: Vec<f32> = rating
        .f32()
        .map_err(layout(path))?
        .iter()
        .map(|v| v.unwrap_or(f32::NAN))
        .collect();
    let timestamp = match df.column("timestamp") {
        Ok(c) => {
            let s = c
                .as_materialized_series()
                .cast(&DataType::Int64)
                .map_err(layout(path))?;
            Some(
                s.i64()
                    .map_err(layout(path))?
                    .iter()
                    .map(|v| v.unwrap_or(0))
                    .collect(),
            )
        }
        Err(_) => None,
    };
    Interactions::new(user, item, rating, timestamp, n_users, n_items).map_err(|e| {
        StoreError::Layout {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })
}

/// Reads the ETL outputs in `dir`.
pub fn load_dataset(dir: &Path) -> Result<Dataset, StoreError> {
    let _lock = read_lock(dir);
    let user_ids = read_id_map(&dir.join(USER_MAP), "user_idx", "user_id")?;
    let item_ids = read_id_map(&dir.join(ITEM_MAP), "item_idx", "item_id")?;
    let interactions = read_interactions(&dir.join(INTERACTIONS), user_ids.len(), item_ids.len())?;
    let item_meta = read_item_meta(dir)?;
    Ok(Dataset {
        interactions,
        user_ids,
        item_ids,
        item_meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_without_commit_leaves_previous_outputs() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SUMMARY), b"old").unwrap();
        {
            let s = Staging::new(dir.path()).unwrap();
            s.write_json(SUMMARY, &serde_json::json!({"new": true}))
                .unwrap();
        }
        assert_eq!(fs::read(dir.path().join(SUMMARY)).unwrap(), b"old");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "the staging folder is removed");
    }

    #[test]
    fn parquet_round_trip_keeps_ids_and_ratings() {
        let dir = tempfile::tempdir().unwrap();
        let s = Staging::new(dir.path()).unwrap();
        s.write_frame(
            INTERACTIONS,
            vec![
                Column::new("user_idx".into(), &[0i32, 1, 1]),
                Column::new("item_idx".into(), &[1i32, 0, 1]),
                Column::new("rating".into(), &[5.0f32, 3.0, 4.0]),
            ],
        )
        .unwrap();
        s.write_frame(
            USER_MAP,
            vec![
                Column::new("user_idx".into(), &[0i32, 1]),
                Column::new("user_id".into(), &["a", "b"]),
            ],
        )
        .unwrap();
        s.write_frame(
            ITEM_MAP,
            vec![
                Column::new("item_idx".into(), &[0i32, 1]),
                Column::new("item_id".into(), &["x", "y"]),
            ],
        )
        .unwrap();
        s.commit().unwrap();
        let d = load_dataset(dir.path()).unwrap();
        assert_eq!(d.interactions.user, vec![0, 1, 1]);
        assert_eq!(d.interactions.rating, vec![5.0, 3.0, 4.0]);
        assert_eq!(d.item_ids, vec!["x", "y"]);
        assert!(d.interactions.timestamp.is_none());
    }

    #[test]
    fn staging_folders_of_ended_processes_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".staging-dead");
        let live = dir.path().join(".staging-live");
        let anonymous = dir.path().join(".staging-anonymous");
        for d in [&dead, &live, &anonymous] {
            fs::create_dir(d).unwrap();
        }
        // A pid above Linux's maximum (2^22) never runs.
        fs::write(dead.join(OWNER), "99999999 1").unwrap();
        let me = process_identity(std::process::id()).unwrap();
        fs::write(live.join(OWNER), &me).unwrap();
        // The same live pid with another start time is a reused pid: its owner has ended.
        let reused = dir.path().join(".staging-reused");
        fs::create_dir(&reused).unwrap();
        fs::write(reused.join(OWNER), format!("{} 1", std::process::id())).unwrap();
        let s = Staging::new(dir.path()).unwrap();
        assert!(!dead.exists() && !reused.exists());
        assert!(live.exists() && anonymous.exists());
        assert_eq!(fs::read_to_string(s.path(OWNER)).unwrap(), me);
    }

    #[test]
    fn concurrent_commits_into_one_folder_never_show_a_mixed_set() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().to_path_buf();
        const NAMES: [&str; 3] = ["a.json", "b.json", "c.json"];
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let dest = dest.clone();
                std::thread::spawn(move || {
                    for round in 0..150 {
                        let s = Staging::new(&dest).unwrap();
                        for n in NAMES {
                            s.write_json(n, &format!("{w}-{round}")).unwrap();
                        }
                        s.commit().unwrap();
                    }
                })
            })
            .collect();
        let reader = {
            let (dest, stop) = (dest.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut mixed = 0;
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let Some(_lock) = read_lock(&dest) else {
                        continue;
                    };
                    let got: Vec<_> = NAMES
                        .iter()
                        .filter_map(|n| fs::read_to_string(dest.join(n)).ok())
                        .collect();
                    if got.len() == NAMES.len() {
                        reads += 1;
                        if got.iter().any(|g| g != &got[0]) {
                            mixed += 1;
                        }
                    }
                }
                (reads, mixed)
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (reads, mixed) = reader.join().unwrap();
        assert!(reads > 0);
        assert_eq!(mixed, 0, "{mixed} of {reads} reads saw files of two ETLs");
        let last: Vec<_> = NAMES
            .iter()
            .map(|n| fs::read_to_string(dest.join(n)).unwrap())
            .collect();
        assert!(
            last.iter().all(|g| g == &last[0]),
            "final set mixed: {last:?}"
        );
    }
}
