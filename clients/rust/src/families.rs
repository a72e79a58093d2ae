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

fn family(name: &str, help: &str, kind: pb::MetricType, metric: pb::Metric) -> pb::MetricFamily {
    pb::MetricFamily {
        name: Some(name.into()),
        help: (!help.is_empty()).then(|| help.into()),
        r#type: Some(kind as i32),
        metric: vec![metric],
        unit: None,
    }
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
        pb::Metric {
            label: labels(label_pairs),
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
        pb::Metric {
            label: labels(label_pairs),
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
    family(
        name,
        help,
        pb::MetricType::Histogram,
        pb::Metric {
            label: labels(label_pairs),
            histogram: Some(pb::Histogram {
                sample_count: Some(count),
                sample_sum: Some(sum),
                bucket: buckets
                    .iter()
                    .map(|&(le, c)| pb::Bucket {
                        upper_bound: Some(le),
                        cumulative_count: Some(c),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
}
