//! Command-line types. Only clap derive types live here; their doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::data::format::{ColumnSpec, InputFormat};

/// recflow: recommender-system experiments from the command line.
///
/// ETL of review data into Parquet, a synthetic data generator, and more as they land.
/// Configuration comes from the command line, then the environment, then `.env`, then defaults
/// (`recflow config` shows what is in force).
#[derive(Debug, Parser)]
#[command(
    name = "recflow",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Log level: error, warn, info, debug or trace [default: LOG_LEVEL, else info].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// Print only warnings, errors and results.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Never draw progress bars (they are drawn only on a terminal anyway).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Print results as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Clean, k-core filter and index ratings into Parquet.
    ///
    /// Reads JSON lines (plain or gzipped), CSV, TSV or Parquet; writes interactions.parquet,
    /// user_map.parquet, item_map.parquet, popular_items.parquet and etl_summary.json.
    ///
    /// Example:
    ///   recflow etl --input data/raw/sample_reviews.json.gz --min-interactions 5
    ///   recflow etl --input ml-100k.inter --min-interactions 1 --output data/processed/ml100k
    #[command(verbatim_doc_comment)]
    Etl(EtlArgs),
    /// Write synthetic reviews in the Amazon (SNAP) layout, gzipped.
    ///
    /// Long-tailed users and items (each with at least 5 reviews), ratings from a planted
    /// low-rank model; identical bytes for the same seed.
    ///
    /// Example:
    ///   recflow generate --out data/raw/sample_reviews.json.gz --users 5000 --items 2000 --ratings 60000
    #[command(verbatim_doc_comment)]
    Generate(GenerateArgs),
    /// Download the raw reviews file (RAW_REVIEWS_URL to RAW_REVIEWS_PATH), resuming a partial one.
    ///
    /// Example:
    ///   recflow download
    ///   recflow download --url http://127.0.0.1:8080/reviews.json.gz --out data/raw/r.json.gz
    #[command(verbatim_doc_comment)]
    Download(DownloadArgs),
    /// Print the resolved configuration and where each value came from (secrets masked).
    ///
    /// Example:
    ///   recflow config
    ///   recflow config --json
    #[command(verbatim_doc_comment)]
    Config,
}

#[derive(Debug, Args, Clone)]
pub struct EtlArgs {
    /// Input file [default: RAW_REVIEWS_PATH].
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// Input format [default: from the file extension].
    #[arg(long)]
    pub format: Option<InputFormat>,
    /// Column mapping: `user=..,item=..,rating=..,timestamp=..`, names or 0-based positions.
    #[arg(long, value_name = "MAP")]
    pub columns: Option<ColumnSpec>,
    /// The CSV/TSV file has a header row [default: detected].
    #[arg(long, overrides_with = "no_header")]
    pub header: bool,
    /// The CSV/TSV file has no header row.
    #[arg(long)]
    pub no_header: bool,
    /// Keep only users and items with at least N ratings [default: MIN_INTERACTIONS, else 5].
    #[arg(long, value_name = "N")]
    pub min_interactions: Option<usize>,
    /// Ratings kept, inclusive: `1..5` (default), `0.5..5`, `1..inf` for counts.
    #[arg(long, value_name = "MIN..MAX", default_value = "1..5")]
    pub rating_range: crate::data::etl::RatingRange,
    /// Fail on the first malformed line instead of skipping and counting it.
    #[arg(long)]
    pub strict: bool,
    /// Output folder.
    #[arg(long, short, default_value = "data/processed")]
    pub output: PathBuf,
    /// Download the input from RAW_REVIEWS_URL first when it is missing.
    #[arg(long)]
    pub download: bool,
}

#[derive(Debug, Args, Clone)]
pub struct GenerateArgs {
    /// Output file (gzipped JSON lines).
    #[arg(long, short, default_value = "data/raw/sample_reviews.json.gz")]
    pub out: PathBuf,
    /// Number of reviewers.
    #[arg(long, default_value_t = 5_000)]
    pub users: usize,
    /// Number of products.
    #[arg(long, default_value_t = 2_000)]
    pub items: usize,
    /// Number of reviews (at least 5 per user and per item).
    #[arg(long, default_value_t = 60_000)]
    pub ratings: usize,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Args, Clone)]
pub struct DownloadArgs {
    /// Source URL [default: RAW_REVIEWS_URL].
    #[arg(long)]
    pub url: Option<String>,
    /// Destination [default: RAW_REVIEWS_PATH].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

impl EtlArgs {
    pub fn has_header(&self) -> Option<bool> {
        match (self.header, self.no_header) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}
