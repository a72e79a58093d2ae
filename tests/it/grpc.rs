//! The gRPC push service (contract §3) and protobuf over HTTP, on the same port
//! as everything else, through the same middleware.

use std::io::Write;

use prom_aggregation_gateway::Config;
use tonic::Code;

use crate::support::{
    Gateway, PushRequest, assert_text_eq, counter, delimited, histogram, pb, request,
};

use crate::support::ACCEPT_PROTOBUF as PROTO_CT;

#[tokio::test]
async fn unary_and_streaming_push_add_up() {
    let gw = Gateway::start().await;
    let mut client = gw.grpc().await;
    let r = client
        .push(request(
            vec![
                counter("jobs_total", &[("queue", "a")], 2.0),
                histogram("lat", &[(0.5, 1), (1.0, 2)], 3, 2.5),
            ],
            &[("job", "svc")],
        ))
        .await
        .unwrap();
    assert_eq!(r.into_inner().series, 2);
    let stream = tokio_stream::iter(vec![
        request(
            vec![counter("jobs_total", &[("queue", "a")], 3.0)],
            &[("job", "svc")],
        ),
        request(
            vec![histogram("lat", &[(1.0, 1)], 1, 0.5)],
            &[("job", "svc")],
        ),
    ]);
    let r = client.push_stream(stream).await.unwrap();
    assert_eq!(r.into_inner().series, 2);
    assert_text_eq(
        &gw.scrape().await,
        "# HELP jobs_total jobs_total help\n# TYPE jobs_total counter\njobs_total{job=\"svc\",queue=\"a\"} 5\n# TYPE lat histogram\nlat_bucket{job=\"svc\",le=\"0.5\"} 1\nlat_bucket{job=\"svc\",le=\"1\"} 3\nlat_bucket{job=\"svc\",le=\"+Inf\"} 4\nlat_sum{job=\"svc\"} 3\nlat_count{job=\"svc\"} 4\n",
        "grpc sums",
    );
}

#[tokio::test]
async fn every_error_class_over_grpc_leaves_the_aggregate_unchanged() {
    let config = Config {
        max_series: 3,
        max_body_bytes: 4096,
        ..Config::default()
    };
    let gw = Gateway::start_with(config).await;
    let mut client = gw.grpc().await;
    client
        .push(request(vec![counter("c_total", &[], 1.0)], &[]))
        .await
        .unwrap();
    let before = gw.scrape().await;
    let mut gauge = counter("c_total", &[], 1.0);
    gauge.r#type = Some(pb::MetricType::Gauge as i32);
    gauge.metric[0].counter = None;
    gauge.metric[0].gauge = Some(pb::Gauge { value: Some(1.0) });
    let big: Vec<_> = (0..200)
        .map(|i| counter(&format!("big_{i}_total"), &[("i", "x")], 1.0))
        .collect();
    let many: Vec<_> = (0..3)
        .map(|i| counter(&format!("n_{i}_total"), &[], 1.0))
        .collect();
    let cases: Vec<(&str, PushRequest, Code, &str)> = vec![
        (
            "bad metric name",
            request(vec![counter("1bad", &[], 1.0)], &[]),
            Code::InvalidArgument,
            "invalid metric name",
        ),
        (
            "NaN counter",
            request(vec![counter("ok_total", &[], f64::NAN)], &[]),
            Code::InvalidArgument,
            "NaN",
        ),
        (
            "negative counter",
            request(vec![counter("ok_total", &[], -1.0)], &[]),
            Code::InvalidArgument,
            "negative",
        ),
        (
            "type conflict",
            request(vec![counter("x_total", &[], 1.0), gauge], &[]),
            Code::InvalidArgument,
            "pushed as gauge but stored as counter",
        ),
        (
            "bad label",
            request(vec![counter("ok_total", &[("a-b", "1")], 1.0)], &[]),
            Code::InvalidArgument,
            "invalid label name",
        ),
        (
            "bad request label",
            request(vec![counter("ok_total", &[], 1.0)], &[("1x", "1")]),
            Code::InvalidArgument,
            "invalid label name",
        ),
        (
            "decreasing buckets",
            request(vec![histogram("h", &[(1.0, 5), (2.0, 1)], 5, 1.0)], &[]),
            Code::InvalidArgument,
            "buckets decrease",
        ),
        (
            "duplicate series",
            request(
                vec![counter("d_total", &[], 1.0), counter("d_total", &[], 1.0)],
                &[],
            ),
            Code::InvalidArgument,
            "given twice",
        ),
        (
            "message too large",
            request(big, &[]),
            Code::ResourceExhausted,
            "",
        ),
        (
            "too many series",
            request(many, &[]),
            Code::ResourceExhausted,
            "limit of 3 series",
        ),
    ];
    for (name, req, code, fragment) in cases {
        let err = client.push(req).await.expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err:?}");
        assert!(
            err.message().contains(fragment),
            "{name}: {:?}",
            err.message()
        );
        assert_text_eq(&gw.scrape().await, &before, name);
    }
    // In a stream, a bad message fails the call; the messages before it stay
    // applied (each message is all or nothing), the bad one leaves nothing.
    let stream = tokio_stream::iter(vec![
        request(vec![counter("c_total", &[], 1.0)], &[]),
        request(
            vec![
                counter("c_total", &[], 1.0),
                counter("bad_total", &[], -5.0),
            ],
            &[],
        ),
    ]);
    let err = client.push_stream(stream).await.expect_err("bad stream");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_text_eq(
        &gw.scrape().await,
        "# HELP c_total c_total help\n# TYPE c_total counter\nc_total 2\n",
        "stream",
    );
}

#[tokio::test]
async fn protobuf_over_http_with_every_encoding() {
    let gw = Gateway::start().await;
    let body = delimited(&[
        counter("p_total", &[("k", "v")], 1.0),
        histogram("h", &[(1.0, 1)], 2, 3.0),
    ]);
    let r = gw
        .request(
            "POST",
            "/metrics/job/p",
            &[("content-type", PROTO_CT)],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    let zst = zstd::encode_all(&body[..], 3).unwrap();
    let mut framed = snap::write::FrameEncoder::new(Vec::new());
    framed.write_all(&body).unwrap();
    let framed = framed.into_inner().unwrap();
    let block = snap::raw::Encoder::new().compress_vec(&body).unwrap();
    for (enc, b) in [
        ("gzip", gz.finish().unwrap()),
        ("zstd", zst),
        ("snappy", framed),
        ("snappy", block),
    ] {
        let r = gw
            .request(
                "PUT",
                "/metrics/job/p",
                &[("content-type", PROTO_CT), ("content-encoding", enc)],
                b,
            )
            .await;
        assert_eq!(r.status, 200, "{enc}: {}", r.text());
    }
    assert_text_eq(
        &gw.scrape().await,
        "# TYPE h histogram\nh_bucket{job=\"p\",le=\"1\"} 5\nh_bucket{job=\"p\",le=\"+Inf\"} 10\nh_sum{job=\"p\"} 15\nh_count{job=\"p\"} 10\n# HELP p_total p_total help\n# TYPE p_total counter\np_total{job=\"p\",k=\"v\"} 5\n",
        "protobuf pushes",
    );
    // Truncated protobuf and a zstd bomb: refused, nothing applied.
    let before = gw.scrape().await;
    let r = gw
        .request(
            "POST",
            "/metrics",
            &[("content-type", PROTO_CT)],
            body[..body.len() - 3].to_vec(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("protobuf message"), "{}", r.text());
    let bomb = zstd::encode_all(&vec![0u8; 64 << 20][..], 19).unwrap();
    assert!(bomb.len() < 64 << 10);
    let r = gw
        .request(
            "POST",
            "/metrics",
            &[("content-type", PROTO_CT), ("content-encoding", "zstd")],
            bomb,
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_text_eq(&gw.scrape().await, &before, "refused protobuf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_grpc_and_http_pushes_are_exact() {
    const SENDERS: usize = 16;
    const PUSHES: usize = 200;
    let gw = std::sync::Arc::new(Gateway::start().await);
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = gw.grpc().await;
            for i in 0..PUSHES {
                match (s + i) % 3 {
                    0 => {
                        client
                            .push(request(vec![counter("mixed_total", &[], 1.0), histogram("mh", &[(1.0, 1)], 1, 1.0)], &[]))
                            .await
                            .unwrap();
                    }
                    1 => {
                        gw.push_ok("/metrics", "# TYPE mixed_total counter\nmixed_total 1\n# TYPE mh histogram\nmh_bucket{le=\"1\"} 1\nmh_bucket{le=\"+Inf\"} 1\nmh_sum 1\nmh_count 1\n").await;
                    }
                    _ => {
                        let body = delimited(&[counter("mixed_total", &[], 1.0), histogram("mh", &[(1.0, 1)], 1, 1.0)]);
                        let r = gw.request("POST", "/metrics", &[("content-type", PROTO_CT)], body).await;
                        assert_eq!(r.status, 200, "{}", r.text());
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = SENDERS * PUSHES;
    assert_text_eq(
        &gw.scrape().await,
        &format!(
            "# TYPE mh histogram\nmh_bucket{{le=\"1\"}} {n}\nmh_bucket{{le=\"+Inf\"}} {n}\nmh_sum {n}\nmh_count {n}\n# HELP mixed_total mixed_total help\n# TYPE mixed_total counter\nmixed_total {n}\n"
        ),
        "mixed protocols",
    );
}

#[tokio::test]
async fn health_service_answers() {
    let gw = Gateway::start().await;
    let channel = crate::support::channel(&gw.base).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let r = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "aggregation_gateway.v1.AggregationGateway".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        r.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // An unknown HTTP path on the shared port is still a plain 404.
    assert_eq!(gw.request("GET", "/nope", &[], "").await.status, 404);
}

#[tokio::test]
async fn separate_grpc_port_serves_the_same_aggregate() {
    let gw = crate::support::Gateway::start_on(
        Config::default(),
        crate::support::Listen {
            grpc: true,
            ..Default::default()
        },
    )
    .await;
    let mut client = crate::support::grpc_client(gw.grpc_base.as_deref().unwrap()).await;
    client
        .push(request(vec![counter("sep_total", &[], 4.0)], &[]))
        .await
        .unwrap();
    let text = gw.scrape().await;
    assert!(text.contains("sep_total 4\n"), "{text}");
    gw.stop().await.unwrap();
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let gw = Gateway::start().await;
    let channel = crate::support::channel(&gw.base).await;
    let mut client = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected reflection answer: {msg:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"aggregation_gateway.v1.AggregationGateway".to_string()),
        "{names:?}"
    );
}
