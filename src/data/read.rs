//! Reading raw ratings from JSON lines, CSV/TSV and Parquet into interned columns.
//!
//! Only the four needed fields are parsed: JSON lines are decoded field by field so review text is
//! scanned but never materialized, and large files are streamed through in blocks decoded in
//! parallel. Ids are interned to provisional codes in first-seen order; the ETL re-indexes them.
//! This module knows nothing about cleaning rules beyond "can this field be parsed".

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use flate2::read::MultiGzDecoder;
use polars::prelude::*;
use rayon::prelude::*;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Serialize;
use thiserror::Error;

use super::format::{
    is_gzip_name, locate, normalize_header, ColumnRef, ColumnSpec, Field, InputFormat,
};
use crate::progress::{Bar, Progress};

/// Timestamp value standing for "absent or unparseable" in [`RawRatings::timestamp`].
pub const NO_TIMESTAMP: i64 = i64::MIN;

/// Bytes handed to one parallel decoding task.
const BLOCK_BYTES: usize = 4 << 20;

/// Longest input line read by default. Real review lines are well under 1 MiB; a longer one is
/// skipped as it streams past, so memory does not grow with it.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// Longest user or item id kept. Ids are held in memory and written to the id maps, so a
/// runaway id (a whole review pasted into `reviewerID`) is dropped and counted instead.
pub const MAX_ID_BYTES: usize = 1024;

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("input file `{}` does not exist", .0.display())]
    Missing(PathBuf),
    #[error("`{}` is a symbolic link to `{}`, which does not exist", path.display(), target.display())]
    DanglingLink { path: PathBuf, target: PathBuf },
    #[error("`{}` is a loop of symbolic links (it leads back to itself)", .0.display())]
    LinkLoop(PathBuf),
    #[error("`{}` is a {kind}, not a file", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{}` is empty", .0.display())]
    Empty(PathBuf),
    #[error("`{}` is truncated or not valid gzip (stopped after line {line})", path.display())]
    Gzip {
        path: PathBuf,
        line: u64,
        #[source]
        source: io::Error,
    },
    #[error("`{}` line {line} is longer than {limit} bytes", path.display())]
    LineTooLong {
        path: PathBuf,
        line: u64,
        limit: usize,
    },
    #[error("`{}` line {line}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("`{}`: {}", path.display(), missing_column(field, asked.as_deref(), found))]
    ColumnNotFound {
        path: PathBuf,
        field: &'static str,
        /// The column `--columns` named for the field, if it named one.
        asked: Option<String>,
        found: String,
    },
    #[error("the column mapping gives `{column}` to both `{first}` and `{second}`; each field needs a column of its own")]
    ColumnTwice {
        column: String,
        first: &'static str,
        second: &'static str,
    },
    #[error("`{}`: {}", path.display(), missing_key(field, asked.as_deref(), found))]
    FieldAbsent {
        path: PathBuf,
        field: &'static str,
        /// The key `--columns` named for the field, if it named one.
        asked: Option<String>,
        found: String,
    },
    #[error("`{}`: the `{field}` column `{column}` holds {dtype} values, not single ids or numbers", path.display())]
    NotScalar {
        path: PathBuf,
        field: &'static str,
        column: String,
        dtype: String,
    },
    #[error("`{}`: column positions such as `{column}` only apply to CSV/TSV files", path.display())]
    PositionInJson { path: PathBuf, column: String },
    /// `message` is polars' first line, cut: a runaway quoted field must not fill the terminal.
    #[error("`{}`: cannot read as {format}: {message}", path.display())]
    Polars {
        path: PathBuf,
        format: InputFormat,
        message: String,
    },
}

impl ReadError {
    /// A line telling the user what to do next, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Malformed { .. } => {
                Some("drop `--strict` to skip and count malformed lines instead".into())
            }
            Self::LineTooLong { .. } => Some(
                "raise the limit with `--max-line-bytes` (`[data] max_line_bytes`), or drop \
                 `--strict` to skip and count such lines"
                    .into(),
            ),
            Self::ColumnNotFound {
                field,
                asked: Some(_),
                ..
            }
            | Self::FieldAbsent {
                field,
                asked: Some(_),
                ..
            } => Some(format!(
                "use one of the columns found, as `--columns {field}=<name or 0-based position>`"
            )),
            Self::ColumnNotFound { field, .. } | Self::FieldAbsent { field, .. } => Some(format!(
                "name the column with `--columns {field}=<name or 0-based position>`"
            )),
            Self::ColumnTwice { .. } => {
                Some("map `user`, `item`, `rating` and `timestamp` to different columns".into())
            }
            Self::Gzip { .. } => Some(
                "download the file again; a `.part` file means the download did not finish".into(),
            ),
            Self::Empty(_) => {
                Some("check the input path, or run `recflow generate` for a sample".into())
            }
            Self::DanglingLink { .. } | Self::LinkLoop(_) => {
                Some("point the link at the input file, or pass the file's own path".into())
            }
            Self::NotAFile { .. } => Some("pass the path of a file inside it".into()),
            Self::Polars { .. } => Some(
                "check the file for an unterminated `\"` quote or a wrong separator; \
                 `--columns` names the columns"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Rows dropped while reading and cleaning, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DropCounts {
    /// Lines that are not valid JSON objects.
    pub malformed_line: u64,
    /// User missing, null or not a string/number.
    pub missing_user: u64,
    pub missing_item: u64,
    pub missing_rating: u64,
    /// Rating present but not a number.
    pub bad_rating: u64,
    /// Lines longer than the line limit (`--max-line-bytes`), skipped unread.
    pub line_too_long: u64,
    /// User or item ids longer than [`MAX_ID_BYTES`].
    pub id_too_long: u64,
    /// Timestamp missing or unparseable in a file that has timestamps.
    pub bad_timestamp: u64,
    /// Rating outside the configured range.
    pub rating_out_of_range: u64,
    /// Older copies of a (user, item) pair.
    pub duplicate: u64,
}

impl DropCounts {
    pub fn total(&self) -> u64 {
        self.malformed_line
            + self.missing_user
            + self.missing_item
            + self.missing_rating
            + self.bad_rating
            + self.line_too_long
            + self.id_too_long
            + self.bad_timestamp
            + self.rating_out_of_range
            + self.duplicate
    }

    fn add(&mut self, o: &DropCounts) {
        self.malformed_line += o.malformed_line;
        self.missing_user += o.missing_user;
        self.missing_item += o.missing_item;
        self.missing_rating += o.missing_rating;
        self.bad_rating += o.bad_rating;
        self.line_too_long += o.line_too_long;
        self.id_too_long += o.id_too_long;
        self.bad_timestamp += o.bad_timestamp;
        self.rating_out_of_range += o.rating_out_of_range;
        self.duplicate += o.duplicate;
    }
}

/// How to read one input file.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub format: InputFormat,
    pub columns: ColumnSpec,
    /// `None`: decide from the first line.
    pub has_header: Option<bool>,
    /// Fail on the first malformed line instead of skipping it.
    pub strict: bool,
    /// Lines longer than this are skipped and counted (JSON lines; an error with `strict`).
    pub max_line_bytes: usize,
}

/// Interned raw ratings: codes index `user_names` / `item_names` in first-seen order.
#[derive(Debug, Default)]
pub struct RawRatings {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub rating: Vec<f32>,
    /// [`NO_TIMESTAMP`] where absent; meaningful only when `has_timestamp`.
    pub timestamp: Vec<i64>,
    pub user_names: Vec<String>,
    pub item_names: Vec<String>,
    /// Data rows seen (lines or records), kept or not.
    pub rows_read: u64,
    pub drops: DropCounts,
    /// The source has no rating column: every row is rating 1.
    pub implicit: bool,
    /// The source has a timestamp column (or field in at least one JSON row).
    pub has_timestamp: bool,
    /// The source columns used, for the summary (`user` -> `reviewerID`, ...).
    pub columns_used: Vec<(String, String)>,
}

/// Interns string ids to dense codes in first-seen order.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

#[derive(Default)]
struct Interner {
    map: FastMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn code(&mut self, s: &str) -> u32 {
        if let Some(&c) = self.map.get(s) {
            return c;
        }
        let c = self.names.len() as u32;
        self.map.insert(s.to_owned(), c);
        self.names.push(s.to_owned());
        c
    }
}

/// Reads `path` as described by `opts`.
pub fn read_ratings(
    path: &Path,
    opts: &ReadOptions,
    progress: &Progress,
) -> Result<RawRatings, ReadError> {
    if let Some((column, first, second)) = opts.columns.repeated() {
        return Err(ReadError::ColumnTwice {
            column: column.trim_start_matches('#').to_string(),
            first,
            second,
        });
    }
    let meta = check_input(path)?;
    // A regular file of length 0 is empty; files under /proc report 0 and still hold data, so
    // only Parquet (which needs its footer) is refused here, the rest after reading.
    if meta.len() == 0 && opts.format == InputFormat::Parquet {
        return Err(ReadError::Empty(path.to_path_buf()));
    }
    let raw = match opts.format {
        InputFormat::Json => read_json_lines(path, meta.len(), opts, progress)?,
        InputFormat::Csv | InputFormat::Tsv => read_delimited(path, opts)?,
        InputFormat::Parquet => read_parquet(path, opts)?,
    };
    if raw.rows_read == 0 {
        return Err(ReadError::Empty(path.to_path_buf()));
    }
    Ok(raw)
}

fn missing_key(field: &str, asked: Option<&str>, found: &str) -> String {
    match asked {
        Some(k) => format!("no row has a `{k}` key (for `{field}`); keys seen: {found}"),
        None => format!("no row has a `{field}` field (fields seen: {found})"),
    }
}

fn missing_column(field: &str, asked: Option<&str>, found: &str) -> String {
    match asked {
        Some(c) => format!("column `{c}` (for `{field}`) not found; columns found: {found}"),
        None => format!("no `{field}` column found (columns found: {found})"),
    }
}

/// The input's metadata when it is a regular file (through links); otherwise the error that says
/// what it is: missing, a dangling link, a loop of links, a folder, a pipe or a device. Pipes are
/// the caller's to copy into a file first (the ETL reads its input twice: once to hash it).
pub fn check_input(path: &Path) -> Result<std::fs::Metadata, ReadError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(if link && is_link_loop(&e) {
                ReadError::LinkLoop(path.to_path_buf())
            } else if link && e.kind() == io::ErrorKind::NotFound {
                ReadError::DanglingLink {
                    path: path.to_path_buf(),
                    target: std::fs::read_link(path).unwrap_or_default(),
                }
            } else if e.kind() == io::ErrorKind::NotFound {
                ReadError::Missing(path.to_path_buf())
            } else {
                ReadError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            });
        }
    };
    if meta.is_file() {
        return Ok(meta);
    }
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = if t.is_dir() {
        "folder"
    } else if t.is_fifo() {
        "pipe"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    };
    Err(ReadError::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

fn is_link_loop(e: &io::Error) -> bool {
    // ELOOP: 40 on Linux, 62 on the BSDs and macOS.
    let eloop = if cfg!(target_os = "linux") { 40 } else { 62 };
    e.raw_os_error() == Some(eloop)
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> ReadError + '_ {
    move |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn open(path: &Path) -> Result<File, ReadError> {
    File::open(path).map_err(io_err(path))
}

// ---------------------------------------------------------------------------------------------
// JSON lines

/// Candidate key names for each field, in preference order.
struct JsonNames {
    fields: [Vec<String>; 4],
}

impl JsonNames {
    fn new(path: &Path, spec: &ColumnSpec) -> Result<Self, ReadError> {
        let mut fields: [Vec<String>; 4] = Default::default();
        for (slot, f) in fields.iter_mut().zip(Field::ALL) {
            *slot = match spec.get(f) {
                Some(ColumnRef::Name(n)) => vec![n.clone()],
                Some(c @ ColumnRef::Index(_)) => {
                    return Err(ReadError::PositionInJson {
                        path: path.to_path_buf(),
                        column: format!("{}={}", f.name(), c.to_string().trim_start_matches('#')),
                    })
                }
                None => f.aliases().iter().map(|s| s.to_string()).collect(),
            };
        }
        Ok(Self { fields })
    }

    /// Which field a key names, and how preferred that name is (0 = most).
    fn lookup(&self, key: &str) -> Option<(usize, usize)> {
        self.fields
            .iter()
            .enumerate()
            .find_map(|(f, names)| names.iter().position(|n| n == key).map(|rank| (f, rank)))
    }
}

/// A string-ish id value: strings are borrowed where possible, numbers formatted.
enum IdVal<'de> {
    Absent,
    Null,
    Str(Cow<'de, str>),
}

/// A numeric value that may arrive as a number or a numeric string.
#[derive(Clone, Copy)]
enum NumVal {
    Absent,
    Null,
    Num(f64),
    Bad,
}

struct IdSeed;

impl<'de> DeserializeSeed<'de> for IdSeed {
    type Value = IdVal<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdVal<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or number id")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(IdVal::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(IdVal::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(IdVal::Str(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(IdVal::Str(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(IdVal::Str(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(IdVal::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(IdVal::Null)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IdVal::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IdVal::Null)
            }
        }
        d.deserialize_any(V)
    }
}

struct NumSeed;

impl<'de> DeserializeSeed<'de> for NumSeed {
    type Value = NumVal;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NumVal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(NumVal::Num(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(NumVal::Num(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(NumVal::Num(v as f64))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(match v.trim().parse::<f64>() {
                    Ok(x) => NumVal::Num(x),
                    Err(_) if v.trim().is_empty() => NumVal::Null,
                    Err(_) => NumVal::Bad,
                })
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(NumVal::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(NumVal::Bad)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(NumVal::Bad)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(NumVal::Bad)
            }
        }
        d.deserialize_any(V)
    }
}

/// Resolves a key to a field without allocating.
struct KeySeed<'a>(&'a JsonNames);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<(usize, usize)>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<'a>(&'a JsonNames);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Option<(usize, usize)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(self.0.lookup(v))
            }
        }
        d.deserialize_str(V(self.0))
    }
}

struct LineOut<'de> {
    user: IdVal<'de>,
    item: IdVal<'de>,
    rating: NumVal,
    ts: NumVal,
}

struct LineSeed<'a>(&'a JsonNames);

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = LineOut<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<'a>(&'a JsonNames);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = LineOut<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = LineOut {
                    user: IdVal::Absent,
                    item: IdVal::Absent,
                    rating: NumVal::Absent,
                    ts: NumVal::Absent,
                };
                // Preference rank of the key that filled each field, so `reviewerID` beats `user`.
                let mut rank = [usize::MAX; 4];
                while let Some(key) = m.next_key_seed(KeySeed(self.0))? {
                    match key {
                        Some((f, r)) if r < rank[f] => {
                            rank[f] = r;
                            match f {
                                0 => out.user = m.next_value_seed(IdSeed)?,
                                1 => out.item = m.next_value_seed(IdSeed)?,
                                2 => out.rating = m.next_value_seed(NumSeed)?,
                                _ => out.ts = m.next_value_seed(NumSeed)?,
                            }
                        }
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(self.0))
    }
}

/// What one block of lines decodes to, with block-local codes.
#[derive(Default)]
struct BlockOut<'a> {
    user: Vec<u32>,
    item: Vec<u32>,
    rating: Vec<f32>,
    ts: Vec<i64>,
    /// Distinct ids in first-seen order, borrowed from the block where no unescaping was needed.
    user_names: Vec<Cow<'a, str>>,
    item_names: Vec<Cow<'a, str>>,
    drops: DropCounts,
    rows: u64,
    saw_rating: bool,
    saw_ts: bool,
    first_malformed: Option<(u64, String)>,
    first_too_long: Option<u64>,
}

fn local_code<'de>(
    map: &mut FastMap<Cow<'de, str>, u32>,
    names: &mut Vec<Cow<'de, str>>,
    s: Cow<'de, str>,
) -> u32 {
    if let Some(&c) = map.get(s.as_ref()) {
        return c;
    }
    let c = names.len() as u32;
    names.push(s.clone());
    map.insert(s, c);
    c
}

fn decode_block<'a>(
    block: &'a [u8],
    first_line: u64,
    names: &JsonNames,
    max_line: usize,
) -> BlockOut<'a> {
    let mut out = BlockOut::default();
    let mut umap: FastMap<Cow<str>, u32> = FastMap::default();
    let mut imap: FastMap<Cow<str>, u32> = FastMap::default();
    for (this_line, line) in (first_line..).zip(block.split(|&b| b == b'\n')) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        out.rows += 1;
        if line.len() > max_line {
            out.drops.line_too_long += 1;
            out.first_too_long.get_or_insert(this_line);
            continue;
        }
        let mut de = serde_json::Deserializer::from_slice(line);
        let parsed = LineSeed(names)
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|_| v));
        let rec = match parsed {
            Ok(r) => r,
            Err(e) => {
                out.drops.malformed_line += 1;
                if out.first_malformed.is_none() {
                    out.first_malformed = Some((this_line, e.to_string()));
                }
                continue;
            }
        };
        if !matches!(rec.rating, NumVal::Absent) {
            out.saw_rating = true;
        }
        if !matches!(rec.ts, NumVal::Absent) {
            out.saw_ts = true;
        }
        let user = match rec.user {
            IdVal::Str(s) if !s.trim().is_empty() => s,
            _ => {
                out.drops.missing_user += 1;
                continue;
            }
        };
        let item = match rec.item {
            IdVal::Str(s) if !s.trim().is_empty() => s,
            _ => {
                out.drops.missing_item += 1;
                continue;
            }
        };
        if user.len() > MAX_ID_BYTES || item.len() > MAX_ID_BYTES {
            out.drops.id_too_long += 1;
            continue;
        }
        // Absent means implicit feedback (decided per file later); null means a missing rating.
        let rating = match rec.rating {
            NumVal::Num(x) if as_rating(x).is_some() => x as f32,
            NumVal::Absent => f32::NAN,
            NumVal::Null => {
                out.drops.missing_rating += 1;
                continue;
            }
            _ => {
                out.drops.bad_rating += 1;
                continue;
            }
        };
        let ts = match rec.ts {
            NumVal::Num(x) if x.is_finite() => x as i64,
            _ => NO_TIMESTAMP,
        };
        out.user
            .push(local_code(&mut umap, &mut out.user_names, user));
        out.item
            .push(local_code(&mut imap, &mut out.item_names, item));
        out.rating.push(rating);
        out.ts.push(ts);
    }
    out
}

/// Counts bytes pulled through a reader, for the progress bar.
struct Counting<R> {
    inner: R,
    progress: Bar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

enum Chunk {
    Block {
        first_line: u64,
        bytes: Vec<u8>,
    },
    /// A line longer than the limit, skipped without being held.
    TooLong {
        line: u64,
    },
    Failed {
        line: u64,
        error: io::Error,
    },
}

/// Reads whole lines in blocks of about [`BLOCK_BYTES`], numbering their first lines. A line
/// over `max_line` bytes is read past in pieces and reported as [`Chunk::TooLong`], so memory
/// stays within about `max_line` plus a block whatever the input's longest line.
fn produce_blocks(mut reader: Box<dyn Read + Send>, tx: mpsc::SyncSender<Chunk>, max_line: usize) {
    let mut carry: Vec<u8> = Vec::new();
    let mut next_line: u64 = 1;
    loop {
        if carry.len() > max_line {
            // `carry` is one unfinished line already over the limit: drop it and what follows
            // up to its newline.
            let line = next_line;
            carry.clear();
            let mut piece = vec![0u8; 64 << 10];
            let rest = loop {
                match reader.read(&mut piece) {
                    Ok(0) => break None,
                    Ok(n) => {
                        if let Some(pos) = memchr::memchr(b'\n', &piece[..n]) {
                            break Some(piece[pos + 1..n].to_vec());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        let _ = tx.send(Chunk::Failed { line, error });
                        return;
                    }
                }
            };
            next_line += 1;
            if tx.send(Chunk::TooLong { line }).is_err() {
                return;
            }
            match rest {
                Some(rest) => carry = rest,
                None => return,
            }
        }
        let mut buf = std::mem::take(&mut carry);
        let start = buf.len();
        buf.resize(start + BLOCK_BYTES, 0);
        let mut filled = start;
        let mut eof = false;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    // Count the lines of this block decoded before the failure too: a small
                    // damaged file fails inside its first block.
                    let done = memchr::memchr_iter(b'\n', &buf[..filled]).count() as u64;
                    let _ = tx.send(Chunk::Failed {
                        line: next_line + done,
                        error,
                    });
                    return;
                }
            }
        }
        buf.truncate(filled);
        if !eof {
            // Keep the partial last line for the next block.
            if let Some(pos) = memchr::memrchr(b'\n', &buf) {
                carry = buf.split_off(pos + 1);
            } else {
                carry = buf;
                continue;
            }
        }
        let lines = memchr::memchr_iter(b'\n', &buf).count() as u64;
        let first_line = next_line;
        next_line += lines;
        if !buf.is_empty()
            && tx
                .send(Chunk::Block {
                    first_line,
                    bytes: buf,
                })
                .is_err()
        {
            return;
        }
        if eof {
            return;
        }
    }
}

fn read_json_lines(
    path: &Path,
    size: u64,
    opts: &ReadOptions,
    progress: &Progress,
) -> Result<RawRatings, ReadError> {
    let names = JsonNames::new(path, &opts.columns)?;
    let file = open(path)?;
    let bar = progress.bytes(size, &format!("reading {}", path.display()));
    let counted = Counting {
        inner: file,
        progress: bar.clone(),
    };
    let gz = is_gzip_name(path) || sniff_gzip(path)?;
    let reader: Box<dyn Read + Send> = if gz {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            1 << 20,
            counted,
        )))
    } else {
        Box::new(counted)
    };
    let (tx, rx) = mpsc::sync_channel::<Chunk>(4);
    let max_line = opts.max_line_bytes;
    let producer = std::thread::spawn(move || produce_blocks(reader, tx, max_line));

    let mut raw = RawRatings::default();
    let mut users = Interner::default();
    let mut items = Interner::default();
    let (mut saw_rating, mut saw_ts) = (false, false);
    let mut failure: Option<ReadError> = None;
    let batch_len = rayon::current_num_threads().max(1) * 2;
    let mut batch: Vec<(u64, Vec<u8>)> = Vec::with_capacity(batch_len);
    let mut done = false;
    let (mut waiting, mut decoding, mut merging) = (0f64, 0f64, 0f64);
    while !done {
        let tw = std::time::Instant::now();
        batch.clear();
        // A skipped long line ends the batch, so it is counted after the lines before it.
        let mut too_long: Option<u64> = None;
        while batch.len() < batch_len {
            match rx.recv() {
                Ok(Chunk::Block { first_line, bytes }) => batch.push((first_line, bytes)),
                Ok(Chunk::TooLong { line }) => {
                    too_long = Some(line);
                    break;
                }
                Ok(Chunk::Failed { line, error }) => {
                    failure = Some(if gz {
                        ReadError::Gzip {
                            path: path.to_path_buf(),
                            line: line.saturating_sub(1),
                            source: error,
                        }
                    } else {
                        ReadError::Io {
                            path: path.to_path_buf(),
                            source: error,
                        }
                    });
                    done = true;
                    break;
                }
                Err(_) => {
                    done = true;
                    break;
                }
            }
        }
        waiting += tw.elapsed().as_secs_f64();
        let td = std::time::Instant::now();
        let outs: Vec<BlockOut> = batch
            .par_iter()
            .map(|(first, bytes)| decode_block(bytes, *first, &names, max_line))
            .collect();
        decoding += td.elapsed().as_secs_f64();
        let tm = std::time::Instant::now();
        for out in outs {
            if opts.strict {
                let long = out.first_too_long.map(|line| ReadError::LineTooLong {
                    path: path.to_path_buf(),
                    line,
                    limit: max_line,
                });
                let bad = out
                    .first_malformed
                    .map(|(line, message)| ReadError::Malformed {
                        path: path.to_path_buf(),
                        line,
                        message,
                    });
                // The earlier of the two lines is the error.
                let first = match (long, bad) {
                    (Some(l), Some(b)) => Some(if error_line(&l) < error_line(&b) {
                        l
                    } else {
                        b
                    }),
                    (l, b) => l.or(b),
                };
                if let Some(e) = first {
                    failure = Some(e);
                    done = true;
                    break;
                }
            }
            // Block-local codes to global codes: one lookup per distinct id per block.
            let umap: Vec<u32> = out.user_names.iter().map(|s| users.code(s)).collect();
            let imap: Vec<u32> = out.item_names.iter().map(|s| items.code(s)).collect();
            raw.user.extend(out.user.iter().map(|&c| umap[c as usize]));
            raw.item.extend(out.item.iter().map(|&c| imap[c as usize]));
            raw.rating.extend_from_slice(&out.rating);
            raw.timestamp.extend_from_slice(&out.ts);
            raw.rows_read += out.rows;
            raw.drops.add(&out.drops);
            saw_rating |= out.saw_rating;
            saw_ts |= out.saw_ts;
        }
        if let (Some(line), false) = (too_long, done) {
            if opts.strict {
                failure = Some(ReadError::LineTooLong {
                    path: path.to_path_buf(),
                    line,
                    limit: max_line,
                });
                done = true;
            } else {
                raw.rows_read += 1;
                raw.drops.line_too_long += 1;
            }
        }
        merging += tm.elapsed().as_secs_f64();
    }
    tracing::debug!(
        "json: waiting for input {waiting:.3}s, decoding {decoding:.3}s, merging {merging:.3}s"
    );
    drop(rx);
    let _ = producer.join();
    bar.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    raw.user_names = users.names;
    raw.item_names = items.names;
    raw.implicit = !saw_rating;
    raw.has_timestamp = saw_ts;
    if raw.implicit {
        raw.rating.iter_mut().for_each(|r| *r = 1.0);
    } else {
        // Rows that simply lacked the rating field while others had one count as missing.
        let mut keep = Vec::with_capacity(raw.rating.len());
        for (k, r) in raw.rating.iter().enumerate() {
            if r.is_nan() {
                raw.drops.missing_rating += 1;
            } else {
                keep.push(k);
            }
        }
        if keep.len() != raw.rating.len() {
            retain_rows(&mut raw, &keep);
        }
    }
    let rows_ok = raw.rows_read - raw.drops.malformed_line - raw.drops.line_too_long;
    if rows_ok > 0 && raw.user.is_empty() {
        let missing = [
            (raw.drops.missing_user, "user"),
            (raw.drops.missing_item, "item"),
        ];
        for (n, field) in missing {
            if n == rows_ok {
                let f = if field == "user" {
                    Field::User
                } else {
                    Field::Item
                };
                return Err(ReadError::FieldAbsent {
                    path: path.to_path_buf(),
                    field,
                    asked: opts.columns.get(f).map(|c| c.to_string()),
                    found: first_keys(path, gz),
                });
            }
        }
    }
    raw.columns_used = Field::ALL
        .iter()
        .filter(|f| match f {
            Field::Rating => !raw.implicit,
            Field::Timestamp => raw.has_timestamp,
            _ => true,
        })
        .map(|f| {
            let name = match opts.columns.get(*f) {
                Some(c) => c.to_string(),
                None => f.aliases().join("|"),
            };
            (f.name().to_string(), name)
        })
        .collect();
    Ok(raw)
}

fn error_line(e: &ReadError) -> u64 {
    match e {
        ReadError::LineTooLong { line, .. } | ReadError::Malformed { line, .. } => *line,
        _ => u64::MAX,
    }
}

/// Keys of the first parseable line, to tell the user what the file does have.
fn first_keys(path: &Path, gz: bool) -> String {
    let Ok(file) = File::open(path) else {
        return "?".into();
    };
    let reader: Box<dyn Read> = if gz {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    for line in BufReader::new(reader)
        .lines()
        .take(100)
        .map_while(Result::ok)
    {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&line) {
            return m
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
        }
    }
    "none".into()
}

pub(crate) fn sniff_gzip(path: &Path) -> Result<bool, ReadError> {
    let mut magic = [0u8; 2];
    let mut f = open(path)?;
    let n = f.read(&mut magic).map_err(io_err(path))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

/// A rating f32 can hold: finite, and finite once narrowed (1e308 would become +inf).
fn as_rating(x: f64) -> Option<f32> {
    let r = x as f32;
    (x.is_finite() && r.is_finite()).then_some(r)
}

fn retain_rows(raw: &mut RawRatings, keep: &[usize]) {
    raw.user = keep.iter().map(|&k| raw.user[k]).collect();
    raw.item = keep.iter().map(|&k| raw.item[k]).collect();
    raw.rating = keep.iter().map(|&k| raw.rating[k]).collect();
    raw.timestamp = keep.iter().map(|&k| raw.timestamp[k]).collect();
}

// ---------------------------------------------------------------------------------------------
// CSV / TSV / Parquet through polars

pub(crate) fn read_all_bytes(path: &Path) -> Result<Vec<u8>, ReadError> {
    let gz = is_gzip_name(path) || sniff_gzip(path)?;
    let mut bytes = Vec::new();
    if gz {
        MultiGzDecoder::new(BufReader::new(open(path)?))
            .read_to_end(&mut bytes)
            .map_err(|source| ReadError::Gzip {
                path: path.to_path_buf(),
                // What was decoded before the damage stays in `bytes`.
                line: bytes.iter().filter(|&&b| b == b'\n').count() as u64,
                source,
            })?;
    } else {
        open(path)?.read_to_end(&mut bytes).map_err(io_err(path))?;
    }
    Ok(bytes)
}

/// Decides whether the first line is a header: it is when any cell names a known field or a
/// requested column, or when a positional mapping was given (then it is not).
fn detect_header(first_line: &str, sep: char, spec: &ColumnSpec) -> bool {
    if spec.uses_positions() {
        return false;
    }
    let cells: Vec<&str> = first_line.split(sep).map(normalize_header).collect();
    let known = |c: &str| {
        Field::ALL.iter().any(|f| {
            f.aliases().iter().any(|a| a.eq_ignore_ascii_case(c))
                || matches!(spec.get(*f), Some(ColumnRef::Name(n)) if n == c)
        })
    };
    cells.iter().any(|c| known(c))
}

fn polars_err(path: &Path, format: InputFormat) -> impl Fn(PolarsError) -> ReadError + '_ {
    move |source| ReadError::Polars {
        path: path.to_path_buf(),
        format,
        message: short_message(&source.to_string()),
    }
}

/// At most ~200 characters of an error's first line, without advice meant for Python users.
fn short_message(text: &str) -> String {
    const MAX: usize = 200;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains("ignore_errors"))
        .unwrap_or("unreadable input");
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

fn read_delimited(path: &Path, opts: &ReadOptions) -> Result<RawRatings, ReadError> {
    let bytes = read_all_bytes(path)?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ReadError::Empty(path.to_path_buf()));
    }
    let sep = if opts.format == InputFormat::Tsv {
        '\t'
    } else {
        ','
    };
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let has_header = opts
        .has_header
        .unwrap_or_else(|| detect_header(&String::from_utf8_lossy(first), sep, &opts.columns));
    let df = CsvReadOptions::default()
        .with_has_header(has_header)
        .with_infer_schema_length(Some(0))
        // `--strict` refuses a row with more fields than the header; otherwise they are cut.
        .map_parse_options(|p| {
            p.with_separator(sep as u8)
                .with_truncate_ragged_lines(!opts.strict)
        })
        .into_reader_with_file_handle(io::Cursor::new(bytes))
        .finish()
        .map_err(polars_err(path, opts.format))?;
    frame_to_raw(path, df, opts, has_header)
}

fn read_parquet(path: &Path, opts: &ReadOptions) -> Result<RawRatings, ReadError> {
    let df = ParquetReader::new(open(path)?)
        .finish()
        .map_err(polars_err(path, opts.format))?;
    frame_to_raw(path, df, opts, true)
}

fn frame_to_raw(
    path: &Path,
    df: DataFrame,
    opts: &ReadOptions,
    has_header: bool,
) -> Result<RawRatings, ReadError> {
    let headers: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let found = || {
        if has_header {
            headers
                .iter()
                .map(|h| format!("`{h}`"))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!(
                "{} unnamed columns (positions 0..{})",
                headers.len(),
                headers.len().saturating_sub(1)
            )
        }
    };
    let locate_field = |f: Field| -> Option<usize> {
        if has_header {
            locate(&headers, f, &opts.columns)
        } else {
            match opts.columns.get(f) {
                Some(ColumnRef::Index(i)) => (*i < headers.len()).then_some(*i),
                // Without a header and without a mapping, assume user, item, rating, timestamp.
                None => {
                    let pos = Field::ALL.iter().position(|x| *x == f).unwrap_or(0);
                    (pos < headers.len()).then_some(pos)
                }
                Some(ColumnRef::Name(_)) => None,
            }
        }
    };
    let required = |f: Field| {
        locate_field(f).ok_or_else(|| ReadError::ColumnNotFound {
            path: path.to_path_buf(),
            field: f.name(),
            asked: opts
                .columns
                .get(f)
                .map(|c| c.to_string().trim_start_matches('#').to_string()),
            found: found(),
        })
    };
    let ui = required(Field::User)?;
    let ii = required(Field::Item)?;
    // A rating column that was asked for must exist; otherwise its absence means implicit data.
    let ri = if opts.columns.rating.is_some() {
        Some(required(Field::Rating)?)
    } else {
        locate_field(Field::Rating)
    };
    let ti = if opts.columns.timestamp.is_some() {
        Some(required(Field::Timestamp)?)
    } else {
        locate_field(Field::Timestamp)
    };
    for (i, f) in [
        (Some(ui), Field::User),
        (Some(ii), Field::Item),
        (ri, Field::Rating),
        (ti, Field::Timestamp),
    ] {
        let Some(i) = i else { continue };
        let dtype = df.columns()[i].dtype();
        // A struct or list cell cast to text (`{1}`, `[1, 2]`) would merge distinct ids.
        if dtype.is_nested() {
            return Err(ReadError::NotScalar {
                path: path.to_path_buf(),
                field: f.name(),
                column: headers[i].clone(),
                dtype: dtype.to_string(),
            });
        }
    }
    let perr = polars_err(path, opts.format);
    let as_str = |i: usize| -> Result<StringChunked, ReadError> {
        let s = df.columns()[i]
            .as_materialized_series()
            .cast(&DataType::String)
            .map_err(&perr)?;
        Ok(s.str().map_err(&perr)?.clone())
    };
    let users = as_str(ui)?;
    let items = as_str(ii)?;
    let ratings = ri.map(&as_str).transpose()?;
    let stamps = match ti {
        Some(i) => {
            let col = df.columns()[i].as_materialized_series();
            Some(match col.dtype() {
                DataType::Datetime(unit, _) => {
                    let div = match unit {
                        TimeUnit::Milliseconds => 1_000,
                        TimeUnit::Microseconds => 1_000_000,
                        TimeUnit::Nanoseconds => 1_000_000_000,
                    };
                    let secs: Int64Chunked = col
                        .to_physical_repr()
                        .i64()
                        .map_err(&perr)?
                        .apply_values(|v| v / div);
                    secs.cast(&DataType::String)
                        .map_err(&perr)?
                        .str()
                        .map_err(&perr)?
                        .clone()
                }
                _ => as_str(i)?,
            })
        }
        None => None,
    };
    let mut raw = RawRatings {
        implicit: ratings.is_none(),
        has_timestamp: stamps.is_some(),
        ..Default::default()
    };
    let mut uint = Interner::default();
    let mut iint = Interner::default();
    for k in 0..df.height() {
        raw.rows_read += 1;
        let Some(u) = users.get(k).map(str::trim).filter(|s| !s.is_empty()) else {
            raw.drops.missing_user += 1;
            continue;
        };
        let Some(i) = items.get(k).map(str::trim).filter(|s| !s.is_empty()) else {
            raw.drops.missing_item += 1;
            continue;
        };
        if u.len() > MAX_ID_BYTES || i.len() > MAX_ID_BYTES {
            raw.drops.id_too_long += 1;
            continue;
        }
        let rating = match &ratings {
            None => 1.0,
            Some(r) => match r.get(k).map(str::trim).filter(|s| !s.is_empty()) {
                None => {
                    raw.drops.missing_rating += 1;
                    continue;
                }
                Some(s) => match s.parse::<f64>() {
                    Ok(x) if as_rating(x).is_some() => x as f32,
                    _ => {
                        raw.drops.bad_rating += 1;
                        continue;
                    }
                },
            },
        };
        let ts = stamps
            .as_ref()
            .and_then(|t| t.get(k))
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|x| x.is_finite())
            .map(|x| x as i64)
            .unwrap_or(NO_TIMESTAMP);
        raw.user.push(uint.code(u));
        raw.item.push(iint.code(i));
        raw.rating.push(rating);
        raw.timestamp.push(ts);
    }
    raw.user_names = uint.names;
    raw.item_names = iint.names;
    let col_name = |i: usize| {
        if has_header {
            headers[i].clone()
        } else {
            i.to_string()
        }
    };
    raw.columns_used = [
        (Field::User, Some(ui)),
        (Field::Item, Some(ii)),
        (Field::Rating, ri),
        (Field::Timestamp, ti),
    ]
    .into_iter()
    .filter_map(|(f, i)| i.map(|i| (f.name().to_string(), col_name(i))))
    .collect();
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn names() -> JsonNames {
        JsonNames::new(Path::new("x"), &ColumnSpec::default()).unwrap()
    }

    #[test]
    fn json_block_parses_only_needed_fields_and_counts_drops() {
        let text = br#"{"reviewerID": "A1", "asin": "B1", "reviewText": "long \"quoted\" text", "overall": 5.0, "unixReviewTime": 1393545600, "style": {"Color:": " Black"}}
{"reviewerID": "A2", "asin": "B1", "overall": "4", "unixReviewTime": 1}
not json
{"reviewerID": null, "asin": "B2", "overall": 3.0}
{"reviewerID": "A3", "asin": "B2", "overall": "five"}
{"reviewerID": "A3", "asin": "B\u00e9", "overall": 2}
"#;
        let out = decode_block(text, 1, &names(), DEFAULT_MAX_LINE_BYTES);
        assert_eq!(out.rows, 6);
        assert_eq!(out.drops.malformed_line, 1);
        assert_eq!(out.drops.missing_user, 1);
        assert_eq!(out.drops.bad_rating, 1);
        assert_eq!(out.rating, vec![5.0, 4.0, 2.0]);
        assert_eq!(out.ts[0], 1393545600);
        assert_eq!(out.item_names, vec!["B1", "Bé"]);
        assert_eq!(out.first_malformed.as_ref().map(|m| m.0), Some(3));
    }

    #[test]
    fn a_rating_outside_f32_range_is_a_bad_rating() {
        let text = br#"{"user_id": "u", "item_id": "i", "rating": 1e308}
{"user_id": "u", "item_id": "j", "rating": "-1e300"}
{"user_id": "u", "item_id": "k", "rating": 4.5}
"#;
        let out = decode_block(text, 1, &names(), DEFAULT_MAX_LINE_BYTES);
        assert_eq!(out.drops.bad_rating, 2);
        assert_eq!(out.rating, vec![4.5]);
        assert_eq!(as_rating(1e308), None);
        assert_eq!(as_rating(f64::from(f32::MAX)), Some(f32::MAX));
    }

    #[test]
    fn a_reader_error_quotes_at_most_one_short_line_and_no_polars_advice() {
        let huge = format!(
            "could not parse `\"{}` as dtype `str`\n\nYou might want to try:\n- setting `ignore_errors=True`",
            "x".repeat(25_000_000 / 1000)
        );
        let m = short_message(&huge);
        assert!(m.chars().count() <= 203 && !m.contains('\n'), "{}", m.len());
        assert!(!m.contains("ignore_errors"));
        let e = ReadError::Polars {
            path: "r.csv".into(),
            format: InputFormat::Csv,
            message: m,
        };
        assert!(e.to_string().len() < 300);
        assert!(e.hint().is_some_and(|h| !h.contains("ignore_errors")));
    }

    fn read(
        path: &Path,
        format: InputFormat,
        columns: &str,
        strict: bool,
    ) -> Result<RawRatings, ReadError> {
        read_ratings(
            path,
            &ReadOptions {
                format,
                columns: columns.parse().unwrap(),
                has_header: None,
                strict,
                max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            },
            &Progress::hidden(),
        )
    }

    #[test]
    fn links_folders_and_pipes_are_named_for_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::os::unix::fs::symlink(d.join("b"), d.join("a")).unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("b")).unwrap();
        let e = read(&d.join("a"), InputFormat::Csv, "", false).unwrap_err();
        assert!(matches!(e, ReadError::LinkLoop(_)), "{e}");
        std::os::unix::fs::symlink(d.join("gone.csv"), d.join("dangling")).unwrap();
        let e = read(&d.join("dangling"), InputFormat::Csv, "", false).unwrap_err();
        assert!(
            e.to_string().contains("gone.csv") && e.to_string().contains("does not exist"),
            "{e}"
        );
        let e = read(d, InputFormat::Csv, "", false).unwrap_err();
        assert!(e.to_string().ends_with("is a folder, not a file"), "{e}");
        let fifo = d.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = read(&fifo, InputFormat::Csv, "", false).unwrap_err();
        assert!(e.to_string().ends_with("is a pipe, not a file"), "{e}");
        let e = read(&d.join("none.csv"), InputFormat::Csv, "", false).unwrap_err();
        assert!(matches!(e, ReadError::Missing(_)), "{e}");
    }

    #[test]
    fn a_truncated_small_gzip_names_the_lines_it_read() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("user,item,rating\n");
        let mut json = String::new();
        for i in 0..3000 {
            text.push_str(&format!("u{},i{},{}\n", i % 97, i % 89, 1 + i % 5));
            json.push_str(&format!(
                "{{\"user_id\": \"u{i}\", \"item_id\": \"i{i}\", \"rating\": 4}}\n"
            ));
        }
        for (name, body, format) in [
            ("r.csv.gz", &text, InputFormat::Csv),
            ("r.json.gz", &json, InputFormat::Json),
        ] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(body.as_bytes()).unwrap();
            let bytes = gz.finish().unwrap();
            let path = dir.path().join(name);
            fs::write(&path, &bytes[..bytes.len() * 3 / 4]).unwrap();
            match read(&path, format, "", false).unwrap_err() {
                ReadError::Gzip { line, .. } => {
                    assert!(line > 100, "{name}: stopped after line {line}")
                }
                e => panic!("{name}: {e}"),
            }
        }
    }

    #[test]
    fn a_mapped_column_that_is_missing_is_named_with_the_columns_found() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("r.csv");
        fs::write(&csv, "user,item,rating\nu1,i1,5\n").unwrap();
        let e = read(&csv, InputFormat::Csv, "user=nope", false).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("column `nope` (for `user`) not found") && m.contains("`item`"),
            "{m}"
        );
        let json = dir.path().join("r.json");
        fs::write(
            &json,
            "{\"user_id\": \"u\", \"item_id\": \"i\", \"rating\": 4}\n",
        )
        .unwrap();
        let m = read(&json, InputFormat::Json, "user=nope", false)
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("no row has a `nope` key (for `user`)") && m.contains("user_id"),
            "{m}"
        );
    }

    #[test]
    fn one_column_mapped_to_two_fields_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("r.csv");
        fs::write(&csv, "user,asin,rating\nu1,i1,5\n").unwrap();
        let e = read(&csv, InputFormat::Csv, "user=asin,item=asin", false).unwrap_err();
        assert!(
            matches!(&e, ReadError::ColumnTwice { column, first: "user", second: "item" } if column == "asin"),
            "{e}"
        );
    }

    #[test]
    fn strict_refuses_csv_rows_with_extra_fields() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("r.csv");
        fs::write(&csv, "user,item,rating\nU1,I1,4\nU13,I1,4,5,1300000000\n").unwrap();
        assert!(read(&csv, InputFormat::Csv, "", true).is_err());
        // Without `--strict` the extra fields are cut, as before.
        assert_eq!(
            read(&csv, InputFormat::Csv, "", false).unwrap().rating,
            vec![4.0, 4.0]
        );
    }

    #[test]
    fn a_nested_id_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.parquet");
        let users = Series::new(
            "user".into(),
            [
                Series::new("".into(), &[1i32]),
                Series::new("".into(), &[2i32]),
            ],
        );
        let mut df = DataFrame::new(
            2,
            vec![
                users.into(),
                Column::new("item".into(), &["a", "b"]),
                Column::new("rating".into(), &[4.0f32, 5.0]),
            ],
        )
        .unwrap();
        ParquetWriter::new(fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        let e = read(&path, InputFormat::Parquet, "", false).unwrap_err();
        assert!(
            matches!(&e, ReadError::NotScalar { field: "user", .. }),
            "{e}"
        );
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_counted_and_later_lines_keep_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let review = |n: usize| {
            format!(
                r#"{{"reviewerID":"u9","asin":"i9","overall":5,"reviewText":"{}"}}"#,
                "x".repeat(n)
            )
        };
        // Line 2 is longer than the limit but inside one block; line 4 spans several blocks.
        let lines = [
            r#"{"reviewerID":"u1","asin":"i1","overall":4}"#.to_string(),
            review(2 << 20),
            r#"{"reviewerID":"u2","asin":"i1","overall":3}"#.to_string(),
            review(3 * BLOCK_BYTES),
            "not json".to_string(),
            r#"{"reviewerID":"u3","asin":"i2","overall":5}"#.to_string(),
        ];
        fs::write(&path, lines.join("\n")).unwrap();
        let opts = |strict| ReadOptions {
            format: InputFormat::Json,
            columns: ColumnSpec::default(),
            has_header: None,
            strict,
            max_line_bytes: 1 << 20,
        };
        let raw = read_ratings(&path, &opts(false), &Progress::hidden()).unwrap();
        assert_eq!(raw.drops.line_too_long, 2);
        assert_eq!(raw.drops.malformed_line, 1);
        assert_eq!(raw.rows_read, 6);
        assert_eq!(raw.user_names, ["u1", "u2", "u3"]);
        let e = read_ratings(&path, &opts(true), &Progress::hidden()).unwrap_err();
        assert!(matches!(e, ReadError::LineTooLong { line: 2, .. }), "{e}");
        assert!(e.hint().unwrap().contains("--max-line-bytes"));
        // Only the spanning line: the malformed line after it is still numbered 5.
        fs::write(
            &path,
            [&lines[0], &lines[3], &lines[0], &lines[4]]
                .map(|l| l.as_str())
                .join("\n"),
        )
        .unwrap();
        let e = read_ratings(&path, &opts(true), &Progress::hidden()).unwrap_err();
        assert!(matches!(e, ReadError::LineTooLong { line: 2, .. }), "{e}");
        let raw = read_ratings(&path, &opts(false), &Progress::hidden()).unwrap();
        assert_eq!((raw.drops.line_too_long, raw.drops.malformed_line), (1, 1));
        let mut strict_later = opts(true);
        strict_later.max_line_bytes = DEFAULT_MAX_LINE_BYTES;
        let e = read_ratings(&path, &strict_later, &Progress::hidden()).unwrap_err();
        assert!(matches!(e, ReadError::Malformed { line: 4, .. }), "{e}");
    }

    #[test]
    fn ids_longer_than_the_bound_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let long = "u".repeat(MAX_ID_BYTES + 1);
        let json = dir.path().join("r.json");
        fs::write(
            &json,
            format!(
                "{{\"reviewerID\":\"{long}\",\"asin\":\"i1\",\"overall\":4}}\n\
                 {{\"reviewerID\":\"u1\",\"asin\":\"i1\",\"overall\":4}}\n"
            ),
        )
        .unwrap();
        let csv = dir.path().join("r.csv");
        fs::write(&csv, format!("user,item,rating\nu1,{long},4\nu1,i1,3\n")).unwrap();
        for (path, format) in [(&json, InputFormat::Json), (&csv, InputFormat::Csv)] {
            let raw = read(path, format, "", false).unwrap();
            assert_eq!(raw.drops.id_too_long, 1, "{}", path.display());
            assert_eq!(raw.user_names, ["u1"]);
            assert_eq!(raw.item_names, ["i1"]);
        }
    }

    #[test]
    fn json_numeric_ids_become_strings() {
        let out = decode_block(
            br#"{"user_id": 196, "item_id": 242, "rating": 3}"#,
            1,
            &names(),
            DEFAULT_MAX_LINE_BYTES,
        );
        assert_eq!(out.user_names, vec!["196"]);
        assert_eq!(out.item_names, vec!["242"]);
    }

    #[test]
    fn header_detection_recognises_aliases_and_positions() {
        let spec = ColumnSpec::default();
        assert!(detect_header(
            "user_id:token\titem_id:token\trating:float",
            '\t',
            &spec
        ));
        assert!(!detect_header("196\t242\t3\t881250949", '\t', &spec));
        let pos: ColumnSpec = "user=0,item=1".parse().unwrap();
        assert!(!detect_header("user,item", ',', &pos));
    }
}
