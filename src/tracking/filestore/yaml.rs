//! The small subset of YAML that MLflow's file store uses for `meta.yaml`.
//!
//! Writing: mappings with sorted keys, nested in block style, whose values are null, integers,
//! floats, strings or lists of them, quoted so that PyYAML's `safe_load` reads them back
//! as the same types. Reading: what PyYAML's `safe_dump` writes for those shapes, including
//! strings folded over several lines, single- and double-quoted scalars and YAML 1.1 plain
//! scalar typing (`null`, `true`, ints, floats with a `.`). Nothing here knows about MLflow.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    pub(crate) fn str(s: impl Into<String>) -> Self {
        Yaml::Str(s.into())
    }

    /// A string, or an integer read as its decimal text (legacy `experiment_id: 0`).
    pub(crate) fn as_string(&self) -> Option<String> {
        match self {
            Yaml::Str(s) => Some(s.clone()),
            Yaml::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Yaml::Int(i) => Some(*i),
            Yaml::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }
}

/// Looks a key up in a parsed mapping.
pub(crate) fn get<'a>(map: &'a [(String, Yaml)], key: &str) -> Option<&'a Yaml> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Sets a key in a mapping, replacing an existing value.
pub(crate) fn set(map: &mut Vec<(String, Yaml)>, key: &str, value: Yaml) {
    match map.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => map.push((key.to_string(), value)),
    }
}

/// Writes a mapping with sorted keys in block style at every depth, as MLflow's `write_yaml`
/// (PyYAML's `safe_dump` with `default_flow_style=False`) does.
pub(crate) fn to_string(map: &[(String, Yaml)]) -> String {
    let mut out = String::new();
    write_block(&mut out, map, 0);
    out
}

fn write_block(out: &mut String, map: &[(String, Yaml)], indent: usize) {
    let mut sorted: Vec<&(String, Yaml)> = map.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in sorted {
        let _ = write!(out, "{:indent$}{}:", "", scalar(key));
        match value {
            Yaml::Map(entries) if !entries.is_empty() => {
                out.push('\n');
                write_block(out, entries, indent + 2);
            }
            other => {
                let _ = writeln!(out, " {}", inline(other));
            }
        }
    }
}

fn inline(value: &Yaml) -> String {
    match value {
        Yaml::Null => "null".into(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Int(i) => i.to_string(),
        Yaml::Float(f) if f.is_nan() => ".nan".into(),
        Yaml::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.into(),
        Yaml::Float(f) => {
            let s = format!("{f:?}");
            // YAML 1.1 floats need a `.`: `1e-07` would read back as a string.
            if s.contains('.') {
                s
            } else {
                match s.split_once('e') {
                    Some((m, e)) => format!(
                        "{m}.0e{}",
                        if e.starts_with('-') {
                            e.to_string()
                        } else {
                            format!("+{e}")
                        }
                    ),
                    None => format!("{s}.0"),
                }
            }
        }
        Yaml::Str(s) => scalar(s),
        Yaml::Seq(items) => {
            let parts: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", parts.join(", "))
        }
        Yaml::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(k), inline(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// A string as a YAML scalar: plain when it cannot be read as anything else, single-quoted
/// when it needs no escapes, else double-quoted with escapes.
fn scalar(s: &str) -> String {
    if is_plain_safe(s) {
        return s.to_string();
    }
    if s.chars().all(|c| !needs_escape(c)) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let _ = if (c as u32) <= 0xFFFF {
                    write!(out, "\\u{:04X}", c as u32)
                } else {
                    write!(out, "\\U{:08X}", c as u32)
                };
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters PyYAML refuses raw in a stream or treats as line breaks.
fn needs_escape(c: char) -> bool {
    let u = c as u32;
    u < 0x20
        || (0x7F..=0x9F).contains(&u)
        || u == 0x2028
        || u == 0x2029
        || u == 0xFEFF
        || u == 0xFFFE
        || u == 0xFFFF
}

fn is_plain_safe(s: &str) -> bool {
    const RESERVED: &[&str] = &[
        "y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL",
    ];
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'/') || RESERVED.contains(&s) {
        return false;
    }
    bytes.iter().enumerate().all(|(i, &b)| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'_' | b'.' | b'/' | b'-')
            // `: ` or a final `:` would start a mapping.
            || (b == b':' && bytes.get(i + 1).is_some_and(|&n| n != b' '))
    })
}

/// Parses a document whose top level is a mapping.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, Yaml)>, String> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            let t = l.trim();
            !(t == "---" || t == "..." || t.starts_with('#'))
        })
        .collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        return Ok(Vec::new());
    }
    let start = lines.iter().position(|l| !l.trim().is_empty()).unwrap_or(0);
    let first = &lines[start];
    if first.trim_start().starts_with('{') {
        return match parse_value(&[first.trim()], 1)? {
            Yaml::Map(m) => Ok(m),
            _ => Err("the document is not a mapping".into()),
        };
    }
    parse_block(&lines[start..], indent_of(first))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Parses a block mapping whose keys sit at column `indent`.
fn parse_block(lines: &[&str], indent: usize) -> Result<Vec<(String, Yaml)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() {
            i += 1;
            continue;
        }
        let line_no = i + 1;
        if indent_of(line) != indent {
            return Err(format!("line {line_no}: unexpected indentation"));
        }
        let body = &line[indent..];
        let (key, rest) =
            split_key(body).ok_or_else(|| format!("line {line_no}: expected `key: value`"))?;
        // The value's lines: this one's rest, then deeper-indented lines and block sequence
        // items at this indent (PyYAML does not indent sequences inside mappings).
        let mut j = i + 1;
        while j < lines.len() {
            let l = lines[j];
            if l.trim().is_empty()
                || indent_of(l) > indent
                || (rest.is_empty() && indent_of(l) == indent && l[indent..].starts_with("- "))
                || (rest.is_empty() && indent_of(l) == indent && &l[indent..] == "-")
            {
                j += 1;
            } else {
                break;
            }
        }
        let cont = &lines[i + 1..j];
        let value = if rest.is_empty() {
            let nonblank: Vec<&str> = cont
                .iter()
                .copied()
                .filter(|l| !l.trim().is_empty())
                .collect();
            match nonblank.first() {
                None => Yaml::Null,
                Some(l) if l.trim_start().starts_with('-') => parse_seq(&nonblank)?,
                Some(l) => Yaml::Map(parse_block(&nonblank, indent_of(l))?),
            }
        } else {
            let mut parts = vec![rest];
            parts.extend(cont.iter().copied());
            parse_value(&parts, line_no)?
        };
        out.push((key, value));
        i = j;
    }
    Ok(out)
}

fn parse_seq(lines: &[&str]) -> Result<Yaml, String> {
    let indent = indent_of(lines[0]);
    let mut items = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for &l in lines {
        if indent_of(l) == indent && l[indent..].starts_with('-') {
            if !current.is_empty() {
                items.push(parse_value(&current, 1)?);
                current.clear();
            }
            current.push(l[indent + 1..].trim_start());
        } else {
            current.push(l);
        }
    }
    if !current.is_empty() {
        items.push(parse_value(&current, 1)?);
    }
    Ok(Yaml::Seq(items))
}

/// Splits `key: rest` at the first `: ` (or a final `:`) outside quotes.
fn split_key(body: &str) -> Option<(String, &str)> {
    if body.starts_with('\'') || body.starts_with('"') {
        let (key, used) = parse_quoted_inline(body)?;
        let after = body[used..].trim_start();
        let rest = after.strip_prefix(':')?;
        return Some((key, rest.trim()));
    }
    let bytes = body.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
            return Some((body[..i].trim_end().to_string(), body[i + 1..].trim()));
        }
    }
    None
}

/// A quoted scalar on one line: its value and the bytes it used.
fn parse_quoted_inline(s: &str) -> Option<(String, usize)> {
    let (value, used) = parse_quoted(s).ok()?;
    Some((value, used))
}

/// Parses a value spread over `parts` (the first line's rest, then continuation lines).
fn parse_value(parts: &[&str], line_no: usize) -> Result<Yaml, String> {
    let first = parts[0].trim_start();
    if first.starts_with('\'') || first.starts_with('"') {
        let joined = join_lines(parts);
        let (value, used) = parse_quoted(&joined).map_err(|e| format!("line {line_no}: {e}"))?;
        let tail = joined[used..].trim();
        if !(tail.is_empty() || tail.starts_with('#')) {
            return Err(format!(
                "line {line_no}: unexpected `{tail}` after a quoted string"
            ));
        }
        return Ok(Yaml::Str(value));
    }
    if first.starts_with('[') || first.starts_with('{') {
        let joined: String = parts.iter().map(|p| p.trim()).collect::<Vec<_>>().join(" ");
        let (value, used) = parse_flow(&joined).map_err(|e| format!("line {line_no}: {e}"))?;
        if !joined[used..].trim().is_empty() {
            return Err(format!(
                "line {line_no}: unexpected text after a flow collection"
            ));
        }
        return Ok(value);
    }
    if first.starts_with('|') || first.starts_with('>') {
        return Err(format!("line {line_no}: block scalars are not supported"));
    }
    if first.starts_with('&') || first.starts_with('*') || first.starts_with('!') {
        return Err(format!(
            "line {line_no}: anchors, aliases and tags are not supported"
        ));
    }
    Ok(resolve_plain(&fold_plain(parts)))
}

fn join_lines(parts: &[&str]) -> String {
    let mut s = parts[0].trim_start().to_string();
    for p in &parts[1..] {
        s.push('\n');
        s.push_str(p);
    }
    s
}

/// Folds a multi-line plain scalar: lines joined by a space, each empty line a newline.
fn fold_plain(parts: &[&str]) -> String {
    let mut out = String::new();
    let mut pending_newlines = 0usize;
    for (i, p) in parts.iter().enumerate() {
        let mut t = p.trim();
        if let Some(pos) = t.find(" #") {
            t = t[..pos].trim_end();
        }
        if i > 0 && t.is_empty() {
            pending_newlines += 1;
            continue;
        }
        if i > 0 {
            if pending_newlines > 0 {
                out.extend(std::iter::repeat_n('\n', pending_newlines));
            } else {
                out.push(' ');
            }
            pending_newlines = 0;
        }
        out.push_str(t);
    }
    out
}

/// PyYAML's implicit typing of plain scalars (YAML 1.1, `SafeLoader`).
fn resolve_plain(s: &str) -> Yaml {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Yaml::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Yaml::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Yaml::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Yaml::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Yaml::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Yaml::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_yaml_int(s) {
        return Yaml::Int(i);
    }
    if is_yaml_float(s) {
        if let Ok(f) = s.replace('_', "").parse::<f64>() {
            return Yaml::Float(f);
        }
    }
    Yaml::Str(s.to_string())
}

fn parse_yaml_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let clean = digits.replace('_', "");
    let value = if let Some(hex) = clean.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = clean.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if clean.len() > 1 && clean.starts_with('0') {
        i64::from_str_radix(&clean[1..], 8).ok()?
    } else if !clean.is_empty() && clean.bytes().all(|b| b.is_ascii_digit()) {
        if digits.starts_with('_') {
            return None;
        }
        clean.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -value } else { value })
}

/// `[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?`: YAML 1.1 floats always have a `.`.
fn is_yaml_float(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let Some((int, frac)) = mantissa.split_once('.') else {
        return false;
    };
    let int_ok = int.is_empty()
        || (int.as_bytes()[0].is_ascii_digit()
            && int.bytes().all(|b| b.is_ascii_digit() || b == b'_'));
    let frac_ok = frac.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let exp_ok = exp.is_none_or(|e| {
        e.len() > 1
            && matches!(e.as_bytes()[0], b'-' | b'+')
            && e[1..].bytes().all(|b| b.is_ascii_digit())
    });
    int_ok && frac_ok && exp_ok && (!int.is_empty() || !frac.is_empty())
}

/// Parses a single- or double-quoted scalar starting at `s[0]`, folding line breaks as YAML
/// does. Returns the value and the number of bytes consumed (including the closing quote).
fn parse_quoted(s: &str) -> Result<(String, usize), String> {
    let quote = s.chars().next().ok_or("empty scalar")?;
    let double = quote == '"';
    let mut out = String::new();
    // Spaces seen since the last content character: dropped when a line break follows.
    let mut pending_ws = String::new();
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' if !double => {
                if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                    chars.next();
                    out.push_str(&pending_ws);
                    pending_ws.clear();
                    out.push('\'');
                } else {
                    out.push_str(&pending_ws);
                    return Ok((out, i + 1));
                }
            }
            '"' if double => {
                out.push_str(&pending_ws);
                return Ok((out, i + 1));
            }
            '\\' if double => {
                out.push_str(&pending_ws);
                pending_ws.clear();
                let (_, e) = chars.next().ok_or("unterminated escape")?;
                match e {
                    '\n' => {
                        // Escaped line break: joined without a space.
                        while chars.peek().is_some_and(|&(_, n)| n == ' ' || n == '\t') {
                            chars.next();
                        }
                    }
                    '0' => out.push('\0'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    't' | '\t' => out.push('\t'),
                    'n' => out.push('\n'),
                    'v' => out.push('\x0B'),
                    'f' => out.push('\x0C'),
                    'r' => out.push('\r'),
                    'e' => out.push('\x1B'),
                    ' ' => out.push(' '),
                    '"' => out.push('"'),
                    '/' => out.push('/'),
                    '\\' => out.push('\\'),
                    'N' => out.push('\u{85}'),
                    '_' => out.push('\u{A0}'),
                    'L' => out.push('\u{2028}'),
                    'P' => out.push('\u{2029}'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut code = String::new();
                        for _ in 0..n {
                            code.push(chars.next().ok_or("truncated escape")?.1);
                        }
                        let v = u32::from_str_radix(&code, 16)
                            .map_err(|_| format!("bad escape `\\{e}{code}`"))?;
                        out.push(
                            char::from_u32(v).ok_or_else(|| format!("bad code point {v:#x}"))?,
                        );
                    }
                    other => return Err(format!("unknown escape `\\{other}`")),
                }
            }
            '\n' => {
                pending_ws.clear();
                // Skip the next lines' indentation; count empty lines.
                let mut breaks = 0;
                loop {
                    while chars.peek().is_some_and(|&(_, n)| n == ' ' || n == '\t') {
                        chars.next();
                    }
                    if chars.peek().is_some_and(|&(_, n)| n == '\n') {
                        chars.next();
                        breaks += 1;
                    } else {
                        break;
                    }
                }
                if breaks == 0 {
                    out.push(' ');
                } else {
                    out.extend(std::iter::repeat_n('\n', breaks));
                }
            }
            // Line and paragraph separators are breaks that folding keeps (PyYAML does too).
            '\u{2028}' | '\u{2029}' => {
                pending_ws.clear();
                while chars.peek().is_some_and(|&(_, n)| n == ' ' || n == '\t') {
                    chars.next();
                }
                out.push(c);
            }
            ' ' | '\t' => pending_ws.push(c),
            c => {
                out.push_str(&pending_ws);
                pending_ws.clear();
                out.push(c);
            }
        }
    }
    Err("unterminated quoted string".into())
}

/// A flow collection (`[a, 'b']`, `{k: v}`) on one logical line.
fn parse_flow(s: &str) -> Result<(Yaml, usize), String> {
    let open = s.as_bytes()[0];
    let close = if open == b'[' { b']' } else { b'}' };
    let mut items: Vec<Yaml> = Vec::new();
    let mut entries: Vec<(String, Yaml)> = Vec::new();
    let mut pos = 1;
    loop {
        let rest = &s[pos..];
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        let b = *s
            .as_bytes()
            .get(pos)
            .ok_or("unterminated flow collection")?;
        if b == close {
            let value = if open == b'[' {
                Yaml::Seq(items)
            } else {
                Yaml::Map(entries)
            };
            return Ok((value, pos + 1));
        }
        let (item, used) = flow_scalar(&s[pos..], close)?;
        pos += used;
        if open == b'{' {
            let rest = s[pos..].trim_start();
            pos = s.len() - rest.len();
            let rest = rest
                .strip_prefix(':')
                .ok_or("expected `:` in a flow mapping")?;
            pos += 1;
            let trimmed = rest.trim_start();
            pos += rest.len() - trimmed.len();
            let (value, used) = flow_scalar(&s[pos..], close)?;
            pos += used;
            let key = match item {
                Yaml::Str(k) => k,
                other => inline(&other),
            };
            entries.push((key, value));
        } else {
            items.push(item);
        }
        let rest = s[pos..].trim_start();
        pos = s.len() - rest.len();
        if rest.starts_with(',') {
            pos += 1;
        }
    }
}

fn flow_scalar(s: &str, close: u8) -> Result<(Yaml, usize), String> {
    if s.starts_with('\'') || s.starts_with('"') {
        let (v, used) = parse_quoted(s)?;
        return Ok((Yaml::Str(v), used));
    }
    if s.starts_with('[') || s.starts_with('{') {
        return parse_flow(s);
    }
    let end = s
        .char_indices()
        .find(|&(i, c)| {
            c == ',' || c as u32 == close as u32 || (c == ':' && s[i + 1..].starts_with([' ', ',']))
        })
        .map_or(s.len(), |(i, _)| i);
    Ok((resolve_plain(s[..end].trim()), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> Yaml {
        let text = to_string(&[("v".to_string(), Yaml::str(s))]);
        let parsed = parse(&text).unwrap();
        get(&parsed, "v").cloned().unwrap()
    }

    #[test]
    fn strings_round_trip_as_strings() {
        for s in [
            "",
            "Default",
            "0",
            "123",
            "1.5",
            "1e5",
            "true",
            "no",
            "null",
            "~",
            "y",
            "my exp: 'q' #1",
            "a\"b",
            "line1\nline2",
            "tab\there",
            " lead",
            "trail ",
            "- dash",
            "[x]",
            "{y}",
            "é ü 中",
            "file:///tmp/a b/c",
            "file:///tmp/x",
            "a:",
            "@at",
            "%p",
            "`b`",
            "!t",
            "&a",
            "*s",
            "\u{85}x",
            "\u{7f}",
            "back\\slash",
            ".inf",
            "-.inf",
            ".nan",
            "0x1F",
            "012",
            "2024-01-01",
            "a #b",
        ] {
            assert_eq!(round_trip(s), Yaml::str(s), "{s:?}");
        }
    }

    #[test]
    fn mlflow_experiment_meta_parses() {
        let text = "artifact_location: file:///work/mlruns/59346\ncreation_time: 1795720959886\n\
                    effective_trace_archival_retention: null\nexperiment_id: '593461022649075793'\n\
                    last_update_time: 1795720959886\nlifecycle_stage: active\n\
                    name: 'my exp: \"dq\" #1'\ntrace_location: null\nworkspace: default\n";
        let m = parse(text).unwrap();
        assert_eq!(
            get(&m, "experiment_id"),
            Some(&Yaml::str("593461022649075793"))
        );
        assert_eq!(get(&m, "creation_time"), Some(&Yaml::Int(1795720959886)));
        assert_eq!(get(&m, "name"), Some(&Yaml::str("my exp: \"dq\" #1")));
        assert_eq!(get(&m, "trace_location"), Some(&Yaml::Null));
        assert_eq!(
            get(&m, "artifact_location"),
            Some(&Yaml::str("file:///work/mlruns/59346"))
        );
    }

    #[test]
    fn nested_mappings_lists_and_legacy_ints_parse() {
        let text = "destination_id: abc\ntags:\n  mlflow.data.context: train\n  k: 'v w'\nx: []\n\
                    y: {}\nexperiment_id: 0\nend_time: null\nseq:\n- a\n- 'b'\n";
        let m = parse(text).unwrap();
        assert_eq!(
            get(&m, "tags"),
            Some(&Yaml::Map(vec![
                ("mlflow.data.context".into(), Yaml::str("train")),
                ("k".into(), Yaml::str("v w"))
            ]))
        );
        assert_eq!(get(&m, "x"), Some(&Yaml::Seq(vec![])));
        assert_eq!(get(&m, "y"), Some(&Yaml::Map(vec![])));
        assert_eq!(
            get(&m, "experiment_id").and_then(Yaml::as_string),
            Some("0".into())
        );
        assert_eq!(
            get(&m, "seq"),
            Some(&Yaml::Seq(vec![Yaml::str("a"), Yaml::str("b")]))
        );
    }

    /// What PyYAML 6 `safe_dump` writes for long and multi-line strings.
    #[test]
    fn pyyaml_folded_scalars_parse() {
        let text = concat!(
            "a: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo\n",
            "  pppp qqqq\n",
            "b: 'x: yy zz ''q'' aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk\n",
            "  llll'\n",
            "c: \"line1\\nline2 with a long tail aaaa bbbb cccc dddd eeee ffff gggg hhhh\\\n",
            "  \\ iiii\"\n",
            "d: 'one\n\n  two'\n",
            "e: '\u{2028}  sep'\n",
        );
        let m = parse(text).unwrap();
        assert_eq!(
            get(&m, "a"),
            Some(&Yaml::str(concat!(
                "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo ",
                "pppp qqqq"
            )))
        );
        assert_eq!(
            get(&m, "b"),
            Some(&Yaml::str(
                "x: yy zz 'q' aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll"
            ))
        );
        assert_eq!(
            get(&m, "c"),
            Some(&Yaml::str(
                "line1\nline2 with a long tail aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii"
            ))
        );
        assert_eq!(get(&m, "d"), Some(&Yaml::str("one\ntwo")));
        assert_eq!(get(&m, "e"), Some(&Yaml::str("\u{2028}sep")));
    }

    #[test]
    fn plain_scalars_are_typed_like_pyyaml() {
        assert_eq!(resolve_plain("3"), Yaml::Int(3));
        assert_eq!(resolve_plain("-12_000"), Yaml::Int(-12000));
        assert_eq!(resolve_plain("1.5"), Yaml::Float(1.5));
        assert_eq!(resolve_plain("1e5"), Yaml::str("1e5"));
        assert_eq!(resolve_plain("1.0e+5"), Yaml::Float(1e5));
        assert_eq!(resolve_plain("~"), Yaml::Null);
        assert_eq!(resolve_plain("On"), Yaml::Bool(true));
        assert_eq!(resolve_plain("abc"), Yaml::str("abc"));
    }

    #[test]
    fn keys_are_written_sorted() {
        let text = to_string(&[
            ("b".to_string(), Yaml::Int(1)),
            ("a".to_string(), Yaml::Null),
            ("tags".to_string(), Yaml::Seq(vec![])),
            (
                "m".to_string(),
                Yaml::Map(vec![
                    ("z".into(), Yaml::str("1")),
                    ("k".into(), Yaml::str("v")),
                ]),
            ),
        ]);
        assert_eq!(text, "a: null\nb: 1\nm:\n  k: v\n  z: '1'\ntags: []\n");
    }

    proptest::proptest! {
        #[test]
        fn any_string_round_trips(s in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(round_trip(&s), Yaml::str(s.clone()));
        }

        #[test]
        fn any_int_round_trips(i in proptest::prelude::any::<i64>()) {
            let text = to_string(&[("v".to_string(), Yaml::Int(i))]);
            let parsed = parse(&text).unwrap();
            proptest::prop_assert_eq!(get(&parsed, "v"), Some(&Yaml::Int(i)));
        }
    }
}
