//! What no sender may do to everyone else: break a scrape (reserved or
//! format-written labels, clashing family names, native histograms at the
//! index extremes), poison a sum with NaN, get an answer that is not true
//! (a timed-out push applied later, an empty-valued DELETE that wipes all),
//! or leave a snapshot the next start refuses. Each over a real socket; the
//! support code runs the validity oracle on every scrape and after every
//! accepted write.

use std::time::Duration;

use prom_aggregation_gateway::Config;
use prom_aggregation_gateway_client::families;
use prom_aggregation_gateway_client::pb::io::prometheus::client as pb;
use prost::Message;
use tonic::Code;

use crate::support::{ACCEPT_OPENMETRICS, ACCEPT_PROTOBUF, Gateway, assert_text_eq};
use crate::support::{counter, histogram, label, request};

use crate::support::ACCEPT_PROTOBUF as PROTO;

use crate::support::delimited;

/// Pushes over HTTP and asserts a 400 whose reason holds `why`, with the
/// aggregate unchanged.
async fn refused(gw: &Gateway, path: &str, headers: &[(&str, &str)], body: Vec<u8>, why: &str) {
    let before = gw.scrape().await;
    let r = gw.request("POST", path, headers, body).await;
    assert_eq!(r.status, 400, "{path}: {}", r.text());
    assert!(
        r.text().contains(why),
        "{path}: {:?} lacks {why:?}",
        r.text()
    );
    assert_eq!(r.text().trim_end().lines().count(), 1);
    assert_text_eq(&gw.scrape().await, &before, why);
}

#[tokio::test]
async fn reserved_and_format_written_labels_are_refused_from_every_source() {
    let gw = Gateway::start().await;
    gw.push_ok("/metrics", "# TYPE seed counter\nseed 1\n")
        .await;
    let hist =
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n";
    let summary = "# TYPE s summary\ns_sum 1\ns_count 1\n";
    // Reserved names: body, path, protobuf.
    refused(
        &gw,
        "/metrics",
        &[],
        b"x{__name__=\"y\"} 1\n".to_vec(),
        "reserved",
    )
    .await;
    refused(&gw, "/metrics/__job/a", &[], b"x 1\n".to_vec(), "reserved").await;
    let mut reserved = counter("p_total", &[("__meta", "1")], 1.0);
    refused(
        &gw,
        "/metrics",
        &[("content-type", PROTO)],
        delimited(&[reserved.clone()]),
        "reserved",
    )
    .await;
    // `le` and `quantile` where the format writes them: path and body.
    refused(
        &gw,
        "/metrics/le/1",
        &[],
        hist.as_bytes().to_vec(),
        "label le",
    )
    .await;
    refused(
        &gw,
        "/metrics/quantile/0.5",
        &[],
        summary.as_bytes().to_vec(),
        "label quantile",
    )
    .await;
    refused(
        &gw,
        "/metrics",
        &[],
        b"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum{le=\"1\"} 1\nh_count 1\n".to_vec(),
        "label le",
    )
    .await;
    refused(
        &gw,
        "/metrics",
        &[],
        b"# TYPE h histogram\nh_bucket{le=\"+Inf\",le=\"2\"} 1\nh_count 1\n".to_vec(),
        "",
    )
    .await;
    refused(
        &gw,
        "/metrics",
        &[],
        b"# TYPE s summary\ns_sum{quantile=\"0.5\"} 1\ns_count 1\n".to_vec(),
        "label quantile",
    )
    .await;
    let mut le_hist = histogram("ph", &[(1.0, 1)], 1, 1.0);
    le_hist.metric[0].label.push(label("le", "7"));
    refused(
        &gw,
        "/metrics",
        &[("content-type", PROTO)],
        delimited(&[le_hist.clone()]),
        "label le",
    )
    .await;
    // gRPC: the family's labels and the request's label map.
    let before = gw.scrape().await;
    let mut client = gw.grpc().await;
    reserved.name = Some("g_total".into());
    for (req, why) in [
        (request(vec![reserved], &[]), "reserved"),
        (
            request(vec![counter("g_total", &[], 1.0)], &[("__tenant", "x")]),
            "reserved",
        ),
        (request(vec![le_hist], &[]), "label le"),
        (
            request(vec![histogram("gh", &[(1.0, 1)], 1, 1.0)], &[("le", "1")]),
            "label le",
        ),
    ] {
        let err = client.push(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(why), "{}", err.message());
    }
    assert_text_eq(&gw.scrape().await, &before, "gRPC");
    // `le` on a counter is just a label.
    gw.push_ok("/metrics/le/1", "# TYPE c counter\nc 1\n").await;
}

#[tokio::test]
async fn families_whose_scrape_names_clash_are_refused() {
    let gw = Gateway::start().await;
    gw.push_ok(
        "/metrics/job/a",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n# TYPE c counter\nc 1\n# TYPE s summary\ns_sum 1\ns_count 1\n",
    )
    .await;
    for (body, why) in [
        (
            "# TYPE h_bucket gauge\nh_bucket 1\n",
            "clashes with the stored metric h",
        ),
        ("# TYPE h_sum counter\nh_sum 1\n", "clashes"),
        ("h_count 1\n", "clashes"),
        ("# TYPE s_count gauge\ns_count 1\n", "clashes"),
        (
            "# TYPE c_total counter\nc_total 1\n",
            "clashes with the stored metric c",
        ),
        ("# TYPE c_created gauge\nc_created 1\n", "clashes"),
        (
            "# TYPE c gauge\nc 1\n",
            "pushed as gauge but stored as counter",
        ),
        // Within one push.
        (
            "# TYPE z histogram\nz_bucket{le=\"+Inf\"} 1\nz_count 1\n# TYPE z_sum gauge\nz_sum 1\n",
            "clashes with the pushed metric",
        ),
        (
            "# TYPE y counter\ny 1\n# TYPE y_total counter\ny_total 1\n",
            "clashes",
        ),
    ] {
        refused(&gw, "/metrics", &[], body.as_bytes().to_vec(), why).await;
    }
    // The same over OpenMetrics and protobuf.
    refused(
        &gw,
        "/metrics",
        &[("content-type", "application/openmetrics-text")],
        b"# TYPE h_bucket gauge\nh_bucket 1\n# EOF\n".to_vec(),
        "clashes",
    )
    .await;
    refused(
        &gw,
        "/metrics",
        &[("content-type", PROTO)],
        delimited(&[counter("c_total", &[], 1.0)]),
        "clashes",
    )
    .await;
    // Once a family is gone, its names are free again.
    assert_eq!(
        gw.request("DELETE", "/metrics/job/a", &[], "").await.status,
        202
    );
    gw.push_ok(
        "/metrics",
        "# TYPE h_sum gauge\nh_sum 1\n# TYPE c_total counter\nc_total 1\n",
    )
    .await;
}

#[tokio::test]
async fn text_clients_created_gauges_become_creation_timestamps() {
    let gw = Gateway::start().await;
    // As prometheus_client writes text 0.0.4.
    let push = |created: &str| {
        format!(
            "# HELP req_total Requests\n# TYPE req_total counter\nreq_total{{m=\"get\"}} 1.0\n\
             # HELP req_created Requests\n# TYPE req_created gauge\nreq_created{{m=\"get\"}} {created}\n\
             # TYPE lat histogram\nlat_bucket{{le=\"+Inf\"}} 1.0\nlat_count 1.0\nlat_sum 0.5\n\
             # TYPE lat_created gauge\nlat_created 1.6e+09\n"
        )
    };
    gw.push_ok("/metrics", &push("1.7e+09")).await;
    gw.push_ok("/metrics", &push("1.65e+09")).await;
    let text = gw.scrape().await;
    assert!(!text.contains("_created"), "{text}");
    assert!(text.contains("req_total{m=\"get\"} 2\n"), "{text}");
    let om = gw
        .request("GET", "/metrics", &[("accept", ACCEPT_OPENMETRICS)], "")
        .await
        .text();
    // One family each; the earliest creation time kept, never summed.
    assert!(!om.contains("# TYPE req_created"), "{om}");
    assert!(om.contains("req_created{m=\"get\"} 1.65e+09\n"), "{om}");
    assert!(om.contains("lat_created 1.6e+09\n"), "{om}");
    // A creation time for a series the push does not hold is refused.
    refused(
        &gw,
        "/metrics",
        &[],
        b"# TYPE q_total counter\nq_total 1\n# TYPE q_created gauge\nq_created{a=\"1\"} 5\n"
            .to_vec(),
        "does not hold",
    )
    .await;
    // Protobuf carries it as created_timestamp.
    let pbody = gw
        .request("GET", "/metrics", &[("accept", ACCEPT_PROTOBUF)], "")
        .await
        .body;
    let mut b = &pbody[..];
    let mut seen = false;
    while !b.is_empty() {
        let f = pb::MetricFamily::decode_length_delimited(&mut b).unwrap();
        if f.name() == "req_total" {
            let ts = f.metric[0]
                .counter
                .as_ref()
                .unwrap()
                .created_timestamp
                .unwrap();
            assert_eq!((ts.seconds, ts.nanos), (1_650_000_000, 0));
            seen = true;
        }
    }
    assert!(seen);
}

#[tokio::test]
async fn no_sum_ever_becomes_nan() {
    let gw = Gateway::start().await;
    gw.push_ok(
        "/metrics",
        "u +Inf\n# TYPE g gauge\ng +Inf\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum +Inf\nh_count 1\n# TYPE s summary\ns_sum +Inf\ns_count 1\n",
    )
    .await;
    for body in [
        "u -Inf\n",
        "# TYPE g gauge\ng -Inf\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum -Inf\nh_count 1\n",
        "# TYPE s summary\ns_sum -Inf\ns_count 1\n",
    ] {
        refused(&gw, "/metrics", &[], body.as_bytes().to_vec(), "NaN").await;
    }
    let text = gw.scrape().await;
    assert!(!text.contains("NaN"), "{text}");
    // Fractional summary counts cannot be written in protobuf: refused.
    refused(
        &gw,
        "/metrics",
        &[],
        b"# TYPE s2 summary\ns2_count 2.5\n".to_vec(),
        "not a count",
    )
    .await;
}

fn native(
    name: &str,
    spans: &[(i32, u32)],
    deltas: &[i64],
    count: u64,
    schema: i32,
) -> pb::MetricFamily {
    let buckets = families::NativeBuckets {
        schema,
        zero_threshold: 1e-128,
        positive_spans: spans.to_vec(),
        positive_deltas: deltas.to_vec(),
        ..Default::default()
    };
    families::native_histogram(name, "", &[], &buckets, count, 1.0)
}

#[tokio::test]
async fn native_histograms_at_the_index_extremes_stay_valid() {
    let gw = Gateway::start().await;
    let max = 1 << 20;
    // Lowest and highest accepted index, then merged with another schema
    // (reduced, buckets joined): every scrape stays valid (the oracle).
    let extremes = native("n", &[(-max, 1), (2 * max - 1, 1)], &[1, 0], 2, 8);
    let r = gw
        .request(
            "POST",
            "/metrics",
            &[("content-type", PROTO)],
            delimited(std::slice::from_ref(&extremes)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for schema in [3, -4, 8] {
        let other = native("n", &[(-5, 2), (7, 1)], &[1, 1, -1], 4, schema);
        let r = gw
            .request(
                "POST",
                "/metrics",
                &[("content-type", PROTO)],
                delimited(&[other]),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let text = gw.scrape().await;
    assert!(text.contains("n_count 14\n"), "{text}");
    // Beyond the range, a count that is not its buckets' sum: refused.
    refused(
        &gw,
        "/metrics",
        &[("content-type", PROTO)],
        delimited(&[native("n", &[(max + 1, 1)], &[1], 1, 0)]),
        "index",
    )
    .await;
    refused(
        &gw,
        "/metrics",
        &[("content-type", PROTO)],
        delimited(&[native("n", &[(i32::MIN, 1)], &[1], 1, 0)]),
        "index",
    )
    .await;
    refused(
        &gw,
        "/metrics",
        &[("content-type", PROTO)],
        delimited(&[native("n", &[(0, 2)], &[1, 1], 5, 0)]),
        "not the sum",
    )
    .await;
}

#[tokio::test]
async fn a_push_answered_as_timed_out_is_never_applied() {
    // Short enough that the larger rounds outlast it in a release build
    // too (a 150k-series push takes ~90 ms there, a 300k one ~150 ms).
    let config = Config {
        request_timeout: Duration::from_millis(40),
        limits: prom_aggregation_gateway::model::Limits {
            max_series_per_push: 1_000_000,
            ..Default::default()
        },
        ..Config::default()
    };
    let gw = Gateway::start_with(config).await;
    let mut timed_out = 0;
    for (round, series) in [20_000, 60_000, 150_000, 300_000].into_iter().enumerate() {
        let mut body = String::with_capacity(series * 48);
        for i in 0..series {
            body.push_str(&format!(
                "t{round}_total{{i=\"{i}\",pad=\"{}\"}} 1\n",
                "p".repeat(8)
            ));
        }
        let r = gw
            .client
            .post(format!("{}/metrics", gw.base))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        // Whatever was answered must stay true after any work in flight.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let text = gw.scrape().await;
        let applied = text.contains(&format!("t{round}_total"));
        match status {
            200 => assert!(applied, "round {round}: answered 200, not applied"),
            408 => {
                assert!(!applied, "round {round}: answered 408, applied later");
                timed_out += 1;
            }
            other => panic!("round {round}: status {other}"),
        }
    }
    assert!(
        timed_out > 0,
        "no push took longer than the timeout: the test proved nothing"
    );
}

#[tokio::test]
async fn delete_needs_a_pair_with_a_value() {
    let gw = Gateway::start().await;
    gw.push_ok("/metrics/job/a", "x 1\n").await;
    let before = gw.scrape().await;
    for path in [
        "/metrics/x@base64/=",
        "/metrics/job@base64/=/x@base64/=",
        "/metrics/a/%20/b@base64/=",
    ] {
        let r = gw.request("DELETE", path, &[], "").await;
        if path.contains("%20") {
            // A real value (a space): matches nothing, deletes nothing.
            assert_eq!(r.status, 202, "{path}");
        } else {
            assert_eq!(r.status, 400, "{path}: {}", r.text());
            assert!(r.text().contains("non-empty value"), "{}", r.text());
        }
        assert_text_eq(&gw.scrape().await, &before, path);
    }
}
