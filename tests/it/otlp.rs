//! OTLP metrics in (`POST /v1/metrics`, and OTLP/gRPC
//! `MetricsService/Export`): exports built here with the OTLP protobuf
//! types, and real producers (the Python and Node OpenTelemetry SDKs with
//! their OTLP/HTTP and OTLP/gRPC exporters, in delta and in cumulative
//! temporality) summed across instances.

use std::process::Command;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    self as m, AggregationTemporality, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::interop::run_client;
use crate::support::{Gateway, sample_value};

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One producer's export of a delta counter `jobs.done` of `v`.
pub fn export(instance: &str, v: f64, temporality: AggregationTemporality) -> Vec<u8> {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "worker"),
                    kv("service.instance.id", instance),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![m::Metric {
                    name: "jobs.done".into(),
                    description: "Jobs done.".into(),
                    data: Some(Data::Sum(m::Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("queue", "q1")],
                            value: Some(number_data_point::Value::AsInt(v as i64)),
                            ..Default::default()
                        }],
                        aggregation_temporality: temporality as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// One producer's export of a gauge `connections` at level `v`.
pub fn gauge_export(instance: &str, v: f64) -> Vec<u8> {
    let body = export(instance, v, AggregationTemporality::Delta);
    let mut req = ExportMetricsServiceRequest::decode(&body[..]).unwrap();
    let metric = &mut req.resource_metrics[0].scope_metrics[0].metrics[0];
    let Some(Data::Sum(sum)) = metric.data.take() else {
        unreachable!()
    };
    metric.name = "connections".into();
    metric.data = Some(Data::Gauge(m::Gauge {
        data_points: sum.data_points,
    }));
    req.encode_to_vec()
}

pub async fn post(gw: &Gateway, body: Vec<u8>, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = gw
        .client
        .post(format!("{}/v1/metrics", gw.base))
        .header("content-type", "application/x-protobuf")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

const SERIES: &str = "jobs_done_total{job=\"worker\",queue=\"q1\"}";

#[tokio::test]
async fn deltas_from_many_producers_add_up() {
    let gw = Gateway::start().await;
    for (i, v) in [3.0, 4.0, 5.0].into_iter().enumerate() {
        let r = post(
            &gw,
            export(&format!("pod-{i}"), v, AggregationTemporality::Delta),
            &[],
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/x-protobuf");
        assert!(
            r.bytes().await.unwrap().is_empty(),
            "an empty ExportMetricsServiceResponse"
        );
    }
    // gzip, as the SDKs send with compression on.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(
        &mut gz,
        &export("pod-9", 8.0, AggregationTemporality::Delta),
    )
    .unwrap();
    let r = post(&gw, gz.finish().unwrap(), &[("content-encoding", "gzip")]).await;
    assert_eq!(r.status(), 200);
    let scrape = gw.scrape().await;
    assert_eq!(sample_value(&scrape, SERIES), Some(20.0), "{scrape}");
    assert!(
        scrape.contains("# HELP jobs_done_total Jobs done.\n"),
        "{scrape}"
    );
    // The producers' identity is not a label.
    assert!(!scrape.contains("pod-"), "{scrape}");
    // The same as OTLP/JSON, answered in JSON.
    let json = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"worker"}}]},
        "scopeMetrics":[{"metrics":[{"name":"jobs.done","sum":{"isMonotonic":true,"aggregationTemporality":1,
        "dataPoints":[{"asInt":"5","attributes":[{"key":"queue","value":{"stringValue":"q1"}}]}]}}]}]}]}"#;
    let r = gw
        .client
        .post(format!("{}/v1/metrics", gw.base))
        .header("content-type", "application/json")
        .body(json)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), "{}");
    assert_eq!(sample_value(&gw.scrape().await, SERIES), Some(25.0));
}

/// `export` of a delta over `[start, time]` (nanoseconds), with a second
/// point of `bad` (a negative count, refused) when given.
fn delta_window(instance: &str, v: f64, start: u64, time: u64, bad: Option<&str>) -> Vec<u8> {
    let body = export(instance, v, AggregationTemporality::Delta);
    let mut req = ExportMetricsServiceRequest::decode(&body[..]).unwrap();
    let metric = &mut req.resource_metrics[0].scope_metrics[0].metrics[0];
    let Some(Data::Sum(sum)) = &mut metric.data else {
        unreachable!()
    };
    sum.data_points[0].start_time_unix_nano = start;
    sum.data_points[0].time_unix_nano = time;
    if let Some(queue) = bad {
        let mut p = sum.data_points[0].clone();
        p.attributes = vec![kv("queue", queue)];
        p.value = Some(number_data_point::Value::AsDouble(-1.0));
        sum.data_points.push(p);
    }
    req.encode_to_vec()
}

#[tokio::test]
async fn a_delta_window_sent_again_counts_once() {
    let gw = Gateway::start().await;
    let s = 1_700_000_000_000_000_000u64;
    let sec = 1_000_000_000u64;
    let value = || async { sample_value(&gw.scrape().await, SERIES) };
    let first = delta_window("pod-0", 3.0, s, s + sec, None);
    assert_eq!(post(&gw, first.clone(), &[]).await.status(), 200);
    // The same bytes again (a retry after a lost answer): success, and
    // nothing added.
    assert_eq!(post(&gw, first, &[]).await.status(), 200);
    assert_eq!(value().await, Some(3.0));
    // An overlapping window of the same producer is one too; another
    // producer's same window is not.
    let overlap = delta_window("pod-0", 9.0, s + sec / 2, s + 3 * sec / 2, None);
    assert_eq!(post(&gw, overlap, &[]).await.status(), 200);
    assert_eq!(value().await, Some(3.0));
    let other = delta_window("pod-1", 2.0, s, s + sec, None);
    assert_eq!(post(&gw, other, &[]).await.status(), 200);
    assert_eq!(value().await, Some(5.0));
    // The next window adds.
    let next = delta_window("pod-0", 4.0, s + sec, s + 2 * sec, None);
    assert_eq!(post(&gw, next, &[]).await.status(), 200);
    assert_eq!(value().await, Some(9.0));
    // A refused export claims nothing: its window, sent again without the
    // bad point, is counted.
    let refused = delta_window("pod-0", 5.0, s + 2 * sec, s + 3 * sec, Some("q2"));
    assert_eq!(post(&gw, refused, &[]).await.status(), 400);
    assert_eq!(value().await, Some(9.0));
    let fixed = delta_window("pod-0", 5.0, s + 2 * sec, s + 3 * sec, None);
    assert_eq!(post(&gw, fixed.clone(), &[]).await.status(), 200);
    assert_eq!(value().await, Some(14.0));
    // Over gRPC the same.
    let mut client = opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient::new(
        crate::support::channel(&gw.base).await,
    );
    let req = ExportMetricsServiceRequest::decode(&fixed[..]).unwrap();
    client.export(req).await.unwrap();
    assert_eq!(value().await, Some(14.0));
    assert_eq!(gw.self_metric("pag_otlp_delta_duplicates_total").await, 3.0);
    assert_eq!(gw.self_metric("pag_otlp_delta_windows").await, 2.0);
}

#[tokio::test]
async fn refused_exports_change_nothing_and_say_why() {
    let gw = Gateway::start().await;
    post(&gw, export("a", 2.0, AggregationTemporality::Delta), &[]).await;
    let before = gw.scrape().await;
    // An unset temporality is refused, garbage is refused: 400, a
    // google.rpc.Status naming the reason, nothing applied.
    for (body, want) in [
        (
            export("a", 9.0, AggregationTemporality::Unspecified),
            "temporality 0 is not DELTA or CUMULATIVE",
        ),
        (b"\x0a\x05abc".to_vec(), "not a valid OTLP"),
    ] {
        let r = post(&gw, body, &[]).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "application/x-protobuf");
        let raw = r.bytes().await.unwrap();
        let mut code = 0;
        let mut message = String::new();
        let mut rd = &raw[..];
        while !rd.is_empty() {
            let (tag, wire) = prost::encoding::decode_key(&mut rd).unwrap();
            match tag {
                1 => code = prost::encoding::decode_varint(&mut rd).unwrap(),
                2 => {
                    let n = prost::encoding::decode_varint(&mut rd).unwrap() as usize;
                    message = String::from_utf8(rd[..n].to_vec()).unwrap();
                    rd = &rd[n..];
                }
                _ => prost::encoding::skip_field(wire, tag, &mut rd, Default::default()).unwrap(),
            }
        }
        assert_eq!(code, 3, "INVALID_ARGUMENT");
        assert!(message.contains(want), "{message}");
    }
    // OTLP/JSON refusals come as a JSON Status.
    let r = gw
        .client
        .post(format!("{}/v1/metrics", gw.base))
        .header("content-type", "application/json")
        .body(r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","sum":{"isMonotonic":true,"aggregationTemporality":2,"dataPoints":[{"asInt":"-1"}]}}]}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let status: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(status["code"], 3);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("must be a count"),
        "{status}"
    );
    for bad in ["{", "[]", r#"{"resourceMetrics":[{"scopeMetrics":7}]}"#] {
        let r = gw
            .client
            .post(format!("{}/v1/metrics", gw.base))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    // Another media type: 415 with the reason.
    let r = gw
        .client
        .post(format!("{}/v1/metrics", gw.base))
        .header("content-type", "text/plain")
        .body("x 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("application/json"));
    assert_eq!(gw.scrape().await, before);
}

#[tokio::test]
async fn cumulative_exports_add_what_each_producer_grew_by() {
    let gw = Gateway::start().await;
    let cumulative = AggregationTemporality::Cumulative;
    // Running totals of two producers, interleaved; producer a's last
    // total went down: a restart, its new total counts in full.
    let mut want = 0.0;
    for (pod, total, adds) in [
        ("a", 3.0, 3.0),
        ("b", 4.0, 4.0),
        ("a", 5.0, 2.0),
        ("b", 4.0, 0.0),
        ("a", 1.0, 1.0),
    ] {
        let r = post(&gw, export(pod, total, cumulative), &[]).await;
        assert_eq!(r.status(), 200);
        want += adds;
        assert_eq!(
            sample_value(&gw.scrape().await, SERIES),
            Some(want),
            "after {pod} {total}"
        );
    }
    // A delta of another producer adds beside them.
    post(&gw, export("c", 2.0, AggregationTemporality::Delta), &[]).await;
    assert_eq!(sample_value(&gw.scrape().await, SERIES), Some(want + 2.0));
    // The built-in rule's self-metrics count the producers tracked.
    assert_eq!(
        gw.self_metric("pag_rule_sources{rule=\"otlp_cumulative\"}")
            .await,
        2.0
    );
}

#[tokio::test]
async fn exports_need_push_credentials() {
    let gw = Gateway::start_with(crate::support::with_sender(Default::default())).await;
    let r = post(&gw, export("a", 1.0, AggregationTemporality::Delta), &[]).await;
    assert_eq!(r.status(), 401);
    let r = gw
        .client
        .post(format!("{}/v1/metrics", gw.base))
        .basic_auth("sender", Some("s3cret"))
        .header("content-type", "application/x-protobuf")
        .body(export("a", 1.0, AggregationTemporality::Delta))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Runs each producer to completion, adds up what they say they recorded,
/// and checks the gateway's sums against it, the exponential histogram as
/// a native one.
async fn producers_sum_exactly(gw: &Gateway, producers: Vec<(&str, Command)>) {
    let mut totals = serde_json::Map::new();
    for (what, mut cmd) in producers {
        let out = run_client(what, &mut cmd);
        let recorded: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        for (k, v) in recorded.as_object().unwrap() {
            let sum = totals.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0) + v.as_f64().unwrap();
            totals.insert(k.clone(), sum.into());
        }
    }
    let t = |k: &str| totals[k].as_f64().unwrap();
    let scrape = gw.scrape().await;
    let v = |s: &str| sample_value(&scrape, s).unwrap_or_else(|| panic!("{s} in:\n{scrape}"));
    assert_eq!(
        v("orders_total{job=\"checkout\",method=\"GET\"}"),
        t("orders_get")
    );
    assert_eq!(
        v("orders_total{job=\"checkout\",method=\"POST\"}"),
        t("orders_post")
    );
    assert_eq!(
        v("checkout_latency_seconds_count{job=\"checkout\"}"),
        t("latency_count")
    );
    let sum = v("checkout_latency_seconds_sum{job=\"checkout\"}");
    assert!(
        (sum - t("latency_sum")).abs() < 1e-9,
        "{sum} vs {}",
        t("latency_sum")
    );
    assert_eq!(
        v("checkout_latency_seconds_bucket{job=\"checkout\",le=\"+Inf\"}"),
        t("latency_count")
    );
    // The UpDownCounter is each producer's level: the levels add up
    // across producers (cumulative), as their changes do (delta); an
    // export does not add its level again.
    assert_eq!(
        v("connections_open{job=\"checkout\"}"),
        t("connections_level")
    );
    // The exponential histogram is native: in the protobuf scrape.
    let families = crate::support::scrape_protobuf(gw).await;
    let payload = families
        .iter()
        .find(|f| f.name() == "payload_size_bytes")
        .expect("payload_size_bytes");
    let h = payload.metric[0].histogram.as_ref().unwrap();
    assert_eq!(h.sample_count() as f64, t("payload_count"));
    assert!(h.schema.is_some(), "a native histogram");
}

/// Python SDK producers (`tests/interop/python/otlp_metrics.py`), one per
/// `(seed, transport)`, in `temporality` (`delta` or `cumulative`).
fn python_producers(
    addr: std::net::SocketAddr,
    each: &[(u32, &str)],
    temporality: &str,
) -> Vec<(&'static str, Command)> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/python/otlp_metrics.py");
    each.iter()
        .map(|(seed, transport)| {
            let mut cmd = Command::new(crate::interop::python::python());
            cmd.arg(&script).args([
                addr.to_string(),
                format!("producer-{seed}"),
                seed.to_string(),
                transport.to_string(),
                temporality.to_string(),
            ]);
            ("python OTLP producer", cmd)
        })
        .collect()
}

/// Node SDK producers (`tests/interop/node/otlp_metrics.js`), one per
/// `(seed, encoding)`, in `temporality`.
fn node_producers(
    addr: std::net::SocketAddr,
    each: &[(u32, &str)],
    temporality: &str,
) -> Vec<(&'static str, Command)> {
    each.iter()
        .map(|(seed, encoding)| {
            let mut cmd = crate::interop::node("otlp_metrics.js");
            cmd.args([
                addr.to_string(),
                format!("node-{seed}"),
                seed.to_string(),
                encoding.to_string(),
                temporality.to_string(),
            ]);
            ("node OTLP producer", cmd)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python with opentelemetry-sdk and the OTLP http and grpc exporters (PAG_PYTHON); run by scripts/test.sh"]
async fn python_sdk_producers_sum_exactly() {
    let gw = Gateway::start().await;
    // Four producers: OTLP/HTTP and OTLP/gRPC exporters into one sum.
    let each = [(0, "http"), (1, "grpc"), (2, "http"), (3, "grpc")];
    producers_sum_exactly(&gw, python_producers(gw.addr, &each, "delta")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python with opentelemetry-sdk and the OTLP http and grpc exporters (PAG_PYTHON); run by scripts/test.sh"]
async fn python_sdk_cumulative_producers_sum_exactly() {
    let gw = Gateway::start().await;
    // The SDK's default temporality: each export holds the running totals,
    // the exponential histogram's scale going down as its range grows.
    let each = [(0, "http"), (1, "grpc"), (2, "http")];
    producers_sum_exactly(&gw, python_producers(gw.addr, &each, "cumulative")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node with the npm packages of tests/interop/node; run by scripts/test.sh"]
async fn node_sdk_cumulative_producers_sum_exactly() {
    let gw = Gateway::start().await;
    let each = [(0, "proto"), (1, "json")];
    producers_sum_exactly(&gw, node_producers(gw.addr, &each, "cumulative")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node with the npm packages of tests/interop/node, and prometheus; run by scripts/test.sh"]
async fn node_sdk_producers_sum_exactly_and_prometheus_scrapes_them() {
    let gw = Gateway::start().await;
    // OTLP/HTTP protobuf and OTLP/HTTP JSON exporters into one sum.
    let each = [(0, "proto"), (1, "json"), (2, "json")];
    producers_sum_exactly(&gw, node_producers(gw.addr, &each, "delta")).await;
    let scrape = gw.scrape().await;
    let count = sample_value(&scrape, "checkout_latency_seconds_count{job=\"checkout\"}").unwrap();
    let orders = sample_value(&scrape, "orders_total{job=\"checkout\",method=\"GET\"}").unwrap();
    // Debian's Prometheus scrapes the result: protobuf with native
    // histograms on, then the default negotiation (OpenMetrics text).
    for native in [true, false] {
        let prom = crate::interop::prometheus::Prometheus::start(&gw.base, native).await;
        assert_eq!(prom.value(r#"orders_total{method="GET"}"#).await, orders);
        assert_eq!(prom.value("checkout_latency_seconds_count").await, count);
        if native {
            let n = prom.value("histogram_count(payload_size_bytes)").await;
            assert_eq!(n, count, "the exponential histogram, as a native one");
        }
    }
}

/// A cumulative producer's last total is in the snapshot: after a restart
/// its next export adds only what it grew by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cumulative_producers_survive_a_restart_from_the_snapshot() {
    let (_dir, snap) = crate::durability::snapshot_path("otlp-cumulative");
    let args = [
        "--persistence-file",
        snap.as_str(),
        "--persistence-interval",
        "1h",
    ];
    let cumulative = AggregationTemporality::Cumulative;
    let send = |base: String, pod: &'static str, total: f64| async move {
        let r = reqwest::Client::new()
            .post(format!("{base}/v1/metrics"))
            .header("content-type", "application/x-protobuf")
            .body(export(pod, total, cumulative))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    let mut gw = crate::support::Process::start(&args).await;
    send(gw.base.clone(), "a", 5.0).await;
    send(gw.base.clone(), "b", 7.0).await;
    gw.signal("TERM");
    assert!(gw.wait().await.success());
    let gw = crate::support::Process::start(&args).await;
    assert_eq!(sample_value(&gw.scrape().await, SERIES), Some(12.0));
    send(gw.base.clone(), "a", 6.0).await;
    assert_eq!(
        sample_value(&gw.scrape().await, SERIES),
        Some(13.0),
        "only a's increase of 1"
    );
}

/// Points that make no series (flagged "no recorded value") cannot make
/// the decoder reserve memory nobody pays for: the room made for a
/// metric's points is charged to the request's budget first.
#[tokio::test]
async fn empty_points_reserve_nothing_unpaid() {
    let gw = Gateway::start_with(prom_aggregation_gateway::Config {
        max_memory: 6 << 20,
        ..Default::default()
    })
    .await;
    // Eight metrics of 100k points each holding only `flags: 1`.
    let point = [0x0a, 0x02, 0x40, 0x01];
    let mut body = Vec::new();
    let mut scope = Vec::new();
    for m in 0..8u8 {
        let mut sum = Vec::new();
        for _ in 0..100_000 {
            sum.extend_from_slice(&point);
        }
        sum.extend_from_slice(&[0x10, 0x01, 0x18, 0x01]); // delta, monotonic
        let mut metric = vec![0x0a, 0x01, b'a' + m, 0x3a];
        prost::encoding::encode_varint(sum.len() as u64, &mut metric);
        metric.extend_from_slice(&sum);
        scope.push(0x12);
        prost::encoding::encode_varint(metric.len() as u64, &mut scope);
        scope.extend_from_slice(&metric);
    }
    let mut resource = vec![0x12];
    prost::encoding::encode_varint(scope.len() as u64, &mut resource);
    resource.extend_from_slice(&scope);
    body.push(0x0a);
    prost::encoding::encode_varint(resource.len() as u64, &mut body);
    body.extend_from_slice(&resource);
    let r = post(&gw, body, &[]).await;
    assert_eq!(
        r.status(),
        429,
        "{}",
        String::from_utf8_lossy(&r.bytes().await.unwrap())
    );
    // Nothing held afterwards, and a real export goes through.
    let r = post(&gw, export("a", 2.0, AggregationTemporality::Delta), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(sample_value(&gw.scrape().await, SERIES), Some(2.0));
}

/// A proxy in front of the gateway that loses the answer to the first
/// copy of every request: it forwards the request, then answers 503, as a
/// load balancer timing out or a connection dropped after the gateway
/// applied a push does. The exporter then sends the same bytes again.
async fn answer_losing_proxy(gateway: std::net::SocketAddr) -> std::net::SocketAddr {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<std::collections::HashSet<Vec<u8>>>> = Arc::default();
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let (seen, client) = (seen.clone(), client.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = to_bytes(body, 64 << 20).await.unwrap().to_vec();
            let mut forward = client
                .post(format!("http://{gateway}{}", parts.uri.path()))
                .body(body.clone());
            for name in ["content-type", "content-encoding"] {
                if let Some(v) = parts.headers.get(name) {
                    forward = forward.header(name, v.as_bytes());
                }
            }
            let answer = forward.send().await.unwrap();
            let status = answer.status().as_u16();
            let bytes = answer.bytes().await.unwrap();
            if seen.lock().unwrap().insert(body) {
                return (StatusCode::SERVICE_UNAVAILABLE, Vec::new());
            }
            (StatusCode::from_u16(status).unwrap(), bytes.to_vec())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Python and Node SDK producers exporting deltas through a proxy that
/// loses the first answer to each export: each SDK sends each export again
/// (the same bytes), and the gateway counts each window once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python with opentelemetry-sdk and the OTLP http exporter (PAG_PYTHON), and the npm packages of tests/interop/node; run by scripts/test.sh"]
async fn sdk_delta_exports_sent_again_count_once() {
    for node in [false, true] {
        let gw = Gateway::start().await;
        let proxy = answer_losing_proxy(gw.addr).await;
        let producers = if node {
            node_producers(proxy, &[(1, "proto"), (2, "json")], "delta")
        } else {
            python_producers(proxy, &[(1, "http"), (2, "http")], "delta")
        };
        producers_sum_exactly(&gw, producers).await;
        let duplicates = gw.self_metric("pag_otlp_delta_duplicates_total").await;
        assert!(duplicates > 0.0, "no export was sent again (node: {node})");
    }
}
