//! Long-running services pushing *cumulative* values, as Python's
//! `prometheus_client` (`push_to_gateway` every interval) and Node's
//! `prom-client` do, restarting now and then, through a `total` rule; a
//! real Prometheus scrapes the gateway. `increase()` over the whole run,
//! evaluated on the exact first and last samples (so Prometheus
//! extrapolates nothing), equals the work the senders counted, and
//! Prometheus saw no counter reset: restarts were absorbed by the gateway.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::prometheus::Prometheus;
use super::python::python;
use super::{node, run_client};
use crate::support::{Gateway, TempDir};
use prom_aggregation_gateway::Config;

const RULES: &str = r#"
rules:
  - name: services
    match: '{job="svc"}'
    mode: total
    source_labels: [instance]
    without: [instance]
"#;

const PYTHON_SENDER: &str = r#"
import json, random, sys, time
from prometheus_client import CollectorRegistry, Counter, Histogram, push_to_gateway
gw, instance, rounds, seed, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
rnd = random.Random(seed)
reg = CollectorRegistry()
work = Counter("work_done", "Work done", ["kind"], registry=reg)
seconds = Histogram("work_seconds", "Work time", registry=reg, buckets=(0.1, 1.0))
work.labels("a")
work.labels("b")
push_to_gateway(gw, job="svc", registry=reg, grouping_key={"instance": instance})
time.sleep(hold)
for _ in range(rounds):
    work.labels("a").inc(rnd.randint(1, 5))
    work.labels("b").inc(rnd.randint(0, 3))
    seconds.observe(rnd.random() * 2)
    push_to_gateway(gw, job="svc", registry=reg, grouping_key={"instance": instance})
    time.sleep(0.1)
print(json.dumps({
    "a": reg.get_sample_value("work_done_total", {"kind": "a"}),
    "b": reg.get_sample_value("work_done_total", {"kind": "b"}),
    "observations": reg.get_sample_value("work_seconds_count"),
}))
"#;

/// What one sender process counted.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Counted {
    a: f64,
    b: f64,
    observations: f64,
}

impl Counted {
    fn parse(out: &str) -> Counted {
        let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        Counted {
            a: v["a"].as_f64().unwrap(),
            b: v["b"].as_f64().unwrap(),
            observations: v["observations"].as_f64().unwrap(),
        }
    }

    fn add(&mut self, o: Counted) {
        self.a += o.a;
        self.b += o.b;
        self.observations += o.observations;
    }
}

/// Runs one sender process to the end: `python` or `node`.
fn sender(kind: &str, gateway: &str, instance: &str, rounds: u32, seed: u32) -> Counted {
    let args = [
        gateway.to_string(),
        instance.to_string(),
        rounds.to_string(),
        seed.to_string(),
        // Every run starts with a push of zeros held long enough for
        // Prometheus (scraping every second) to see the output at 0.
        "2.5".to_string(),
    ];
    let out = match kind {
        "python" => run_client(
            "prometheus_client sender",
            Command::new(python())
                .args(["-c", PYTHON_SENDER])
                .args(&args),
        ),
        _ => run_client(
            "prom-client sender",
            node("cumulative_sender.js")
                .arg(format!("http://{gateway}"))
                .args(&args[1..]),
        ),
    };
    Counted::parse(&out)
}

/// The samples Prometheus holds for `series` over the last ten minutes:
/// (timestamp in seconds, value).
async fn samples(prom: &Prometheus, series: &str) -> Vec<(f64, f64)> {
    let r = prom.query_raw(&format!("{series}[10m]"), None).await;
    let result = r["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{series}: {r}");
    result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_f64().unwrap(),
                p[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// `fn_(series[D])` evaluated at the last sample, `D` reaching exactly
/// back to the first: no extrapolation.
async fn over_run(prom: &Prometheus, function: &str, series: &str) -> f64 {
    let s = samples(prom, series).await;
    let (first, last) = (s[0], s[s.len() - 1]);
    assert_eq!(first.1, 0.0, "{series} must start at 0: {s:?}");
    let range_ms = ((last.0 - first.0) * 1000.0).round() as i64;
    let r = prom
        .query_raw(&format!("{function}({series}[{range_ms}ms])"), Some(last.0))
        .await;
    let result = r["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{r}");
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus, python with prometheus_client and the npm packages of tests/interop/node; run by scripts/test.sh"]
async fn cumulative_senders_with_restarts_sum_exactly_through_prometheus() {
    let dir = TempDir::new("cumulative");
    let rules = dir.path.join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let gw = Gateway::start_with(Config {
        rules_file: Some(rules),
        ..Config::default()
    })
    .await;
    let prom = Prometheus::start(&gw.base, false).await;
    // Scraping already: the senders' first pushes (zeros) must be seen.
    assert_eq!(prom.value(r#"up{job="aggregation-gateway"}"#).await, 1.0);
    let addr = gw.base.trim_start_matches("http://").to_string();

    // Three long-running services, run side by side, each restarted: a new
    // process starts its counters from zero again.
    let plan: [(&str, &str, &[u32]); 3] = [
        ("python", "py-1", &[15, 10, 20]),
        ("python", "py-2", &[25, 5]),
        ("node", "node-1", &[12, 18]),
    ];
    let truth = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let runs: Vec<_> = plan
                .iter()
                .enumerate()
                .map(|(s, (kind, instance, rounds))| {
                    let addr = addr.clone();
                    scope.spawn(move || {
                        let mut counted = Counted::default();
                        for (run, &n) in rounds.iter().enumerate() {
                            counted.add(sender(
                                kind,
                                &addr,
                                instance,
                                n,
                                (s * 10 + run) as u32 + 1,
                            ));
                        }
                        counted
                    })
                })
                .collect();
            let mut total = Counted::default();
            for r in runs {
                total.add(r.join().unwrap());
            }
            total
        })
    });
    assert!(truth.a > 0.0 && truth.observations > 0.0, "{truth:?}");

    // The gateway's own sums, then Prometheus', once it has scraped them.
    let text = gw.scrape().await;
    let value = |s: &str| crate::support::sample_value(&text, s);
    assert_eq!(
        value("work_done_total{job=\"svc\",kind=\"a\"}"),
        Some(truth.a),
        "{text}"
    );
    assert_eq!(
        value("work_done_total{job=\"svc\",kind=\"b\"}"),
        Some(truth.b),
        "{text}"
    );
    assert_eq!(
        value("work_seconds_count{job=\"svc\"}"),
        Some(truth.observations),
        "{text}"
    );
    let want = truth.a;
    prom.wait("the last sums scraped", |p| async move {
        let s = samples(p, r#"work_done_total{job="svc",kind="a"}"#).await;
        (s.last().map(|l| l.1) == Some(want)).then_some(())
    })
    .await;
    // One more scrape interval, so every series has its last value.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (series, want) in [
        (r#"work_done_total{job="svc",kind="a"}"#, truth.a),
        (r#"work_done_total{job="svc",kind="b"}"#, truth.b),
        (r#"work_seconds_count{job="svc"}"#, truth.observations),
    ] {
        assert_eq!(over_run(&prom, "resets", series).await, 0.0, "{series}");
        let increase = over_run(&prom, "increase", series).await;
        assert!(
            (increase - want).abs() < 1e-9,
            "{series}: increase() {increase}, senders counted {want}"
        );
    }
    // Restarts the gateway absorbed: every run after a service's first.
    let m = gw.request("GET", "/-/metrics", &[], "").await.text();
    let resets =
        crate::support::sample_value(&m, "pag_rule_source_resets_total{rule=\"services\"}")
            .unwrap_or(0.0);
    assert!(resets >= 4.0, "resets {resets}:\n{m}");
}
