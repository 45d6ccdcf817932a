//! Progress bars that appear only when they help: on a terminal, unless the user asked for quiet.
//!
//! The core receives a [`Progress`] handle resolved from the settings and never decides by itself
//! whether to draw.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether bars are drawn. Cheap to clone and pass down.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Bars on when stderr is a terminal and `allowed` (not `--quiet`/`--no-progress`).
    pub fn from_terminal(allowed: bool) -> Self {
        Self {
            enabled: allowed && std::io::stderr().is_terminal(),
        }
    }

    pub fn hidden() -> Self {
        Self { enabled: false }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    fn bar(&self, total: Option<u64>, template: &str, msg: &str) -> Bar {
        if !self.enabled {
            return Bar(None);
        }
        let pb = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_message(msg.to_string());
        pb.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(pb))
    }

    /// A bar over bytes, with rate and ETA; a counter with rate when the total is unknown.
    pub fn bytes(&self, total: impl Into<Option<u64>>, msg: &str) -> Bar {
        let total = total.into();
        let template = if total.is_some() {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg} {bytes} {bytes_per_sec} {elapsed}"
        };
        self.bar(total, template, msg)
    }

    /// A bar over counted steps.
    pub fn steps(&self, total: u64, msg: &str) -> Bar {
        self.bar(
            Some(total),
            "{msg} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}",
            msg,
        )
    }

    /// A bar over counted things of a named kind (`reviews`), with human-readable counts.
    pub fn items(&self, total: u64, unit: &str, msg: &str) -> Bar {
        self.bar(
            Some(total),
            &format!("{{msg}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} {{elapsed_precise}} eta {{eta}}"),
            msg,
        )
    }
}

/// One bar, or nothing when bars are off.
#[derive(Debug, Clone)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn none() -> Self {
        Bar(None)
    }
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
    pub fn set_position(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.set_position(n);
        }
    }
    pub fn set_length(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.set_length(n);
        }
    }
    pub fn set_message(&self, msg: impl Into<String>) {
        if let Some(b) = &self.0 {
            b.set_message(msg.into());
        }
    }
    /// Prints a line above the bar (or nothing when bars are off: the caller also logs).
    pub fn println(&self, msg: impl AsRef<str>) {
        if let Some(b) = &self.0 {
            b.println(msg.as_ref());
        }
    }
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
