//! Python `prometheus_client` (from PyPI) pushing to a real gateway:
//! `push_to_gateway` (PUT), `pushadd_to_gateway` (POST) and
//! `delete_from_gateway`, with a grouping key that needs `@base64`; and
//! `basic_auth_handler` against `--auth-users`.
//!
//! The interpreter is `$PAG_PYTHON` (the test command sets up a venv with
//! prometheus_client), else `python3`. A missing client fails the test: it is
//! never skipped.

use std::process::Command;

use super::run_client;
use crate::support::{Gateway, assert_text_eq};

const SCRIPT: &str = r#"
import sys, time
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client import push_to_gateway, pushadd_to_gateway, delete_from_gateway
gw, step = sys.argv[1], sys.argv[2]
key = {"path": "/var/tmp"}
if step == "delete":
    delete_from_gateway(gw, job="batch", grouping_key=key)
    sys.exit(0)
reg = CollectorRegistry()
c = Counter("jobs_processed", "Jobs \\ processed\nsecond line", ["queue"], registry=reg)
c.labels('a,b}"x').inc(3)
h = Histogram("job_seconds", "Job time", registry=reg, buckets=(0.1, 1.0))
for v in (0.05, 0.5, 5):
    h.observe(v)
Gauge("last_success", "Last success", registry=reg).set(7)
Summary("sizes", "Sizes", registry=reg).observe(2)
push_to_gateway(gw, job="batch", registry=reg, grouping_key=key)
pushadd_to_gateway(gw, job="batch", registry=reg, grouping_key=key)
print(time.time())
"#;

/// `$PAG_PYTHON`, else the test command's `.venv`, else `python3`.
pub fn python() -> String {
    if let Ok(p) = std::env::var("PAG_PYTHON") {
        return p;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    if std::path::Path::new(venv).exists() {
        return venv.into();
    }
    "python3".into()
}

fn run(gw: &Gateway, step: &str) -> String {
    let addr = gw.base.trim_start_matches("http://");
    run_client(
        &format!("prometheus_client {step}"),
        Command::new(python()).args(["-c", SCRIPT, addr, step]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python with prometheus_client (PAG_PYTHON); run by scripts/test.sh"]
async fn prometheus_client_push_pushadd_delete() {
    let gw = Gateway::start().await;
    let now: f64 = run(&gw, "push").trim().parse().unwrap();
    let text = gw.scrape().await;
    // The client's `<name>_created` gauges are creation times of their
    // metrics: not in text 0.0.4, `_created` samples in OpenMetrics, the
    // earliest value kept (about now, not doubled).
    let om = gw
        .request(
            "GET",
            "/metrics",
            &[("accept", crate::support::ACCEPT_OPENMETRICS)],
            "",
        )
        .await
        .text();
    let created: Vec<f64> = om
        .lines()
        .filter(|l| l.split(['{', ' ']).next().unwrap().ends_with("_created"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(created.len(), 3, "{om}");
    for c in created {
        assert!(c <= now && c > now - 600.0, "created {c} vs now {now}");
    }
    assert!(!om.contains("# TYPE sizes_created"), "{om}");
    let masked = text;
    let l = r#"job="batch",path="/var/tmp""#;
    let expected = format!(
        r#"# HELP job_seconds Job time
# TYPE job_seconds histogram
job_seconds_bucket{{{l},le="0.1"}} 2
job_seconds_bucket{{{l},le="1"}} 4
job_seconds_bucket{{{l},le="+Inf"}} 6
job_seconds_sum{{{l}}} 11.1
job_seconds_count{{{l}}} 6
# HELP jobs_processed_total Jobs \\ processed\nsecond line
# TYPE jobs_processed_total counter
jobs_processed_total{{{l},queue="a,b}}\"x"}} 6
# HELP last_success Last success
# TYPE last_success gauge
last_success{{{l}}} 14
# HELP sizes Sizes
# TYPE sizes summary
sizes_sum{{{l}}} 4
sizes_count{{{l}}} 2
"#
    );
    assert_text_eq(&masked, &expected, "scrape after prometheus_client pushes");
    run(&gw, "delete");
    assert_text_eq(&gw.scrape().await, "", "scrape after delete_from_gateway");
}

const AUTH_SCRIPT: &str = r#"
import sys
from urllib.error import HTTPError
from prometheus_client import CollectorRegistry, Counter, pushadd_to_gateway
from prometheus_client.exposition import basic_auth_handler
gw, user, password = sys.argv[1:4]
reg = CollectorRegistry()
Counter("logins", "Logins", registry=reg).inc(2)
def handler(url, method, timeout, headers, data):
    return basic_auth_handler(url, method, timeout, headers, data, user, password)
try:
    pushadd_to_gateway(gw, job="auth", registry=reg, handler=handler)
    print("accepted")
except HTTPError as e:
    print(e.code, e.read().decode().strip())
"#;

/// `basic_auth_handler`, as prometheus_client documents it, against
/// `--auth-users`: right credentials push, wrong ones get the 401 and its
/// reason, and leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python with prometheus_client (PAG_PYTHON); run by scripts/test.sh"]
async fn prometheus_client_basic_auth() {
    let gw = Gateway::start_with(prom_aggregation_gateway::Config {
        auth_users: vec![(
            "pusher".into(),
            prom_aggregation_gateway::config::Secret::Plain("s3cret".into()),
        )],
        ..Default::default()
    })
    .await;
    let addr = gw.base.trim_start_matches("http://");
    let push = |password: &str| {
        run_client(
            "prometheus_client basic auth push",
            Command::new(python()).args(["-c", AUTH_SCRIPT, addr, "pusher", password]),
        )
    };
    assert_eq!(push("wrong").trim(), "401 authentication required");
    assert_text_eq(&gw.scrape().await, "", "after a refused push");
    assert_eq!(push("s3cret").trim(), "accepted");
    let text = gw.scrape().await;
    assert!(
        text.contains("# TYPE logins_total counter\nlogins_total{job=\"auth\"} 2\n"),
        "{text}"
    );
}

const LIVE_SCRIPT: &str = r#"
import sys, time
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
gw, instance, value, times = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
reg = CollectorRegistry()
g = Gauge("queue_depth", "Jobs waiting", registry=reg)
for _ in range(times):
    g.set(value)
    push_to_gateway(gw, job="workers", registry=reg, grouping_key={"instance": instance})
    time.sleep(0.2)
"#;

/// Workers each pushing their `queue_depth` gauge with `push_to_gateway`,
/// again and again, some of them stopping: under a `latest` rule the
/// scrape is the sum of each live worker's last value at every step (the
/// Go gateway and `--gauge-mode sum` add every push; `last` shows one
/// worker), and a stopped worker's value leaves it after `source_ttl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python with prometheus_client (PAG_PYTHON); run by scripts/test.sh"]
async fn prometheus_client_workers_live_gauge_sum() {
    let dir = crate::support::TempDir::new("live-gauges");
    let file = dir.path.join("rules.yml");
    std::fs::write(
        &file,
        "rules:\n  - match: 'queue_depth'\n    mode: latest\n    combine: sum\n    source_labels: [instance]\n    without: [instance]\n    source_ttl: 2s\n",
    )
    .unwrap();
    let gw = Gateway::start_with(prom_aggregation_gateway::Config {
        rules_file: Some(file),
        ..Default::default()
    })
    .await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let push = |instance: &str, value: f64, times: u32| {
        run_client(
            &format!("prometheus_client worker {instance}"),
            Command::new(python()).args([
                "-c",
                LIVE_SCRIPT,
                &addr,
                instance,
                &value.to_string(),
                &times.to_string(),
            ]),
        );
    };
    let depth = || async {
        crate::support::sample_value(&gw.scrape().await, "queue_depth{job=\"workers\"}")
    };
    push("a", 5.0, 3);
    push("b", 7.0, 3);
    push("c", 1.0, 2);
    assert_eq!(depth().await, Some(13.0));
    // New levels replace old ones, however many pushes carried them.
    push("b", 2.0, 4);
    assert_eq!(depth().await, Some(8.0));
    // `c` stops; `a` and `b` go on pushing: within source_ttl and a sweep
    // c's value leaves the sum.
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    loop {
        push("a", 5.0, 1);
        push("b", 2.0, 1);
        let now = depth().await;
        seen.push(now);
        if now == Some(7.0) {
            break;
        }
        assert_eq!(now, Some(8.0), "only 8 (c alive) or 7 (c gone): {seen:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "c's value still counted after 10 s: {seen:?}"
        );
    }
    // Every worker stops: the output goes.
    crate::support::eventually(
        "the output gone",
        std::time::Duration::from_secs(10),
        || async { depth().await.is_none().then_some(()) },
    )
    .await;
}
