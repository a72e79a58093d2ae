//! Delimited `io.prometheus.client.MetricFamily`: the messages, declared
//! here from the public schema (so nothing is shared with the gateway), and
//! the rules on them, as Prometheus' protobuf parser and TSDB apply them.

use std::collections::HashSet;

use prost::Message;

use crate::{Dialect, Kind, check_buckets, check_counter, check_family_names, check_label_names};

#[derive(Clone, PartialEq, Message)]
struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    help: Option<String>,
    #[prost(int32, optional, tag = "3")]
    r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    metric: Vec<Metric>,
}

#[derive(Clone, PartialEq, Message)]
struct LabelPair {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Value {
    #[prost(double, optional, tag = "1")]
    value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(uint64, optional, tag = "1")]
    sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    quantile: Vec<Value>,
}

#[derive(Clone, PartialEq, Message)]
struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "4")]
    cumulative_count_float: Option<f64>,
    #[prost(double, optional, tag = "2")]
    upper_bound: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
struct Span {
    #[prost(sint32, optional, tag = "1")]
    offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    length: Option<u32>,
}

#[derive(Clone, PartialEq, Message)]
struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    sample_count: Option<u64>,
    #[prost(double, optional, tag = "4")]
    sample_count_float: Option<f64>,
    #[prost(double, optional, tag = "2")]
    sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    bucket: Vec<Bucket>,
    #[prost(sint32, optional, tag = "5")]
    schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    zero_threshold: Option<f64>,
    #[prost(uint64, optional, tag = "7")]
    zero_count: Option<u64>,
    #[prost(double, optional, tag = "8")]
    zero_count_float: Option<f64>,
    #[prost(message, repeated, tag = "9")]
    negative_span: Vec<Span>,
    #[prost(sint64, repeated, packed = "false", tag = "10")]
    negative_delta: Vec<i64>,
    #[prost(double, repeated, packed = "false", tag = "11")]
    negative_count: Vec<f64>,
    #[prost(message, repeated, tag = "12")]
    positive_span: Vec<Span>,
    #[prost(sint64, repeated, packed = "false", tag = "13")]
    positive_delta: Vec<i64>,
    #[prost(double, repeated, packed = "false", tag = "14")]
    positive_count: Vec<f64>,
}

#[derive(Clone, PartialEq, Message)]
struct Metric {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    gauge: Option<Value>,
    #[prost(message, optional, tag = "3")]
    counter: Option<Value>,
    #[prost(message, optional, tag = "4")]
    summary: Option<Summary>,
    #[prost(message, optional, tag = "5")]
    untyped: Option<Value>,
    #[prost(message, optional, tag = "7")]
    histogram: Option<Histogram>,
}

/// Checks a body of delimited `MetricFamily` messages.
pub fn check_protobuf(mut body: &[u8]) -> Result<(), String> {
    let mut families = Vec::new();
    while !body.is_empty() {
        let f = MetricFamily::decode_length_delimited(&mut body)
            .map_err(|e| format!("message {}: {e}", families.len() + 1))?;
        families.push(f);
    }
    let kinds: Vec<(String, Kind)> = families
        .iter()
        .map(|f| {
            let kind = match f.r#type.unwrap_or(0) {
                0 => Ok(Kind::Counter),
                1 => Ok(Kind::Gauge),
                2 => Ok(Kind::Summary),
                3 => Ok(Kind::Untyped),
                4 => Ok(Kind::Histogram),
                5 => Ok(Kind::GaugeHistogram),
                t => Err(format!("family {:?}: unknown type {t}", f.name)),
            }?;
            Ok((f.name.clone().unwrap_or_default(), kind))
        })
        .collect::<Result<_, String>>()?;
    // Prometheus turns protobuf families into the series the text format
    // names: the same clashes apply.
    check_family_names(kinds.iter().map(|(n, k)| (n.as_str(), *k)), Dialect::Text)?;
    for (f, (name, kind)) in families.iter().zip(&kinds) {
        if f.metric.is_empty() {
            return Err(format!("family {name} has no metrics"));
        }
        let mut seen = HashSet::new();
        for m in &f.metric {
            let what = format!("family {name}");
            let mut labels: Vec<(String, String)> = m
                .label
                .iter()
                .map(|l| {
                    (
                        l.name.clone().unwrap_or_default(),
                        l.value.clone().unwrap_or_default(),
                    )
                })
                .collect();
            check_label_names(&what, labels.iter().map(|(n, _)| n.as_str()))?;
            let own = match kind {
                Kind::Histogram | Kind::GaugeHistogram => Some("le"),
                Kind::Summary => Some("quantile"),
                _ => None,
            };
            if let Some(own) = own
                && labels.iter().any(|(n, _)| n == own)
            {
                return Err(format!("{what}: label {own} on a {kind:?}"));
            }
            labels.retain(|(_, v)| !v.is_empty());
            labels.sort();
            if !seen.insert(labels.clone()) {
                return Err(format!("{what}: series {labels:?} twice"));
            }
            let what = format!("{what}{labels:?}");
            match kind {
                Kind::Counter => {
                    let c = m.counter.as_ref().ok_or(format!("{what}: no counter"))?;
                    check_counter(&what, c.value.unwrap_or(0.0))?;
                }
                Kind::Gauge => {
                    m.gauge.as_ref().ok_or(format!("{what}: no gauge"))?;
                }
                Kind::Untyped => {
                    m.untyped.as_ref().ok_or(format!("{what}: no untyped"))?;
                }
                Kind::Summary => {
                    let s = m.summary.as_ref().ok_or(format!("{what}: no summary"))?;
                    if !s.quantile.is_empty() {
                        // The gateway never keeps quantiles; fine if it did,
                        // but then they would need checking.
                        return Err(format!("{what}: unexpected quantiles"));
                    }
                    if s.sample_sum.is_some_and(f64::is_nan) {
                        return Err(format!("{what}: NaN sum"));
                    }
                }
                Kind::Histogram | Kind::GaugeHistogram => {
                    let h = m
                        .histogram
                        .as_ref()
                        .ok_or(format!("{what}: no histogram"))?;
                    check_histogram(&what, h)?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn is_native(h: &Histogram) -> bool {
    h.schema.is_some()
        || h.zero_threshold.unwrap_or(0.0) > 0.0
        || h.zero_count.unwrap_or(0) > 0
        || h.zero_count_float.unwrap_or(0.0) > 0.0
        || !h.positive_span.is_empty()
        || !h.negative_span.is_empty()
}

fn check_histogram(what: &str, h: &Histogram) -> Result<(), String> {
    let float = h.sample_count_float.is_some_and(|c| c > 0.0);
    let count = if float {
        h.sample_count_float.unwrap_or(0.0)
    } else {
        h.sample_count.unwrap_or(0) as f64
    };
    if !h.bucket.is_empty() || !is_native(h) {
        let buckets: Vec<(f64, f64)> = h
            .bucket
            .iter()
            .map(|b| {
                let c = match b.cumulative_count_float {
                    Some(c) if c > 0.0 => c,
                    _ => b.cumulative_count.unwrap_or(0) as f64,
                };
                (b.upper_bound.unwrap_or(0.0), c)
            })
            .collect();
        // In protobuf the +Inf bucket may be left implicit (the count).
        check_buckets(what, &buckets, Some(count), false)?;
    }
    if !is_native(h) {
        return Ok(());
    }
    let schema = h.schema.unwrap_or(0);
    if !(-4..=8).contains(&schema) {
        return Err(format!("{what}: schema {schema}"));
    }
    let zt = h.zero_threshold.unwrap_or(0.0);
    if zt.is_nan() || zt < 0.0 {
        return Err(format!("{what}: zero threshold {zt}"));
    }
    let integer = h.positive_count.is_empty()
        && h.negative_count.is_empty()
        && h.zero_count_float.unwrap_or(0.0) == 0.0
        && !float;
    let mut total: i128 = i128::from(h.zero_count.unwrap_or(0));
    for (side, spans, deltas, counts) in [
        (
            "positive",
            &h.positive_span,
            &h.positive_delta,
            &h.positive_count,
        ),
        (
            "negative",
            &h.negative_span,
            &h.negative_delta,
            &h.negative_count,
        ),
    ] {
        let n: u64 = spans.iter().map(|s| u64::from(s.length.unwrap_or(0))).sum();
        for (i, s) in spans.iter().enumerate() {
            if i > 0 && s.offset.unwrap_or(0) < 0 {
                return Err(format!("{what}: {side} span {i} has a negative offset"));
            }
        }
        if integer {
            if n != deltas.len() as u64 || !counts.is_empty() {
                return Err(format!(
                    "{what}: {side} spans cover {n} buckets, {} deltas",
                    deltas.len()
                ));
            }
            let mut c: i128 = 0;
            for d in deltas {
                c += i128::from(*d);
                if c < 0 {
                    return Err(format!("{what}: {side} bucket count negative"));
                }
                total += c;
            }
        } else {
            if n != counts.len() as u64 || !deltas.is_empty() {
                return Err(format!(
                    "{what}: {side} spans cover {n} buckets, {} counts",
                    counts.len()
                ));
            }
            if counts.iter().any(|c| c.is_nan() || *c < 0.0) {
                return Err(format!("{what}: {side} bucket count negative or NaN"));
            }
        }
    }
    if h.sample_sum.is_some_and(f64::is_nan) {
        return Err(format!("{what}: NaN sum"));
    }
    if integer && total != i128::from(h.sample_count.unwrap_or(0)) {
        return Err(format!(
            "{what}: buckets hold {total} observations, count is {}",
            h.sample_count.unwrap_or(0)
        ));
    }
    Ok(())
}
