//! Data: reading inputs, cleaning, k-core, dense ids, Parquet outputs, the processed-data cache,
//! splits, the generator and the downloader. Knows nothing about models, tracking or the command
//! line.

pub mod cache;
pub mod download;
pub mod etl;
pub mod format;
pub mod generate;
pub mod interactions;
pub mod meta;
pub mod read;
pub mod split;
pub mod store;
pub mod testfile;
