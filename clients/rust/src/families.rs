//! Builders for the `MetricFamily` messages a push carries.

use crate::pb::io::prometheus::client as pb;

fn labels(pairs: &[(&str, &str)]) -> Vec<pb::LabelPair> {
    pairs
        .iter()
        .map(|(n, v)| pb::LabelPair {
            name: Some((*n).into()),
            value: Some((*v).into()),
        })
        .collect()
}

/// A family of one series: `metric` (its value) under these labels.
fn family(
    name: &str,
    help: &str,
    kind: pb::MetricType,
    label_pairs: &[(&str, &str)],
    metric: pb::Metric,
) -> pb::MetricFamily {
    pb::MetricFamily {
        name: Some(name.into()),
        help: (!help.is_empty()).then(|| help.into()),
        r#type: Some(kind as i32),
        metric: vec![pb::Metric {
            label: labels(label_pairs),
            ..metric
        }],
        unit: None,
    }
}

/// A histogram family (classic or native) of one series of `count`
/// observations adding up to `sum`.
fn histogram_family(
    name: &str,
    help: &str,
    label_pairs: &[(&str, &str)],
    count: u64,
    sum: f64,
    histogram: pb::Histogram,
) -> pb::MetricFamily {
    let histogram = pb::Histogram {
        sample_count: Some(count),
        sample_sum: Some(sum),
        ..histogram
    };
    family(
        name,
        help,
        pb::MetricType::Histogram,
        label_pairs,
        pb::Metric {
            histogram: Some(histogram),
            ..Default::default()
        },
    )
}

/// A counter family with one series (`name` as stored, e.g. `jobs_total`).
pub fn counter(
    name: &str,
    help: &str,
    label_pairs: &[(&str, &str)],
    value: f64,
) -> pb::MetricFamily {
    family(
        name,
        help,
        pb::MetricType::Counter,
        label_pairs,
        pb::Metric {
            counter: Some(pb::Counter {
                value: Some(value),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
}

/// A gauge family with one series.
pub fn gauge(name: &str, help: &str, label_pairs: &[(&str, &str)], value: f64) -> pb::MetricFamily {
    family(
        name,
        help,
        pb::MetricType::Gauge,
        label_pairs,
        pb::Metric {
            gauge: Some(pb::Gauge { value: Some(value) }),
            ..Default::default()
        },
    )
}

/// A classic histogram family with one series: `buckets` are
/// `(upper bound, cumulative count)` in increasing order.
pub fn histogram(
    name: &str,
    help: &str,
    label_pairs: &[(&str, &str)],
    buckets: &[(f64, u64)],
    count: u64,
    sum: f64,
) -> pb::MetricFamily {
    let classic = pb::Histogram {
        bucket: buckets
            .iter()
            .map(|&(le, c)| pb::Bucket {
                upper_bound: Some(le),
                cumulative_count: Some(c),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    histogram_family(name, help, label_pairs, count, sum, classic)
}

/// The buckets of a native histogram as Prometheus' protobuf carries them:
/// a schema (resolution: bucket boundaries grow by 2^(2^-schema)), the zero
/// bucket, and for each sign runs of buckets (`(offset, length)` spans) with
/// each bucket's count as the difference from the one before.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NativeBuckets {
    /// From -4 (coarsest) to 8 (finest).
    pub schema: i32,
    /// Observations with an absolute value up to this count as zero.
    pub zero_threshold: f64,
    /// How many observations did.
    pub zero_count: u64,
    /// Spans of positive buckets: the first offset is the first bucket's
    /// index, each further one the gap after the previous span.
    pub positive_spans: Vec<(i32, u32)>,
    /// Count of each positive bucket, as the change from the previous one.
    pub positive_deltas: Vec<i64>,
    /// Spans of negative buckets, as `positive_spans`.
    pub negative_spans: Vec<(i32, u32)>,
    /// Count of each negative bucket, as `positive_deltas`.
    pub negative_deltas: Vec<i64>,
}

/// A native histogram family with one series.
pub fn native_histogram(
    name: &str,
    help: &str,
    label_pairs: &[(&str, &str)],
    buckets: &NativeBuckets,
    count: u64,
    sum: f64,
) -> pb::MetricFamily {
    let spans = |spans: &[(i32, u32)]| {
        spans
            .iter()
            .map(|&(offset, length)| pb::BucketSpan {
                offset: Some(offset),
                length: Some(length),
            })
            .collect()
    };
    let native = pb::Histogram {
        schema: Some(buckets.schema),
        zero_threshold: Some(buckets.zero_threshold),
        zero_count: Some(buckets.zero_count),
        positive_span: spans(&buckets.positive_spans),
        positive_delta: buckets.positive_deltas.clone(),
        negative_span: spans(&buckets.negative_spans),
        negative_delta: buckets.negative_deltas.clone(),
        ..Default::default()
    };
    histogram_family(name, help, label_pairs, count, sum, native)
}
