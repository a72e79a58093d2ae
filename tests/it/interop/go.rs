//! Go `client_golang`'s `push` package (Debian's
//! golang-github-prometheus-client-golang-dev, built with Debian's Go in
//! GOPATH mode): `Push` (PUT) and `Add` (POST) send delimited protobuf, which
//! the Go prom-aggregation-gateway refuses with 400; then `Delete`.
//! Program: `tests/interop/go/src/pagpush`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use super::{interop_dir, run_client};
use crate::support::{Gateway, assert_text_eq};

/// Builds the Go program `tests/interop/go/src/<pkg>` once per test run
/// into `target/interop/`, offline: GOPATH mode, with Debian's Go sources
/// under /usr/share/gocode.
pub fn build(pkg: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, bin)) = built.iter().find(|(p, _)| p == pkg) {
        return bin.clone();
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop");
    let bin = target.join(pkg);
    let gopath = format!("{}:/usr/share/gocode", interop_dir("go").display());
    run_client(
        &format!(
            "go build {pkg} (scripts/test.sh installs golang-go and the Debian Go sources it needs)"
        ),
        Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(pkg)
            .env("GO111MODULE", "off")
            .env("GOPATH", gopath)
            .env("GOCACHE", target.join("go-cache"))
            .env("GOFLAGS", ""),
    );
    built.push((pkg.to_string(), bin.clone()));
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs go; run by scripts/test.sh"]
async fn client_golang_push_add_delete() {
    let gw = Gateway::start().await;
    let bin = build("pagpush");
    run_client(
        "client_golang push",
        Command::new(&bin).args([&gw.base, "push"]),
    );
    // Push then Add of the same collectors: every value twice. `/var/tmp`
    // arrived as `path@base64/L3Zhci90bXA`; `go one` as `go+one`
    // (url.QueryEscape), and a `+` in a path segment is a plus, not a space:
    // the Pushgateway reads it the same way, so series keep their identity
    // when users move from it.
    let l = r#"instance="go+one",job="go-batch",path="/var/tmp""#;
    let expected = format!(
        r#"# HELP go_latency_seconds Latency.
# TYPE go_latency_seconds histogram
go_latency_seconds_bucket{{{l},le="0.1"}} 2
go_latency_seconds_bucket{{{l},le="1"}} 4
go_latency_seconds_bucket{{{l},le="+Inf"}} 6
go_latency_seconds_sum{{{l}}} 11.1
go_latency_seconds_count{{{l}}} 6
# HELP go_payload_bytes Payload sizes.
# TYPE go_payload_bytes summary
go_payload_bytes_sum{{{l}}} 200
go_payload_bytes_count{{{l}}} 2
# HELP go_queue_depth Queue depth.
# TYPE go_queue_depth gauge
go_queue_depth{{{l}}} 8
# HELP go_requests_total Requests handled by the Go job.
# TYPE go_requests_total counter
go_requests_total{{code="200",{l}}} 10
go_requests_total{{code="500",{l}}} 2
"#
    );
    assert_text_eq(
        &gw.scrape().await,
        &expected,
        "scrape after client_golang pushes",
    );

    run_client(
        "client_golang delete",
        Command::new(&bin).args([&gw.base, "delete"]),
    );
    assert_text_eq(&gw.scrape().await, "", "scrape after client_golang delete");
}
