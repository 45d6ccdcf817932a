//! MLflow's run search grammar (`mlflow/utils/search_utils.py`), evaluated over runs read from
//! the file store. A REST store passes filters to the server untouched.
//!
//! Filters are comparisons joined by `AND` (any case): `metrics.x <op> number` with
//! `= != > >= < <=`; `params.x` / `tags.x` with `= != LIKE ILIKE` and a quoted string, or
//! `IS NULL` / `IS NOT NULL`; attributes (`attributes.status`, `run_name`, `start_time`,
//! `end_time`, `run_id IN ('a', 'b')`, ...); `datasets.name/digest/context`. Keys with special
//! characters go in backticks or double quotes. Order-by entries are `<key> [ASC|DESC]`; runs
//! are first ordered by start time (newest first) then run id, and missing or NaN values sort
//! last either way, as MLflow does. This module knows nothing about where runs are stored.

use std::cmp::Ordering;

use crate::tracking::Run;

/// An invalid filter or order-by clause.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    #[error("invalid filter `{filter}`: {reason}")]
    Filter { filter: String, reason: String },
    #[error("invalid order_by `{order_by}`: {reason}")]
    OrderBy { order_by: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Number(f64),
    Str(String),
    List(Vec<String>),
    None,
}

/// One comparison of a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub entity: Entity,
    pub key: String,
    pub comparator: Comparator,
    pub value: Operand,
}

/// A parsed filter: all clauses must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub clauses: Vec<Clause>,
}

/// A parsed order-by entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub entity: Entity,
    pub key: String,
    pub ascending: bool,
}

const STRING_ATTRIBUTES: &[&str] = &[
    "artifact_uri",
    "run_id",
    "run_name",
    "status",
    "user_id",
    "run name",
    "Run name",
    "Run Name",
];
const NUMERIC_ATTRIBUTES: &[&str] = &["start_time", "end_time", "created", "Created"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A dotted name; each part keeps whether it was quoted.
    Ident(Vec<String>),
    /// `'...'`, inner text as written (MLflow does not unescape `''`).
    SingleQuoted(String),
    /// `"..."` standing alone: a value or a key part.
    DoubleQuoted(String),
    Number(String),
    Op(&'static str),
    Word(String),
    LParen,
    RParen,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let quoted = |i: usize, q: char| -> Result<(String, usize), String> {
        let mut j = i + 1;
        while j < chars.len() {
            if chars[j] == q {
                // SQL doubles a quote to escape it.
                if chars.get(j + 1) == Some(&q) {
                    j += 2;
                    continue;
                }
                return Ok((chars[i + 1..j].iter().collect(), j + 1));
            }
            j += 1;
        }
        Err(format!("unterminated {q} quote"))
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let (text, next) = quoted(i, '\'')?;
            toks.push(Tok::SingleQuoted(text));
            i = next;
        } else if c == '(' {
            toks.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            toks.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            toks.push(Tok::Comma);
            i += 1;
        } else if matches!(c, '=' | '!' | '<' | '>') {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = match two.as_str() {
                "!=" => "!=",
                ">=" => ">=",
                "<=" => "<=",
                "<>" => "<>",
                "==" => "==",
                _ => match c {
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    _ => return Err("`!` must be followed by `=`".into()),
                },
            };
            toks.push(Tok::Op(op));
            i += op.len();
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
            || (c == '-'
                && chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_digit() || *n == '.'))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && matches!(chars[i], 'e' | 'E') {
                let mut j = i + 1;
                if j < chars.len() && matches!(chars[j], '+' | '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            if i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                return Err(format!(
                    "unexpected `{}`",
                    chars[start..=i].iter().collect::<String>()
                ));
            }
            toks.push(Tok::Number(chars[start..i].iter().collect()));
        } else if c.is_alphanumeric() || c == '_' || c == '`' || c == '"' {
            // A dotted name whose parts are bare words, `backticked` or "double quoted".
            let starts_double_quoted = c == '"';
            let mut parts = Vec::new();
            let mut any_quoted = false;
            loop {
                let c = chars.get(i).copied();
                match c {
                    Some('`') => {
                        let (text, next) = quoted(i, '`')?;
                        parts.push(text);
                        any_quoted = true;
                        i = next;
                    }
                    Some('"') => {
                        let (text, next) = quoted(i, '"')?;
                        parts.push(text);
                        any_quoted = true;
                        i = next;
                    }
                    Some(c) if c.is_alphanumeric() || c == '_' => {
                        let start = i;
                        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                            i += 1;
                        }
                        parts.push(chars[start..i].iter().collect());
                    }
                    _ => return Err("expected a name after `.`".into()),
                }
                if chars.get(i) == Some(&'.')
                    && chars
                        .get(i + 1)
                        .is_some_and(|n| n.is_alphanumeric() || matches!(n, '_' | '`' | '"'))
                {
                    i += 1;
                } else {
                    break;
                }
            }
            if parts.len() == 1 && !any_quoted {
                toks.push(Tok::Word(parts.remove(0)));
            } else if parts.len() == 1 && starts_double_quoted {
                toks.push(Tok::DoubleQuoted(parts.remove(0)));
            } else {
                toks.push(Tok::Ident(parts));
            }
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(toks)
}

fn entity_of(name: &str) -> Option<Entity> {
    Some(match name {
        "metric" | "metrics" => Entity::Metric,
        "parameter" | "parameters" | "param" | "params" => Entity::Param,
        "tag" | "tags" => Entity::Tag,
        "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
        "dataset" | "datasets" => Entity::Dataset,
        _ => return None,
    })
}

/// Splits `entity.key` as MLflow does: at the first `.`; a bare name is an attribute.
fn identifier(parts: &[String], for_order_by: bool) -> Result<(Entity, String), String> {
    let (entity, key) = if parts.len() == 1 {
        (Entity::Attribute, parts[0].clone())
    } else {
        let entity = entity_of(&parts[0]).ok_or_else(|| {
            format!(
                "invalid entity type `{}`; use `metrics`, `params`, `tags`, `attributes` or \
                 `datasets`",
                parts[0]
            )
        })?;
        (entity, parts[1..].join("."))
    };
    match entity {
        Entity::Attribute => {
            let valid = STRING_ATTRIBUTES.contains(&key.as_str())
                || NUMERIC_ATTRIBUTES.contains(&key.as_str());
            let alias_only_in_filter = ["run name", "Run name", "Run Name"].contains(&key.as_str());
            if !valid || (for_order_by && alias_only_in_filter) {
                return Err(format!(
                    "invalid attribute `{key}`; valid attributes are artifact_uri, end_time, \
                     run_id, run_name, start_time, status, user_id"
                ));
            }
        }
        Entity::Dataset => {
            if for_order_by {
                return Err("datasets cannot be used in order_by".into());
            }
            if !["name", "digest", "context"].contains(&key.as_str()) {
                return Err(format!(
                    "invalid dataset key `{key}`; valid keys are name, digest, context"
                ));
            }
        }
        _ => {}
    }
    Ok((entity, canonical_attribute(entity, key)))
}

fn canonical_attribute(entity: Entity, key: String) -> String {
    if entity != Entity::Attribute {
        return key;
    }
    match key.as_str() {
        "created" | "Created" => "start_time".into(),
        "run name" | "Run name" | "Run Name" => "run_name".into(),
        _ => key,
    }
}

/// Parses a filter string. An empty or blank filter matches every run.
pub fn parse_filter(filter: &str) -> Result<Filter, SearchError> {
    let err = |reason: String| SearchError::Filter {
        filter: filter.to_string(),
        reason,
    };
    let toks = lex(filter).map_err(err)?;
    let mut clauses = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if !clauses.is_empty() {
            match &toks[i] {
                Tok::Word(w) if w.eq_ignore_ascii_case("and") => i += 1,
                Tok::Word(w) if w.eq_ignore_ascii_case("or") => {
                    return Err(err("only `AND` joins clauses; `OR` is not supported".into()))
                }
                other => return Err(err(format!("expected `AND` before {}", describe(other)))),
            }
        }
        let (clause, next) = parse_clause(&toks, i).map_err(err)?;
        clauses.push(clause);
        i = next;
    }
    Ok(Filter { clauses })
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(parts) => format!("`{}`", parts.join(".")),
        Tok::SingleQuoted(s) => format!("`'{s}'`"),
        Tok::DoubleQuoted(s) => format!("`\"{s}\"`"),
        Tok::Number(n) => format!("`{n}`"),
        Tok::Op(op) => format!("`{op}`"),
        Tok::Word(w) => format!("`{w}`"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
    }
}

fn is_word(tok: Option<&Tok>, word: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
}

fn parse_clause(toks: &[Tok], start: usize) -> Result<(Clause, usize), String> {
    let parts = match &toks[start] {
        Tok::Ident(parts) => parts.clone(),
        Tok::Word(w) => vec![w.clone()],
        other => {
            return Err(format!(
                "expected a key such as `metrics.rmse`, found {}",
                describe(other)
            ))
        }
    };
    let (entity, key) = identifier(&parts, false)?;
    let mut i = start + 1;
    let comparator = match toks.get(i) {
        Some(Tok::Op(op)) => {
            i += 1;
            match *op {
                "=" => Comparator::Eq,
                "!=" => Comparator::Ne,
                ">" => Comparator::Gt,
                ">=" => Comparator::Ge,
                "<" => Comparator::Lt,
                "<=" => Comparator::Le,
                other => return Err(format!("invalid comparator `{other}`")),
            }
        }
        t if is_word(t, "like") => {
            i += 1;
            Comparator::Like
        }
        t if is_word(t, "ilike") => {
            i += 1;
            Comparator::ILike
        }
        t if is_word(t, "in") => {
            i += 1;
            Comparator::In
        }
        t if is_word(t, "not") && is_word(toks.get(i + 1), "in") => {
            i += 2;
            Comparator::NotIn
        }
        t if is_word(t, "is") => {
            if is_word(toks.get(i + 1), "null") {
                i += 2;
                Comparator::IsNull
            } else if is_word(toks.get(i + 1), "not") && is_word(toks.get(i + 2), "null") {
                i += 3;
                Comparator::IsNotNull
            } else {
                return Err("expected `IS NULL` or `IS NOT NULL`".into());
            }
        }
        Some(other) => {
            return Err(format!(
                "expected a comparator after `{key}`, found {}",
                describe(other)
            ))
        }
        None => return Err(format!("expected a comparator after `{key}`")),
    };
    check_comparator(entity, &key, comparator)?;
    let value = match comparator {
        Comparator::IsNull | Comparator::IsNotNull => Operand::None,
        Comparator::In | Comparator::NotIn => {
            let (list, next) = parse_list(toks, i)?;
            i = next;
            Operand::List(list)
        }
        _ => {
            let tok = toks
                .get(i)
                .ok_or_else(|| format!("expected a value after `{key}`"))?;
            i += 1;
            operand(entity, &key, tok)?
        }
    };
    Ok((
        Clause {
            entity,
            key,
            comparator,
            value,
        },
        i,
    ))
}

fn check_comparator(entity: Entity, key: &str, c: Comparator) -> Result<(), String> {
    use Comparator::*;
    let numeric_attr = entity == Entity::Attribute && (key == "start_time" || key == "end_time");
    let ok = match entity {
        Entity::Metric => matches!(c, Eq | Ne | Gt | Ge | Lt | Le),
        Entity::Param | Entity::Tag => matches!(c, Eq | Ne | Like | ILike | IsNull | IsNotNull),
        Entity::Attribute if numeric_attr => matches!(c, Eq | Ne | Gt | Ge | Lt | Le),
        Entity::Attribute => match c {
            Eq | Ne | Like | ILike => true,
            In | NotIn if key == "run_id" => true,
            In | NotIn => return Err("only `run_id` can be compared with a list".into()),
            _ => false,
        },
        Entity::Dataset => matches!(c, Eq | Ne | Like | ILike | In | NotIn),
    };
    if ok {
        return Ok(());
    }
    if matches!(c, IsNull | IsNotNull) {
        return Err(format!(
            "`IS NULL` / `IS NOT NULL` work for tags and params only, not `{key}`"
        ));
    }
    Err(format!(
        "comparator {} cannot be used with `{key}`",
        comparator_name(c)
    ))
}

fn comparator_name(c: Comparator) -> &'static str {
    match c {
        Comparator::Eq => "`=`",
        Comparator::Ne => "`!=`",
        Comparator::Gt => "`>`",
        Comparator::Ge => "`>=`",
        Comparator::Lt => "`<`",
        Comparator::Le => "`<=`",
        Comparator::Like => "`LIKE`",
        Comparator::ILike => "`ILIKE`",
        Comparator::In => "`IN`",
        Comparator::NotIn => "`NOT IN`",
        Comparator::IsNull => "`IS NULL`",
        Comparator::IsNotNull => "`IS NOT NULL`",
    }
}

fn operand(entity: Entity, key: &str, tok: &Tok) -> Result<Operand, String> {
    let numeric = entity == Entity::Metric
        || (entity == Entity::Attribute && (key == "start_time" || key == "end_time"));
    if numeric {
        return match tok {
            Tok::Number(n) => n
                .parse::<f64>()
                .map(Operand::Number)
                .map_err(|_| format!("`{n}` is not a number")),
            other => Err(format!(
                "`{key}` must be compared with a number, found {}",
                describe(other)
            )),
        };
    }
    match tok {
        Tok::SingleQuoted(s) | Tok::DoubleQuoted(s) => Ok(Operand::Str(s.clone())),
        other => Err(format!(
            "`{key}` must be compared with a quoted string such as 'value', found {}",
            describe(other)
        )),
    }
}

fn parse_list(toks: &[Tok], start: usize) -> Result<(Vec<String>, usize), String> {
    if toks.get(start) != Some(&Tok::LParen) {
        return Err("expected a list such as ('a', 'b') after `IN`".into());
    }
    let mut items = Vec::new();
    let mut i = start + 1;
    loop {
        match toks.get(i) {
            Some(Tok::SingleQuoted(s)) | Some(Tok::DoubleQuoted(s)) => items.push(s.clone()),
            Some(Tok::RParen) if !items.is_empty() => return Ok((items, i + 1)),
            _ => return Err("expected a non-empty list of quoted strings after `IN`".into()),
        }
        i += 1;
        match toks.get(i) {
            Some(Tok::Comma) => i += 1,
            Some(Tok::RParen) => return Ok((items, i + 1)),
            _ => return Err("expected `,` or `)` in a list".into()),
        }
    }
}

impl Filter {
    pub fn matches(&self, run: &Run) -> bool {
        self.clauses.iter().all(|c| c.matches(run))
    }
}

impl Clause {
    pub fn matches(&self, run: &Run) -> bool {
        use Comparator::*;
        match self.entity {
            Entity::Metric => {
                let Some(lhs) = run.metrics.get(&self.key).map(|m| m.value) else {
                    return false;
                };
                let Operand::Number(rhs) = self.value else {
                    return false;
                };
                compare_f64(lhs, self.comparator, rhs)
            }
            Entity::Param | Entity::Tag => {
                let map = if self.entity == Entity::Param {
                    &run.params
                } else {
                    &run.tags
                };
                let lhs = map.get(&self.key);
                match self.comparator {
                    IsNull => lhs.is_none(),
                    IsNotNull => lhs.is_some(),
                    _ => lhs.is_some_and(|l| compare_str(l, self.comparator, &self.value)),
                }
            }
            Entity::Attribute => match self.key.as_str() {
                "start_time" | "end_time" => {
                    let lhs = if self.key == "start_time" {
                        Some(run.info.start_time)
                    } else {
                        run.info.end_time
                    };
                    match (lhs, &self.value) {
                        (Some(l), Operand::Number(r)) => compare_f64(l as f64, self.comparator, *r),
                        _ => false,
                    }
                }
                key => {
                    let lhs = match key {
                        "run_id" => run.info.run_id.as_str(),
                        "run_name" => run.info.run_name.as_str(),
                        "status" => run.info.status.as_str(),
                        "user_id" => run.info.user_id.as_str(),
                        "artifact_uri" => run.info.artifact_uri.as_str(),
                        _ => return false,
                    };
                    compare_str(lhs, self.comparator, &self.value)
                }
            },
            // Inputs without a context tag never match a context clause, as in MLflow.
            Entity::Dataset => run.inputs.iter().any(|d| {
                let lhs = match self.key.as_str() {
                    "name" => Some(d.name.as_str()),
                    "digest" => Some(d.digest.as_str()),
                    _ => d.context.as_deref(),
                };
                lhs.is_some_and(|l| compare_str(l, self.comparator, &self.value))
            }),
        }
    }
}

/// Python's float comparisons: anything with NaN is false except `!=`.
fn compare_f64(l: f64, c: Comparator, r: f64) -> bool {
    match c {
        Comparator::Eq => l == r,
        Comparator::Ne => l != r,
        Comparator::Gt => l > r,
        Comparator::Ge => l >= r,
        Comparator::Lt => l < r,
        Comparator::Le => l <= r,
        _ => false,
    }
}

fn compare_str(l: &str, c: Comparator, value: &Operand) -> bool {
    match (c, value) {
        (Comparator::Eq, Operand::Str(r)) => l == r,
        (Comparator::Ne, Operand::Str(r)) => l != r,
        (Comparator::Like, Operand::Str(p)) => like(l, p, false),
        (Comparator::ILike, Operand::Str(p)) => like(l, p, true),
        (Comparator::In, Operand::List(items)) => items.iter().any(|i| i == l),
        (Comparator::NotIn, Operand::List(items)) => !items.iter().any(|i| i == l),
        _ => false,
    }
}

/// SQL `LIKE` as MLflow's file store evaluates it: the pattern becomes a regex (`%` is `.*`,
/// `_` is `.`, neither matching a line break) matched from the start of the text, anchored at
/// the end (`$`, which also matches before a final line break) unless the pattern ends in `%`.
pub fn like(text: &str, pattern: &str, case_insensitive: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if case_insensitive {
            s.chars().flat_map(char::to_lowercase).collect()
        } else {
            s.chars().collect()
        }
    };
    let t = fold(text);
    let p = fold(pattern);
    let n = t.len();
    // reach[j]: the pattern so far can match exactly t[..j].
    let mut reach = vec![false; n + 1];
    reach[0] = true;
    for &pc in &p {
        let mut next = vec![false; n + 1];
        for j in 0..=n {
            next[j] = match pc {
                '%' => reach[j] || (j > 0 && next[j - 1] && t[j - 1] != '\n'),
                '_' => j > 0 && reach[j - 1] && t[j - 1] != '\n',
                c => j > 0 && reach[j - 1] && t[j - 1] == c,
            };
        }
        reach = next;
    }
    if pattern.ends_with('%') {
        reach.iter().any(|&r| r)
    } else {
        reach[n] || (n > 0 && t[n - 1] == '\n' && reach[n - 1])
    }
}

/// Parses one order-by entry such as `metrics.rmse ASC` or ``metrics.`train/loss` desc``.
pub fn parse_order_by(entry: &str) -> Result<OrderBy, SearchError> {
    let err = |reason: String| SearchError::OrderBy {
        order_by: entry.to_string(),
        reason,
    };
    let toks = lex(entry).map_err(err)?;
    let (parts, rest) = match toks.split_first() {
        Some((Tok::Ident(parts), rest)) => (parts.clone(), rest),
        Some((Tok::Word(w), rest)) => (vec![w.clone()], rest),
        Some((Tok::DoubleQuoted(s), rest)) => (vec![s.clone()], rest),
        _ => return Err(err("expected a key such as `metrics.rmse`".into())),
    };
    let ascending = match rest {
        [] => true,
        [Tok::Word(w)] if w.eq_ignore_ascii_case("asc") => true,
        [Tok::Word(w)] if w.eq_ignore_ascii_case("desc") => false,
        _ => return Err(err("expected `ASC` or `DESC` after the key".into())),
    };
    let (entity, key) = identifier(&parts, true).map_err(err)?;
    Ok(OrderBy {
        entity,
        key,
        ascending,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum SortValue {
    Num(f64),
    Str(String),
}

impl SortValue {
    fn cmp(&self, other: &SortValue) -> Ordering {
        match (self, other) {
            (SortValue::Num(a), SortValue::Num(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (SortValue::Str(a), SortValue::Str(b)) => a.cmp(b),
            (SortValue::Num(_), SortValue::Str(_)) => Ordering::Less,
            (SortValue::Str(_), SortValue::Num(_)) => Ordering::Greater,
        }
    }
}

/// MLflow's sort key: `(is_missing_or_nan, value)` ascending, `(not ..., value)` descending,
/// with missing values at +/-inf and NaN at the other end, so both sort last.
fn sort_key(run: &Run, ob: &OrderBy) -> (bool, SortValue) {
    let value: Option<SortValue> = match ob.entity {
        Entity::Metric => run.metrics.get(&ob.key).map(|m| SortValue::Num(m.value)),
        Entity::Param => run.params.get(&ob.key).map(|v| SortValue::Str(v.clone())),
        Entity::Tag => run.tags.get(&ob.key).map(|v| SortValue::Str(v.clone())),
        Entity::Attribute => match ob.key.as_str() {
            "start_time" => Some(SortValue::Num(run.info.start_time as f64)),
            "end_time" => run.info.end_time.map(|t| SortValue::Num(t as f64)),
            "run_id" => Some(SortValue::Str(run.info.run_id.clone())),
            "run_name" => Some(SortValue::Str(run.info.run_name.clone())),
            "status" => Some(SortValue::Str(run.info.status.as_str().to_string())),
            "user_id" => Some(SortValue::Str(run.info.user_id.clone())),
            "artifact_uri" => Some(SortValue::Str(run.info.artifact_uri.clone())),
            _ => None,
        },
        Entity::Dataset => None,
    };
    let fill = if ob.ascending {
        f64::INFINITY
    } else {
        f64::NEG_INFINITY
    };
    let (missing, v) = match value {
        None => (true, SortValue::Num(fill)),
        Some(SortValue::Num(x)) if x.is_nan() => (true, SortValue::Num(-fill)),
        Some(v) => (false, v),
    };
    (if ob.ascending { missing } else { !missing }, v)
}

/// Sorts runs as MLflow's file store does: start time descending, then run id, then each
/// order-by entry from the last to the first with a stable sort.
pub fn sort_runs(runs: &mut [Run], order_by: &[OrderBy]) {
    runs.sort_by(|a, b| {
        b.info
            .start_time
            .cmp(&a.info.start_time)
            .then_with(|| a.info.run_id.cmp(&b.info.run_id))
    });
    for ob in order_by.iter().rev() {
        let mut keyed: Vec<((bool, SortValue), Run)> =
            runs.iter().map(|r| (sort_key(r, ob), r.clone())).collect();
        keyed.sort_by(|(ka, _), (kb, _)| {
            let ord = ka.0.cmp(&kb.0).then_with(|| ka.1.cmp(&kb.1));
            if ob.ascending {
                ord
            } else {
                ord.reverse()
            }
        });
        for (slot, (_, run)) in runs.iter_mut().zip(keyed) {
            *slot = run;
        }
    }
}

/// Filters, sorts and truncates runs for a search.
pub fn apply(
    mut runs: Vec<Run>,
    filter: Option<&str>,
    order_by: &[String],
    max_results: usize,
) -> Result<Vec<Run>, SearchError> {
    let filter = parse_filter(filter.unwrap_or(""))?;
    let order: Vec<OrderBy> = order_by
        .iter()
        .map(|o| parse_order_by(o))
        .collect::<Result<_, _>>()?;
    runs.retain(|r| filter.matches(r));
    sort_runs(&mut runs, &order);
    runs.truncate(max_results);
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::tracking::{DatasetInput, Metric, RunInfo, RunStatus};

    fn run(id: &str, start: i64, metrics: &[(&str, f64)], params: &[(&str, &str)]) -> Run {
        Run {
            info: RunInfo {
                run_id: id.into(),
                experiment_id: "1".into(),
                run_name: format!("name-{id}"),
                user_id: "".into(),
                status: RunStatus::Finished,
                start_time: start,
                end_time: Some(start + 10),
                artifact_uri: "file:///a".into(),
                lifecycle_stage: "active".into(),
            },
            metrics: metrics
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Metric {
                            key: k.to_string(),
                            value: *v,
                            timestamp: 0,
                            step: 0,
                        },
                    )
                })
                .collect(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            tags: BTreeMap::new(),
            inputs: vec![],
        }
    }

    fn clause(f: &str) -> Clause {
        let mut parsed = parse_filter(f).unwrap();
        assert_eq!(parsed.clauses.len(), 1, "{f}");
        parsed.clauses.remove(0)
    }

    #[test]
    fn filters_parse_like_mlflow() {
        let c = clause("metrics.rmse < 1");
        assert_eq!(
            (c.entity, c.key.as_str(), c.comparator),
            (Entity::Metric, "rmse", Comparator::Lt)
        );
        assert_eq!(c.value, Operand::Number(1.0));
        let c = clause("metrics.`train/loss` >= 1e-3");
        assert_eq!(
            (c.key.as_str(), c.value),
            ("train/loss", Operand::Number(1e-3))
        );
        let c = clause("metrics.popularity.precision_at_10 > .5");
        assert_eq!(c.key, "popularity.precision_at_10");
        let c = clause("tags.\"mlflow.runName\" = 'a'");
        assert_eq!((c.entity, c.key.as_str()), (Entity::Tag, "mlflow.runName"));
        let c = clause("params.a = \"x\"");
        assert_eq!(c.value, Operand::Str("x".into()));
        let c = clause("attributes.run_id IN ('a','b')");
        assert_eq!(c.value, Operand::List(vec!["a".into(), "b".into()]));
        let c = clause("attribute.run_id NOT IN ('a')");
        assert_eq!(c.comparator, Comparator::NotIn);
        let c = clause("tags.t IS NOT NULL");
        assert_eq!(
            (c.comparator, c.value),
            (Comparator::IsNotNull, Operand::None)
        );
        let c = clause("run_name = 'x'");
        assert_eq!((c.entity, c.key.as_str()), (Entity::Attribute, "run_name"));
        let c = clause("created > 0");
        assert_eq!(c.key, "start_time");
        let c = clause("attributes.`Run name` = 'a'");
        assert_eq!(c.key, "run_name");
        let c = clause("metric.x = -1");
        assert_eq!(c.value, Operand::Number(-1.0));
        let c = clause("params.a = 'it''s'");
        assert_eq!(c.value, Operand::Str("it''s".into()));
        let f = parse_filter("metrics.rmse<1 and params.a != 'x' AND tags.b ILIKE '%Y%'").unwrap();
        assert_eq!(f.clauses.len(), 3);
        assert_eq!(parse_filter("  ").unwrap().clauses.len(), 0);
    }

    #[test]
    fn invalid_filters_are_rejected_with_the_filter_named() {
        for bad in [
            "metrics.a = 1 OR metrics.b = 2",
            "metrics.x > nan",
            "params.lr = 0.1",
            "attribute.status IN ('FINISHED')",
            "metrics.a-b > 1",
            "metrics.a > +5",
            "metrics.a LIKE '%x'",
            "metrics.a IS NULL",
            "foo.a = 'x'",
            "attributes.bogus = 'x'",
            "metrics.a = 1 metrics.b = 2",
            "params.a = 'unterminated",
            "metrics.a <> 1",
        ] {
            let err = parse_filter(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn metric_comparisons_follow_python_float_semantics() {
        let r = run("a", 1, &[("rmse", 0.9), ("n", f64::NAN)], &[]);
        assert!(parse_filter("metrics.rmse < 1").unwrap().matches(&r));
        assert!(!parse_filter("metrics.rmse >= 1").unwrap().matches(&r));
        assert!(!parse_filter("metrics.missing < 1").unwrap().matches(&r));
        assert!(!parse_filter("metrics.n = 1").unwrap().matches(&r));
        assert!(parse_filter("metrics.n != 1").unwrap().matches(&r));
        assert!(!parse_filter("metrics.n < 1").unwrap().matches(&r));
    }

    #[test]
    fn param_tag_and_attribute_clauses_match() {
        let mut r = run("abc", 100, &[], &[("rank", "10"), ("name", "Alpha\nBeta")]);
        r.tags.insert("t".into(), "val".into());
        r.inputs
            .push(DatasetInput::local("ml100k", "d1", "/x").with_context("training"));
        let yes = [
            "params.rank = '10'",
            "params.rank != '20'",
            "params.rank LIKE '1%'",
            "params.rank LIKE '_0'",
            "params.name ILIKE 'alpha%'",
            "params.name LIKE 'Alpha%'",
            "params.missing IS NULL",
            "tags.t IS NOT NULL",
            "tags.t = 'val'",
            "attributes.status = 'FINISHED'",
            "attributes.run_id IN ('x', 'abc')",
            "attributes.run_id NOT IN ('x')",
            "attributes.start_time >= 100 AND attributes.end_time = 110",
            "run_name LIKE 'name-%'",
            "datasets.name = 'ml100k'",
            "datasets.context = 'training'",
            "datasets.digest IN ('d1', 'd2')",
        ];
        for f in yes {
            assert!(parse_filter(f).unwrap().matches(&r), "{f}");
        }
        let no = [
            "params.rank = '1'",
            "params.rank LIKE '1'",
            "params.name LIKE 'Alpha%Beta'",
            "params.rank IS NULL",
            "params.missing = 'x'",
            "params.missing != 'x'",
            "tags.t ILIKE 'x%'",
            "attributes.run_id IN ('x')",
            "attributes.start_time > 100",
            "datasets.name = 'other'",
        ];
        for f in no {
            assert!(!parse_filter(f).unwrap().matches(&r), "{f}");
        }
    }

    #[test]
    fn like_patterns_match_whole_strings() {
        assert!(like("abc", "a%", false));
        assert!(like("abc", "%c", false));
        assert!(like("abc", "%b%", false));
        assert!(like("abc", "a_c", false));
        assert!(!like("abc", "a_", false));
        assert!(!like("abc", "ABC", false));
        assert!(like("abc", "ABC", true));
        assert!(like("a.c", "a.c", false));
        assert!(!like("abc", "a.c", false));
        assert!(like("", "%", false));
        assert!(!like("", "_", false));
        // Python's `re.match` semantics around line breaks, checked against MLflow 3.17.2.
        assert!(!like("a\nb", "a%b", false));
        assert!(!like("a\nb", "%b", false));
        assert!(like("a\nb", "a%", false));
        assert!(like("ab\n", "ab", false));
        assert!(like("ab\n", "a_", false));
        assert!(like("Alpha\nBeta", "alpha%", true));
        assert!(!like("Alpha\nBeta", "alpha%", false));
    }

    #[test]
    fn order_by_parses_keys_and_directions() {
        let o = parse_order_by("metrics.rmse ASC").unwrap();
        assert_eq!(
            (o.entity, o.key.as_str(), o.ascending),
            (Entity::Metric, "rmse", true)
        );
        let o = parse_order_by("metrics.`a b` desc").unwrap();
        assert_eq!((o.key.as_str(), o.ascending), ("a b", false));
        let o = parse_order_by("start_time").unwrap();
        assert_eq!(
            (o.entity, o.key.as_str()),
            (Entity::Attribute, "start_time")
        );
        assert_eq!(parse_order_by("params.x").unwrap().entity, Entity::Param);
        assert!(parse_order_by("metrics.rmse UP").is_err());
        assert!(parse_order_by("bogus DESC").is_err());
        assert!(parse_order_by("").is_err());
    }

    #[test]
    fn base_order_is_start_time_desc_then_run_id() {
        let mut runs = vec![
            run("b", 1, &[], &[]),
            run("a", 1, &[], &[]),
            run("c", 2, &[], &[]),
        ];
        sort_runs(&mut runs, &[]);
        let ids: Vec<&str> = runs.iter().map(|r| r.info.run_id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
    }

    #[test]
    fn missing_and_nan_metrics_sort_last_in_both_directions() {
        let runs = vec![
            run("none", 5, &[], &[]),
            run("nan", 4, &[("m", f64::NAN)], &[]),
            run("two", 3, &[("m", 2.0)], &[]),
            run("one", 2, &[("m", 1.0)], &[]),
        ];
        let order = |dir: &str| {
            let mut rs = runs.clone();
            sort_runs(
                &mut rs,
                &[parse_order_by(&format!("metrics.m {dir}")).unwrap()],
            );
            rs.iter().map(|r| r.info.run_id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(order("ASC"), ["one", "two", "nan", "none"]);
        assert_eq!(order("DESC"), ["two", "one", "nan", "none"]);
    }

    #[test]
    fn later_order_by_entries_break_ties_of_earlier_ones() {
        let runs = vec![
            run("a", 1, &[("m", 1.0)], &[("p", "x")]),
            run("b", 2, &[("m", 1.0)], &[("p", "y")]),
            run("c", 3, &[("m", 0.5)], &[("p", "y")]),
        ];
        let out = apply(
            runs,
            None,
            &["metrics.m DESC".into(), "params.p ASC".into()],
            10,
        )
        .unwrap();
        let ids: Vec<&str> = out.iter().map(|r| r.info.run_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn apply_filters_sorts_and_truncates() {
        let runs = vec![
            run("a", 1, &[("rmse", 0.9)], &[]),
            run("b", 2, &[("rmse", 0.8)], &[]),
            run("c", 3, &[("rmse", 1.2)], &[]),
        ];
        let out = apply(
            runs,
            Some("metrics.rmse < 1"),
            &["metrics.rmse ASC".into()],
            1,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].info.run_id, "b");
    }

    proptest::proptest! {
        #[test]
        fn a_pattern_without_wildcards_matches_only_itself(
            t in "[a-zA-Z0-9 .]{0,12}", u in "[a-zA-Z0-9 .]{0,12}"
        ) {
            proptest::prop_assert!(like(&t, &t, false));
            proptest::prop_assert_eq!(like(&t, &u, false), t == u);
            proptest::prop_assert!(like(&t, "%", false));
            let (text, prefix) = (format!("{t}{u}"), format!("{t}%"));
            proptest::prop_assert!(like(&text, &prefix, false));
        }
    }
}
