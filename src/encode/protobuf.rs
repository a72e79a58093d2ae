//! Length-delimited `io.prometheus.client.MetricFamily` messages: what
//! Prometheus asks for first (and needs for native histograms).

use prost::Message;

use crate::aggregate::FamilyView;
use crate::model::{Created, Kind, Value, created_parts, labels};
use crate::pb::io::prometheus::client as pb;
use crate::wire::{LEN, bytes, double, key, uint, varint, varint_len};

/// Families up to this many series are written through one buffer (about
/// 100 bytes a series); larger ones series by series.
const STREAM_ABOVE: usize = 16_384;

/// Writes one family as a delimited message to `out` without keeping a
/// rendering of it: a small family goes through `scratch`; a large one is written series by series,
/// one series' bytes at a time, the message length (written first) coming
/// from a sizing pass. A snapshot of a million-series family must not build
/// the whole message in memory.
pub fn write_family_streaming(
    name: &str,
    f: &FamilyView,
    out: &mut impl std::io::Write,
    scratch: &mut Vec<u8>,
) -> std::io::Result<u64> {
    if f.series().len() <= STREAM_ABOVE {
        scratch.clear();
        write_family(name, f, scratch);
        out.write_all(scratch)?;
        return Ok(scratch.len() as u64);
    }
    let mut head = Vec::with_capacity(name.len() + f.help.len() + 16);
    write_family_head(name, f, &mut head);
    let (mut metric, mut inner) = (Vec::with_capacity(256), Vec::with_capacity(256));
    // The sizing pass adds up lengths without writing the labels: it was
    // a whole second rendering (a million-series protobuf scrape took
    // twice a text one).
    let mut body_len = head.len() as u64;
    for (key, s) in f.series() {
        let len = metric_len(f.kind, key, s, &mut inner);
        body_len += 1 + varint_len(len as u64) as u64 + len as u64;
    }
    let mut prefix = Vec::with_capacity(10);
    varint(&mut prefix, body_len);
    out.write_all(&prefix)?;
    out.write_all(&head)?;
    let mut written = head.len() as u64;
    let mut framed = Vec::with_capacity(256);
    for (key, s) in f.series() {
        write_metric(f.kind, key, s, &mut metric, &mut inner);
        framed.clear();
        bytes(&mut framed, 4, &metric);
        out.write_all(&framed)?;
        written += framed.len() as u64;
    }
    // Never the case (a test holds the two passes to the same lengths);
    // were it, the reader must see a failed write, not a message whose
    // length is wrong.
    if written != body_len {
        return Err(std::io::Error::other(
            "protobuf family: sizing and writing passes disagree",
        ));
    }
    Ok(prefix.len() as u64 + body_len)
}

// Our own wire writer rather than prost structs (kept below as `to_proto`,
// the reference the tests compare against): building `pb::MetricFamily`
// allocated two Strings per label and a Vec per series, many times the
// cost of rendering text (bench/README.md, "Protobuf scrapes"). The
// bytes are the same as prost's: fields in tag order, proto2 optionals
// written when set, repeated scalars unpacked.

/// Appends one family as a delimited `MetricFamily`.
pub(super) fn write_family(name: &str, f: &FamilyView, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(f.series().len() * 96 + 64);
    write_family_head(name, f, &mut body);
    let mut metric = Vec::with_capacity(256);
    let mut inner = Vec::with_capacity(256);
    for (labels_key, s) in f.series() {
        write_metric(f.kind, labels_key, s, &mut metric, &mut inner);
        bytes(&mut body, 4, &metric);
    }
    varint(out, body.len() as u64);
    out.extend_from_slice(&body);
}

/// Appends, as one delimited `MetricFamily` of `kind` without help, these
/// series (snapshots of `total` sources, which are not a stored family).
pub(crate) fn write_series<'a>(
    name: &str,
    kind: Kind,
    series: impl Iterator<Item = (&'a [u8], &'a crate::aggregate::StoredSeries)>,
    out: &mut Vec<u8>,
) {
    let mut body = Vec::with_capacity(256);
    bytes(&mut body, 1, name.as_bytes());
    uint(&mut body, 3, metric_type(kind) as u64);
    let (mut metric, mut inner) = (Vec::with_capacity(256), Vec::with_capacity(256));
    for (labels_key, s) in series {
        write_metric(kind, labels_key, s, &mut metric, &mut inner);
        bytes(&mut body, 4, &metric);
    }
    varint(out, body.len() as u64);
    out.extend_from_slice(&body);
}

/// A `MetricFamily`'s name, help and type fields.
fn write_family_head(name: &str, f: &FamilyView, out: &mut Vec<u8>) {
    bytes(out, 1, name.as_bytes());
    if !f.help.is_empty() {
        bytes(out, 2, f.help.as_bytes());
    }
    uint(out, 3, metric_type(f.kind) as u64);
}

/// One series' `Metric` message into `metric` (cleared first); `inner` is
/// scratch for its value message.
#[inline]
fn write_metric(
    kind: Kind,
    labels_key: &[u8],
    s: &crate::aggregate::StoredSeries,
    metric: &mut Vec<u8>,
    inner: &mut Vec<u8>,
) {
    metric.clear();
    if is_plain_short(labels_key) {
        // Every length one byte (see `is_plain_short`): each pair written
        // in four appends rather than field by field.
        let mut parts = labels_key.split(|&c| c == 0);
        while let (Some(n), Some(v)) = (parts.next(), parts.next()) {
            let pair = (4 + n.len() + v.len()) as u8;
            metric.extend_from_slice(&[1 << 3 | LEN, pair, 1 << 3 | LEN, n.len() as u8]);
            metric.extend_from_slice(n);
            metric.extend_from_slice(&[2 << 3 | LEN, v.len() as u8]);
            metric.extend_from_slice(v);
        }
    } else {
        for (n, v) in labels::pairs(labels_key) {
            key(metric, 1, LEN);
            varint(metric, pair_len(n, &v) as u64);
            bytes(metric, 1, n);
            bytes(metric, 2, &v);
        }
    }
    inner.clear();
    let field = write_value(inner, kind, s);
    bytes(metric, field, inner);
}

/// The length of the `Metric` message [`write_metric`] writes, the labels
/// counted rather than written; `inner` is scratch for the value message.
fn metric_len(
    kind: Kind,
    labels_key: &[u8],
    s: &crate::aggregate::StoredSeries,
    inner: &mut Vec<u8>,
) -> usize {
    let mut len = 0;
    if is_plain_short(labels_key) {
        // Counted without walking the pairs (the walk was most of the
        // sizing pass): a pair takes its name and value plus six bytes
        // (the `label` field's tag and length, `name`'s and `value`'s),
        // where the key spends two.
        let pairs = bytecount_zeros(labels_key) / 2;
        len += labels_key.len() + 4 * pairs;
    } else {
        for (n, v) in labels::pairs(labels_key) {
            let pair = pair_len(n, &v);
            len += 1 + varint_len(pair as u64) + pair;
        }
    }
    inner.clear();
    write_value(inner, kind, s);
    len + 1 + varint_len(inner.len() as u64) + inner.len()
}

/// Whether a key is the common case: no NUL escaped in a value (stored as
/// 0x00 0x01), so it is `name 0 value 0` per pair; and short, so every
/// length in its `Metric` message's labels takes one varint byte. Both
/// checks are loops the compiler vectorizes.
fn is_plain_short(labels_key: &[u8]) -> bool {
    // Not `contains`: for bytes it calls memchr, whose set-up costs more
    // than a key's length.
    labels_key.len() <= 120 && !labels_key.iter().fold(false, |seen, &c| seen | (c == 1))
}

/// Zero bytes in `b` (a loop the compiler vectorizes).
fn bytecount_zeros(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == 0).count()
}

/// The length of a `LabelPair` message holding `name` and `value`.
fn pair_len(name: &[u8], value: &[u8]) -> usize {
    2 + varint_len(name.len() as u64) + name.len() + varint_len(value.len() as u64) + value.len()
}

/// Writes the series' value message into `out`; returns its field number
/// in `Metric`.
fn write_value(out: &mut Vec<u8>, kind: Kind, s: &crate::aggregate::StoredSeries) -> u8 {
    match (&s.value, kind) {
        (Value::Scalar(v), Kind::Counter) => {
            double(out, 1, *v);
            created(out, 3, s.created());
            3
        }
        (Value::Scalar(v), Kind::Gauge) => {
            double(out, 1, *v);
            2
        }
        (Value::Scalar(v), _) => {
            double(out, 1, *v);
            5
        }
        (Value::Histogram(h), _) => {
            let (count, count_float) = split_count(h.count);
            if let Some(c) = count {
                uint(out, 1, c);
            }
            double(out, 2, h.sum);
            // Each Bucket's length is known up front: no scratch buffer.
            for b in &h.buckets {
                let (c, cf) = split_count(b.count);
                let len = c.map_or(0, |c| 1 + varint_len(c)) + 9 + cf.map_or(0, |_| 9);
                key(out, 3, LEN);
                varint(out, len as u64);
                if let Some(c) = c {
                    uint(out, 1, c);
                }
                double(out, 2, b.le);
                if let Some(cf) = cf {
                    double(out, 4, cf);
                }
            }
            if let Some(cf) = count_float {
                double(out, 4, cf);
            }
            created(out, 15, s.created());
            7
        }
        // Rare, and many optional parts: prost encodes this one.
        (Value::Native(h), _) => {
            let _ = native_to_proto(h, s.created().map(timestamp)).encode(out);
            7
        }
        (Value::Summary { count, sum }, _) => {
            let (c, _) = split_count(*count);
            uint(out, 1, c.unwrap_or(count.round() as u64));
            double(out, 2, *sum);
            created(out, 4, s.created());
            4
        }
    }
}

/// A `google.protobuf.Timestamp` field (proto3: zero parts left out).
fn created(out: &mut Vec<u8>, field: u8, at: Option<Created>) {
    let Some(at) = at else { return };
    let t = timestamp(at);
    let (s, n) = (t.seconds as u64, t.nanos as i64 as u64);
    // proto3 fields: a zero is left out.
    let field_len = |v: u64| if v == 0 { 0 } else { 1 + varint_len(v) };
    let len = field_len(s) + field_len(n);
    key(out, field, LEN);
    varint(out, len as u64);
    if s != 0 {
        uint(out, 1, s);
    }
    if n != 0 {
        uint(out, 2, n);
    }
}

fn metric_type(kind: Kind) -> pb::MetricType {
    match kind {
        Kind::Counter => pb::MetricType::Counter,
        Kind::Gauge => pb::MetricType::Gauge,
        Kind::Histogram => pb::MetricType::Histogram,
        Kind::Summary => pb::MetricType::Summary,
        Kind::Untyped => pb::MetricType::Untyped,
    }
}

/// One stored family as a prost message: what [`render`] writes, built the
/// slow way (the reference its tests compare the wire writer with).
pub fn to_proto(name: &str, f: &FamilyView) -> pb::MetricFamily {
    let kind = metric_type(f.kind);
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
            let created = s.created().map(timestamp);
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
        help: (!f.help.is_empty()).then(|| f.help.to_string()),
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
    // Integer form only when Prometheus will take it: whole counts (small
    // enough for exact deltas) that add up to the count; else float form.
    let integral = |c: f64| c.fract() == 0.0 && (0.0..9e15).contains(&c);
    let all_integral = integral(h.count) && h.counts_add_up();
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
    // Indices are within ±MAX_INDEX (checked on input, kept by merges), so
    // every gap fits an i32; the arithmetic is i64 all the same.
    let mut next = 0i64;
    for (n, &(i, _)) in buckets.iter().enumerate() {
        let i = i64::from(i);
        match spans.last_mut() {
            Some(s) if n > 0 && i == next => s.length = Some(s.length.unwrap_or(0) + 1),
            _ => spans.push(pb::BucketSpan {
                offset: Some(if n == 0 { i } else { i - next } as i32),
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

fn timestamp(at: Created) -> prost_types::Timestamp {
    let (seconds, nanos) = created_parts(at);
    prost_types::Timestamp { seconds, nanos }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::{to_proto, write_family};
    use crate::aggregate::{Aggregator, GaugeMode, Settings};
    use crate::decode::{Options, decode};
    use crate::format::Format;
    use crate::model::LabelRules;

    fn apply(a: &Aggregator, body: &[u8], format: Format) {
        let rules = LabelRules::default();
        let opts = Options {
            labels: &rules,
            gauge_nan_ok: true,
            spend: None,
            windows: None,
        };
        a.apply(decode(body, format, &opts).unwrap()).unwrap();
    }

    /// A family too large for one buffer is streamed series by series with
    /// the same bytes.
    #[test]
    fn large_families_stream_the_same_bytes() {
        let a = Aggregator::new(Settings {
            gauge_mode: GaugeMode::Sum,
            max_series: 100_000,
            ..Default::default()
        });
        let body: String = (0..super::STREAM_ABOVE + 10)
            .map(|i| format!("big_total{{i=\"{i}\"}} {i}\n"))
            .collect();
        apply(
            &a,
            format!("# TYPE big_total counter\n{body}").as_bytes(),
            Format::Text,
        );
        a.read(|families| {
            let (name, f) = families[0];
            let mut whole = Vec::new();
            write_family(name, f, &mut whole);
            let mut streamed = Vec::new();
            let n = super::write_family_streaming(name, f, &mut streamed, &mut Vec::new()).unwrap();
            assert_eq!(n as usize, streamed.len());
            assert!(streamed == whole, "streamed bytes differ");
        });
    }

    /// The wire writer's bytes are prost's, family by family, for every kind
    /// of value: created timestamps (whole, fractional, below one second),
    /// float counts, labels long enough for two-byte lengths, escapes,
    /// native histograms (integer and float).
    #[test]
    fn wire_writer_matches_prost() {
        let a = Aggregator::new(Settings {
            gauge_mode: GaugeMode::Sum,
            max_series: 1000,
            ..Default::default()
        });
        let long = "v".repeat(300);
        let text = format!(
            "# HELP g A gauge\\nwith \\\\ escapes\n# TYPE g gauge\ng{{a=\"1\",b=\"{long}\"}} -2.5\ng 7\n\
             # TYPE u untyped\nu{{x=\"ü\\\"\"}} 3\n\
             # TYPE s summary\ns_sum 4.5\ns_count 3\ns{{quantile=\"0.5\"}} 1\n"
        );
        apply(&a, text.as_bytes(), Format::Text);
        let om = "# TYPE c counter\n# HELP c Counts.\nc_total{k=\"a\"} 1.5\nc_created{k=\"a\"} 1700000000.25\n\
                  c_total{k=\"b\"} 2\nc_created{k=\"b\"} 0.5\nc_total{k=\"c\"} 3\n\
                  # TYPE h histogram\nh_bucket{le=\"0.5\"} 1.5\nh_bucket{le=\"+Inf\"} 2.5\nh_sum 3\nh_count 2.5\nh_created 1700000001\n\
                  h_bucket{k=\"i\",le=\"1\"} 1\nh_bucket{k=\"i\",le=\"+Inf\"} 4\nh_sum{k=\"i\"} 9\nh_count{k=\"i\"} 4\n# EOF\n";
        apply(&a, om.as_bytes(), Format::OpenMetrics);
        // Integer deltas, or float counts (then the float count too).
        let native = |name: &str,
                      deltas: Vec<i64>,
                      counts: Vec<f64>,
                      count: u64,
                      count_float: Option<f64>| {
            use prom_aggregation_gateway_client::families;
            let buckets = families::NativeBuckets {
                schema: 1,
                zero_threshold: 1e-128,
                positive_spans: vec![(-2, 2), (3, 1)],
                positive_deltas: deltas,
                ..Default::default()
            };
            let mut f = families::native_histogram(name, "", &[], &buckets, count, 1.25);
            let h = f.metric[0].histogram.as_mut().unwrap();
            h.positive_count = counts;
            if count_float.is_some() {
                (h.sample_count, h.sample_count_float) = (None, count_float);
            }
            f
        };
        let mut body = Vec::new();
        native("n_int", vec![1, 1, -1], vec![], 4, None)
            .encode_length_delimited(&mut body)
            .unwrap();
        native("n_float", vec![], vec![0.5, 1.5, 2.0], 0, Some(4.0))
            .encode_length_delimited(&mut body)
            .unwrap();
        apply(&a, &body, Format::Protobuf);
        // Keys the sizing pass counts the long way: a NUL (stored escaped),
        // a raw 0x01, a key over 120 bytes, two-byte lengths.
        let long_value = "x".repeat(130);
        for labels in [
            vec![("a", "nul\0in"), ("b", "2")],
            vec![("a", "\u{1}"), ("b", "\u{1}\0")],
            vec![
                ("a", "y".repeat(60).as_str()),
                ("b", "z".repeat(60).as_str()),
            ],
            vec![("a", long_value.as_str())],
        ] {
            let family =
                prom_aggregation_gateway_client::families::counter("odd_total", "", &labels, 1.0);
            apply(
                &a,
                &family.encode_length_delimited_to_vec(),
                Format::Protobuf,
            );
        }

        let mut seen = 0;
        a.read(|families| {
            for (name, f) in families {
                let mut ours = Vec::new();
                write_family(name, f, &mut ours);
                let theirs = to_proto(name, f).encode_length_delimited_to_vec();
                assert_eq!(ours, theirs, "family {name}");
                let mut streamed = Vec::new();
                let n =
                    super::write_family_streaming(name, f, &mut streamed, &mut Vec::new()).unwrap();
                assert_eq!(streamed, theirs, "family {name}, streamed");
                assert_eq!(n as usize, streamed.len());
                // The sizing pass of large families counts what is written.
                let (mut metric, mut inner) = (Vec::new(), Vec::new());
                for (key, s) in f.series() {
                    super::write_metric(f.kind, key, s, &mut metric, &mut inner);
                    let len = super::metric_len(f.kind, key, s, &mut inner);
                    assert_eq!(len, metric.len(), "family {name}, sizing pass");
                }
                seen += 1;
            }
        });
        assert_eq!(seen, 8);
    }
}
