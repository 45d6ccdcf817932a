//! Exploratory data analysis: exact statistics of processed ratings, plots as PNG and SVG, a
//! self-contained HTML report, and the training pictures (learning curves, grid heatmap).
//!
//! Works on a loaded [`Dataset`](crate::data::store::Dataset) and on plain numbers handed in by
//! the caller. It knows nothing about the command line, tracking, or how models are trained: the
//! commands decide where files go and whether they become run artifacts.

mod font;
pub mod plots;
pub mod report;
pub mod stats;

use std::path::PathBuf;

use thiserror::Error;

pub use plots::{forest_plot, grid_heatmap, learning_curves, ForestRow, GridCell, LearningSeries};
pub use report::{stats_table, write_report};
pub use stats::compute_stats;

/// Errors drawing plots or writing the report.
#[derive(Debug, Error)]
pub enum EdaError {
    #[error("no font for plot text: none of {tried} exists")]
    NoFont { tried: String },
    #[error("`{}` is not a usable TrueType/OpenType font", path.display())]
    BadFont { path: PathBuf },
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot draw `{}`: {message}", path.display())]
    Draw { path: PathBuf, message: String },
    #[error("cannot serialize the statistics")]
    Json(#[source] serde_json::Error),
    #[error("the data has no ratings, so there is nothing to plot")]
    NoRatings,
    #[error("nothing to plot: {what}")]
    NothingToPlot { what: &'static str },
}

impl EdaError {
    /// A next step for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NoFont { .. } | Self::BadFont { .. } => Some(
                "install DejaVu Sans (Debian and Ubuntu: `apt-get install fonts-dejavu-core`)"
                    .into(),
            ),
            Self::Write { .. } => {
                Some("choose another output folder, or fix its permissions".into())
            }
            Self::NoRatings => Some(
                "check the ETL filters: a lower `--min-interactions` keeps more ratings".into(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Checks that a file is a real picture.
    use std::fs;
    use std::path::Path;

    pub(crate) fn assert_png(path: &Path) {
        let bytes = fs::read(path).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{}",
            path.display()
        );
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert!(info.width >= 600 && info.height >= 400);
        // A blank image would be one colour: a drawn figure has many.
        let first = &buf[..3];
        assert!(buf.chunks(3).any(|px| px != first));
    }

    pub(crate) fn assert_svg(path: &Path) {
        let text = fs::read_to_string(path).unwrap();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(doc.descendants().any(|n| n.has_tag_name("text")));
    }
}
