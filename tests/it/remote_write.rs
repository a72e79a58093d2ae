//! The remote-write output against a receiver in the test: a small HTTP
//! server on loopback that decodes what it is sent (1.0 or 2.0), keeps
//! every sample, and answers as each test scripts it (204, 400, 503, 429
//! with `Retry-After`, a 1.0-only receiver). The real engines (Prometheus,
//! VictoriaMetrics) are in `interop/remote_write.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use parking_lot::Mutex;
use prom_aggregation_gateway::Config;
use prom_aggregation_gateway::remote_write::{self, config};
use prom_aggregation_gateway::remote_write_pb::io::prometheus::write::v2 as w2;
use prom_aggregation_gateway::remote_write_pb::prometheus as w1;
use prost::Message;

use crate::support::{Gateway, Process, TempDir, eventually, free_port, refused_start};

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// One received series sample: labels (`__name__` included), value,
/// timestamp.
#[derive(Debug, Clone)]
struct Got {
    labels: BTreeMap<String, String>,
    value: f64,
    timestamp: i64,
    created: i64,
}

/// One request as received.
#[derive(Debug, Clone)]
struct Request {
    at: Instant,
    headers: HeaderMap,
    /// 1 or 2, from the body's content type.
    version: u8,
    samples: Vec<Got>,
}

#[derive(Default)]
struct Script {
    /// Answers given first, in order: status and `Retry-After`.
    answers: VecDeque<(u16, Option<&'static str>)>,
    /// Then this, forever (204 when 0).
    always: u16,
    /// Answer 2.0 requests as a 1.0-only receiver does: 204, no
    /// `X-Prometheus-Remote-Write-Samples-Written`.
    only_v1: bool,
    requests: Vec<Request>,
}

/// A remote-write receiver on `127.0.0.1:<port>`.
struct Receiver {
    url: String,
    script: Arc<Mutex<Script>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(script: Script) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::start_on(listener, script)
    }

    fn start_on(listener: tokio::net::TcpListener, script: Script) -> Receiver {
        let addr: SocketAddr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(script));
        let app = axum::Router::new()
            .route("/api/v1/write", axum::routing::post(receive))
            .with_state(script.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/api/v1/write"),
            script,
            server,
        }
    }

    /// A receiver over TLS with this server config (client certificates
    /// as it asks).
    async fn start_tls(script: Script, tls: rustls::ServerConfig) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Mutex::new(script));
        let app = axum::Router::new()
            .route("/api/v1/write", axum::routing::post(receive))
            .with_state(script.clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client without an accepted certificate fails here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        Receiver {
            url: format!("https://localhost:{port}/api/v1/write"),
            script,
            server,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.script.lock().requests.clone()
    }

    /// The newest value of each series (`name{a="1",...}`, labels sorted),
    /// from 1.0 and 2.0 requests alike; staleness markers included.
    fn latest(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let mut reqs = self.requests();
        reqs.sort_by_key(|r| r.samples.first().map(|s| s.timestamp));
        for r in reqs {
            for s in r.samples {
                out.insert(show(&s.labels), s.value);
            }
        }
        out
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn show(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .expect("snappy block body");
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let version = if content_type.contains("io.prometheus.write.v2.Request") {
        2
    } else {
        1
    };
    let mut samples = Vec::new();
    if version == 1 {
        let req = w1::WriteRequest::decode(&raw[..]).expect("a 1.0 WriteRequest");
        for ts in req.timeseries {
            let labels: BTreeMap<String, String> =
                ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
            for s in ts.samples {
                samples.push(Got {
                    labels: labels.clone(),
                    value: s.value,
                    timestamp: s.timestamp,
                    created: 0,
                });
            }
            for h in ts.histograms {
                let count = match h.count {
                    Some(w1::histogram::Count::CountInt(c)) => c as f64,
                    Some(w1::histogram::Count::CountFloat(c)) => c,
                    None => 0.0,
                };
                samples.push(Got {
                    labels: labels.clone(),
                    value: count,
                    timestamp: h.timestamp,
                    created: 0,
                });
            }
        }
    } else {
        let req = w2::Request::decode(&raw[..]).expect("a 2.0 Request");
        for ts in req.timeseries {
            let labels: BTreeMap<String, String> = ts
                .labels_refs
                .chunks(2)
                .map(|p| {
                    (
                        req.symbols[p[0] as usize].clone(),
                        req.symbols[p[1] as usize].clone(),
                    )
                })
                .collect();
            for s in ts.samples {
                samples.push(Got {
                    labels: labels.clone(),
                    value: s.value,
                    timestamp: s.timestamp,
                    created: ts.created_timestamp,
                });
            }
        }
    }
    let mut script = script.lock();
    let n = samples.len();
    script.requests.push(Request {
        at: Instant::now(),
        headers,
        version,
        samples,
    });
    if version == 2 && script.only_v1 {
        return StatusCode::NO_CONTENT.into_response();
    }
    let (status, retry_after) = script.answers.pop_front().unwrap_or((script.always, None));
    let status = StatusCode::from_u16(if status == 0 { 204 } else { status }).unwrap();
    let mut response = (status, "scripted answer").into_response();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", after.parse().unwrap());
    }
    if version == 2 {
        response.headers_mut().insert(
            "x-prometheus-remote-write-samples-written",
            n.to_string().parse().unwrap(),
        );
    }
    response
}

/// A gateway remote-writing to `targets` every second as replica `r1`.
fn config_for(targets: Vec<config::Target>) -> Config {
    Config {
        remote_write: Some(Arc::new(remote_write::Settings {
            targets,
            interval: Duration::from_secs(1),
            max_samples_per_send: 5000,
            replica: Some(("gateway_replica".into(), "r1".into())),
        })),
        ..Config::default()
    }
}

fn url_target(url: &str) -> Vec<config::Target> {
    config::targets(&[url.to_string()], None).unwrap()
}

/// Waits until the receiver's newest value of `series` is `want`.
async fn wait_value(rx: &Receiver, series: &str, want: f64) {
    eventually(
        &format!("{series} = {want} at the receiver"),
        Duration::from_secs(20),
        || async {
            let got = rx.latest().get(series).copied();
            (got == Some(want)).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sums_arrive_with_the_replica_label_headers_and_credentials() {
    let rx = Receiver::start(Script::default()).await;
    let dir = TempDir::new("rw-config");
    let token = dir.path.join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let file = dir.path.join("rw.yml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  - url: {}\n    name: test\n    headers: {{X-Scope-OrgID: team-a}}\n    bearer_token_file: {}\n",
            rx.url,
            token.display()
        ),
    )
    .unwrap();
    let targets = config::targets(&[], Some(&file)).unwrap();
    let gw = Gateway::start_with(config_for(targets)).await;
    for _ in 0..3 {
        gw.push_ok(
            "/metrics/job/j",
            "# TYPE done_total counter\ndone_total{queue=\"q\"} 2\n\
             # TYPE lat histogram\nlat_bucket{le=\"1\"} 1\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 3\nlat_count 2\n",
        )
        .await;
    }
    let r = "gateway_replica=\"r1\",job=\"j\"";
    wait_value(&rx, &format!("done_total{{{r},queue=\"q\"}}"), 6.0).await;
    let latest = rx.latest();
    assert_eq!(latest[&format!("lat_bucket{{{r},le=\"1\"}}")], 3.0);
    assert_eq!(latest[&format!("lat_bucket{{{r},le=\"+Inf\"}}")], 6.0);
    assert_eq!(latest[&format!("lat_sum{{{r}}}")], 9.0);
    assert_eq!(latest[&format!("lat_count{{{r}}}")], 6.0);
    let req = rx.requests().pop().unwrap();
    let h = |k: &str| req.headers.get(k).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("content-encoding"), "snappy");
    assert_eq!(h("content-type"), "application/x-protobuf");
    assert_eq!(h("x-prometheus-remote-write-version"), "0.1.0");
    assert_eq!(h("x-scope-orgid"), "team-a");
    assert_eq!(h("authorization"), "Bearer s3cret");
    assert!(h("user-agent").starts_with("prom-aggregation-gateway/"));
    // One timestamp for every value of a send; a series new to the
    // receiver starts with a zero a millisecond before.
    let stamps: std::collections::BTreeSet<i64> = req
        .samples
        .iter()
        .filter(|s| s.value != 0.0)
        .map(|s| s.timestamp)
        .collect();
    assert_eq!(stamps.len(), 1, "{stamps:?}");
    let t = *stamps.first().unwrap();
    // The first requests: the zeros the new series start from, a
    // millisecond before the first values.
    let sent: Vec<Request> = rx
        .requests()
        .into_iter()
        .filter(|r| !r.samples.is_empty())
        .collect();
    assert!(
        sent[0].samples.iter().all(|s| s.value == 0.0),
        "{:?}",
        sent[0].samples
    );
    assert_eq!(sent[0].samples.len(), 5, "a zero for each new series");
    assert_eq!(
        sent[0].samples[0].timestamp + 1,
        sent[1].samples[0].timestamp
    );
    assert!(
        req.samples
            .iter()
            .all(|s| s.timestamp == t || (s.value == 0.0 && s.timestamp == t - 1))
    );
    assert!(
        gw.self_metric("pag_remote_write_samples_sent_total{target=\"test\"}")
            .await
            >= 5.0
    );
    assert!(
        gw.self_metric("pag_remote_write_last_success_timestamp_seconds{target=\"test\"}")
            .await
            > 1e9
    );
    assert_eq!(
        gw.self_metric("pag_remote_write_protocol{target=\"test\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_when_confirmed_else_back_to_1() {
    for only_v1 in [false, true] {
        let rx = Receiver::start(Script {
            only_v1,
            ..Script::default()
        })
        .await;
        let dir = TempDir::new("rw2");
        let file = dir.path.join("rw.yml");
        std::fs::write(
            &file,
            format!(
                "targets:\n  - url: {}\n    name: t\n    protocol: \"2.0\"\n",
                rx.url
            ),
        )
        .unwrap();
        let gw = Gateway::start_with(config_for(config::targets(&[], Some(&file)).unwrap())).await;
        gw.push_ok(
            "/metrics",
            "# TYPE c_total counter\nc_total 5\nc_created 1700000000\n",
        )
        .await;
        wait_value(&rx, "c_total{gateway_replica=\"r1\"}", 5.0).await;
        if only_v1 {
            eventually(
                "a 1.0 request after the fallback",
                Duration::from_secs(10),
                || async { rx.requests().iter().any(|r| r.version == 1).then_some(()) },
            )
            .await;
        }
        let reqs = rx.requests();
        assert_eq!(reqs[0].version, 2);
        let last = reqs.last().unwrap();
        if only_v1 {
            // The unconfirmed 2.0 request, then 1.0 for good.
            assert_eq!(last.version, 1, "fell back");
            assert_eq!(
                gw.self_metric("pag_remote_write_protocol{target=\"t\"}")
                    .await,
                1.0
            );
        } else {
            assert!(reqs.iter().all(|r| r.version == 2));
            assert_eq!(last.headers["x-prometheus-remote-write-version"], "2.0.0");
            let c = last
                .samples
                .iter()
                .find(|s| s.labels["__name__"] == "c_total")
                .unwrap();
            assert_eq!(c.created, 1_700_000_000_000, "created timestamp in ms");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_dropped_and_counted_not_retried() {
    let rx = Receiver::start(Script {
        always: 400,
        ..Script::default()
    })
    .await;
    let gw = Gateway::start_with(config_for(url_target(&rx.url))).await;
    gw.push_ok("/metrics", "# TYPE c counter\nc 1\n").await;
    let target = format!("target=\"{}\"", rx.url);
    eventually("drops counted", Duration::from_secs(10), || async {
        let d = gw
            .self_metric(&format!(
                "pag_remote_write_dropped_samples_total{{reason=\"rejected\",{target}}}"
            ))
            .await;
        (d >= 1.0).then_some(())
    })
    .await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let sends = rx.requests().iter().filter(|r| r.at >= started).count() as f64;
    // One request per 1 s interval (one batch each), never a retry.
    assert!(sends <= elapsed + 1.0, "{sends} requests in {elapsed:.1}s");
    assert_eq!(
        gw.self_metric(&format!("pag_remote_write_retries_total{{{target}}}"))
            .await,
        0.0
    );
    // Pushes go on.
    gw.push_ok("/metrics", "# TYPE c counter\nc 1\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_429_are_retried_with_backoff_and_retry_after() {
    let rx = Receiver::start(Script {
        answers: VecDeque::from([(503, None), (503, None), (429, Some("2")), (500, None)]),
        ..Script::default()
    })
    .await;
    let gw = Gateway::start_with(config_for(url_target(&rx.url))).await;
    gw.push_ok("/metrics", "# TYPE c counter\nc 7\n").await;
    wait_value(&rx, "c{gateway_replica=\"r1\"}", 7.0).await;
    eventually("five requests", Duration::from_secs(20), || async {
        (rx.requests().len() >= 5).then_some(())
    })
    .await;
    let reqs = rx.requests();
    let gap = |i: usize| (reqs[i + 1].at - reqs[i].at).as_secs_f64();
    // 250 ms, then 500 ms, then what Retry-After asked (2 s), then the
    // doubled backoff (1 s).
    assert!(
        gap(0) >= 0.2 && gap(0) < 0.9,
        "first retry after {:.2}s",
        gap(0)
    );
    assert!(gap(1) >= 0.45, "second retry after {:.2}s", gap(1));
    assert!(gap(2) >= 1.9, "Retry-After: 2 honoured: {:.2}s", gap(2));
    assert!(gap(3) >= 0.9, "backoff kept doubling: {:.2}s", gap(3));
    let target = format!("target=\"{}\"", rx.url);
    assert!(
        gw.self_metric(&format!("pag_remote_write_retries_total{{{target}}}"))
            .await
            >= 4.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_long_gets_the_newest_snapshot_and_loses_nothing() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let gw = Gateway::start_with(config_for(url_target(&url))).await;
    let mut want = 0.0;
    for i in 1..=30 {
        let started = Instant::now();
        gw.push_ok("/metrics", &format!("# TYPE c counter\nc {i}\n"))
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a push waited on the remote-write output"
        );
        want += f64::from(i);
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
    }
    let target = format!("target=\"{url}\"");
    eventually("retries while down", Duration::from_secs(10), || async {
        let r = gw
            .self_metric(&format!("pag_remote_write_retries_total{{{target}}}"))
            .await;
        (r >= 2.0).then_some(())
    })
    .await;
    // Two snapshots taken after the last push: the newest holds it all.
    let taken = "pag_remote_write_snapshot_duration_seconds_count";
    let after_pushes = gw.self_metric(taken).await;
    eventually("two more snapshots", Duration::from_secs(10), || async {
        (gw.self_metric(taken).await >= after_pushes + 2.0).then_some(())
    })
    .await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let rx = Receiver::start_on(listener, Script::default());
    wait_value(&rx, "c{gateway_replica=\"r1\"}", want).await;
    // Older snapshots' values were never sent: the first sent is the
    // newest; before it, the zero the new series starts from, carried
    // over from the first snapshot it was in.
    let sent: Vec<f64> = rx
        .requests()
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| s.value))
        .collect();
    assert_eq!(sent[..2], [0.0, want], "{sent:?}");
    assert!(
        gw.self_metric(&format!(
            "pag_remote_write_snapshots_skipped_total{{{target}}}"
        ))
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_delete_send_staleness_markers() {
    let rx = Receiver::start(Script::default()).await;
    let config = Config {
        series_ttl: Some(Duration::from_secs(2)),
        ..config_for(url_target(&rx.url))
    };
    let gw = Gateway::start_with(config).await;
    gw.push_ok("/metrics/job/a", "# TYPE c counter\nc 1\n")
        .await;
    gw.push_ok("/metrics/job/b", "# TYPE s summary\ns_sum 1\ns_count 1\n")
        .await;
    wait_value(&rx, "c{gateway_replica=\"r1\",job=\"a\"}", 1.0).await;
    let r = gw
        .client
        .delete(format!("{}/metrics/job/a", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let stale = |rx: &Receiver, series: &str| {
        rx.requests()
            .iter()
            .flat_map(|r| r.samples.clone())
            .find(|s| show(&s.labels) == series && s.value.to_bits() == STALE_NAN)
    };
    let marker = eventually(
        "stale marker after DELETE",
        Duration::from_secs(10),
        || async { stale(&rx, "c{gateway_replica=\"r1\",job=\"a\"}") },
    )
    .await;
    let before = rx
        .requests()
        .iter()
        .flat_map(|r| r.samples.clone())
        .filter(|s| show(&s.labels) == "c{gateway_replica=\"r1\",job=\"a\"}" && !s.value.is_nan())
        .map(|s| s.timestamp)
        .max()
        .unwrap();
    assert!(
        marker.timestamp > before,
        "the marker comes after the last value"
    );
    // The summary is never pushed again: expired after 2 s.
    for name in ["s_sum", "s_count"] {
        let series = format!("{name}{{gateway_replica=\"r1\",job=\"b\"}}");
        eventually(
            "stale marker after expiry",
            Duration::from_secs(15),
            || async { stale(&rx, &series) },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_may_not_carry_the_replica_label() {
    let rx = Receiver::start(Script::default()).await;
    let gw = Gateway::start_with(config_for(url_target(&rx.url))).await;
    let r = gw
        .push("/metrics", "# TYPE c counter\nc{gateway_replica=\"x\"} 1\n")
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("label gateway_replica is the gateway's replica label"),
        "{}",
        r.text()
    );
    let r = gw.push("/metrics/gateway_replica/x", "c 1\n").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(gw.scrape().await, "");
    // Without remote-write the label is any other.
    let plain = Gateway::start().await;
    plain
        .push_ok("/metrics", "# TYPE c counter\nc{gateway_replica=\"x\"} 1\n")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_settings_stop_the_start_with_a_reason() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--remote-write-url",
                "http://127.0.0.1:1/w",
                "--replica-label",
                "replica",
            ],
            "HA de-duplication",
        ),
        (
            &["--remote-write-url", "ftp://x/w"],
            "url must be http:// or https://",
        ),
        (
            &[
                "--remote-write-url",
                "http://127.0.0.1:1/w",
                "--remote-write-interval",
                "10ms",
            ],
            "at least 1s",
        ),
        (
            &["--remote-write-config", "/nonexistent/rw.yml"],
            "--remote-write-config /nonexistent/rw.yml",
        ),
    ];
    for (args, want) in cases {
        let port = format!("127.0.0.1:{}", free_port());
        let err = refused_start(&[&["--listen", &port], *args].concat());
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let dir = TempDir::new("rw-bad");
    for (yaml, want) in [
        (
            "targets:\n  - url: http://x/w\n    headers: {Content-Type: a}\n",
            "header Content-Type is set by the gateway",
        ),
        (
            "targets:\n  - url: http://x/w\n    bearer_token: a\n    basic_auth: {username: u, password: p}\n",
            "not both",
        ),
        (
            "targets:\n  - url: http://x/w\n    protocol: \"3.0\"\n",
            "protocol",
        ),
        (
            "targets:\n  - url: http://x/w\n  - url: http://x/w\n",
            "given twice",
        ),
        ("targets:\n  - url: http://x/w\n    color: red\n", "color"),
    ] {
        let file = dir.path.join("rw.yml");
        std::fs::write(&file, yaml).unwrap();
        let err = config::targets(&[], Some(&file)).unwrap_err();
        assert!(err.contains(want), "{yaml}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    // A valid file with an unreachable target starts fine.
    let p = Process::start(&["--remote-write-url", "http://127.0.0.1:1/w"]).await;
    drop(p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_snapshot_is_sent_at_shutdown() {
    let rx = Receiver::start(Script::default()).await;
    let mut config = config_for(url_target(&rx.url));
    // No send but the one at start before the stop.
    if let Some(rw) = config.remote_write.as_mut() {
        Arc::get_mut(rw).unwrap().interval = Duration::from_secs(3600);
    }
    let gw = Gateway::start_with(config).await;
    eventually("the send at start", Duration::from_secs(10), || async {
        let n = gw
            .self_metric("pag_remote_write_snapshot_duration_seconds_count")
            .await;
        (n >= 1.0).then_some(())
    })
    .await;
    gw.push_ok("/metrics", "# TYPE c counter\nc 4\n").await;
    assert!(rx.latest().is_empty());
    gw.stop().await.unwrap();
    assert_eq!(rx.latest().get("c{gateway_replica=\"r1\"}"), Some(&4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca_file_and_a_client_certificate() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let server_pki = crate::tls::Pki::new();
    let client_pki = crate::tls::Pki::new();
    let (cert, key) = server_pki.leaf(&["localhost"]);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(client_pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let rx = Receiver::start_tls(Script::default(), tls).await;
    let dir = TempDir::new("rw-tls");
    let (client_cert, client_key) = client_pki.leaf(&["gateway"]);
    for (name, text) in [
        ("ca.pem", server_pki.ca_pem.as_str()),
        ("gw.pem", client_cert.as_str()),
        ("gw.key", client_key.as_str()),
    ] {
        std::fs::write(dir.path.join(name), text).unwrap();
    }
    let d = dir.path.display();
    let file = dir.path.join("rw.yml");
    // One target with the receiver's CA and a client certificate; one
    // without the client certificate; one without the CA.
    std::fs::write(
        &file,
        format!(
            "targets:\n\
             \x20 - url: {url}\n    name: mtls\n    tls: {{ca_file: {d}/ca.pem, cert_file: {d}/gw.pem, key_file: {d}/gw.key}}\n\
             \x20 - url: {url}\n    name: no-cert\n    tls: {{ca_file: {d}/ca.pem}}\n\
             \x20 - url: {url}\n    name: no-ca\n",
            url = rx.url
        ),
    )
    .unwrap();
    let gw = Gateway::start_with(config_for(config::targets(&[], Some(&file)).unwrap())).await;
    gw.push_ok("/metrics", "# TYPE c counter\nc 3\n").await;
    wait_value(&rx, "c{gateway_replica=\"r1\"}", 3.0).await;
    for refused in ["no-cert", "no-ca"] {
        let series = format!("pag_remote_write_retries_total{{target=\"{refused}\"}}");
        eventually(
            "handshakes refused and retried",
            Duration::from_secs(10),
            || async { (gw.self_metric(&series).await >= 1.0).then_some(()) },
        )
        .await;
        let sent = format!("pag_remote_write_samples_sent_total{{target=\"{refused}\"}}");
        assert_eq!(gw.self_metric(&sent).await, 0.0, "{refused} sent nothing");
    }
    assert!(
        gw.self_metric("pag_remote_write_samples_sent_total{target=\"mtls\"}")
            .await
            >= 1.0
    );
}
