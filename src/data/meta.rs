//! Item metadata (title, category, image URL) joined into the item map by `recflow etl
//! --items-meta FILE`. Layouts: SNAP's Amazon metadata (`meta_<Category>.json.gz`: the 2014
//! release writes each line as a Python literal with single quotes, read here as JSON5, which
//! is data only, so nothing is ever evaluated; the 2018 release is JSON lines), or a CSV, TSV or
//! Parquet table with `item_id` and `title` columns (`category` and `image_url` optional).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use polars::prelude::*;
use serde_json::Value;

use super::format::{is_gzip_name, InputFormat};
use super::read::{check_input, read_all_bytes, sniff_gzip, ReadError};

/// What is known of one item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemMeta {
    pub title: Option<String>,
    /// The most specific category path, `A > B > C`.
    pub category: Option<String>,
    pub image_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("`{}` line {line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("`{}`: {message}", path.display())]
    Table { path: PathBuf, message: String },
}

impl MetaError {
    pub fn hint(&self) -> Option<String> {
        match self {
            MetaError::Read(e) => e.hint(),
            MetaError::Line { .. } => Some(
                "each line must be one JSON object or Python dict literal with `asin` (or \
                 `item_id`) and `title`"
                    .into(),
            ),
            MetaError::Table { .. } => {
                Some("a metadata table needs the columns `item_id` and `title`".into())
            }
        }
    }
}

/// Reads a metadata file into item id -> metadata. A later line for the same item wins.
pub fn read_items_meta(path: &Path) -> Result<HashMap<String, ItemMeta>, MetaError> {
    check_input(path)?;
    // `meta_Electronics.json.gz` is JSON lines whatever the inner extension says.
    let format = InputFormat::from_path(path).unwrap_or(InputFormat::Json);
    match format {
        InputFormat::Json => read_lines(path),
        InputFormat::Csv | InputFormat::Tsv | InputFormat::Parquet => read_table(path, format),
    }
}

fn read_lines(path: &Path) -> Result<HashMap<String, ItemMeta>, MetaError> {
    let file = std::fs::File::open(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader: Box<dyn Read> = if is_gzip_name(path) || sniff_gzip(path)? {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut out = HashMap::new();
    for (n, line) in BufReader::new(reader).lines().enumerate() {
        let line_no = n as u64 + 1;
        let line = line.map_err(|source| ReadError::Gzip {
            path: path.to_path_buf(),
            line: line_no,
            source,
        })?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let bad = |message: String| MetaError::Line {
            path: path.to_path_buf(),
            line: line_no,
            message,
        };
        // JSON first (the 2018 layout, and fast); a Python literal otherwise.
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => json5::from_str(text).map_err(|e| {
                bad(format!(
                    "neither JSON nor a Python dict literal of strings, numbers, lists and \
                     dicts ({e})"
                ))
            })?,
        };
        let Value::Object(m) = value else {
            return Err(bad("not an object".into()));
        };
        let id = ["asin", "item_id", "parent_asin"]
            .iter()
            .find_map(|k| m.get(*k).and_then(text_of))
            .ok_or_else(|| bad("no `asin` or `item_id`".into()))?;
        out.insert(id, from_object(&m));
    }
    Ok(out)
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The fields of one SNAP object: 2014 (`title`, `categories` as lists of paths, `imUrl`) or
/// 2018 (`title`, `category` as one path, `imageURLHighRes`/`imageURL` lists).
fn from_object(m: &serde_json::Map<String, Value>) -> ItemMeta {
    let path = |v: &Value| -> Option<String> {
        let parts: Vec<String> = v.as_array()?.iter().filter_map(text_of).collect();
        (!parts.is_empty()).then(|| parts.join(" > "))
    };
    let category = m
        .get("categories")
        .and_then(Value::as_array)
        // The longest path is the most specific.
        .and_then(|paths| paths.iter().filter_map(path).max_by_key(|p| p.len()))
        .or_else(|| m.get("category").and_then(path))
        .or_else(|| m.get("category").and_then(text_of))
        .or_else(|| m.get("main_cat").and_then(text_of));
    let first = |k: &str| {
        m.get(k)
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find_map(text_of))
    };
    let image_url = m
        .get("imUrl")
        .and_then(text_of)
        .or_else(|| m.get("image_url").and_then(text_of))
        .or_else(|| first("imageURLHighRes"))
        .or_else(|| first("imageURL"));
    ItemMeta {
        title: m.get("title").and_then(text_of),
        category,
        image_url,
    }
}

fn read_table(path: &Path, format: InputFormat) -> Result<HashMap<String, ItemMeta>, MetaError> {
    let table_err = |e: PolarsError| MetaError::Table {
        path: path.to_path_buf(),
        message: e.to_string().lines().next().unwrap_or_default().to_string(),
    };
    let df = if format == InputFormat::Parquet {
        let file = std::fs::File::open(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ParquetReader::new(file).finish().map_err(table_err)?
    } else {
        let sep = if format == InputFormat::Tsv {
            b'\t'
        } else {
            b','
        };
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .map_parse_options(|p| p.with_separator(sep))
            .into_reader_with_file_handle(std::io::Cursor::new(read_all_bytes(path)?))
            .finish()
            .map_err(table_err)?
    };
    let strings = |name: &str, required: bool| -> Result<Option<Vec<Option<String>>>, MetaError> {
        let Ok(c) = df.column(name) else {
            if !required {
                return Ok(None);
            }
            let found: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|n| format!("`{n}`"))
                .collect();
            return Err(MetaError::Table {
                path: path.to_path_buf(),
                message: format!("no column `{name}` (found {})", found.join(", ")),
            });
        };
        let c = c.cast(&DataType::String).map_err(table_err)?;
        let s = c.str().map_err(table_err)?;
        Ok(Some(
            s.iter()
                .map(|v| {
                    v.map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                })
                .collect(),
        ))
    };
    let ids = strings("item_id", true)?.unwrap_or_default();
    let titles = strings("title", true)?.unwrap_or_default();
    let categories = strings("category", false)?;
    let images = strings("image_url", false)?;
    let mut out = HashMap::new();
    for (k, id) in ids.into_iter().enumerate() {
        let Some(id) = id else { continue };
        let at = |c: &Option<Vec<Option<String>>>| c.as_ref().and_then(|c| c[k].clone());
        out.insert(
            id,
            ItemMeta {
                title: titles[k].clone(),
                category: at(&categories),
                image_url: at(&images),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(path: &Path, text: &str) {
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::fast(),
        );
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap();
    }

    #[test]
    fn snap_2014_python_literals_and_2018_json_lines_both_parse() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta_Electronics.json.gz");
        gz(
            &p,
            concat!(
                r#"{'asin': 'B001', 'title': "Men's \"Pro\" Headphones", 'price': 3.17, 'imUrl': 'http://img/1.jpg', 'categories': [['Electronics'], ['Electronics', 'Audio', 'Headphones']], 'related': {'also_bought': ['B002']}}"#,
                "\n",
                r#"{"asin": "B002", "title": "Caf\u00e9 <script>alert(1)</script>", "category": ["Electronics", "Cables"], "imageURLHighRes": ["https://img/2.jpg"]}"#,
                "\n\n",
                r#"{'asin': 'B003', 'brand': 'Acme'}"#,
                "\n"
            ),
        );
        let m = read_items_meta(&p).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            m["B001"],
            ItemMeta {
                title: Some("Men's \"Pro\" Headphones".into()),
                category: Some("Electronics > Audio > Headphones".into()),
                image_url: Some("http://img/1.jpg".into()),
            }
        );
        assert_eq!(
            m["B002"].title.as_deref(),
            Some("Café <script>alert(1)</script>"),
            "kept as data; escaping is the page's job"
        );
        assert_eq!(m["B002"].category.as_deref(), Some("Electronics > Cables"));
        assert_eq!(m["B002"].image_url.as_deref(), Some("https://img/2.jpg"));
        assert_eq!(m["B003"], ItemMeta::default());
    }

    #[test]
    fn code_in_a_line_is_an_error_naming_the_line_never_evaluated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta.json");
        std::fs::write(
            &p,
            "{'asin': 'A', 'title': 'ok'}\n{'asin': __import__('os').system('touch pwned')}\n",
        )
        .unwrap();
        let e = read_items_meta(&p).unwrap_err();
        assert!(e.to_string().contains("meta.json` line 2"), "{e}");
        assert!(!dir.path().join("pwned").exists());
        std::fs::write(&p, "{'title': 'no id'}\n").unwrap();
        let e = read_items_meta(&p).unwrap_err();
        assert!(e.to_string().contains("line 1: no `asin`"), "{e}");
    }

    #[test]
    fn a_table_needs_item_id_and_title_and_may_have_category_and_image_url() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("items.csv");
        std::fs::write(&p, "item_id,title,category\nI1,\"Lamp, desk\",Home\nI2,,\n").unwrap();
        let m = read_items_meta(&p).unwrap();
        assert_eq!(m["I1"].title.as_deref(), Some("Lamp, desk"));
        assert_eq!(m["I1"].category.as_deref(), Some("Home"));
        assert_eq!(m["I2"], ItemMeta::default());
        std::fs::write(&p, "id,name\nI1,Lamp\n").unwrap();
        let e = read_items_meta(&p).unwrap_err();
        assert!(e.to_string().contains("no column `item_id`"), "{e}");
        assert!(e.to_string().contains("`id`"), "{e}");
    }
}
