//! Length-delimited `io.prometheus.client.MetricFamily` messages: what
//! Prometheus asks for first (and needs for native histograms).

use prost::Message;

use crate::aggregate::StoredFamily;
use crate::model::{Kind, Value, labels};
use crate::pb::io::prometheus::client as pb;

/// Appends the families as delimited protobuf messages.
pub fn render(families: &[(&str, &StoredFamily)], out: &mut Vec<u8>) {
    for (name, f) in families {
        let family = to_proto(name, f);
        // Writing into a Vec cannot fail.
        let _ = family.encode_length_delimited(out);
    }
}

/// One stored family as its protobuf message.
pub fn to_proto(name: &str, f: &StoredFamily) -> pb::MetricFamily {
    let kind = match f.kind {
        Kind::Counter => pb::MetricType::Counter,
        Kind::Gauge => pb::MetricType::Gauge,
        Kind::Histogram => pb::MetricType::Histogram,
        Kind::Summary => pb::MetricType::Summary,
        Kind::Untyped => pb::MetricType::Untyped,
    };
    let metric = f
        .series()
        .map(|(key, s)| {
            let mut m = pb::Metric {
                label: labels::pairs(key)
                    .map(|(n, v)| pb::LabelPair {
                        name: Some(String::from_utf8_lossy(n).into_owned()),
                        value: Some(String::from_utf8_lossy(&v).into_owned()),
                    })
                    .collect(),
                ..Default::default()
            };
            let created = s.created.map(timestamp);
            match (&s.value, f.kind) {
                (Value::Scalar(v), Kind::Counter) => {
                    m.counter = Some(pb::Counter {
                        value: Some(*v),
                        exemplar: None,
                        created_timestamp: created,
                    })
                }
                (Value::Scalar(v), Kind::Gauge) => m.gauge = Some(pb::Gauge { value: Some(*v) }),
                (Value::Scalar(v), _) => m.untyped = Some(pb::Untyped { value: Some(*v) }),
                (Value::Histogram(h), _) => {
                    let (count, count_float) = split_count(h.count);
                    m.histogram = Some(pb::Histogram {
                        sample_count: count,
                        sample_count_float: count_float,
                        sample_sum: Some(h.sum),
                        bucket: h
                            .buckets
                            .iter()
                            .map(|b| {
                                let (c, cf) = split_count(b.count);
                                pb::Bucket {
                                    cumulative_count: c,
                                    cumulative_count_float: cf,
                                    upper_bound: Some(b.le),
                                    exemplar: None,
                                }
                            })
                            .collect(),
                        created_timestamp: created,
                        ..Default::default()
                    })
                }
                (Value::Native(h), _) => m.histogram = Some(native_to_proto(h, created)),
                (Value::Summary { count, sum }, _) => {
                    let (c, _) = split_count(*count);
                    m.summary = Some(pb::Summary {
                        sample_count: Some(c.unwrap_or(count.round() as u64)),
                        sample_sum: Some(*sum),
                        quantile: Vec::new(),
                        created_timestamp: created,
                    })
                }
            }
            m
        })
        .collect();
    pb::MetricFamily {
        name: Some(name.to_string()),
        help: (!f.help.is_empty()).then(|| f.help.clone()),
        r#type: Some(kind as i32),
        metric,
        unit: None,
    }
}

/// A native histogram: integer histograms as spans and deltas, others with
/// absolute float counts, as client_golang writes them.
fn native_to_proto(
    h: &crate::model::NativeHistogram,
    created: Option<prost_types::Timestamp>,
) -> pb::Histogram {
    let integral = |c: f64| c.fract() == 0.0 && (0.0..9e15).contains(&c);
    let all_integral = integral(h.count)
        && integral(h.zero_count)
        && h.positive
            .iter()
            .chain(&h.negative)
            .all(|&(_, c)| integral(c));
    let (positive_span, pos) = spans(&h.positive);
    let (negative_span, neg) = spans(&h.negative);
    let mut out = pb::Histogram {
        schema: Some(h.schema),
        zero_threshold: Some(h.zero_threshold),
        sample_sum: Some(h.sum),
        positive_span,
        negative_span,
        created_timestamp: created,
        ..Default::default()
    };
    if all_integral {
        out.sample_count = Some(h.count as u64);
        out.zero_count = Some(h.zero_count as u64);
        out.positive_delta = deltas(&pos);
        out.negative_delta = deltas(&neg);
    } else {
        out.sample_count_float = Some(h.count);
        out.zero_count_float = Some(h.zero_count);
        out.positive_count = pos;
        out.negative_count = neg;
    }
    if out.positive_span.is_empty() && out.negative_span.is_empty() {
        // Marks the histogram as native even with no buckets, as client_golang does.
        out.positive_span.push(pb::BucketSpan {
            offset: Some(0),
            length: Some(0),
        });
    }
    out
}

fn spans(buckets: &[(i32, f64)]) -> (Vec<pb::BucketSpan>, Vec<f64>) {
    let mut spans: Vec<pb::BucketSpan> = Vec::new();
    let mut next = 0i32;
    for (n, &(i, _)) in buckets.iter().enumerate() {
        match spans.last_mut() {
            Some(s) if n > 0 && i == next => s.length = Some(s.length.unwrap_or(0) + 1),
            _ => spans.push(pb::BucketSpan {
                offset: Some(if n == 0 { i } else { i - next }),
                length: Some(1),
            }),
        }
        next = i + 1;
    }
    (spans, buckets.iter().map(|&(_, c)| c).collect())
}

fn deltas(counts: &[f64]) -> Vec<i64> {
    let mut prev = 0i64;
    counts
        .iter()
        .map(|&c| {
            let c = c as i64;
            let d = c - prev;
            prev = c;
            d
        })
        .collect()
}

/// Integer counts go in the integer fields; others in the `_float` ones.
fn split_count(c: f64) -> (Option<u64>, Option<f64>) {
    if c.fract() == 0.0 && (0.0..1.8e19).contains(&c) {
        (Some(c as u64), None)
    } else {
        (None, Some(c))
    }
}

fn timestamp(secs: f64) -> prost_types::Timestamp {
    let s = secs.floor();
    prost_types::Timestamp {
        seconds: s as i64,
        nanos: ((secs - s) * 1e9).round().min(999_999_999.0) as i32,
    }
}
