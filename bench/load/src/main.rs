//! `pag-load`: drives a gateway (ours or a peer) over loopback and reports
//! requests/s, samples/s and latency percentiles.
//!
//! ```text
//! cargo run --release -p pag-load -- push --protocol text --series 10 --concurrency 64 --seconds 10
//! cargo run --release -p pag-load -- push --protocol grpc --series 10000 --concurrency 8
//! cargo run --release -p pag-load -- scrape --preload 100000 --times 20 --accept protobuf
//! ```
//!
//! Every push carries the same `series` counter series (10 labels' worth of
//! text per line, as client libraries write them), so after the first push
//! the gateway updates existing series: the steady state of many senders.

mod attack;

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use prom_aggregation_gateway::pb::aggregation_gateway::v1::PushResponse;
use prom_aggregation_gateway::transport::grpc::codec::Codec;
use prom_aggregation_gateway_client::MetricFamily;
use prom_aggregation_gateway_client::pb::io::prometheus::client as pb;
use prost::Message;

#[derive(Parser)]
#[command(about = "Load generator for prom-aggregation-gateway")]
struct Args {
    /// Base URL of the gateway.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    target: String,
    /// Push path (for peers that want a job, e.g. /metrics/job/load).
    #[arg(long, default_value = "/metrics/job/load", global = true)]
    path: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Concurrent pushes for a fixed time.
    Push {
        #[arg(long, value_enum, default_value_t = Protocol::Text)]
        protocol: Protocol,
        /// Series per push.
        #[arg(long, default_value_t = 10)]
        series: usize,
        /// Concurrent senders (connections).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Metric name prefix (distinct runs can use distinct series).
        #[arg(long, default_value = "load")]
        prefix: String,
        /// Meanwhile, scrape `/metrics` (text) every this many
        /// milliseconds, one scrape at a time: push latency under scrapes.
        #[arg(long)]
        scrape_every_ms: Option<u64>,
        /// What `--scrape-every-ms` reads: `/metrics`, or a status API view
        /// (`/api/v1/cardinality`, `/api/v1/families?limit=50`) as the
        /// status page polls it.
        #[arg(long, default_value = "/metrics")]
        poll_path: String,
    },
    /// Hostile inputs, one class at a time, with what each cost the
    /// gateway (`bench/resources.sh` runs it).
    Attack {
        /// The gateway's process id, for its RSS and CPU time.
        #[arg(long)]
        pid: u32,
        /// The gateway's --max-body-bytes.
        #[arg(long, default_value_t = 16 << 20)]
        max_body: usize,
        /// Series to push first, so unread scrapes hold real bytes.
        #[arg(long, default_value_t = 100_000)]
        preload: usize,
        /// The gateway's `--rules` file: the rules classes rewrite it and
        /// send SIGHUP (left out without it).
        #[arg(long)]
        rules_file: Option<std::path::PathBuf>,
    },
    /// Timed sequential scrapes, after an optional preload of series.
    Scrape {
        /// Series to push first (in pushes of 10k).
        #[arg(long, default_value_t = 0)]
        preload: usize,
        #[arg(long, default_value_t = 20)]
        times: usize,
        #[arg(long, value_enum, default_value_t = Accept::Text)]
        accept: Accept,
        /// Ask for gzip.
        #[arg(long)]
        gzip: bool,
        /// Push one small change before each scrape, so a gateway that
        /// caches its rendering must render again (an honest scrape time).
        #[arg(long)]
        touch: bool,
        /// Labels of the preloaded series.
        #[arg(long, value_enum, default_value_t = Shape::Wide)]
        shape: Shape,
    },
}

/// Labels of preloaded series.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Shape {
    /// `method`, `path`, `status`, `instance` (and `job` from the path):
    /// what the push workloads send.
    Wide,
    /// `code` and `route`, two short labels (and `job`).
    Short,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Protocol {
    Text,
    Protobuf,
    Grpc,
    /// OTLP/HTTP protobuf to `/v1/metrics` (the same series as delta sums).
    Otlp,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Accept {
    Text,
    Openmetrics,
    Protobuf,
}

const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// `n` counter series of family `{prefix}_requests_total`, starting at `offset`.
fn text_body(prefix: &str, n: usize, offset: usize) -> String {
    let mut out = format!(
        "# HELP {prefix}_requests_total Requests.\n# TYPE {prefix}_requests_total counter\n"
    );
    for i in offset..offset + n {
        out.push_str(&format!(
            "{prefix}_requests_total{{method=\"GET\",path=\"/api/v1/items/{i}\",status=\"200\",instance=\"host-{}\"}} 1\n",
            i % 17
        ));
    }
    out
}

/// `n` counter series of `{prefix}_requests_total` with two short labels.
fn short_body(prefix: &str, n: usize, offset: usize) -> String {
    let mut out = format!("# TYPE {prefix}_requests_total counter\n");
    for i in offset..offset + n {
        out.push_str(&format!(
            "{prefix}_requests_total{{code=\"{}\",route=\"r{}\"}} 1\n",
            i % 1000,
            i / 1000
        ));
    }
    out
}

fn families(prefix: &str, n: usize) -> Vec<MetricFamily> {
    let label = |k: &str, v: String| pb::LabelPair {
        name: Some(k.into()),
        value: Some(v),
    };
    vec![pb::MetricFamily {
        name: Some(format!("{prefix}_requests_total")),
        help: Some("Requests.".into()),
        r#type: Some(pb::MetricType::Counter as i32),
        metric: (0..n)
            .map(|i| pb::Metric {
                label: vec![
                    label("method", "GET".into()),
                    label("path", format!("/api/v1/items/{i}")),
                    label("status", "200".into()),
                    label("instance", format!("host-{}", i % 17)),
                ],
                counter: Some(pb::Counter {
                    value: Some(1.0),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        unit: None,
    }]
}

/// The same series as one OTLP export of delta sums (service `load`),
/// which the gateway names `{prefix}_requests_total{job="load",...}`.
fn otlp_body(fams: &[MetricFamily]) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1 as m;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let metrics = fams
        .iter()
        .map(|f| m::Metric {
            name: f.name().trim_end_matches("_total").into(),
            description: f.help().into(),
            data: Some(m::metric::Data::Sum(m::Sum {
                data_points: f
                    .metric
                    .iter()
                    .map(|metric| m::NumberDataPoint {
                        attributes: metric
                            .label
                            .iter()
                            .map(|l| kv(l.name(), l.value()))
                            .collect(),
                        value: Some(m::number_data_point::Value::AsDouble(
                            metric.counter.as_ref().and_then(|c| c.value).unwrap_or(0.0),
                        )),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: m::AggregationTemporality::Delta as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![m::ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "load")],
                ..Default::default()
            }),
            scope_metrics: vec![m::ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Sends a pre-encoded `PushRequest` as is, so the load tool spends no CPU
/// re-encoding a 10k-series batch per call on the machine it shares with
/// the gateway (the HTTP bodies are pre-encoded too).
async fn grpc_push_raw(
    grpc: &mut tonic::client::Grpc<tonic::transport::Channel>,
    request: bytes::Bytes,
) -> Result<(), tonic::Status> {
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/aggregation_gateway.v1.AggregationGateway/Push",
    );
    // The server's codec, turned round: bytes out, PushResponse in.
    let codec = Codec::<bytes::Bytes, PushResponse>::default();
    grpc.unary(tonic::Request::new(request), path, codec)
        .await
        .map(|_| ())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn push(
    args: &Args,
    protocol: Protocol,
    series: usize,
    concurrency: usize,
    seconds: u64,
    prefix: &str,
    // `--scrape-every-ms` and `--poll-path`.
    poll: Option<(u64, &str)>,
) -> Result<(), Box<dyn std::error::Error>> {
    let url = format!("{}{}", args.target, args.path);
    let text = text_body(prefix, series, 0);
    let fams = families(prefix, series);
    let mut proto = Vec::new();
    for f in &fams {
        f.encode_length_delimited(&mut proto)?;
    }
    let otlp = bytes::Bytes::from(otlp_body(&fams));
    let otlp_url = format!("{}/v1/metrics", args.target);
    let grpc_request = bytes::Bytes::from(
        prom_aggregation_gateway_client::PushRequest {
            metric_families: fams.clone(),
            labels: [("job".to_string(), "load".to_string())].into(),
        }
        .encode_to_vec(),
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, text, proto, request) = (
            http.clone(),
            url.clone(),
            text.clone(),
            proto.clone(),
            grpc_request.clone(),
        );
        let (otlp, otlp_url) = (otlp.clone(), otlp_url.clone());
        let mut grpc = if protocol == Protocol::Grpc {
            let channel = tonic::transport::Endpoint::from_shared(args.target.clone())?
                .connect()
                .await?;
            Some(tonic::client::Grpc::new(channel))
        } else {
            None
        };
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let t = Instant::now();
                let ok = match (protocol, grpc.as_mut()) {
                    (Protocol::Grpc, Some(c)) => grpc_push_raw(c, request.clone()).await.is_ok(),
                    (Protocol::Otlp, _) => http
                        .post(&otlp_url)
                        .header("content-type", "application/x-protobuf")
                        .body(otlp.clone())
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success()),
                    (Protocol::Protobuf, _) => http
                        .post(&url)
                        .header("content-type", PROTO_CT)
                        .body(proto.clone())
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success()),
                    _ => http
                        .post(&url)
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(text.clone())
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success()),
                };
                if ok {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    // The scraper runs on a thread and runtime of its own, as a Prometheus
    // server is a process of its own: on the pushers' runtime, reading a
    // million-series scrape (100 MB) held up the pushes being timed.
    let scraper = poll.map(|(every, poll_path)| {
        let url = format!("{}{poll_path}", args.target);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the scraper");
            runtime.block_on(async move {
                let http = reqwest::Client::new();
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let next = Instant::now() + Duration::from_millis(every);
                    if let Ok(r) = http.get(&url).send().await {
                        let _ = r.bytes().await;
                    }
                    n += 1;
                    tokio::time::sleep_until(next.into()).await;
                }
                n
            })
        })
    });
    let started = Instant::now();
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let scrapes = match scraper {
        // Ends within a scrape of the deadline.
        Some(s) => tokio::task::spawn_blocking(move || s.join().unwrap_or(0)).await?,
        None => 0,
    };
    lat.sort();
    let rps = lat.len() as f64 / elapsed;
    println!(
        "push protocol={protocol:?} series={series} concurrency={concurrency} scrapes={scrapes} requests={} errors={errors} req/s={rps:.0} samples/s={:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3}",
        lat.len(),
        rps * series as f64,
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.9)),
        ms(percentile(&lat, 0.99)),
    );
    Ok(())
}

async fn scrape(
    args: &Args,
    preload: usize,
    times: usize,
    accept: Accept,
    gzip: bool,
    touch: bool,
    shape: Shape,
) -> Result<(), Box<dyn std::error::Error>> {
    let http = reqwest::Client::new();
    let url = format!("{}{}", args.target, args.path);
    let mut offset = 0;
    let loading = Instant::now();
    while offset < preload {
        let n = (preload - offset).min(10_000);
        let body = match shape {
            Shape::Wide => text_body("preload", n, offset),
            Shape::Short => short_body("preload", n, offset),
        };
        let r = http.post(&url).body(body).send().await?;
        if !r.status().is_success() {
            return Err(format!("preload push failed: {} {}", r.status(), r.text().await?).into());
        }
        offset += n;
    }
    let accept_header = match accept {
        Accept::Text => "text/plain;version=0.0.4",
        Accept::Openmetrics => "application/openmetrics-text;version=1.0.0",
        Accept::Protobuf => {
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
        }
    };
    let preload_s = loading.elapsed().as_secs_f64();
    let (mut lat, mut touched) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..times {
        let t = Instant::now();
        if touch {
            http.post(format!("{url}/chunk/touch"))
                .body(text_body("touch", 1, 0))
                .send()
                .await?;
        }
        let pushed = t.elapsed();
        let mut req = http
            .get(format!("{}/metrics", args.target))
            .header("accept", accept_header);
        if gzip {
            req = req.header("accept-encoding", "gzip");
        }
        let t = Instant::now();
        let body = req.send().await?.bytes().await?;
        lat.push(t.elapsed());
        touched.push(pushed + t.elapsed());
        bytes = body.len();
    }
    lat.sort();
    touched.sort();
    let first = |l: &[Duration]| l.first().copied().unwrap_or_default();
    let last = |l: &[Duration]| l.last().copied().unwrap_or_default();
    println!(
        "scrape preload={preload} preload_s={preload_s:.3} accept={accept:?} gzip={gzip} touch={touch} bytes={bytes} times={times} p50_ms={:.2} min_ms={:.2} max_ms={:.2} push_and_scrape_p50_ms={:.2}",
        ms(percentile(&lat, 0.5)),
        ms(first(&lat)),
        ms(last(&lat)),
        ms(percentile(&touched, 0.5)),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    match &args.cmd {
        Cmd::Push {
            protocol,
            series,
            concurrency,
            seconds,
            prefix,
            scrape_every_ms,
            poll_path,
        } => {
            push(
                &args,
                *protocol,
                *series,
                *concurrency,
                *seconds,
                prefix,
                scrape_every_ms.map(|every| (every, poll_path.as_str())),
            )
            .await
        }
        Cmd::Scrape {
            preload,
            times,
            accept,
            gzip,
            touch,
            shape,
        } => scrape(&args, *preload, *times, *accept, *gzip, *touch, *shape).await,
        Cmd::Attack {
            pid,
            max_body,
            preload,
            rules_file,
        } => {
            attack::attack(
                &args.target,
                *pid,
                *max_body,
                *preload,
                rules_file.as_deref(),
            )
            .await;
            Ok(())
        }
    }
}
