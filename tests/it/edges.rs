//! Trust at the newer edges (OTLP, the rules file, the status API,
//! shutdown): each attack that once cost much, broke a snapshot or reached
//! what it should not, against the real binary where memory, signals or
//! files are what is measured.

use std::io::Write;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    self as m, AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, exponential_histogram_data_point::Buckets,
    metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::support::{Process, TempDir, free_port, sample_value};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The process' peak resident memory (`VmHWM`), in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

fn string(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    }
}

fn kv(k: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(value),
        ..Default::default()
    }
}

/// `inner` in `levels` arrays of one element each: every level's JSON
/// rendering escapes the one below, doubling it.
fn nested(levels: usize, inner: AnyValue) -> AnyValue {
    (0..levels).fold(inner, |v, _| AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
    })
}

fn export(resource: Vec<KeyValue>, metrics: Vec<m::Metric>) -> Vec<u8> {
    let mut attributes = vec![kv("service.name", string("svc"))];
    attributes.extend(resource);
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn metric(name: &str, data: Data) -> m::Metric {
    m::Metric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn delta_counter(points: Vec<NumberDataPoint>) -> Data {
    Data::Sum(m::Sum {
        data_points: points,
        aggregation_temporality: AggregationTemporality::Delta as i32,
        is_monotonic: true,
    })
}

fn one(attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        value: Some(number_data_point::Value::AsInt(1)),
        ..Default::default()
    }
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let r = client
        .post(format!("{base}/v1/metrics"))
        .header("content-type", content_type)
        .header("content-encoding", "gzip")
        .body(gzip(&body))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Small OTLP exports that once took hundreds of MiB (nested attribute
/// values rendered as JSON escaping each level; arrays of millions of
/// empty values; OTLP/JSON transcoded before anything was reserved) stay
/// within the byte budget, and what is accepted still restores from a
/// snapshot: values one export's points would merge into that no push
/// could store are refused.
#[tokio::test]
async fn hostile_otlp_exports_cost_little_and_never_poison_a_snapshot() {
    let dir = TempDir::new("edges-otlp");
    let snapshot = dir.path.join("state.bin");
    let mut gw = Process::start(&[
        "--max-memory",
        "64MiB",
        "--persistence-file",
        snapshot.to_str().unwrap(),
    ])
    .await;
    let pid = gw.child.id();
    let client = reqwest::Client::new();
    let protobuf = "application/x-protobuf";
    let before = peak_rss(pid);

    // 1 MiB of quotes in eight arrays: a resource attribute nothing keeps
    // is not rendered; as a point's attribute it is refused at the label
    // value limit.
    let bomb = nested(8, string(&"\"".repeat(1 << 20)));
    let counted = metric("ok.events", delta_counter(vec![one(vec![])]));
    let body = export(vec![kv("deploy.blob", bomb.clone())], vec![counted]);
    let (status, text) = post(&client, &gw.base, protobuf, body).await;
    assert_eq!(status, 200, "{text}");
    let attacked = metric("x", delta_counter(vec![one(vec![kv("blob", bomb)])]));
    let (status, text) = post(&client, &gw.base, protobuf, export(vec![], vec![attacked])).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("longer than --max-label-value-length"),
        "{text}"
    );
    // Six million empty values in one array (12 MB, 12 KB gzip).
    let empties = AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue { value: None }; 6 << 20],
        })),
    };
    let body = export(vec![kv("deploy.list", empties.clone())], vec![]);
    let (status, text) = post(&client, &gw.base, protobuf, body).await;
    assert_eq!(status, 200, "{text}");
    let attacked = metric("x", delta_counter(vec![one(vec![kv("list", empties)])]));
    let (status, text) = post(&client, &gw.base, protobuf, export(vec![], vec![attacked])).await;
    assert_eq!(status, 400, "{text}");
    // OTLP/JSON of 8M zero bucket counts (16 MB of JSON, 64 MiB of
    // protobuf), four at once: each refused by the budget while it is
    // transcoded.
    let json = format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"h","histogram":{{"aggregationTemporality":1,"dataPoints":[{{"bucketCounts":[{}0]}}]}}}}]}}]}}]}}"#,
        "0,".repeat(8 << 20)
    );
    let sends = (0..4).map(|_| post(&client, &gw.base, "application/json", json.clone().into()));
    for (status, text) in futures_util::future::join_all(sends).await {
        assert!(matches!(status, 413 | 429), "{status} {text}");
    }
    let grew = peak_rss(pid).saturating_sub(before);
    // Before: 411 MiB for the nested value alone, 425 MiB for the four
    // JSON bodies. Now the budget (64 MiB) and the bodies being read.
    eprintln!("peak resident memory grew {} MiB", grew >> 20);
    assert!(
        grew < 160 << 20,
        "peak resident memory grew {} MiB",
        grew >> 20
    );
    // Every refused request gave its bytes back: what is held is the one
    // accepted series.
    assert!(gw.self_metric("pag_memory_bytes").await < 4096.0);

    // What no snapshot could restore is refused, whole.
    let histogram = |sum: f64| HistogramDataPoint {
        count: 1,
        sum: Some(sum),
        bucket_counts: vec![1],
        ..Default::default()
    };
    let cases = [
        Data::Histogram(m::Histogram {
            data_points: vec![histogram(f64::INFINITY), histogram(f64::NEG_INFINITY)],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
        Data::Summary(m::Summary {
            data_points: vec![m::SummaryDataPoint {
                count: u64::MAX,
                ..Default::default()
            }],
        }),
        Data::ExponentialHistogram(m::ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                count: 1,
                positive: Some(Buckets {
                    offset: 0,
                    bucket_counts: vec![1, 1],
                }),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
    ];
    for data in cases {
        let (status, text) = post(
            &client,
            &gw.base,
            protobuf,
            export(vec![], vec![metric("p", data)]),
        )
        .await;
        assert_eq!(status, 400, "{text}");
    }
    // --max-series-per-push is 413 here as everywhere.
    let points = (0..200_001)
        .map(|i| one(vec![kv("i", string(&i.to_string()))]))
        .collect();
    let body = export(vec![], vec![metric("many", delta_counter(points))]);
    let (status, text) = post(&client, &gw.base, protobuf, body).await;
    assert_eq!(status, 413, "{text}");

    let scrape = gw.scrape().await;
    assert_eq!(
        sample_value(&scrape, "ok_events_total{job=\"svc\"}"),
        Some(1.0),
        "{scrape}"
    );
    // The snapshot written at shutdown is whole, and restores.
    gw.signal("TERM");
    assert!(gw.wait().await.success(), "{}", gw.stderr());
    let gw = Process::start(&["--persistence-file", snapshot.to_str().unwrap()]).await;
    let scrape = gw.scrape().await;
    assert_eq!(
        sample_value(&scrape, "ok_events_total{job=\"svc\"}"),
        Some(1.0),
        "{scrape}"
    );
}

/// A selector 1M parentheses deep stops the start with a message naming
/// the file (it overflowed the main thread's stack); on a running
/// gateway, deep, long, regex-heavy, missing, oversized files and a FIFO
/// are each refused at once, counted, and keep the rules in force, and
/// the gateway still stops on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rules_files_are_refused_at_once_and_counted() {
    let dir = TempDir::new("edges-rules");
    let file = dir.path.join("rules.yml");
    let deep = |n: usize| format!("rules:\n  - match: '{}x{}'\n", "(".repeat(n), ")".repeat(n));
    std::fs::write(&file, deep(1_000_000)).unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prom-aggregation-gateway"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--rules")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("rules file {}, line 2", file.display())),
        "{err}"
    );
    assert!(
        err.contains("longer than the 4096 a series selector may be"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    std::fs::write(&file, "rules:\n  - match: 'temp'\n    mode: max\n").unwrap();
    let rules = file.display().to_string();
    let mut p = Process::start(&["--rules", &rules, "--rules-check-interval", "1h"]).await;
    let errors = "pag_rules_reloads_total{result=\"error\"}";
    let regexes: String = (0..2500)
        .map(|i| format!("  - match: 'm{i}{{l=~\".{{1000}}\"}}'\n"))
        .collect();
    let terms = format!("rules:\n  - match: 'x{}'\n", " + x".repeat(100_000));
    type Make<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Make)> = vec![
        (
            "100k parentheses",
            Box::new(|| std::fs::write(&file, deep(100_000)).unwrap()),
        ),
        (
            "100k terms",
            Box::new(|| std::fs::write(&file, &terms).unwrap()),
        ),
        (
            "2,500 regexes of 1 MiB each",
            Box::new(|| std::fs::write(&file, format!("rules:\n{regexes}")).unwrap()),
        ),
        ("removed", Box::new(|| std::fs::remove_file(&file).unwrap())),
        (
            "over 4 MiB",
            Box::new(|| std::fs::write(&file, " ".repeat(5 << 20)).unwrap()),
        ),
        (
            "a FIFO",
            Box::new(|| {
                let _ = std::fs::remove_file(&file);
                let ok = std::process::Command::new("mkfifo")
                    .arg(&file)
                    .status()
                    .unwrap();
                assert!(ok.success());
            }),
        ),
    ];
    for (i, (what, make)) in cases.iter().enumerate() {
        make();
        let started = Instant::now();
        p.signal("HUP");
        crate::rules::wait_for(&p, what, errors, |v| v >= (i + 1) as f64).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: {:?}",
            started.elapsed()
        );
        assert_eq!(
            p.self_metric("pag_rules_last_reload_successful").await,
            0.0,
            "{what}"
        );
        // The rules in force are kept.
        let client = reqwest::Client::new();
        for v in [5.0, 3.0] {
            let r = client
                .post(format!("{}/metrics", p.base))
                .body(format!("# TYPE temp gauge\ntemp {v}\n"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        assert_eq!(sample_value(&p.scrape().await, "temp"), Some(5.0), "{what}");
    }
    // With the FIFO still in place, SIGTERM ends the process.
    let started = Instant::now();
    p.signal("TERM");
    assert!(p.wait().await.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let log = p.stderr();
    for why in [
        "not a regular file",
        "larger than 4 MiB",
        "No such file",
        "more than 8 MiB",
    ] {
        assert!(log.contains(why), "{why}: {log}");
    }
}

/// Pages of other origins, with the default `--cors *`: admin routes are
/// never approved for them (preflight) nor taken from them (a form or a
/// `no-cors` request needs no preflight); credentials from an origin not
/// listed by name are refused; the gateway's own page (same origin) may do
/// everything, whatever `--cors` lists.
#[tokio::test]
async fn pages_of_other_origins_cannot_wipe_or_use_cached_credentials() {
    use prom_aggregation_gateway::config::Secret;
    let evil = ("origin", "https://evil.example");
    for cors in ["*", "https://app.example"] {
        let gw = crate::support::Gateway::start_with(prom_aggregation_gateway::Config {
            cors: cors.into(),
            ..prom_aggregation_gateway::Config::default()
        })
        .await;
        let own = format!("http://{}", gw.addr);
        gw.push_ok("/metrics/job/a", "c 1\n").await;
        for (method, path) in [("DELETE", "/metrics/job/a"), ("PUT", "/api/v1/admin/wipe")] {
            let preflight = gw
                .request(
                    "OPTIONS",
                    path,
                    &[evil, ("access-control-request-method", method)],
                    "",
                )
                .await;
            assert_eq!(preflight.status, 403, "{cors} {method} {path}");
            assert!(
                preflight
                    .headers
                    .get("access-control-allow-origin")
                    .is_none()
            );
            for headers in [
                vec![evil],
                vec![("sec-fetch-site", "cross-site")],
                vec![evil, ("sec-fetch-site", "same-site")],
            ] {
                let r = gw.request(method, path, &headers, "").await;
                assert_eq!(r.status, 403, "{cors} {method} {path} {headers:?}");
                assert!(r.text().contains("admin routes"), "{}", r.text());
            }
        }
        assert!(gw.scrape().await.contains("c{job=\"a\"} 1\n"));
        // Pushes may still be preflighted from an allowed origin.
        if cors == "*" {
            let preflight = gw
                .request(
                    "OPTIONS",
                    "/metrics/job/a",
                    &[evil, ("access-control-request-method", "PUT")],
                    "",
                )
                .await;
            assert_eq!(preflight.status, 200);
            assert_eq!(preflight.headers["access-control-allow-origin"], "*");
        }
        // The gateway's own page: by Sec-Fetch-Site, or by an Origin that
        // is the request's host.
        let r = gw
            .request("DELETE", "/metrics/job/a", &[("origin", &own)], "")
            .await;
        assert_eq!(r.status, 202, "{cors}: {}", r.text());
        gw.push_ok("/metrics/job/a", "c 1\n").await;
        let r = gw
            .request(
                "PUT",
                "/api/v1/admin/wipe",
                &[("origin", &own), ("sec-fetch-site", "same-origin")],
                "",
            )
            .await;
        assert_eq!(r.status, 202, "{cors}: {}", r.text());
    }

    // Credentials the browser has cached go with a cross-site form.
    let gw = crate::support::Gateway::start_with(prom_aggregation_gateway::Config {
        auth_users: vec![("alice".into(), Secret::Plain("pw".into()))],
        ..prom_aggregation_gateway::Config::default()
    })
    .await;
    let basic = ("authorization", "Basic YWxpY2U6cHc=");
    let r = gw
        .request(
            "POST",
            "/metrics/job/a",
            &[evil, basic, ("content-type", "text/plain")],
            "c 1\n",
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("listed by name in --cors"),
        "{}",
        r.text()
    );
    assert!(!gw.scrape().await.contains("c{"));
    let r = gw
        .request("POST", "/metrics/job/a", &[basic], "c 1\n")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A route prefix that is one of the gateway's own paths would take them
/// away: refused at start. URLs that do not parse are shown without their
/// password.
#[test]
fn prefixes_that_hide_routes_and_passwords_in_errors_are_refused() {
    for prefix in ["/metrics", "/api", "/v1/", "/-", "static/x"] {
        let err = crate::support::refused_start(&["--web.route-prefix", prefix]);
        assert!(err.contains("is the gateway's own"), "{prefix}: {err}");
    }
    for (flag, url) in [
        ("--web.external-url", "http://user:s3cret@exa mple/"),
        (
            "--remote-write-url",
            "http://user:s3cret@exa mple/api/v1/write",
        ),
    ] {
        let err = crate::support::refused_start(&[flag, url]);
        assert!(!err.contains("s3cret"), "{flag}: {err}");
        assert!(err.contains("***@exa mple"), "{flag}: {err}");
    }
}

/// A remote-write receiver that accepts and never answers: SIGTERM still
/// ends the process within --shutdown-timeout (it took 35 s with 5 s),
/// with the last snapshot written first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_remote_write_receiver_does_not_hold_the_shutdown() {
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", receiver.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in receiver.incoming().take(64) {
            held.push(conn);
        }
    });
    let dir = TempDir::new("edges-shutdown");
    let snapshot = dir.path.join("state.bin");
    let mut p = Process::start(&[
        "--remote-write-url",
        &url,
        "--remote-write-interval",
        "1s",
        "--shutdown-timeout",
        "2s",
        "--persistence-file",
        snapshot.to_str().unwrap(),
    ])
    .await;
    let r = reqwest::Client::new()
        .post(format!("{}/metrics/job/a", p.base))
        .body("c 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A send is under way, and hangs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    p.signal("TERM");
    assert!(p.wait().await.success(), "{}", p.stderr());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "stopped after {took:?}");
    let restored = Process::start(&["--persistence-file", snapshot.to_str().unwrap()]).await;
    assert_eq!(
        sample_value(&restored.scrape().await, "c{job=\"a\"}"),
        Some(1.0)
    );
}

/// List views are paged and cut: `/api/v1/groups` a page at a time (10k
/// grouping keys with long values answered 35 MB at once), HELP texts cut
/// in `/api/v1/families`.
#[tokio::test]
async fn status_views_are_paged_and_cut() {
    let gw = crate::support::Gateway::start().await;
    let help = "h".repeat(10_000);
    for g in ["a", "b", "c"] {
        gw.push_ok(
            &format!("/metrics/job/{g}"),
            &format!("# HELP c {help}\nc 1\n"),
        )
        .await;
    }
    let page = |path: &str| {
        let path = path.to_string();
        let gw = &gw;
        async move {
            let r = gw.request("GET", &path, &[], "").await;
            assert_eq!(r.status, 200);
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
        }
    };
    let first = page("/api/v1/groups?limit=2").await;
    assert_eq!(first["total"], 3);
    assert_eq!(first["groups"].as_array().unwrap().len(), 2);
    let rest = page("/api/v1/groups?limit=2&offset=2").await;
    assert_eq!(rest["groups"].as_array().unwrap().len(), 1);
    let families = page("/api/v1/families").await;
    let shown = families["families"][0]["help"].as_str().unwrap();
    assert!(
        shown.len() <= 256 + 3 && shown.ends_with('…'),
        "{}",
        shown.len()
    );
}
