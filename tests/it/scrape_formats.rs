//! Scrape content negotiation: the protobuf and OpenMetrics scrapes say the
//! same as the text scrape, checked with decoders independent of ours.

use prom_aggregation_gateway_client::pb::io::prometheus::client as pb;
use prost::Message;

use crate::support::{Gateway, assert_text_eq, sample_value, scrape_protobuf};

const PROTO_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const BODY: &str = "# HELP c A \\\\ counter\n# TYPE c counter\nc{path=\"/a,b}\",q=\"say \\\"hi\\\"\"} 3\nc{path=\"/x\"} 1.5\n# TYPE g gauge\ng -2\n# TYPE h histogram\nh_bucket{k=\"v\",le=\"0.5\"} 1\nh_bucket{k=\"v\",le=\"+Inf\"} 3\nh_sum{k=\"v\"} 4.25\nh_count{k=\"v\"} 3\n# TYPE s summary\ns{quantile=\"0.9\"} 1\ns_sum 2\ns_count 1\nu 1e6\n";

fn go_float(v: f64) -> String {
    prom_aggregation_gateway::model::float::go(v)
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

fn labels(pairs: &[pb::LabelPair], le: Option<f64>) -> String {
    let mut parts: Vec<String> = pairs
        .iter()
        .map(|l| format!("{}=\"{}\"", l.name(), esc(l.value())))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{}\"", go_float(le)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Text 0.0.4 from decoded protobuf families, written here independently.
fn proto_to_text(families: &[pb::MetricFamily]) -> String {
    let mut out = String::new();
    for f in families {
        if let Some(h) = &f.help {
            out.push_str(&format!(
                "# HELP {} {}\n",
                f.name(),
                h.replace('\\', "\\\\").replace('\n', "\\n")
            ));
        }
        let kind = match f.r#type() {
            pb::MetricType::Counter => "counter",
            pb::MetricType::Gauge => "gauge",
            pb::MetricType::Histogram => "histogram",
            pb::MetricType::Summary => "summary",
            _ => "untyped",
        };
        out.push_str(&format!("# TYPE {} {kind}\n", f.name()));
        for m in &f.metric {
            let l = labels(&m.label, None);
            if let Some(c) = &m.counter {
                out.push_str(&format!("{}{l} {}\n", f.name(), go_float(c.value())));
            } else if let Some(g) = &m.gauge {
                out.push_str(&format!("{}{l} {}\n", f.name(), go_float(g.value())));
            } else if let Some(u) = &m.untyped {
                out.push_str(&format!("{}{l} {}\n", f.name(), go_float(u.value())));
            } else if let Some(h) = &m.histogram {
                for b in &h.bucket {
                    out.push_str(&format!(
                        "{}_bucket{} {}\n",
                        f.name(),
                        labels(&m.label, Some(b.upper_bound())),
                        b.cumulative_count()
                    ));
                }
                out.push_str(&format!(
                    "{}_sum{l} {}\n",
                    f.name(),
                    go_float(h.sample_sum())
                ));
                out.push_str(&format!("{}_count{l} {}\n", f.name(), h.sample_count()));
            } else if let Some(s) = &m.summary {
                assert!(s.quantile.is_empty(), "quantiles must be dropped");
                out.push_str(&format!(
                    "{}_sum{l} {}\n",
                    f.name(),
                    go_float(s.sample_sum())
                ));
                out.push_str(&format!("{}_count{l} {}\n", f.name(), s.sample_count()));
            }
        }
    }
    out
}

fn decode_delimited(mut buf: &[u8]) -> Vec<pb::MetricFamily> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(
            pb::MetricFamily::decode_length_delimited(&mut buf).expect("valid delimited protobuf"),
        );
    }
    out
}

#[tokio::test]
async fn protobuf_scrape_equals_text_scrape() {
    let gw = Gateway::start().await;
    gw.push_ok("/metrics/job/j", BODY).await;
    gw.push_ok("/metrics/job/j", BODY).await;
    let text = gw.scrape().await;
    let r = gw
        .request("GET", "/metrics", &[("accept", PROTO_ACCEPT)], "")
        .await;
    assert_eq!(
        r.headers["content-type"],
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
    );
    let families = decode_delimited(&r.body);
    assert_eq!(families.len(), 5);
    assert_text_eq(&proto_to_text(&families), &text, "protobuf vs text");
    // And the text scrape itself, as an independent parser reads it.
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let c = parsed
        .samples
        .iter()
        .find(|s| s.metric == "c" && s.labels.get("path") == Some("/x"))
        .unwrap();
    assert!(matches!(c.value, prometheus_parse::Value::Counter(v) if v == 3.0));
}

#[tokio::test]
async fn openmetrics_scrape() {
    let gw = Gateway::start().await;
    let before = now_seconds();
    gw.push_ok("/metrics", "# TYPE requests_total counter\nrequests_total{a=\"1\"} 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n").await;
    gw.request(
        "POST",
        "/metrics",
        &[("content-type", "application/openmetrics-text; version=1.0.0")],
        "# TYPE requests counter\nrequests_total{a=\"1\"} 1\nrequests_created{a=\"1\"} 1700000000\n# EOF\n",
    )
    .await;
    let r = gw
        .request(
            "GET",
            "/metrics",
            &[(
                "accept",
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
            )],
            "",
        )
        .await;
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    // The histogram's senders gave no start time: it starts when the
    // gateway made it. The counter keeps the earliest one given.
    let text = r.text();
    let h_created = sample_value(&text, "h_created").expect("h_created");
    assert!(
        (before..=now_seconds()).contains(&h_created),
        "{h_created} {text}"
    );
    let h_line = text.lines().find(|l| l.starts_with("h_created ")).unwrap();
    assert_text_eq(
        &text.replace(&format!("{h_line}\n"), ""),
        "# TYPE h histogram\nh_bucket{le=\"1.0\"} 1.0\nh_bucket{le=\"+Inf\"} 2.0\nh_count 2.0\nh_sum 3.0\n# TYPE requests counter\nrequests_total{a=\"1\"} 3.0\nrequests_created{a=\"1\"} 1.7e+09\n# EOF\n",
        "openmetrics",
    );
    // The text scrape has no _created inside the counter family.
    assert_text_eq(
        &gw.scrape().await,
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n# TYPE requests_total counter\nrequests_total{a=\"1\"} 3\n",
        "text",
    );
}

#[tokio::test]
async fn unchanged_families_are_served_from_cache_and_changes_show() {
    let gw = Gateway::start().await;
    gw.push_ok("/metrics", "# TYPE a counter\na 1\n# TYPE b counter\nb 1\n")
        .await;
    let first = gw.scrape().await;
    assert_eq!(first, gw.scrape().await);
    gw.push_ok("/metrics", "# TYPE b counter\nb 1\n").await;
    assert_text_eq(
        &gw.scrape().await,
        "# TYPE a counter\na 1\n# TYPE b counter\nb 2\n",
        "b changed",
    );
    gw.push_ok("/metrics", "# TYPE a counter\na 5\n").await;
    assert_text_eq(
        &gw.scrape().await,
        "# TYPE a counter\na 6\n# TYPE b counter\nb 2\n",
        "a changed",
    );
    // Each format and encoding sees the change too.
    for accept in ["application/openmetrics-text;version=1.0.0", PROTO_ACCEPT] {
        let before = gw
            .request("GET", "/metrics", &[("accept", accept)], "")
            .await
            .body;
        gw.push_ok("/metrics", "# TYPE a counter\na 1\n").await;
        let after = gw
            .request("GET", "/metrics", &[("accept", accept)], "")
            .await
            .body;
        assert_ne!(before, after, "{accept}");
    }
}

/// Sample values of a text scrape, by series as written.
fn values(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, v) = l.rsplit_once(' ').unwrap();
            (series.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// Scrapes over what `--scrape-keep-bytes` keeps (here nothing) are
/// streamed as they render, outside the shard locks: in every format the
/// body is whole and says what a whole-body render says, and while pushes
/// run, every scrape shows each push entirely or not at all (two families
/// changed by one push always agree).
#[tokio::test]
async fn large_scrapes_stream_a_consistent_view() {
    let gw = Gateway::start_with(prom_aggregation_gateway::Config {
        scrape_keep_bytes: 0,
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let push = {
        let (http, url) = (http.clone(), format!("{}/metrics/job/big", gw.base));
        move |body: String| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let r = http.post(url).body(body).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    };
    for chunk in 0..3 {
        let mut body = String::from("# TYPE big_total counter\n");
        for i in chunk * 10_000..(chunk + 1) * 10_000 {
            // Not in label order: the store sorts them.
            body.push_str(&format!("big_total{{i=\"{}\"}} 1\n", (i * 7919) % 30_000));
        }
        push(body).await;
    }
    let both = "# TYPE big_total counter\nbig_total{i=\"0\"} 1\n# TYPE small_total counter\nsmall_total 1\n";
    push(both.into()).await;

    let scrape_url = format!("{}/metrics", gw.base);
    let get = |accept: &'static str, gzip: bool| {
        let (http, url) = (http.clone(), scrape_url.clone());
        async move {
            let mut req = http.get(url).header("accept", accept);
            if gzip {
                req = req.header("accept-encoding", "gzip");
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            let streamed = r.headers().get("content-length").is_none();
            let body = r.bytes().await.unwrap().to_vec();
            let body = if gzip {
                use std::io::Read;
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut plain)
                    .unwrap();
                plain
            } else {
                body
            };
            (body, streamed)
        }
    };
    let (text, streamed) = get("text/plain", false).await;
    assert!(streamed, "a large scrape is streamed");
    assert!(get("text/plain", false).await.1, "and not kept");
    let text = String::from_utf8(text).unwrap();
    let v = values(&text);
    assert_eq!(v.len(), 30_001);
    assert_eq!(v["big_total{i=\"0\",job=\"big\"}"], 2.0);
    assert_eq!(v["small_total{job=\"big\"}"], 1.0);
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("big_total{"))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by_key(|l| {
        let i: u32 = l.split('"').nth(1).unwrap().parse().unwrap();
        i.to_string()
    });
    assert_eq!(keys, sorted, "series in label order");
    assert_eq!(
        String::from_utf8(get("text/plain", true).await.0).unwrap(),
        text,
        "gzip"
    );
    let proto = get(PROTO_ACCEPT, false).await.0;
    assert_text_eq(&proto_to_text(&decode_delimited(&proto)), &text, "protobuf");
    let om = String::from_utf8(
        get("application/openmetrics-text;version=1.0.0", false)
            .await
            .0,
    )
    .unwrap();
    assert!(om.ends_with("# EOF\n"));
    assert_eq!(
        om.lines().filter(|l| l.starts_with("big_total{")).count(),
        30_000
    );

    // More scrapes at once than stream at once: the others wait their
    // turn, and every one is whole.
    let many: Vec<_> = (0..20)
        .map(|_| tokio::spawn(get("text/plain", false)))
        .collect();
    for scrape in many {
        assert_eq!(scrape.await.unwrap().0, text.as_bytes());
    }

    // Pushes of one change to both families, while scrapes run.
    let pushes = tokio::spawn({
        let push = push.clone();
        async move {
            for _ in 0..40 {
                push(both.into()).await;
            }
        }
    });
    let mut seen = 0;
    while !pushes.is_finished() || seen == 0 {
        let v = values(&String::from_utf8(get("text/plain", false).await.0).unwrap());
        assert_eq!(
            v["big_total{i=\"0\",job=\"big\"}"] - 1.0,
            v["small_total{job=\"big\"}"],
            "a scrape saw half a push"
        );
        seen += 1;
    }
    pushes.await.unwrap();
    let v = values(&String::from_utf8(get("text/plain", false).await.0).unwrap());
    assert_eq!(v["small_total{job=\"big\"}"], 41.0);
    gw.check_valid().await;
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The `_created` of `series` in an OpenMetrics scrape, in seconds.
async fn created_of(gw: &Gateway, series: &str) -> Option<f64> {
    let r = gw
        .request(
            "GET",
            "/metrics",
            &[("accept", "application/openmetrics-text;version=1.0.0")],
            "",
        )
        .await;
    sample_value(&r.text(), series)
}

#[tokio::test]
async fn every_cumulative_aggregate_has_a_start_time_that_moves_on_reset() {
    let gw = Gateway::start().await;
    let body = "# TYPE c_total counter\nc_total 2\n# TYPE s summary\ns_sum 1\ns_count 1\n# TYPE g gauge\ng 1\n";
    let before = now_seconds();
    gw.push_ok("/metrics/job/a", body).await;
    let first = created_of(&gw, "c_created{job=\"a\"}")
        .await
        .expect("c_created{job=\"a\"}");
    assert!((before..=now_seconds()).contains(&first), "{first}");
    assert!(created_of(&gw, "s_created{job=\"a\"}").await.is_some());
    // Gauges have no start.
    assert_eq!(created_of(&gw, "g_created{job=\"a\"}").await, None);
    // Later pushes add without moving it.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    gw.push_ok("/metrics/job/a", body).await;
    assert_eq!(created_of(&gw, "c_created{job=\"a\"}").await, Some(first));
    // The protobuf scrape says the same.
    let families = scrape_protobuf(&gw).await;
    let c = families.iter().find(|f| f.name() == "c_total").unwrap();
    let ts = c.metric[0]
        .counter
        .as_ref()
        .unwrap()
        .created_timestamp
        .unwrap();
    let proto_created = ts.seconds as f64 + f64::from(ts.nanos) / 1e9;
    assert!(
        (proto_created - first).abs() < 1e-3,
        "{proto_created} {first}"
    );
    // Deleted and pushed again: a new series, a later start.
    let r = gw.request("DELETE", "/metrics/job/a", &[], "").await;
    assert_eq!(r.status, 202);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    gw.push_ok("/metrics/job/a", body).await;
    let again = created_of(&gw, "c_created{job=\"a\"}")
        .await
        .expect("c_created{job=\"a\"}");
    assert!(again > first, "{again} after {first}");
}

#[tokio::test]
async fn start_times_can_be_only_the_senders_own() {
    let gw = Gateway::start_with(prom_aggregation_gateway::Config {
        start_times: prom_aggregation_gateway::config::StartTimes::Given,
        ..Default::default()
    })
    .await;
    gw.push_ok(
        "/metrics/job/a",
        "# TYPE c_total counter\nc_total 2\n# TYPE d_total counter\nd_total 1\n# TYPE d_created gauge\nd_created 1700000000\n",
    )
    .await;
    assert_eq!(created_of(&gw, "c_created{job=\"a\"}").await, None);
    assert_eq!(created_of(&gw, "d_created{job=\"a\"}").await, Some(1.7e9));
}
