//! Each class of bad input gets a precise 4xx with a one-line reason, and the
//! aggregate stays exactly as it was (contract §2, "nothing of that push is
//! applied").

use std::io::Write;

use prom_aggregation_gateway_client::pb::io::prometheus::client as pb;

use crate::support::{Gateway, assert_text_eq};

const SEED: &str = "# TYPE c counter\nc{a=\"1\"} 5\n# TYPE g gauge\ng 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";

/// One hostile or malformed request and what it must get.
struct Case {
    name: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    status: u16,
    reason: &'static str,
}

use crate::support::ACCEPT_OPENMETRICS as OM;
use crate::support::ACCEPT_PROTOBUF as PROTO;

fn text(
    name: &'static str,
    path: &'static str,
    body: &str,
    status: u16,
    reason: &'static str,
) -> Case {
    Case {
        name,
        path,
        headers: vec![],
        body: body.as_bytes().to_vec(),
        status,
        reason,
    }
}

fn with(
    name: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    status: u16,
    reason: &'static str,
) -> Case {
    Case {
        name,
        path: "/metrics",
        headers,
        body,
        status,
        reason,
    }
}

use crate::support::delimited;

fn gz(b: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(b).unwrap();
    enc.finish().unwrap()
}

fn cases() -> Vec<Case> {
    let huge_value = format!("x{{a=\"{}\"}} 1\n", "v".repeat(5000));
    let huge_name = format!("x{{{}=\"1\"}} 1\n", "n".repeat(300));
    let many_labels = format!(
        "x{{{}}} 1\n",
        (0..70)
            .map(|i| format!("l{i}=\"1\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let long_metric = format!("{} 1\n", "m".repeat(300));
    let bomb = vec![b'a'; 32 << 20];
    let mut nan_counter = crate::support::counter("p_total", &[], f64::NAN);
    nan_counter.help = None;
    let mut no_value = crate::support::counter("p_total", &[], 1.0);
    no_value.metric[0].counter = None;
    let mut gauge_hist = crate::support::histogram("gh", &[(1.0, 1)], 1, 1.0);
    gauge_hist.r#type = Some(pb::MetricType::GaugeHistogram as i32);
    let mut bad_native = crate::support::histogram("nh", &[], 1, 1.0);
    if let Some(h) = bad_native.metric[0].histogram.as_mut() {
        h.schema = Some(9);
        h.positive_span = vec![pb::BucketSpan {
            offset: Some(0),
            length: Some(1),
        }];
        h.positive_delta = vec![1];
    }
    let mut span_mismatch = crate::support::histogram("nh", &[], 1, 1.0);
    if let Some(h) = span_mismatch.metric[0].histogram.as_mut() {
        h.schema = Some(0);
        h.positive_span = vec![pb::BucketSpan {
            offset: Some(0),
            length: Some(3),
        }];
        h.positive_delta = vec![1];
    }
    let mut negative_delta = crate::support::histogram("nh", &[], 1, 1.0);
    if let Some(h) = negative_delta.metric[0].histogram.as_mut() {
        h.schema = Some(0);
        h.positive_span = vec![pb::BucketSpan {
            offset: Some(0),
            length: Some(2),
        }];
        h.positive_delta = vec![1, -5];
    }
    let valid_proto = delimited(&[crate::support::counter("p_total", &[], 1.0)]);
    let mut absurd_varint = vec![0xff; 10];
    absurd_varint.push(0x01);
    let mut long_prefix = vec![0xff, 0xff, 0xff, 0x7f];
    long_prefix.extend_from_slice(b"tiny");
    vec![
        // Syntax.
        text(
            "garbage",
            "/metrics",
            "this is not a metric line\n",
            400,
            "line 1",
        ),
        text(
            "good family then garbage",
            "/metrics",
            "# TYPE c counter\nc{a=\"1\"} 1\nnot valid at all\n",
            400,
            "line 3",
        ),
        text(
            "missing value",
            "/metrics",
            "c{a=\"1\"}\n",
            400,
            "missing value",
        ),
        text(
            "value not a number",
            "/metrics",
            "c 1,5\n",
            400,
            "invalid value",
        ),
        text("hex value", "/metrics", "c 0x10\n", 400, "invalid value"),
        text(
            "bad timestamp",
            "/metrics",
            "c 1 soon\n",
            400,
            "invalid timestamp",
        ),
        text(
            "trailing junk",
            "/metrics",
            "c 1 2 3\n",
            400,
            "unexpected text",
        ),
        text(
            "metric name starts with digit",
            "/metrics",
            "1c 1\n",
            400,
            "expected a metric name",
        ),
        text(
            "quoted metric name",
            "/metrics",
            "{\"c.d\"} 1\n",
            400,
            "quoted metric names",
        ),
        text(
            "label set unterminated",
            "/metrics",
            "c{a=\"1\" 1\n",
            400,
            "expected ','",
        ),
        text(
            "label set never closed",
            "/metrics",
            "c{a=\"1\",\n",
            400,
            "no closing",
        ),
        text(
            "unterminated label value",
            "/metrics",
            "c{a=\"1} 1\n",
            400,
            "no closing quote",
        ),
        text(
            "label without value",
            "/metrics",
            "c{a} 1\n",
            400,
            "expected '='",
        ),
        text(
            "label value unquoted",
            "/metrics",
            "c{a=1} 1\n",
            400,
            "expected '\"'",
        ),
        text(
            "bad escape",
            "/metrics",
            "c{a=\"\\x\"} 1\n",
            400,
            "invalid escape",
        ),
        text(
            "escape at end",
            "/metrics",
            "c{a=\"\\",
            400,
            "no closing quote",
        ),
        text(
            "invalid label name",
            "/metrics",
            "c{a-b=\"1\"} 1\n",
            400,
            "expected '='",
        ),
        text(
            "label name starts with digit",
            "/metrics",
            "c{1a=\"1\"} 1\n",
            400,
            "expected a label name",
        ),
        text(
            "duplicate label",
            "/metrics",
            "c{a=\"1\",a=\"2\"} 1\n",
            400,
            "label a given twice",
        ),
        text(
            "unknown type",
            "/metrics",
            "# TYPE c countr\nc 1\n",
            400,
            "unknown type",
        ),
        text(
            "TYPE without name",
            "/metrics",
            "# TYPE\n",
            400,
            "needs a metric name",
        ),
        text(
            "second TYPE",
            "/metrics",
            "# TYPE c counter\n# TYPE c gauge\nc 1\n",
            400,
            "second TYPE",
        ),
        text(
            "second HELP",
            "/metrics",
            "# HELP c a\n# HELP c b\nc 1\n",
            400,
            "second HELP",
        ),
        text(
            "TYPE after samples",
            "/metrics",
            "c 1\n# TYPE c counter\n",
            400,
            "TYPE line after",
        ),
        text(
            "sample of wrong shape",
            "/metrics",
            "# TYPE h histogram\nh 1\n",
            400,
            "does not fit",
        ),
        // Values.
        text(
            "negative counter",
            "/metrics",
            "# TYPE c counter\nc{a=\"1\"} -1\n",
            400,
            "negative",
        ),
        text(
            "NaN counter",
            "/metrics",
            "# TYPE c counter\nc{a=\"1\"} NaN\n",
            400,
            "NaN",
        ),
        text("NaN untyped", "/metrics", "u NaN\n", 400, "NaN"),
        text(
            "NaN gauge summed",
            "/metrics",
            "# TYPE g gauge\ng NaN\n",
            400,
            "NaN",
        ),
        text(
            "negative summary count",
            "/metrics",
            "# TYPE s summary\ns_count -2\n",
            400,
            "not a count",
        ),
        text(
            "NaN summary sum",
            "/metrics",
            "# TYPE s summary\ns_sum NaN\ns_count 1\n",
            400,
            "NaN",
        ),
        // Histograms.
        text(
            "decreasing buckets",
            "/metrics",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n",
            400,
            "buckets decrease",
        ),
        text(
            "le missing",
            "/metrics",
            "# TYPE h histogram\nh_bucket 1\n",
            400,
            "without an le label",
        ),
        text(
            "le not numeric",
            "/metrics",
            "# TYPE h histogram\nh_bucket{le=\"one\"} 1\n",
            400,
            "invalid le",
        ),
        text(
            "le NaN",
            "/metrics",
            "# TYPE h histogram\nh_bucket{le=\"NaN\"} 1\nh_count 1\n",
            400,
            "NaN",
        ),
        text(
            "le twice",
            "/metrics",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1\"} 1\nh_count 1\n",
            400,
            "given twice",
        ),
        text(
            "+Inf differs from count",
            "/metrics",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n",
            400,
            "+Inf bucket has 2 but _count is 3",
        ),
        text(
            "no +Inf and no count",
            "/metrics",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\n",
            400,
            "needs a +Inf bucket",
        ),
        text(
            "bucket above count",
            "/metrics",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_count 3\n",
            400,
            "only 3",
        ),
        text(
            "negative bucket",
            "/metrics",
            "# TYPE h histogram\nh_bucket{le=\"1\"} -1\nh_count 1\n",
            400,
            "not a count",
        ),
        text(
            "count twice",
            "/metrics",
            "# TYPE h histogram\nh_count 1\nh_count 1\n",
            400,
            "given twice",
        ),
        text(
            "quantile missing",
            "/metrics",
            "# TYPE s summary\ns 1\n",
            400,
            "without a quantile",
        ),
        // Store conflicts.
        text(
            "type flip counter to gauge",
            "/metrics",
            "# TYPE c counter\nc{a=\"1\"} 1\n# TYPE g counter\ng 1\n",
            400,
            "metric g: pushed as counter but stored as gauge",
        ),
        text(
            "type flip to histogram",
            "/metrics",
            "# TYPE c histogram\nc_bucket{le=\"+Inf\"} 1\nc_count 1\n",
            400,
            "pushed as histogram but stored as counter",
        ),
        text(
            "duplicate series",
            "/metrics",
            "# TYPE c counter\nc{a=\"2\"} 1\nc{a=\"2\"} 1\n",
            400,
            "given twice",
        ),
        text(
            "duplicate series by label order",
            "/metrics",
            "x{a=\"1\",b=\"2\"} 1\nx{b=\"2\",a=\"1\"} 1\n",
            400,
            "given twice",
        ),
        text(
            "duplicate series after path label",
            "/metrics/a/9",
            "# TYPE c counter\nc{a=\"2\"} 1\nc{a=\"3\"} 1\n",
            400,
            "given twice",
        ),
        // Paths.
        text("odd path", "/metrics/job", "c 1\n", 400, "pairs"),
        text(
            "odd path with more",
            "/metrics/job/a/b",
            "c 1\n",
            400,
            "pairs",
        ),
        text(
            "bad path label name",
            "/metrics/a-b/c",
            "c 1\n",
            400,
            "invalid label name",
        ),
        text(
            "duplicate path label",
            "/metrics/x/1/x/2",
            "c 1\n",
            400,
            "given twice",
        ),
        text(
            "bad base64",
            "/metrics/job@base64/%21%21",
            "c 1\n",
            400,
            "base64",
        ),
        text(
            "base64 not UTF-8",
            "/metrics/job@base64/_w",
            "c 1\n",
            400,
            "not UTF-8",
        ),
        text(
            "percent-encoding not UTF-8",
            "/metrics/job/%ff",
            "c 1\n",
            400,
            "not UTF-8",
        ),
        // Limits.
        text(
            "huge label value",
            "/metrics",
            &huge_value,
            400,
            "over the limit of 4096",
        ),
        text(
            "huge label name",
            "/metrics",
            &huge_name,
            400,
            "over the limit of 256",
        ),
        text(
            "too many labels",
            "/metrics",
            &many_labels,
            400,
            "70 labels",
        ),
        text(
            "huge metric name",
            "/metrics",
            &long_metric,
            400,
            "over the limit of 256",
        ),
        // Encodings and content types.
        with(
            "gzip bomb",
            vec![("content-encoding", "gzip")],
            gz(&bomb),
            413,
            "body larger than",
        ),
        with(
            "zstd bomb",
            vec![("content-encoding", "zstd")],
            zstd::encode_all(&bomb[..], 19).unwrap(),
            413,
            "body larger than",
        ),
        with(
            "snappy block bomb",
            vec![("content-encoding", "snappy")],
            snap::raw::Encoder::new().compress_vec(&bomb).unwrap(),
            413,
            "body larger than",
        ),
        with(
            "not gzip",
            vec![("content-encoding", "gzip")],
            b"c 1\n".to_vec(),
            400,
            "gzip body could not be decoded",
        ),
        with(
            "not zstd",
            vec![("content-encoding", "zstd")],
            b"c 1\n".to_vec(),
            400,
            "zstd body",
        ),
        with(
            "not snappy",
            vec![("content-encoding", "snappy")],
            vec![0xff, 0xff, 0xff, 0xff, 0xff],
            400,
            "snappy body",
        ),
        with(
            "unknown encoding",
            vec![("content-encoding", "br")],
            b"c 1\n".to_vec(),
            415,
            "unsupported Content-Encoding",
        ),
        with(
            "text sent as protobuf",
            vec![("content-type", PROTO)],
            b"# TYPE c counter\nc 1\n".to_vec(),
            400,
            "protobuf message 1",
        ),
        with(
            "protobuf sent as text",
            vec![],
            valid_proto.clone(),
            400,
            "invalid UTF-8",
        ),
        with(
            "openmetrics after EOF",
            vec![("content-type", OM)],
            b"# TYPE x counter\nx_total 1\n# EOF\nx_total 2\n".to_vec(),
            400,
            "after # EOF",
        ),
        with(
            "openmetrics gaugehistogram",
            vec![("content-type", OM)],
            b"# TYPE x gaugehistogram\nx_bucket{le=\"+Inf\"} 1\n# EOF\n".to_vec(),
            400,
            "gaugehistogram",
        ),
        // Protobuf.
        with(
            "protobuf garbage",
            vec![("content-type", PROTO)],
            vec![0xff, 0xff, 0xff],
            400,
            "protobuf message 1",
        ),
        with(
            "truncated protobuf",
            vec![("content-type", PROTO)],
            valid_proto[..valid_proto.len() - 2].to_vec(),
            400,
            "protobuf message 1",
        ),
        with(
            "absurd varint",
            vec![("content-type", PROTO)],
            absurd_varint,
            400,
            "protobuf message 1",
        ),
        with(
            "length prefix past the end",
            vec![("content-type", PROTO)],
            long_prefix,
            400,
            "protobuf message 1",
        ),
        with(
            "good then truncated message",
            vec![("content-type", PROTO)],
            [valid_proto.clone(), valid_proto[..4].to_vec()].concat(),
            400,
            "protobuf message 2",
        ),
        with(
            "protobuf NaN counter",
            vec![("content-type", PROTO)],
            delimited(&[nan_counter]),
            400,
            "NaN",
        ),
        with(
            "protobuf metric without its value",
            vec![("content-type", PROTO)],
            delimited(&[no_value]),
            400,
            "no counter field",
        ),
        with(
            "protobuf gauge histogram",
            vec![("content-type", PROTO)],
            delimited(&[gauge_hist]),
            400,
            "GAUGE_HISTOGRAM",
        ),
        with(
            "protobuf bad metric name",
            vec![("content-type", PROTO)],
            delimited(&[crate::support::counter("a b", &[], 1.0)]),
            400,
            "invalid metric name",
        ),
        with(
            "protobuf bad label name",
            vec![("content-type", PROTO)],
            delimited(&[crate::support::counter("p_total", &[("a b", "1")], 1.0)]),
            400,
            "invalid label name",
        ),
        with(
            "protobuf duplicate label",
            vec![("content-type", PROTO)],
            delimited(&[crate::support::counter(
                "p_total",
                &[("a", "1"), ("a", "2")],
                1.0,
            )]),
            400,
            "given twice",
        ),
        with(
            "protobuf family twice",
            vec![("content-type", PROTO)],
            delimited(&[
                crate::support::counter("p_total", &[], 1.0),
                crate::support::counter("p_total", &[], 1.0),
            ]),
            400,
            "given twice",
        ),
        with(
            "native schema out of range",
            vec![("content-type", PROTO)],
            delimited(&[bad_native]),
            400,
            "schema 9",
        ),
        with(
            "native spans and counts disagree",
            vec![("content-type", PROTO)],
            delimited(&[span_mismatch]),
            400,
            "spans cover 3 buckets",
        ),
        with(
            "native negative bucket",
            vec![("content-type", PROTO)],
            delimited(&[negative_delta]),
            400,
            "negative",
        ),
    ]
}

#[tokio::test]
async fn every_bad_input_is_refused_whole() {
    let gw = Gateway::start().await;
    gw.push_ok("/metrics", SEED).await;
    let before = gw.scrape().await;
    let cases = cases();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut wrong = Vec::new();
    for c in cases {
        let r = gw.request("POST", c.path, &c.headers, c.body).await;
        let reason = r.text();
        if r.status != c.status
            || !reason.contains(c.reason)
            || reason.trim_end().lines().count() != 1
        {
            wrong.push(format!(
                "{}: got {} {reason:?}, want {} with {:?}",
                c.name, r.status, c.status, c.reason
            ));
        }
        assert_text_eq(&gw.scrape().await, &before, c.name);
    }
    assert!(
        wrong.is_empty(),
        "{} cases answered wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
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
