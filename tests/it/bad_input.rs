//! Each class of bad input gets a precise 4xx with a one-line reason, and the
//! aggregate stays exactly as it was (SPEC §2, "nothing of that push is
//! applied").

use std::io::Write;

use crate::support::{Gateway, assert_text_eq};

const SEED: &str = "# TYPE c counter\nc{a=\"1\"} 5\n# TYPE g gauge\ng 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";

/// (name, path, content-type, body, status, reason fragment)
const CASES: &[(&str, &str, &str, &str, u16, &str)] = &[
    (
        "garbage",
        "/metrics",
        "",
        "this is not a metric line\n",
        400,
        "line 1",
    ),
    (
        "good family then garbage",
        "/metrics",
        "",
        "# TYPE c counter\nc{a=\"1\"} 1\nnot valid at all\n",
        400,
        "line 3",
    ),
    (
        "type conflict",
        "/metrics",
        "",
        "# TYPE c counter\nc{a=\"1\"} 1\n# TYPE g counter\ng 1\n",
        400,
        "metric g: pushed as counter but stored as gauge",
    ),
    (
        "duplicate series",
        "/metrics",
        "",
        "# TYPE c counter\nc{a=\"2\"} 1\nc{a=\"2\"} 1\n",
        400,
        "given twice",
    ),
    (
        "duplicate series after path label",
        "/metrics/a/9",
        "",
        "# TYPE c counter\nc{a=\"2\"} 1\nc{a=\"3\"} 1\n",
        400,
        "given twice",
    ),
    (
        "negative counter",
        "/metrics",
        "",
        "# TYPE c counter\nc{a=\"1\"} -1\n",
        400,
        "negative",
    ),
    (
        "NaN counter",
        "/metrics",
        "",
        "# TYPE c counter\nc{a=\"1\"} NaN\n",
        400,
        "NaN",
    ),
    (
        "NaN gauge summed",
        "/metrics",
        "",
        "# TYPE g gauge\ng NaN\n",
        400,
        "NaN",
    ),
    (
        "decreasing buckets",
        "/metrics",
        "",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n",
        400,
        "buckets decrease",
    ),
    (
        "invalid label name",
        "/metrics",
        "",
        "c{a-b=\"1\"} 1\n",
        400,
        "expected '='",
    ),
    (
        "duplicate label",
        "/metrics",
        "",
        "c{a=\"1\",a=\"2\"} 1\n",
        400,
        "label a given twice",
    ),
    (
        "unterminated label value",
        "/metrics",
        "",
        "c{a=\"1} 1\n",
        400,
        "no closing quote",
    ),
    (
        "bad escape",
        "/metrics",
        "",
        "c{a=\"\\x\"} 1\n",
        400,
        "invalid escape",
    ),
    ("odd path", "/metrics/job", "", "c 1\n", 400, "pairs"),
    (
        "bad path label name",
        "/metrics/a-b/c",
        "",
        "c 1\n",
        400,
        "invalid label name",
    ),
    (
        "duplicate path label",
        "/metrics/x/1/x/2",
        "",
        "c 1\n",
        400,
        "given twice",
    ),
    (
        "bad base64",
        "/metrics/job@base64/%21%21",
        "",
        "c 1\n",
        400,
        "base64",
    ),
    (
        "bad le",
        "/metrics",
        "",
        "# TYPE h histogram\nh_bucket{le=\"one\"} 1\n",
        400,
        "invalid le",
    ),
    (
        "openmetrics after EOF",
        "/metrics",
        "application/openmetrics-text; version=1.0.0",
        "# TYPE x counter\nx_total 1\n# EOF\nx_total 2\n",
        400,
        "after # EOF",
    ),
    (
        "protobuf garbage",
        "/metrics",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        "\u{ff}\u{ff}\u{ff}",
        400,
        "",
    ),
];

#[tokio::test]
async fn every_bad_input_is_refused_whole() {
    let gw = Gateway::start().await;
    gw.push_ok("/metrics", SEED).await;
    let before = gw.scrape().await;
    for (name, path, ct, body, status, fragment) in CASES {
        let headers: Vec<(&str, &str)> = if ct.is_empty() {
            vec![]
        } else {
            vec![("content-type", ct)]
        };
        let r = gw.request("POST", path, &headers, body.to_string()).await;
        let reason = r.text();
        assert_eq!(r.status, *status, "{name}: {reason}");
        assert!(
            reason.contains(fragment),
            "{name}: reason {reason:?} lacks {fragment:?}"
        );
        assert_eq!(
            reason.trim_end().lines().count(),
            1,
            "{name}: reason not one line: {reason:?}"
        );
        assert_text_eq(&gw.scrape().await, &before, name);
    }
}

#[tokio::test]
async fn invalid_utf8_is_refused() {
    let gw = Gateway::start().await;
    gw.push_ok("/metrics", SEED).await;
    let before = gw.scrape().await;
    let r = gw
        .request("POST", "/metrics", &[], b"c{a=\"\xff\"} 1\n".to_vec())
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "line 1: invalid UTF-8\n");
    assert_text_eq(&gw.scrape().await, &before, "utf-8");
}

#[tokio::test]
async fn oversized_bodies_get_413_plain_and_gzipped() {
    let config = prom_aggregation_gateway::Config {
        max_body_bytes: 1000,
        ..prom_aggregation_gateway::Config::default()
    };
    let gw = Gateway::start_with(config).await;
    gw.push_ok("/metrics", SEED).await;
    let before = gw.scrape().await;
    let big: String = (0..100).map(|i| format!("c{{a=\"{i}\"}} 1\n")).collect();
    assert!(big.len() > 1000);
    let r = gw.push("/metrics", &big).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("1000 bytes"));
    // A small gzip body that inflates past the limit: 413 too.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(big.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    assert!(gz.len() < 1000);
    let r = gw
        .request("POST", "/metrics", &[("content-encoding", "gzip")], gz)
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    let r = gw
        .request("POST", "/metrics", &[("content-encoding", "br")], "c 1\n")
        .await;
    assert_eq!(r.status, 415, "{}", r.text());
    let r = gw
        .request(
            "POST",
            "/metrics",
            &[("content-encoding", "gzip")],
            "not gzip",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_text_eq(&gw.scrape().await, &before, "oversized");
}

#[tokio::test]
async fn series_limit_gives_429_and_changes_nothing() {
    let config = prom_aggregation_gateway::Config {
        max_series: 3,
        ..prom_aggregation_gateway::Config::default()
    };
    let gw = Gateway::start_with(config).await;
    gw.push_ok("/metrics", "a 1\nb 1\n").await;
    let before = gw.scrape().await;
    let r = gw.push("/metrics", "a 1\nc 1\nd 1\n").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("limit of 3 series"), "{}", r.text());
    assert_text_eq(&gw.scrape().await, &before, "limit");
    gw.push_ok("/metrics", "a 1\nc 1\n").await;
}
