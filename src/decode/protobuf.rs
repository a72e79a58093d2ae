//! Decoder for Prometheus' protobuf data model, `io.prometheus.client`
//! `MetricFamily`: length-delimited messages in an HTTP body (as client_golang
//! pushes them) and the batches of the gRPC service. Both end in
//! [`families`], so the two protocols refuse the same input the same way.

use prost::Message;

use super::{Options, check_scalar, check_summary};
use crate::error::Rejection;
use crate::model::labels::is_metric_name;
use crate::model::{Bucket, Family, Histogram, Kind, NativeHistogram, Push, Series, Value};
use crate::pb::io::prometheus::client as pb;

/// Decodes a body of length-delimited `MetricFamily` messages.
pub fn delimited(mut body: &[u8], opts: &Options<'_>) -> Result<Push, Rejection> {
    let mut messages = Vec::new();
    while !body.is_empty() {
        let n = messages.len() + 1;
        let mf = pb::MetricFamily::decode_length_delimited(&mut body).map_err(|e| {
            Rejection::invalid(format!(
                "protobuf message {n}: not a delimited MetricFamily: {e}"
            ))
        })?;
        messages.push(mf);
    }
    families(messages, opts)
}

/// Converts decoded `MetricFamily` messages into a push.
pub fn families(messages: Vec<pb::MetricFamily>, opts: &Options<'_>) -> Result<Push, Rejection> {
    let mut key = Vec::new();
    let mut labels: Vec<(&str, &str)> = Vec::new();
    let mut out = Vec::with_capacity(messages.len());
    for mf in &messages {
        let name = mf.name();
        if !is_metric_name(name) {
            return Err(Rejection::invalid(format!("invalid metric name {name:?}")));
        }
        let fail = |reason: String| Rejection::invalid(format!("metric {name}: {reason}"));
        let kind = match mf.r#type() {
            pb::MetricType::Counter => Kind::Counter,
            pb::MetricType::Gauge => Kind::Gauge,
            pb::MetricType::Summary => Kind::Summary,
            pb::MetricType::Untyped => Kind::Untyped,
            pb::MetricType::Histogram => Kind::Histogram,
            pb::MetricType::GaugeHistogram => {
                return Err(fail(
                    "type GAUGE_HISTOGRAM is not supported (push it as a histogram)".into(),
                ));
            }
        };
        let mut series = Vec::with_capacity(mf.metric.len());
        for m in &mf.metric {
            labels.clear();
            labels.extend(m.label.iter().map(|l| (l.name(), l.value())));
            opts.labels
                .write_key(&mut labels, &mut key)
                .map_err(&fail)?;
            let (value, created) = metric_value(kind, m, opts).map_err(&fail)?;
            series.push(Series {
                key: key.as_slice().into(),
                value,
                created,
            });
        }
        if series.is_empty() {
            continue;
        }
        out.push(Family {
            name: name.to_string(),
            help: mf.help().to_string(),
            kind,
            created_timestamps: false,
            series,
        });
    }
    Ok(Push { families: out })
}

fn seconds(ts: &Option<prost_types::Timestamp>) -> Option<f64> {
    ts.as_ref()
        .map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9)
}

fn metric_value(
    kind: Kind,
    m: &pb::Metric,
    opts: &Options<'_>,
) -> Result<(Value, Option<f64>), String> {
    let missing = || {
        format!(
            "type {} but the metric has no {} field",
            kind.as_str(),
            kind.as_str()
        )
    };
    match kind {
        Kind::Counter => {
            let c = m.counter.as_ref().ok_or_else(missing)?;
            check_scalar(kind, c.value(), opts)?;
            Ok((Value::Scalar(c.value()), seconds(&c.created_timestamp)))
        }
        Kind::Gauge => {
            let g = m.gauge.as_ref().ok_or_else(missing)?;
            check_scalar(kind, g.value(), opts)?;
            Ok((Value::Scalar(g.value()), None))
        }
        Kind::Untyped => {
            let u = m.untyped.as_ref().ok_or_else(missing)?;
            check_scalar(kind, u.value(), opts)?;
            Ok((Value::Scalar(u.value()), None))
        }
        Kind::Summary => {
            let s = m.summary.as_ref().ok_or_else(missing)?;
            let (count, sum) = (s.sample_count() as f64, s.sample_sum());
            check_summary(count, sum)?;
            Ok((Value::Summary { count, sum }, seconds(&s.created_timestamp)))
        }
        Kind::Histogram => {
            let h = m.histogram.as_ref().ok_or_else(missing)?;
            let created = seconds(&h.created_timestamp);
            let count = if h.sample_count_float() > 0.0 {
                h.sample_count_float()
            } else {
                h.sample_count() as f64
            };
            if h.bucket.is_empty() && is_native(h) {
                return Ok((Value::Native(Box::new(native(h, count)?)), created));
            }
            // A histogram with classic buckets is taken as classic, even if
            // it carries native buckets too.
            let buckets = h
                .bucket
                .iter()
                .map(|b| Bucket {
                    le: b.upper_bound(),
                    count: if b.cumulative_count_float() > 0.0 {
                        b.cumulative_count_float()
                    } else {
                        b.cumulative_count() as f64
                    },
                })
                .collect();
            let h = Histogram::from_parts(buckets, Some(count), Some(h.sample_sum()))?;
            Ok((Value::Histogram(h), created))
        }
    }
}

/// Prometheus' test for a native histogram in protobuf.
fn is_native(h: &pb::Histogram) -> bool {
    h.schema.is_some()
        || h.zero_threshold() > 0.0
        || h.zero_count() > 0
        || h.zero_count_float() > 0.0
        || !h.positive_span.is_empty()
        || !h.negative_span.is_empty()
}

fn native(h: &pb::Histogram, count: f64) -> Result<NativeHistogram, String> {
    let float = !h.positive_count.is_empty() || !h.negative_count.is_empty();
    let n = NativeHistogram {
        schema: h.schema(),
        zero_threshold: h.zero_threshold(),
        zero_count: if h.zero_count_float() > 0.0 {
            h.zero_count_float()
        } else {
            h.zero_count() as f64
        },
        count,
        sum: h.sample_sum(),
        positive: buckets(
            &h.positive_span,
            &h.positive_delta,
            &h.positive_count,
            float,
        )?,
        negative: buckets(
            &h.negative_span,
            &h.negative_delta,
            &h.negative_count,
            float,
        )?,
    };
    n.validate()?;
    Ok(n)
}

/// Expands spans with deltas (integer histograms) or absolute counts (float
/// histograms) into `(index, count)` pairs.
fn buckets(
    spans: &[pb::BucketSpan],
    deltas: &[i64],
    counts: &[f64],
    float: bool,
) -> Result<Vec<(i32, f64)>, String> {
    let total: u64 = spans.iter().map(|s| u64::from(s.length())).sum();
    let given = if float { counts.len() } else { deltas.len() } as u64;
    if total != given {
        return Err(format!(
            "native histogram spans cover {total} buckets but {given} counts are given"
        ));
    }
    let mut out = Vec::with_capacity(given as usize);
    let mut idx: i64 = 0;
    let mut running: i64 = 0;
    let mut n = 0usize;
    for (si, s) in spans.iter().enumerate() {
        idx += i64::from(s.offset());
        if si > 0 && s.offset() < 0 {
            return Err("native histogram span has a negative offset".into());
        }
        for _ in 0..s.length() {
            let index = i32::try_from(idx).map_err(|_| "native histogram index out of range")?;
            let c = if float {
                counts[n]
            } else {
                running = running.saturating_add(deltas[n]);
                if running < 0 {
                    return Err("native histogram bucket count is negative".into());
                }
                running as f64
            };
            out.push((index, c));
            n += 1;
            idx += 1;
        }
    }
    Ok(out)
}
