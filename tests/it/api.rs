//! The HTTP API around pushes: CORS, gzip, delete, wipe, health, status,
//! self-metrics, routes and methods.

use std::io::{Read, Write};

use crate::support::{Gateway, assert_text_eq};

#[tokio::test]
async fn cors_preflight_and_headers() {
    let gw = Gateway::start().await;
    let r = gw
        .request(
            "OPTIONS",
            "/metrics/job/web",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            "",
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    let methods = r.headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("PUT"),
        "{methods}"
    );
    let r = gw
        .request(
            "POST",
            "/metrics/job/web",
            &[("origin", "https://app.example")],
            "c 1\n",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    let r = gw
        .request("GET", "/metrics", &[("origin", "https://app.example")], "")
        .await;
    assert_eq!(r.headers["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn cors_origin_can_be_restricted() {
    let config = prom_aggregation_gateway::Config {
        cors: "https://app.example".into(),
        ..prom_aggregation_gateway::Config::default()
    };
    let gw = Gateway::start_with(config).await;
    let r = gw
        .request(
            "POST",
            "/metrics",
            &[("origin", "https://app.example")],
            "c 1\n",
        )
        .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let r = gw
        .request(
            "POST",
            "/metrics",
            &[("origin", "https://evil.example")],
            "c 2\n",
        )
        .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    // Refused, not only hidden from the page: a simple POST needs no
    // preflight, so CORS headers alone would let it be applied.
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        "origin \"https://evil.example\" is not allowed by --cors\n"
    );
    // Clients that are not browsers send no Origin and pass.
    gw.push_ok("/metrics", "c 4\n").await;
    assert_text_eq(
        &gw.scrape().await,
        "# TYPE c untyped\nc 5\n",
        "after refusal",
    );
}

#[tokio::test]
async fn gzip_push_and_scrape() {
    let gw = Gateway::start().await;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"# TYPE c counter\nc{x=\"y\"} 41\n").unwrap();
    let r = gw
        .request(
            "PUT",
            "/metrics/job/z",
            &[("content-encoding", "gzip")],
            enc.finish().unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    gw.push_ok("/metrics/job/z", "# TYPE c counter\nc{x=\"y\"} 1\n")
        .await;
    let r = gw
        .request("GET", "/metrics", &[("accept-encoding", "gzip")], "")
        .await;
    assert_eq!(r.headers["content-encoding"], "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_text_eq(
        &text,
        "# TYPE c counter\nc{job=\"z\",x=\"y\"} 42\n",
        "gzip scrape",
    );
}

#[tokio::test]
async fn delete_wipe_and_routes() {
    let gw = Gateway::start().await;
    gw.push_ok("/metrics/job/a", "c 1\n").await;
    gw.push_ok("/metrics/job/b/instance/i", "c 2\n").await;
    // Scraped first, so the family's cached rendering must be dropped too.
    assert!(
        gw.scrape()
            .await
            .contains("c{instance=\"i\",job=\"b\"} 2\n")
    );
    let r = gw.request("DELETE", "/metrics/job/b", &[], "").await;
    assert_eq!(r.status, 202);
    assert_eq!(r.text(), "deleted 1 series\n");
    assert_text_eq(
        &gw.scrape().await,
        "# TYPE c untyped\nc{job=\"a\"} 1\n",
        "after delete",
    );
    let r = gw.request("DELETE", "/metrics/", &[], "").await;
    assert!(r.status == 400 || r.status == 405, "{}", r.status);
    let r = gw.request("PUT", "/api/v1/admin/wipe", &[], "").await;
    assert_eq!(r.status, 202);
    assert_eq!(gw.scrape().await, "");
    assert_eq!(gw.request("GET", "/nope", &[], "").await.status, 404);
    assert_eq!(
        gw.request("GET", "/metrics/job/a", &[], "").await.status,
        405
    );
}

#[tokio::test]
async fn health_status_and_self_metrics() {
    let gw = Gateway::start().await;
    for path in ["/-/healthy", "/-/ready", "/healthy", "/ready"] {
        let r = gw.request("GET", path, &[], "").await;
        assert_eq!(r.status, 200, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["status"].is_string(), "{path}");
    }
    gw.push_ok("/metrics/job/a", "# TYPE c counter\nc 1\nd 2\n")
        .await;
    assert_eq!(gw.push("/metrics", "bad line\n").await.status, 400);
    let r = gw.request("GET", "/api/v1/status", &[], "").await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["series"], 2);
    assert_eq!(v["families"], 2);
    assert!(v["uptime_seconds"].as_f64().unwrap() >= 0.0);
    assert!(v["version"].is_string());
    let m = gw.request("GET", "/-/metrics", &[], "").await.text();
    for want in [
        "pag_pushes_total{protocol=\"http\"} 1",
        "pag_push_rejections_total{protocol=\"http\",reason=\"parse\"} 1",
        "pag_samples_ingested_total{protocol=\"http\"} 2",
        "pag_series 2",
        "pag_families 2",
        "pag_push_duration_seconds_count{protocol=\"http\"} 2",
        "pag_scrape_duration_seconds_count",
        "pag_build_info{version=",
    ] {
        assert!(m.contains(want), "self-metrics lack {want:?}:\n{m}");
    }
}

#[tokio::test]
async fn lifecycle_listener_serves_health_and_self_metrics() {
    let gw = Gateway::start_on(
        prom_aggregation_gateway::Config::default(),
        crate::support::Listen {
            lifecycle: true,
            ..Default::default()
        },
    )
    .await;
    let side = gw.lifecycle_base.clone().unwrap();
    let client = reqwest::Client::new();
    let r = client.get(format!("{side}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("pag_build_info"));
    let r = client.get(format!("{side}/-/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await.unwrap();
}

#[tokio::test]
async fn put_and_post_both_add_and_labels_merge() {
    let gw = Gateway::start().await;
    gw.push_ok(
        "/metrics/job/j",
        "# TYPE c counter\nc{job=\"body\",k=\"v\"} 1\n",
    )
    .await;
    let r = gw
        .request(
            "PUT",
            "/metrics/job/j",
            &[],
            "# TYPE c counter\nc{k=\"v\"} 2\n",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_text_eq(
        &gw.scrape().await,
        "# TYPE c counter\nc{job=\"j\",k=\"v\"} 3\n",
        "put+post",
    );
}

#[tokio::test]
async fn drop_label_and_gauge_mode_flags() {
    let config = prom_aggregation_gateway::Config {
        drop_labels: vec!["instance".into()],
        gauge_mode: prom_aggregation_gateway::aggregate::GaugeMode::Max,
        ..prom_aggregation_gateway::Config::default()
    };
    let gw = Gateway::start_with(config).await;
    gw.push_ok(
        "/metrics/instance/a",
        "# TYPE g gauge\ng 3\n# TYPE c counter\nc 1\n",
    )
    .await;
    gw.push_ok(
        "/metrics",
        "# TYPE g gauge\ng{instance=\"b\"} 7\n# TYPE c counter\nc{instance=\"b\"} 1\n",
    )
    .await;
    assert_text_eq(
        &gw.scrape().await,
        "# TYPE c counter\nc 2\n# TYPE g gauge\ng 7\n",
        "drop-label + max",
    );
}

#[tokio::test]
async fn histograms_with_different_buckets_merge_cumulatively() {
    let gw = Gateway::start().await;
    gw.push_ok("/metrics", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"5\"} 3\nh_bucket{le=\"+Inf\"} 4\nh_sum 9\nh_count 4\n").await;
    gw.push_ok("/metrics", "# TYPE h histogram\nh_bucket{le=\"2\"} 2\nh_bucket{le=\"10\"} 5\nh_bucket{le=\"+Inf\"} 6\nh_sum 1\nh_count 6\n").await;
    assert_text_eq(
        &gw.scrape().await,
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 3\nh_bucket{le=\"5\"} 5\nh_bucket{le=\"10\"} 8\nh_bucket{le=\"+Inf\"} 10\nh_sum 10\nh_count 10\n",
        "bucket union",
    );
}
