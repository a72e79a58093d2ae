//! The remote-write output into real receivers, both from Debian:
//! Prometheus 2.42 with `--web.enable-remote-write-receiver` (native
//! histograms on) and VictoriaMetrics 1.79. Known totals pushed through
//! the gateway come out of the receivers' HTTP APIs with the right values,
//! labels and types; DELETE and expiry reach Prometheus as staleness; and
//! three replicas writing into one Prometheus sum to the ground truth,
//! through a restart with a snapshot and one without.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use prom_aggregation_gateway::Config;
use prom_aggregation_gateway::remote_write::{self, config};
use serde_json::Value;

use super::prometheus::{Prometheus, native_histogram};
use crate::support::{Gateway, Listen, TempDir, eventually, free_port, request};

/// A gateway remote-writing to `url` every second as replica `replica`.
fn config_for(url: &str, replica: &str) -> Config {
    Config {
        remote_write: Some(Arc::new(remote_write::Settings {
            targets: config::targets(&[url.to_string()], None).unwrap(),
            interval: Duration::from_secs(1),
            max_samples_per_send: 5000,
            replica: Some(("gateway_replica".into(), replica.into())),
        })),
        ..Config::default()
    }
}

/// Counters and a classic histogram, pushed by two senders.
async fn push_known_totals(gw: &Gateway) {
    for instance in ["a", "b"] {
        gw.push_ok(
            &format!("/metrics/job/batch/instance/{instance}"),
            "# HELP jobs_done_total Jobs done.\n# TYPE jobs_done_total counter\n\
             jobs_done_total{queue=\"q\"} 3\n\
             # TYPE job_seconds histogram\n\
             job_seconds_bucket{le=\"0.5\"} 1\njob_seconds_bucket{le=\"+Inf\"} 2\n\
             job_seconds_sum 1.5\njob_seconds_count 2\n",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus; run by scripts/test.sh"]
async fn prometheus_receives_sums_histograms_and_staleness() {
    let prom = Prometheus::receiver().await;
    let config = Config {
        series_ttl: Some(Duration::from_secs(3)),
        ..config_for(&prom.write_url(), "r1")
    };
    let gw = Gateway::start_on(
        config,
        Listen {
            grpc: true,
            lifecycle: false,
        },
    )
    .await;
    push_known_totals(&gw).await;
    let mut grpc = gw.grpc().await;
    for _ in 0..2 {
        grpc.push(request(vec![native_histogram()], &[("job", "native")]))
            .await
            .expect("native histogram push");
    }
    // Values and labels: the two instances' pushes, summed.
    let r = prom
        .wait("both instances", |p| async move {
            let r = p.query("jobs_done_total").await;
            (r.len() == 2).then_some(r)
        })
        .await;
    for (labels, v) in &r {
        assert_eq!(*v, 3.0);
        let want: BTreeMap<String, String> = [
            ("__name__", "jobs_done_total"),
            ("gateway_replica", "r1"),
            ("job", "batch"),
            ("instance", labels["instance"].as_str()),
            ("queue", "q"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(labels, &want);
    }
    assert_eq!(prom.value("sum(jobs_done_total)").await, 6.0);
    assert_eq!(
        prom.value(r#"sum(job_seconds_bucket{le="0.5"})"#).await,
        2.0
    );
    assert_eq!(
        prom.value(r#"sum(job_seconds_bucket{le="+Inf"})"#).await,
        4.0
    );
    assert_eq!(prom.value("sum(job_seconds_count)").await, 4.0);
    // The native histogram arrives as a histogram: 2, 4, 2 observations.
    assert_eq!(
        prom.value(r#"histogram_count(native_seconds{job="native"})"#)
            .await,
        8.0
    );
    let q75 = prom
        .value(r#"histogram_quantile(0.75, native_seconds{job="native"})"#)
        .await;
    assert!((q75 - 2.0).abs() < 1e-9, "native 0.75 quantile {q75}");
    // DELETE: a staleness marker; an instant query no longer finds it,
    // well inside the 5 minute lookback.
    let del = gw
        .client
        .delete(format!("{}/metrics/job/batch/instance/a", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 202);
    prom.wait("instance a stale after DELETE", |p| async move {
        let r = p.query(r#"jobs_done_total{instance="a"}"#).await;
        r.is_empty().then_some(())
    })
    .await;
    assert_eq!(
        prom.query(r#"jobs_done_total{instance="b"}"#).await.len(),
        1
    );
    // Expiry (3 s without a push): the rest goes stale too.
    prom.wait("everything stale after expiry", |p| async move {
        let r = p.query_raw(r#"{gateway_replica="r1"}"#, None).await;
        let left = r["data"]["result"].as_array().unwrap().len();
        (left == 0).then_some(())
    })
    .await;
}

/// A VictoriaMetrics single node on loopback; killed on drop.
struct Victoria {
    child: Child,
    base: String,
    _dir: TempDir,
    client: reqwest::Client,
}

impl Victoria {
    async fn start() -> Victoria {
        let dir = TempDir::new("victoria");
        let port = free_port();
        let child = Command::new("victoria-metrics")
            .arg(format!(
                "-storageDataPath={}",
                dir.path.join("data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "victoria-metrics not found (apt install victoria-metrics; scripts/test.sh does)",
            );
        let v = Victoria {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
            client: reqwest::Client::new(),
        };
        let (client, url) = (&v.client, format!("{}/health", v.base));
        eventually("victoria-metrics up", Duration::from_secs(30), || async {
            let r = client.get(&url).send().await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
        v
    }

    /// Every series `selector` matches, as `name{labels}` (sorted) to its
    /// newest value, from `/api/v1/export` after a flush.
    async fn export(&self, selector: &str) -> BTreeMap<String, f64> {
        let flush = self
            .client
            .get(format!("{}/internal/force_flush", self.base))
            .send()
            .await
            .unwrap();
        assert!(flush.status().is_success());
        let q = percent_encoding::utf8_percent_encode(selector, percent_encoding::NON_ALPHANUMERIC);
        let body = self
            .client
            .get(format!("{}/api/v1/export?match[]={q}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut out = BTreeMap::new();
        for line in body.lines().filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap();
            let labels: BTreeMap<String, String> =
                serde_json::from_value(v["metric"].clone()).unwrap();
            let name = labels["__name__"].clone();
            let rest: Vec<String> = labels
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            let values = v["values"].as_array().unwrap();
            let last = values.last().and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
            out.insert(format!("{name}{{{}}}", rest.join(",")), last);
        }
        out
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs victoria-metrics; run by scripts/test.sh"]
async fn victoria_metrics_receives_the_sums() {
    let vm = Victoria::start().await;
    let gw = Gateway::start_with(config_for(&format!("{}/api/v1/write", vm.base), "r1")).await;
    push_known_totals(&gw).await;
    let r = "gateway_replica=\"r1\",instance=\"a\",job=\"batch\"";
    let want: BTreeMap<String, f64> = [
        (format!("job_seconds_bucket{{{r},le=\"+Inf\"}}"), 2.0),
        (format!("job_seconds_bucket{{{r},le=\"0.5\"}}"), 1.0),
        (format!("job_seconds_count{{{r}}}"), 2.0),
        (format!("job_seconds_sum{{{r}}}"), 1.5),
        (format!("jobs_done_total{{{r},queue=\"q\"}}"), 3.0),
    ]
    .into_iter()
    .collect();
    let got = eventually(
        "the sums in victoria-metrics",
        Duration::from_secs(30),
        || async {
            let got = vm.export(r#"{gateway_replica="r1",instance="a"}"#).await;
            (got == want).then_some(got)
        },
    )
    .await;
    assert_eq!(got, want);
    // More pushes: the newest values follow.
    push_known_totals(&gw).await;
    eventually("the new sums", Duration::from_secs(30), || async {
        let got = vm.export(r#"{__name__="jobs_done_total"}"#).await;
        (got.values().all(|v| *v == 6.0) && got.len() == 2).then_some(())
    })
    .await;
}

/// `fn(series[D])` for one series, `D` reaching exactly from its first
/// sample to its last, evaluated at the last: no extrapolation.
async fn over_run(prom: &Prometheus, function: &str, series: &str) -> f64 {
    let r = prom.query_raw(&format!("{series}[10m]"), None).await;
    let result = r["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{series}: {r}");
    let values = result[0]["values"].as_array().unwrap();
    let t = |i: usize| values[i][0].as_f64().unwrap();
    let (first, last) = (t(0), t(values.len() - 1));
    assert_eq!(values[0][1], "0", "{series} must start at 0");
    let range_ms = ((last - first) * 1000.0).round() as i64;
    let r = prom
        .query_raw(&format!("{function}({series}[{range_ms}ms])"), Some(last))
        .await;
    r["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus; run by scripts/test.sh"]
async fn three_replicas_sum_to_the_truth_through_restarts() {
    let prom = Prometheus::receiver().await;
    let dir = TempDir::new("replicas");
    let snapshot = |i: usize| dir.path.join(format!("r{i}.snapshot"));
    let replica_config = |i: usize| Config {
        persistence_file: Some(snapshot(i)),
        ..config_for(&prom.write_url(), &format!("r{i}"))
    };
    let mut replicas = Vec::new();
    for i in 0..3 {
        replicas.push(Gateway::start_with(replica_config(i)).await);
    }
    let zero = "# TYPE requests_total counter\nrequests_total{path=\"/\"} 0\n";
    for gw in &replicas {
        gw.push_ok("/metrics/job/web", zero).await;
    }
    for i in 0..3 {
        let q = format!(r#"requests_total{{gateway_replica="r{i}"}}"#);
        prom.value(&q).await;
    }
    // A stream of pushes split over the replicas, as a load balancer would.
    let mut truth = 0.0;
    let push_round = |replicas: &Vec<Gateway>, round: u32, truth: &mut f64| {
        let mut pushes = Vec::new();
        for n in 0..30u32 {
            let v = f64::from(1 + (n * 7 + round) % 5);
            *truth += v;
            let gw = &replicas[(n as usize + round as usize) % 3];
            pushes.push((gw.base.clone(), v));
        }
        pushes
    };
    let client = reqwest::Client::new();
    let send = |pushes: Vec<(String, f64)>| {
        let client = client.clone();
        async move {
            for (base, v) in pushes {
                let r = client
                    .post(format!("{base}/metrics/job/web"))
                    .body(format!(
                        "# TYPE requests_total counter\nrequests_total{{path=\"/\"}} {v}\n"
                    ))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    };
    send(push_round(&replicas, 0, &mut truth)).await;
    let want = truth;
    prom.wait("the summed query at the truth", |p| async move {
        let r = p
            .query("sum without (gateway_replica) (requests_total)")
            .await;
        (r.len() == 1 && r[0].1 == want).then_some(())
    })
    .await;
    // Replica 1 restarts from its snapshot, replica 2 from nothing.
    let r1 = replicas.remove(1);
    r1.stop().await.unwrap();
    let r2 = replicas.remove(1);
    r2.stop().await.unwrap();
    std::fs::remove_file(snapshot(2)).unwrap();
    replicas.insert(1, Gateway::start_with(replica_config(1)).await);
    replicas.insert(2, Gateway::start_with(replica_config(2)).await);
    // Let the receiver see the restarted replicas' first values.
    tokio::time::sleep(Duration::from_secs(2)).await;
    send(push_round(&replicas, 1, &mut truth)).await;
    send(push_round(&replicas, 2, &mut truth)).await;
    // Every replica's newest value has reached the receiver.
    let mut newest = Vec::new();
    for gw in &replicas {
        let scrape = gw.scrape().await;
        newest.push(
            crate::support::sample_value(&scrape, "requests_total{job=\"web\",path=\"/\"}")
                .unwrap_or(0.0),
        );
    }
    for (i, v) in newest.iter().enumerate() {
        let q = format!(r#"requests_total{{gateway_replica="r{i}"}}"#);
        let v = *v;
        prom.wait(&format!("r{i} at {v}"), |p| {
            let q = q.clone();
            async move {
                let r = p.query(&q).await;
                (r.len() == 1 && r[0].1 == v).then_some(())
            }
        })
        .await;
    }
    // increase() sees replica 2's restart as a counter reset: summed over
    // the replicas it is every increment pushed.
    let mut increase = 0.0;
    for i in 0..3 {
        let series = format!(r#"requests_total{{gateway_replica="r{i}"}}"#);
        increase += over_run(&prom, "increase", &series).await;
    }
    assert!(
        (increase - truth).abs() < 1e-9,
        "increase() {increase}, pushed {truth}"
    );
    let resets = over_run(&prom, "resets", r#"requests_total{gateway_replica="r2"}"#).await;
    assert_eq!(resets, 1.0, "replica 2 started over");
    let resets = over_run(&prom, "resets", r#"requests_total{gateway_replica="r1"}"#).await;
    assert_eq!(resets, 0.0, "replica 1 went on from its snapshot");
}
