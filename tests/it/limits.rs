//! Overload and slowness: the in-flight cap sheds at once (503 /
//! UNAVAILABLE) and the request timeout answers 408 / DEADLINE_EXCEEDED,
//! in each caller's protocol.

use std::time::{Duration, Instant};

use prom_aggregation_gateway::Config;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::grpc::{counter, request};
use crate::support::Gateway;

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
    let _held = hold_slot(&gw).await;
    // Poll (with a deadline) until the held request occupies the slot.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = gw.request("GET", "/-/healthy", &[], "").await;
        if r.status == 503 {
            assert_eq!(r.text(), "gateway overloaded, retry later\n");
            break;
        }
        assert!(Instant::now() < deadline, "slot never taken");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let err = client
        .push(request(vec![counter("x_total", &[], 1.0)], &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
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
