use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    self as m, AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, exponential_histogram_data_point::Buckets,
    metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::*;
use crate::model::LabelRules;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str, instance: &str, metrics: Vec<m::Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", service),
                kv("service.instance.id", instance),
                kv("host.name", instance),
            ],
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "test".into(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: Data) -> m::Metric {
    m::Metric {
        name: name.into(),
        description: "what it counts".into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn delta_sum(v: f64, attrs: Vec<KeyValue>) -> Data {
    Data::Sum(m::Sum {
        data_points: vec![NumberDataPoint {
            attributes: attrs,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
        is_monotonic: true,
    })
}

fn decode(req: &ExportMetricsServiceRequest) -> Result<Push, Rejection> {
    let rules = LabelRules::default();
    let opts = Options {
        labels: &rules,
        gauge_nan_ok: false,
        spend: None,
    };
    request(&req.encode_to_vec(), &opts, GaugeMode::Sum)
}

fn scrape(push: Push) -> String {
    let a = crate::aggregate::Aggregator::new(Default::default());
    a.apply(push).unwrap();
    String::from_utf8(crate::encode::render(&a, crate::encode::Format::Text)).unwrap()
}

#[test]
fn deltas_from_two_producers_add_up_in_one_series() {
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![
            resource(
                "checkout",
                "pod-a",
                vec![metric(
                    "http.server.requests",
                    "{request}",
                    delta_sum(3.0, vec![kv("http.method", "GET")]),
                )],
            ),
            resource(
                "checkout",
                "pod-b",
                vec![metric(
                    "http.server.requests",
                    "{request}",
                    delta_sum(4.0, vec![kv("http.method", "GET")]),
                )],
            ),
        ],
    };
    assert_eq!(
        scrape(decode(&req).unwrap()),
        "# HELP http_server_requests_total what it counts\n# TYPE http_server_requests_total counter\n\
         http_server_requests_total{http_method=\"GET\",job=\"checkout\"} 7\n"
    );
}

#[test]
fn gauges_histograms_and_exponential_histograms() {
    let gauge = Data::Gauge(m::Gauge {
        data_points: vec![NumberDataPoint {
            value: Some(number_data_point::Value::AsInt(5)),
            attributes: vec![kv("queue", "q1")],
            ..Default::default()
        }],
    });
    let histogram = Data::Histogram(m::Histogram {
        data_points: vec![HistogramDataPoint {
            count: 6,
            sum: Some(12.5),
            bucket_counts: vec![1, 2, 3],
            explicit_bounds: vec![0.5, 1.0],
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    let exponential = Data::ExponentialHistogram(m::ExponentialHistogram {
        data_points: vec![ExponentialHistogramDataPoint {
            count: 4,
            sum: Some(6.0),
            scale: 0,
            zero_count: 1,
            positive: Some(Buckets {
                offset: 0,
                bucket_counts: vec![1, 2],
            }),
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![resource(
            "svc",
            "i1",
            vec![
                metric("queue.depth", "", gauge),
                metric("rpc.duration", "s", histogram),
                metric("payload.size", "By", exponential),
            ],
        )],
    };
    let push = decode(&req).unwrap();
    let native = push
        .families
        .iter()
        .find(|f| f.name == "payload_size_bytes")
        .unwrap();
    match &native.series[0].value {
        Value::Native(h) => {
            // OTLP buckets 0 and 1 are Prometheus buckets 1 and 2.
            assert_eq!(h.positive, [(1, 1.0), (2, 2.0)]);
            assert_eq!((h.schema, h.zero_count, h.count, h.sum), (0, 1.0, 4.0, 6.0));
        }
        v => panic!("{v:?}"),
    }
    let text = scrape(push);
    for want in [
        "queue_depth{job=\"svc\",queue=\"q1\"} 5\n",
        "rpc_duration_seconds_bucket{job=\"svc\",le=\"0.5\"} 1\n",
        "rpc_duration_seconds_bucket{job=\"svc\",le=\"1\"} 3\n",
        "rpc_duration_seconds_bucket{job=\"svc\",le=\"+Inf\"} 6\n",
        "rpc_duration_seconds_sum{job=\"svc\"} 12.5\n",
        "# TYPE payload_size_bytes histogram\n",
    ] {
        assert!(text.contains(want), "{want} in:\n{text}");
    }
}

#[test]
fn fine_scales_merge_down_to_schema_8() {
    let exponential = Data::ExponentialHistogram(m::ExponentialHistogram {
        data_points: vec![ExponentialHistogramDataPoint {
            count: 3,
            scale: 10,
            positive: Some(Buckets {
                // OTLP indices 3, 4, 5 at scale 10: Prometheus 4, 5, 6,
                // which at schema 8 are all in bucket 1 (indices 1..=4
                // map to 1, 5..=8 to 2).
                offset: 3,
                bucket_counts: vec![1, 1, 1],
            }),
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("s", "i", vec![metric("x", "", exponential)])],
    };
    let push = decode(&req).unwrap();
    match &push.families[0].series[0].value {
        Value::Native(h) => {
            assert_eq!(h.schema, 8);
            assert_eq!(h.positive, [(1, 1.0), (2, 2.0)]);
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn refusals_name_the_metric_and_the_reason() {
    let cases: Vec<(Data, &str)> = vec![
        (
            Data::Sum(m::Sum {
                data_points: vec![NumberDataPoint::default()],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
            "cumulative temporality is not taken yet",
        ),
        (delta_sum(-1.0, vec![]), "must be a count"),
        (delta_sum(f64::NAN, vec![]), "must be a count"),
        (
            Data::Histogram(m::Histogram {
                data_points: vec![HistogramDataPoint {
                    count: 5,
                    bucket_counts: vec![1, 2],
                    explicit_bounds: vec![1.0],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            }),
            "add up to 3, not the count 5",
        ),
        (
            Data::Histogram(m::Histogram {
                data_points: vec![HistogramDataPoint {
                    count: 1,
                    bucket_counts: vec![1, 0, 0],
                    explicit_bounds: vec![2.0, 1.0],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            }),
            "not strictly increasing",
        ),
        (
            Data::ExponentialHistogram(m::ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    scale: -5,
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            }),
            "scale -5",
        ),
        (
            Data::Summary(m::Summary {
                data_points: vec![Default::default()],
            }),
            "summaries are cumulative",
        ),
        (delta_sum(1.0, vec![kv("__name__", "x")]), "reserved"),
    ];
    for (data, want) in cases {
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![resource("s", "i", vec![metric("bad.one", "", data)])],
        };
        let err = decode(&req).unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
        assert!(err.contains("bad"), "names the metric: {err}");
    }
    // Garbage and truncation.
    for body in [&b"\x0a\x05abc"[..], b"\xff\xff\xff", b"\x0a\x02\x12\x7f"] {
        let rules = LabelRules::default();
        let opts = Options {
            labels: &rules,
            gauge_nan_ok: false,
            spend: None,
        };
        assert!(request(body, &opts, GaugeMode::Sum).is_err(), "{body:?}");
    }
}

#[test]
fn points_without_a_value_are_skipped() {
    let data = Data::Sum(m::Sum {
        data_points: vec![NumberDataPoint {
            flags: 1,
            value: Some(number_data_point::Value::AsDouble(5.0)),
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
        is_monotonic: true,
    });
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("s", "i", vec![metric("x", "", data)])],
    };
    assert!(decode(&req).unwrap().families.is_empty());
}
