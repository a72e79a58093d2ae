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
