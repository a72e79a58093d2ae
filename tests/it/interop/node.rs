//! Node `prom-client` (from npm) `Pushgateway`: `push` (PUT, no
//! Content-Type header at all), `pushAdd` (POST, gzip) and `delete`, with
//! percent-encoded grouping values. Script: `tests/interop/node/prom_client_push.js`.

use super::{node, run_client};
use crate::support::{Gateway, assert_text_eq};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and the npm packages of tests/interop/node; run by scripts/test.sh"]
async fn prom_client_push_pushadd_delete() {
    let gw = Gateway::start().await;
    run_client(
        "prom-client push",
        node("prom_client_push.js").args([&gw.base, "push"]),
    );
    // push then pushAdd of the same registry: every value twice. The summary
    // keeps `_sum`/`_count` (quantiles cannot be added).
    let l = r#"instance="node one",job="node-batch",path="/var/tmp""#;
    let expected = format!(
        r#"# HELP node_latency_seconds Latency
# TYPE node_latency_seconds histogram
node_latency_seconds_bucket{{{l},le="0.1"}} 2
node_latency_seconds_bucket{{{l},le="1"}} 4
node_latency_seconds_bucket{{{l},le="+Inf"}} 6
node_latency_seconds_sum{{{l}}} 11.1
node_latency_seconds_count{{{l}}} 6
# HELP node_payload_bytes Payload sizes
# TYPE node_payload_bytes summary
node_payload_bytes_sum{{{l}}} 200
node_payload_bytes_count{{{l}}} 2
# HELP node_queue_depth Queue depth
# TYPE node_queue_depth gauge
node_queue_depth{{{l}}} 8
# HELP node_requests_total Requests "handled"\nby the node job
# TYPE node_requests_total counter
node_requests_total{{code="200",{l}}} 10
node_requests_total{{code="5\"0\\0",{l}}} 2
"#
    );
    assert_text_eq(
        &gw.scrape().await,
        &expected,
        "scrape after prom-client pushes",
    );

    run_client(
        "prom-client delete",
        node("prom_client_push.js").args([&gw.base, "delete"]),
    );
    assert_text_eq(&gw.scrape().await, "", "scrape after prom-client delete");
}
