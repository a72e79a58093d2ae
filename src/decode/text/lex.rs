//! The text formats' tokens: names, quoted strings, numbers, escapes.

use std::borrow::Cow;

use crate::model::labels::{label_rest, label_start, metric_rest, metric_start};

/// Which text format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Prometheus text format 0.0.4 / 1.0.0.
    Prometheus,
    /// OpenMetrics text 1.0 (`application/openmetrics-text`).
    OpenMetrics,
}

pub(super) fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

pub(super) fn scan_metric_name(b: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        let ok = if i > start {
            metric_rest(c)
        } else {
            metric_start(c)
        };
        if !ok {
            break;
        }
        i += 1;
    }
    i
}

pub(super) fn scan_label_name(b: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        if !(if i > start {
            label_rest(c)
        } else {
            label_start(c)
        }) {
            break;
        }
        i += 1;
    }
    i
}

pub(super) fn scan_token(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && !is_ws(b[i]) {
        i += 1;
    }
    i
}

/// Parses a sample value as Prometheus does (Go's `ParseFloat`: also `NaN`,
/// `+Inf`, `-Inf`, case-insensitive).
pub(crate) fn parse_float(tok: &str) -> Option<f64> {
    tok.parse::<f64>().ok()
}

pub(super) fn snippet(s: &str) -> String {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}", &s[..end])
}

/// Scans a quoted label value starting after its opening quote; returns the
/// unescaped value and the index after the closing quote.
pub(super) fn scan_quoted(line: &str, start: usize) -> Result<(Cow<'_, str>, usize), String> {
    let b = line.as_bytes();
    let Some(off) = memchr::memchr2(b'"', b'\\', &b[start..]) else {
        return Err("label value has no closing quote".into());
    };
    if b[start + off] == b'"' {
        return Ok((Cow::Borrowed(&line[start..start + off]), start + off + 1));
    }
    let mut out = String::with_capacity(off + 16);
    let mut i = start;
    loop {
        let Some(off) = memchr::memchr2(b'"', b'\\', &b[i..]) else {
            return Err("label value has no closing quote".into());
        };
        out.push_str(&line[i..i + off]);
        i += off;
        if b[i] == b'"' {
            return Ok((Cow::Owned(out), i + 1));
        }
        match b.get(i + 1) {
            Some(b'\\') => out.push('\\'),
            Some(b'"') => out.push('"'),
            Some(b'n') => out.push('\n'),
            Some(&c) => {
                return Err(format!(
                    "invalid escape \\{} in label value",
                    char::from(c).escape_default()
                ));
            }
            None => return Err("label value has no closing quote".into()),
        }
        i += 2;
    }
}

pub(super) fn unescape_help(text: &str, dialect: Dialect) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if dialect == Dialect::OpenMetrics => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}
