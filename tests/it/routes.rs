//! Every route the server answers × content types × credentials × HTTP/1.1
//! and h2c: the status each combination gets, and that the aggregate changed
//! exactly when the request was allowed to change it.
//!
//! The rows come from the gateway's own route table (`routes::MAIN`, which
//! the HTTP router is built from); what each row should answer is decided
//! here by an exhaustive `match` on its handler, so a route added later
//! without an expectation does not compile, and a gRPC method served
//! without a row in the table fails `every_grpc_method_has_a_route`.

use axum::http::Method;
use base64::Engine;
use prom_aggregation_gateway::Config;
use prom_aggregation_gateway::config::Secret;
use prom_aggregation_gateway::routes::{self, Body, Handler, Route, Scope};
use prom_aggregation_gateway_client::pb::aggregation_gateway::v1::PushRequest;
use prom_aggregation_gateway_client::pb::io::prometheus::client as pb;
use prost::Message;

use crate::support::Gateway;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ct {
    None,
    Text,
    Protobuf,
    Otlp,
    Grpc,
    GrpcProto,
    Garbage,
}

impl Ct {
    const ALL: [Ct; 7] = [
        Ct::None,
        Ct::Text,
        Ct::Protobuf,
        Ct::Otlp,
        Ct::Grpc,
        Ct::GrpcProto,
        Ct::Garbage,
    ];

    pub(crate) fn header(self) -> Option<&'static str> {
        match self {
            Ct::None => None,
            Ct::Text => Some("text/plain; version=0.0.4; charset=utf-8"),
            Ct::Protobuf => Some(
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
            ),
            Ct::Otlp => Some("application/x-protobuf"),
            Ct::Grpc => Some("application/grpc"),
            Ct::GrpcProto => Some("application/grpc+proto"),
            Ct::Garbage => Some("application/x-garbage;;="),
        }
    }

    fn grpc(self) -> bool {
        matches!(self, Ct::Grpc | Ct::GrpcProto)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creds {
    None,
    Wrong,
    Push,
    Admin,
}

impl Creds {
    const ALL: [Creds; 4] = [Creds::None, Creds::Wrong, Creds::Push, Creds::Admin];

    fn header(self) -> Option<String> {
        let (u, p) = match self {
            Creds::None => return None,
            Creds::Wrong => ("pusher", "nope"),
            Creds::Push => ("pusher", "p"),
            Creds::Admin => ("admin", "a"),
        };
        Some(basic(u, p))
    }
}

pub(crate) fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// What a request should get.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: u16,
    /// The `grpc-status` header, when the answer is a gRPC status.
    grpc_status: Option<&'static str>,
    /// Whether the aggregate changes.
    changes: bool,
}

fn refused(ct: Ct, http: u16, grpc: &'static str) -> Outcome {
    if ct.grpc() {
        Outcome {
            status: 200,
            grpc_status: Some(grpc),
            changes: false,
        }
    } else {
        Outcome {
            status: http,
            grpc_status: None,
            changes: false,
        }
    }
}

fn expected(route: &Route, ct: Ct, creds: Creds) -> Outcome {
    let allowed = match route.scope {
        Scope::Open => true,
        Scope::Push => creds == Creds::Push,
        Scope::Admin => creds == Creds::Admin,
    };
    if !allowed {
        return refused(ct, 401, "16");
    }
    let fits = match route.body {
        Body::Grpc => ct.grpc(),
        Body::None => !ct.grpc(),
        Body::Exposition => matches!(ct, Ct::None | Ct::Text | Ct::Protobuf),
        Body::Otlp => ct == Ct::Otlp,
    };
    if !fits {
        return refused(ct, 415, "3");
    }
    let (status, changes) = match route.handler {
        Handler::Scrape
        | Handler::Status
        | Handler::Families
        | Handler::Series
        | Handler::Cardinality
        | Handler::Groups
        | Handler::Rejections
        | Handler::Page
        | Handler::Script
        | Handler::Style
        | Handler::Icon
        | Handler::SelfMetrics
        | Handler::Healthy
        | Handler::Ready => (200, false),
        Handler::Push | Handler::OtlpMetrics => (200, true),
        Handler::Delete | Handler::Wipe => (202, true),
        Handler::GrpcPush | Handler::GrpcPushStream | Handler::GrpcOtlpExport => (200, true),
        Handler::GrpcHealth | Handler::GrpcReflection => (200, false),
    };
    Outcome {
        status,
        // A gRPC success carries its status in trailers, not headers.
        grpc_status: None,
        changes,
    }
}

/// A concrete path for a row.
pub(crate) fn path_of(route: &Route) -> String {
    route.path.replace("{*labels}", "job/probe")
}

/// One length-prefixed gRPC message.
fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn probe_family() -> pb::MetricFamily {
    pb::MetricFamily {
        name: Some("probe_total".into()),
        help: None,
        r#type: Some(pb::MetricType::Counter as i32),
        metric: vec![pb::Metric {
            counter: Some(pb::Counter {
                value: Some(1.0),
                ..Default::default()
            }),
            ..Default::default()
        }],
        unit: None,
    }
}

/// The body a row is sent with, in the form its content type names.
pub(crate) fn body_for(route: &Route, ct: Ct) -> Vec<u8> {
    match route.handler {
        Handler::Push if ct == Ct::Protobuf => probe_family().encode_length_delimited_to_vec(),
        Handler::Push => b"probe_total 1\n".to_vec(),
        Handler::OtlpMetrics => crate::otlp::export(
            "probe",
            1.0,
            opentelemetry_proto::tonic::metrics::v1::AggregationTemporality::Delta,
        ),
        Handler::GrpcPush | Handler::GrpcPushStream => grpc_frame(
            &PushRequest {
                metric_families: vec![probe_family()],
                labels: [("job".to_string(), "probe".to_string())].into(),
            }
            .encode_to_vec(),
        ),
        Handler::GrpcOtlpExport => grpc_frame(&crate::otlp::export(
            "probe",
            1.0,
            opentelemetry_proto::tonic::metrics::v1::AggregationTemporality::Delta,
        )),
        // HealthCheckRequest{} and ServerReflectionRequest{list_services: ""}.
        Handler::GrpcHealth => grpc_frame(&[]),
        Handler::GrpcReflection => grpc_frame(&[0x3a, 0x00]),
        _ => Vec::new(),
    }
}

const BASELINE: &str = "base_total{job=\"probe\"} 1\nother_total{job=\"other\"} 1\n";

async fn reset(gw: &Gateway) -> String {
    let admin = basic("admin", "a");
    let pusher = basic("pusher", "p");
    let r = gw
        .request(
            "PUT",
            "/api/v1/admin/wipe",
            &[("authorization", &admin)],
            "",
        )
        .await;
    assert_eq!(r.status, 202);
    let r = gw
        .request("POST", "/metrics", &[("authorization", &pusher)], BASELINE)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    gw.scrape().await
}

fn gateway_config() -> Config {
    Config {
        auth_users: vec![("pusher".into(), Secret::Plain("p".into()))],
        admin_users: vec![("admin".into(), Secret::Plain("a".into()))],
        ..Config::default()
    }
}

#[tokio::test]
async fn every_route_by_content_type_credentials_and_http_version() {
    let gw = Gateway::start_with(gateway_config()).await;
    let http1 = reqwest::Client::builder().http1_only().build().unwrap();
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut failures = Vec::new();
    let mut cases = 0;
    for route in routes::MAIN {
        for ct in Ct::ALL {
            for creds in Creds::ALL {
                for (version, client) in [("HTTP/1.1", &http1), ("h2c", &h2c)] {
                    let before = reset(&gw).await;
                    let want = expected(route, ct, creds);
                    let mut req = client
                        .request(
                            route.method.clone(),
                            format!("{}{}", gw.base, path_of(route)),
                        )
                        .body(body_for(route, ct));
                    if let Some(v) = ct.header() {
                        req = req.header("content-type", v);
                    }
                    if ct.grpc() {
                        req = req.header("te", "trailers");
                    }
                    if let Some(v) = creds.header() {
                        req = req.header("authorization", v);
                    }
                    let res = req.send().await.expect("request failed");
                    let got_status = res.status().as_u16();
                    let got_grpc = res
                        .headers()
                        .get("grpc-status")
                        .map(|v| v.to_str().unwrap().to_string());
                    // Health's Watch streams for ever: headers are enough.
                    drop(res);
                    let after = gw.scrape().await;
                    cases += 1;
                    let what = format!(
                        "{} {} ct={ct:?} creds={creds:?} {version}",
                        route.method,
                        path_of(route)
                    );
                    if got_status != want.status {
                        failures.push(format!("{what}: status {got_status}, want {}", want.status));
                    }
                    match (want.grpc_status, got_grpc.as_deref()) {
                        (Some(w), g) if g != Some(w) => {
                            failures.push(format!("{what}: grpc-status {g:?}, want {w}"))
                        }
                        (None, Some(g)) if g != "0" => {
                            failures.push(format!("{what}: unexpected grpc-status {g}"))
                        }
                        _ => {}
                    }
                    if (after != before) != want.changes {
                        failures.push(format!(
                            "{what}: aggregate {} (want {})\nbefore:\n{before}after:\n{after}",
                            if after != before {
                                "changed"
                            } else {
                                "unchanged"
                            },
                            if want.changes {
                                "a change"
                            } else {
                                "no change"
                            },
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(cases, routes::MAIN.len() * Ct::ALL.len() * 4 * 2);
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Paths and methods outside the table: refused before any handler, with
/// admin credentials too, in the caller's protocol.
#[tokio::test]
async fn requests_outside_the_table_change_nothing() {
    let gw = Gateway::start_with(gateway_config()).await;
    let admin = basic("admin", "a");
    let before = reset(&gw).await;
    for (method, path, ct, want) in [
        ("GET", "/nothing", None, 404),
        ("POST", "/", None, 405),
        ("PUT", "/api/v1/admin/wipe/", None, 404),
        ("POST", "/api/v1/admin/wipe", None, 405),
        ("GET", "/api/v1/admin/wipe", Some("application/grpc"), 200),
        ("DELETE", "/metrics", None, 405),
        ("DELETE", "/metrics/", None, 405),
        ("GET", "/metrics/job/probe", None, 405),
        (
            "POST",
            "/grpc.health.v1.Health/Nope",
            Some("application/grpc"),
            200,
        ),
        (
            "GET",
            "/aggregation_gateway.v1.AggregationGateway/Push",
            None,
            405,
        ),
        (
            "POST",
            "/aggregation_gateway.v1.AggregationGateway/Wipe",
            Some("application/grpc"),
            200,
        ),
    ] {
        let mut headers = vec![("authorization", admin.as_str())];
        if let Some(ct) = ct {
            headers.push(("content-type", ct));
        }
        let r = gw.request(method, path, &headers, "").await;
        assert_eq!(r.status, want, "{method} {path}: {}", r.text());
        if want == 200 {
            // A gRPC caller hears UNIMPLEMENTED.
            assert_eq!(r.headers["grpc-status"], "12", "{method} {path}");
        }
        assert_eq!(gw.scrape().await, before, "{method} {path}");
    }
}

/// Every method of every gRPC service served has a row in the table.
#[test]
fn every_grpc_method_has_a_route() {
    use prom_aggregation_gateway::transport::grpc::SERVED_DESCRIPTORS;
    let mut methods = 0;
    for set in SERVED_DESCRIPTORS {
        let set = prost_types::FileDescriptorSet::decode(*set).unwrap();
        for file in set.file {
            for service in &file.service {
                for m in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), m.name());
                    let found = routes::find(routes::MAIN, &Method::POST, &path);
                    let route = found
                        .route()
                        .unwrap_or_else(|| panic!("gRPC method {path} has no route"));
                    assert_eq!(route.body, Body::Grpc, "{path}");
                    methods += 1;
                }
            }
        }
    }
    // Push, PushStream, Check, Watch, two reflection versions.
    assert_eq!(methods, 6);
    let grpc_rows = routes::MAIN.iter().filter(|r| r.body == Body::Grpc).count();
    // OTLP's MetricsService/Export is served without reflection.
    assert_eq!(
        grpc_rows,
        methods + 1,
        "a gRPC row for a method nobody serves"
    );
}

/// A 405 names the methods its path takes (RFC 9110, 15.5.6): clients and
/// proxies read them.
#[tokio::test]
async fn a_405_says_which_methods_the_path_takes() {
    let gw = Gateway::start().await;
    for (method, path, allow) in [
        ("PATCH", "/metrics", "GET, HEAD, POST, PUT"),
        ("DELETE", "/metrics", "GET, HEAD, POST, PUT"),
        ("GET", "/metrics/job/probe", "POST, PUT, DELETE"),
        ("POST", "/", "GET, HEAD"),
        ("POST", "/api/v1/admin/wipe", "PUT"),
        (
            "GET",
            "/aggregation_gateway.v1.AggregationGateway/Push",
            "POST",
        ),
    ] {
        let r = gw.request(method, path, &[], "").await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text());
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
    }
}
