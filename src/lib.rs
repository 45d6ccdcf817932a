//! recflow: recommender-system experiments from the command line.
//!
//! The library behind the `recflow` binary. The core: ETL of rating data into Parquet
//! ([`data`]), model families ([`model`]), evaluation and the metric registry ([`eval`]), MLflow
//! tracking ([`tracking`]) and serving (`serve`). Above it, the pipeline layer (`pipeline`:
//! searches, selection, experiments and their run trees), settings resolved once
//! ([`settings`], [`spec`]), the output layer ([`output`]) and the commands ([`commands`]). The
//! binary only parses arguments and prints errors.
//!
//! ```no_run
//! use recflow::data::etl::{run_etl, EtlSettings, RatingRange};
//! use recflow::data::format::{ColumnSpec, InputFormat};
//! use recflow::progress::Progress;
//!
//! let settings = EtlSettings {
//!     input: "data/raw/sample_reviews.json.gz".into(),
//!     input_label: None,
//!     format: InputFormat::Json,
//!     columns: ColumnSpec::default(),
//!     has_header: None,
//!     min_interactions: 5,
//!     rating_range: Some(RatingRange::default()),
//!     strict: false,
//!     max_line_bytes: recflow::data::read::DEFAULT_MAX_LINE_BYTES,
//!     items_meta: None,
//!     output: "data/processed".into(),
//! };
//! let summary = run_etl(&settings, &Progress::hidden())?;
//! println!("{} users × {} items", summary.users, summary.items);
//! # Ok::<(), recflow::data::etl::EtlError>(())
//! ```

pub mod cli;
pub mod commands;
pub mod data;
pub(crate) mod eda;
pub mod eval;
pub mod model;
pub(crate) mod names;
pub mod output;
pub(crate) mod pipeline;
pub mod progress;
pub(crate) mod serve;
pub mod settings;
pub(crate) mod spec;
pub mod tracking;
