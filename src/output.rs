//! The one output layer: every result a command prints goes through a [`Printer`], as lines,
//! aligned tables, CSV or JSON, and every write returns `io::Result` so a closed pipe
//! (`recflow runs list | head -1`) ends the command quietly instead of panicking. Warnings and
//! notes for people go to stderr through [`Printer::warn`] and [`Printer::note`].
//!
//! This is the only module allowed to write to stdout or stderr directly (clippy's
//! `print_stdout`/`print_stderr` lints are denied elsewhere; logging goes through `tracing`).
//! Knows nothing about what the rows mean.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Where results go, and in which form.
pub struct Printer {
    quiet: bool,
    json: bool,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Printer {
    /// Results on stdout; `quiet` drops human lines, `json` prints only JSON values.
    pub fn stdout(quiet: bool, json: bool) -> Self {
        Self {
            quiet,
            json,
            out: Mutex::new(Box::new(io::stdout())),
        }
    }

    /// A printer into a shared buffer, for tests.
    pub fn buffer(json: bool) -> (Self, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let p = Self {
            quiet: false,
            json,
            out: Mutex::new(Box::new(SharedBuf(buf.clone()))),
        };
        (p, buf)
    }

    /// Whether results are wanted as JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    fn write(&self, text: &str) -> io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// A human line (skipped with `--quiet` or `--json`).
    pub fn line(&self, line: impl AsRef<str>) -> io::Result<()> {
        if self.quiet || self.json {
            return Ok(());
        }
        self.write(&format!("{}\n", line.as_ref()))
    }

    /// A result that is data, printed even with `--quiet` (`runs list --csv`, a recommendation
    /// list): the caller asked for exactly this output.
    pub fn data(&self, text: impl AsRef<str>) -> io::Result<()> {
        let t = text.as_ref();
        if t.ends_with('\n') {
            self.write(t)
        } else {
            self.write(&format!("{t}\n"))
        }
    }

    /// A value as pretty JSON.
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        self.write(&format!("{text}\n"))
    }

    /// An aligned table fitting `width` columns (human output).
    pub fn table(&self, table: &Table, width: usize) -> io::Result<()> {
        if self.quiet || self.json {
            return Ok(());
        }
        self.write(&table.render(width))
    }

    /// An aligned table in blocks of columns that fit `width`, row labels repeated (human
    /// output).
    pub fn table_blocks(&self, table: &Table, width: usize) -> io::Result<()> {
        if self.quiet || self.json {
            return Ok(());
        }
        self.write(&table.render_blocks(width))
    }

    /// A table as CSV (RFC 4180 quoting), printed even with `--quiet`.
    pub fn csv(&self, table: &Table) -> io::Result<()> {
        self.write(&table.to_csv())
    }

    /// `warning: ...` on stderr (always shown, also with `--json`).
    pub fn warn(&self, message: impl AsRef<str>) {
        eprint_lines(&format!("warning: {}", message.as_ref()));
    }

    /// A line for people on stderr, shown unless `--quiet`.
    pub fn note(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprint_lines(message.as_ref());
        }
    }
}

/// Writes to stderr, ignoring failures (stderr is the last resort for messages).
pub fn eprint_lines(text: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How a column's cells are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Rows of cells under a header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub align: Vec<Align>,
    /// Columns that keep their full width when the table must shrink (row labels).
    pub keep: Vec<usize>,
}

impl Table {
    pub fn new(header: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        let align = vec![Align::Left; header.len()];
        Self {
            header,
            rows: Vec::new(),
            align,
            keep: Vec::new(),
        }
    }

    /// Right-aligns the given columns (numbers).
    pub fn right(mut self, cols: impl IntoIterator<Item = usize>) -> Self {
        for c in cols {
            if let Some(a) = self.align.get_mut(c) {
                *a = Align::Right;
            }
        }
        self
    }

    /// Keeps these columns whole when the table is cut to the terminal width.
    pub fn keep(mut self, cols: impl IntoIterator<Item = usize>) -> Self {
        self.keep.extend(cols);
        self
    }

    pub fn push(&mut self, row: impl IntoIterator<Item = impl Into<String>>) {
        self.rows.push(row.into_iter().map(Into::into).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as aligned text, the widest shrinkable columns cut (`…`) until it fits `width`.
    pub fn render(&self, width: usize) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        while total(&widths) > width {
            let widest = widths
                .iter()
                .enumerate()
                .filter(|(i, _)| !self.keep.contains(i))
                .max_by_key(|(_, w)| **w)
                .map(|(i, w)| (i, *w));
            match widest {
                Some((i, w)) if w > 8 => widths[i] = w - 1,
                _ => break,
            }
        }
        let cell = |s: &str, w: usize, align: Align| -> String {
            let len = s.chars().count();
            if len > w {
                let t: String = s.chars().take(w.saturating_sub(1)).collect();
                format!("{t}…")
            } else if align == Align::Right {
                format!("{s:>w$}")
            } else {
                format!("{s:<w$}")
            }
        };
        let line = |cells: &[String]| -> String {
            let parts: Vec<String> = (0..n)
                .map(|i| {
                    let c = cells.get(i).map(String::as_str).unwrap_or("");
                    cell(
                        c,
                        widths[i],
                        self.align.get(i).copied().unwrap_or(Align::Left),
                    )
                })
                .collect();
            format!("{}\n", parts.join("  ").trim_end())
        };
        let mut out = line(&self.header);
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }

    /// The table as aligned text in blocks of columns, each block repeating the kept columns
    /// (row labels), so a table wider than `width` stays readable without cutting values.
    pub fn render_blocks(&self, width: usize) -> String {
        let natural = |i: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        };
        let n = self.header.len();
        let kept: Vec<usize> = (0..n).filter(|i| self.keep.contains(i)).collect();
        let kept_width: usize = kept.iter().map(|&i| natural(i) + 2).sum();
        let mut blocks: Vec<Vec<usize>> = Vec::new();
        let mut used = kept_width;
        for i in (0..n).filter(|i| !self.keep.contains(i)) {
            let w = natural(i) + 2;
            match blocks.last_mut() {
                Some(b) if used + w <= width || b.is_empty() => b.push(i),
                _ => {
                    blocks.push(vec![i]);
                    used = kept_width;
                }
            }
            used += w;
        }
        if blocks.len() <= 1 {
            return self.render(width);
        }
        let pick = |row: &[String], cols: &[usize]| -> Vec<String> {
            cols.iter()
                .map(|&i| row.get(i).cloned().unwrap_or_default())
                .collect()
        };
        let mut out = String::new();
        for (bi, b) in blocks.iter().enumerate() {
            let cols: Vec<usize> = kept.iter().chain(b).copied().collect();
            let mut t = Table::new(pick(&self.header, &cols)).keep(0..kept.len());
            t.align = cols.iter().map(|&i| self.align[i]).collect();
            for r in &self.rows {
                t.push(pick(r, &cols));
            }
            if bi > 0 {
                out.push('\n');
            }
            out.push_str(&t.render(width));
        }
        out
    }

    /// The table as a GitHub Markdown table (`|` in cells escaped).
    pub fn to_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let line = |cells: &[String]| {
            let c: Vec<String> = cells.iter().map(|c| esc(c)).collect();
            format!("| {} |\n", c.join(" | "))
        };
        let mut out = line(&self.header);
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|a| if *a == Align::Right { "---:" } else { "---" })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }

    /// The table as a LaTeX `tabular` (booktabs rules; TeX's special characters escaped).
    pub fn to_latex(&self) -> String {
        let spec: String = self
            .align
            .iter()
            .map(|a| if *a == Align::Right { 'r' } else { 'l' })
            .collect();
        let line = |cells: &[String]| {
            let c: Vec<String> = cells.iter().map(|c| latex_escape(c)).collect();
            format!("{} \\\\\n", c.join(" & "))
        };
        let mut out = format!("\\begin{{tabular}}{{{spec}}}\n\\toprule\n");
        out.push_str(&line(&self.header));
        out.push_str("\\midrule\n");
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out.push_str("\\bottomrule\n\\end{tabular}\n");
        out
    }

    /// The table as CSV: one header row, cells as given (no markers, no padding).
    pub fn to_csv(&self) -> String {
        let esc = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = row.iter().map(|c| esc(c)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

/// `s` with TeX's special characters escaped; `**x**` (bold in the Markdown form) becomes
/// `\textbf{x}`.
pub fn latex_escape(s: &str) -> String {
    let (bold, s) = match s.strip_prefix("**").and_then(|t| t.strip_suffix("**")) {
        Some(t) => (true, t),
        None => (false, s),
    };
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '±' => out.push_str("$\\pm$"),
            _ => out.push(c),
        }
    }
    if bold {
        format!("\\textbf{{{out}}}")
    } else {
        out
    }
}

/// The terminal width for tables: `COLUMNS` when set, else 160.
pub fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&w: &usize| w >= 20)
        .unwrap_or(160)
}

/// A metric value for a table: integers as they are, other values to 4 decimals.
pub fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v}")
    } else {
        format!("{v:.4}")
    }
}

/// Whether an error chain ends in a closed pipe (the reader went away: not an error).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_keeps_label_columns_whole_when_cut_to_width() {
        let mut t = Table::new(["key", "a", "b"]).keep([0]);
        t.push([
            "params.very_long_parameter_name",
            "x".repeat(40).as_str(),
            "y",
        ]);
        let text = t.render(50);
        assert!(text.contains("params.very_long_parameter_name"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 50), "{text}");
        assert!(text.contains('…'));
    }

    #[test]
    fn csv_quotes_only_what_needs_it_and_has_one_header() {
        let mut t = Table::new(["a", "b"]);
        t.push(["1,5", "say \"hi\""]);
        t.push(["0.123456789", ""]);
        assert_eq!(
            t.to_csv(),
            "a,b\n\"1,5\",\"say \"\"hi\"\"\"\n0.123456789,\n"
        );
    }

    #[test]
    fn quiet_and_json_printers_drop_human_lines_but_keep_data() {
        let (p, buf) = Printer::buffer(true);
        p.line("hello").unwrap();
        p.json(&serde_json::json!({"a": 1})).unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "{\n  \"a\": 1\n}\n");
    }
}
