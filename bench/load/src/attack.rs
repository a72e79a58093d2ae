//! `pag-load attack`: hostile inputs, one class at a time, against a running
//! gateway whose pid is given, reporting what each cost it: bytes sent and
//! decompressed, peak and retained RSS growth, gateway CPU time, the worst
//! `/-/healthy` latency meanwhile, and the answers. Linux only (`/proc`).

use std::io::Write;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic as otlp;
use prom_aggregation_gateway_client::pb::io::prometheus::client as pb;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// One class of attack: what is sent, how often.
struct Class {
    name: &'static str,
    /// What the gateway must read or inflate per request.
    decompressed: usize,
    run: Run,
}

enum Run {
    /// `count` identical HTTP pushes (path, headers, body).
    Http {
        path: String,
        headers: Vec<(&'static str, &'static str)>,
        body: Vec<u8>,
        count: usize,
    },
    /// `clients` connections sending a push body one byte per second.
    Trickle { clients: usize, seconds: u64 },
    /// `clients` connections each asking for `path` (a scrape, a page of
    /// the status API) and never reading the answer.
    Unread {
        path: &'static str,
        clients: usize,
        seconds: u64,
    },
    /// `clients` connections asking for `path` again and again (reading
    /// the answers) for `seconds`.
    Flood {
        path: &'static str,
        clients: usize,
        seconds: u64,
    },
    /// The `--rules` file rewritten to `text`, then SIGHUP; done when the
    /// gateway has counted the reload.
    Rules { text: String },
    /// `clients` idle connections opened and held.
    Idle { clients: usize, seconds: u64 },
    /// `clients` connections each sending `bytes` of one header that never
    /// ends, then holding the request unfinished.
    Hoard {
        clients: usize,
        bytes: usize,
        seconds: u64,
    },
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn delimited(f: &pb::MetricFamily) -> Vec<u8> {
    let mut out = Vec::new();
    f.encode_length_delimited(&mut out).unwrap();
    out
}

fn histogram(h: pb::Histogram) -> pb::MetricFamily {
    pb::MetricFamily {
        name: Some("attack_hist".into()),
        help: None,
        r#type: Some(pb::MetricType::Histogram as i32),
        metric: vec![pb::Metric {
            histogram: Some(h),
            ..Default::default()
        }],
        unit: None,
    }
}

/// An OTLP export whose one resource attribute is `value`.
fn otlp_export(value: otlp::common::v1::AnyValue) -> Vec<u8> {
    use otlp::collector::metrics::v1::ExportMetricsServiceRequest;
    use otlp::common::v1::KeyValue;
    use otlp::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(otlp::resource::v1::Resource {
                attributes: vec![KeyValue {
                    key: "attack".into(),
                    value: Some(value),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "attack_otlp".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            value: Some(number_data_point::Value::AsDouble(1.0)),
                            ..Default::default()
                        }],
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

fn any(value: otlp::common::v1::any_value::Value) -> otlp::common::v1::AnyValue {
    otlp::common::v1::AnyValue { value: Some(value) }
}

fn classes(max_body: usize, rules: Option<&std::path::Path>) -> Vec<Class> {
    let gz = vec![("content-encoding", "gzip")];
    let proto_gz = vec![("content-encoding", "gzip"), ("content-type", PROTO_CT)];
    let mut out = Vec::new();
    // 1. A gzip bomb: the largest body allowed, of comments, from a few KiB.
    let bomb = vec![b'#'; max_body];
    out.push(Class {
        name: "gzip bomb (text)",
        decompressed: bomb.len(),
        run: Run::Http {
            path: "/metrics".into(),
            headers: gz.clone(),
            body: gzip(&bomb),
            count: 20,
        },
    });
    // 2. A native histogram claiming a million buckets (1-byte deltas).
    let native = delimited(&histogram(pb::Histogram {
        sample_count: Some(1),
        schema: Some(8),
        zero_threshold: Some(0.0),
        positive_span: vec![pb::BucketSpan {
            offset: Some(0),
            length: Some(1 << 20),
        }],
        positive_delta: std::iter::once(1)
            .chain(std::iter::repeat_n(0, (1 << 20) - 1))
            .collect(),
        ..Default::default()
    }));
    out.push(Class {
        name: "native bucket bomb",
        decompressed: native.len(),
        run: Run::Http {
            path: "/metrics".into(),
            headers: proto_gz.clone(),
            body: gzip(&native),
            count: 20,
        },
    });
    // 3. A classic histogram of a million empty (2-byte) buckets.
    let classic = delimited(&histogram(pb::Histogram {
        sample_count: Some(0),
        bucket: vec![pb::Bucket::default(); 1 << 20],
        ..Default::default()
    }));
    out.push(Class {
        name: "classic bucket bomb",
        decompressed: classic.len(),
        run: Run::Http {
            path: "/metrics".into(),
            headers: proto_gz.clone(),
            body: gzip(&classic),
            count: 20,
        },
    });
    // 4. A family of a million empty metrics.
    let tiny = delimited(&pb::MetricFamily {
        name: Some("attack_tiny_total".into()),
        help: None,
        r#type: Some(pb::MetricType::Counter as i32),
        metric: vec![pb::Metric::default(); 1 << 20],
        unit: None,
    });
    out.push(Class {
        name: "empty metrics",
        decompressed: tiny.len(),
        run: Run::Http {
            path: "/metrics".into(),
            headers: proto_gz.clone(),
            body: gzip(&tiny),
            count: 20,
        },
    });
    // 5. Tiny families: one short line each.
    let families: String = (0..200_000).map(|i| format!("f{i} 1\n")).collect();
    out.push(Class {
        name: "tiny families",
        decompressed: families.len(),
        run: Run::Http {
            path: "/metrics".into(),
            headers: gz.clone(),
            body: gzip(families.as_bytes()),
            count: 5,
        },
    });
    // 6. A 4 KiB path label copied into thousands of tiny series.
    let series: String = (0..50_000).map(|i| format!("s{{i=\"{i}\"}} 1\n")).collect();
    let path = format!("/metrics/job/{}", "v".repeat(4000));
    out.push(Class {
        name: "path label x series",
        decompressed: series.len() + path.len(),
        run: Run::Http {
            path,
            headers: gz.clone(),
            body: gzip(series.as_bytes()),
            count: 5,
        },
    });
    // 7. Accepted: a push of --max-series-per-push new series, short ones
    // (35 bytes a line), the most one request may add.
    let dense: String = (0..200_000)
        .map(|i| format!("d{{i=\"{i:06}\",j=\"abcdefgh\"}} 1\n"))
        .collect();
    out.push(Class {
        name: "200k new series (accepted)",
        decompressed: dense.len(),
        run: Run::Http {
            path: "/metrics/batch/1".into(),
            headers: gz,
            body: gzip(dense.as_bytes()),
            count: 1,
        },
    });
    out.push(Class {
        name: "1000 trickling bodies",
        decompressed: 0,
        run: Run::Trickle {
            clients: 1000,
            seconds: 5,
        },
    });
    out.push(Class {
        name: "200 unread scrapes",
        decompressed: 0,
        run: Run::Unread {
            path: "/metrics",
            clients: 200,
            seconds: 5,
        },
    });
    out.extend(otlp_classes());
    out.extend(status_api_classes());
    if rules.is_some() {
        out.extend(rules_classes());
    }
    out.push(Class {
        name: "1000 unfinished 400 KiB headers",
        decompressed: 0,
        run: Run::Hoard {
            clients: 1000,
            bytes: 400 << 10,
            seconds: 3,
        },
    });
    out.push(Class {
        name: "5000 idle connections",
        decompressed: 0,
        run: Run::Idle {
            clients: 5000,
            seconds: 5,
        },
    });
    out
}

/// OTLP: nested attribute values rendered as JSON (each level escaping
/// the one below), huge arrays of empty values, and OTLP/JSON packed
/// arrays that transcode to far more than they are.
fn otlp_classes() -> Vec<Class> {
    use otlp::common::v1::{ArrayValue, any_value::Value};
    let protobuf = vec![
        ("content-type", "application/x-protobuf"),
        ("content-encoding", "gzip"),
    ];
    let mut nested = any(Value::StringValue("\"".repeat(1 << 20)));
    for _ in 0..8 {
        nested = any(Value::ArrayValue(ArrayValue {
            values: vec![nested],
        }));
    }
    let nested = otlp_export(nested);
    let empties = otlp_export(any(Value::ArrayValue(ArrayValue {
        values: vec![otlp::common::v1::AnyValue::default(); 6 << 20],
    })));
    let zeros = vec!["0"; 8 << 20].join(",");
    let json = format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"attack_json","histogram":{{"aggregationTemporality":1,"dataPoints":[{{"count":"0","bucketCounts":[{zeros}]}}]}}}}]}}]}}]}}"#
    );
    vec![
        Class {
            name: "OTLP attribute nested 8 deep around 1 MiB of quotes",
            decompressed: nested.len(),
            run: Run::Http {
                path: "/v1/metrics".into(),
                headers: protobuf.clone(),
                body: gzip(&nested),
                count: 10,
            },
        },
        Class {
            name: "OTLP attribute of 6M empty values",
            decompressed: empties.len(),
            run: Run::Http {
                path: "/v1/metrics".into(),
                headers: protobuf,
                body: gzip(&empties),
                count: 10,
            },
        },
        Class {
            name: "OTLP/JSON bucketCounts of 8M zeros",
            decompressed: json.len(),
            run: Run::Http {
                path: "/v1/metrics".into(),
                headers: vec![
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                ],
                body: gzip(json.as_bytes()),
                count: 10,
            },
        },
    ]
}

/// The status API: large pages asked for and never read, and floods.
fn status_api_classes() -> Vec<Class> {
    let mut out = Vec::new();
    for path in ["/api/v1/families?limit=1000", "/api/v1/groups?limit=1000"] {
        out.push(Class {
            name: if path.contains("families") {
                "200 unread families pages"
            } else {
                "200 unread groups pages"
            },
            decompressed: 0,
            run: Run::Unread {
                path,
                clients: 200,
                seconds: 5,
            },
        });
    }
    for path in [
        "/api/v1/families?limit=1000",
        "/api/v1/groups?limit=1000",
        "/api/v1/cardinality?limit=100",
    ] {
        out.push(Class {
            name: match path {
                p if p.contains("families") => "64 clients polling families pages for 5 s",
                p if p.contains("groups") => "64 clients polling groups pages for 5 s",
                _ => "64 clients polling cardinality for 5 s",
            },
            decompressed: 0,
            run: Run::Flood {
                path,
                clients: 64,
                seconds: 5,
            },
        });
    }
    out
}

/// Rules files the gateway must refuse at once and keep running.
fn rules_classes() -> Vec<Class> {
    let nested = format!(
        "rules:\n  - match: '{}x{}'\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let sum = format!("rules:\n  - match: '{}'\n", vec!["x"; 100_000].join(" + "));
    let regexes: String = std::iter::once("rules:\n".to_string())
        .chain((0..2500).map(|i| format!("  - match: '{{l{i}=~\".{{{{1000}}}}\"}}'\n")))
        .collect();
    [
        ("rules: selector nested 100k parentheses", nested),
        ("rules: selector of 100k terms", sum),
        ("rules: 2,500 regexes .{1000}", regexes),
    ]
    .into_iter()
    .map(|(name, text)| Class {
        name,
        decompressed: text.len(),
        run: Run::Rules { text },
    })
    .collect()
}

/// The gateway's resident, peak resident (since the last reset) and CPU.
struct Usage {
    rss: u64,
    hwm: u64,
    cpu: Duration,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            * 1024
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the
    // 12th, stime the 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Usage {
        rss: kib("VmRSS:"),
        hwm: kib("VmHWM:"),
        cpu: Duration::from_millis(ticks * 10),
    }
}

/// Resets the peak resident size (`VmHWM`) to the current one.
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Polls `/-/healthy` on a fresh connection every 50 ms; the worst latency.
async fn health_poller(addr: String, stop: tokio::sync::watch::Receiver<bool>) -> Duration {
    let mut worst = Duration::ZERO;
    while !*stop.borrow() {
        let t = Instant::now();
        let ok = async {
            let mut s = TcpStream::connect(&addr).await.ok()?;
            s.write_all(b"GET /-/healthy HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.ok()?;
            buf.starts_with(b"HTTP/1.1 200").then_some(())
        };
        let answered = tokio::time::timeout(Duration::from_secs(10), ok).await;
        let took = t.elapsed();
        worst = worst.max(if matches!(answered, Ok(Some(()))) {
            took
        } else {
            Duration::from_secs(10)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worst
}

/// Where the gateway reads `--rules`, and its pid (for SIGHUP).
struct RulesFile<'a> {
    path: &'a std::path::Path,
    pid: u32,
}

async fn run(
    addr: &str,
    client: &reqwest::Client,
    run: &Run,
    rules: Option<&RulesFile<'_>>,
) -> (usize, String) {
    match run {
        Run::Http {
            path,
            headers,
            body,
            count,
        } => {
            let mut codes = std::collections::BTreeMap::new();
            for _ in 0..*count {
                let mut req = client
                    .post(format!("http://{addr}{path}"))
                    .body(body.clone());
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let code = match req.send().await {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(_) => "error".into(),
                };
                *codes.entry(code).or_insert(0) += 1;
            }
            let answers = codes
                .iter()
                .map(|(c, n)| format!("{n}x{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            (body.len() * count, answers)
        }
        Run::Trickle { clients, seconds } => {
            let mut conns = Vec::new();
            for _ in 0..*clients {
                if let Ok(mut s) = TcpStream::connect(addr).await {
                    let _ = s
                        .write_all(
                            b"POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n",
                        )
                        .await;
                    conns.push(s);
                }
            }
            let mut sent = 0;
            for _ in 0..*seconds {
                tokio::time::sleep(Duration::from_secs(1)).await;
                for s in &mut conns {
                    if s.write_all(b"#").await.is_ok() {
                        sent += 1;
                    }
                }
            }
            (sent, format!("{} connections", conns.len()))
        }
        Run::Unread {
            path,
            clients,
            seconds,
        } => {
            let mut conns = Vec::new();
            let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
            for _ in 0..*clients {
                if let Ok(mut s) = TcpStream::connect(addr).await {
                    let _ = s.write_all(request.as_bytes()).await;
                    conns.push(s);
                }
            }
            tokio::time::sleep(Duration::from_secs(*seconds)).await;
            (0, format!("{} connections", conns.len()))
        }
        Run::Flood {
            path,
            clients,
            seconds,
        } => {
            let until = Instant::now() + Duration::from_secs(*seconds);
            let url = format!("http://{addr}{path}");
            let tasks: Vec<_> = (0..*clients)
                .map(|_| {
                    let (client, url) = (client.clone(), url.clone());
                    tokio::spawn(async move {
                        let mut codes = std::collections::BTreeMap::<String, usize>::new();
                        while Instant::now() < until {
                            let code = match client.get(&url).send().await {
                                Ok(r) => {
                                    let code = r.status().as_u16().to_string();
                                    let _ = r.bytes().await;
                                    code
                                }
                                Err(_) => "error".into(),
                            };
                            *codes.entry(code).or_default() += 1;
                        }
                        codes
                    })
                })
                .collect();
            let mut codes = std::collections::BTreeMap::<String, usize>::new();
            for t in tasks {
                for (c, n) in t.await.unwrap_or_default() {
                    *codes.entry(c).or_default() += n;
                }
            }
            let answers = codes
                .iter()
                .map(|(c, n)| format!("{n}x{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            (0, answers)
        }
        Run::Rules { text } => {
            let Some(rules) = rules else {
                return (0, "no --rules-file".into());
            };
            let counted = || async {
                let text = client
                    .get(format!("http://{addr}/-/metrics"))
                    .send()
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                text.lines()
                    .find_map(|l| l.strip_prefix("pag_rules_reloads_total{result=\"error\"} "))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            let before = counted().await.unwrap_or(0.0);
            std::fs::write(rules.path, text).unwrap();
            let _ = std::process::Command::new("kill")
                .args(["-HUP", &rules.pid.to_string()])
                .status();
            let t = Instant::now();
            while counted().await.unwrap_or(0.0) <= before {
                if t.elapsed() > Duration::from_secs(30) {
                    return (text.len(), "not counted in 30 s".into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            std::fs::write(rules.path, "rules: []\n").unwrap();
            (
                text.len(),
                format!("refused, counted in {} ms", t.elapsed().as_millis()),
            )
        }
        Run::Hoard {
            clients,
            bytes,
            seconds,
        } => {
            // One header value that never ends: the server holds what it
            // read while it waits for the end of the headers.
            let mut head = b"POST /metrics HTTP/1.1\r\nhost: x\r\nx-pad: ".to_vec();
            head.resize(*bytes, b'p');
            let mut conns = Vec::new();
            let mut sent = 0;
            for _ in 0..*clients {
                if let Ok(mut s) = TcpStream::connect(addr).await {
                    // A gateway that refuses early closes: what it took counts.
                    let write = tokio::time::timeout(Duration::from_secs(2), s.write_all(&head));
                    if let Ok(Ok(())) = write.await {
                        sent += head.len();
                    }
                    conns.push(s);
                }
            }
            tokio::time::sleep(Duration::from_secs(*seconds)).await;
            let mut refused = 0;
            for s in &mut conns {
                let mut b = [0u8; 64];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(1), s.read(&mut b)).await
                    && (n == 0 || b[..n].starts_with(b"HTTP/1.1 431"))
                {
                    refused += 1;
                }
            }
            (
                sent,
                format!("{} connections, {refused} refused", conns.len()),
            )
        }
        Run::Idle { clients, seconds } => {
            let mut conns = Vec::new();
            for _ in 0..*clients {
                if let Ok(s) = TcpStream::connect(addr).await {
                    conns.push(s);
                }
            }
            tokio::time::sleep(Duration::from_secs(*seconds)).await;
            let mut closed = 0;
            for s in &mut conns {
                let mut b = [0u8; 1];
                if let Ok(Ok(0)) =
                    tokio::time::timeout(Duration::from_millis(1), s.read(&mut b)).await
                {
                    closed += 1;
                }
            }
            (
                0,
                format!("{} open, {closed} closed by the gateway", conns.len()),
            )
        }
    }
}

/// Runs every class against the gateway at `target` (pid `pid`), printing
/// one line per class.
pub async fn attack(
    target: &str,
    pid: u32,
    max_body: usize,
    preload: usize,
    rules_file: Option<&std::path::Path>,
) {
    let addr = target.trim_start_matches("http://").to_string();
    let client = reqwest::Client::new();
    if preload > 0 {
        // Something to scrape: unread scrapes then hold real bytes.
        for batch in 0..preload.div_ceil(10_000) {
            let body: String = (0..10_000)
                .map(|i| {
                    format!(
                        "preload{{b=\"{batch}\",i=\"{i}\",pad=\"{}\"}} 1\n",
                        "p".repeat(40)
                    )
                })
                .collect();
            let _ = client
                .post(format!("{target}/metrics"))
                .body(body)
                .send()
                .await;
        }
        // Grouping keys of 14 KiB, so a page of groups is a large answer.
        for g in 0..400 {
            let mut path = format!("/metrics/job/g{g}");
            for l in 0..7 {
                path.push_str(&format!("/l{l}/{g}{}", "v".repeat(2000)));
            }
            let _ = client
                .post(format!("{target}{path}"))
                .body("attack_group_total 1\n")
                .send()
                .await;
        }
    }
    println!(
        "| class | sent (bytes) | decompressed | answers | peak RSS growth | retained RSS | peak / (10x decompressed + 1 MiB) | gateway CPU | CPU per KiB | worst health |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for class in classes(max_body, rules_file) {
        let before = usage(pid);
        reset_peak(pid);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let poller = tokio::spawn(health_poller(addr.clone(), stop_rx));
        let rules = rules_file.map(|path| RulesFile { path, pid });
        let (sent, answers) = run(&addr, &client, &class.run, rules.as_ref()).await;
        let _ = stop_tx.send(true);
        let worst = poller.await.unwrap_or(Duration::from_secs(10));
        // Let connections close and memory settle before measuring what stays.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = usage(pid);
        let peak = after.hwm.saturating_sub(before.rss);
        let retained = after.rss as i64 - before.rss as i64;
        let cpu = after.cpu.saturating_sub(before.cpu);
        let requests = match &class.run {
            Run::Http { count, .. } => *count,
            _ => 1,
        };
        let budget = 10 * class.decompressed as u64 + (1 << 20);
        let per_kib = if class.decompressed > 0 {
            format!(
                "{:.1} µs",
                cpu.as_secs_f64() * 1e6 / (class.decompressed * requests) as f64 * 1024.0
            )
        } else {
            "-".into()
        };
        let ratio = if class.decompressed > 0 {
            format!("{:.2}", peak as f64 / budget as f64)
        } else {
            "-".into()
        };
        println!(
            "| {} | {sent} | {} | {answers} | {:.1} MiB | {:.1} MiB | {ratio} | {} ms | {per_kib} | {} ms |",
            class.name,
            class.decompressed,
            peak as f64 / 1048576.0,
            retained as f64 / 1048576.0,
            cpu.as_millis(),
            worst.as_millis(),
        );
    }
}
