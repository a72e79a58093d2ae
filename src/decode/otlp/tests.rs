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
use crate::aggregate::GaugeMode;
use crate::model::{LabelRules, Value};

mod attributes;
mod cumulative;

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

/// A cumulative sum point, each one taken later than the one before.
fn cumulative_sum(v: f64, start: u64, attrs: Vec<KeyValue>) -> Data {
    static TAKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let taken = TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cumulative_sum_at(v, start, start + taken, attrs)
}

fn cumulative_sum_at(v: f64, start: u64, time: u64, attrs: Vec<KeyValue>) -> Data {
    Data::Sum(m::Sum {
        data_points: vec![NumberDataPoint {
            attributes: attrs,
            start_time_unix_nano: start,
            time_unix_nano: time,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
        is_monotonic: true,
    })
}

const SETTINGS: Settings<'static> = Settings {
    gauge_mode: GaugeMode::Sum,
    promote: &[],
};

fn decode(req: &ExportMetricsServiceRequest) -> Result<Push, Rejection> {
    let rules = LabelRules::default();
    let opts = Options {
        labels: &rules,
        gauge_nan_ok: false,
        spend: None,
        windows: None,
    };
    request(&req.encode_to_vec(), &opts, &SETTINGS)
}

fn scrape(push: Push) -> String {
    let a = crate::aggregate::Aggregator::new(Default::default());
    a.apply(push).unwrap();
    String::from_utf8(crate::encode::render(&a, crate::format::Format::Text)).unwrap()
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
                aggregation_temporality: AggregationTemporality::Unspecified as i32,
                is_monotonic: true,
            }),
            "temporality 0 is not DELTA or CUMULATIVE",
        ),
        (cumulative_sum(-2.0, 0, vec![]), "total must be a count"),
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
                data_points: vec![m::SummaryDataPoint {
                    sum: f64::NAN,
                    ..Default::default()
                }],
            }),
            "sum is NaN",
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
            windows: None,
        };
        assert!(request(body, &opts, &SETTINGS).is_err(), "{body:?}");
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

/// Applies OTLP requests through the rules stage (as `Gateway::ingest`
/// does) with no rules but the built-in one.
struct Cumulative {
    agg: crate::aggregate::Aggregator,
    rules: crate::rules::RuleSet,
}

impl Cumulative {
    fn new() -> Cumulative {
        Cumulative {
            agg: crate::aggregate::Aggregator::new(Default::default()),
            rules: crate::rules::RuleSet::default(),
        }
    }

    fn export(&self, resource_metrics: Vec<ResourceMetrics>) {
        let mut push = decode(&ExportMetricsServiceRequest { resource_metrics }).unwrap();
        let routes = self.rules.route(&mut push);
        self.agg
            .apply_routed(push, &routes, &self.rules, || Ok(()))
            .unwrap();
    }

    fn samples(&self) -> Vec<String> {
        crate::encode::sample_lines(&self.agg)
    }
}

#[test]
fn promoted_resource_attributes_become_labels() {
    let promote = ["host.name".to_string(), "service.instance.id".to_string()];
    let settings = Settings {
        gauge_mode: GaugeMode::Sum,
        promote: &promote,
    };
    let rules = LabelRules::default();
    let opts = Options {
        labels: &rules,
        gauge_nan_ok: false,
        spend: None,
        windows: None,
    };
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![resource(
            "svc",
            "pod-a",
            // The point's own `host_name` wins over the promoted one.
            vec![
                metric("a", "", delta_sum(1.0, vec![])),
                metric("b", "", delta_sum(1.0, vec![kv("host.name", "own")])),
            ],
        )],
    };
    let push = request(&req.encode_to_vec(), &opts, &settings).unwrap();
    let text = scrape(push);
    assert!(
        text.contains("a_total{host_name=\"pod-a\",job=\"svc\",service_instance_id=\"pod-a\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("b_total{host_name=\"own\",job=\"svc\",service_instance_id=\"pod-a\"} 1\n"),
        "{text}"
    );
}

/// `inner` wrapped in `levels` arrays of one element each.
#[test]
fn points_of_one_request_merge_only_into_what_could_be_stored() {
    let histogram = |sum: f64| HistogramDataPoint {
        count: 1,
        sum: Some(sum),
        bucket_counts: vec![1],
        ..Default::default()
    };
    let exponential = |sum: f64| ExponentialHistogramDataPoint {
        count: 1,
        sum: Some(sum),
        zero_count: 1,
        ..Default::default()
    };
    let cases = [
        Data::Histogram(m::Histogram {
            data_points: vec![histogram(f64::INFINITY), histogram(f64::NEG_INFINITY)],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
        Data::ExponentialHistogram(m::ExponentialHistogram {
            data_points: vec![exponential(f64::INFINITY), exponential(f64::NEG_INFINITY)],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
    ];
    for data in cases {
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![resource("s", "i", vec![metric("lat", "", data)])],
        };
        let err = decode(&req).unwrap_err().to_string();
        assert!(err.contains("NaN"), "{err}");
    }
    // What a protobuf push of the same would be refused for.
    let summary = Data::Summary(m::Summary {
        data_points: vec![m::SummaryDataPoint {
            count: u64::MAX,
            ..Default::default()
        }],
    });
    let exponential = Data::ExponentialHistogram(m::ExponentialHistogram {
        data_points: vec![ExponentialHistogramDataPoint {
            count: 1,
            positive: Some(Buckets {
                offset: 0,
                bucket_counts: vec![1, 1],
            }),
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    for (data, want) in [
        (summary, "not a count"),
        (exponential, "not the sum of the bucket"),
    ] {
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![resource("s", "i", vec![metric("x", "", data)])],
        };
        let err = decode(&req).unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[test]
fn too_many_points_are_refused_as_too_large() {
    let rules = LabelRules::default();
    let memory = crate::memory::Memory::new(1 << 30);
    let spend = crate::decode::Spend::new(memory.reservation(), 10, 1 << 20);
    let opts = Options {
        labels: &rules,
        gauge_nan_ok: false,
        spend: Some(&spend),
        windows: None,
    };
    let points = (0..11)
        .map(|i| NumberDataPoint {
            attributes: vec![kv("i", &i.to_string())],
            value: Some(number_data_point::Value::AsInt(1)),
            ..Default::default()
        })
        .collect();
    let data = Data::Gauge(m::Gauge {
        data_points: points,
    });
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("s", "i", vec![metric("g", "", data)])],
    };
    let err = request(&req.encode_to_vec(), &opts, &SETTINGS).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::PushTooLarge {
                count: 11,
                limit: 10
            }
        ),
        "{err:?}"
    );
}

#[test]
fn json_is_charged_as_it_is_transcoded() {
    // 1M zeros of bucket counts: 2 MB of JSON, 8 MB of protobuf. With 1 MiB
    // to spend it is refused by the budget, having charged no more than
    // that and a step.
    let json = format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"h","histogram":{{"aggregationTemporality":1,"dataPoints":[{{"bucketCounts":[{}0]}}]}}}}]}}]}}]}}"#,
        "0,".repeat(1 << 20)
    );
    let charged = std::cell::Cell::new(0usize);
    let charge = |n: usize| {
        charged.set(charged.get() + n);
        if charged.get() > 4 << 20 {
            Err(Rejection::BodyTooLarge { limit: 4 << 20 })
        } else {
            Ok(())
        }
    };
    let err = json::to_protobuf(json.as_bytes(), &charge).unwrap_err();
    assert!(matches!(err, Rejection::BodyTooLarge { .. }), "{err:?}");
    // A real export is charged about its protobuf size, once.
    let small = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"aggregationTemporality":1,"dataPoints":[{"count":"1","bucketCounts":["1"]}]}}]}]}]}"#;
    charged.set(0);
    let raw = json::to_protobuf(small, &charge).unwrap();
    assert!(
        charged.get() < raw.len() + 3 * json::STEP_FOR_TESTS,
        "{}",
        charged.get()
    );
}

#[test]
fn replayed_and_retried_cumulative_points_count_once() {
    let c = Cumulative::new();
    let at = |v: f64, start: u64, time: u64| {
        resource(
            "checkout",
            "a",
            vec![metric(
                "jobs",
                "",
                cumulative_sum_at(v, start, time, vec![]),
            )],
        )
    };
    // 10 at t=2000, 20 at t=3000; the first export delivered again (a
    // retry, a collector replaying its queue); then 25 at t=4000.
    c.export(vec![at(10.0, 1000, 2000)]);
    c.export(vec![at(20.0, 1000, 3000)]);
    c.export(vec![at(10.0, 1000, 2000)]);
    assert_eq!(c.samples(), ["jobs_total{job=\"checkout\"} 20"]);
    // The same export retried: nothing more.
    c.export(vec![at(20.0, 1000, 3000)]);
    assert_eq!(c.samples(), ["jobs_total{job=\"checkout\"} 20"]);
    c.export(vec![at(25.0, 1000, 4000)]);
    assert_eq!(c.samples(), ["jobs_total{job=\"checkout\"} 25"]);
    let stats = c.rules.rule(crate::rules::CUMULATIVE).stats.clone();
    assert_eq!(stats.replays.get(), 2);
    assert_eq!(stats.resets.get(), 0);
    // A restart (a later start time) with an older-looking value is not a
    // replay: it counts in full.
    c.export(vec![at(3.0, 5000, 5500)]);
    assert_eq!(c.samples(), ["jobs_total{job=\"checkout\"} 28"]);
    // A point of the producer's life before that restart, replayed late:
    // dropped too.
    c.export(vec![at(25.0, 1000, 4000)]);
    assert_eq!(c.samples(), ["jobs_total{job=\"checkout\"} 28"]);
    assert_eq!(stats.replays.get(), 3);
}
