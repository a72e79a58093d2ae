//! Decoder for Prometheus' protobuf data model, `io.prometheus.client`
//! `MetricFamily`: length-delimited messages in an HTTP body (as client_golang
//! pushes them), the batches of the gRPC service and the snapshot file. All
//! end in [`family`], so every protocol refuses the same input the same way.
//!
//! Families, metrics and labels are walked on the wire ([`wire`]), names and
//! label values borrowed from the request: prost's owned decoding cost two
//! allocations per label and ran at about 1.4 M samples/s here. The small
//! numeric value messages (counter, histogram...) are still decoded by prost.

use prost::Message;

use super::options::{Options, check_scalar, check_summary};
use crate::error::Rejection;
use crate::model::labels::is_metric_name;
use crate::model::{
    Bucket, Created, Family, Histogram, Kind, NativeHistogram, Push, Series, Value,
    created_from_parts,
};
use crate::pb::io::prometheus::client as pb;
use crate::wire::{self, Reader, Wire};

/// Decodes a body of length-delimited `MetricFamily` messages.
pub fn delimited(body: &[u8], opts: &Options<'_>) -> Result<Push, Rejection> {
    let mut reader = Reader::new(body);
    let mut scratch = Scratch::default();
    let mut families = Vec::new();
    let mut n = 0;
    while !reader.is_empty() {
        n += 1;
        let message = reader.delimited().map_err(|e| {
            Rejection::invalid(format!(
                "protobuf message {n}: not a delimited MetricFamily: {e}"
            ))
        })?;
        if let Some(f) = family(message, opts, &mut scratch, Origin::Delimited(n))? {
            families.push(f);
        }
    }
    Ok(Push::new(families))
}

/// Buffers reused across a push's families.
pub struct Scratch {
    key: Vec<u8>,
}

impl Default for Scratch {
    fn default() -> Self {
        // Room for a typical key up front, not grown from empty per push.
        Scratch {
            key: Vec::with_capacity(256),
        }
    }
}

/// Where a `MetricFamily` message came from, counted from 1: what its
/// errors name.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    /// The n-th message of a delimited body.
    Delimited(usize),
    /// The n-th `families` entry of a gRPC `PushRequest`.
    PushRequest(usize),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Delimited(n) => write!(f, "protobuf message {n}"),
            Origin::PushRequest(n) => write!(f, "PushRequest family {n}"),
        }
    }
}

/// Decodes one `MetricFamily` message; `None` when it has no metrics.
pub fn family(
    bytes: &[u8],
    opts: &Options<'_>,
    scratch: &mut Scratch,
    at: Origin,
) -> Result<Option<Family>, Rejection> {
    let malformed = |e: &str| Rejection::invalid(format!("{at}: not a valid MetricFamily: {e}"));
    let (mut name, mut help, mut kind_number) = ("", "", 0u64);
    let mut r = Reader::new(bytes);
    while let Some((field, w)) = r.field().map_err(malformed)? {
        match (field, w) {
            (1, w) => name = wire::string(w).map_err(malformed)?,
            (2, w) => help = wire::string(w).map_err(malformed)?,
            (3, Wire::Varint(v)) => kind_number = v,
            _ => {}
        }
    }
    // The metrics are walked on a second pass, not gathered: a message of
    // many tiny metrics must cost no memory per metric before each is
    // checked.
    let metrics = Reader::new(bytes).fields().filter_map(|f| match f {
        (4, Wire::Bytes(m)) => Some(m),
        _ => None,
    });
    if !is_metric_name(name) {
        return Err(Rejection::invalid(format!("invalid metric name {name:?}")));
    }
    let fail = |reason: String| Rejection::invalid(format!("metric {name}: {reason}"));
    let kind = match pb::MetricType::try_from(kind_number as i32) {
        Ok(pb::MetricType::Counter) => Kind::Counter,
        Ok(pb::MetricType::Gauge) => Kind::Gauge,
        Ok(pb::MetricType::Summary) => Kind::Summary,
        Ok(pb::MetricType::Untyped) => Kind::Untyped,
        Ok(pb::MetricType::Histogram) => Kind::Histogram,
        Ok(pb::MetricType::GaugeHistogram) => {
            return Err(fail(
                "type GAUGE_HISTOGRAM is not supported (push it as a histogram)".into(),
            ));
        }
        Err(_) => return Err(fail(format!("unknown metric type {kind_number}"))),
    };
    let mut series = Vec::new();
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(16);
    for m in metrics {
        labels.clear();
        let value = metric(m, kind, &mut labels, opts.labels.limits())
            .map_err(|e| fail(format!("malformed metric: {e}")))?;
        opts.labels
            .write_key(kind, &mut labels, &mut scratch.key)
            .map_err(&fail)?;
        let (value, created) = metric_value(kind, value, opts).map_err(&fail)?;
        opts.charge(scratch.key.len(), &value)?;
        series.push(Series {
            key: scratch.key.as_slice().into(),
            value,
            created,
        });
    }
    if series.is_empty() {
        return Ok(None);
    }
    opts.charge_family(name, help)?;
    Ok(Some(Family {
        name: name.to_string(),
        help: help.to_string(),
        kind,
        series,
    }))
}

/// The value message of a metric, the one its family's type names.
enum Sub {
    /// Counter, gauge or untyped: read straight off the wire.
    Scalar {
        value: f64,
        created: Option<crate::model::Created>,
    },
    Summary {
        count: u64,
        sum: f64,
        created: Option<Created>,
    },
    Histogram(Box<pb::Histogram>),
}

/// Reads a `Counter`, `Gauge` or `Untyped` message: `value` is field 1
/// (double) in all three; a counter's `created_timestamp` is field 3. The
/// exemplar (counter field 2) is skipped. Read by hand rather than by prost:
/// it is the one message every counter sample carries.
fn scalar(bytes: &[u8]) -> Result<Sub, &'static str> {
    let (mut value, mut created) = (0.0, None);
    let mut r = Reader::new(bytes);
    while let Some((field, w)) = r.field()? {
        match (field, w) {
            (1, Wire::Fixed64(bits)) => value = f64::from_bits(bits),
            (3, Wire::Bytes(ts)) => created = Some(timestamp(ts)?),
            (1, _) => return Err("value is not a double"),
            _ => {}
        }
    }
    Ok(Sub::Scalar { value, created })
}

/// A `google.protobuf.Timestamp` message as a creation time.
fn timestamp(bytes: &[u8]) -> Result<Created, &'static str> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    let mut t = Reader::new(bytes);
    while let Some((f, w)) = t.field()? {
        match (f, w) {
            (1, Wire::Varint(v)) => secs = v as i64,
            // int32 on the wire: sign-extended to 64 bits.
            (2, Wire::Varint(v)) => nanos = v as i64,
            _ => {}
        }
    }
    created_from_parts(secs, nanos).map_err(|_| "created timestamp out of range")
}

/// A `Summary` message read off the wire: its quantiles, which the
/// aggregate drops, are skipped without being decoded or kept.
fn summary(bytes: &[u8]) -> Result<Sub, &'static str> {
    let (mut count, mut sum, mut created) = (0u64, 0.0, None);
    let mut r = Reader::new(bytes);
    while let Some((field, w)) = r.field()? {
        match (field, w) {
            (1, Wire::Varint(v)) => count = v,
            (2, Wire::Fixed64(bits)) => sum = f64::from_bits(bits),
            (4, Wire::Bytes(ts)) => created = Some(timestamp(ts)?),
            (1 | 2 | 4, _) => return Err("summary field of the wrong wire type"),
            _ => {}
        }
    }
    Ok(Sub::Summary {
        count,
        sum,
        created,
    })
}

/// Checks, before a `Histogram` message is decoded, that it holds no more
/// buckets than the limits allow: classic buckets (field 3) up to
/// `--max-buckets` (+1 for `+Inf`), native buckets (packed deltas or counts)
/// up to 64 times `--max-native-buckets`, as many as lowering the schema
/// can bring within it.
fn histogram_sizes(bytes: &[u8], limits: &crate::model::Limits) -> Result<(), String> {
    let (mut classic, mut native) = (0usize, 0usize);
    let mut r = Reader::new(bytes);
    while let Some((field, w)) = r.field()? {
        match (field, w) {
            (3, _) => classic += 1,
            // Packed sint64 deltas: one varint ends at each byte below 0x80.
            (10 | 13, Wire::Bytes(b)) => native += b.iter().filter(|&&c| c < 0x80).count(),
            (10 | 13, _) => native += 1,
            (11 | 14, Wire::Bytes(b)) => native += b.len() / 8,
            (11 | 14, _) => native += 1,
            _ => {}
        }
    }
    if classic > limits.max_buckets.saturating_add(1) {
        return Err(format!(
            "histogram has {classic} buckets, over the limit of {} (--max-buckets)",
            limits.max_buckets
        ));
    }
    let native_limit = limits.max_native_buckets.saturating_mul(64);
    if native > native_limit {
        return Err(format!(
            "native histogram has {native} buckets, over the {native_limit} that --max-native-buckets {} allows before lowering the resolution",
            limits.max_native_buckets
        ));
    }
    Ok(())
}

/// Walks a `Metric` message: labels borrowed into `labels`, and only the
/// value message the family's type names decoded (by prost: they hold no
/// strings), as Prometheus reads the field of the family's type.
fn metric<'a>(
    bytes: &'a [u8],
    kind: Kind,
    labels: &mut Vec<(&'a str, &'a str)>,
    limits: &crate::model::Limits,
) -> Result<Option<Sub>, String> {
    let wanted = match kind {
        Kind::Gauge => 2,
        Kind::Counter => 3,
        Kind::Summary => 4,
        Kind::Untyped => 5,
        Kind::Histogram => 7,
    };
    let mut value = None;
    let mut r = Reader::new(bytes);
    let decode_err = |e: prost::DecodeError| e.to_string();
    while let Some((field, w)) = r.field()? {
        let Wire::Bytes(b) = w else { continue };
        if field == 1 {
            let (mut ln, mut lv) = ("", "");
            let mut lr = Reader::new(b);
            while let Some((f, w)) = lr.field()? {
                match f {
                    1 => ln = wire::string(w)?,
                    2 => lv = wire::string(w)?,
                    _ => {}
                }
            }
            labels.push((ln, lv));
        } else if field == wanted {
            value = Some(match kind {
                Kind::Gauge | Kind::Counter | Kind::Untyped => scalar(b)?,
                Kind::Summary => summary(b)?,
                Kind::Histogram => {
                    histogram_sizes(b, limits)?;
                    Sub::Histogram(Box::new(pb::Histogram::decode(b).map_err(decode_err)?))
                }
            });
        }
    }
    Ok(value)
}

fn created(ts: &Option<prost_types::Timestamp>) -> Result<Option<Created>, String> {
    ts.as_ref()
        .map(|t| created_from_parts(t.seconds, i64::from(t.nanos)))
        .transpose()
}

fn metric_value(
    kind: Kind,
    sub: Option<Sub>,
    opts: &Options<'_>,
) -> Result<(Value, Option<Created>), String> {
    let missing = || {
        format!(
            "type {} but the metric has no {} field",
            kind.as_str(),
            kind.as_str()
        )
    };
    match sub.ok_or_else(missing)? {
        Sub::Scalar { value, created } => {
            check_scalar(kind, value, opts)?;
            let created = if kind == Kind::Counter { created } else { None };
            Ok((Value::Scalar(value), created))
        }
        Sub::Summary {
            count,
            sum,
            created,
        } => {
            let count = count as f64;
            check_summary(count, sum)?;
            Ok((Value::Summary { count, sum }, created))
        }
        Sub::Histogram(h) => {
            let created = created(&h.created_timestamp)?;
            let count = if h.sample_count_float() > 0.0 {
                h.sample_count_float()
            } else {
                h.sample_count() as f64
            };
            if h.bucket.is_empty() && is_native(&h) {
                return Ok((
                    Value::Native(Box::new(native(
                        &h,
                        count,
                        opts.labels.limits().max_native_buckets,
                    )?)),
                    created,
                ));
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
            Ok((Value::Histogram(Box::new(h)), created))
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

fn native(h: &pb::Histogram, count: f64, max_buckets: usize) -> Result<NativeHistogram, String> {
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
    // Prometheus refuses an integer histogram whose count is not the sum of
    // its buckets (and so would refuse our scrape of it).
    if !float && h.sample_count_float() == 0.0 && !n.counts_add_up() {
        return Err(format!(
            "native histogram count {} is not the sum of its buckets and zero bucket",
            n.count
        ));
    }
    let mut n = n;
    n.limit_buckets(max_buckets)?;
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
                // `+ 0.0`: a `-0` count is stored as `0`.
                counts[n] + 0.0
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelRules;

    #[test]
    fn counter_values_and_created_timestamps_read_off_the_wire() {
        let mf = pb::MetricFamily {
            name: Some("c_total".into()),
            help: Some("help".into()),
            r#type: Some(pb::MetricType::Counter as i32),
            metric: vec![pb::Metric {
                label: vec![pb::LabelPair {
                    name: Some("a".into()),
                    value: Some("ü".into()),
                }],
                counter: Some(pb::Counter {
                    value: Some(2.5),
                    exemplar: Some(pb::Exemplar {
                        label: vec![],
                        value: Some(1.0),
                        timestamp: None,
                    }),
                    created_timestamp: Some(prost_types::Timestamp {
                        seconds: 1_700_000_000,
                        nanos: 500_000_000,
                    }),
                }),
                ..Default::default()
            }],
            unit: None,
        };
        let rules = LabelRules::default();
        let opts = Options {
            labels: &rules,
            gauge_nan_ok: false,
            spend: None,
            windows: None,
        };
        let push = delimited(&mf.encode_length_delimited_to_vec(), &opts).unwrap();
        let s = &push.families[0].series[0];
        assert_eq!(s.value, Value::Scalar(2.5));
        assert_eq!(s.created, Some(1_700_000_000_500_000_000));
        assert_eq!(push.families[0].help, "help");
    }
}
