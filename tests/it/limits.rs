//! Limits: the in-flight cap sheds at once (503 / UNAVAILABLE), the
//! request timeout answers 408 / DEADLINE_EXCEEDED in each caller's
//! protocol, slow headers are cut off, and per-series and per-push limits
//! refuse with a reason.

use std::time::Duration;

use prom_aggregation_gateway::Config;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::{Gateway, eventually};
use crate::support::{counter, request};

/// Opens a push whose body never completes, holding one in-flight slot.
async fn hold_slot(gw: &Gateway) -> TcpStream {
    let addr = gw.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nc 1\n")
        .await
        .unwrap();
    s
}

#[tokio::test]
async fn overload_is_shed_in_each_protocol() {
    let config = Config {
        max_in_flight: 1,
        ..Config::default()
    };
    let gw = Gateway::start_with(config).await;
    let mut client = gw.grpc().await;
    // A gRPC push stream that never ends holds the push slot (an HTTP
    // push whose body never completes does not: it takes its slot once
    // the body is in).
    let mut holder = gw.grpc().await;
    let held = tokio::spawn(async move {
        let _ = holder
            .push_stream(tokio_stream::pending::<crate::support::PushRequest>())
            .await;
    });
    // Until the held push occupies the push slot.
    let gw_ref = &gw;
    let r = eventually(
        "the push slot taken",
        Duration::from_secs(10),
        || async move {
            let r = gw_ref.request("POST", "/metrics", &[], "p 1\n").await;
            (r.status == 503).then_some(r)
        },
    )
    .await;
    assert_eq!(r.text(), "gateway overloaded, retry later\n");
    let err = client
        .push(request(vec![counter("x_total", &[], 1.0)], &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    held.abort();
}

#[tokio::test]
async fn slow_requests_time_out_in_each_protocol() {
    let config = Config {
        request_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let gw = Gateway::start_with(config).await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut s = hold_slot(&gw).await;
    let mut reply = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut s, &mut reply)
        .await
        .ok();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.ends_with("request timed out\n"), "{reply}");
    // gRPC: a stream that never ends.
    let mut client = crate::support::grpc_client(&format!("http://{addr}")).await;
    let stream = tokio_stream::iter(vec![request(vec![counter("t_total", &[], 1.0)], &[])])
        .chain(tokio_stream::pending());
    let err = client.push_stream(stream).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let config = Config {
        header_read_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let gw = Gateway::start_with(config).await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /metrics HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // The server closes (or answers 408) instead of waiting forever.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "connection with unfinished headers was held open"
    );
    let reply = String::from_utf8_lossy(&buf);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );
}

/// On a manual clock: no real seconds pass.
#[tokio::test]
async fn per_series_and_per_push_limits() {
    let config = Config {
        limits: prom_aggregation_gateway::model::Limits {
            max_labels: 3,
            max_name_length: 20,
            max_label_value_length: 10,
            max_series_per_push: 5,
            ..Default::default()
        },
        ..Config::default()
    };
    let gw = Gateway::start_with(config).await;
    gw.push_ok("/metrics", "ok 1\n").await;
    let before = gw.scrape().await;
    let many: String = (0..6).map(|i| format!("s{{i=\"{i}\"}} 1\n")).collect();
    let cases = [
        (
            "/metrics",
            "x{a=\"1\",b=\"2\",c=\"3\",d=\"4\"} 1\n".to_string(),
            400,
            "4 labels, over the limit of 3",
        ),
        (
            "/metrics",
            "x{a=\"12345678901\"} 1\n".to_string(),
            400,
            "11-byte value",
        ),
        (
            "/metrics",
            "x{abcdefghijklmnopqrstu=\"1\"} 1\n".to_string(),
            400,
            "over the limit of 20",
        ),
        (
            "/metrics",
            "abcdefghijklmnopqrstuvwxyz 1\n".to_string(),
            400,
            "metric name",
        ),
        (
            "/metrics/job/12345678901",
            "x 1\n".to_string(),
            400,
            "11-byte value",
        ),
        (
            "/metrics",
            many,
            413,
            "push holds 6 series, over the limit of 5",
        ),
    ];
    for (path, body, status, reason) in cases {
        let r = gw.push(path, &body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.text().contains(reason), "{body}: {}", r.text());
        assert_eq!(gw.scrape().await, before);
    }
}
