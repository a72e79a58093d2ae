//! Bounded: no small request may cost much memory, CPU or connections.
//! Each class of resource, with small limits so every test runs in
//! seconds; assertions are on statuses, reasons and sizes, never on speed.

use std::io::Write;
use std::time::{Duration, Instant};

use prom_aggregation_gateway::Config;
use prom_aggregation_gateway::model::Limits;
use prom_aggregation_gateway_client::pb::io::prometheus::client as pb;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;

use crate::support::{Gateway, eventually, sample_value};
use crate::support::{counter, delimited, histogram, request};

/// A gateway with these per-series and per-push limits.
async fn start_limited(limits: Limits) -> Gateway {
    Gateway::start_with(Config {
        limits,
        ..Config::default()
    })
    .await
}

/// Pushes families as delimited protobuf over HTTP.
async fn push_protobuf(gw: &Gateway, families: &[pb::MetricFamily]) -> crate::support::Reply {
    gw.request(
        "POST",
        "/metrics",
        &[("content-type", PROTOBUF)],
        delimited(families),
    )
    .await
}

use crate::support::ACCEPT_PROTOBUF as PROTOBUF;

async fn self_metric(gw: &Gateway, name: &str) -> f64 {
    let m = gw.request("GET", "/-/metrics", &[], "").await.text();
    sample_value(&m, name).unwrap_or_else(|| panic!("{name} missing:\n{m}"))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Past `--max-memory` a push is refused whole (429 / RESOURCE_EXHAUSTED)
/// with the reason; what is stored stays as it was, and what is charged
/// never passes the limit.
#[tokio::test]
async fn the_byte_budget_refuses_pushes_whole() {
    let gw = Gateway::start_with(Config {
        max_memory: 4 << 20,
        ..Config::default()
    })
    .await;
    assert_eq!(
        self_metric(&gw, "pag_memory_limit_bytes").await,
        (4 << 20) as f64
    );
    let mut refused = None;
    for batch in 0..200 {
        let body: String = (0..1000)
            .map(|i| {
                format!(
                    "m{{batch=\"{batch}\",i=\"{i}\",pad=\"{}\"}} 1\n",
                    "x".repeat(64)
                )
            })
            .collect();
        let before = gw.request("GET", "/metrics", &[], "").await.text();
        let r = gw.push("/metrics", &body).await;
        if r.status != 200 {
            assert_eq!(r.status, 429, "{}", r.text());
            assert!(r.text().contains("--max-memory"), "{}", r.text());
            assert_eq!(gw.request("GET", "/metrics", &[], "").await.text(), before);
            refused = Some(batch);
            break;
        }
    }
    assert!(refused.is_some(), "4 MiB never filled");
    let used = self_metric(&gw, "pag_memory_bytes").await;
    assert!(used <= (4 << 20) as f64, "{used}");
    // Pushes that add nothing still land.
    gw.push_ok(
        "/metrics",
        &format!("m{{batch=\"0\",i=\"0\",pad=\"{}\"}} 1\n", "x".repeat(64)),
    )
    .await;
    // gRPC is refused the same way.
    let big: Vec<_> = (0..5000)
        .map(|i| {
            counter(
                "g_total",
                &[("i", &i.to_string()), ("pad", &"y".repeat(64))],
                1.0,
            )
        })
        .collect();
    let err = gw.grpc().await.push(request(big, &[])).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::ResourceExhausted | Code::InvalidArgument),
        "{err:?}"
    );
    // Wiping gives the bytes back.
    assert_eq!(
        gw.request("PUT", "/api/v1/admin/wipe", &[], "")
            .await
            .status,
        202
    );
    assert!(self_metric(&gw, "pag_memory_bytes").await < (1 << 20) as f64);
}

/// A gzip bomb inflates only as far as the budget allows.
#[tokio::test]
async fn compressed_bombs_stop_at_the_budget() {
    let gw = Gateway::start_with(Config {
        max_memory: 2 << 20,
        max_body_bytes: 64 << 20,
        ..Config::default()
    })
    .await;
    let bomb = gzip(&vec![b'#'; 32 << 20]);
    assert!(bomb.len() < 64 << 10);
    let r = gw
        .request("POST", "/metrics", &[("content-encoding", "gzip")], bomb)
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("--max-memory"), "{}", r.text());
    assert!(self_metric(&gw, "pag_memory_bytes").await < (1 << 20) as f64);
}

/// Native histograms past `--max-native-buckets` lose resolution, not
/// data; one that cannot fit even at the coarsest schema is refused, and
/// a message claiming more buckets than that could ever bring in is
/// refused before it is decoded.
#[tokio::test]
async fn native_histograms_are_held_to_the_bucket_limit() {
    let gw = start_limited(Limits {
        max_native_buckets: 8,
        ..Default::default()
    })
    .await;
    let native = |schema: i32, offset: i32, n: u32| pb::MetricFamily {
        name: Some("lat".into()),
        help: None,
        r#type: Some(pb::MetricType::Histogram as i32),
        metric: vec![pb::Metric {
            histogram: Some(pb::Histogram {
                sample_count: Some(u64::from(n)),
                sample_sum: Some(1.0),
                schema: Some(schema),
                zero_threshold: Some(0.0),
                positive_span: vec![pb::BucketSpan {
                    offset: Some(offset),
                    length: Some(n),
                }],
                // One observation per bucket: deltas 1, 0, 0...
                positive_delta: (0..n).map(|i| i64::from(i == 0)).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        unit: None,
    };
    // 64 buckets at schema 3 become at most 8, at a lower schema.
    let r = push_protobuf(&gw, &[native(3, 1, 64)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let scraped = gw
        .request("GET", "/metrics", &[("accept", PROTOBUF)], "")
        .await;
    let mut buf = &scraped.body[..];
    let fam = pb::MetricFamily::decode_length_delimited(&mut buf).unwrap();
    let h = fam.metric[0].histogram.clone().unwrap();
    let buckets: u32 = h.positive_span.iter().map(|s| s.length()).sum();
    assert!(buckets <= 8, "{buckets} buckets kept");
    assert!(h.schema() < 3);
    assert_eq!(h.sample_count(), 64);
    // Buckets too far apart for any schema: refused, nothing changed.
    let before = gw.request("GET", "/metrics", &[], "").await.text();
    let far = pb::MetricFamily {
        metric: vec![pb::Metric {
            histogram: Some(pb::Histogram {
                sample_count: Some(9),
                schema: Some(0),
                zero_threshold: Some(0.0),
                positive_span: (0..9)
                    .map(|i| pb::BucketSpan {
                        offset: Some(if i == 0 { 0 } else { 10_000 }),
                        length: Some(1),
                    })
                    .collect(),
                positive_delta: vec![1, 0, 0, 0, 0, 0, 0, 0, 0],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..native(0, 0, 0)
    };
    let r = push_protobuf(&gw, &[far]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("over the limit of 8"), "{}", r.text());
    // More buckets on the wire than lowering could ever bring within 8.
    let r = push_protobuf(&gw, &[native(0, 1, 100_000)]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("--max-native-buckets"), "{}", r.text());
    assert_eq!(gw.request("GET", "/metrics", &[], "").await.text(), before);
}

/// The distinct classic bounds of a family are bounded: a push that would
/// take them past `--max-buckets` is refused whole (429), and a message
/// with more buckets than that is refused before it is decoded.
#[tokio::test]
async fn classic_bucket_unions_are_bounded() {
    let gw = start_limited(Limits {
        max_buckets: 4,
        ..Default::default()
    })
    .await;
    let h = |job: &str, les: &[f64]| {
        let mut body = "# TYPE h histogram\n".to_string();
        for le in les {
            body.push_str(&format!("h_bucket{{job=\"{job}\",le=\"{le}\"}} 0\n"));
        }
        body.push_str(&format!(
            "h_bucket{{job=\"{job}\",le=\"+Inf\"}} 0\nh_count{{job=\"{job}\"}} 0\n"
        ));
        body
    };
    gw.push_ok("/metrics", &h("a", &[1.0, 2.0])).await;
    gw.push_ok("/metrics", &h("b", &[2.0, 3.0])).await;
    let before = gw.scrape().await;
    let r = gw.push("/metrics", &h("c", &[4.0, 5.0])).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("--max-buckets"), "{}", r.text());
    let r = gw.push("/metrics", &h("a", &[7.0])).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(gw.scrape().await, before);
    // One series with more buckets than the limit: refused as invalid.
    let r = gw
        .push("/metrics", &h("d", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Over protobuf, counted on the wire before anything is decoded.
    let empty_buckets = pb::MetricFamily {
        metric: vec![pb::Metric {
            histogram: Some(pb::Histogram {
                sample_count: Some(0),
                bucket: vec![pb::Bucket::default(); 200_000],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..histogram("h", &[], 0, 0.0)
    };
    let r = push_protobuf(&gw, &[empty_buckets]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("200000 buckets"), "{}", r.text());
    assert_eq!(gw.scrape().await, before);
}

/// Path and gRPC request labels count toward `--max-labels` and the bytes
/// of a series' labels (`--max-label-bytes`) exactly as body labels do.
#[tokio::test]
async fn path_and_request_labels_count_toward_the_label_limits() {
    let gw = start_limited(Limits {
        max_labels: 3,
        max_label_bytes: 64,
        ..Default::default()
    })
    .await;
    gw.push_ok("/metrics/job/j/x/1", "m{a=\"1\"} 1\n").await;
    let r = gw
        .push("/metrics/job/j/x/1", "m{a=\"1\",b=\"2\"} 1\n")
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("4 labels with the path's"),
        "{}",
        r.text()
    );
    let long = "v".repeat(60);
    let r = gw
        .push(&format!("/metrics/job/{long}"), "m{a=\"1\"} 1\n")
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("--max-label-bytes"), "{}", r.text());
    let err = gw
        .grpc()
        .await
        .push(request(
            vec![counter("c_total", &[("a", "1"), ("b", "2")], 1.0)],
            &[("job", "j"), ("x", "1")],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("with the path's"), "{err:?}");
    // More request labels than a series may hold: refused as read.
    let five: Vec<(String, String)> = (0..5).map(|i| (format!("l{i}"), "v".into())).collect();
    let five: Vec<(&str, &str)> = five.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let err = gw
        .grpc()
        .await
        .push(request(vec![counter("c_total", &[], 1.0)], &five))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("--max-labels"), "{err:?}");
    // A path longer than any whose labels could fit: refused before it is
    // split into labels.
    let long_path = format!("/metrics{}", "/a/b".repeat(10_000));
    let r = gw.push(&long_path, "m 1\n").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("--max-label-bytes"), "{}", r.text());
}

/// A push may be held as at most 10 bytes per byte sent plus 1 MiB: path
/// labels copied into thousands of tiny series, or thousands of tiny
/// families, are refused (413) before they are built.
#[tokio::test]
async fn pushes_cannot_be_held_as_much_more_than_was_sent() {
    let gw = Gateway::start().await;
    let tiny: String = (0..5000).map(|i| format!("a{{i=\"{i}\"}} 1\n")).collect();
    gw.push_ok("/metrics/job/short", &tiny).await;
    let before = gw.scrape().await;
    let long = "v".repeat(4000);
    let r = gw.push(&format!("/metrics/job/{long}"), &tiny).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("10 per byte sent"), "{}", r.text());
    let families: String = (0..100_000).map(|i| format!("f{i} 1\n")).collect();
    let r = gw.push("/metrics", &families).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(gw.scrape().await, before);
    assert!(self_metric(&gw, "pag_memory_bytes").await < (4 << 20) as f64);
}

/// A protobuf family of a million empty metrics is refused at the first,
/// having allocated nothing per metric.
#[tokio::test]
async fn tiny_metrics_cost_nothing_before_they_are_checked() {
    let gw = Gateway::start().await;
    let fam = pb::MetricFamily {
        metric: vec![pb::Metric::default(); 1_000_000],
        ..counter("c_total", &[], 1.0)
    };
    let r = push_protobuf(&gw, &[fam]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(self_metric(&gw, "pag_memory_bytes").await < (1 << 20) as f64);
}

async fn get_health(addr: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /-/healthy HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .ok()?
        .unwrap_or(0);
    buf[..n].starts_with(b"HTTP/1.1 200").then_some(s)
}

/// Whether the server closes the connection within 10 s (whatever it
/// sends first, such as HTTP/2 settings, is read and dropped).
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// At `--max-connections`, a new connection closes the one idle longest
/// (so a health probe still gets in); with none idle it is closed at once.
#[tokio::test]
async fn connections_past_the_cap_make_room_or_are_refused() {
    let gw = Gateway::start_with(Config {
        max_connections: 3,
        body_read_timeout: Duration::from_secs(30),
        ..Config::default()
    })
    .await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(get_health(&addr).await.expect("served"));
    }
    // Full of idle connections: the newcomer is served, the idlest closed.
    let _newcomer = get_health(&addr).await.expect("served by making room");
    assert!(
        closed_by_server(&mut idle[0]).await,
        "the idlest was not closed"
    );
    drop(idle);
    // Full of busy connections (bodies still arriving): refused at once.
    let mut busy = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nc 1\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            // Still reading the body: busy.
            Err(_) => busy.push(s),
            // Closed without an answer: refused.
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => panic!("answered: {}", String::from_utf8_lossy(&buf)),
        }
        assert!(busy.len() <= 3, "more than --max-connections served");
        assert!(Instant::now() < deadline);
    }
    assert!(!busy.is_empty());
}

/// A connection idle for `--idle-timeout` is closed; a body that does not
/// arrive within `--body-read-timeout` is answered 408.
#[tokio::test]
async fn idle_connections_and_slow_bodies_are_cut_off() {
    let gw = Gateway::start_with(Config {
        idle_timeout: Duration::from_millis(500),
        body_read_timeout: Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut s = get_health(&addr).await.expect("served");
    assert!(
        closed_by_server(&mut s).await,
        "idle connection never closed"
    );
    // A connection that never sends a request is idle too.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    assert!(
        closed_by_server(&mut silent).await,
        "silent connection never closed"
    );
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nc 1\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
}

/// Protocol detection and the first headers are bounded by
/// `--header-read-timeout` even when `--idle-timeout` is long.
#[tokio::test]
async fn a_silent_connection_gets_the_header_deadline() {
    let gw = Gateway::start_with(Config {
        idle_timeout: Duration::from_secs(3600),
        header_read_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    assert!(
        closed_by_server(&mut silent).await,
        "silent connection never closed"
    );
    // An HTTP/2 preface and nothing more: closed too.
    let mut h2 = TcpStream::connect(&addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut h2).await,
        "h2 connection never closed"
    );
}

/// A request head that never ends is refused at 64 KiB (431, connection
/// closed) rather than buffered to hyper's default of ~400 KiB a
/// connection; a head just under the limit is served.
#[tokio::test]
async fn request_heads_are_held_to_64_kib() {
    let gw = Gateway::start_with(Config {
        header_read_timeout: Duration::from_secs(60),
        ..Config::default()
    })
    .await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let pad = "p".repeat(60 << 10);
    s.write_all(format!("GET /-/healthy HTTP/1.1\r\nhost: x\r\nx-pad: {pad}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    // 100 KiB of one header value, never finished: refused well before the
    // 60 s header deadline.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let mut head = b"POST /metrics HTTP/1.1\r\nhost: x\r\nx-pad: ".to_vec();
    head.resize(100 << 10, b'p');
    let _ = s.write_all(&head).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    gw.push_ok("/metrics", "after_total 1\n").await;
}

/// Clients that take every turn to stream a large scrape and then read
/// nothing (here over HTTP/2 granting no flow-control window, which stalls
/// a stream without stalling the socket, so the socket's write timeout
/// never fires) give their turns up to a scrape that waits: it is answered
/// in full within seconds, not after --write-timeout or --request-timeout.
/// Their connection is wound down (HTTP/2: others' streams may share it)
/// and closed once --write-timeout has passed.
#[tokio::test]
async fn stalled_scrapes_give_their_turn_to_waiting_ones() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};

    let gw = Gateway::start_with(Config {
        // Every scrape over 10k series streams.
        scrape_keep_bytes: 0,
        write_timeout: Duration::from_secs(8),
        request_timeout: Duration::from_secs(120),
        ..Config::default()
    })
    .await;
    // About 2 MiB of text: more than the chunks a stream queues.
    let body: String = (0..20_000)
        .map(|i| format!("stall_total{{i=\"{i}\",pad=\"{}\"}} 1\n", "p".repeat(60)))
        .collect();
    gw.push_ok("/metrics", &body).await;

    let stalled = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .http2_initial_stream_window_size(0)
        .build_http::<Empty<Bytes>>();
    let mut held = Vec::new();
    for _ in 0..prom_aggregation_gateway::encode::STREAMS {
        let req = hyper::Request::get(format!("{}/metrics", gw.base))
            .body(Empty::new())
            .unwrap();
        let res = tokio::time::timeout(Duration::from_secs(10), stalled.request(req))
            .await
            .expect("a stalled scrape got no turn")
            .unwrap();
        assert_eq!(res.status(), 200);
        held.push(res);
    }
    // Every turn is held by a client reading nothing.
    let started = Instant::now();
    let scrape = tokio::time::timeout(Duration::from_secs(20), gw.scrape())
        .await
        .expect("the waiting scrape was not answered");
    assert!(
        scrape.contains("stall_total{i=\"19999\""),
        "scrape cut short"
    );
    // Before the stalled streams' own --write-timeout.
    assert!(started.elapsed() < Duration::from_secs(6));
    // A stream that gave up ends in an error, never as a shorter scrape,
    // once its connection is closed: nothing is left waiting on the
    // client's window.
    let cut = tokio::time::timeout(
        Duration::from_secs(20),
        held.remove(0).into_body().collect(),
    )
    .await
    .expect("a stalled stream was left open");
    assert!(cut.is_err(), "a stalled stream ended as if whole");
}

/// Pushes whose bodies trickle hold a connection and their bytes, not a
/// slot: ready pushes, scrapes, status and health all go on (1,032
/// connections each sending one byte of a body held every push slot, and
/// pushes got 503 for as long as they liked).
#[tokio::test]
async fn trickling_pushes_hold_no_slot() {
    let gw = Gateway::start_with(Config {
        max_in_flight: 8,
        ..Config::default()
    })
    .await;
    gw.push_ok("/metrics", "up_total 1\n").await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut tricklers = Vec::new();
    for path in ["/metrics", "/v1/metrics"] {
        for _ in 0..20 {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: 1000\r\n\r\nc"
            );
            s.write_all(head.as_bytes()).await.unwrap();
            tricklers.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.push_ok("/metrics", "p_total 1\n").await;
    for path in ["/-/healthy", "/-/ready", "/metrics", "/api/v1/status"] {
        assert_eq!(gw.request("GET", path, &[], "").await.status, 200, "{path}");
    }
    drop(tricklers);
}

/// A client that never reads its scrape holds a shared handle on the
/// rendering, and its connection is closed once the write stalls past
/// `--write-timeout`.
#[tokio::test]
async fn a_scrape_nobody_reads_is_cut_off() {
    let gw = Gateway::start_with(Config {
        write_timeout: Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    // About 20 MB of text: more than the socket buffers hold.
    for batch in 0..20 {
        let body: String = (0..10_000)
            .map(|i| {
                format!(
                    "big{{b=\"{batch}\",i=\"{i}\",pad=\"{}\"}} 1\n",
                    "p".repeat(64)
                )
            })
            .collect();
        gw.push_ok("/metrics", &body).await;
    }
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // Read nothing for a while, then drain: the server must have given up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "connection never closed");
    assert!(
        total < 20_000_000,
        "the whole scrape was sent ({total} bytes)"
    );
    // Others are still served.
    assert_eq!(gw.request("GET", "/-/healthy", &[], "").await.status, 200);
}

/// tonic inflates a compressed gRPC message before the service sees it, so
/// a compressed push reserves `--max-body-bytes` from the budget while it
/// is read: with less than that free it is refused (RESOURCE_EXHAUSTED)
/// before anything is inflated; with room, the same push lands.
#[tokio::test]
async fn compressed_grpc_pushes_reserve_what_they_may_inflate_to() {
    use tonic::codec::CompressionEncoding;
    let one = || request(vec![counter("z_total", &[], 1.0)], &[]);
    let small = Gateway::start_with(Config {
        max_memory: 4 << 20,
        max_body_bytes: 8 << 20,
        ..Config::default()
    })
    .await;
    let err = small
        .grpc()
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .push(one())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("--max-memory"), "{err:?}");
    small.grpc().await.push(one()).await.unwrap();
    let roomy = Gateway::start_with(Config {
        max_memory: 64 << 20,
        max_body_bytes: 8 << 20,
        ..Config::default()
    })
    .await;
    roomy
        .grpc()
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .push(one())
        .await
        .unwrap();
    assert!(roomy.scrape().await.contains("z_total 1\n"));
}

/// The bytes of a gRPC message still arriving are reserved as they come,
/// as an HTTP body's are (tonic gathers a message whole before the service
/// sees it): calls each holding most of a large message cannot together
/// hold more than `--max-memory`, and what a call held is given back when
/// it ends.
#[tokio::test]
async fn grpc_messages_still_arriving_are_reserved() {
    use bytes::Bytes;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use tokio_stream::wrappers::ReceiverStream;
    type Sent = Result<Frame<Bytes>, std::convert::Infallible>;

    let gw = Gateway::start_with(Config {
        max_memory: 8 << 20,
        max_body_bytes: 6 << 20,
        ..Config::default()
    })
    .await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<StreamBody<ReceiverStream<Sent>>>();
    // Opens a PushStream call and sends the first 4 MiB of a 5 MiB message.
    let open = || {
        let (tx, rx) = tokio::sync::mpsc::channel::<Sent>(4);
        let req = hyper::Request::post(format!(
            "{}/aggregation_gateway.v1.AggregationGateway/PushStream",
            gw.base
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(StreamBody::new(ReceiverStream::new(rx)))
        .unwrap();
        let answer = tokio::spawn(client.request(req));
        let sender = tx.clone();
        tokio::spawn(async move {
            let mut prefix = vec![0u8];
            prefix.extend_from_slice(&(5u32 << 20).to_be_bytes());
            let _ = sender.send(Ok(Frame::data(Bytes::from(prefix)))).await;
            for _ in 0..64 {
                let chunk = Bytes::from(vec![0x0a; 64 << 10]);
                if sender.send(Ok(Frame::data(chunk))).await.is_err() {
                    return;
                }
            }
        });
        (tx, answer)
    };
    let used = || async { self_metric(&gw, "pag_memory_bytes").await };

    let (first, _first_answer) = open();
    eventually(
        "the first call's 4 MiB reserved",
        Duration::from_secs(10),
        || async { (used().await >= (4 << 20) as f64).then_some(()) },
    )
    .await;
    // A second call's bytes do not fit beside the first's: refused while
    // it sends, with the budget's reason.
    let (_second, second_answer) = open();
    let answer = tokio::time::timeout(Duration::from_secs(10), second_answer)
        .await
        .expect("the second call was never refused")
        .unwrap()
        .unwrap();
    let status = answer
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(status.as_deref(), Some("8"), "{:?}", answer.headers());
    let message = answer.headers()["grpc-message"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(message.contains("max-memory"), "{message}");
    assert!(used().await <= (8 << 20) as f64);
    // The first call ends unfinished: its bytes are given back.
    drop(first);
    eventually(
        "the first call's bytes given back",
        Duration::from_secs(10),
        || async { (used().await < (1 << 20) as f64).then_some(()) },
    )
    .await;
    gw.grpc()
        .await
        .push(request(vec![counter("after_total", &[], 1.0)], &[]))
        .await
        .unwrap();
}
