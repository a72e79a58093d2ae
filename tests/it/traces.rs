//! Tracing end to end: the real binary, started with the standard
//! OpenTelemetry variables, exports its spans over OTLP to a real OTLP trace
//! receiver (a tonic server of the collector's TraceService) run by the test;
//! a client's W3C `traceparent` (HTTP header, gRPC metadata) is the parent.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;

use crate::support::{Process, free_port};
use crate::support::{counter, request};

struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(req.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver_with_the_callers_parent() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_addr = receiver.local_addr().unwrap();
    let routes =
        tonic::service::Routes::new(TraceServiceServer::new(Receiver(tx))).into_axum_router();
    tokio::spawn(axum::serve(receiver, routes).into_future());

    let receiver_url = format!("http://{receiver_addr}");
    let gw = Process::start_env(
        free_port(),
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver_url),
            ("OTEL_SERVICE_NAME", "pag-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("RUST_LOG", "info"),
        ],
    )
    .await;
    let base = gw.base.clone();
    let http = reqwest::Client::new();

    let http_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let http_parent = "00f067aa0ba902b7";
    let r = http
        .post(format!("{base}/metrics/job/t"))
        .header("traceparent", format!("00-{http_trace}-{http_parent}-01"))
        .body("# TYPE c counter\nc 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let grpc_trace = "0af7651916cd43dd8448eb211c80319c";
    let grpc_parent = "b7ad6b7169203331";
    let mut client = crate::support::grpc_client(&base).await;
    let mut req = tonic::Request::new(request(vec![counter("g_total", &[], 1.0)], &[]));
    req.metadata_mut().insert(
        "traceparent",
        MetadataValue::try_from(format!("00-{grpc_trace}-{grpc_parent}-01")).unwrap(),
    );
    client.push(req).await.unwrap();

    // Collect spans until both requests' trees are seen (with a deadline).
    let mut spans: Vec<Span> = Vec::new();
    let mut service_names = Vec::new();
    let complete = |spans: &[Span]| {
        [http_trace, grpc_trace].iter().all(|t| {
            let names: Vec<&str> = spans
                .iter()
                .filter(|s| hex(&s.trace_id) == *t)
                .map(|s| s.name.as_str())
                .collect();
            ["decode", "validate", "apply"]
                .iter()
                .all(|n| names.contains(n))
                && names.len() >= 4
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !complete(&spans) {
        let left = deadline.saturating_duration_since(Instant::now());
        let batch = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "spans never arrived; got {:?}",
                    spans
                        .iter()
                        .map(|s| (&s.name, hex(&s.trace_id)))
                        .collect::<Vec<_>>()
                )
            })
            .unwrap();
        for rs in batch.resource_spans {
            if let Some(res) = &rs.resource {
                for kv in &res.attributes {
                    if kv.key == "service.name" {
                        service_names.push(format!("{:?}", kv.value));
                    }
                }
            }
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
    }
    assert!(
        service_names.iter().any(|s| s.contains("pag-under-test")),
        "{service_names:?}"
    );
    for (trace, parent) in [(http_trace, http_parent), (grpc_trace, grpc_parent)] {
        let root = spans
            .iter()
            .find(|s| hex(&s.trace_id) == trace && hex(&s.parent_span_id) == parent)
            .unwrap_or_else(|| panic!("no span of trace {trace} with parent {parent}"));
        // decode, validate and apply hang below the request span.
        for name in ["decode", "validate", "apply"] {
            let child = spans
                .iter()
                .find(|s| hex(&s.trace_id) == trace && s.name == name)
                .unwrap();
            assert_ne!(
                child.parent_span_id,
                Vec::<u8>::new(),
                "{name} has no parent"
            );
        }
        assert_eq!(root.kind, 2, "request span is SERVER kind: {root:?}");
    }
}

/// Request ids: one is made for a request that brings none (32 hex digits,
/// a different one per request) and returned; a caller's own is kept.
#[tokio::test]
async fn request_ids_are_made_or_kept() {
    let gw = crate::support::Gateway::start().await;
    let push = |id: Option<&'static str>| {
        let mut req = gw
            .client
            .post(format!("{}/metrics/job/ids", gw.base))
            .body("ids_total 1\n");
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        req.send()
    };
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .expect("x-request-id answered")
            .to_str()
            .unwrap()
            .to_string()
    };
    let (a, b) = (push(None).await.unwrap(), push(None).await.unwrap());
    assert_eq!(a.status(), 200);
    let (a, b) = (id_of(&a), id_of(&b));
    assert_ne!(a, b);
    for id in [&a, &b] {
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
    let own = push(Some("caller-chosen-1")).await.unwrap();
    assert_eq!(id_of(&own), "caller-chosen-1");
}

/// Without an exporter, log lines carry the request span (method, path,
/// request id) and never the stages' spans, which are for traces only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_the_request_span_only() {
    let mut gw = Process::start_env(free_port(), &[], &[("RUST_LOG", "debug")]).await;
    let r = reqwest::Client::new()
        .post(format!("{}/metrics/job/logs", gw.base))
        .header("x-request-id", "log-id-7")
        .body("logs_total 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.signal("TERM");
    assert!(gw.wait().await.success());
    let log = gw.stderr();
    let answered = log
        .lines()
        .find(|l| l.contains("answered") && l.contains("log-id-7"))
        .unwrap_or_else(|| panic!("no answered line for the request in:\n{log}"));
    assert!(
        answered.contains(r#"request{method=POST path="/metrics/job/logs" request_id="log-id-7"}"#),
        "{answered}"
    );
    for stage in ["decode{", "validate{", "apply{", "encode{"] {
        assert!(!log.contains(stage), "{stage} in the log:\n{log}");
    }
}
