//! Input formats and column mapping: which reader a file needs and which of its columns hold the
//! user, item, rating and timestamp.
//!
//! Knows the Amazon review field names and the common generic ones; knows nothing about the
//! command line (the caller passes a parsed [`ColumnSpec`]).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

crate::named_enum! {
    /// File formats the ETL reads.
    pub enum InputFormat: "input format" {
        /// One JSON object per line (plain or gzipped): the Amazon review dumps.
        Json = "json",
        /// Comma-separated values, with or without a header.
        Csv = "csv",
        /// Tab-separated values, with or without a header (MovieLens `.inter`, `u.data`).
        Tsv = "tsv",
        /// Apache Parquet.
        Parquet = "parquet",
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum FormatError {
    #[error("cannot tell the format of `{0}` from its extension")]
    UnknownExtension(String),
    #[error("bad column mapping `{0}`: expected `field=column` pairs such as `user=reviewerID,item=asin` (fields: user, item, rating, timestamp)")]
    BadColumnSpec(String),
    #[error("unknown field `{0}` in the column mapping (fields: user, item, rating, timestamp)")]
    UnknownField(String),
}

impl InputFormat {
    /// The format implied by a file name (`.json`, `.jsonl`, `.ndjson`, `.csv`, `.tsv`, `.inter`,
    /// `.data`, `.parquet`, each optionally followed by `.gz`).
    pub fn from_path(path: &Path) -> Result<Self, FormatError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let stem = name.strip_suffix(".gz").unwrap_or(&name);
        let ext = stem.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        match ext {
            "json" | "jsonl" | "ndjson" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "tsv" | "tab" | "inter" | "data" => Ok(Self::Tsv),
            "parquet" | "pq" => Ok(Self::Parquet),
            _ => Err(FormatError::UnknownExtension(path.display().to_string())),
        }
    }
}

/// Whether a path names a gzip file (by its `.gz` suffix).
pub fn is_gzip_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// A column given by name, or by 0-based position (for files without a header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ColumnRef {
    Index(usize),
    Name(String),
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index(i) => write!(f, "#{i}"),
            Self::Name(n) => write!(f, "{n}"),
        }
    }
}

impl ColumnRef {
    fn parse(s: &str) -> Self {
        match s.parse::<usize>() {
            Ok(i) => Self::Index(i),
            Err(_) => Self::Name(s.to_string()),
        }
    }
}

/// The four logical fields of a rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    User,
    Item,
    Rating,
    Timestamp,
}

impl Field {
    pub const ALL: [Field; 4] = [Field::User, Field::Item, Field::Rating, Field::Timestamp];

    pub fn name(self) -> &'static str {
        match self {
            Field::User => "user",
            Field::Item => "item",
            Field::Rating => "rating",
            Field::Timestamp => "timestamp",
        }
    }

    /// Column names recognised for this field, in order of preference (Amazon's first).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::User => &[
                "reviewerID",
                "user_id",
                "user",
                "userId",
                "userID",
                "reviewer_id",
            ],
            Field::Item => &[
                "asin",
                "item_id",
                "item",
                "movieId",
                "itemId",
                "itemID",
                "product_id",
                "parent_asin",
            ],
            Field::Rating => &["overall", "rating", "score", "stars"],
            Field::Timestamp => &[
                "unixReviewTime",
                "timestamp",
                "time",
                "ts",
                "unix_review_time",
            ],
        }
    }
}

/// User-supplied column mapping (`--columns user=..,item=..`); unset fields use the aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<ColumnRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ColumnRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<ColumnRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<ColumnRef>,
}

impl ColumnSpec {
    pub fn get(&self, field: Field) -> Option<&ColumnRef> {
        match field {
            Field::User => self.user.as_ref(),
            Field::Item => self.item.as_ref(),
            Field::Rating => self.rating.as_ref(),
            Field::Timestamp => self.timestamp.as_ref(),
        }
    }

    pub fn is_empty(&self) -> bool {
        Field::ALL.iter().all(|f| self.get(*f).is_none())
    }

    /// The first column mapped to two fields, with both fields' names.
    pub fn repeated(&self) -> Option<(String, &'static str, &'static str)> {
        for (a, fa) in Field::ALL.iter().enumerate() {
            for fb in &Field::ALL[a + 1..] {
                if let (Some(x), Some(y)) = (self.get(*fa), self.get(*fb)) {
                    if x == y {
                        return Some((x.to_string(), fa.name(), fb.name()));
                    }
                }
            }
        }
        None
    }

    /// True when any field is given by position, which implies a header-less file.
    pub fn uses_positions(&self) -> bool {
        Field::ALL
            .iter()
            .any(|f| matches!(self.get(*f), Some(ColumnRef::Index(_))))
    }
}

impl FromStr for ColumnSpec {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = ColumnSpec::default();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| FormatError::BadColumnSpec(s.to_string()))?;
            let (k, v) = (k.trim(), v.trim());
            if v.is_empty() {
                return Err(FormatError::BadColumnSpec(s.to_string()));
            }
            let slot = match k {
                "user" => &mut spec.user,
                "item" => &mut spec.item,
                "rating" => &mut spec.rating,
                "timestamp" => &mut spec.timestamp,
                other => return Err(FormatError::UnknownField(other.to_string())),
            };
            *slot = Some(ColumnRef::parse(v));
        }
        Ok(spec)
    }
}

/// Strips type suffixes such as RecBole's `user_id:token` so headers match the aliases.
pub fn normalize_header(name: &str) -> &str {
    let name = name.trim().trim_matches('"');
    name.split_once(':').map(|(n, _)| n).unwrap_or(name)
}

/// Finds the position of `field` among `headers`: an explicit name or index first, else the
/// aliases (exact match, then case-insensitive).
pub fn locate(headers: &[String], field: Field, spec: &ColumnSpec) -> Option<usize> {
    match spec.get(field) {
        Some(ColumnRef::Index(i)) => (*i < headers.len()).then_some(*i),
        Some(ColumnRef::Name(n)) => headers
            .iter()
            .position(|h| h == n)
            .or_else(|| headers.iter().position(|h| normalize_header(h) == n)),
        None => {
            let norm: Vec<&str> = headers.iter().map(|h| normalize_header(h)).collect();
            field
                .aliases()
                .iter()
                .find_map(|a| norm.iter().position(|h| h == a))
                .or_else(|| {
                    field
                        .aliases()
                        .iter()
                        .find_map(|a| norm.iter().position(|h| h.eq_ignore_ascii_case(a)))
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_extension_including_gz() {
        let f = |p: &str| InputFormat::from_path(Path::new(p));
        assert_eq!(f("a/reviews.json.gz"), Ok(InputFormat::Json));
        assert_eq!(f("x.JSONL"), Ok(InputFormat::Json));
        assert_eq!(f("ml-100k.inter"), Ok(InputFormat::Tsv));
        assert_eq!(f("r.csv.gz"), Ok(InputFormat::Csv));
        assert_eq!(f("r.parquet"), Ok(InputFormat::Parquet));
        assert!(f("r.xlsx").is_err());
    }

    #[test]
    fn column_spec_parses_names_and_positions() {
        let s: ColumnSpec = "user=0, item=asin,rating=3".parse().unwrap();
        assert_eq!(s.user, Some(ColumnRef::Index(0)));
        assert_eq!(s.item, Some(ColumnRef::Name("asin".into())));
        assert_eq!(s.rating, Some(ColumnRef::Index(3)));
        assert!(s.uses_positions());
        assert!("users=1".parse::<ColumnSpec>().is_err());
        assert!("user".parse::<ColumnSpec>().is_err());
    }

    #[test]
    fn locate_uses_aliases_and_recbole_suffixes() {
        let h: Vec<String> = [
            "user_id:token",
            "item_id:token",
            "rating:float",
            "timestamp:float",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let spec = ColumnSpec::default();
        assert_eq!(locate(&h, Field::User, &spec), Some(0));
        assert_eq!(locate(&h, Field::Item, &spec), Some(1));
        assert_eq!(locate(&h, Field::Rating, &spec), Some(2));
        assert_eq!(locate(&h, Field::Timestamp, &spec), Some(3));
    }
}
