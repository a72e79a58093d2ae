//! Decoder for the Prometheus text format 0.0.4 (and 1.0.0) and OpenMetrics
//! text 1.0, into a [`Push`].
//!
//! Our own scanner, not `prometheus-parse`: that crate cuts label values at
//! commas, drops samples whose values hold `}`, leaves escapes undecoded and
//! was an order of magnitude slower (bench/README.md, "Text parser"). Label
//! names and unescaped values are borrowed from the body; a series costs
//! one allocation (its key).
//!
//! Departs from Prometheus' own parser in being strict where aggregation
//! needs it (a `TYPE` after samples, NaN counters, decreasing buckets are
//! errors) and lenient where it costs nothing (samples of a family need not
//! be contiguous; unknown `#` comments are ignored in both dialects).

use std::borrow::Cow;
use std::collections::HashMap;

mod family;
mod lex;

use super::options::{Options, check_scalar, check_summary};
use crate::error::Rejection;
use crate::model::labels::is_metric_name;
use crate::model::{Bucket, Family, Histogram, Kind, Push, Series, Value, created_from_seconds};
use family::{FamilyBuilder, Naming, Part};
pub use lex::Dialect;
pub(crate) use lex::parse_float;
use lex::{
    scan_label_name, scan_metric_name, scan_quoted, scan_token, skip_ws, snippet, unescape_help,
};

/// Parses a whole text body. Any error names the line (from 1) and, where
/// known, the metric.
pub fn parse(body: &[u8], dialect: Dialect, opts: &Options<'_>) -> Result<Push, Rejection> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1;
        Rejection::Line {
            line,
            reason: "invalid UTF-8".into(),
        }
    })?;
    let mut p = Parser {
        dialect,
        opts,
        families: Vec::new(),
        by_name: HashMap::new(),
        current: None,
        // Room for a typical series' labels and key up front: grown from
        // empty they were five reallocations on every small push.
        labels: Vec::with_capacity(16),
        key: Vec::with_capacity(256),
        eof_line: None,
        refused: None,
    };
    // Lines found with memchr's SIMD search: `str::split` spent about 200
    // instructions finding the end of each 100-byte line (callgrind).
    let ends = memchr::memchr_iter(b'\n', text.as_bytes()).chain(std::iter::once(text.len()));
    let mut start = 0;
    for (i, end) in ends.enumerate() {
        // `\n` is ASCII: both ends are character boundaries.
        let raw = &text[start..end];
        start = end + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Err(reason) = p.line(line, i + 1) {
            return Err(p.refused.take().unwrap_or(Rejection::Line {
                line: i + 1,
                reason,
            }));
        }
    }
    p.finish()
}

struct Parser<'a, 'o> {
    dialect: Dialect,
    opts: &'o Options<'o>,
    families: Vec<FamilyBuilder<'a>>,
    by_name: HashMap<&'a str, usize>,
    current: Option<usize>,
    labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    key: Vec<u8>,
    eof_line: Option<usize>,
    /// Set when the byte budget refused the push: answered as such, not as
    /// a line error.
    refused: Option<Rejection>,
}

impl<'a> Parser<'a, '_> {
    fn line(&mut self, line: &'a str, n: usize) -> Result<(), String> {
        let b = line.as_bytes();
        let start = skip_ws(b, 0);
        if start == b.len() {
            return Ok(());
        }
        if let Some(eof) = self.eof_line {
            return Err(format!("content after # EOF at line {eof}"));
        }
        if b[start] == b'#' {
            self.comment(&line[start + 1..], n)
        } else {
            self.sample(line, start, n)
        }
    }

    fn family(&mut self, name: &'a str) -> Result<usize, String> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok(i);
        }
        // Charged before it is built: a body of many tiny families must
        // meet the budget as it goes, not once all are built.
        if let Err(r) = self.opts.charge_family(name, "") {
            self.refused = Some(r);
            return Err(String::new());
        }
        let i = self.families.len();
        self.families.push(FamilyBuilder::new(name));
        self.by_name.insert(name, i);
        Ok(i)
    }

    fn comment(&mut self, rest: &'a str, n: usize) -> Result<(), String> {
        let rest = rest.trim_start_matches([' ', '\t']);
        let (word, rest) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
        match word {
            "HELP" | "TYPE" | "UNIT" => {}
            "EOF" if self.dialect == Dialect::OpenMetrics => {
                self.eof_line = Some(n);
                return Ok(());
            }
            _ => return Ok(()), // an ordinary comment
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        let name_end = scan_metric_name(rest.as_bytes(), 0);
        let name = &rest[..name_end];
        if name.is_empty() {
            return Err(format!("# {word} needs a metric name"));
        }
        let after = &rest[name_end..];
        if !after.is_empty() && !after.starts_with([' ', '\t']) {
            return Err(format!("# {word}: invalid metric name {}", snippet(rest)));
        }
        let arg = after.strip_prefix([' ', '\t']).unwrap_or(after);
        match word {
            "HELP" => {
                let i = self.family(name)?;
                let f = &mut self.families[i];
                if f.help.is_some() {
                    return Err(format!("metric {name}: second HELP line"));
                }
                f.help = Some(unescape_help(arg, self.dialect));
                self.current = Some(i);
            }
            "TYPE" => {
                let (kind, naming) = self.type_word(arg.trim_matches([' ', '\t']), name)?;
                let i = self.family(name)?;
                let f = &mut self.families[i];
                if f.typed {
                    return Err(format!("metric {name}: second TYPE line"));
                }
                if f.has_samples {
                    return Err(format!("metric {name}: TYPE line after its samples"));
                }
                f.typed = true;
                f.kind = kind;
                f.naming = naming;
                self.current = Some(i);
            }
            _ => {} // UNIT: nothing to aggregate
        }
        Ok(())
    }

    fn type_word(&self, word: &str, name: &str) -> Result<(Kind, Naming), String> {
        let om = self.dialect == Dialect::OpenMetrics;
        Ok(match word {
            "counter" if om => (Kind::Counter, Naming::Total),
            "counter" => (Kind::Counter, Naming::Exact),
            "gauge" => (Kind::Gauge, Naming::Exact),
            "histogram" => (Kind::Histogram, Naming::Histogram),
            "summary" => (Kind::Summary, Naming::Summary),
            "untyped" if !om => (Kind::Untyped, Naming::Exact),
            "unknown" if om => (Kind::Untyped, Naming::Exact),
            "info" if om => (Kind::Gauge, Naming::Info),
            "stateset" if om => (Kind::Gauge, Naming::Exact),
            "gaugehistogram" if om => {
                return Err(format!(
                    "metric {name}: type gaugehistogram is not supported (push it as a histogram)"
                ));
            }
            other => return Err(format!("metric {name}: unknown type {}", snippet(other))),
        })
    }

    /// Finds the family and part a sample name belongs to, creating an
    /// untyped family for a name seen for the first time.
    fn route(&mut self, name: &'a str) -> Result<(usize, Part), String> {
        if let Some(c) = self.current
            && let Some(p) = self.families[c].part_of(name)
        {
            return Ok((c, p));
        }
        if let Some(&i) = self.by_name.get(name) {
            return match self.families[i].part_of(name) {
                Some(p) => Ok((i, p)),
                None => Err(format!(
                    "sample {name} does not fit metric {name} of type {}",
                    self.families[i].kind.as_str()
                )),
            };
        }
        for suffix in ["_bucket", "_sum", "_count", "_total", "_created", "_info"] {
            if let Some(base) = name.strip_suffix(suffix)
                && let Some(&i) = self.by_name.get(base)
                && let Some(p) = self.families[i].part_of(name)
            {
                return Ok((i, p));
            }
        }
        Ok((self.family(name)?, Part::Value))
    }

    fn sample(&mut self, line: &'a str, start: usize, n: usize) -> Result<(), String> {
        let b = line.as_bytes();
        let name_end = scan_metric_name(b, start);
        if name_end == start {
            return Err(if b[start] == b'{' {
                "expected a metric name before '{' (quoted metric names are not supported)".into()
            } else {
                format!("expected a metric name, found {}", snippet(&line[start..]))
            });
        }
        let name = &line[start..name_end];
        let mut i = skip_ws(b, name_end);
        self.labels.clear();
        if b.get(i) == Some(&b'{') {
            i += 1;
            loop {
                i = skip_ws(b, i);
                match b.get(i) {
                    None => return Err(format!("metric {name}: label set has no closing '}}'")),
                    Some(b'}') => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                let ln_end = scan_label_name(b, i);
                if ln_end == i {
                    return Err(format!(
                        "metric {name}: expected a label name, found {}",
                        snippet(&line[i..])
                    ));
                }
                let lname = &line[i..ln_end];
                i = skip_ws(b, ln_end);
                if b.get(i) != Some(&b'=') {
                    return Err(format!("metric {name}: expected '=' after label {lname}"));
                }
                i = skip_ws(b, i + 1);
                if b.get(i) != Some(&b'"') {
                    return Err(format!(
                        "metric {name}: expected '\"' to open the value of label {lname}"
                    ));
                }
                let (value, next) =
                    scan_quoted(line, i + 1).map_err(|e| format!("metric {name}: {e}"))?;
                self.labels.push((Cow::Borrowed(lname), value));
                i = skip_ws(b, next);
                match b.get(i) {
                    Some(b',') => i += 1,
                    Some(b'}') => {
                        i += 1;
                        break;
                    }
                    _ => {
                        return Err(format!(
                            "metric {name}: expected ',' or '}}' after the value of label {lname}"
                        ));
                    }
                }
            }
        }
        let vs = skip_ws(b, i);
        if vs == b.len() {
            return Err(format!("metric {name}: missing value"));
        }
        let ve = scan_token(b, vs);
        let tok = &line[vs..ve];
        let value = parse_float(tok)
            .ok_or_else(|| format!("metric {name}: invalid value {}", snippet(tok)))?;
        let mut i = skip_ws(b, ve);
        if i < b.len() && b[i] != b'#' {
            let te = scan_token(b, i);
            let ts = &line[i..te];
            if ts.parse::<i64>().is_err() && parse_float(ts).is_none_or(|t| !t.is_finite()) {
                return Err(format!("metric {name}: invalid timestamp {}", snippet(ts)));
            }
            i = skip_ws(b, te);
        }
        if i < b.len() {
            // OpenMetrics exemplar: ` # {labels} value [timestamp]`; dropped,
            // as exemplars of different senders cannot be merged. `#` is
            // checked first: slicing after any other (maybe multi-byte)
            // character could split it (found by fuzzing).
            let exemplar = b[i] == b'#' && {
                let rest = line[i + 1..].trim_start_matches([' ', '\t']);
                rest.starts_with('{') && rest.contains('}')
            };
            if !exemplar {
                return Err(format!(
                    "metric {name}: unexpected text after the value: {}",
                    snippet(&line[i..])
                ));
            }
        }
        self.add_sample(name, value, n)
    }

    fn add_sample(&mut self, name: &'a str, value: f64, n: usize) -> Result<(), String> {
        let (fi, part) = self.route(name)?;
        self.current = Some(fi);
        let mut le = None;
        match part {
            Part::Bucket => {
                let pos = self
                    .labels
                    .iter()
                    .position(|(l, _)| l == "le")
                    .ok_or_else(|| {
                        format!("metric {name}: histogram bucket without an le label")
                    })?;
                let (_, v) = self.labels.swap_remove(pos);
                le = Some(parse_float(&v).ok_or_else(|| {
                    format!("metric {name}: invalid le label value {}", snippet(&v))
                })?);
            }
            Part::Quantile => {
                let pos = self
                    .labels
                    .iter()
                    .position(|(l, _)| l == "quantile")
                    .ok_or_else(|| {
                        format!("metric {name}: summary sample without a quantile label")
                    })?;
                let (_, v) = self.labels.swap_remove(pos);
                if parse_float(&v).is_none() {
                    return Err(format!(
                        "metric {name}: invalid quantile label value {}",
                        snippet(&v)
                    ));
                }
            }
            _ => {}
        }
        let kind = self.families[fi].kind;
        self.opts
            .labels
            .write_key(kind, &mut self.labels, &mut self.key)
            .map_err(|e| format!("metric {name}: {e}"))?;
        let f = &mut self.families[fi];
        f.has_samples = true;
        let before = f.series.len();
        let si = if part == Part::Value {
            f.new_series(&self.key, n)
        } else {
            f.find_or_add(&self.key, n)
        };
        let bucket = if part == Part::Bucket {
            std::mem::size_of::<Bucket>()
        } else {
            0
        };
        let (series, bytes) = if f.series.len() > before {
            (
                1,
                crate::model::cost::SERIES_OVERHEAD + self.key.len() + bucket,
            )
        } else {
            (0, bucket)
        };
        if let Err(r) = self.opts.charge_bytes(bytes, series) {
            self.refused = Some(r);
            return Err(String::new());
        }
        let f = &mut self.families[fi];
        let s = &mut f.series[si];
        let slot = match part {
            Part::Value => &mut s.value,
            Part::Sum => &mut s.sum,
            Part::Count => &mut s.count,
            Part::Created => &mut s.created,
            Part::Quantile => return Ok(()), // quantiles cannot be added: dropped
            Part::Bucket => {
                s.buckets.push(Bucket {
                    le: le.unwrap_or(f64::NAN),
                    count: value,
                });
                return Ok(());
            }
        };
        if slot.is_some() {
            return Err(format!("metric {name}: series given twice"));
        }
        *slot = Some(value);
        Ok(())
    }

    /// The name a client library gives the creation timestamps of a
    /// counter, histogram or summary family in text 0.0.4 (`<base>_created`,
    /// a gauge family of its own); `None` for other families.
    fn created_name(f: &FamilyBuilder<'_>) -> Option<String> {
        let base = match (f.kind, f.naming) {
            (Kind::Counter, Naming::Exact) => f.name.strip_suffix("_total").unwrap_or(f.name),
            (Kind::Counter | Kind::Histogram | Kind::Summary, _) => f.name,
            _ => return None,
        };
        Some(format!("{base}_created"))
    }

    /// Moves the values of `<base>_created` gauge families into the
    /// `created` of the series they belong to, so that they are stored as
    /// creation timestamps (earliest kept) and never appear as a family of
    /// their own, which OpenMetrics forbids beside `<base>`. A timestamp for
    /// a series the push does not hold is refused.
    fn fold_created(&mut self) -> Result<Vec<bool>, Rejection> {
        let mut folded = vec![false; self.families.len()];
        let owners: HashMap<String, usize> = self
            .families
            .iter()
            .enumerate()
            .filter(|(_, f)| f.has_samples)
            .filter_map(|(i, f)| Some((Self::created_name(f)?, i)))
            .collect();
        if owners.is_empty() {
            return Ok(folded);
        }
        for (i, is_folded) in folded.iter_mut().enumerate() {
            let f = &self.families[i];
            let timestamps = f.has_samples
                && matches!(f.kind, Kind::Gauge | Kind::Untyped)
                && f.naming == Naming::Exact;
            let Some(&owner) = timestamps.then(|| owners.get(f.name)).flatten() else {
                continue;
            };
            *is_folded = true;
            let name = f.name;
            let series = std::mem::take(&mut self.families[i].series);
            let target = &mut self.families[owner];
            for s in series {
                let at = |reason: String| Rejection::Line {
                    line: s.line,
                    reason: format!("metric {name}: {reason}"),
                };
                let Some(si) = target.find(&s.key) else {
                    return Err(at(format!(
                        "creation timestamp for series {} that metric {} does not hold in this push",
                        crate::model::labels::describe(&s.key),
                        target.name
                    )));
                };
                let slot = &mut target.series[si].created;
                if slot.is_some() {
                    return Err(at("creation timestamp given twice".into()));
                }
                *slot = s.value;
            }
        }
        Ok(folded)
    }

    fn finish(mut self) -> Result<Push, Rejection> {
        let folded = self.fold_created()?;
        let mut families = Vec::with_capacity(self.families.len());
        for (f, folded) in self.families.into_iter().zip(folded) {
            if !f.has_samples || folded {
                continue;
            }
            let name = match f.naming {
                Naming::Total => format!("{}_total", f.name),
                Naming::Info => format!("{}_info", f.name),
                _ => f.name.to_string(),
            };
            if !is_metric_name(&name) {
                return Err(Rejection::invalid(format!("invalid metric name {name:?}")));
            }
            // The family was charged when first seen; its help is its own.
            self.opts
                .charge_bytes(f.help.as_deref().map_or(0, str::len), 0)?;
            let mut series = Vec::with_capacity(f.series.len());
            for s in f.series {
                let at = |reason: String| Rejection::Line {
                    line: s.line,
                    reason: format!("metric {name}: {reason}"),
                };
                let value = match f.kind {
                    Kind::Counter | Kind::Gauge | Kind::Untyped => {
                        let v = s
                            .value
                            .ok_or_else(|| at("_created without its sample".into()))?;
                        check_scalar(f.kind, v, self.opts).map_err(at)?;
                        Value::Scalar(v)
                    }
                    Kind::Histogram => {
                        let max = self.opts.labels.limits().max_buckets;
                        if s.buckets.len() > max.saturating_add(1) {
                            return Err(at(format!(
                                "histogram has {} buckets, over the limit of {max} (--max-buckets)",
                                s.buckets.len()
                            )));
                        }
                        Value::Histogram(Box::new(
                            Histogram::from_parts(s.buckets, s.count, s.sum).map_err(at)?,
                        ))
                    }
                    Kind::Summary => {
                        // `+ 0.0`: a `-0` count is stored as `0`.
                        let (count, sum) = (s.count.unwrap_or(0.0) + 0.0, s.sum.unwrap_or(0.0));
                        check_summary(count, sum).map_err(at)?;
                        Value::Summary { count, sum }
                    }
                };
                let created = s
                    .created
                    .map(created_from_seconds)
                    .transpose()
                    .map_err(at)?;
                series.push(Series {
                    key: s.key,
                    value,
                    created,
                });
            }
            families.push(Family {
                name,
                help: f.help.map(Cow::into_owned).unwrap_or_default(),
                kind: f.kind,
                series,
            });
        }
        Ok(Push::new(families))
    }
}

#[cfg(test)]
mod tests;
