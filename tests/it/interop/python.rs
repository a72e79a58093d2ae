//! Python `prometheus_client` (from PyPI) pushing to a real gateway:
//! `push_to_gateway` (PUT), `pushadd_to_gateway` (POST) and
//! `delete_from_gateway`, with a grouping key that needs `@base64`.
//!
//! The interpreter is `$PAG_PYTHON` (the test command sets up a venv with
//! prometheus_client), else `python3`. A missing client fails the test: it is
//! never skipped.

use std::process::Command;

use crate::support::Gateway;

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
    let addr = gw.base.trim_start_matches("http://").to_string();
    let out = Command::new(python())
        .args(["-c", SCRIPT, &addr, step])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (set PAG_PYTHON or run scripts/test.sh)",
                python()
            )
        });
    assert!(
        out.status.success(),
        "python {step} failed (is prometheus_client installed? scripts/test.sh installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_client_push_pushadd_delete() {
    let gw = Gateway::start().await;
    let now: f64 = {
        let gw_ref = &gw;
        tokio::task::block_in_place(|| run(gw_ref, "push"))
            .trim()
            .parse()
            .unwrap()
    };
    let text = gw.scrape().await;
    let l = "job=\"batch\",path=\"/var/tmp\"";
    for want in [
        "# HELP jobs_processed_total Jobs \\\\ processed\\nsecond line\n# TYPE jobs_processed_total counter\n".to_string(),
        format!("jobs_processed_total{{{l},queue=\"a,b}}\\\"x\"}} 6\n"),
        format!("job_seconds_bucket{{{l},le=\"0.1\"}} 2\n"),
        format!("job_seconds_bucket{{{l},le=\"1\"}} 4\n"),
        format!("job_seconds_bucket{{{l},le=\"+Inf\"}} 6\n"),
        format!("job_seconds_count{{{l}}} 6\n"),
        format!("last_success{{{l}}} 14\n"),
        format!("sizes_sum{{{l}}} 4\nsizes_count{{{l}}} 2\n"),
        "# TYPE job_seconds_created gauge\n".to_string(),
    ] {
        assert!(text.contains(&want), "scrape lacks {want:?}:\n{text}");
    }
    // `_created` timestamps keep the earliest value: about now, not doubled.
    let created: Vec<f64> = text
        .lines()
        .filter(|l| l.split('{').next().unwrap().ends_with("_created"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(created.len(), 3, "{text}");
    for c in created {
        assert!(c <= now && c > now - 600.0, "created {c} vs now {now}");
    }
    tokio::task::block_in_place(|| run(&gw, "delete"));
    assert_eq!(gw.scrape().await, "", "delete_from_gateway left series");
}
