//! Running totals: each producer adds what it grew by.

use super::*;

#[test]
fn cumulative_sums_add_what_each_producer_grew_by() {
    let c = Cumulative::new();
    let sum = |pod: &str, v: f64, start: u64| {
        resource(
            "checkout",
            pod,
            vec![metric("jobs", "", cumulative_sum(v, start, vec![]))],
        )
    };
    // Two producers' running totals, exported three times, one request
    // holding both: the output is the sum of their last totals.
    c.export(vec![sum("a", 3.0, 100), sum("b", 10.0, 100)]);
    assert_eq!(c.samples(), ["jobs_total{job=\"checkout\"} 13"]);
    c.export(vec![sum("a", 5.0, 100), sum("b", 10.0, 100)]);
    c.export(vec![sum("a", 6.0, 100)]);
    assert_eq!(c.samples(), ["jobs_total{job=\"checkout\"} 16"]);
    // Producer b restarted (a later start time): its new total counts in
    // full, even though it is above the old one.
    c.export(vec![sum("b", 12.0, 200)]);
    assert_eq!(c.samples(), ["jobs_total{job=\"checkout\"} 28"]);
    // A third producer's first export counts in full.
    c.export(vec![sum("c", 1.0, 300)]);
    assert_eq!(c.samples(), ["jobs_total{job=\"checkout\"} 29"]);
    // Deltas of the same series add as pushed, beside the totals.
    c.export(vec![resource(
        "checkout",
        "d",
        vec![metric("jobs", "", delta_sum(2.0, vec![]))],
    )]);
    assert_eq!(c.samples(), ["jobs_total{job=\"checkout\"} 31"]);
}

#[test]
fn one_stream_twice_in_a_request_keeps_the_later_point() {
    let c = Cumulative::new();
    let point = |v: f64, time: u64| NumberDataPoint {
        start_time_unix_nano: 10,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let data = Data::Sum(m::Sum {
        data_points: vec![point(7.0, 30), point(4.0, 20)],
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
        is_monotonic: true,
    });
    c.export(vec![resource("s", "a", vec![metric("x", "", data)])]);
    assert_eq!(c.samples(), ["x_total{job=\"s\"} 7"]);
}

#[test]
fn cumulative_histograms_and_summaries_add_their_increase() {
    let c = Cumulative::new();
    let export = |pod: &str, n: u64| {
        let histogram = Data::Histogram(m::Histogram {
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: 1,
                count: n,
                sum: Some(n as f64),
                bucket_counts: vec![n, 0],
                explicit_bounds: vec![1.0],
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        });
        let summary = Data::Summary(m::Summary {
            data_points: vec![m::SummaryDataPoint {
                start_time_unix_nano: 1,
                count: n,
                sum: 2.0 * n as f64,
                quantile_values: vec![m::summary_data_point::ValueAtQuantile {
                    quantile: 0.5,
                    value: 1.0,
                }],
                ..Default::default()
            }],
        });
        resource(
            "s",
            pod,
            vec![metric("lat", "s", histogram), metric("rpc", "", summary)],
        )
    };
    c.export(vec![export("a", 2), export("b", 3)]);
    c.export(vec![export("a", 5)]);
    let samples = c.samples();
    for want in [
        "lat_seconds_bucket{job=\"s\",le=\"1\"} 8",
        "lat_seconds_count{job=\"s\"} 8",
        "rpc_sum{job=\"s\"} 16",
        "rpc_count{job=\"s\"} 8",
    ] {
        assert!(samples.iter().any(|l| l == want), "{want} in {samples:?}");
    }
}

#[test]
fn a_cumulative_exponential_histogram_going_coarser_goes_on() {
    let c = Cumulative::new();
    let export = |scale: i32, offset: i32, counts: Vec<u64>| {
        let count = counts.iter().sum();
        let data = Data::ExponentialHistogram(m::ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                start_time_unix_nano: 1,
                count,
                sum: Some(1.0),
                scale,
                positive: Some(Buckets {
                    offset,
                    bucket_counts: counts,
                }),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        });
        resource("s", "a", vec![metric("size", "", data)])
    };
    // Scale 1, OTLP buckets 2 and 3 (Prometheus 3 and 4); then the SDK
    // rescales to 0 as a larger value arrives: the old buckets are
    // Prometheus 2 (both) at scale 0, and one more value in bucket 3.
    c.export(vec![export(1, 2, vec![1, 1])]);
    c.export(vec![export(0, 1, vec![2, 1])]);
    let out = c.agg.read(|families| {
        let (_, f) = families[0];
        f.series().next().map(|(_, s)| s.value.clone())
    });
    match out {
        Some(Value::Native(h)) => {
            assert_eq!(h.count, 3.0, "{h:?}");
            assert_eq!(h.schema, 0);
            assert_eq!(h.positive, [(2, 2.0), (3, 1.0)]);
        }
        v => panic!("{v:?}"),
    }
}
