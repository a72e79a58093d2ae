//! A real Prometheus server (Debian's `prometheus` package) scraping the
//! gateway on loopback with `honor_labels: true`: counters and a histogram
//! merged from mismatched bucket layouts come out of its query API as
//! pushed, `histogram_quantile` included. Once with the protobuf scrape
//! (Prometheus asks for it with `--enable-feature=native-histograms`; a
//! native histogram pushed over gRPC is then queried too), once with text:
//! Debian's Prometheus 2.42 asks for OpenMetrics text first and cannot be
//! told otherwise (`scrape_protocols` came in 2.49), so the text run is
//! OpenMetrics; the Prometheus 0.0.4 text goes through promtool, whose
//! `check metrics` parses and lints both of our expositions.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prom_aggregation_gateway_client::pb::io::prometheus::client as pb;
use serde_json::Value;

use super::pipe;
use crate::support::request;
use crate::support::{Gateway, TempDir, free_port, sample_value};

/// A Prometheus server scraping one gateway every second; killed on drop.
pub(crate) struct Prometheus {
    child: Child,
    base: String,
    dir: TempDir,
    client: reqwest::Client,
}

impl Prometheus {
    pub(crate) async fn start(gateway: &str, native_histograms: bool) -> Prometheus {
        let target = gateway.trim_start_matches("http://");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: aggregation-gateway\n    honor_labels: true\n\
             \x20   static_configs:\n      - targets: ['{target}']\n"
        );
        let native: &[&str] = if native_histograms {
            &["--enable-feature=native-histograms"]
        } else {
            &[]
        };
        Prometheus::start_with(&config, native).await
    }

    /// A Prometheus scraping nothing, taking remote-write requests at
    /// `/api/v1/write` (native histograms on).
    pub(crate) async fn receiver() -> Prometheus {
        Prometheus::start_with(
            "global:\n  scrape_interval: 1m\n",
            &[
                "--web.enable-remote-write-receiver",
                "--enable-feature=native-histograms",
            ],
        )
        .await
    }

    /// Where it takes remote-write requests.
    pub(crate) fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.base)
    }

    async fn start_with(config: &str, args: &[&str]) -> Prometheus {
        let dir = TempDir::new("prometheus");
        std::fs::write(dir.path.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path.join("prometheus.log")).unwrap();
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!(
            "--config.file={}",
            dir.path.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(log);
        let child = cmd
            .spawn()
            .expect("prometheus not found (apt install prometheus; scripts/test.sh does)");
        let p = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            client: reqwest::Client::new(),
        };
        p.wait("ready", |p| async move {
            let r = p.client.get(format!("{}/-/ready", p.base)).send().await;
            r.is_ok_and(|r| r.status() == 200).then_some(())
        })
        .await;
        p
    }

    /// Polls `check` until it gives a value; fails with Prometheus' log
    /// after a minute.
    pub(crate) async fn wait<'a, T, F, Fut>(&'a self, what: &str, check: F) -> T
    where
        F: Fn(&'a Prometheus) -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = check(self).await {
                return v;
            }
            let log = std::fs::read_to_string(self.dir.path.join("prometheus.log"));
            assert!(
                Instant::now() < deadline,
                "Prometheus: {what} did not happen; its log:\n{}",
                log.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An instant query: each result's labels and value.
    pub(crate) async fn query(&self, q: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let r = self.query_raw(q, None).await;
        r["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = serde_json::from_value(s["metric"].clone()).unwrap();
                let v = s["value"][1].as_str().unwrap().parse().unwrap();
                (labels, v)
            })
            .collect()
    }

    /// An instant query at `time` (Unix seconds; now when `None`): the
    /// API's JSON answer, checked to be a success.
    pub(crate) async fn query_raw(&self, q: &str, time: Option<f64>) -> Value {
        let q_enc = percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC);
        let at = time.map(|t| format!("&time={t:.3}")).unwrap_or_default();
        let body = self
            .client
            .get(format!("{}/api/v1/query?query={q_enc}{at}", self.base))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let r: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(r["status"], "success", "query {q}: {r}");
        r
    }

    /// The one value of `q`, once Prometheus has it.
    pub(crate) async fn value(&self, q: &str) -> f64 {
        let q = q.to_string();
        self.wait(&format!("a result for {q}"), |p| {
            let q = q.clone();
            async move {
                let r = p.query(&q).await;
                assert!(r.len() <= 1, "{q}: {r:?}");
                r.first().map(|(_, v)| *v)
            }
        })
        .await
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two senders: counters, and one histogram each with its own buckets.
async fn push_senders(gw: &Gateway) {
    gw.push_ok(
        "/metrics/job/batch/instance/a",
        "# HELP jobs_done_total Jobs done.\n# TYPE jobs_done_total counter\n\
         jobs_done_total{queue=\"q\"} 3\n\
         # HELP job_seconds Job time.\n# TYPE job_seconds histogram\n\
         job_seconds_bucket{le=\"0.1\"} 2\njob_seconds_bucket{le=\"1\"} 4\n\
         job_seconds_bucket{le=\"+Inf\"} 4\njob_seconds_sum 1.5\njob_seconds_count 4\n",
    )
    .await;
    for _ in 0..2 {
        gw.push_ok(
            "/metrics/job/batch/instance/a",
            "# TYPE jobs_done_total counter\njobs_done_total{queue=\"q\"} 2\n\
             # TYPE job_seconds histogram\n\
             job_seconds_bucket{le=\"0.5\"} 2\njob_seconds_bucket{le=\"+Inf\"} 2\n\
             job_seconds_sum 0.5\njob_seconds_count 2\n",
        )
        .await;
    }
    push_edge_cases(gw).await;
}

/// Pushes of every class that could once break a scrape: refused ones (the
/// scrape must be as before) and accepted edge cases (Python's `_created`
/// gauges, an infinite sum). Prometheus must still scrape the target (`up`
/// is 1) and promtool must still pass it.
async fn push_edge_cases(gw: &Gateway) {
    let refused: &[(&str, &str)] = &[
        ("/metrics", "x{__name__=\"y\"} 1\n"),
        ("/metrics/__tenant/a", "x 1\n"),
        (
            "/metrics/le/1",
            "# TYPE edge_seconds histogram\nedge_seconds_bucket{le=\"+Inf\"} 1\nedge_seconds_count 1\n",
        ),
        (
            "/metrics",
            "# TYPE job_seconds_bucket gauge\njob_seconds_bucket 1\n",
        ),
        ("/metrics", "# TYPE jobs_done counter\njobs_done 1\n"),
        (
            "/metrics",
            "# TYPE jobs_done_created gauge\njobs_done_created 1\n",
        ),
    ];
    for (path, body) in refused {
        let r = gw.push(path, body).await;
        assert_eq!(r.status, 400, "{path}: {body}: {}", r.text());
    }
    gw.push_ok(
        "/metrics/job/python",
        "# HELP py_requests_total Requests.\n# TYPE py_requests_total counter\npy_requests_total 1.0\n\
         # HELP py_requests_created Requests.\n# TYPE py_requests_created gauge\npy_requests_created 1.7e+09\n\
         # HELP edge_level A level.\n# TYPE edge_level gauge\nedge_level +Inf\n",
    )
    .await;
    let r = gw
        .push(
            "/metrics/job/python",
            "# TYPE edge_level gauge\nedge_level -Inf\n",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

/// What both runs check: honor_labels kept the pushed `job`, the sums and
/// the merged histogram's quantile.
async fn check_classic(prom: &Prometheus) {
    // Summed: 3 + 2 + 2.
    let done = prom
        .value(r#"jobs_done_total{job="batch",instance="a",queue="q"}"#)
        .await;
    assert_eq!(done, 7.0);
    let series = prom.query("jobs_done_total").await;
    assert_eq!(series.len(), 1, "{series:?}");
    assert!(
        !series[0].0.contains_key("exported_job"),
        "honor_labels lost: {series:?}"
    );
    // Bounds 0.1, 0.5, 1, +Inf: 2, 2+4, 4+4, 8 (the contract's union, §4). The median
    // (4th of 8) lies in (0.1, 0.5], 2 of its 4 observations in: 0.3.
    let median = prom
        .value(r#"histogram_quantile(0.5, job_seconds_bucket{job="batch"})"#)
        .await;
    assert!((median - 0.3).abs() < 1e-9, "median {median}");
    assert_eq!(prom.value("job_seconds_count").await, 8.0);
    assert_eq!(prom.value("job_seconds_sum").await, 2.5);
    assert_eq!(prom.value(r#"up{job="aggregation-gateway"}"#).await, 1.0);
    assert_eq!(
        prom.value(r#"py_requests_total{job="python"}"#).await,
        1.0,
        "the Python-style counter"
    );
}

async fn scrapes(gw: &Gateway, format: &str) -> f64 {
    let text = gw.request("GET", "/-/metrics", &[], "").await.text();
    sample_value(&text, &format!("pag_scrapes_total{{format=\"{format}\"}}")).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus; run by scripts/test.sh"]
async fn prometheus_scrapes_openmetrics_text() {
    let gw = Gateway::start().await;
    push_senders(&gw).await;
    // The tests' own validity checks scrape every format: count from here.
    let (om, pb) = (
        scrapes(&gw, "openmetrics").await,
        scrapes(&gw, "protobuf").await,
    );
    let prom = Prometheus::start(&gw.base, false).await;
    check_classic(&prom).await;
    assert!(scrapes(&gw, "openmetrics").await >= om + 1.0);
    assert_eq!(scrapes(&gw, "protobuf").await, pb);
}

/// A native histogram (schema 0: buckets (0.5,1], (1,2], (2,4]) pushed twice
/// over gRPC with 1, 2, 1 observations each time.
pub(crate) fn native_histogram() -> pb::MetricFamily {
    pb::MetricFamily {
        name: Some("native_seconds".into()),
        help: Some("A native histogram.".into()),
        r#type: Some(pb::MetricType::Histogram as i32),
        metric: vec![pb::Metric {
            histogram: Some(pb::Histogram {
                sample_count: Some(4),
                sample_sum: Some(7.0),
                schema: Some(0),
                zero_threshold: Some(1e-128),
                zero_count: Some(0),
                positive_span: vec![pb::BucketSpan {
                    offset: Some(0),
                    length: Some(3),
                }],
                positive_delta: vec![1, 1, -1],
                ..Default::default()
            }),
            ..Default::default()
        }],
        unit: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus; run by scripts/test.sh"]
async fn prometheus_scrapes_protobuf_with_native_histograms() {
    let gw = Gateway::start().await;
    push_senders(&gw).await;
    let mut grpc = gw.grpc().await;
    for _ in 0..2 {
        grpc.push(request(vec![native_histogram()], &[("job", "native")]))
            .await
            .expect("native histogram push");
    }
    // Buckets at the lowest and highest index accepted, at the finest schema.
    let mut extremes = native_histogram();
    extremes.name = Some("native_extremes".into());
    if let Some(h) = extremes.metric[0].histogram.as_mut() {
        h.schema = Some(8);
        h.sample_count = Some(2);
        h.positive_span = vec![
            pb::BucketSpan {
                offset: Some(-(1 << 20)),
                length: Some(1),
            },
            pb::BucketSpan {
                offset: Some((1 << 21) - 1),
                length: Some(1),
            },
        ];
        h.positive_delta = vec![1, 0];
    }
    grpc.push(request(vec![extremes], &[("job", "native")]))
        .await
        .expect("native histogram at the index extremes");
    let (om, pb) = (
        scrapes(&gw, "openmetrics").await,
        scrapes(&gw, "protobuf").await,
    );
    let prom = Prometheus::start(&gw.base, true).await;
    check_classic(&prom).await;
    // 2, 4, 2 observations in (0.5,1], (1,2], (2,4]: the 0.75 quantile is
    // the 6th of 8, the top of (1,2]: 2, however a Prometheus version
    // interpolates inside native buckets (linearly in 2.42, exponentially
    // since 2.48).
    let q75 = prom
        .value(r#"histogram_quantile(0.75, native_seconds{job="native"})"#)
        .await;
    assert!((q75 - 2.0).abs() < 1e-9, "native 0.75 quantile {q75}");
    assert_eq!(
        prom.value(r#"histogram_count(native_seconds{job="native"})"#)
            .await,
        8.0
    );
    assert!(scrapes(&gw, "protobuf").await >= pb + 1.0);
    assert_eq!(scrapes(&gw, "openmetrics").await, om);
}

/// `promtool check metrics` (lint) on the aggregate and on /-/metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs promtool; run by scripts/test.sh"]
async fn promtool_check_metrics() {
    let gw = Gateway::start().await;
    push_senders(&gw).await;
    for path in ["/metrics", "/-/metrics"] {
        let text = gw.request("GET", path, &[], "").await.text();
        let out = pipe(
            &format!("promtool check metrics on {path}"),
            Command::new("promtool").args(["check", "metrics"]),
            text.as_bytes(),
        );
        assert!(
            out.is_empty(),
            "promtool on {path}: {}",
            String::from_utf8_lossy(&out)
        );
    }
}

/// Prometheus scraping across a gateway-side reset (the series deleted and
/// pushed again): the OpenMetrics `_created` it reads moves forward (2.42
/// keeps it as a series of its own, `c_created`), and the counter's drop
/// is a reset to it, so `increase()` over the reset counts the new push.
/// Once over OpenMetrics, once over protobuf (whose `created_timestamp`
/// 2.42 reads without storing: the scrape must stay whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus; run by scripts/test.sh"]
async fn prometheus_reads_start_times_across_a_gateway_reset() {
    for protobuf in [false, true] {
        let gw = Gateway::start().await;
        let body = |v: u32| format!("# TYPE c_total counter\nc_total {v}\n");
        gw.push_ok("/metrics/job/a", &body(5)).await;
        let prom = Prometheus::start(&gw.base, protobuf).await;
        let first = prom.value("c_total").await;
        assert_eq!(first, 5.0);
        let created_before = if protobuf {
            None
        } else {
            Some(prom.value("c_created").await)
        };
        let r = gw.request("DELETE", "/metrics/job/a", &[], "").await;
        assert_eq!(r.status, 202);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        gw.push_ok("/metrics/job/a", &body(3)).await;
        prom.wait("the counter after the reset", |p| async move {
            let v = p.query("c_total").await;
            (v.len() == 1 && v[0].1 == 3.0).then_some(())
        })
        .await;
        assert_eq!(prom.value("resets(c_total[1m])").await, 1.0);
        if let Some(before) = created_before {
            let after = prom
                .wait("a later c_created", |p| async move {
                    let v = p.query("c_created").await;
                    v.first().map(|(_, c)| *c).filter(|c| *c > before)
                })
                .await;
            assert!(after - before >= 1.0, "{before} -> {after}");
        }
        assert_eq!(prom.value("up").await, 1.0);
        assert_eq!(
            prom.value("count_over_time(up[1m]) - sum_over_time(up[1m])")
                .await,
            0.0,
            "every scrape whole"
        );
    }
}
