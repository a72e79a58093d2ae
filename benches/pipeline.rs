//! Micro-benchmarks of the push and scrape hot paths on 100k series:
//! text parse (bytes/s), validate+apply (samples/s, 1 and 2 threads), and
//! rendering text, OpenMetrics and protobuf (bytes/s).
//!
//! Run: `cargo bench --bench pipeline` (HTML reports in target/criterion).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prom_aggregation_gateway::aggregate::{Aggregator, GaugeMode, Settings};
use prom_aggregation_gateway::decode::{Options, otlp, protobuf, text};
use prom_aggregation_gateway::encode;
use prom_aggregation_gateway::format::Format;
use prom_aggregation_gateway::model::{LabelRules, Push};
use prom_aggregation_gateway::remote_write::encode as rw;
use prom_aggregation_gateway::rules::{self, RuleSet};

const SERIES: usize = 100_000;

/// `n` counter series in `families` families, three labels each, as a
/// client library writes them (about 130 bytes a line).
fn body(n: usize, families: usize, prefix: &str) -> String {
    let mut out = String::with_capacity(n * 140);
    let per = n / families;
    for f in 0..families {
        out.push_str(&format!("# HELP {prefix}requests_{f}_total Requests handled.\n# TYPE {prefix}requests_{f}_total counter\n"));
        for i in 0..per {
            out.push_str(&format!(
                "{prefix}requests_{f}_total{{method=\"GET\",path=\"/api/v1/items/{i}\",status=\"200\",instance=\"host-{}\"}} {}\n",
                i % 17,
                i as f64 + 0.5
            ));
        }
    }
    out
}

/// `n` delta counter points in `families` metrics, the labels of [`body`]
/// as attributes, as one OTLP `ExportMetricsServiceRequest`.
fn otlp_export(n: usize, families: usize) -> Vec<u8> {
    otlp_points(n, families, false)
}

/// [`otlp_export`], as gauges (`gauges`: each producer's level) or delta
/// counters.
fn otlp_points(n: usize, families: usize, gauges: bool) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1 as m;
    use prost::Message;
    let kv = |k: &str, v: String| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v)),
        }),
        ..Default::default()
    };
    let per = n / families;
    let metrics = (0..families)
        .map(|f| m::Metric {
            name: format!("requests.{f}"),
            description: "Requests handled.".into(),
            data: Some({
                let data_points = (0..per)
                    .map(|i| m::NumberDataPoint {
                        attributes: vec![
                            kv("method", "GET".into()),
                            kv("path", format!("/api/v1/items/{i}")),
                            kv("status", "200".into()),
                            kv("instance", format!("host-{}", i % 17)),
                        ],
                        value: Some(m::number_data_point::Value::AsDouble(i as f64 + 0.5)),
                        ..Default::default()
                    })
                    .collect();
                if gauges {
                    m::metric::Data::Gauge(m::Gauge { data_points })
                } else {
                    m::metric::Data::Sum(m::Sum {
                        data_points,
                        aggregation_temporality: m::AggregationTemporality::Delta as i32,
                        is_monotonic: true,
                    })
                }
            }),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![m::ResourceMetrics {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![kv("service.name", "bench".into())],
                ..Default::default()
            }),
            scope_metrics: vec![m::ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn parse(body: &str) -> Push {
    let rules = LabelRules::default();
    let opts = Options {
        labels: &rules,
        gauge_nan_ok: false,
        spend: None,
        windows: None,
    };
    text::parse(body.as_bytes(), text::Dialect::Prometheus, &opts).expect("valid body")
}

/// 99 rules `{__name__=~"app<i>_.*"}` (matching no family here), then
/// `last`.
fn rules_yaml(last: &str) -> String {
    let mut out = String::from("rules:\n");
    for i in 1..100 {
        out.push_str(&format!(
            "  - match: '{{__name__=~\"app{i}_.*\"}}'\n    mode: total\n"
        ));
    }
    out + last
}

fn aggregator() -> Aggregator {
    Aggregator::new(Settings {
        gauge_mode: GaugeMode::Sum,
        max_series: 10_000_000,
        made_start_times: std::env::var_os("PAG_BENCH_NO_START_TIMES").is_none(),
        ..Default::default()
    })
}

fn benches(c: &mut Criterion) {
    let text_body = body(SERIES, 10, "");
    let push = parse(&text_body);
    let samples = push.sample_count() as u64;

    let mut g = c.benchmark_group("push");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Bytes(text_body.len() as u64));
    g.bench_function("parse_text_100k", |b| {
        b.iter(|| black_box(parse(&text_body)))
    });
    g.throughput(Throughput::Elements(samples));
    let agg = aggregator();
    agg.apply(push.clone()).unwrap();
    g.bench_function("apply_100k_existing", |b| {
        b.iter_batched(
            || push.clone(),
            |p| agg.apply(p).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("parse_and_apply_100k", |b| {
        b.iter(|| agg.apply(parse(&text_body)).unwrap())
    });
    // The same series as delimited protobuf (as client_golang and our gRPC
    // clients send them): the borrowing decoder.
    let proto_body = encode::render(&agg, Format::Protobuf);
    let decode_proto = || {
        let rules = LabelRules::default();
        let opts = Options {
            labels: &rules,
            gauge_nan_ok: false,
            spend: None,
            windows: None,
        };
        protobuf::delimited(&proto_body, &opts).expect("valid protobuf")
    };
    g.bench_function("decode_protobuf_100k", |b| {
        b.iter(|| black_box(decode_proto()))
    });
    g.bench_function("decode_protobuf_and_apply_100k", |b| {
        b.iter(|| agg.apply(decode_proto()).unwrap())
    });
    // The same series as one OTLP export (delta sums, one producer), as
    // OTLP/HTTP and OTLP/gRPC bring them.
    let otlp_body = otlp_export(SERIES, 10);
    let decode_otlp = || {
        let rules = LabelRules::default();
        let opts = Options {
            labels: &rules,
            gauge_nan_ok: false,
            spend: None,
            windows: None,
        };
        let settings = otlp::Settings {
            gauge_mode: GaugeMode::Sum,
            promote: &[],
        };
        otlp::request(&otlp_body, &opts, &settings).expect("valid OTLP")
    };
    // The same export with each point's window (as SDKs send deltas),
    // checked against the windows counted: claimed and given back each
    // time, so every point takes the path of a new window twice (claim,
    // then give back), an upper bound of what a steady producer costs.
    let timed_body = {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        use prost::Message;
        let mut req = ExportMetricsServiceRequest::decode(&otlp_body[..]).unwrap();
        for m in &mut req.resource_metrics[0].scope_metrics[0].metrics {
            if let Some(Data::Sum(sum)) = &mut m.data {
                for p in &mut sum.data_points {
                    p.start_time_unix_nano = 1_700_000_000_000_000_000;
                    p.time_unix_nano = 1_700_000_010_000_000_000;
                }
            }
        }
        req.encode_to_vec()
    };
    let agg_windows = aggregator();
    g.bench_function("decode_otlp_windows_100k", |b| {
        b.iter(|| {
            let rules = LabelRules::default();
            let claims = agg_windows.delta_claims();
            let opts = Options {
                labels: &rules,
                gauge_nan_ok: false,
                spend: None,
                windows: Some(&claims),
            };
            let settings = otlp::Settings {
                gauge_mode: GaugeMode::Sum,
                promote: &[],
            };
            black_box(otlp::request(&timed_body, &opts, &settings).expect("valid OTLP"))
        })
    });
    let agg_otlp = aggregator();
    agg_otlp.apply(decode_otlp()).unwrap();
    g.bench_function("decode_otlp_100k", |b| b.iter(|| black_box(decode_otlp())));
    g.bench_function("decode_otlp_and_apply_100k", |b| {
        b.iter(|| agg_otlp.apply(decode_otlp()).unwrap())
    });
    // Two senders at once, each to its own families (different shards).
    let halves = [body(SERIES / 2, 5, "a_"), body(SERIES / 2, 5, "b_")];
    let agg2 = aggregator();
    for h in &halves {
        agg2.apply(parse(h)).unwrap();
    }
    g.bench_function("parse_and_apply_100k_2_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                std::thread::scope(|s| {
                    for h in &halves {
                        let agg2 = &agg2;
                        s.spawn(move || agg2.apply(parse(h)).unwrap());
                    }
                });
            }
            start.elapsed()
        })
    });
    g.finish();

    // Rules: the same push routed through 100 regex rules, once matching
    // none of its families, once through a label matcher, once folding
    // `instance` (17 values) away, and once as cumulative sources.
    let mut g = c.benchmark_group("rules");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(samples));
    let rule_sets = [
        ("none", String::new()),
        (
            "unmatched_100",
            rules_yaml("  - match: '{__name__=~\"app100_.*\"}'\n"),
        ),
        (
            "matched_100",
            rules_yaml("  - match: '{instance=~\"host-.*\"}'\n"),
        ),
        (
            "without_100",
            rules_yaml("  - match: '{instance=~\"host-.*\"}'\n    without: [instance]\n"),
        ),
        (
            "total_100",
            rules_yaml("  - match: '{instance=~\"host-.*\"}'\n    mode: total\n"),
        ),
    ];
    for (name, yaml) in rule_sets {
        let rules = RuleSet::new(
            rules::parse("bench", &yaml, |_| Default::default()).expect("valid rules"),
        );
        let agg = aggregator();
        let apply = |push: Push| {
            let mut push = push;
            let routes = rules.route(&mut push);
            agg.apply_routed(push, &routes, &rules, || Ok(())).unwrap()
        };
        apply(parse(&text_body));
        g.bench_function(format!("parse_and_apply_100k_{name}"), |b| {
            b.iter(|| apply(parse(&text_body)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("scrape");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    // One series in each of the ten families: applied before every
    // measured render (outside the timing), it drops every family's cached
    // text, so the figures are of real rendering.
    let touch = parse(&(0..10).map(|f| format!("# TYPE requests_{f}_total counter\nrequests_{f}_total{{method=\"GET\",path=\"/api/v1/items/0\",status=\"200\",instance=\"host-0\"}} 1\n")).collect::<String>());
    // Each format through its kept family renderings, as scrapes render.
    for (name, format) in [
        ("render_text_100k", Format::Text),
        ("render_openmetrics_100k", Format::OpenMetrics),
        ("render_protobuf_100k", Format::Protobuf),
    ] {
        let mut kept = encode::FamilyRenderings::new(format);
        let len = agg.read(|families| kept.render(families)).len() as u64;
        g.throughput(Throughput::Bytes(len));
        g.bench_function(name, |b| {
            b.iter_batched(
                || agg.apply(touch.clone()).unwrap(),
                |_| black_box(agg.read(|families| kept.render(families))),
                // One touch before each render: with batches, every setup
                // of a batch would run first and only the batch's first
                // render would be cold.
                BatchSize::PerIteration,
            )
        });
    }
    // What a scrape holds the shard locks for: taking every family's view
    // (a reference count per page of series); rendering happens after.
    g.bench_function("view_100k", |b| {
        b.iter(|| black_box(agg.read(|families| families.len())))
    });
    // Text again, nothing changed: every family copied from its kept
    // rendering.
    let mut kept = encode::FamilyRenderings::new(Format::Text);
    g.bench_function("render_text_100k_cached", |b| {
        b.iter(|| black_box(agg.read(|families| kept.render(families))))
    });
    // What writing a snapshot costs (outside the locks): every family streamed, series
    // by series, into the file (here a sink); no copy of the aggregate.
    g.throughput(Throughput::Elements(agg.series_count() as u64));
    // Touched first, as the renders: no kept rendering to copy.
    g.bench_function("snapshot_stream_100k", |b| {
        b.iter_batched(
            || agg.apply(touch.clone()).unwrap(),
            |_| {
                agg.read(|families| {
                    let (mut sink, mut scratch) = (std::io::sink(), Vec::new());
                    for (name, f) in families {
                        encode::protobuf::write_family_streaming(name, f, &mut sink, &mut scratch)
                            .unwrap();
                    }
                })
            },
            BatchSize::PerIteration,
        )
    });
    // The first view after series arrived out of label order sorts them
    // (here 100k series of one family in ten pushes, each push's series
    // falling between the others' in label order); later views find the
    // order done.
    let late = |p: usize| {
        let mut b = String::from("# TYPE late_total counter\n");
        for i in p * 10_000..(p + 1) * 10_000 {
            b.push_str(&format!(
                "late_total{{method=\"GET\",path=\"/api/v1/items/{i}\",status=\"200\",instance=\"host-{}\"}} 1\n",
                i % 17
            ));
        }
        parse(&b)
    };
    let out_of_order: Vec<Push> = (0..10).map(late).collect();
    let pushed_out_of_order = || {
        let a = aggregator();
        for p in &out_of_order {
            a.apply(p.clone()).unwrap();
        }
        a
    };
    g.bench_function("first_view_100k_out_of_order", |b| {
        b.iter_batched_ref(
            pushed_out_of_order,
            |a| black_box(a.read(|families| families.len())),
            BatchSize::PerIteration,
        )
    });
    // A scrape after 10k new series fell between 100k ordered ones: the
    // tail is sorted and merged into the order.
    let ten_more = late(10);
    g.bench_function("view_10k_out_of_order_into_100k", |b| {
        b.iter_batched_ref(
            || {
                let a = pushed_out_of_order();
                a.read(|families| families.len());
                a.apply(ten_more.clone()).unwrap();
                a
            },
            |a| black_box(a.read(|families| families.len())),
            BatchSize::PerIteration,
        )
    });
    // What a scrape costs the gateway (no socket): the same 100k series in
    // a gateway, one family pushed to before each scrape, through the
    // scrape cache; plain text shares the kept renderings, gzip compresses
    // them family by family.
    let gw = prom_aggregation_gateway::Gateway::new(prom_aggregation_gateway::Config {
        max_series: 10_000_000,
        ..Default::default()
    });
    gw.aggregator().apply(parse(&text_body)).unwrap();
    let other = parse("# TYPE other_total counter\nother_total 1\n");
    for (name, gzip) in [
        ("scrape_text_100k_one_family_changed", false),
        ("scrape_gzip_100k_one_family_changed", true),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || gw.aggregator().apply(other.clone()).unwrap(),
                |_| {
                    black_box(
                        gw.scrape_cache()
                            .render(gw.aggregator(), Format::Text, gzip),
                    )
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();

    // One remote-write send of the 100k series (taken and encoded, no
    // socket): each protocol, and the series identities kept between
    // sends. `bench/remote_write.sh` measures a whole send at 1M.
    let mut g = c.benchmark_group("remote_write");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(agg.series_count() as u64));
    let sent = agg.read(rw::series_ids);
    for (name, protocol) in [
        ("encode_100k_v1", rw::Protocol::V1),
        ("encode_100k_v2", rw::Protocol::V2),
    ] {
        let opts = rw::Options {
            protocol,
            max_samples: 5000,
            replica: Some(("gateway_replica", "pod-0")),
            timestamp_ms: 1_700_000_000_000,
        };
        g.bench_function(name, |b| {
            b.iter(|| black_box(agg.read(|families| rw::encode(families, &[], &sent, opts))))
        });
    }
    g.bench_function("series_ids_100k", |b| {
        b.iter(|| black_box(agg.read(rw::series_ids)))
    });
    g.finish();

    levels(c);
}

/// Levels: an OTLP export of 100k gauges pushed again (each producer's
/// level, through the rules stage as the gateway routes it), and 100k
/// text gauges of 17 instances under a `latest` rule that folds the
/// instances away, against the same under `last` (no sources kept).
fn levels(c: &mut Criterion) {
    let mut g = c.benchmark_group("levels");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(SERIES as u64));
    let route_apply = |agg: &Aggregator, rules: &RuleSet, mut push: Push| {
        let routes = rules.route(&mut push);
        agg.apply_routed(push, &routes, rules, || Ok(())).unwrap();
    };
    let gauges = otlp_points(SERIES, 10, true);
    let decode = || {
        let labels = LabelRules::default();
        let opts = Options {
            labels: &labels,
            gauge_nan_ok: false,
            spend: None,
            windows: None,
        };
        let settings = otlp::Settings {
            gauge_mode: GaugeMode::Sum,
            promote: &[],
        };
        otlp::request(&gauges, &opts, &settings).expect("valid OTLP")
    };
    let built_in = RuleSet::default();
    let agg = aggregator();
    route_apply(&agg, &built_in, decode());
    g.bench_function("otlp_gauges_route_apply_100k", |b| {
        b.iter(|| route_apply(&agg, &built_in, decode()))
    });
    let mut text = String::new();
    for f in 0..10 {
        text.push_str(&format!("# TYPE depth_{f} gauge\n"));
        for i in 0..SERIES / 10 {
            text.push_str(&format!(
                "depth_{f}{{path=\"/api/v1/items/{}\",instance=\"host-{}\"}} {i}\n",
                i / 17,
                i % 17
            ));
        }
    }
    for (name, mode) in [
        ("last_rule_route_apply_100k", "last"),
        (
            "latest_rule_route_apply_100k",
            "latest\n    source_labels: [instance]",
        ),
    ] {
        let yaml = format!(
            "rules:\n  - match: '{{__name__=~\"depth_.*\"}}'\n    mode: {mode}\n    without: [instance]\n"
        );
        let rules = RuleSet::new(
            rules::parse("bench.yml", &yaml, |_| Default::default()).expect("valid rules"),
        );
        let agg = aggregator();
        route_apply(&agg, &rules, parse(&text));
        g.bench_function(name, |b| {
            b.iter_batched(
                || parse(&text),
                |push| route_apply(&agg, &rules, push),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
