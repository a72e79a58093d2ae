//! The status API (`/api/v1/families`, `/series`, `/cardinality`,
//! `/groups`, `/rejections`, `/status`) and the status page's routes, over real
//! sockets.

use serde_json::Value;

use crate::support::{Gateway, SENDER_AUTH, counter, request, sample_value, with_sender};

async fn get_json(gw: &Gateway, path: &str) -> Value {
    let r = gw.request("GET", path, &[], "").await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert_eq!(r.headers["content-type"], "application/json", "{path}");
    serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn families_page_through_100k_series() {
    let gw = Gateway::start().await;
    // 2000 families of 50 series: 100k series, pushed 200 families at a time.
    for batch in 0..10 {
        let mut body = String::new();
        for f in batch * 200..(batch + 1) * 200 {
            body.push_str(&format!(
                "# HELP fam_{f:04}_total Family {f}.\n# TYPE fam_{f:04}_total counter\n"
            ));
            for s in 0..50 {
                body.push_str(&format!("fam_{f:04}_total{{s=\"{s}\"}} 1\n"));
            }
        }
        let r = gw.request("POST", "/metrics/job/load", &[], body).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = get_json(&gw, &format!("/api/v1/families?limit=500&offset={offset}")).await;
        assert_eq!(page["total"], 2000);
        let families = page["families"].as_array().unwrap();
        if families.is_empty() {
            break;
        }
        for f in families {
            assert_eq!(f["type"], "counter");
            assert_eq!(f["series"], 50);
            assert_eq!(f["mode"], "sum");
            assert!(f["help"].as_str().unwrap().starts_with("Family "));
            assert!(f["last_update"].as_f64().unwrap() > 1.7e9);
            seen.push(f["name"].as_str().unwrap().to_string());
        }
        offset += 500;
    }
    assert_eq!(seen.len(), 2000);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "every family once, in name order");
    // Filtered by name (case-insensitive), paged.
    let page = get_json(&gw, "/api/v1/families?match=FAM_019&limit=3").await;
    assert_eq!(page["total"], 10);
    let names: Vec<&str> = page["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["fam_0190_total", "fam_0191_total", "fam_0192_total"]
    );
    // A limit past the most is capped; a bad one is refused.
    let page = get_json(&gw, "/api/v1/families?limit=100000").await;
    assert_eq!(page["families"].as_array().unwrap().len(), 1000);
    let r = gw.request("GET", "/api/v1/families?limit=x", &[], "").await;
    assert_eq!(r.status, 400);
    // The cardinality view over them.
    let c = get_json(&gw, "/api/v1/cardinality?limit=3").await;
    assert_eq!(c["series"], 100_000);
    assert_eq!(c["families"].as_array().unwrap().len(), 3);
    assert_eq!(c["families"][0]["series"], 50);
    assert_eq!(c["label_names"][0]["name"], "s");
    assert_eq!(c["label_names"][0]["values"], 50);
    assert_eq!(c["label_names"][1]["name"], "job");
    assert_eq!(c["label_names"][1]["values"], 1);
    assert_eq!(c["label_pairs"][0]["name"], "job");
    assert_eq!(c["label_pairs"][0]["value"], "load");
    assert_eq!(c["label_pairs"][0]["series"], 100_000);
}

#[tokio::test]
async fn groups_record_each_grouping_key_and_delete_from_there() {
    let gw = Gateway::start().await;
    let ok = |path: &'static str, body: &'static str| {
        let gw = &gw;
        async move {
            let r = gw.request("POST", path, &[], body).await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
    };
    ok("/metrics/job/web/instance/a", "a_total 1\nb_total 2\n").await;
    ok("/metrics/instance/a/job/web", "a_total 1\n").await;
    ok("/metrics/job/batch", "c_total 1\n").await;
    let r = gw
        .request("POST", "/metrics/job/batch", &[], "c_total{ 1\n")
        .await;
    assert_eq!(r.status, 400);
    let groups = get_json(&gw, "/api/v1/groups").await;
    let groups = groups["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{groups:?}");
    // Most recent first: the refused push of job=batch.
    let batch = &groups[0];
    assert_eq!(batch["labels"], serde_json::json!({"job": "batch"}));
    assert_eq!(
        (batch["pushes"].as_u64(), batch["refused"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(batch["series"], 1, "from its last applied push");
    assert!(batch["last_error"].as_str().unwrap().contains("line 1"));
    let web = &groups[1];
    assert_eq!(
        web["labels"],
        serde_json::json!({"instance": "a", "job": "web"})
    );
    assert_eq!(web["pushes"], 2, "the same key in either order");
    assert_eq!(web["series"], 1);
    assert!(web["last_error"].is_null());
    assert!(web["last_success"].as_f64().unwrap() >= web["first_push"].as_f64().unwrap());
    // Deleting the group by the path the API gives.
    let path = format!("/{}", web["delete_path"].as_str().unwrap());
    let r = gw.request("DELETE", &path, &[], "").await;
    assert_eq!(r.status, 202, "{}", r.text());
    let scrape = gw.scrape().await;
    assert!(!scrape.contains("job=\"web\""), "{scrape}");
    assert!(scrape.contains("job=\"batch\""), "{scrape}");
    let groups = get_json(&gw, "/api/v1/groups").await;
    assert_eq!(groups["groups"].as_array().unwrap().len(), 1);
    // A wipe forgets every group.
    assert_eq!(
        gw.request("PUT", "/api/v1/admin/wipe", &[], "")
            .await
            .status,
        202
    );
    let groups = get_json(&gw, "/api/v1/groups").await;
    assert!(groups["groups"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn rejections_ring_holds_refused_pushes_of_every_protocol() {
    let gw = Gateway::start_with(with_sender(Default::default())).await;
    let auth = [("authorization", SENDER_AUTH)];
    // Refused by the middleware (no credentials), by the decoder (HTTP),
    // by the aggregator (a type conflict over gRPC), by the OTLP decoder.
    let r = gw.request("POST", "/metrics/job/x", &[], "a 1\n").await;
    assert_eq!(r.status, 401);
    let r = gw.request("POST", "/metrics/job/x", &auth, "a{ 1\n").await;
    assert_eq!(r.status, 400);
    let r = gw
        .request("POST", "/metrics/job/x", &auth, "c_total 1\n")
        .await;
    assert_eq!(r.status, 200);
    let mut client = gw.grpc().await;
    let mut gauge = counter("c_total", &[], 1.0);
    gauge.r#type = Some(crate::support::pb::MetricType::Gauge as i32);
    gauge.metric[0].counter = None;
    gauge.metric[0].gauge = Some(crate::support::pb::Gauge { value: Some(1.0) });
    let mut req = tonic::Request::new(request(vec![gauge], &[("job", "x")]));
    req.metadata_mut().insert(
        "authorization",
        tonic::metadata::MetadataValue::from_static(SENDER_AUTH),
    );
    let err = client.push(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let r = gw
        .request(
            "POST",
            "/v1/metrics",
            &[auth[0], ("content-type", "application/x-protobuf")],
            &b"\x0a\x05abc"[..],
        )
        .await;
    assert_eq!(r.status, 400);
    let ring = get_json(&gw, "/api/v1/rejections").await;
    let ring = ring["rejections"].as_array().unwrap();
    assert_eq!(ring.len(), 4, "{ring:?}");
    let row = |i: usize, key: &str| ring[i][key].as_str().unwrap().to_string();
    // Newest first.
    assert_eq!(row(0, "route"), "/v1/metrics");
    assert_eq!(row(0, "status"), "400");
    assert_eq!(row(0, "code"), "invalid");
    assert_eq!(row(1, "protocol"), "grpc");
    assert_eq!(
        row(1, "route"),
        "/aggregation_gateway.v1.AggregationGateway/Push"
    );
    assert_eq!(row(1, "status"), "InvalidArgument");
    assert_eq!(row(1, "code"), "type_conflict");
    assert!(row(1, "reason").contains("pushed as gauge"), "{ring:?}");
    assert_eq!(row(2, "route"), "/metrics/job/x");
    assert_eq!(row(2, "code"), "parse");
    assert_eq!(row(3, "status"), "401");
    assert_eq!(row(3, "code"), "unauthenticated");
    assert_eq!(row(3, "protocol"), "http");
    // Nothing of a body or a credential is kept.
    let text = serde_json::to_string(ring).unwrap();
    assert!(
        !text.contains("s3cret") && !text.contains("c2VuZGVy"),
        "{text}"
    );
    // Reading needs no credentials, like a scrape.
    assert_eq!(
        gw.request("GET", "/api/v1/groups", &[], "").await.status,
        200
    );
}

#[tokio::test]
async fn status_says_how_close_each_limit_is() {
    let gw = Gateway::start_with(with_sender(prom_aggregation_gateway::Config {
        max_series: 10,
        ..Default::default()
    }))
    .await;
    let r = gw
        .request(
            "POST",
            "/metrics/job/x",
            &[("authorization", SENDER_AUTH)],
            "a_total 1\nb_total 1\n",
        )
        .await;
    assert_eq!(r.status, 200);
    let s = get_json(&gw, "/api/v1/status").await;
    assert_eq!(s["series"], 2);
    assert_eq!(s["limits"]["series"]["limit"], 10);
    assert_eq!(s["limits"]["series"]["ratio"], 0.2);
    assert!(s["limits"]["memory_bytes"]["used"].as_u64().unwrap() > 0);
    assert_eq!(s["settings"]["auth_users"], 1);
    assert!(s["snapshot"].is_null(), "no snapshot file");
    assert!(s["uptime_seconds"].as_f64().unwrap() >= 0.0);
    let text = s.to_string();
    assert!(!text.contains("s3cret"), "secrets are left out: {text}");
}

#[tokio::test]
async fn the_page_is_self_contained_under_a_strict_policy() {
    let gw = Gateway::start().await;
    let r = gw.request("GET", "/", &[], "").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self'"),
        "{csp}"
    );
    let html = r.text();
    // Nothing from elsewhere: every src and href is relative.
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            assert!(
                !part.starts_with("http") && !part.starts_with("//") && !part.starts_with('/'),
                "{attr}{}",
                &part[..part.len().min(40)]
            );
        }
    }
    assert!(!html.contains("<script>"), "no inline script");
    for (path, ty) in [
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
    ] {
        let r = gw.request("GET", path, &[], "").await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.headers["content-type"], ty);
    }
    assert_eq!(gw.request("POST", "/", &[], "").await.status, 405);
    assert_eq!(
        gw.request("GET", "/static/other.js", &[], "").await.status,
        404
    );
}

#[tokio::test]
async fn served_under_a_route_prefix() {
    let config = prom_aggregation_gateway::Config::try_from(
        <prom_aggregation_gateway::config::Args as clap::Parser>::parse_from([
            "prom-aggregation-gateway",
            "--web.external-url",
            "https://example.org/tools/gateway/",
        ]),
    )
    .unwrap();
    let gw = Gateway::start_with(config).await;
    let r = gw
        .request("POST", "/tools/gateway/metrics/job/x", &[], "a_total 3\n")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = gw.request("GET", "/tools/gateway/metrics", &[], "").await;
    assert_eq!(sample_value(&r.text(), "a_total{job=\"x\"}"), Some(3.0));
    let r = gw.request("GET", "/tools/gateway/", &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("static/app.js"));
    let r = gw
        .request("GET", "/tools/gateway/static/app.js", &[], "")
        .await;
    assert_eq!(r.status, 200);
    let s = get_json(&gw, "/tools/gateway/api/v1/status").await;
    assert_eq!(s["series"], 1);
    // Without the slash: redirected to it (the page's links are relative).
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .get(format!("{}/tools/gateway", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/tools/gateway/");
    // Paths without the prefix still work; a look-alike prefix does not.
    assert_eq!(gw.request("GET", "/metrics", &[], "").await.status, 200);
    assert_eq!(
        gw.request("GET", "/tools/gatewayx/metrics", &[], "")
            .await
            .status,
        404
    );
    // A prefix that is not plain path segments stops the start.
    for bad in ["/a/../b", "/a?b", "/a//b"] {
        let args = <prom_aggregation_gateway::config::Args as clap::Parser>::parse_from([
            "prom-aggregation-gateway",
            "--web.route-prefix",
            bad,
        ]);
        assert!(
            prom_aggregation_gateway::Config::try_from(args).is_err(),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn push_time_gauges_per_group_when_asked() {
    let gw = Gateway::start_with(prom_aggregation_gateway::Config {
        push_time_metrics: true,
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        let r = gw
            .request("POST", "/metrics/job/a/instance/i", &[], "x_total 1\n")
            .await;
        assert_eq!(r.status, 200);
    }
    let r = gw
        .request("POST", "/metrics/job/b", &[], "x_total{ 1\n")
        .await;
    assert_eq!(r.status, 400);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let scrape = gw.scrape().await;
    // The last push's time, not a sum of the three.
    let t = sample_value(&scrape, "push_time_seconds{instance=\"i\",job=\"a\"}").unwrap();
    assert!(
        (now - 60.0..=now + 1.0).contains(&t),
        "{t} vs {now}\n{scrape}"
    );
    let f = sample_value(&scrape, "push_failure_time_seconds{job=\"b\"}").unwrap();
    assert!((now - 60.0..=now + 1.0).contains(&f), "{f}");
    assert!(
        scrape.contains("# TYPE push_time_seconds gauge\n"),
        "{scrape}"
    );
    // Off by default.
    let plain = Gateway::start().await;
    plain
        .request("POST", "/metrics/job/a", &[], "x_total 1\n")
        .await;
    assert!(!plain.scrape().await.contains("push_time_seconds"));
}

/// `/api/v1/series`: "why did this jump?" An output series of a `total`
/// rule lists its sources with their last running totals; a `latest` one
/// its live levels; an OTLP producer's level names the producer; a
/// selector picks series by name and labels; pages are bounded.
#[tokio::test]
async fn series_show_their_sources() {
    let dir = crate::support::TempDir::new("series-api");
    let file = dir.path.join("rules.yml");
    std::fs::write(
        &file,
        "rules:\n  - match: 'jobs_total'\n    mode: total\n    source_labels: [instance]\n    without: [instance]\n  - match: 'queue_depth'\n    mode: latest\n    combine: sum\n    source_labels: [instance]\n    without: [instance]\n",
    )
    .unwrap();
    let gw = Gateway::start_with(prom_aggregation_gateway::Config {
        rules_file: Some(file),
        ..Default::default()
    })
    .await;
    // a restarts (5 -> 2): counted from its restart, and listed.
    for (instance, v) in [("a", 3.0), ("b", 4.0), ("a", 5.0), ("a", 2.0)] {
        gw.push_ok(
            &format!("/metrics/job/j/instance/{instance}"),
            &format!("# TYPE jobs_total counter\njobs_total {v}\n# TYPE queue_depth gauge\nqueue_depth {v}\n"),
        )
        .await;
    }
    let r = get_json(&gw, "/api/v1/series?match=jobs_total%7Bjob%3D%22j%22%7D").await;
    assert_eq!(r["total"], 1, "{r}");
    let s = &r["series"][0];
    assert_eq!(s["family"], "jobs_total");
    assert_eq!(s["labels"], serde_json::json!({"job": "j"}));
    assert_eq!(s["value"], 11.0, "{s}");
    assert!(s["start_time"].as_f64().unwrap() > 1.7e9, "{s}");
    assert_eq!(s["sources_total"], 2);
    let mut sources: Vec<(String, f64, u64, String)> = s["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["labels"]["instance"].as_str().unwrap().to_string(),
                x["value"].as_f64().unwrap(),
                x["resets"].as_u64().unwrap(),
                x["last_reset"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    sources.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        sources,
        [
            ("a".into(), 2.0, 1, "lower value".into()),
            ("b".into(), 4.0, 0, String::new())
        ]
    );
    let r = get_json(&gw, "/api/v1/series?match=queue_depth").await;
    let s = &r["series"][0];
    assert_eq!(s["value"], 6.0, "{s}");
    assert_eq!(s["start_time"], serde_json::Value::Null);
    assert_eq!(s["sources"].as_array().unwrap().len(), 2, "{s}");
    // An OTLP producer's level names its producer.
    let body = crate::otlp::gauge_export("pod-1", 7.0);
    assert_eq!(crate::otlp::post(&gw, body, &[]).await.status(), 200);
    let r = get_json(&gw, "/api/v1/series?match=%7B__name__%3D~%22conn.*%22%7D").await;
    let src = &r["series"][0]["sources"][0];
    assert_eq!(src["producer"].as_str().unwrap().len(), 32, "{r}");
    assert_eq!(src["rule"], "otlp_levels");
    assert_eq!(src["value"], 7.0);
    // Every series, a page at a time.
    let r = get_json(&gw, "/api/v1/series?limit=1").await;
    assert_eq!(
        (r["total"].as_u64(), r["next"].as_u64()),
        (Some(3), Some(1))
    );
    // A selector that is none: 400 with the reason.
    let bad = gw
        .request("GET", "/api/v1/series?match=rate(x%5B5m%5D)", &[], "")
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("series selector"), "{}", bad.text());
    // A regex whose automaton would be huge is refused before it is built.
    let huge = gw
        .request(
            "GET",
            "/api/v1/series?match=%7B__name__%3D~%22(a%7B1000%7D)%7B1000%7D%22%7D",
            &[],
            "",
        )
        .await;
    assert_eq!(huge.status, 400, "{}", huge.text());
    assert!(huge.text().contains("regex"), "{}", huge.text());
}
