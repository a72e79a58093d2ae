//! The validity oracle: a strict checker of scrapes, written apart from the
//! gateway's encoders so that it can catch what they get wrong.
//!
//! [`check_text`] (Prometheus text 0.0.4), [`check_openmetrics`]
//! (OpenMetrics 1.0) and [`check_protobuf`] (delimited
//! `io.prometheus.client.MetricFamily`) each return the first rule a body
//! breaks. The rules are the formats' own, the strictest reading of each:
//! valid and unique family names, no two families that could write the same
//! sample name, metadata once and before samples, families not interleaved,
//! valid, unique, unreserved label names, no label the format writes itself
//! (`le`, `quantile`) where it writes it, no duplicate series, counters
//! neither negative nor NaN, cumulative histogram buckets ending in `+Inf`
//! equal to `_count`, and for native histograms a valid schema, valid spans
//! and integer counts that add up.

mod protobuf;
mod text;

pub use protobuf::check_protobuf;
pub use text::{check_openmetrics, check_text};

use std::collections::{HashMap, HashSet};

/// A metric type, as the formats name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Untyped,
    Info,
    StateSet,
}

/// The scrape format a family came in; sample names depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Text,
    OpenMetrics,
}

/// The sample names a family of `kind` may write in `dialect`.
pub(crate) fn sample_names(name: &str, kind: Kind, dialect: Dialect) -> Vec<String> {
    let s = |suffixes: &[&str]| -> Vec<String> {
        suffixes.iter().map(|x| format!("{name}{x}")).collect()
    };
    match (dialect, kind) {
        (Dialect::Text, Kind::Counter | Kind::Gauge | Kind::Untyped) => s(&[""]),
        (Dialect::Text, Kind::Histogram) => s(&["_bucket", "_sum", "_count"]),
        (Dialect::Text, Kind::Summary) => s(&["", "_sum", "_count"]),
        (Dialect::Text, _) => Vec::new(),
        (Dialect::OpenMetrics, Kind::Counter) => s(&["_total", "_created"]),
        (Dialect::OpenMetrics, Kind::Gauge | Kind::Untyped | Kind::StateSet) => s(&[""]),
        (Dialect::OpenMetrics, Kind::Info) => s(&["_info"]),
        (Dialect::OpenMetrics, Kind::Histogram) => s(&["_bucket", "_count", "_sum", "_created"]),
        (Dialect::OpenMetrics, Kind::GaugeHistogram) => s(&["_bucket", "_gcount", "_gsum"]),
        (Dialect::OpenMetrics, Kind::Summary) => s(&["", "_count", "_sum", "_created"]),
    }
}

/// Whether `name` is a valid metric name.
pub(crate) fn is_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// Checks one sample's label names: valid, not reserved, unique.
pub(crate) fn check_label_names<'a>(
    what: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), String> {
    let mut seen = HashSet::new();
    for n in names {
        let b = n.as_bytes();
        let valid = !b.is_empty()
            && (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if !valid {
            return Err(format!("{what}: invalid label name {n:?}"));
        }
        if n.starts_with("__") {
            return Err(format!("{what}: reserved label name {n}"));
        }
        if !seen.insert(n) {
            return Err(format!("{what}: label {n} given twice"));
        }
    }
    Ok(())
}

/// Family names unique and no name two families could both write or be
/// called.
pub(crate) fn check_family_names<'a>(
    families: impl Iterator<Item = (&'a str, Kind)>,
    dialect: Dialect,
) -> Result<(), String> {
    let mut names = HashSet::new();
    let mut samples: HashMap<String, &str> = HashMap::new();
    for (name, kind) in families {
        if !is_metric_name(name) {
            return Err(format!("invalid metric name {name:?}"));
        }
        if !names.insert(name) {
            return Err(format!("family {name} appears twice"));
        }
        // A family's own name counts too: a family named as another's
        // sample (`x_total` beside counter `x`) is a clash.
        let mut claimed = sample_names(name, kind, dialect);
        if !claimed.iter().any(|s| s == name) {
            claimed.push(name.to_string());
        }
        for s in claimed {
            if let Some(other) = samples.insert(s.clone(), name) {
                return Err(format!(
                    "families {other} and {name} could both write samples named {s}"
                ));
            }
        }
    }
    Ok(())
}

/// One classic histogram's buckets `(le, count)` in order, `_count` and
/// whether `+Inf` is required: bounds strictly increasing, counts never
/// decreasing, the `+Inf` bucket equal to `_count`.
pub(crate) fn check_buckets(
    what: &str,
    buckets: &[(f64, f64)],
    count: Option<f64>,
    inf_required: bool,
) -> Result<(), String> {
    for w in buckets.windows(2) {
        if w[0].0.partial_cmp(&w[1].0) != Some(std::cmp::Ordering::Less) {
            return Err(format!(
                "{what}: bucket bounds not increasing ({} then {})",
                w[0].0, w[1].0
            ));
        }
        if w[0].1.partial_cmp(&w[1].1) == Some(std::cmp::Ordering::Greater) || w[1].1.is_nan() {
            return Err(format!(
                "{what}: buckets not cumulative ({} then {})",
                w[0].1, w[1].1
            ));
        }
    }
    if buckets
        .iter()
        .any(|b| b.0.is_nan() || b.1.is_nan() || b.1 < 0.0)
    {
        return Err(format!("{what}: NaN bound or invalid bucket count"));
    }
    let inf = buckets.last().filter(|b| b.0 == f64::INFINITY);
    match (inf, count, inf_required) {
        (None, _, true) => Err(format!("{what}: no +Inf bucket")),
        (Some(b), Some(c), _) if b.1 != c => {
            Err(format!("{what}: +Inf bucket {} but count {c}", b.1))
        }
        (_, None, _) => Err(format!("{what}: no count")),
        (None, Some(c), false) => match buckets.last() {
            Some(b) if b.1 > c => Err(format!("{what}: bucket {} above count {c}", b.1)),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// A counter's value: not negative, not NaN.
pub(crate) fn check_counter(what: &str, v: f64) -> Result<(), String> {
    if v.is_nan() || v < 0.0 {
        return Err(format!("{what}: counter value {v}"));
    }
    Ok(())
}

/// All three checks on one aggregate's three scrapes.
pub fn check_all(text: &[u8], openmetrics: &[u8], protobuf: &[u8]) -> Result<(), String> {
    let utf8 = |b: &[u8], f: &str| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| format!("{f}: not UTF-8"))
    };
    check_text(&utf8(text, "text")?).map_err(|e| format!("text: {e}"))?;
    check_openmetrics(&utf8(openmetrics, "openmetrics")?)
        .map_err(|e| format!("openmetrics: {e}"))?;
    check_protobuf(protobuf).map_err(|e| format!("protobuf: {e}"))
}
